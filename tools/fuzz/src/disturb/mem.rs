//! Memory disturbances: the pool's slots (munmap, remap, mremap, madvise,
//! mprotect, touching) and the file sends read (truncate, rewrite,
//! evict). See [`crate::pool`] for why none of it can hit memory that is
//! not the fuzzer's.

use crate::{rng::Rng, state::Shared};

pub fn run(sh: &Shared, mut rng: Rng) {
    while super::pause(sh, &mut rng, 1, 20) {
        if rng.chance(1, 5) {
            super::count("file", sh.files.disturb(&mut rng));
        } else {
            super::count("mem", sh.pool.disturb(&mut rng));
        }
    }
}
