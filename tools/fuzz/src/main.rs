//! `zcopy-fuzz`: the ioctl fuzzer of `/dev/zcopy`. Run it as root in the
//! VM, with the module loaded (and, for the wire, `tools/harness/net.sh`
//! run first):
//!
//! ```text
//! zcopy-fuzz [--seed N] [--calls N] [--secs S] [--threads N] [--no-net]
//!            [--move-nics] [--no-fork] [--no-mem] [--strict-errno]
//!            [--settle S] [--dir PATH] [--verbose]
//!
//! make vm KERNEL=test CMD='zcopy-fuzz --seed 1 --calls 20000'
//! make vm KERNEL=test CMD='sh -c "$$PWD/tools/harness/net.sh && zcopy-fuzz --secs 600 --threads 6"'
//! ```
//!
//! Worker threads (`--threads`, default 4) call every ioctl of the ABI and
//! `read(2)` on their own and on shared zcopy fds (the module has no
//! `poll` or `mmap`), about half the time with valid arguments over real
//! resources (regions of anonymous, huge-page, shmem, file-backed and
//! read-only memory, a few of them mapped for the DMA engine, which
//! `ZC_IOC_DMA_READ` (about 1 call in 40) reads within a fifth of the
//! engine's time; TCP and UDP over loopback, through a veth pair to
//! another namespace, over the e1000e wire to `zrx`, into the dummy
//! device; a file on ext4 or tmpfs for sendfile) and otherwise with one to
//! three things broken: edge lengths and offsets, reserved fields, unknown
//! flags, wild pointers (NULL, small, `PROT_NONE`, holes, kernel and
//! non-canonical addresses, misaligned and guard-page-cut buffers), other
//! contexts' and stale region ids, wrong, closed and huge fds, unknown
//! commands and wrong sizes. Meanwhile other threads remap and `madvise`
//! the memory under the regions, truncate the file, replace sockets,
//! interrupt blocking calls with signals, fork children that use the fds
//! and kill them with `SIGKILL`, and take the fuzzer's own veth pair down
//! and up, through namespaces, deleted and recreated (`--no-net` skips
//! that; `--move-nics` adds net.sh's e1000e, restored at the end).
//!
//! `--seed` fixes each thread's choices (what the threads do to each other
//! is not reproducible). The run stops after `--calls` calls (default
//! 10000) or `--secs` seconds. It then closes every fd, reaps every child,
//! removes the lab, and waits (`--settle`, default 10 s) for the module's
//! counters to return to what they were at the start: debugfs
//! `/sys/kernel/debug/zcopy/stats` (open contexts, regions, pinned,
//! mapped and charged pages, outstanding sends, held page-cache pages),
//! the same through `ZC_IOC_STATS`, this process's `VmPin`, and a
//! `RLIMIT_MEMLOCK` probe for leaked per-user charges.
//!
//! It prints `zcopy-fuzz: calls=N secs=S seed=X`, one line per call with
//! a count per errno, what was disturbed, the findings and the counters,
//! and exits 1 if: a counter did not come back (each is named); a signal
//! arrived that the fuzzer does not send itself (`SIGPIPE` above all); a
//! call succeeded that the ABI says must fail, returned impossible
//! output, or completion records did not match the sends; or, with
//! `--strict-errno`, a call failed with an errno `Documentation/abi.rst`
//! does not document for it or with another errno than the ABI decides
//! (without it those are printed only). Exit 2: it could not start.
//!
//! `ZCOPY_FUZZ_DEVICE=/dev/null zcopy-fuzz --no-net` runs the fuzzer's own
//! machinery (threads, disturbances, children, teardown) without the
//! module, e.g. on a host: every ioctl then fails `ENOTTY`, so the verdict
//! means nothing, but a crash or a hang of the fuzzer shows.

mod args;
mod child;
mod counters;
mod disturb;
mod fds;
mod ioctls;
mod net;
mod opts;
mod pool;
mod ptrs;
mod rng;
mod signals;
mod state;
mod tally;
mod worker;

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::ExitCode,
    sync::{atomic::Ordering::Relaxed, Mutex},
    time::{Duration, Instant},
};

use crate::{
    counters::Probe,
    fds::{Files, Zoo},
    net::{Sink, Socks, Targets},
    opts::Opts,
    pool::Pool,
    ptrs::Wild,
    rng::Rng,
    state::{Ifaces, Shared, ZFd},
    tally::{Findings, Tally},
};

fn main() -> ExitCode {
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", opts::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("zcopy-fuzz: {e}\n{}", opts::USAGE);
            return ExitCode::from(2);
        }
    };
    signals::install_all();
    match run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zcopy-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

/// The run; `Ok(false)` if it found something.
fn run(opts: Opts) -> Result<bool, String> {
    let dev = fds::device_path();
    if !dev.exists() {
        return Err(format!(
            "{} does not exist: is zcopy.ko loaded?",
            dev.display()
        ));
    }
    // The baseline, before anything of ours is open.
    let base = counters::snapshot();
    if base.0.is_empty() {
        return Err("cannot read any counter (debugfs, ZC_IOC_STATS)".into());
    }
    if !base.0.keys().any(|k| k.starts_with("debugfs/")) {
        eprintln!(
            "zcopy-fuzz: warning: {} unreadable; checking ZC_IOC_STATS and VmPin only",
            counters::DEBUGFS_STATS
        );
    }
    let probe0 = counters::memlock_probe();
    let max_pinned = counters::module_stats().map_or(65536, |s| s.max_pinned_pages);

    let files = Files::create(&opts.dirs).map_err(|e| format!("data files: {e}"))?;
    let wild = Wild::new().map_err(|e| format!("wild memory: {e}"))?;
    let pool = Pool::new(files.memfd, files.map_rw).map_err(|e| format!("buffer pool: {e}"))?;
    let zoo = Zoo::new(&files);
    let mut rng = Rng::derive(opts.seed, 0);

    let lab = if opts.no_net {
        disturb::net::Lab::none()
    } else {
        let lab = disturb::net::Lab::setup(opts.move_nics);
        if !lab.active {
            eprintln!(
                "zcopy-fuzz: warning: could not make the lab ({} / {}): no network disturbances",
                net::LAB_IF,
                net::LAB_NS
            );
        }
        lab
    };
    let mut sinks = Vec::new();
    let mut targets = Targets::default();
    let lo = Sink::start(
        None,
        &[
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    )
    .map_err(|e| format!("loopback receiver: {e}"))?;
    for &(t, u) in &lo.addrs {
        if t.is_ipv4() {
            targets.lo = Some((t, u));
        } else {
            targets.lo6 = Some((t, u));
        }
    }
    sinks.push(lo);
    if lab.active {
        if let Ok(s) = Sink::start(Some(net::LAB_NS), &[IpAddr::V4(net::LAB_REMOTE)]) {
            targets.lab = s.addrs.first().copied();
            sinks.push(s);
        }
    }
    if net::netns_exists(net::WIRE_NS) {
        if let Ok(s) = Sink::start(Some(net::WIRE_NS), &[IpAddr::V4(net::WIRE_RX)]) {
            targets.wire = s.addrs.first().copied();
            sinks.push(s);
        }
    }
    targets.dummy = net::ifindex(net::DUMMY_IF) > 0;
    let lab_udp = targets.lab.map_or(9, |a| a.1.port());
    let wire_udp = targets.wire.map_or(9, |a| a.1.port());
    let routes = format!(
        "loopback{}{}{}",
        if targets.lab.is_some() { " lab" } else { "" },
        if targets.wire.is_some() { " wire" } else { "" },
        if targets.dummy { " dummy" } else { "" },
    );
    let socks = Socks::new(targets, &mut rng);

    let (settle, strict, seed) = (opts.settle, opts.strict_errno, opts.seed);
    let mut shared = Vec::new();
    for nonblock in [true, false] {
        let fd = fds::open_zcopy(nonblock).map_err(|e| format!("{}: {e}", dev.display()))?;
        shared.push(ZFd {
            fd,
            ctx: shared.len() as u64 + 1,
            nonblock,
        });
    }
    let sh = Shared {
        t0: Instant::now(),
        stop: false.into(),
        calls: 0.into(),
        shared,
        next_ctx: 100.into(),
        wild,
        pool,
        files,
        zoo,
        socks,
        ifaces: Ifaces::new(),
        book: Default::default(),
        engine: Default::default(),
        ledger: Default::default(),
        findings: Findings::new(opts.verbose),
        max_pinned,
        lab_udp,
        wire_udp,
        kickable: Mutex::new(Vec::new()),
        opts,
    };
    let o = &sh.opts;
    println!(
        "zcopy-fuzz: seed={:#x} threads={} calls={} secs={} routes: {routes}; data in {}",
        o.seed,
        o.threads,
        o.calls.map_or("-".into(), |c| c.to_string()),
        o.secs.map_or("-".into(), |s| s.to_string()),
        sh.files
            .send_path
            .parent()
            .map_or("?".into(), |p| p.display().to_string()),
    );

    let mut tally = Tally::default();
    let mut failed_workers = 0;
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for tid in 0..o.threads {
            let sh = &sh;
            workers.push(s.spawn(move || {
                let mut w = match worker::Worker::new(sh, tid) {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("zcopy-fuzz: worker {tid}: {e}");
                        return None;
                    }
                };
                let _kickable = Kickable::new(sh, tid);
                w.run();
                Some(w.tally.clone())
            }));
        }
        let mut disturbers = Vec::new();
        let seed = o.seed;
        let sh = &sh;
        disturbers.push(s.spawn(move || disturb::kick::run(sh, Rng::derive(seed, 1001))));
        disturbers.push(s.spawn(move || disturb::run_sockets(sh, Rng::derive(seed, 1002))));
        if !o.no_mem {
            disturbers.push(s.spawn(move || disturb::mem::run(sh, Rng::derive(seed, 1003))));
        }
        if !o.no_fork {
            disturbers.push(s.spawn(move || disturb::fork::run(sh, Rng::derive(seed, 1004))));
        }
        if !o.no_net {
            let lab = &lab;
            disturbers.push(s.spawn(move || disturb::net::run(sh, lab, Rng::derive(seed, 1005))));
        }
        // Wait for the workers; once the run is over, kick them out of
        // any blocking call until they have all returned.
        while workers.iter().any(|w| !w.is_finished()) {
            let late = o.secs.is_some_and(|s| sh.t0.elapsed().as_secs_f64() >= s);
            if late || signals::stop_requested() {
                sh.stop.store(true, Relaxed);
            }
            if sh.stopping() {
                disturb::kick::kick(sh, None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sh.stop.store(true, Relaxed);
        for w in workers {
            match w.join() {
                Ok(Some(t)) => tally.merge(&t),
                _ => failed_workers += 1,
            }
        }
        for d in disturbers {
            if d.join().is_err() {
                failed_workers += 1;
            }
        }
    });
    let secs = sh.t0.elapsed().as_secs_f64();

    // Close everything: the shared fds (after reading what is ready), the
    // sockets (reset, so queued sends are freed), the receivers, the lab.
    for z in &sh.shared {
        let mut buf = vec![zcopy::abi::ZcCompletion::default(); 64];
        let size = size_of::<zcopy::abi::ZcCompletion>();
        for _ in 0..64 {
            if !z.nonblock {
                break;
            }
            // SAFETY: reading into our buffer of 64 records.
            let n = unsafe { libc::read(z.fd, buf.as_mut_ptr().cast(), buf.len() * size) };
            if n <= 0 {
                break;
            }
            for r in &buf[..n as usize / size] {
                sh.ledger.record(r, z.ctx, &sh.findings);
            }
        }
        // SAFETY: our fd.
        unsafe { libc::close(z.fd) };
    }
    sh.socks.close();
    for s in &mut sinks {
        s.stop();
    }
    lab.teardown();
    let unread = sh.ledger.unread();
    let (records, foreign) = (
        sh.ledger.records.load(Relaxed),
        sh.ledger.foreign.load(Relaxed),
    );
    let findings = sh.findings.list();
    drop(sh);

    let (left, waited) = counters::wait_back(&base, Duration::from_secs_f64(settle));
    let probe1 = match probe0 {
        Probe::Clean => counters::memlock_probe(),
        p => p,
    };
    Ok(report(Report {
        tally: &tally,
        secs,
        findings: &findings,
        left: &left,
        waited,
        probe0,
        probe1,
        records,
        foreign,
        unread,
        failed_workers,
        strict,
        seed,
    }))
}

/// Findings that do not fail the run printed at most.
const MAX_NOTES: usize = 30;

/// A worker's entry in the list of threads the kicker may signal, for as
/// long as it lives: removed when dropped, even by a panic, so no signal
/// ever goes to a thread that is gone.
struct Kickable<'a>(&'a Shared, usize);

impl<'a> Kickable<'a> {
    fn new(sh: &'a Shared, tid: usize) -> Self {
        // SAFETY: pthread_self(3).
        let me = unsafe { libc::pthread_self() };
        sh.kickable().push((tid, me));
        Self(sh, tid)
    }
}

impl Drop for Kickable<'_> {
    fn drop(&mut self) {
        self.0.kickable().retain(|&(t, _)| t != self.1);
    }
}

struct Report<'a> {
    tally: &'a Tally,
    secs: f64,
    seed: u64,
    strict: bool,
    findings: &'a [(tally::Kind, String, u64, String)],
    left: &'a [(String, i64, Option<i64>)],
    waited: Duration,
    probe0: Probe,
    probe1: Probe,
    records: u64,
    foreign: u64,
    unread: usize,
    failed_workers: usize,
}

/// Prints the summary; true if the run passed.
fn report(r: Report<'_>) -> bool {
    let strict = r.strict;
    println!(
        "zcopy-fuzz: calls={} secs={:.1} seed={:#x}",
        r.tally.total(),
        r.secs,
        r.seed
    );
    for l in r.tally.lines() {
        println!("{l}");
    }
    println!("  disturbed: {}", disturb::summary());
    println!(
        "  records: {} read ({} not the workers'), {} sends' records never read",
        r.records, r.foreign, r.unread
    );
    let mut fail = Vec::new();
    // Every finding that fails the run; of the others, the most frequent.
    let (fatal, mut notes): (Vec<_>, Vec<_>) = r.findings.iter().partition(|f| f.0.fatal(strict));
    notes.sort_by_key(|f| std::cmp::Reverse(f.2));
    let shown = notes.len().min(MAX_NOTES);
    for (kind, key, n, ex) in fatal.iter().chain(&notes[..shown]) {
        let fatal = kind.fatal(strict);
        println!(
            "  {} {}: {key} (x{n})\n      e.g. {ex}",
            if fatal { "FINDING" } else { "note" },
            kind.name()
        );
        if fatal {
            fail.push(format!("{}: {key}", kind.name()));
        }
    }
    if notes.len() > shown {
        println!(
            "  ... and {} more notes (--verbose prints each as it happens)",
            notes.len() - shown
        );
    }
    if r.left.is_empty() {
        println!(
            "  counters: back to the baseline ({:.1} s after closing)",
            r.waited.as_secs_f64()
        );
    } else {
        for (k, b, n) in r.left {
            let now = n.map_or("unreadable".into(), |n| n.to_string());
            println!(
                "  COUNTER {k}: {b} at the start, {now} after {:.1} s",
                r.waited.as_secs_f64()
            );
            fail.push(format!("counter {k} did not come back ({b} -> {now})"));
        }
    }
    match (r.probe0, r.probe1) {
        (Probe::Clean, Probe::Clean) => {
            println!("  memlock probe (uid {}): clean", counters::NOBODY)
        }
        (Probe::Clean, p) => {
            println!(
                "  MEMLOCK probe (uid {}): {p:?} at the end, clean at the start",
                counters::NOBODY
            );
            fail.push(format!(
                "memlock charge of uid {} not given back ({p:?})",
                counters::NOBODY
            ));
        }
        (p, _) => println!("  memlock probe skipped: {p:?} at the start"),
    }
    for (name, n) in signals::unexpected() {
        println!("  SIGNAL {name} x{n}");
        fail.push(format!("unexpected signal {name}"));
    }
    if r.failed_workers > 0 {
        fail.push(format!(
            "{} thread(s) could not start or panicked",
            r.failed_workers
        ));
    }
    if fail.is_empty() {
        println!("zcopy-fuzz: PASS");
        true
    } else {
        let more = fail.len().saturating_sub(5);
        fail.truncate(5);
        if more > 0 {
            fail.push(format!("and {more} more"));
        }
        println!("zcopy-fuzz: FAIL: {}", fail.join("; "));
        false
    }
}
