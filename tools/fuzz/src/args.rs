//! Values for the scalar fields: lengths, offsets, counts, ids, flags and
//! interface numbers at the edges that matter to the kernel.

use crate::{ptrs::page, rng::Rng};
use zcopy::abi;

/// `INT_MAX`.
pub const INT_MAX: u64 = i32::MAX as u64;
/// `LLONG_MAX`: the largest file offset.
pub const LLONG_MAX: u64 = i64::MAX as u64;
/// The largest UDP payload over IPv4.
pub const UDP_MAX: u64 = 65507;

/// `MAX_RW_COUNT`: `INT_MAX` rounded down to a page, what the VFS clamps a
/// read or write to.
pub fn max_rw_count() -> u64 {
    INT_MAX & !(page() as u64 - 1)
}

/// Every edge length: each boundary of the ABI and of the kernel's types,
/// with its neighbours.
pub fn edge_lens() -> Vec<u64> {
    let pg = page() as u64;
    let rec = size_of::<abi::ZcCompletion>() as u64;
    let sendfile_max = u64::from(abi::ZC_SENDFILE_MAX);
    let mut v = vec![
        0,
        1,
        2,
        7,
        8,
        rec - 1,
        rec,
        rec + 1,
        pg - 1,
        pg,
        pg + 1,
        2 * pg - 1,
        2 * pg,
        2 * pg + 1,
        17 * pg,
        17 * pg + 1,
        UDP_MAX,
        UDP_MAX + 1,
        65535,
        65536,
        1 << 20,
        sendfile_max - 1,
        sendfile_max,
        sendfile_max + 1,
        INT_MAX - 1,
        INT_MAX,
        INT_MAX + 1,
        max_rw_count() - 1,
        max_rw_count(),
        max_rw_count() + 1,
        u64::from(u32::MAX) - 1,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        // The most pages the ABI counts, and one more.
        u64::from(u32::MAX) * pg,
        (u64::from(u32::MAX) + 1) * pg,
        LLONG_MAX - 1,
        LLONG_MAX,
        LLONG_MAX + 1,
        u64::MAX - pg,
        u64::MAX - 1,
        u64::MAX,
    ];
    v.sort_unstable();
    v.dedup();
    v
}

/// An edge length, sometimes nudged or random.
pub fn edge_len(rng: &mut Rng) -> u64 {
    thread_local! {
        static EDGES: Vec<u64> = edge_lens();
    }
    let x = EDGES.with(|e| rng.pick(e));
    match rng.below(8) {
        0 => x.wrapping_add(rng.below(3)).wrapping_sub(1),
        1 => rng.bits(),
        _ => x,
    }
}

/// A length near a natural one (a region's, a file's): the value, its
/// neighbours, 0, 1, a part of it, or an edge.
pub fn len_near(rng: &mut Rng, natural: u64) -> u64 {
    match rng.below(8) {
        0 => natural.saturating_sub(1),
        1 => natural,
        2 => natural.saturating_add(1),
        3 => rng.range(1, natural.max(1)),
        4 => natural / 2,
        5 => natural.saturating_add(page() as u64),
        _ => edge_len(rng),
    }
}

/// A 32-bit edge value.
pub fn edge_u32(rng: &mut Rng) -> u32 {
    let pg = page() as u32;
    let any = rng.next_u32();
    rng.pick(&[
        0,
        1,
        2,
        63,
        64,
        65,
        pg - 1,
        pg,
        pg + 1,
        4095,
        4096,
        4097,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX - 1,
        u32::MAX,
        any,
    ])
}

/// A 32-bit signed edge value.
pub fn edge_i32(rng: &mut Rng) -> i32 {
    let any = rng.next_u32() as i32;
    rng.pick(&[
        0,
        1,
        -1,
        -2,
        i32::MIN,
        i32::MIN + 1,
        i32::MAX,
        i32::MAX - 1,
        1 << 20,
        any,
    ])
}

/// A value with at least one bit outside `known`.
pub fn unknown_bits(rng: &mut Rng, known: u32) -> u32 {
    loop {
        let x = rng.bits() as u32;
        let x = match rng.below(3) {
            0 => x | (1 << (31 - rng.below(u64::from(known.leading_zeros())))),
            1 => x | known,
            _ => x,
        };
        if x & !known != 0 {
            return x;
        }
    }
}

/// A non-zero value for a field that must be zero.
pub fn nonzero_u32(rng: &mut Rng) -> u32 {
    match rng.bits() as u32 {
        0 => 1,
        x => x,
    }
}

/// A non-zero 64-bit value.
pub fn nonzero_u64(rng: &mut Rng) -> u64 {
    match rng.bits() {
        0 => 1 << 63,
        x => x,
    }
}

/// A tag: random, or one of the values a sloppy module might treat
/// specially.
pub fn raw_tag(rng: &mut Rng) -> u64 {
    let any = rng.next_u64();
    rng.pick(&[0, 1, u64::MAX, any])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_lengths_include_the_boundaries() {
        let pg = page() as u64;
        let e = edge_lens();
        for want in [
            0,
            1,
            pg - 1,
            pg,
            pg + 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
            INT_MAX,
            INT_MAX + 1,
            max_rw_count(),
            max_rw_count() + 1,
            LLONG_MAX,
            LLONG_MAX + 1,
            u64::from(abi::ZC_SENDFILE_MAX),
            u64::from(abi::ZC_SENDFILE_MAX) + 1,
            UDP_MAX,
            UDP_MAX + 1,
        ] {
            assert!(e.contains(&want), "{want:#x} missing");
        }
        assert_eq!(max_rw_count(), 0x7fff_f000);
    }

    #[test]
    fn edge_len_reaches_every_edge() {
        let mut rng = Rng::new(11);
        let want = edge_lens();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            seen.insert(edge_len(&mut rng));
        }
        for w in want {
            assert!(seen.contains(&w), "{w:#x} never generated");
        }
    }

    #[test]
    fn unknown_bits_always_has_an_unknown_bit() {
        let mut rng = Rng::new(5);
        for _ in 0..10_000 {
            assert_ne!(unknown_bits(&mut rng, 1) & !1, 0);
            assert_ne!(unknown_bits(&mut rng, 3) & !3, 0);
            assert_ne!(nonzero_u32(&mut rng), 0);
            assert_ne!(nonzero_u64(&mut rng), 0);
        }
    }

    #[test]
    fn len_near_includes_the_neighbours() {
        let mut rng = Rng::new(2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            seen.insert(len_near(&mut rng, 100));
        }
        for w in [0, 1, 99, 100, 101, 50] {
            assert!(seen.contains(&w), "{w} never generated");
        }
    }
}
