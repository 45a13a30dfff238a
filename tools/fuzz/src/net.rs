//! Sockets to send through, the receivers behind them, and the network
//! they run on.
//!
//! The VM's network is `tools/harness/net.sh`'s: `ztx0` (e1000e,
//! 10.99.1.1) wired to `zrx0` (virtio-net, 10.99.1.2, namespace `zrx`),
//! the veth pair `zv0`/`zv1` (10.99.2.1/.2) and the dummy `zd0`
//! (10.99.3.1, nothing behind 10.99.3.2). The fuzzer uses it as it is: a
//! receiver in `zrx` behind the wire, datagrams into the dummy. What it
//! disturbs is its own *lab*: a veth pair `zfz0` (10.99.9.1) / `zfz1`
//! (10.99.9.2, namespace `zfz`), created at the start and deleted at the
//! end, with a receiver in `zfz`; see `disturb::net`.

use std::{
    ffi::CString,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::RawFd,
    path::Path,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicI32, Ordering::Relaxed},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::rng::Rng;

pub const WIRE_NS: &str = "zrx";
pub const WIRE_RX: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 2);
pub const DUMMY_PEER: Ipv4Addr = Ipv4Addr::new(10, 99, 3, 2);
pub const TX_IF: &str = "ztx0";
pub const TX_ADDR: &str = "10.99.1.1/24";
pub const DUMMY_IF: &str = "zd0";

pub const LAB_NS: &str = "zfz";
/// Where the lab's interfaces are moved to and back.
pub const LAB_NS2: &str = "zfz2";
pub const LAB_IF: &str = "zfz0";
pub const LAB_PEER: &str = "zfz1";
pub const LAB_LOCAL: &str = "10.99.9.1/24";
pub const LAB_REMOTE: Ipv4Addr = Ipv4Addr::new(10, 99, 9, 2);
pub const LAB_REMOTE_CIDR: &str = "10.99.9.2/24";

/// The interface index of `name` in this thread's namespace, or 0.
pub fn ifindex(name: &str) -> i32 {
    let Ok(c) = CString::new(name) else { return 0 };
    // SAFETY: a valid C string.
    unsafe { libc::if_nametoindex(c.as_ptr()) as i32 }
}

/// Runs `ip [-n NS] -force -batch FILE` with `cmds`; whether it worked.
/// A file rather than a pipe: a pipe to an `ip` that died would raise
/// SIGPIPE, which the fuzzer counts as unexpected.
pub fn ip_batch(ns: Option<&str>, cmds: &[String]) -> bool {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "zcopy-fuzz-{}-{}.ip",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    ));
    if std::fs::write(&path, cmds.join("\n") + "\n").is_err() {
        return false;
    }
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    let ok = c
        .args(["-force", "-batch"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&path);
    ok
}

/// Whether namespace `ns` exists.
pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Moves the calling thread into namespace `ns` (network only).
pub fn enter_netns(ns: &str) -> io::Result<()> {
    let f = std::fs::File::open(Path::new("/run/netns").join(ns))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a namespace fd; affects this thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn errno() -> i32 {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// A `sockaddr_storage` for `a`, and its length.
fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: v.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: v.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The local port `fd` is bound to.
fn local_port(fd: RawFd) -> Option<u16> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: valid out-pointers.
    if unsafe { libc::getsockname(fd, (&raw mut ss).cast(), &mut len) } != 0 {
        return None;
    }
    // Both sockaddr_in and sockaddr_in6 have the port right after the
    // family. SAFETY: read within the storage.
    let port = unsafe { *((&raw const ss).cast::<u8>().add(2).cast::<u16>()) };
    Some(u16::from_be(port))
}

fn setopt(fd: RawFd, level: i32, name: i32, v: i32) {
    // SAFETY: an int option.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const v).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
}

/// A new socket, close-on-exec, or -1.
pub fn socket(domain: i32, ty: i32, proto: i32) -> RawFd {
    // SAFETY: socket(2).
    unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) }
}

fn family(a: &SocketAddr) -> i32 {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// Binds a listening TCP socket and a UDP socket to `addr` (port 0: any),
/// non-blocking, with `IP_FREEBIND` so an address that comes and goes
/// (the lab's) does not matter.
fn bind_pair(addr: SocketAddr) -> Option<(RawFd, RawFd, u16, u16)> {
    let f = family(&addr);
    let t = socket(f, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
    let u = socket(f, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0);
    let (ss, len) = sockaddr(addr);
    for fd in [t, u] {
        if fd < 0 {
            close_all(&[t, u]);
            return None;
        }
        setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
        setopt(fd, libc::IPPROTO_IP, libc::IP_FREEBIND, 1);
        setopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
        // SAFETY: a valid address of `len` bytes.
        if unsafe { libc::bind(fd, (&raw const ss).cast(), len) } != 0 {
            close_all(&[t, u]);
            return None;
        }
    }
    // SAFETY: a bound TCP socket.
    if unsafe { libc::listen(t, 64) } != 0 {
        close_all(&[t, u]);
        return None;
    }
    Some((t, u, local_port(t)?, local_port(u)?))
}

fn close_all(fds: &[RawFd]) {
    for &fd in fds {
        if fd >= 0 {
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
        }
    }
}

/// A receiver: a thread (in a namespace, maybe) that accepts TCP
/// connections and drains them and a UDP socket, until stopped.
pub struct Sink {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// `(tcp, udp)` addresses it listens on.
    pub addrs: Vec<(SocketAddr, SocketAddr)>,
}

impl Sink {
    /// Starts a receiver in namespace `ns` (this one if `None`) on each
    /// of `ips`; those it cannot bind are left out.
    pub fn start(ns: Option<&'static str>, ips: &[IpAddr]) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let ips = ips.to_vec();
        let st = stop.clone();
        let handle = std::thread::Builder::new()
            .name("zcopy-fuzz-sink".into())
            .spawn(move || {
                if let Some(ns) = ns {
                    if enter_netns(ns).is_err() {
                        let _ = tx.send(Vec::new());
                        return;
                    }
                }
                let mut listen = Vec::new();
                let mut addrs = Vec::new();
                for ip in ips {
                    if let Some((t, u, tp, up)) = bind_pair(SocketAddr::new(ip, 0)) {
                        listen.push(t);
                        listen.push(u);
                        addrs.push((SocketAddr::new(ip, tp), SocketAddr::new(ip, up)));
                    }
                }
                let _ = tx.send(addrs);
                drain(&st, &listen);
                close_all(&listen);
            })?;
        let addrs = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        Ok(Self {
            stop,
            handle: Some(handle),
            addrs,
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The receiver's loop: accept on the listeners, read everything.
fn drain(stop: &AtomicBool, listen: &[RawFd]) {
    let mut conns: Vec<RawFd> = Vec::new();
    let mut buf = vec![0u8; 256 << 10];
    while !stop.load(Relaxed) {
        let mut pfds: Vec<libc::pollfd> = listen
            .iter()
            .chain(&conns)
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid pollfd array.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, 100) };
        if n <= 0 {
            continue;
        }
        let mut dead = Vec::new();
        for p in pfds.iter().filter(|p| p.revents != 0) {
            let is_listener = listen.contains(&p.fd);
            loop {
                if is_listener {
                    // SAFETY: accept4 on our listener (fails on UDP: then
                    // it is read below).
                    let c = unsafe {
                        libc::accept4(
                            p.fd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if c >= 0 {
                        conns.push(c);
                        continue;
                    }
                    if errno() != libc::ENOTSOCK
                        && errno() != libc::EOPNOTSUPP
                        && errno() != libc::EINVAL
                    {
                        break;
                    }
                }
                // SAFETY: reading into our buffer.
                let r = unsafe { libc::read(p.fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    continue;
                }
                if !is_listener && (r == 0 || errno() != libc::EAGAIN) {
                    dead.push(p.fd);
                }
                break;
            }
        }
        for fd in dead {
            conns.retain(|&c| c != fd);
            close_all(&[fd]);
        }
    }
    close_all(&conns);
}

/// Kinds of sockets (and socket-like fds) a send may be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockKind {
    /// TCP to the loopback receiver (local delivery: records COPIED).
    TcpLo,
    /// UDP to the loopback receiver.
    UdpLo,
    /// UDP over IPv6 loopback.
    Udp6Lo,
    /// TCP and UDP through the lab's veth, to its receiver.
    TcpLab,
    UdpLab,
    /// TCP and UDP over the e1000e wire to the receiver in `zrx`.
    TcpWire,
    UdpWire,
    /// UDP out of the dummy device, to nobody.
    UdpDummy,
    /// Never connected: `EDESTADDRREQ` (UDP), `EPIPE` (TCP).
    UdpUnconnected,
    TcpUnconnected,
    /// A listening socket.
    TcpListening,
    /// Connected, then shut down for writing: `EPIPE`.
    TcpShutdown,
    /// Not TCP or UDP over IP: `EOPNOTSUPP`.
    Unix,
    RawIp,
}

impl SockKind {
    pub const ALL: [SockKind; 14] = [
        SockKind::TcpLo,
        SockKind::UdpLo,
        SockKind::Udp6Lo,
        SockKind::TcpLab,
        SockKind::UdpLab,
        SockKind::TcpWire,
        SockKind::UdpWire,
        SockKind::UdpDummy,
        SockKind::UdpUnconnected,
        SockKind::TcpUnconnected,
        SockKind::TcpListening,
        SockKind::TcpShutdown,
        SockKind::Unix,
        SockKind::RawIp,
    ];

    /// Whether zcopy takes it (TCP or UDP over IPv4/IPv6).
    pub fn is_ip(self) -> bool {
        !matches!(self, SockKind::Unix | SockKind::RawIp)
    }

    pub fn is_udp(self) -> bool {
        matches!(
            self,
            SockKind::UdpLo
                | SockKind::Udp6Lo
                | SockKind::UdpLab
                | SockKind::UdpWire
                | SockKind::UdpDummy
                | SockKind::UdpUnconnected
        )
    }

    /// Whether a send through it can go somewhere.
    pub fn can_send(self) -> bool {
        matches!(
            self,
            SockKind::TcpLo
                | SockKind::UdpLo
                | SockKind::Udp6Lo
                | SockKind::TcpLab
                | SockKind::UdpLab
                | SockKind::TcpWire
                | SockKind::UdpWire
                | SockKind::UdpDummy
        )
    }
}

/// Where the sockets connect to.
#[derive(Default, Clone)]
pub struct Targets {
    pub lo: Option<(SocketAddr, SocketAddr)>,
    pub lo6: Option<(SocketAddr, SocketAddr)>,
    pub lab: Option<(SocketAddr, SocketAddr)>,
    pub wire: Option<(SocketAddr, SocketAddr)>,
    /// Whether net.sh's dummy device is there.
    pub dummy: bool,
}

/// Connects `fd` to `a`, waiting at most `ms`; whether it connected.
fn connect(fd: RawFd, a: SocketAddr, ms: i32) -> bool {
    // SAFETY: fcntl on our fd.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) };
    let (ss, len) = sockaddr(a);
    // SAFETY: a valid address.
    let r = unsafe { libc::connect(fd, (&raw const ss).cast(), len) };
    let ok = r == 0
        || (errno() == libc::EINPROGRESS && {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one pollfd.
            let n = unsafe { libc::poll(&mut p, 1, ms) };
            let mut err = 0i32;
            let mut l = size_of::<i32>() as libc::socklen_t;
            // SAFETY: an int option.
            unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&raw mut err).cast(),
                    &mut l,
                )
            };
            n == 1 && err == 0
        });
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, fl) };
    ok
}

/// Makes a socket of `kind`, or -1 if it cannot be had now.
pub fn make(kind: SockKind, t: &Targets, rng: &mut Rng) -> RawFd {
    let stream = libc::SOCK_STREAM;
    let dgram = libc::SOCK_DGRAM;
    let nb = if rng.chance(1, 3) {
        libc::SOCK_NONBLOCK
    } else {
        0
    };
    let (fd, to) = match kind {
        SockKind::TcpLo => (socket(libc::AF_INET, stream | nb, 0), t.lo.map(|a| a.0)),
        SockKind::UdpLo => (socket(libc::AF_INET, dgram | nb, 0), t.lo.map(|a| a.1)),
        SockKind::Udp6Lo => (
            socket(libc::AF_INET6, dgram | nb, 0),
            Some(
                t.lo6
                    .map_or(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9), |a| a.1),
            ),
        ),
        SockKind::TcpLab => (socket(libc::AF_INET, stream | nb, 0), t.lab.map(|a| a.0)),
        SockKind::UdpLab => (socket(libc::AF_INET, dgram | nb, 0), t.lab.map(|a| a.1)),
        SockKind::TcpWire => (socket(libc::AF_INET, stream | nb, 0), t.wire.map(|a| a.0)),
        SockKind::UdpWire => (socket(libc::AF_INET, dgram | nb, 0), t.wire.map(|a| a.1)),
        SockKind::UdpDummy => (
            socket(libc::AF_INET, dgram | nb, 0),
            t.dummy
                .then_some(SocketAddr::new(IpAddr::V4(DUMMY_PEER), 9)),
        ),
        SockKind::UdpUnconnected => (socket(libc::AF_INET, dgram | nb, 0), None),
        SockKind::TcpUnconnected => (socket(libc::AF_INET, stream | nb, 0), None),
        SockKind::TcpListening => {
            let fd = socket(libc::AF_INET, stream | nb, 0);
            let (ss, len) = sockaddr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
            // SAFETY: a valid address; listen on our socket.
            unsafe {
                libc::bind(fd, (&raw const ss).cast(), len);
                libc::listen(fd, 1);
            }
            (fd, None)
        }
        SockKind::TcpShutdown => (socket(libc::AF_INET, stream | nb, 0), t.lo.map(|a| a.0)),
        SockKind::Unix => (socket(libc::AF_UNIX, dgram, 0), None),
        SockKind::RawIp => (
            socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP),
            None,
        ),
    };
    if fd < 0 {
        return -1;
    }
    if rng.chance(1, 4) {
        // A small send buffer: EAGAIN and short sends come sooner.
        setopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    }
    if let Some(a) = to {
        if !connect(fd, a, 300) && kind.is_udp() {
            close_all(&[fd]);
            return -1;
        }
        if kind == SockKind::TcpShutdown {
            // SAFETY: our socket.
            unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        }
    }
    fd
}

/// Closes a socket so that nothing of it lingers: TCP gets `SO_LINGER`
/// 0 (a reset), so sends queued on it are freed now rather than after
/// retransmissions time out, and their records come.
pub fn close_now(fd: RawFd) {
    if fd < 0 {
        return;
    }
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a linger option on our fd (ignored if not TCP).
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const l).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
        libc::close(fd);
    }
}

/// The sockets the workers send through: a few of each kind, replaced
/// now and then (the old number closed, so a worker may pass a closed or
/// reused number: as good a test as any).
pub struct Socks {
    slots: Vec<(SockKind, AtomicI32)>,
    targets: Mutex<Targets>,
}

impl Socks {
    pub fn new(targets: Targets, rng: &mut Rng) -> Self {
        let mut slots = Vec::new();
        for kind in SockKind::ALL {
            let n = if kind.can_send() { 3 } else { 1 };
            for _ in 0..n {
                slots.push((kind, AtomicI32::new(make(kind, &targets, rng))));
            }
        }
        Self {
            slots,
            targets: Mutex::new(targets),
        }
    }

    /// A socket: its kind and fd (-1 if none could be made).
    pub fn pick(&self, rng: &mut Rng) -> (SockKind, RawFd) {
        let (k, fd) = &self.slots[rng.below(self.slots.len() as u64) as usize];
        (*k, fd.load(Relaxed))
    }

    /// A socket that can send somewhere, if there is one.
    pub fn pick_sending(&self, rng: &mut Rng) -> (SockKind, RawFd) {
        for _ in 0..8 {
            let (k, fd) = self.pick(rng);
            if k.can_send() && fd >= 0 {
                return (k, fd);
            }
        }
        self.pick(rng)
    }

    /// Every socket fd now (for forked children).
    pub fn fds(&self) -> Vec<RawFd> {
        self.slots.iter().map(|(_, fd)| fd.load(Relaxed)).collect()
    }

    /// Replaces one socket with a new one of its kind (or shuts a TCP one
    /// down); returns what was done.
    pub fn churn(&self, rng: &mut Rng) -> &'static str {
        let (kind, slot) = &self.slots[rng.below(self.slots.len() as u64) as usize];
        let fd = slot.load(Relaxed);
        if fd >= 0 && !kind.is_udp() && kind.is_ip() && rng.chance(1, 4) {
            // SAFETY: a socket of ours (or a reused number: shutdown on a
            // non-socket fails harmlessly).
            unsafe { libc::shutdown(fd, libc::SHUT_WR) };
            return "shutdown";
        }
        let t = self
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let new = make(*kind, &t, rng);
        let old = slot.swap(new, Relaxed);
        close_now(old);
        "reconnect"
    }

    /// Closes every socket.
    pub fn close(&self) {
        for (_, s) in &self.slots {
            close_now(s.swap(-1, Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_receives_and_sockets_connect_over_loopback() {
        let mut sink = Sink::start(None, &[IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap();
        assert_eq!(sink.addrs.len(), 1);
        let t = Targets {
            lo: Some(sink.addrs[0]),
            ..Default::default()
        };
        let mut rng = Rng::new(1);
        for kind in [SockKind::TcpLo, SockKind::UdpLo] {
            let fd = make(kind, &t, &mut rng);
            assert!(fd >= 0, "{kind:?}");
            let b = [7u8; 100];
            // SAFETY: sending our buffer.
            let n = unsafe { libc::send(fd, b.as_ptr().cast(), b.len(), libc::MSG_NOSIGNAL) };
            assert!(n == 100 || errno() == libc::EAGAIN, "{kind:?}: {n}");
            close_now(fd);
        }
        assert!(make(SockKind::TcpUnconnected, &t, &mut rng) >= 0);
        // No receiver for it: left unconnected, still a socket.
        assert!(make(SockKind::TcpWire, &t, &mut rng) >= 0);
        sink.stop();
    }

    #[test]
    fn kinds_are_classified() {
        assert!(!SockKind::Unix.is_ip());
        assert!(SockKind::UdpDummy.is_udp() && SockKind::UdpDummy.can_send());
        assert!(!SockKind::TcpListening.can_send());
    }
}
