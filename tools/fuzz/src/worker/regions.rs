//! Region calls: `ZC_IOC_REGISTER`, `ZC_IOC_UNREGISTER`, `ZC_IOC_REGION_INFO`.

use zcopy::abi;

use super::{span_pages, Conds, IdKind, Worker};
use crate::{
    args,
    ioctls::Op,
    ptrs::{page, WildKind},
    state::{IfKind, Reg, ENGINE_TEARDOWN_MS, MAX_ENGINE_REGIONS},
};

/// The flags REGISTER knows (ABI 5).
const KNOWN_REGISTER_FLAGS: u32 = abi::ZC_REGISTER_READONLY | abi::ZC_REGISTER_DMA_ENGINE;

/// Where a region's address was pointed.
#[derive(Clone, Copy)]
enum Addr {
    /// Into the slot picked.
    Slot,
    /// Into the guard page after a slot.
    Guard,
    Wild(WildKind),
}

impl Worker<'_> {
    pub(super) fn register(&mut self) {
        let sh = self.sh;
        let pg = page() as u64;
        let z = self.pick_zfd();
        let slot = sh.pool.pick(&mut self.rng);
        let slen = slot.len as u64;
        let off = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(pg),
            2 => pg * self.rng.below(slen / pg),
            _ => self.rng.below(slen),
        };
        let room = slen - off;
        let len = match self.rng.below(4) {
            0 => room,
            1 => self.rng.range(1, room),
            2 => room.min(pg - (slot.base as u64 + off) % pg),
            _ => self.rng.range(1, room.min(4 * pg)),
        };
        let mut a = abi::ZcRegister {
            addr: slot.base as u64 + off,
            len,
            flags: if slot.read_only() || self.rng.chance(1, 4) {
                abi::ZC_REGISTER_READONLY
            } else {
                0
            },
            ..Default::default()
        };
        let mut ifk = IfKind::Zero;
        if self.rng.chance(1, 5) {
            let (i, k) = sh.ifaces.pick(&mut self.rng);
            a.ifindex = i;
            ifk = k;
        }
        let faulty = self.faulty();
        // A few well-formed ones for the DMA engine, the targets of
        // ZC_IOC_DMA_READ: few, since the engine is slow and shared (its
        // teardown's device time is taken now, given back if none is made).
        let mut engine_ms = 0;
        if !faulty
            && self.rng.chance(1, 20)
            && sh.book.engine_regions() < MAX_ENGINE_REGIONS
            && sh.engine.take(sh.t0.elapsed(), ENGINE_TEARDOWN_MS)
        {
            engine_ms = ENGINE_TEARDOWN_MS;
            a.flags |= abi::ZC_REGISTER_DMA_ENGINE;
            a.ifindex = 0;
            ifk = IfKind::Zero;
        }
        // Where `a.addr` was last pointed: whether pinning certainly
        // faults is decided from it and the final length, below.
        let mut at = Addr::Slot;
        if faulty {
            for _ in 0..self.rng.range(1, 3) {
                match self.rng.below(11) {
                    0 => a.flags |= args::unknown_bits(&mut self.rng, KNOWN_REGISTER_FLAGS),
                    1 => a.reserved = args::nonzero_u32(&mut self.rng),
                    2 => match self.rng.below(3) {
                        0 => a.id = args::nonzero_u32(&mut self.rng),
                        1 => a.nr_pages = args::nonzero_u32(&mut self.rng),
                        _ => a.nr_folios = args::nonzero_u32(&mut self.rng),
                    },
                    3 => a.len = args::edge_len(&mut self.rng),
                    4 => {
                        let (p, kind) = sh.wild.in_ptr(&mut self.rng, a.len as usize);
                        a.addr = p;
                        at = Addr::Wild(kind);
                    }
                    5 => {
                        // Into the guard page after a slot.
                        a.addr = sh.pool.guard(&mut self.rng) as u64 + self.rng.below(pg);
                        a.len = self.rng.range(1, pg - a.addr % pg);
                        at = Addr::Guard;
                    }
                    6 => {
                        // Past the slot's end, into its guard.
                        a.addr = slot.base as u64 + off;
                        a.len = room + self.rng.range(1, pg);
                        at = Addr::Slot;
                    }
                    7 => {
                        let k = self.rng.range(1, 4 * pg);
                        a.addr = u64::MAX - k + 1;
                        a.len = k + self.rng.range(0, pg);
                        at = Addr::Wild(WildKind::NearMax);
                    }
                    8 => {
                        let (i, k) = match self.rng.below(3) {
                            0 => (self.rng.pick(&[-1, -2, i32::MIN]), IfKind::Negative),
                            1 => (i32::MAX, IfKind::Missing),
                            _ => (1, IfKind::Loopback),
                        };
                        a.ifindex = i;
                        ifk = k;
                    }
                    9 => {
                        // The DMA engine and an interface at once.
                        a.flags |= abi::ZC_REGISTER_DMA_ENGINE;
                        if a.ifindex == 0 {
                            (a.ifindex, ifk) = (1, IfKind::Loopback);
                        }
                    }
                    _ => {
                        a.addr = 0;
                        at = Addr::Wild(WildKind::Null);
                    }
                }
            }
        }
        // The first page faults (a wild address that is never mapped, a
        // guard page), or the range runs from the slot into its guard.
        let slot_end = slot.base as u64 + slot.len as u64;
        let addr_bad = match at {
            Addr::Wild(k) => k.unmapped() && k != WildKind::Null,
            Addr::Guard => true,
            Addr::Slot => {
                a.addr.checked_add(a.len).is_some_and(|e| e > slot_end) && a.addr < slot_end
            }
        };
        // What the ABI decides, from the argument as it is now.
        let mut c = Conds::default();
        if a.flags & !KNOWN_REGISTER_FLAGS != 0 {
            c.add("unknown flag", libc::EINVAL);
        }
        if a.flags & abi::ZC_REGISTER_DMA_ENGINE != 0 && a.ifindex != 0 {
            c.add("the DMA engine and an interface", libc::EINVAL);
        }
        if a.reserved != 0 || a.id != 0 || a.nr_pages != 0 || a.nr_folios != 0 {
            c.add("reserved or output field set", libc::EINVAL);
        }
        if a.len == 0 {
            c.add("len 0", libc::EINVAL);
        }
        if a.ifindex < 0 {
            c.add("negative ifindex", libc::ENODEV);
        }
        if a.flags & abi::ZC_REGISTER_DMA_ENGINE != 0 {
            // No engine bound (no edu device), or it is being unbound.
            c.also(libc::ENODEV);
        }
        // Never decided, always possible: the cap may be reached by the
        // others' regions, the disturber may unmap or protect the slot.
        c.also(libc::ENOMEM);
        c.also(libc::EFAULT);
        if ifk == IfKind::Lab {
            c.also(libc::EOPNOTSUPP);
            c.also(libc::ENODEV);
        }
        let pages = span_pages(a.addr, a.len);
        if a.len > 0 {
            let wraps = pages.is_none_or(|n| n > u64::from(u32::MAX));
            if wraps {
                c.add("range wraps or too many pages", libc::EOVERFLOW);
            } else if a.addr == 0 {
                c.add("addr NULL", libc::EFAULT);
            } else {
                // Charged before pinning: the cap may refuse first.
                if pages.is_some_and(|n| n > sh.max_pinned) {
                    c.add("more pages than max_pinned_pages", libc::ENOMEM);
                }
                if addr_bad {
                    c.add("unmapped or guard page", libc::EFAULT);
                    c.also(libc::ENOMEM);
                }
                match ifk {
                    IfKind::Loopback | IfKind::Virtual => {
                        c.add("interface without DMA device", libc::EOPNOTSUPP);
                        c.also(libc::ENOMEM);
                    }
                    IfKind::Missing => {
                        c.add("no such interface", libc::ENODEV);
                        c.also(libc::ENOMEM);
                    }
                    _ => {}
                }
            }
        }
        let (p, place) = self.place(Op::Register, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_REGISTER, p);
        let ok = self.judge(Op::Register, r, &c, || {
            format!("{a:?} {place:?} ifk {ifk:?}")
        });
        if !ok {
            sh.engine.give_back(engine_ms);
            return;
        }
        let Some(b) = self.back::<abi::ZcRegister>(p, place) else {
            return;
        };
        if b.id == 0
            || Some(u64::from(b.nr_pages)) != pages
            || b.nr_folios == 0
            || b.nr_folios > b.nr_pages
        {
            self.bad_output("REGISTER: id, nr_pages or nr_folios", || {
                format!("in {a:?} out {b:?}, want {pages:?} pages")
            });
        }
        let private = self.own.iter().any(|o| o.ctx == z.ctx);
        let reg = Reg {
            fd: z.fd,
            ctx: z.ctx,
            id: b.id,
            addr: a.addr,
            len: a.len,
            pages: b.nr_pages,
            read_only: a.flags & abi::ZC_REGISTER_READONLY != 0,
            engine: a.flags & abi::ZC_REGISTER_DMA_ENGINE != 0,
            private,
        };
        self.regs.push(reg);
        sh.book.add(reg);
    }

    /// `oldest`: unregister the oldest region, validly.
    pub(super) fn unregister(&mut self, oldest: bool) {
        let faulty = !oldest && self.faulty();
        let valid = if oldest {
            self.regs.first().copied()
        } else {
            self.pick_reg()
        };
        let (z, mut id, mut kind) = match valid {
            Some(r) => (self.zfd_of(&r), r.id, IdKind::Valid(r)),
            None => (self.pick_zfd(), 0, IdKind::Zero),
        };
        let mut a = abi::ZcUnregister { id, reserved: 0 };
        if faulty {
            match self.rng.below(3) {
                0 => a.reserved = args::nonzero_u32(&mut self.rng),
                _ => {
                    (id, kind) = self.bad_id(z.ctx);
                    a.id = id;
                }
            }
        }
        let mut c = Conds::default();
        if a.reserved != 0 {
            c.add("reserved set", libc::EINVAL);
        }
        Self::id_cond(&mut c, kind);
        if matches!(kind, IdKind::Valid(_) | IdKind::Guess) {
            c.also(libc::EBUSY);
            c.also(libc::ENOENT);
        }
        let (p, place) = self.place(Op::Unregister, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_UNREGISTER, p);
        if self.judge(Op::Unregister, r, &c, || {
            format!("{a:?} {place:?} {kind:?}")
        }) {
            if place.as_built() {
                self.forget(a.id);
            } else {
                // Garbage named some region of that context: which, we
                // cannot know; ours there are no longer certain.
                for r in self.regs.iter_mut().filter(|r| r.ctx == z.ctx) {
                    r.private = false;
                }
            }
        } else if oldest && r.1 != libc::EBUSY {
            // Gone some other way (a shared region): forget it anyway.
            self.forget(id);
        } else if oldest {
            // Busy: move it to the back and try another time.
            if !self.regs.is_empty() {
                let r = self.regs.remove(0);
                self.regs.push(r);
            }
        }
    }

    pub(super) fn forget(&mut self, id: u32) {
        self.regs.retain(|r| r.id != id);
        self.sh.book.remove(id);
    }

    pub(super) fn region_info(&mut self) {
        let Some(reg) = self.pick_reg() else {
            return self.register();
        };
        let z = self.zfd_of(&reg);
        let faulty = self.faulty();
        let total = reg.pages;
        let first = self.rng.range(0, u64::from(total)) as u32;
        let n = match self.rng.below(4) {
            0 => 0,
            1 => total - first,
            2 => 4096,
            _ => self.rng.range(1, u64::from(total - first).max(1)) as u32,
        };
        let esz = size_of::<abi::ZcPageInfo>();
        let fits = (n.min(4096) as usize) * esz;
        let mut pages = self.out.anywhere(&mut self.rng, fits, 8, false) as u64;
        let mut a = abi::ZcRegionInfo {
            id: reg.id,
            first_page: first,
            nr_pages: n,
            pages,
            ..Default::default()
        };
        let mut kind = IdKind::Valid(reg);
        let mut pages_bad = false;
        let mut pages_ours = true;
        if faulty {
            for _ in 0..self.rng.range(1, 2) {
                match self.rng.below(6) {
                    0 => match self.rng.below(5) {
                        0 => a.flags = args::nonzero_u32(&mut self.rng),
                        1 => a.addr = args::nonzero_u64(&mut self.rng),
                        2 => a.len = args::nonzero_u64(&mut self.rng),
                        3 => a.total_pages = args::nonzero_u32(&mut self.rng),
                        _ => a.ifindex = args::edge_i32(&mut self.rng) | 1,
                    },
                    1 => (a.id, kind) = self.bad_id(z.ctx),
                    2 => {
                        let e = args::edge_u32(&mut self.rng);
                        a.first_page = self.rng.pick(&[total, total.wrapping_add(1), u32::MAX, e]);
                    }
                    3 => a.nr_pages = args::edge_u32(&mut self.rng),
                    4 => {
                        let (p, k) = self.sh.wild.out_ptr(&mut self.rng, fits, true);
                        pages = p;
                        pages_bad = k.unmapped();
                        pages_ours = false;
                    }
                    _ => {
                        // Ending at, or running into, the guard.
                        let m = self.rng.range(0, 8) as usize * esz;
                        pages = (self.out.end() - m) as u64;
                        // (A wild pointer picked before is replaced.)
                        pages_bad = false;
                        pages_ours = true;
                    }
                }
            }
            a.pages = pages;
        }
        let mut c = Conds::default();
        if a.flags != 0 || a.addr != 0 || a.len != 0 || a.total_pages != 0 || a.ifindex != 0 {
            c.add("output field set", libc::EINVAL);
        }
        Self::id_cond(&mut c, kind);
        if let IdKind::Valid(r) = kind {
            if r.private {
                if a.first_page > r.pages {
                    c.add("first_page past the region", libc::EINVAL);
                } else if pages_bad && a.nr_pages > 0 && a.first_page < r.pages {
                    c.add("pages unmapped", libc::EFAULT);
                }
            }
        }
        let (p, place) = self.place(Op::RegionInfo, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_REGION_INFO, p);
        if !self.judge(Op::RegionInfo, r, &c, || {
            format!("{a:?} {place:?} {kind:?}")
        }) {
            return;
        }
        let (Some(b), IdKind::Valid(reg)) = (self.back::<abi::ZcRegionInfo>(p, place), kind) else {
            return;
        };
        let want_n = a
            .nr_pages
            .min(reg.pages.saturating_sub(a.first_page))
            .min(4096);
        let ro = b.flags & abi::ZC_REGION_READONLY != 0;
        // DMA_ENGINE says how it was registered: it stays after an unbind.
        let engine = b.flags & abi::ZC_REGION_DMA_ENGINE != 0;
        if reg.private
            && (b.addr != reg.addr
                || b.len != reg.len
                || b.total_pages != reg.pages
                || b.nr_pages != want_n
                || ro != reg.read_only
                || engine != reg.engine
                || (engine && b.ifindex != 0))
        {
            self.bad_output(
                "REGION_INFO: description differs from the registration",
                || format!("{b:?} for {reg:?}, want {want_n} entries"),
            );
        }
        if pages_ours
            && b.nr_pages > 0
            && self.out.holds(a.pages as usize, b.nr_pages as usize * esz)
        {
            for i in 0..(b.nr_pages as usize).min(64) {
                let e: abi::ZcPageInfo = self.out.get(a.pages as usize + i * esz);
                let mapped = b.flags & abi::ZC_REGION_MAPPED != 0;
                if e.reserved != 0
                    || e.flags & !7 != 0
                    || e.flags & abi::ZC_PAGE_DMA_PINNED == 0
                    || e.refcount == 0
                    || (e.iova != 0 && !mapped)
                {
                    self.bad_output("REGION_INFO: page entry", || {
                        format!("entry {i}: {e:?} (region {b:?})")
                    });
                    break;
                }
            }
        }
    }
}
