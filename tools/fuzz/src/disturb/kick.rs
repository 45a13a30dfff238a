//! Interrupting workers: `SIGUSR1` (no `SA_RESTART`) to a random worker,
//! so a blocking `read(2)` or send returns `EINTR` (or short) — the
//! module's `ERESTARTSYS` paths. At the end the main thread kicks every
//! worker until all have returned.

use crate::{rng::Rng, signals, state::Shared};

/// Kicks one worker (a random one), or all.
pub fn kick(sh: &Shared, rng: Option<&mut Rng>) -> usize {
    let k = sh.kickable();
    let targets: Vec<libc::pthread_t> = match rng {
        Some(r) if !k.is_empty() => vec![k[r.below(k.len() as u64) as usize].1],
        Some(_) => Vec::new(),
        None => k.iter().map(|&(_, t)| t).collect(),
    };
    for &t in &targets {
        // SAFETY: `t` is a live thread: a worker removes itself from the
        // list (under the lock we hold) before it exits.
        unsafe { libc::pthread_kill(t, signals::KICK) };
    }
    targets.len()
}

pub fn run(sh: &Shared, mut rng: Rng) {
    while super::pause(sh, &mut rng, 2, 40) {
        if kick(sh, Some(&mut rng)) > 0 {
            super::count("kick", "sigusr1");
        }
    }
}
