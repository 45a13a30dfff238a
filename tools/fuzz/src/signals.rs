//! Signals: the ones the fuzzer uses, and every other one it might get,
//! counted so the run fails if any arrived.
//!
//! Expected: `SIGUSR1`, sent by the kicker to interrupt a worker blocked
//! in `read(2)` or a send (installed without `SA_RESTART`, so the call
//! returns `EINTR`); `SIGCHLD` from forked children; `SIGINT`/`SIGTERM`,
//! which end the run early and cleanly. Anything else is unexpected:
//! `SIGPIPE` in particular (sends pass `MSG_NOSIGNAL`: the ABI promises no
//! `SIGPIPE`; Rust ignores it by default, the fuzzer counts it instead),
//! `SIGURG`, `SIGIO`, `SIGXFSZ`. A synchronous fault (`SIGSEGV`, `SIGBUS`,
//! `SIGILL`, `SIGFPE`, `SIGSYS`) means the fuzzer's memory was corrupted:
//! it says so and exits at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The kick signal.
pub const KICK: i32 = libc::SIGUSR1;

const NSIG: usize = 65;
static COUNTS: [AtomicU64; NSIG] = [const { AtomicU64::new(0) }; NSIG];
static STOP: AtomicBool = AtomicBool::new(false);

/// Exit status after a synchronous fault.
pub const FAULT_EXIT: i32 = 70;

/// Counted, not fatal: any of these is a finding.
const WATCHED: &[i32] = &[
    libc::SIGPIPE,
    libc::SIGURG,
    libc::SIGIO,
    libc::SIGXFSZ,
    libc::SIGXCPU,
    libc::SIGHUP,
    libc::SIGALRM,
    libc::SIGUSR2,
    libc::SIGPROF,
    libc::SIGVTALRM,
    libc::SIGTRAP,
    libc::SIGSTKFLT,
    libc::SIGPWR,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

const FATAL: &[i32] = &[
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSYS,
];

extern "C" fn counted(sig: i32) {
    if let Some(c) = COUNTS.get(sig as usize) {
        c.fetch_add(1, Relaxed);
    }
    if sig == libc::SIGINT || sig == libc::SIGTERM {
        STOP.store(true, Relaxed);
    }
}

extern "C" fn fatal(sig: i32) {
    let msg: &[u8] = match sig {
        libc::SIGSEGV => {
            b"zcopy-fuzz: SIGSEGV: the fuzzer's own memory was corrupted or a pointer escaped\n"
        }
        libc::SIGBUS => b"zcopy-fuzz: SIGBUS: the fuzzer touched a mapping that lost its pages\n",
        _ => b"zcopy-fuzz: fatal signal (SIGILL, SIGFPE or SIGSYS)\n",
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(FAULT_EXIT);
    }
}

fn install(sig: i32, handler: extern "C" fn(i32), flags: i32) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Installs every handler. Call before any thread is started.
pub fn install_all() {
    // No SA_RESTART: a kicked blocking call returns EINTR.
    install(KICK, counted, 0);
    for &s in WATCHED {
        install(s, counted, libc::SA_RESTART);
    }
    install(libc::SIGINT, counted, libc::SA_RESTART);
    install(libc::SIGTERM, counted, libc::SA_RESTART);
    for &s in FATAL {
        install(s, fatal, libc::SA_RESETHAND);
    }
}

/// Whether SIGINT or SIGTERM asked the run to stop.
pub fn stop_requested() -> bool {
    STOP.load(Relaxed)
}

/// How often `sig` arrived.
pub fn count(sig: i32) -> u64 {
    COUNTS.get(sig as usize).map_or(0, |c| c.load(Relaxed))
}

/// The unexpected signals that arrived: (name, count).
pub fn unexpected() -> Vec<(String, u64)> {
    WATCHED
        .iter()
        .filter(|&&s| count(s) > 0)
        .map(|&s| (name(s), count(s)))
        .collect()
}

/// A signal's name.
pub fn name(sig: i32) -> String {
    // SAFETY: strsignal returns a static or thread-local string.
    let p = unsafe { libc::strsignal(sig) };
    if p.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: a NUL-terminated C string.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
    format!("{s} ({sig})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_signals_are_counted_and_reported() {
        install(libc::SIGUSR2, counted, libc::SA_RESTART);
        let before = count(libc::SIGUSR2);
        // SAFETY: raising a signal we handle.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(count(libc::SIGUSR2), before + 1);
        assert!(unexpected()
            .iter()
            .any(|(n, c)| n.contains("12") && *c >= 1));
    }
}
