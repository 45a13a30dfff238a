//! Flame graphs as standalone SVG, drawn from folded stacks (root first,
//! `;`-separated, a sample count each): one box per frame of the call
//! tree, as wide as the frame's samples (callees of a frame side by side
//! above it, by name), the root (`all`) at the bottom, a hover title on
//! each box with its samples and share.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The picture's width, its left and right margin, and a frame's height.
const WIDTH: f64 = 1200.0;
const XPAD: f64 = 10.0;
const FRAME_H: f64 = 16.0;
/// Room above the frames (title and subtitle) and below them.
const TOP: f64 = 56.0;
const BOTTOM: f64 = 10.0;
/// Frames narrower than this share of the frames' width are left out.
const MIN_SHARE: f64 = 0.001;
/// A character's approximate width at font-size 11, and the fewest
/// characters worth drawing in a box.
const CHAR_W: f64 = 7.0;
const MIN_CHARS: usize = 3;

/// A node of the call tree: its inclusive samples and its callees.
#[derive(Default)]
struct Node {
    samples: u64,
    children: BTreeMap<String, Node>,
}

/// A frame as drawn: `depth` 0 is the root, `x` and `width` in px.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    name: String,
    depth: usize,
    samples: u64,
    x: f64,
    width: f64,
}

/// The frames of the call tree of `stacks`, root first (none without
/// samples).
fn layout<'a>(stacks: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<Frame> {
    let mut root = Node::default();
    for (stack, n) in stacks {
        root.samples += n;
        let mut node = &mut root;
        for f in stack.split(';').filter(|f| !f.is_empty()) {
            node = node.children.entry(f.to_string()).or_default();
            node.samples += n;
        }
    }
    let mut frames = Vec::new();
    if root.samples > 0 {
        let scale = (WIDTH - 2.0 * XPAD) / root.samples as f64;
        place("all", &root, 0, 0, scale, &mut frames);
    }
    frames
}

/// Adds `node` at `depth`, `offset` samples from the left, and its
/// callees, unless it is too narrow to see.
fn place(name: &str, node: &Node, depth: usize, offset: u64, scale: f64, out: &mut Vec<Frame>) {
    let width = node.samples as f64 * scale;
    if node.samples == 0 || width < MIN_SHARE * (WIDTH - 2.0 * XPAD) {
        return;
    }
    out.push(Frame {
        name: name.to_string(),
        depth,
        samples: node.samples,
        x: XPAD + offset as f64 * scale,
        width,
    });
    let mut at = offset;
    for (callee, child) in &node.children {
        place(callee, child, depth + 1, at, scale, out);
        at += child.samples;
    }
}

/// `s` with XML's special characters escaped (and control characters,
/// which XML does not allow, replaced).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A warm colour from a hash (FNV-1a) of `name`: the same across graphs.
fn colour(name: &str) -> (u8, u8, u8) {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let part = |shift: u32, range: f64| ((h >> shift) & 0xff) as f64 / 255.0 * range;
    (
        205 + part(56, 50.0) as u8,
        part(48, 230.0) as u8,
        part(40, 55.0) as u8,
    )
}

/// The part of `name` that fits `width` px, `..` marking a cut; none if
/// fewer than [`MIN_CHARS`] characters fit.
fn label(name: &str, width: f64) -> Option<String> {
    let fit = ((width - 6.0) / CHAR_W).max(0.0) as usize;
    if fit < MIN_CHARS {
        None
    } else if name.chars().count() <= fit {
        Some(name.to_string())
    } else {
        Some(name.chars().take(fit - 2).chain("..".chars()).collect())
    }
}

/// The flame graph of `stacks` (root first, a count each) as an SVG
/// document titled `title`.
pub fn svg<'a>(stacks: impl IntoIterator<Item = (&'a str, u64)>, title: &str) -> String {
    let frames = layout(stacks);
    let total = frames.first().map_or(0, |f| f.samples);
    let depth = frames.iter().map(|f| f.depth + 1).max().unwrap_or(0);
    let height = TOP + depth as f64 * FRAME_H + BOTTOM;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" style=\"background:#f8f8f8\">\n\
         <style>text {{ font-family: Verdana, sans-serif; fill: #000; }} \
         text.f {{ font-size: 11px; pointer-events: none; }}</style>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">{}</text>\n\
         <text x=\"{}\" y=\"42\" text-anchor=\"middle\" font-size=\"12\" \
         style=\"fill:#555\">{total} samples</text>",
        WIDTH / 2.0,
        escape(title),
        WIDTH / 2.0,
    );
    for f in &frames {
        let y = height - BOTTOM - (f.depth + 1) as f64 * FRAME_H;
        let (r, g, b) = colour(&f.name);
        let share = 100.0 * f.samples as f64 / total as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{:.2}\" \
             fill=\"rgb({r},{g},{b})\" rx=\"2\"><title>{} ({} samples, {share:.2}%)</title></rect>",
            f.x,
            f.width,
            FRAME_H - 1.0,
            escape(&f.name),
            f.samples,
        );
        if let Some(text) = label(&f.name, f.width) {
            let (tx, ty) = (f.x + 3.0, y + FRAME_H - 4.5);
            let _ = writeln!(
                out,
                "<text class=\"f\" x=\"{tx:.2}\" y=\"{ty:.2}\">{}</text>",
                escape(&text)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rect of the SVG: (x, y, width, title).
    fn rects(svg: &str) -> Vec<(f64, f64, f64, String)> {
        let attr = |line: &str, name: &str| -> f64 {
            let rest = line.split(&format!(" {name}=\"")).nth(1).unwrap();
            rest[..rest.find('"').unwrap()].parse().unwrap()
        };
        svg.lines()
            .filter(|l| l.starts_with("<rect"))
            .map(|l| {
                let title = l.split("<title>").nth(1).unwrap();
                let title = title[..title.find("</title>").unwrap()].to_string();
                (attr(l, "x"), attr(l, "y"), attr(l, "width"), title)
            })
            .collect()
    }

    /// The rect whose title starts with `name (`.
    fn rect<'a>(rs: &'a [(f64, f64, f64, String)], name: &str) -> &'a (f64, f64, f64, String) {
        rs.iter()
            .find(|r| r.3.starts_with(&format!("{name} (")))
            .unwrap_or_else(|| panic!("no rect for {name}"))
    }

    const TINY: [(&str, u64); 4] = [("main;a;b", 3), ("main;a", 1), ("main;c", 2), ("main", 2)];

    #[test]
    fn one_rect_per_frame() {
        let svg = svg(TINY, "tcp-veth-4096-zcopy-send");
        let rs = rects(&svg);
        // all, main, a, b, c.
        assert_eq!(rs.len(), 5);
        assert_eq!(svg.matches("<rect").count(), 5);
        assert_eq!(rect(&rs, "all").3, "all (8 samples, 100.00%)");
        assert_eq!(rect(&rs, "a").3, "a (4 samples, 50.00%)");
        assert_eq!(rect(&rs, "c").3, "c (2 samples, 25.00%)");
        assert!(svg.contains(">tcp-veth-4096-zcopy-send</text>"));
        assert!(svg.contains(">8 samples</text>"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // A frame of 1 in 2000 samples (0.05%) is left out.
        let rs = rects(&super::svg([("main;big", 1999), ("main;tiny", 1)], "t"));
        assert_eq!(rs.len(), 3);
        assert!(rs.iter().all(|r| !r.3.starts_with("tiny")));
    }

    #[test]
    fn parents_are_as_wide_as_their_children_and_self() {
        let rs = rects(&svg(TINY, "t"));
        let (all, main, a, b, c) = (
            rect(&rs, "all"),
            rect(&rs, "main"),
            rect(&rs, "a"),
            rect(&rs, "b"),
            rect(&rs, "c"),
        );
        let px = (WIDTH - 2.0 * XPAD) / 8.0;
        assert!((all.2 - (WIDTH - 2.0 * XPAD)).abs() < 0.01);
        // main: a (4) + c (2) + itself (2); a: b (3) + itself (1).
        assert!((main.2 - (a.2 + c.2 + 2.0 * px)).abs() < 0.02);
        assert!((a.2 - (b.2 + px)).abs() < 0.02);
        assert!((all.2 - main.2).abs() < 0.01);
        // Callees side by side from the caller's left edge, by name.
        assert_eq!((all.0, main.0, a.0, b.0), (XPAD, XPAD, XPAD, XPAD));
        assert!((c.0 - (a.0 + a.2)).abs() < 0.01);
        // The root at the bottom, a frame's callees a row above it.
        assert!(all.1 > main.1 && main.1 > a.1 && a.1 > b.1);
        assert!((main.1 - a.1 - FRAME_H).abs() < 0.01);
        assert_eq!(a.1, c.1);
        assert!(svg([], "empty").contains(">0 samples</text>"));
        assert_eq!(rects(&svg([], "empty")).len(), 0);
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("plain_name"), "plain_name");
        let svg = svg([("main;operator<<&", 1)], "a&b");
        assert!(svg.contains("<title>operator&lt;&lt;&amp; (1 samples, 100.00%)</title>"));
        assert!(svg.contains(">operator&lt;&lt;&amp;</text>"));
        assert!(svg.contains(">a&amp;b</text>"));
        assert!(!svg.contains("<<") && !svg.contains("&b"));
    }

    #[test]
    fn labels_fit_their_boxes() {
        assert_eq!(
            label("copy_user_generic", 1180.0).unwrap(),
            "copy_user_generic"
        );
        // (41 - 6) / 7 = 5 characters: 3 and the cut mark.
        assert_eq!(label("copy_user_generic", 41.0).unwrap(), "cop..");
        assert_eq!(label("abc", 27.0).unwrap(), "abc");
        assert_eq!(label("abcd", 27.0).unwrap(), "a..");
        assert_eq!(label("copy_user_generic", 26.9), None);
    }

    #[test]
    fn colours_are_warm_and_follow_the_name() {
        assert_eq!(colour("tcp_sendmsg_locked"), colour("tcp_sendmsg_locked"));
        assert_ne!(colour("tcp_sendmsg_locked"), colour("copy_user_generic"));
        for name in ["all", "main", "a", "tcp_sendmsg_locked", "[libc.so.6]"] {
            let (r, g, b) = colour(name);
            assert!(r >= 205 && g <= 230 && b <= 55, "{name}: {r},{g},{b}");
        }
        // The same function has the same fill in another graph, elsewhere.
        let fill = |svg: &str, name: &str| -> String {
            let line = svg
                .lines()
                .find(|l| l.contains(&format!("<title>{name} (")))
                .unwrap();
            let rest = line.split(" fill=\"").nth(1).unwrap();
            rest[..rest.find('"').unwrap()].to_string()
        };
        let one = svg([("main;x;memcpy", 5)], "one");
        let two = svg([("other;memcpy", 1), ("other;y", 9)], "two");
        assert_eq!(fill(&one, "memcpy"), fill(&two, "memcpy"));
        let (r, g, b) = colour("memcpy");
        assert_eq!(fill(&one, "memcpy"), format!("rgb({r},{g},{b})"));
    }
}
