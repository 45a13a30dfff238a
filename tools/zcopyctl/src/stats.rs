//! The benchmark's arithmetic: medians and spread of repetitions, and the
//! break-even size of a zero-copy method against copying.
//!
//! DESIGN.md §1: zero-copy trades a per-byte copy cost for a fixed per-send
//! cost; with per-send CPU time `t(n) = a + b·n` (a fixed, b per byte), a
//! method Z breaks even with a copying method W at `n* = (a_Z - a_W) /
//! (b_W - b_Z)`, the size above which Z spends less CPU per byte.

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// The spread of `v` around its median: `(max - min) / median`, 0 for a
/// single value.
pub fn spread(v: &[f64]) -> Option<f64> {
    let m = median(v)?;
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if m == 0.0 {
        return Some(0.0);
    }
    Some((hi - lo) / m)
}

/// A least-squares line `y = a + b·x` through the points.
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
    }
    if sxx == 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// The break-even size of method Z against W from their per-send CPU cost
/// lines `(a, b)`: the size above which Z costs less. `Some(0.0)` when Z is
/// cheaper at every size, `None` when it never is.
pub fn break_even(w: (f64, f64), z: (f64, f64)) -> Option<f64> {
    let (aw, bw) = w;
    let (az, bz) = z;
    if bz >= bw {
        // Z costs as much or more per byte: it wins only if it is cheaper
        // per send too, and then everywhere.
        return if az < aw { Some(0.0) } else { None };
    }
    Some(((az - aw) / (bw - bz)).max(0.0))
}

/// The break-even size read off measured curves: the first size (in
/// ascending order) from which on Z's CPU per byte stays at or below W's,
/// interpolated geometrically between the two sizes around the crossing.
pub fn crossing(w: &[(f64, f64)], z: &[(f64, f64)]) -> Option<f64> {
    let pairs: Vec<(f64, f64, f64)> = w
        .iter()
        .filter_map(|&(n, cw)| z.iter().find(|&&(m, _)| m == n).map(|&(_, cz)| (n, cw, cz)))
        .collect();
    let last_loss = pairs.iter().rposition(|&(_, cw, cz)| cz > cw);
    match last_loss {
        None => pairs.first().map(|p| p.0),
        Some(i) if i + 1 == pairs.len() => None,
        Some(i) => {
            let (n0, w0, z0) = pairs[i];
            let (n1, w1, z1) = pairs[i + 1];
            // d = z - w goes from positive to non-positive: interpolate
            // on log(size).
            let (d0, d1) = (z0 - w0, z1 - w1);
            let t = d0 / (d0 - d1);
            Some((n0.ln() + t * (n1.ln() - n0.ln())).exp())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(spread(&[2.0]), Some(0.0));
        assert_eq!(spread(&[9.0, 10.0, 12.0]), Some(0.3));
    }

    #[test]
    fn fit_recovers_a_line() {
        let pts: Vec<_> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&x| (x, 3.0 + 0.5 * x))
            .collect();
        let (a, b) = fit(&pts).unwrap();
        assert!((a - 3.0).abs() < 1e-9 && (b - 0.5).abs() < 1e-9);
        assert_eq!(fit(&[(1.0, 1.0)]), None);
        assert_eq!(fit(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn break_even_from_lines() {
        // Copying: 1 µs a send + 1 ns a byte; zero copy: 5 µs + 0.2 ns.
        // 1000 + n = 5000 + 0.2 n  =>  n* = 4000 / 0.8 = 5000 bytes.
        let n = break_even((1000.0, 1.0), (5000.0, 0.2)).unwrap();
        assert!((n - 5000.0).abs() < 1e-6);
        // Cheaper per send and per byte: wins from the first byte.
        assert_eq!(break_even((1000.0, 1.0), (500.0, 0.2)), Some(0.0));
        // Dearer per byte and per send: never.
        assert_eq!(break_even((1000.0, 1.0), (2000.0, 1.5)), None);
        // Same per byte, cheaper per send: everywhere.
        assert_eq!(break_even((1000.0, 1.0), (900.0, 1.0)), Some(0.0));
    }

    #[test]
    fn crossing_interpolates_between_sizes() {
        let w = [(1024.0, 2.0), (2048.0, 2.0), (4096.0, 2.0)];
        // Loses at 1 KiB by 1, wins at 2 KiB by 1: halfway in log size.
        let z = [(1024.0, 3.0), (2048.0, 1.0), (4096.0, 0.5)];
        let n = crossing(&w, &z).unwrap();
        assert!((n - 1024.0 * 2f64.sqrt()).abs() < 1e-6);
        // Wins everywhere: the smallest size.
        assert_eq!(crossing(&w, &[(1024.0, 1.0), (2048.0, 1.0)]), Some(1024.0));
        // Loses at the largest size: no break-even in range.
        assert_eq!(crossing(&w, &[(1024.0, 1.0), (4096.0, 3.0)]), None);
    }
}
