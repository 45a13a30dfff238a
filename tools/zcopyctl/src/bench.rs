//! `zcopyctl bench`: every way Linux offers to send bytes, side by side.
//!
//! For each route, message size and method, a sample is a run of sends of
//! `size` bytes taken in turn from one data file (or the same bytes in a
//! buffer), for a fixed time, timed by the wall clock and by the sending
//! thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`). Waiting for and reading
//! completions is inside the timed part. Where there is a receiver it
//! hashes what it gets, and the sample is checked against the hash of what
//! was sent.
//!
//! Routes (the network of `tools/harness/net.sh`):
//! - `udp-dummy`: UDP datagrams out of the dummy device, nobody receives:
//!   the pure cost of transmitting;
//! - `tcp-veth`: a TCP stream over the veth pair into namespace `zrx`, where
//!   a receiver thread reads and discards (after hashing).

use std::{
    fs::File,
    io::{self, Read},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::{AsRawFd, RawFd},
    path::{Path, PathBuf},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats;
use zcopy::{abi, device::Device};

/// A way of sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Method {
    /// `pread` into a buffer, `write` it: two copies.
    ReadWrite,
    /// `write` from a shared mapping of the file: one copy.
    MmapWrite,
    /// `sendfile(2)`.
    Sendfile,
    /// `splice(2)` file → pipe → socket.
    Splice,
    /// `send(MSG_ZEROCOPY)`, draining the error queue.
    MsgZerocopy,
    /// io_uring `SEND_ZC` from a registered buffer to a registered socket,
    /// 32 sends a submission (linked in order on TCP), on a
    /// `SINGLE_ISSUER | DEFER_TASKRUN` ring.
    IoUringSendZc,
    /// zcopy `ZC_IOC_SEND` from a registered region.
    ZcopySend,
    /// zcopy `ZC_IOC_SEND_BATCH` from a registered region, 32 sends a
    /// call.
    ZcopySendBatch,
    /// zcopy `ZC_IOC_SENDFILE` from the page cache.
    ZcopySendfile,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::ReadWrite,
        Method::MmapWrite,
        Method::Sendfile,
        Method::Splice,
        Method::MsgZerocopy,
        Method::IoUringSendZc,
        Method::ZcopySend,
        Method::ZcopySendBatch,
        Method::ZcopySendfile,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::ReadWrite => "read+write",
            Method::MmapWrite => "mmap+write",
            Method::Sendfile => "sendfile",
            Method::Splice => "splice",
            Method::MsgZerocopy => "MSG_ZEROCOPY",
            Method::IoUringSendZc => "io_uring SEND_ZC",
            Method::ZcopySend => "zcopy send",
            Method::ZcopySendBatch => "zcopy send batch",
            Method::ZcopySendfile => "zcopy sendfile",
        }
    }

    /// Whether the kernel reports, per send, if it copied.
    pub fn reports_copies(self) -> bool {
        matches!(
            self,
            Method::MsgZerocopy
                | Method::IoUringSendZc
                | Method::ZcopySend
                | Method::ZcopySendBatch
                | Method::ZcopySendfile
        )
    }
}

/// Where the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Route {
    UdpDummy,
    TcpVeth,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::UdpDummy => "udp-dummy",
            Route::TcpVeth => "tcp-veth",
        }
    }

    /// The largest message the route takes (a UDP datagram is < 64 KiB).
    pub fn max_size(self) -> usize {
        match self {
            Route::UdpDummy => 32 * 1024,
            Route::TcpVeth => usize::MAX,
        }
    }
}

/// What to run.
pub struct Options {
    pub file: PathBuf,
    pub sizes: Vec<usize>,
    pub methods: Vec<Method>,
    pub routes: Vec<Route>,
    /// Seconds per sample, unless `sends` is set.
    pub secs: f64,
    /// A fixed number of sends per sample instead of a duration.
    pub sends: Option<u64>,
    pub reps: usize,
    pub progress: bool,
}

/// One timed run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub method: Method,
    pub route: Route,
    pub size: usize,
    pub rep: usize,
    pub sends: u64,
    pub bytes: u64,
    pub wall_s: f64,
    pub cpu_s: f64,
    /// Sends the kernel reported as copied (methods that report it).
    pub copied_sends: Option<u64>,
    /// Whether the receiver got exactly the bytes sent (routes with one).
    pub verified: Option<bool>,
    /// `CLOCK_MONOTONIC` seconds when the timed part began and ended (0 in
    /// reports from before they were recorded): a profile recorded with
    /// `perf record -k CLOCK_MONOTONIC` keeps the samples in between.
    #[serde(default)]
    pub mono_start: f64,
    #[serde(default)]
    pub mono_end: f64,
}

/// The repetitions of one (method, route, size), summarised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub method: Method,
    pub route: Route,
    pub size: usize,
    pub mb_per_s: f64,
    pub cpu_ns_per_byte: f64,
    /// (max - min) / median of the CPU per byte over the repetitions.
    pub spread: f64,
    /// CPU time per send, ns (for the break-even fit).
    pub cpu_ns_per_send: f64,
    pub copied_fraction: Option<f64>,
    pub verified: Option<bool>,
}

/// A zero-copy method's break-even size against `read+write`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BreakEven {
    pub method: Method,
    pub route: Route,
    /// From lines fitted to CPU per send against size.
    pub fitted: Option<f64>,
    /// Where the measured CPU-per-byte curves cross.
    pub measured: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub kernel: String,
    pub cpus: usize,
    pub samples: Vec<Sample>,
    pub points: Vec<Point>,
    pub break_even: Vec<BreakEven>,
}

/// The methods that avoid copies, compared against `read+write`.
const ZERO_COPY: [Method; 7] = [
    Method::Sendfile,
    Method::Splice,
    Method::MsgZerocopy,
    Method::IoUringSendZc,
    Method::ZcopySend,
    Method::ZcopySendBatch,
    Method::ZcopySendfile,
];

/// Medians and spreads of the samples, and the break-even sizes.
pub fn summarise(samples: &[Sample]) -> (Vec<Point>, Vec<BreakEven>) {
    let mut points = Vec::new();
    let mut keys: Vec<(Method, Route, usize)> = samples
        .iter()
        .map(|s| (s.method, s.route, s.size))
        .collect();
    keys.dedup();
    keys.sort_by_key(|&(m, r, n)| (r as u8, m as u8, n));
    keys.dedup();
    for (method, route, size) in keys {
        let reps: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.method == method && s.route == route && s.size == size && s.bytes > 0)
            .collect();
        if reps.is_empty() {
            continue;
        }
        let cpu_pb: Vec<f64> = reps
            .iter()
            .map(|s| s.cpu_s * 1e9 / s.bytes as f64)
            .collect();
        let mbps: Vec<f64> = reps
            .iter()
            .map(|s| s.bytes as f64 / s.wall_s / 1e6)
            .collect();
        let per_send: Vec<f64> = reps
            .iter()
            .map(|s| s.cpu_s * 1e9 / s.sends as f64)
            .collect();
        let copied = method.reports_copies().then(|| {
            let c: u64 = reps.iter().filter_map(|s| s.copied_sends).sum();
            let n: u64 = reps.iter().map(|s| s.sends).sum();
            c as f64 / n.max(1) as f64
        });
        let verified = reps.iter().filter_map(|s| s.verified).reduce(|a, b| a && b);
        points.push(Point {
            method,
            route,
            size,
            mb_per_s: stats::median(&mbps).unwrap_or(0.0),
            cpu_ns_per_byte: stats::median(&cpu_pb).unwrap_or(0.0),
            spread: stats::spread(&cpu_pb).unwrap_or(0.0),
            cpu_ns_per_send: stats::median(&per_send).unwrap_or(0.0),
            copied_fraction: copied,
            verified,
        });
    }
    let mut be = Vec::new();
    for route in [Route::UdpDummy, Route::TcpVeth] {
        let curve = |m: Method| -> Vec<&Point> {
            points
                .iter()
                .filter(|p| p.method == m && p.route == route)
                .collect()
        };
        let base = curve(Method::ReadWrite);
        if base.is_empty() {
            continue;
        }
        let line = |c: &[&Point]| {
            stats::fit(
                &c.iter()
                    .map(|p| (p.size as f64, p.cpu_ns_per_send))
                    .collect::<Vec<_>>(),
            )
        };
        let per_byte = |c: &[&Point]| -> Vec<(f64, f64)> {
            c.iter()
                .map(|p| (p.size as f64, p.cpu_ns_per_byte))
                .collect()
        };
        for m in ZERO_COPY {
            let c = curve(m);
            if c.is_empty() {
                continue;
            }
            be.push(BreakEven {
                method: m,
                route,
                fitted: line(&base)
                    .zip(line(&c))
                    .and_then(|(w, z)| stats::break_even(w, z)),
                measured: stats::crossing(&per_byte(&base), &per_byte(&c)),
            });
        }
    }
    (points, be)
}

/// The data every method sends from: the file, mapped, and a copy of it in
/// anonymous memory for the methods that send from a buffer.
struct Data {
    file: File,
    map: *const u8,
    len: usize,
    buf: Vec<u8>,
}

impl Data {
    fn open(path: &Path, max_size: usize) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len() as usize;
        ensure!(
            len >= max_size && len.is_multiple_of(max_size),
            "{}: {len} bytes, want a multiple of the largest size {max_size}",
            path.display()
        );
        // SAFETY: a fresh read-only shared mapping of a file we hold open.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error()).context("mmap");
        }
        let mut buf = Vec::with_capacity(len);
        file.read_to_end(&mut buf)?;
        ensure!(buf.len() == len, "short read of {}", path.display());
        Ok(Self {
            file,
            map: map.cast(),
            len,
            buf,
        })
    }

    fn mapped(&self) -> &[u8] {
        // SAFETY: `map` is a live mapping of `len` bytes (until `drop`).
        unsafe { std::slice::from_raw_parts(self.map, self.len) }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped.
        unsafe { libc::munmap(self.map as *mut _, self.len) };
    }
}

/// A clock's time in seconds.
fn clock(id: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain system call writing into `ts`.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn thread_cpu() -> f64 {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `CLOCK_MONOTONIC` in seconds: the clock `perf record -k CLOCK_MONOTONIC`
/// stamps its samples with.
fn monotonic() -> f64 {
    clock(libc::CLOCK_MONOTONIC)
}

fn last_err<T>(what: &str) -> Result<T> {
    Err(io::Error::last_os_error()).context(what.to_string())
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// A receiver thread in namespace `zrx`: accepts one connection, reads to
/// the end and reports (bytes, FNV-1a hash). Named `zc-recv`, so that a
/// profile of the sending (main) thread can leave it out.
fn receiver(port: u16) -> Result<mpsc::Receiver<Result<(u64, u64)>>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("zc-recv".into())
        .spawn(move || {
            let run = || -> Result<(u64, u64)> {
                crate::enter_netns("zrx")?;
                let l = TcpListener::bind(("10.99.2.2", port))?;
                let _ = ready_tx.send(());
                let (mut c, _) = l.accept()?;
                let mut buf = vec![0u8; 256 * 1024];
                let (mut n, mut h) = (0u64, FNV0);
                loop {
                    let k = c.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    h = fnv(h, &buf[..k]);
                    n += k as u64;
                }
                Ok((n, h))
            };
            let _ = tx.send(run());
        })?;
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .context("receiver did not start")?;
    Ok(rx)
}

enum Sock {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Udp(s) => s.as_raw_fd(),
            Sock::Tcp(s) => s.as_raw_fd(),
        }
    }
}

fn write_all(fd: RawFd, mut p: &[u8]) -> Result<()> {
    while !p.is_empty() {
        // SAFETY: `p` is valid for reads of `p.len()` bytes.
        let n = unsafe { libc::write(fd, p.as_ptr().cast(), p.len()) };
        if n < 0 {
            return last_err("write");
        }
        p = &p[n as usize..];
    }
    Ok(())
}

/// Per-method state kept across the sends of one sample.
struct Sender<'a> {
    method: Method,
    data: &'a Data,
    sock: RawFd,
    scratch: Vec<u8>,
    pipe: [RawFd; 2],
    zc: Option<(Device, u32)>,
    ring: Option<io_uring::IoUring>,
    /// Completions still due: records, MSG_ZEROCOPY notifications, or
    /// io_uring CQEs (a result and a notification for each send).
    pending: u64,
    copied: u64,
    sent: u64,
    size: usize,
    /// io_uring results (not notifications) still due.
    results: u64,
    /// io_uring: the sends of the next submission, in order; on a stream
    /// socket, they stay here until every result is in (see [`ZcOp`]).
    uring_ops: Vec<ZcOp>,
    /// A stream socket: sends must stay in order.
    stream: bool,
    /// `ZcopySendBatch`: sends collected, not yet submitted.
    batch: Vec<abi::ZcSend>,
}

const MSG_ZEROCOPY: i32 = 0x4000000;
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;
/// io_uring `SEND_ZC` sends one submission carries (one `io_uring_enter`).
const RING_DEPTH: usize = 32;
/// io_uring submission queue entries (room for two submissions).
const RING_SQ: u32 = 2 * RING_DEPTH as u32;
/// io_uring completion queue entries: each send posts two CQEs (result and
/// notification), and notifications on TCP wait for the peer's ACK, so
/// room for the CQEs of 8 submissions keeps late notifications from
/// holding up sends. Never more CQEs are due than there is room for (no
/// overflow).
const RING_CQ: u64 = 16 * RING_DEPTH as u64;
/// `IORING_SEND_ZC_REPORT_USAGE`, `IORING_NOTIF_USAGE_ZC_COPIED`
/// (include/uapi/linux/io_uring.h; the io-uring crate keeps them private).
const IORING_SEND_ZC_REPORT_USAGE: u16 = 1 << 3;
const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
/// `IORING_ENTER_GETEVENTS`: under `DEFER_TASKRUN` only an enter with it
/// runs the ring's deferred task work, which posts the completions.
const IORING_ENTER_GETEVENTS: u32 = 1;
/// Rounds in a row resubmitting the rest of a TCP chain without a byte
/// going out, before giving up.
const RING_RETRIES: u32 = 100;

/// One io_uring `SEND_ZC`: bytes `[off + done, off + len)` of the data
/// are still to go; `res` is the result of its last submission.
#[derive(Clone, Copy, Debug)]
struct ZcOp {
    off: usize,
    len: usize,
    done: usize,
    res: Option<i32>,
}
/// Sends `ZcopySendBatch` collects for one `ZC_IOC_SEND_BATCH`: one system
/// call for many sends, as many as io_uring may have in flight
/// ([`RING_DEPTH`] a submission), and half the most the module takes
/// (`ZC_SEND_BATCH_MAX`).
const BATCH: usize = 32;
const _: () = assert!(BATCH <= abi::ZC_SEND_BATCH_MAX as usize);

impl<'a> Sender<'a> {
    fn new(method: Method, data: &'a Data, sock: RawFd, size: usize, stream: bool) -> Result<Self> {
        let mut s = Sender {
            method,
            data,
            sock,
            scratch: Vec::new(),
            pipe: [-1, -1],
            zc: None,
            ring: None,
            pending: 0,
            copied: 0,
            sent: 0,
            size,
            results: 0,
            uring_ops: Vec::new(),
            stream,
            batch: Vec::new(),
        };
        match method {
            Method::ReadWrite => s.scratch = vec![0u8; size],
            Method::Splice => {
                // SAFETY: plain system calls on fds we own.
                unsafe {
                    if libc::pipe2(s.pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                        return last_err("pipe");
                    }
                    libc::fcntl(s.pipe[1], libc::F_SETPIPE_SZ, size.max(65536) as i32);
                }
            }
            Method::MsgZerocopy => {
                let one: i32 = 1;
                // SAFETY: plain setsockopt with a valid int.
                let r = unsafe {
                    libc::setsockopt(
                        sock,
                        libc::SOL_SOCKET,
                        libc::SO_ZEROCOPY,
                        (&one as *const i32).cast(),
                        4,
                    )
                };
                if r != 0 {
                    return last_err("SO_ZEROCOPY");
                }
            }
            Method::IoUringSendZc => {
                // See "io_uring SEND_ZC" above `submit_ring`.
                let ring = io_uring::IoUring::builder()
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_cqsize(RING_CQ as u32)
                    .build(RING_SQ)
                    .context("io_uring setup (SINGLE_ISSUER | DEFER_TASKRUN)")?;
                let iov = libc::iovec {
                    iov_base: data.buf.as_ptr() as *mut _,
                    iov_len: data.buf.len(),
                };
                // SAFETY: the buffer outlives the ring (both live in this
                // sample; the ring is dropped first, in `Sender`'s drop).
                unsafe { ring.submitter().register_buffers(&[iov])? };
                // The socket as fixed file 0: no file lookup and reference
                // per send.
                ring.submitter().register_files(&[sock])?;
                s.uring_ops.reserve_exact(RING_DEPTH);
                s.ring = Some(ring);
            }
            Method::ZcopySend | Method::ZcopySendBatch => {
                let d = Device::open()?;
                let r = d.register(&data.buf, abi::ZC_REGISTER_READONLY, 0)?;
                s.zc = Some((d, r.id));
                if method == Method::ZcopySendBatch {
                    s.batch.reserve_exact(BATCH);
                }
            }
            Method::ZcopySendfile => s.zc = Some((Device::open()?, 0)),
            Method::MmapWrite | Method::Sendfile => {}
        }
        Ok(s)
    }

    /// Sends bytes `[off, off + len)` of the data.
    fn send(&mut self, off: usize, len: usize, tag: u64) -> Result<()> {
        let fd = self.sock;
        match self.method {
            Method::ReadWrite => {
                // SAFETY: `scratch` has room for `len` bytes.
                let n = unsafe {
                    libc::pread(
                        self.data.file.as_raw_fd(),
                        self.scratch.as_mut_ptr().cast(),
                        len,
                        off as i64,
                    )
                };
                ensure!(n == len as isize, "pread");
                write_all(fd, &self.scratch[..len])?;
            }
            Method::MmapWrite => write_all(fd, &self.data.mapped()[off..off + len])?,
            Method::Sendfile => {
                let mut o = off as i64;
                let end = (off + len) as i64;
                while o < end {
                    // SAFETY: plain system call.
                    let n = unsafe {
                        libc::sendfile(fd, self.data.file.as_raw_fd(), &mut o, (end - o) as usize)
                    };
                    if n <= 0 {
                        return last_err("sendfile");
                    }
                }
            }
            Method::Splice => {
                let mut o = off as i64;
                let mut left = len;
                while left > 0 {
                    // SAFETY: plain system calls on fds we own.
                    let n = unsafe {
                        libc::splice(
                            self.data.file.as_raw_fd(),
                            &mut o,
                            self.pipe[1],
                            std::ptr::null_mut(),
                            left,
                            libc::SPLICE_F_MOVE,
                        )
                    };
                    if n <= 0 {
                        return last_err("splice in");
                    }
                    let mut m = n as usize;
                    while m > 0 {
                        // SAFETY: as above.
                        let k = unsafe {
                            libc::splice(
                                self.pipe[0],
                                std::ptr::null_mut(),
                                fd,
                                std::ptr::null_mut(),
                                m,
                                libc::SPLICE_F_MOVE,
                            )
                        };
                        if k <= 0 {
                            return last_err("splice out");
                        }
                        m -= k as usize;
                    }
                    left -= n as usize;
                }
            }
            Method::MsgZerocopy => {
                let p = &self.data.buf[off..off + len];
                loop {
                    // SAFETY: `p` is valid, and stays untouched until its
                    // notification (the data buffer is never written).
                    let n = unsafe { libc::send(fd, p.as_ptr().cast(), len, MSG_ZEROCOPY) };
                    if n == len as isize {
                        break;
                    }
                    let e = io::Error::last_os_error();
                    if n < 0 && e.raw_os_error() == Some(libc::ENOBUFS) {
                        // Too many notifications outstanding: take some.
                        self.drain_errqueue(true)?;
                        continue;
                    }
                    bail!("send(MSG_ZEROCOPY) returned {n}: {e}");
                }
                self.pending += 1;
                if self.pending >= 256 {
                    self.drain_errqueue(false)?;
                }
            }
            Method::IoUringSendZc => {
                self.uring_ops.push(ZcOp {
                    off,
                    len,
                    done: 0,
                    res: None,
                });
                if self.uring_ops.len() == RING_DEPTH {
                    self.submit_ring()?;
                }
            }
            Method::ZcopySend | Method::ZcopySendfile => loop {
                let (d, region) = self.zc.as_ref().expect("zcopy");
                let r = if self.method == Method::ZcopySend {
                    d.send(fd, *region, off as u64, len as u64, tag)
                } else {
                    d.sendfile(fd, self.data.file.as_raw_fd(), off as u64, len as u64, tag)
                        .map(|r| r.sent)
                };
                match r {
                    Ok(n) => {
                        ensure!(n == len as u64, "short send: {n} of {len}");
                        self.pending += 1;
                        break;
                    }
                    Err(e)
                        if e.downcast_ref::<io::Error>().and_then(|e| e.raw_os_error())
                            == Some(libc::ENOBUFS) =>
                    {
                        self.read_records()?;
                    }
                    Err(e) => return Err(e),
                }
            },
            Method::ZcopySendBatch => {
                let (_, region) = self.zc.as_ref().expect("zcopy");
                self.batch.push(abi::ZcSend {
                    fd,
                    region: *region,
                    offset: off as u64,
                    len: len as u64,
                    tag,
                    ..Default::default()
                });
                if self.batch.len() == BATCH {
                    self.submit_batch()?;
                }
            }
        }
        self.sent += 1;
        Ok(())
    }

    /// Submits the sends `ZcopySendBatch` has collected, in order, each
    /// exactly once: as `ZcopySend` does with one, it reads records when
    /// the module answers ENOBUFS (for the whole call, or for an entry
    /// after the first) and then submits the entries not yet accepted. A
    /// short send fails the sample, as in `ZcopySend`.
    fn submit_batch(&mut self) -> Result<()> {
        let mut batch = std::mem::take(&mut self.batch);
        let mut first = 0;
        while first < batch.len() {
            let (d, _) = self.zc.as_ref().expect("zcopy");
            let error = match d.send_batch(&mut batch[first..]) {
                Ok(r) => {
                    for s in &batch[first..first + r.accepted] {
                        ensure!(s.sent == s.len, "short send: {} of {}", s.sent, s.len);
                        self.pending += 1;
                    }
                    first += r.accepted;
                    match r.error {
                        None if first < batch.len() => {
                            bail!("ZC_IOC_SEND_BATCH stopped at entry {first} with no error")
                        }
                        None => break,
                        Some(e) => anyhow::Error::new(e).context(format!(
                            "ZC_IOC_SEND_BATCH, entry {first} of {}",
                            batch.len()
                        )),
                    }
                }
                Err(e) => e,
            };
            match error
                .downcast_ref::<io::Error>()
                .and_then(|e| e.raw_os_error())
            {
                Some(libc::ENOBUFS) => self.read_records()?,
                // A signal stopped an entry after the first; the module
                // cannot restart the call, so submit the rest again.
                Some(libc::EINTR) => {}
                _ => return Err(error),
            }
        }
        batch.clear();
        self.batch = batch;
        Ok(())
    }

    /// Takes the MSG_ZEROCOPY notifications queued; waits for one if `wait`.
    fn drain_errqueue(&mut self, wait: bool) -> Result<()> {
        let mut waited = !wait;
        loop {
            let mut control = [0u8; 128];
            // SAFETY: a zeroed msghdr is valid; fields set below.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = control.len();
            // SAFETY: `msg` points at `control`, which outlives the call.
            let n = unsafe {
                libc::recvmsg(self.sock, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EAGAIN) {
                    return Err(e).context("recvmsg(MSG_ERRQUEUE)");
                }
                if waited {
                    return Ok(());
                }
                let mut pfd = libc::pollfd {
                    fd: self.sock,
                    events: 0,
                    revents: 0,
                };
                // SAFETY: one valid pollfd. POLLERR is always reported.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
                waited = true;
                continue;
            }
            // SAFETY: walking the control messages the kernel wrote.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    let ok = ((*c).cmsg_level == libc::SOL_IP
                        && (*c).cmsg_type == libc::IP_RECVERR)
                        || ((*c).cmsg_level == libc::SOL_IPV6
                            && (*c).cmsg_type == libc::IPV6_RECVERR);
                    if ok {
                        let ee = &*(libc::CMSG_DATA(c) as *const libc::sock_extended_err);
                        if ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                            let done = u64::from(ee.ee_data.wrapping_sub(ee.ee_info)) + 1;
                            self.pending = self.pending.saturating_sub(done);
                            if ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED != 0 {
                                self.copied += done;
                            }
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            waited = true;
        }
    }

    // io_uring SEND_ZC, configured as a strong user would (the project's
    // issue: "32 or more sends in flight on both routes, registered
    // buffers and files, SINGLE_ISSUER | DEFER_TASKRUN"). The ring is set up
    // with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (one
    // thread submits; completion work runs only when that thread asks for
    // events, in `io_uring_enter` with GETEVENTS, not as interrupting task
    // work), 64 SQ and 512 CQ entries; the data is one registered buffer
    // and the socket registered file 0. Sends are collected 32
    // (`RING_DEPTH`) at a time and submitted with one `io_uring_enter`,
    // which also runs the deferred work; CQEs are reaped in bulk from the
    // ring. Every send asks for IORING_SEND_ZC_REPORT_USAGE, so its
    // notification says whether the kernel copied. On UDP the 32 go
    // unlinked, and later submissions follow without waiting, as long as
    // the CQ has room for every CQE due. On TCP the 32 are linked
    // (IOSQE_IO_LINK, MSG_WAITALL) so the kernel sends them in order, and
    // the enter that submits them waits for their results: a link cannot
    // span submissions, and unlinked sends to one stream may go out of
    // order (one waiting for socket space is retried by poll while the next
    // goes inline). How this compares with the kernel's selftest
    // (tools/testing/selftests/net/io_uring_zerocopy_tx.c, default mode
    // ZC_FIXED): it too sends with MSG_WAITALL from a registered buffer,
    // submitting a batch with one enter, but on a default ring (512
    // entries, no setup flags), to a plain fd, without usage reports, and
    // then waits for the batch's CQEs one `io_uring_wait_cqe` at a time;
    // its script runs UDP with 32 sends a batch (`-n 32`, as here) and
    // TCP with one (`-n 1`: order kept by one send in flight, where we
    // keep 32 in flight, linked). Its receiver only counts bytes; ours
    // checks every byte, so order matters here.

    /// Submits the io_uring sends collected, in one `io_uring_enter`. On a
    /// stream socket it returns once all of them have gone, in order: a
    /// send that was cut short (its chain's later sends then fail with
    /// ECANCELED) is submitted again from its first unsent byte, with the
    /// sends after it.
    fn submit_ring(&mut self) -> Result<()> {
        let mut idle = 0;
        while !self.uring_ops.is_empty() {
            let n = self.uring_ops.len();
            // Room in the CQ for every CQE due, these sends' included.
            let due = self.pending + 2 * n as u64;
            if due > RING_CQ {
                self.enter_ring(0, (due - RING_CQ) as usize)?;
                continue;
            }
            let fixed = io_uring::types::Fixed(0);
            let ring = self.ring.as_mut().expect("ring");
            let mut sq = ring.submission();
            for (k, op) in self.uring_ops.iter().enumerate() {
                let p = self.data.buf[op.off + op.done..].as_ptr();
                let mut e = io_uring::opcode::SendZc::new(fixed, p, (op.len - op.done) as u32)
                    .buf_index(Some(0))
                    // A stream socket may take part of a send; io_uring
                    // then sends the rest itself, and only an error
                    // ends a send short (and breaks its chain).
                    .flags(libc::MSG_WAITALL)
                    .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                    .build()
                    .user_data(k as u64);
                if self.stream && k + 1 < n {
                    e = e.flags(io_uring::squeue::Flags::IO_LINK);
                }
                // SAFETY: the buffer is registered and outlives the ring.
                unsafe { sq.push(&e) }.context("io_uring SQ full")?;
            }
            drop(sq);
            // One result and one notification per send.
            self.pending += 2 * n as u64;
            self.results += n as u64;
            if !self.stream {
                self.uring_ops.clear();
                return self.enter_ring(n, 0);
            }
            self.enter_ring(n, n)?;
            while self.results > 0 {
                self.enter_ring(0, self.results as usize)?;
            }
            // Keep what did not go, in order.
            let mut rest = Vec::new();
            let mut progress = false;
            for mut op in self.uring_ops.drain(..) {
                let res = op.res.take().expect("result");
                if res > 0 {
                    op.done += res as usize;
                    progress = true;
                }
                if op.done == op.len {
                    ensure!(rest.is_empty(), "SEND_ZC chain completed out of order");
                    continue;
                }
                ensure!(
                    res >= 0
                        || [
                            libc::ECANCELED,
                            libc::EINTR,
                            libc::EAGAIN,
                            libc::ENOBUFS,
                            libc::ENOMEM
                        ]
                        .contains(&-res),
                    "SEND_ZC: {}",
                    io::Error::from_raw_os_error(-res)
                );
                rest.push(op);
            }
            idle = if progress { 0 } else { idle + 1 };
            ensure!(
                idle < RING_RETRIES,
                "SEND_ZC: nothing sent in {RING_RETRIES} submissions"
            );
            if !progress && !rest.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.uring_ops = rest;
        }
        Ok(())
    }

    /// One `io_uring_enter`: submits the `submit` entries queued, runs the
    /// deferred task work (it posts the completions under DEFER_TASKRUN,
    /// and only an enter with GETEVENTS runs it: `submit()` and
    /// `submit_and_wait(0)` leave it undone), waits until `want` CQEs are
    /// there (1 s at most), then takes every CQE posted.
    fn enter_ring(&mut self, submit: usize, want: usize) -> Result<()> {
        let ring = self.ring.as_mut().expect("ring");
        let r = if want == 0 {
            // SAFETY: no argument, flags the kernel knows.
            unsafe {
                ring.submitter().enter::<libc::sigset_t>(
                    submit as u32,
                    0,
                    IORING_ENTER_GETEVENTS,
                    None,
                )
            }
        } else {
            // With `want > 0` it sets GETEVENTS.
            let ts = io_uring::types::Timespec::new().sec(1);
            let args = io_uring::types::SubmitArgs::new().timespec(&ts);
            ring.submitter().submit_with_args(want, &args)
        };
        match r {
            Ok(k) => ensure!(k >= submit, "io_uring_enter submitted {k} of {submit}"),
            // A wait that timed out or was interrupted (nothing to submit).
            Err(e)
                if submit == 0 && matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => return Err(e).context("io_uring_enter"),
        }
        self.reap_ring()
    }

    /// Takes the io_uring CQEs posted, without entering the kernel.
    fn reap_ring(&mut self) -> Result<()> {
        let ring = self.ring.as_mut().expect("ring");
        for cqe in ring.completion() {
            let (flags, res) = (cqe.flags(), cqe.result());
            self.pending -= 1;
            if io_uring::cqueue::notif(flags) {
                if res as u32 & IORING_NOTIF_USAGE_ZC_COPIED != 0 {
                    self.copied += 1;
                }
                continue;
            }
            self.results -= 1;
            if !io_uring::cqueue::more(flags) {
                // No notification will follow.
                self.pending -= 1;
            }
            if self.stream {
                // Checked, and what failed resubmitted, in `submit_ring`.
                let op = self.uring_ops.get_mut(cqe.user_data() as usize);
                op.context("SEND_ZC result for no send in flight")?.res = Some(res);
            } else {
                ensure!(
                    res as usize == self.size,
                    "SEND_ZC sent {res} of {} bytes{}",
                    self.size,
                    if res < 0 {
                        format!(": {}", io::Error::from_raw_os_error(-res))
                    } else {
                        String::new()
                    }
                );
            }
        }
        Ok(())
    }

    /// Reads zcopy completion records (blocking for at least one).
    fn read_records(&mut self) -> Result<()> {
        let (d, _) = self.zc.as_ref().expect("zcopy");
        for r in d.completions(abi::ZC_COMPLETION_SLOTS as usize)? {
            self.pending -= 1;
            if r.flags & abi::ZC_COMPLETION_COPIED != 0 {
                self.copied += 1;
            }
        }
        Ok(())
    }

    /// Waits until every send's completion has been taken.
    fn finish(&mut self) -> Result<()> {
        if !self.batch.is_empty() {
            self.submit_batch()?;
        }
        if !self.uring_ops.is_empty() {
            self.submit_ring()?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.pending > 0 {
            ensure!(
                Instant::now() < deadline,
                "{} completions missing after 60 s",
                self.pending
            );
            match self.method {
                Method::MsgZerocopy => self.drain_errqueue(true)?,
                Method::IoUringSendZc => self.enter_ring(0, self.pending as usize)?,
                Method::ZcopySend | Method::ZcopySendBatch | Method::ZcopySendfile => {
                    self.read_records()?
                }
                _ => self.pending = 0,
            }
        }
        Ok(())
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        if let Some(ring) = &self.ring {
            // Let go of the socket now: the ring itself is torn down
            // later, by a kernel worker, and its hold on the socket would
            // keep the receiver from seeing the end of the stream.
            let _ = ring.submitter().unregister_files();
        }
        for fd in self.pipe {
            if fd >= 0 {
                // SAFETY: closing a pipe end we own.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Runs one sample.
fn sample(
    opts: &Options,
    data: &Data,
    method: Method,
    route: Route,
    size: usize,
    rep: usize,
    port: u16,
) -> Result<Sample> {
    let (sock, rx) = match route {
        Route::UdpDummy => {
            let s = UdpSocket::bind("10.99.3.1:0")?;
            s.connect("10.99.3.2:9")?;
            (Sock::Udp(s), None)
        }
        Route::TcpVeth => {
            let rx = receiver(port)?;
            let addr: SocketAddr = ([10, 99, 2, 2], port).into();
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
            (Sock::Tcp(s), Some(rx))
        }
    };
    let mut tx = Sender::new(method, data, sock.fd(), size, route == Route::TcpVeth)?;
    let slots = data.len / size;
    let limit = Duration::from_secs_f64(opts.secs);
    let (t0, c0, m0) = (Instant::now(), thread_cpu(), monotonic());
    let mut i: u64 = 0;
    loop {
        if let Some(n) = opts.sends {
            if i >= n {
                break;
            }
        } else if i.is_multiple_of(8) && t0.elapsed() >= limit {
            break;
        }
        tx.send((i as usize % slots) * size, size, i)?;
        i += 1;
    }
    tx.finish()?;
    let (wall, cpu, m1) = (t0.elapsed().as_secs_f64(), thread_cpu() - c0, monotonic());
    let copied = method.reports_copies().then_some(tx.copied);
    drop(tx);
    drop(sock);
    let verified = match rx {
        None => None,
        Some(rx) => {
            let (n, h) = rx
                .recv_timeout(Duration::from_secs(120))
                .context("receiver result")??;
            let mut want = FNV0;
            for k in 0..i {
                let off = (k as usize % slots) * size;
                want = fnv(want, &data.buf[off..off + size]);
            }
            Some(n == i * size as u64 && h == want)
        }
    };
    Ok(Sample {
        method,
        route,
        size,
        rep,
        sends: i,
        bytes: i * size as u64,
        wall_s: wall,
        cpu_s: cpu,
        copied_sends: copied,
        verified,
        mono_start: m0,
        mono_end: m1,
    })
}

/// Runs every sample, repetitions interleaved so slow drifts of the machine
/// spread over all methods alike.
pub fn run(opts: &Options) -> Result<Report> {
    let max = *opts.sizes.iter().max().context("no sizes")?;
    let data = Data::open(&opts.file, max)?;
    let mut plan = Vec::new();
    for rep in 0..opts.reps {
        for &route in &opts.routes {
            for &size in opts.sizes.iter().filter(|&&s| s <= route.max_size()) {
                for &m in &opts.methods {
                    plan.push((rep, route, size, m));
                }
            }
        }
    }
    let mut samples = Vec::new();
    for (k, &(rep, route, size, m)) in plan.iter().enumerate() {
        if opts.progress {
            eprint!(
                "\r[{:>4}/{}] {:<9} {:>8} B {:<18}",
                k + 1,
                plan.len(),
                route.name(),
                size,
                m.name()
            );
        }
        let port = 20000 + (k % 20000) as u16;
        let s = sample(opts, &data, m, route, size, rep, port)
            .with_context(|| format!("{} {} {size} B", route.name(), m.name()))?;
        samples.push(s);
    }
    if opts.progress {
        eprintln!();
    }
    let (points, break_even) = summarise(&samples);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Report {
        kernel,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        samples,
        points,
        break_even,
    })
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

/// The report as tables: CPU per byte and throughput per route.
pub fn table(r: &Report) -> String {
    use std::fmt::Write;

    let mut out = String::new();
    for route in [Route::UdpDummy, Route::TcpVeth] {
        let pts: Vec<&Point> = r.points.iter().filter(|p| p.route == route).collect();
        if pts.is_empty() {
            continue;
        }
        let mut methods: Vec<Method> = pts.iter().map(|p| p.method).collect();
        methods.dedup();
        methods.sort_by_key(|&m| m as u8);
        methods.dedup();
        let mut sizes: Vec<usize> = pts.iter().map(|p| p.size).collect();
        sizes.sort();
        sizes.dedup();
        for (title, f) in [
            (
                "sender CPU, ns per byte (median; * = some sends copied, ! = receiver mismatch)",
                0,
            ),
            ("throughput, MB/s (median)", 1),
        ] {
            let _ = writeln!(out, "\n{} — {title}", route.name());
            let _ = write!(out, "{:>6}", "size");
            for m in &methods {
                let _ = write!(out, " {:>17}", m.name());
            }
            let _ = writeln!(out);
            for &n in &sizes {
                let _ = write!(out, "{:>6}", human(n));
                for &m in &methods {
                    let cell = match pts.iter().find(|p| p.method == m && p.size == n) {
                        None => "-".to_string(),
                        Some(p) if f == 0 => format!(
                            "{:.3}{}{}",
                            p.cpu_ns_per_byte,
                            if p.copied_fraction.unwrap_or(0.0) > 0.0 {
                                "*"
                            } else {
                                ""
                            },
                            if p.verified == Some(false) { "!" } else { "" }
                        ),
                        Some(p) => format!("{:.1}", p.mb_per_s),
                    };
                    let _ = write!(out, " {cell:>17}");
                }
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(
            out,
            "\n{} — break-even size against read+write",
            route.name()
        );
        for b in r.break_even.iter().filter(|b| b.route == route) {
            let f = |v: Option<f64>| v.map_or("none in range".into(), |v| format!("{v:.0} B"));
            let _ = writeln!(
                out,
                "  {:<17} measured {:>14}, fitted {:>14}",
                b.method.name(),
                f(b.measured),
                f(b.fitted)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(method: Method, size: usize, cpu_s: f64, bytes: u64) -> Sample {
        Sample {
            method,
            route: Route::TcpVeth,
            size,
            rep: 0,
            sends: bytes / size as u64,
            bytes,
            wall_s: 1.0,
            cpu_s,
            copied_sends: method.reports_copies().then_some(0),
            verified: Some(true),
            mono_start: 10.0,
            mono_end: 11.0,
        }
    }

    #[test]
    fn samples_keep_their_monotonic_window() {
        let a = s(Method::ZcopySend, 4096, 1e-3, 1 << 20);
        let back: Sample = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!((back.mono_start, back.mono_end), (10.0, 11.0));
        // A report from before the times were recorded still parses.
        let old = r#"{"method":"zcopy-send","route":"tcp-veth","size":4096,"rep":0,
            "sends":1,"bytes":4096,"wall_s":1.0,"cpu_s":0.5,"copied_sends":0,
            "verified":true}"#;
        let old: Sample = serde_json::from_str(old).unwrap();
        assert_eq!((old.mono_start, old.mono_end), (0.0, 0.0));
        let (m0, m1) = (monotonic(), monotonic());
        assert!(m0 > 0.0 && m1 >= m0);
    }

    #[test]
    fn summary_takes_medians_and_finds_break_even() {
        let mut v = Vec::new();
        // read+write: 1 ns a byte at every size; zcopy: 4 ns a byte at
        // 1 KiB, 0.5 at 4 KiB (three reps each, one outlier).
        for (cpu, rep) in [(1e-3, 0), (1e-3, 1), (5e-3, 2)] {
            let mut a = s(Method::ReadWrite, 1024, cpu, 1_000_000);
            a.rep = rep;
            v.push(a);
            v.push(s(Method::ReadWrite, 4096, 1e-3, 1_000_000));
            v.push(s(Method::ZcopySend, 1024, 4e-3, 1_000_000));
            v.push(s(Method::ZcopySend, 4096, 0.5e-3, 1_000_000));
        }
        let (points, be) = summarise(&v);
        let rw = points
            .iter()
            .find(|p| p.method == Method::ReadWrite && p.size == 1024)
            .unwrap();
        assert!((rw.cpu_ns_per_byte - 1.0).abs() < 1e-9);
        assert!((rw.spread - 4.0).abs() < 1e-9);
        assert_eq!(rw.copied_fraction, None);
        let zc = points
            .iter()
            .find(|p| p.method == Method::ZcopySend && p.size == 1024)
            .unwrap();
        assert_eq!(zc.copied_fraction, Some(0.0));
        let b = be.iter().find(|b| b.method == Method::ZcopySend).unwrap();
        let n = b.measured.unwrap();
        assert!(n > 1024.0 && n < 4096.0, "{n}");
        assert!(be.iter().all(|b| b.method != Method::ReadWrite));
    }

    #[test]
    fn methods_parse_from_the_command_line() {
        use clap::ValueEnum;
        assert_eq!(Method::from_str("zcopy-send", false), Ok(Method::ZcopySend));
        assert_eq!(
            Method::from_str("zcopy-send-batch", false),
            Ok(Method::ZcopySendBatch)
        );
        assert_eq!(
            Method::from_str("io-uring-send-zc", false),
            Ok(Method::IoUringSendZc)
        );
        assert_eq!(Route::from_str("udp-dummy", false), Ok(Route::UdpDummy));
        assert!(Method::from_str("nope", false).is_err());
    }

    #[test]
    fn sizes_print_short() {
        assert_eq!(human(1024), "1K");
        assert_eq!(human(1 << 20), "1M");
        assert_eq!(human(1500), "1500");
    }
}
