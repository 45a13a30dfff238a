//! Threads that disturb the workers' world while they call: memory under
//! registered regions ([`mem`]), processes that share the fds ([`fork`]),
//! the network ([`net`]), the sockets, and the workers themselves
//! (signals that interrupt blocking calls, [`kick`]).
//!
//! Each runs until the run stops, pausing a random while between steps,
//! and counts what it did.

pub mod fork;
pub mod kick;
pub mod mem;
pub mod net;

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{rng::Rng, state::Shared};

static DONE: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Counts one disturbance `what` of `family`.
pub fn count(family: &str, what: &str) {
    let mut m = DONE.lock().unwrap_or_else(|e| e.into_inner());
    *m.entry(format!("{family}:{what}")).or_default() += 1;
}

/// What was done, `family:what=n ...`.
pub fn summary() -> String {
    let m = DONE.lock().unwrap_or_else(|e| e.into_inner());
    m.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sleeps `lo..=hi` milliseconds, waking early when the run stops;
/// false once it has.
pub fn pause(sh: &Shared, rng: &mut Rng, lo: u64, hi: u64) -> bool {
    let until = Instant::now() + Duration::from_millis(rng.range(lo, hi));
    while Instant::now() < until {
        if sh.stopping() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
    }
    !sh.stopping()
}

/// Replaces sockets now and then: their numbers close under the workers.
pub fn run_sockets(sh: &Shared, mut rng: Rng) {
    while pause(sh, &mut rng, 10, 120) {
        count("sock", sh.socks.churn(&mut rng));
    }
}
