//! The other calls: `ZC_IOC_VERSION`, `ZC_IOC_STATS`, `ZC_IOC_SET_EVENTFD`,
//! `ZC_IOC_FILE_PAGES`, `read(2)`, commands the ABI does not define, and
//! ABI commands on files that are not zcopy's.

use zcopy::abi;

use super::{last_errno, Conds, Worker};
use crate::{
    args,
    fds::FdKind,
    ioctls::{self, Expect, Op},
    ptrs::page,
    tally::Kind,
};

impl Worker<'_> {
    pub(super) fn version(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let mut c = Conds::default();
        let (p, place) = self.place(Op::Version, &abi::ZcVersion::default(), faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_VERSION, p);
        if self.judge(Op::Version, r, &c, || format!("arg {p:#x} {place:?}")) {
            if let Some(v) = self.back::<abi::ZcVersion>(p, place) {
                if v.abi_version != abi::ZC_ABI_VERSION || v.reserved != 0 {
                    self.bad_output("VERSION: abi_version or reserved", || format!("{v:?}"));
                }
            }
        }
    }

    pub(super) fn stats(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let mut c = Conds::default();
        let (p, place) = self.place(Op::Stats, &abi::ZcStats::default(), faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_STATS, p);
        if self.judge(Op::Stats, r, &c, || format!("arg {p:#x} {place:?}")) {
            if let Some(s) = self.back::<abi::ZcStats>(p, place) {
                let private = self.own.iter().any(|o| o.ctx == z.ctx);
                let mine = self
                    .regs
                    .iter()
                    .filter(|r| r.ctx == z.ctx && r.private)
                    .count() as u64;
                let bad = s.module.reserved != 0
                    || s.context.reserved != 0
                    || s.max_pinned_pages != self.sh.max_pinned
                    || s.context.completions > s.context.sends
                    || (private && s.context.regions < mine);
                if bad {
                    self.bad_output("STATS: inconsistent counters", || {
                        format!("{s:?} (our regions on it: {mine})")
                    });
                }
            }
        }
    }

    pub(super) fn set_eventfd(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let ev = self.sh.zoo.eventfd().unwrap_or(-1);
        let mut a = abi::ZcEventfd {
            fd: if self.rng.chance(1, 4) { -1 } else { ev },
            reserved: 0,
        };
        let mut c = Conds::default();
        if faulty {
            match self.rng.below(3) {
                0 => a.reserved = args::nonzero_u32(&mut self.rng),
                1 => {
                    let (k, fd) = self.sh.zoo.pick(&mut self.rng);
                    a.fd = fd;
                    if fd == -1 || k == FdKind::Eventfd {
                    } else if k.never_open() {
                        c.add("fd not open", libc::EBADF);
                    } else if k.open_non_socket() {
                        c.add("not an eventfd", libc::EINVAL);
                    } else {
                        c.also(libc::EBADF);
                        c.also(libc::EINVAL);
                    }
                }
                _ => {
                    // A pool socket: its number may be reused meanwhile.
                    let (_, fd) = self.sh.socks.pick(&mut self.rng);
                    a.fd = fd;
                    if fd >= 0 {
                        c.also(libc::EINVAL);
                        c.also(libc::EBADF);
                    }
                }
            }
        }
        if a.reserved != 0 {
            c.add("reserved set", libc::EINVAL);
        }
        let (p, place) = self.place(Op::SetEventfd, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_SET_EVENTFD, p);
        self.judge(Op::SetEventfd, r, &c, || format!("{a:?} {place:?}"));
    }

    pub(super) fn file_pages(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let mut c = Conds::default();
        let broken = faulty && self.rng.chance(1, 2);
        let (fd, fk) = self.pick_file(&mut c, broken);
        let esz = size_of::<abi::ZcFilePage>();
        let n = match self.rng.below(4) {
            0 => 0,
            1 => 4096,
            _ => self.rng.range(1, 300) as u32,
        };
        let fits = n as usize * esz;
        let mut a = abi::ZcFilePages {
            fd,
            nr_pages: n,
            offset: self.rng.below(self.sh.files.send_len + 4 * page() as u64),
            pages: self.out.anywhere(&mut self.rng, fits, 8, false) as u64,
            ..Default::default()
        };
        let mut pages_bad = false;
        let mut pages_ours = true;
        if faulty {
            match self.rng.below(6) {
                0 => a.reserved = args::nonzero_u32(&mut self.rng),
                1 => a.resident = args::nonzero_u32(&mut self.rng),
                2 => a.nr_pages = args::edge_u32(&mut self.rng),
                3 => a.offset = args::edge_len(&mut self.rng),
                4 => {
                    let (p, k) = self.sh.wild.out_ptr(&mut self.rng, fits, true);
                    a.pages = p;
                    pages_bad = k.unmapped();
                    pages_ours = false;
                }
                _ => a.pages = (self.out.end() - self.rng.range(0, 8) as usize * esz) as u64,
            }
        }
        if a.reserved != 0 || a.resident != 0 {
            c.add("resident or reserved set", libc::EINVAL);
        }
        if pages_bad && a.nr_pages > 0 && fk == FdKind::File && !c.e.must_fail {
            c.add("pages unmapped", libc::EFAULT);
            c.also(libc::EBADF);
        }
        let (p, place) = self.place(Op::FilePages, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_FILE_PAGES, p);
        if !self.judge(Op::FilePages, r, &c, || format!("{a:?} {place:?} {fk:?}")) {
            return;
        }
        let Some(b) = self.back::<abi::ZcFilePages>(p, place) else {
            return;
        };
        if b.nr_pages > a.nr_pages.min(4096) || b.resident > b.nr_pages {
            self.bad_output("FILE_PAGES: nr_pages or resident", || {
                format!("in {a:?} out {b:?}")
            });
            return;
        }
        if pages_ours && self.out.holds(a.pages as usize, b.nr_pages as usize * esz) {
            let mut resident = 0;
            for i in 0..b.nr_pages as usize {
                let e: abi::ZcFilePage = self.out.get(a.pages as usize + i * esz);
                let res = e.flags & abi::ZC_FILE_PAGE_RESIDENT != 0;
                resident += u32::from(res);
                if e.flags & !0xf != 0
                    || (!res && (e.flags | e.refcount | e.mapcount | e.order) != 0)
                {
                    self.bad_output("FILE_PAGES: entry", || format!("entry {i}: {e:?}"));
                    return;
                }
            }
            if resident != b.resident {
                self.bad_output("FILE_PAGES: resident count", || {
                    format!("{b:?}: {resident} entries resident")
                });
            }
        }
    }

    pub(super) fn read(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let size = size_of::<abi::ZcCompletion>();
        let mut c = Conds::default();
        let mut len = size * self.rng.range(1, 80) as usize;
        let mut p = self
            .rbuf
            .anywhere(&mut self.rng, len.min(self.rbuf.len()), 8, false);
        let mut ours = true;
        if faulty {
            match self.rng.below(5) {
                0 => len = self.rng.below(size as u64) as usize,
                1 => len = args::edge_len(&mut self.rng) as usize,
                2 => {
                    // Never the scratch mapping: records (our tags) must
                    // not land where garbage arguments are read from.
                    let (q, k) = self.sh.wild.out_ptr(&mut self.rng, len, false);
                    p = q as usize;
                    ours = false;
                    if k.kernel_half() {
                        // The VFS's access_ok refuses it before zcopy (a
                        // user address is only touched if a record is
                        // ready).
                        c.add("buffer in the kernel half", libc::EFAULT);
                    }
                }
                3 => p = self.rbuf.end() - self.rng.range(1, 2 * size as u64) as usize,
                _ => {
                    p = self
                        .rbuf
                        .anywhere(&mut self.rng, len.min(self.rbuf.len()), 8, true)
                }
            }
        }
        // An empty vector never reaches zcopy: readv(2) and preadv2(2)
        // answer 0 for it in the VFS.
        if len < size && len > 0 && ours {
            c.add("buffer smaller than a record", libc::EINVAL);
        }
        let nowait = self.rng.chance(1, 10);
        let n = if nowait {
            let iov = libc::iovec {
                iov_base: p as *mut _,
                iov_len: len,
            };
            // SAFETY: `p` is in our read buffer (writes stop at its guard)
            // or a wild pointer the kernel may write to (see `ptrs`).
            unsafe { libc::preadv2(z.fd, &iov, 1, -1, libc::RWF_NOWAIT) }
        } else if self.rng.chance(1, 8) && len >= 2 && self.rbuf.holds(p, len) {
            // Records split across segments. Both inside the read buffer:
            // the kernel fills each segment on its own, so a second one
            // past the guard page would not be stopped by it.
            let cut = self.rng.range(1, len as u64 - 1) as usize;
            let iov = [
                libc::iovec {
                    iov_base: p as *mut _,
                    iov_len: cut,
                },
                libc::iovec {
                    iov_base: (p + cut) as *mut _,
                    iov_len: len - cut,
                },
            ];
            // SAFETY: both segments inside the read buffer (checked).
            unsafe { libc::readv(z.fd, iov.as_ptr(), 2) }
        } else {
            // SAFETY: as above.
            unsafe { libc::read(z.fd, p as *mut _, len) }
        };
        let r = (n as i64, if n < 0 { last_errno() } else { 0 });
        let op = Op::Read;
        let what = || format!("fd {} len {len} at {p:#x} nowait {nowait}", z.fd);
        if nowait && r.0 < 0 && r.1 == libc::EOPNOTSUPP {
            // RWF_NOWAIT on a file without FMODE_NOWAIT: the VFS's answer.
            self.sh.findings.add(
                Kind::Note,
                "preadv2(RWF_NOWAIT) -> EOPNOTSUPP: the VFS refuses it (no FMODE_NOWAIT), \
                 so zcopy's IOCB_NOWAIT path is never reached"
                    .into(),
                what,
            );
            self.tally.add(op, r.1);
            return;
        }
        if !self.judge(op, r, &c, what) {
            return;
        }
        let n = n as usize;
        if !n.is_multiple_of(size) || n > len {
            self.bad_output("read: length", || format!("read {n} of {len}"));
            return;
        }
        if ours && self.rbuf.holds(p, n) {
            self.records(p, n, z.ctx);
        }
    }

    /// Hands the records at `p` (`n` bytes) to the ledger.
    pub(super) fn records(&self, p: usize, n: usize, ctx: u64) {
        let size = size_of::<abi::ZcCompletion>();
        for i in 0..n / size {
            let rec: abi::ZcCompletion = self.rbuf.get(p + i * size);
            self.sh.ledger.record(&rec, ctx, &self.sh.findings);
        }
    }

    pub(super) fn bad_cmd(&mut self) {
        let z = self.pick_zfd();
        let cmd = ioctls::bad_cmd(&mut self.rng);
        let p = if self.rng.chance(1, 2) {
            self.arg.anywhere(&mut self.rng, 256, 8, false) as u64
        } else {
            self.sh.wild.out_ptr(&mut self.rng, 256, false).0
        };
        let c = Conds {
            e: Expect::errno(libc::ENOTTY),
            names: vec!["not an ABI command"],
        };
        let r = self.ioctl(z.fd, cmd, p);
        self.judge(Op::BadCmd, r, &c, || format!("cmd {cmd:#x} arg {p:#x}"));
    }

    /// An ABI command on a file that is not zcopy's: not judged (the file
    /// answers, not zcopy), only counted.
    pub(super) fn wrong_fd(&mut self) {
        let (_, fd) = if self.rng.chance(1, 3) {
            let (_, fd) = self.sh.socks.pick(&mut self.rng);
            (FdKind::IpSocket, fd)
        } else {
            self.sh.zoo.pick(&mut self.rng)
        };
        let op = self.rng.pick(&Op::ALL[..Op::IOCTLS]);
        let cmd = op.cmd().unwrap_or(0);
        // Room for the largest argument, inside our buffer.
        let p = self.arg.anywhere(&mut self.rng, 256, 8, false);
        self.arg.zero(p, 256);
        let r = self.ioctl(fd, cmd, p as u64);
        self.judge(Op::WrongFd, r, &Conds::default(), String::new);
    }
}
