//! A worker thread: picks a call, builds its arguments (mostly valid, the
//! rest broken in one to three ways), makes it, and judges the outcome.
//!
//! Each call first builds a well-formed argument from real resources (a
//! registered region, a connected socket, a real file), then, for about
//! half the calls, breaks it: a field at an edge value, a reserved field
//! set, an unknown flag, a wild pointer, a wrong fd or region id. While
//! breaking it, the worker notes each condition whose errno
//! `Documentation/abi.rst` decides ([`Conds`]); the outcome is then judged
//! against them: success where the ABI requires failure is always a
//! finding, another errno only with `--strict-errno`.

mod dma;
mod other;
mod regions;
mod sends;

use std::{io, os::fd::RawFd};

use zcopy::abi;

use crate::{
    args,
    fds::{self, FdKind},
    ioctls::{errno_name, Expect, Op},
    net::SockKind,
    ptrs::{page, GuardedBuf, WildKind},
    rng::Rng,
    state::{worker_tag, Reg, Shared, ZFd},
    tally::{Kind, Tally},
};

/// Regions a worker keeps at most before unregistering the oldest.
const MAX_REGIONS: usize = 24;
/// Private zcopy fds per worker.
const PRIVATE_FDS: usize = 2;
/// Bytes of the output buffer: 4096 `zc_page_info`s and more.
const OUT_LEN: usize = 128 << 10;

/// Where the argument structure was put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Normal,
    Misaligned,
    /// Cut by a guard page: unreadable.
    Straddle,
    /// In a read-only page: readable, the write-back faults.
    ReadOnly,
    Wild(WildKind),
}

impl Place {
    /// The module reads the structure we built (and we can read what it
    /// writes back, unless read-only).
    fn as_built(self) -> bool {
        matches!(self, Place::Normal | Place::Misaligned | Place::ReadOnly)
    }

    fn readable_back(self) -> bool {
        matches!(self, Place::Normal | Place::Misaligned)
    }
}

/// The conditions the ABI decides the outcome by, with their names.
#[derive(Default)]
struct Conds {
    e: Expect,
    names: Vec<&'static str>,
}

impl Conds {
    fn add(&mut self, name: &'static str, errno: i32) {
        self.e.add(errno);
        self.names.push(name);
    }

    fn also(&mut self, errno: i32) {
        self.e.also(errno);
    }
}

/// How a region id was picked.
#[derive(Clone, Copy, Debug)]
enum IdKind {
    /// A region of the target context (certainly there if `private`).
    Valid(Reg),
    /// Another context's: never this one's.
    Foreign,
    /// Unregistered: never anyone's again.
    Stale,
    Zero,
    /// Near the highest id seen, or anything.
    Guess,
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Pages spanned by `[addr, addr + len)`.
fn span_pages(addr: u64, len: u64) -> Option<u64> {
    let pg = page() as u64;
    let end = addr.checked_add(len)?.checked_add(pg - 1)? & !(pg - 1);
    Some((end - (addr & !(pg - 1))) / pg)
}

pub struct Worker<'a> {
    sh: &'a Shared,
    tid: usize,
    rng: Rng,
    pub tally: Tally,
    own: Vec<ZFd>,
    regs: Vec<Reg>,
    arg: GuardedBuf,
    ro: GuardedBuf,
    out: GuardedBuf,
    batch: GuardedBuf,
    rbuf: GuardedBuf,
    hdr: GuardedBuf,
    ntag: u64,
}

impl<'a> Worker<'a> {
    pub fn new(sh: &'a Shared, tid: usize) -> io::Result<Self> {
        let mut w = Self {
            sh,
            tid,
            rng: Rng::derive(sh.opts.seed, tid as u64 + 1),
            tally: Tally::default(),
            own: Vec::new(),
            regs: Vec::new(),
            arg: GuardedBuf::new(page())?,
            ro: GuardedBuf::new(page())?,
            out: GuardedBuf::new(OUT_LEN)?,
            batch: GuardedBuf::new(page())?,
            rbuf: GuardedBuf::new(16 * page())?,
            hdr: GuardedBuf::new(page())?,
            ntag: 0,
        };
        for i in 0..PRIVATE_FDS {
            w.open_private(i % 2 == 0)?;
        }
        Ok(w)
    }

    fn open_private(&mut self, nonblock: bool) -> io::Result<()> {
        let fd = fds::open_zcopy(nonblock)?;
        self.own.push(ZFd {
            fd,
            ctx: self.sh.new_ctx(),
            nonblock,
        });
        Ok(())
    }

    /// Closes one private fd (regions, records and sends in flight with
    /// it) and opens another.
    fn reopen(&mut self) {
        if !self.own.is_empty() {
            let i = self.rng.below(self.own.len() as u64) as usize;
            let z = self.own.remove(i);
            self.close_zfd(z);
        }
        let nonblock = self.rng.chance(1, 2);
        let _ = self.open_private(nonblock);
    }

    fn close_zfd(&mut self, z: ZFd) {
        // SAFETY: our fd.
        unsafe { libc::close(z.fd) };
        self.regs.retain(|r| r.ctx != z.ctx);
        self.sh.book.forget_ctx(z.ctx);
        self.sh.ledger.forget_ctx(z.ctx);
    }

    /// Runs until the budget is spent; then reads what records are left
    /// and closes its fds.
    pub fn run(&mut self) {
        while self.sh.take_call() {
            self.step();
        }
        for z in std::mem::take(&mut self.own) {
            self.drain(z);
            self.close_zfd(z);
        }
    }

    /// Reads the records of `z` that are ready, without blocking.
    fn drain(&mut self, z: ZFd) {
        let size = size_of::<abi::ZcCompletion>();
        for _ in 0..64 {
            let iov = libc::iovec {
                iov_base: self.rbuf.base() as *mut _,
                iov_len: 64 * size,
            };
            // SAFETY: our buffer; RWF_NOWAIT or O_NONBLOCK: no blocking.
            let n = unsafe { libc::preadv2(z.fd, &iov, 1, -1, libc::RWF_NOWAIT) };
            let n = if n < 0 && last_errno() == libc::EOPNOTSUPP && z.nonblock {
                // SAFETY: as above, the fd is non-blocking.
                unsafe { libc::read(z.fd, self.rbuf.base() as *mut _, 64 * size) }
            } else {
                n
            };
            if n <= 0 {
                return;
            }
            self.records(self.rbuf.base(), n as usize, z.ctx);
        }
    }

    /// One call.
    fn step(&mut self) {
        if self.rng.chance(1, 500) {
            self.reopen();
        }
        if self.rng.chance(1, 40) {
            if let Some(e) = self.sh.zoo.eventfd() {
                let mut v = 0u64;
                // SAFETY: an 8-byte read into `v` from a non-blocking
                // eventfd.
                unsafe { libc::read(e, (&raw mut v).cast(), 8) };
            }
        }
        // Too many regions: unregister the oldest (half the time, so busy
        // regions cannot stall the worker).
        if self.regs.len() > MAX_REGIONS && self.rng.chance(1, 2) {
            self.unregister(true);
            return;
        }
        // DMA_READ about 1 in 40: the engine it drives is slow and shared.
        const OPS: [(Op, u32); 15] = [
            (Op::Version, 4),
            (Op::Register, 28),
            (Op::Unregister, 14),
            (Op::RegionInfo, 14),
            (Op::Stats, 6),
            (Op::Send, 36),
            (Op::Xmit, 10),
            (Op::SetEventfd, 6),
            (Op::Sendfile, 16),
            (Op::FilePages, 10),
            (Op::SendBatch, 12),
            (Op::DmaRead, 5),
            (Op::Read, 30),
            (Op::BadCmd, 6),
            (Op::WrongFd, 4),
        ];
        let weights: Vec<u32> = OPS.iter().map(|&(_, w)| w).collect();
        let op = OPS[self.rng.weighted(&weights)].0;
        match op {
            Op::Version => self.version(),
            Op::Register => self.register(),
            Op::Unregister => self.unregister(false),
            Op::RegionInfo => self.region_info(),
            Op::Stats => self.stats(),
            Op::Send => self.send(),
            Op::Xmit => self.xmit(),
            Op::SetEventfd => self.set_eventfd(),
            Op::Sendfile => self.sendfile(),
            Op::FilePages => self.file_pages(),
            Op::SendBatch => self.send_batch(),
            Op::DmaRead => self.dma_read(),
            Op::Read => self.read(),
            Op::BadCmd => self.bad_cmd(),
            Op::WrongFd => self.wrong_fd(),
        }
    }

    // ---- picking ------------------------------------------------------

    /// Whether to break this call's argument.
    fn faulty(&mut self) -> bool {
        self.rng.chance(45, 100)
    }

    fn next_tag(&mut self) -> u64 {
        self.ntag += 1;
        worker_tag(self.tid, self.ntag)
    }

    /// A zcopy fd: one of ours or a shared one.
    fn pick_zfd(&mut self) -> ZFd {
        if self.rng.chance(55, 100) && !self.own.is_empty() {
            self.own[self.rng.below(self.own.len() as u64) as usize]
        } else {
            self.sh.shared[self.rng.below(self.sh.shared.len() as u64) as usize]
        }
    }

    /// The fd of region `r`'s context.
    fn zfd_of(&self, r: &Reg) -> ZFd {
        self.own
            .iter()
            .chain(&self.sh.shared)
            .find(|z| z.ctx == r.ctx)
            .copied()
            .unwrap_or(ZFd {
                fd: r.fd,
                ctx: r.ctx,
                nonblock: false,
            })
    }

    /// A region to use: one of ours, or one registered on a shared fd.
    fn pick_reg(&mut self) -> Option<Reg> {
        if !self.regs.is_empty() && self.rng.chance(7, 10) {
            return Some(self.regs[self.rng.below(self.regs.len() as u64) as usize]);
        }
        let r = self.sh.book.pick(&mut self.rng)?;
        self.sh.shared.iter().any(|z| z.ctx == r.ctx).then_some(r)
    }

    /// A region of context `ctx`, for a batch's further entries.
    fn pick_reg_in(&mut self, ctx: u64) -> Option<Reg> {
        let mine: Vec<Reg> = self.regs.iter().filter(|r| r.ctx == ctx).copied().collect();
        if !mine.is_empty() && self.rng.chance(3, 4) {
            return Some(mine[self.rng.below(mine.len() as u64) as usize]);
        }
        self.sh.book.pick_in(&mut self.rng, ctx)
    }

    /// A wrong region id for context `ctx`.
    fn bad_id(&mut self, ctx: u64) -> (u32, IdKind) {
        match self.rng.below(5) {
            0 => match self.sh.book.pick_foreign(&mut self.rng, ctx) {
                Some(id) => (id, IdKind::Foreign),
                None => (0, IdKind::Zero),
            },
            1 => match self.sh.book.pick_stale(&mut self.rng) {
                Some(id) => (id, IdKind::Stale),
                None => (0, IdKind::Zero),
            },
            2 => (0, IdKind::Zero),
            3 => (self.sh.book.guess(&mut self.rng), IdKind::Guess),
            _ => (args::edge_u32(&mut self.rng), IdKind::Guess),
        }
    }

    /// Notes what an id's kind implies.
    fn id_cond(c: &mut Conds, k: IdKind) {
        match k {
            IdKind::Foreign => c.add("another context's region", libc::ENOENT),
            IdKind::Stale => c.add("an unregistered region", libc::ENOENT),
            IdKind::Zero => c.add("region 0", libc::ENOENT),
            IdKind::Valid(r) if !r.private => c.also(libc::ENOENT),
            _ => {}
        }
    }

    /// A socket for a send, and what it implies: a pool socket may be
    /// replaced meanwhile (any fd errno); a zoo fd is what it is.
    fn pick_sock(&mut self, c: &mut Conds, faulty: bool) -> (RawFd, Option<SockKind>) {
        if faulty && self.rng.chance(1, 3) {
            let (k, fd) = self.sh.zoo.pick(&mut self.rng);
            if k.never_open() {
                c.add("socket fd not open", libc::EBADF);
            } else if k.open_non_socket() {
                c.add("fd not a socket", libc::ENOTSOCK);
            } else {
                c.also(libc::EBADF);
                c.also(libc::ENOTSOCK);
            }
            return (fd, None);
        }
        let (k, fd) = if faulty {
            self.sh.socks.pick(&mut self.rng)
        } else {
            self.sh.socks.pick_sending(&mut self.rng)
        };
        // Its number may be closed and reused by anything meanwhile: only
        // -1 (no socket could be made) is certain.
        for e in [libc::EBADF, libc::ENOTSOCK, libc::EOPNOTSUPP] {
            c.also(e);
        }
        if fd < 0 {
            c.add("socket fd not open", libc::EBADF);
        }
        (fd, Some(k))
    }

    /// A file for `ZC_IOC_SENDFILE` and `ZC_IOC_FILE_PAGES`, and what it
    /// implies.
    fn pick_file(&mut self, c: &mut Conds, faulty: bool) -> (RawFd, FdKind) {
        let zoo = &self.sh.zoo;
        let (k, fd) = if faulty && self.rng.chance(1, 2) {
            if self.rng.chance(1, 4) {
                let z = self.pick_zfd();
                (FdKind::Zcopy, z.fd)
            } else if self.rng.chance(1, 5) {
                let (_, fd) = self.sh.socks.pick(&mut self.rng);
                (FdKind::IpSocket, fd)
            } else {
                zoo.pick(&mut self.rng)
            }
        } else {
            zoo.pick_of(&mut self.rng, &[FdKind::File])
                .unwrap_or((FdKind::Closed, -1))
        };
        match k {
            FdKind::Negative | FdKind::Huge | FdKind::FileWriteOnly | FdKind::Path => {
                c.add("file not open for reading", libc::EBADF)
            }
            FdKind::Pipe => {
                // The read end is not a regular file; the write end not
                // open for reading either.
                c.add("a pipe", libc::EINVAL);
                c.also(libc::EBADF);
            }
            FdKind::Dir | FdKind::Eventfd | FdKind::DevNull | FdKind::Zcopy => {
                c.add("not a regular file", libc::EINVAL)
            }
            FdKind::Proc => c.add("procfs file", libc::EOPNOTSUPP),
            FdKind::File => c.also(libc::EBADF),
            // A pool socket's number, or a closed one: may be anything by
            // the time of the call.
            FdKind::IpSocket | FdKind::Closed => {
                for e in [libc::EBADF, libc::EINVAL, libc::EOPNOTSUPP] {
                    c.also(e);
                }
            }
        }
        (fd, k)
    }

    // ---- making and judging calls -----------------------------------

    /// Puts the argument `v` somewhere: where a valid call puts it, or,
    /// when `faulty`, sometimes misaligned, cut by a guard page, in a
    /// read-only page or at a wild address; adjusts `c` to match.
    fn place<T: Copy>(&mut self, op: Op, v: &T, faulty: bool, c: &mut Conds) -> (u64, Place) {
        let n = size_of::<T>();
        let place = if !faulty {
            if self.rng.chance(1, 6) {
                Place::Misaligned
            } else {
                Place::Normal
            }
        } else {
            let ro = if op.writes_arg() { 8 } else { 0 };
            match self.rng.weighted(&[62, 10, 8, ro, 12]) {
                0 => Place::Normal,
                1 => Place::Misaligned,
                2 => Place::Straddle,
                3 => Place::ReadOnly,
                _ => Place::Wild(WildKind::Null),
            }
        };
        match place {
            Place::Normal | Place::Misaligned => {
                let p = self
                    .arg
                    .anywhere(&mut self.rng, n, 8, place == Place::Misaligned);
                self.arg.put(p, v, n);
                (p as u64, place)
            }
            Place::Straddle => {
                let k = self.rng.range(1, n as u64 - 1) as usize;
                let p = self.arg.end() - k;
                self.arg.put(p, v, k);
                c.e.only(libc::EFAULT);
                c.names = vec!["argument cut by a guard page"];
                (p as u64, place)
            }
            Place::ReadOnly => {
                let _ = self.ro.protect(libc::PROT_READ | libc::PROT_WRITE);
                let p = self.ro.anywhere(&mut self.rng, n, 8, false);
                self.ro.put(p, v, n);
                let _ = self.ro.protect(libc::PROT_READ);
                // The module writes back only after doing the work: it
                // must fail, with EFAULT or what the work failed with.
                c.e.fail_any();
                c.also(libc::EFAULT);
                c.names.push("read-only argument");
                (p as u64, place)
            }
            Place::Wild(_) => {
                // Never garbage for a structure that holds user pointers:
                // the module would follow them.
                let garbage = !matches!(
                    op,
                    Op::RegionInfo | Op::FilePages | Op::SendBatch | Op::DmaRead
                );
                let (p, kind) = self.sh.wild.out_ptr(&mut self.rng, n, garbage);
                let end = self.sh.wild.scratch.end() as u64;
                if kind.unmapped() || (kind == WildKind::GuardEdge && p + n as u64 > end) {
                    c.e.only(libc::EFAULT);
                    c.names = vec!["argument pointer unmapped"];
                } else {
                    // Garbage: nothing is decided.
                    *c = Conds::default();
                }
                (p, Place::Wild(kind))
            }
        }
    }

    /// Reads back the argument the module wrote.
    fn back<T: Copy>(&self, p: u64, place: Place) -> Option<T> {
        place.readable_back().then(|| self.arg.get(p as usize))
    }

    /// Makes an ioctl: `(return, errno)`.
    fn ioctl(&self, fd: RawFd, cmd: u32, arg: u64) -> (i64, i32) {
        // SAFETY: `arg` points where `place` (or the wild-pointer rules
        // of `ptrs`) allows the kernel to read and write.
        let r = unsafe { libc::ioctl(fd, cmd as _, arg as usize) };
        let e = if r < 0 { last_errno() } else { 0 };
        (i64::from(r), e)
    }

    /// Counts and judges one outcome; true if it succeeded.
    fn judge(
        &mut self,
        op: Op,
        (ret, errno): (i64, i32),
        c: &Conds,
        what: impl FnOnce() -> String,
    ) -> bool {
        self.tally.add(op, if ret < 0 { errno } else { 0 });
        let f = &self.sh.findings;
        if ret < 0 {
            if !op.is_documented(errno) {
                f.add(
                    Kind::Undocumented,
                    format!("{} -> {}", op.name(), errno_name(errno)),
                    what,
                );
            } else if c.e.must_fail && !c.e.allows(errno) {
                let conds = c.names.join(" + ");
                f.add(
                    Kind::Oracle,
                    format!(
                        "{} -> {}, want {}",
                        op.name(),
                        errno_name(errno),
                        c.e.names()
                    ),
                    || format!("[{conds}] {}", what()),
                );
            }
            false
        } else {
            if c.e.must_fail {
                f.add(
                    Kind::UnexpectedSuccess,
                    format!("{} [{}]", op.name(), c.names.join(" + ")),
                    what,
                );
            }
            true
        }
    }

    fn bad_output(&self, key: &str, what: impl FnOnce() -> String) {
        self.sh.findings.add(Kind::BadOutput, key.to_string(), what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_pages_and_catch_wrapping() {
        let pg = page() as u64;
        assert_eq!(span_pages(pg, 1), Some(1));
        assert_eq!(span_pages(pg - 1, 2), Some(2));
        assert_eq!(span_pages(0, pg), Some(1));
        assert_eq!(span_pages(pg + 1, pg), Some(2));
        assert_eq!(span_pages(u64::MAX - 10, 5), None);
        assert_eq!(span_pages(1, u64::MAX), None);
    }
}
