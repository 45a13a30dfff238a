//! Plots of a benchmark report: sender CPU per byte against message size,
//! one line per method, one chart per route, each zero-copy method's
//! break-even size against `read+write` marked. plotters draws the SVG;
//! resvg renders it to PNG with the system's fonts.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::{coord::Shift, prelude::*};

use crate::bench::{Method, Report, Route};

fn color(m: Method) -> RGBColor {
    match m {
        Method::ReadWrite => RGBColor(0, 0, 0),
        Method::MmapWrite => RGBColor(120, 120, 120),
        Method::Sendfile => RGBColor(31, 119, 180),
        Method::Splice => RGBColor(23, 190, 207),
        Method::MsgZerocopy => RGBColor(255, 127, 14),
        Method::IoUringSendZc => RGBColor(148, 103, 189),
        Method::ZcopySend => RGBColor(214, 39, 40),
        Method::ZcopySendBatch => RGBColor(227, 119, 194),
        Method::ZcopySendfile => RGBColor(44, 160, 44),
    }
}

fn chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report, route: Route) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<_> = r.points.iter().filter(|p| p.route == route).collect();
    // x is log2 of the size, so the ticks fall on powers of two.
    let (xmin, xmax) = pts.iter().fold((f64::MAX, 0f64), |(a, b), p| {
        let x = (p.size as f64).log2();
        (a.min(x), b.max(x))
    });
    let (ymin, ymax) = pts.iter().fold((f64::MAX, 0f64), |(a, b), p| {
        (a.min(p.cpu_ns_per_byte), b.max(p.cpu_ns_per_byte))
    });
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing: {e:?}");
    let mut c = ChartBuilder::on(area)
        .caption(
            format!(
                "{}: sender CPU per byte (kernel {}, TCG VM)",
                route.name(),
                r.kernel
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            xmin - 0.3..xmax + 0.3,
            (ymin.max(1e-4) * 0.7..ymax * 1.4).log_scale(),
        )
        .map_err(e)?;
    c.configure_mesh()
        .x_desc("message size, bytes")
        .y_desc("ns of sender CPU per byte")
        .x_labels((xmax - xmin) as usize + 1)
        .x_label_formatter(&|v| {
            let v = 2f64.powf(v.round()) as usize;
            if v >= 1 << 20 {
                format!("{}M", v >> 20)
            } else if v >= 1024 {
                format!("{}K", v >> 10)
            } else {
                v.to_string()
            }
        })
        .draw()
        .map_err(e)?;
    for m in Method::ALL {
        let line: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.method == m)
            .map(|p| ((p.size as f64).log2(), p.cpu_ns_per_byte))
            .collect();
        if line.is_empty() {
            continue;
        }
        let col = color(m);
        c.draw_series(LineSeries::new(line.clone(), col.stroke_width(2)))
            .map_err(e)?
            .label(m.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], col.stroke_width(2)));
        c.draw_series(line.iter().map(|&p| Circle::new(p, 3, col.filled())))
            .map_err(e)?;
        if let Some(n) = r
            .break_even
            .iter()
            .find(|b| b.method == m && b.route == route)
            .and_then(|b| b.measured)
            .map(f64::log2)
            .filter(|&n| n > xmin - 0.3 && n < xmax + 0.3)
        {
            // The break-even size: a dashed vertical mark in the method's
            // colour.
            let (y0, y1) = (ymin.max(1e-4) * 0.7, ymax * 1.4);
            let steps = 24;
            for k in (0..steps).step_by(2) {
                let f = |k: i32| y0 * (y1 / y0).powf(k as f64 / steps as f64);
                c.draw_series(std::iter::once(PathElement::new(
                    [(n, f(k)), (n, f(k + 1))],
                    col.stroke_width(1),
                )))
                .map_err(e)?;
            }
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(e)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    r: &Report,
    routes: &[Route],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let areas = root.split_evenly((routes.len(), 1));
    for (a, &route) in areas.iter().zip(routes) {
        chart(a, r, route)?;
    }
    root.present().map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

/// Writes `cpu_per_byte.svg` and `cpu_per_byte.png` into `dir`.
pub fn plot(r: &Report, dir: &Path) -> Result<()> {
    let routes: Vec<Route> = [Route::UdpDummy, Route::TcpVeth]
        .into_iter()
        .filter(|&rt| r.points.iter().any(|p| p.route == rt))
        .collect();
    anyhow::ensure!(!routes.is_empty(), "the report has no points");
    let size = (1100, 560 * routes.len() as u32);
    let svg = dir.join("cpu_per_byte.svg");
    draw(SVGBackend::new(&svg, size).into_drawing_area(), r, &routes)?;
    let text = std::fs::read(&svg)?;
    let mut opt = resvg::usvg::Options::default();
    {
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        // The SVG asks for "sans-serif"; fontdb maps it to Arial unless told.
        let family = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(n, _)| n.clone()))
            .find(|n| n == "DejaVu Sans" || n == "Liberation Sans");
        if let Some(family) = family {
            db.set_sans_serif_family(family);
        }
    }
    let tree = resvg::usvg::Tree::from_data(&text, &opt).context("parsing the SVG")?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.0, size.1).context("allocating the PNG")?;
    resvg::render(&tree, Default::default(), &mut pixmap.as_mut());
    pixmap
        .save_png(dir.join("cpu_per_byte.png"))
        .context("writing the PNG")?;
    Ok(())
}
