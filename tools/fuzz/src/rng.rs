//! A small deterministic PRNG (SplitMix64) and the choices built on it.
//!
//! Every thread (and every forked child) has its own generator derived
//! from `--seed` and a stream number, so the sequence of choices one
//! thread makes is reproducible; what the threads do to each other is not.
//! Nothing here allocates or panics on a non-empty input, so a forked
//! child of a multithreaded process may use it.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, full period.
#[derive(Clone, Copy, Debug)]
pub struct Rng {
    state: u64,
}

/// The SplitMix64 finaliser: a good 64-bit mixing function.
pub const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Generator number `stream` of run `seed`: independent streams.
    pub const fn derive(seed: u64, stream: u64) -> Self {
        Self::new(mix(seed ^ mix(stream.wrapping_add(0x0005_eed0_f2c0_b1e5))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(u64::from(den)) < u64::from(num)
    }

    /// An element of `xs`, which must not be empty.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// An index into `weights`, each chosen in proportion to its weight;
    /// 0 if they are all 0.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        0
    }

    /// A value with few, many or random bits set: more interesting than
    /// uniform noise for flags and reserved fields.
    pub fn bits(&mut self) -> u64 {
        match self.below(4) {
            0 => 1 << self.below(64),
            1 => self.next_u64() & self.next_u64() & self.next_u64(),
            2 => !(1 << self.below(64)),
            _ => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_other_stream_other_sequence() {
        let mut a = Rng::derive(42, 1);
        let mut b = Rng::derive(42, 1);
        let mut c = Rng::derive(42, 2);
        let xa: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..100).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_and_range_stay_in_bounds_and_reach_the_ends() {
        let mut r = Rng::new(7);
        assert_eq!(r.below(0), 0);
        let mut seen = [false; 5];
        for _ in 0..10_000 {
            let x = r.range(10, 14);
            assert!((10..=14).contains(&x));
            seen[(x - 10) as usize] = true;
            assert!(r.below(3) < 3);
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.range(9, 3), 9);
        // The whole range does not overflow.
        let _ = r.range(0, u64::MAX);
    }

    #[test]
    fn weighted_never_picks_a_zero_weight() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            let i = r.weighted(&[0, 3, 0, 1]);
            assert!(i == 1 || i == 3);
        }
        assert_eq!(r.weighted(&[0, 0]), 0);
    }
}
