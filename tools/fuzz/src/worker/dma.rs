//! `ZC_IOC_DMA_READ`: the DMA engine reads a region through its IOVAs.
//!
//! The engine is slow (100 ms of device time per transfer) and shared by
//! every context, one read at a time, so reads that would reach it take
//! their device time from [`crate::state::EngineBudget`] first; when it is
//! spent, the read is broken so that the module refuses it before any
//! transfer. The bytes read are not compared: the pool does not track what
//! its slots hold (the disturbers rewrite, zero and replace them), so a
//! successful read is judged by its `transfers`, which the ABI fixes.

use zcopy::abi;

use super::{span_pages, Conds, IdKind, Worker};
use crate::{
    args,
    ioctls::{errno_name, Op},
    ptrs::{page, WildKind},
    state::{Reg, ENGINE_TRANSFER_MS},
    tally::Kind,
};

/// Bytes the engine's buffer takes per round: one less than its 4 KiB
/// (QEMU 7.2's off-by-one, `Documentation/dma.rst`).
const ROUND: u64 = abi::ZC_DMA_READ_MAX as u64 - 1;

/// The transfers from RAM a read of `len` bytes (at least 1) at user
/// address `start` makes: one per page the range touches, and one more
/// where a round boundary falls inside a page. `None` if it wraps.
fn transfers(start: u64, len: u64) -> Option<u64> {
    let pages = span_pages(start, len)?;
    let pg = page() as u64;
    let splits = (1..)
        .map(|k| k * ROUND)
        .take_while(|&at| at < len)
        .filter(|&at| !(start + at).is_multiple_of(pg))
        .count() as u64;
    Some(pages + splits)
}

/// Device time, in ms, a read with argument `a` of region `kind` costs
/// if it reaches the engine (0 if the module refuses it first): its
/// transfers from RAM and one transfer out per round.
fn engine_ms(a: &abi::ZcDmaRead, kind: IdKind) -> u64 {
    let IdKind::Valid(r) = kind else { return 0 };
    let len = u64::from(a.len);
    if !r.engine
        || !(1..=u64::from(abi::ZC_DMA_READ_MAX)).contains(&len)
        || a.transfers != 0
        || a.reserved != 0
        || a.offset.checked_add(len).is_none_or(|end| end > r.len)
    {
        return 0;
    }
    let t = transfers(r.addr + a.offset, len).unwrap_or(0);
    (t + len.div_ceil(ROUND)) * ENGINE_TRANSFER_MS
}

/// Where `buf` was pointed.
#[derive(Clone, Copy, Debug)]
enum Buf {
    /// Into our output buffer (maybe running into its guard page).
    Ours,
    Wild(WildKind),
}

impl Worker<'_> {
    /// A region to read: mostly one of the engine's (ours, or on a shared
    /// fd), otherwise any (not mapped for the engine: `ENXIO`).
    fn pick_dma_reg(&mut self) -> Option<Reg> {
        if self.rng.chance(3, 4) {
            let mine: Vec<Reg> = self.regs.iter().filter(|r| r.engine).copied().collect();
            if !mine.is_empty() && self.rng.chance(3, 4) {
                return Some(mine[self.rng.below(mine.len() as u64) as usize]);
            }
            if let Some(r) = self.sh.book.pick_engine(&mut self.rng) {
                let usable = self
                    .own
                    .iter()
                    .chain(&self.sh.shared)
                    .any(|z| z.ctx == r.ctx);
                if usable {
                    return Some(r);
                }
            }
        }
        self.pick_reg()
    }

    pub(super) fn dma_read(&mut self) {
        let sh = self.sh;
        let pg = page() as u64;
        let max = u64::from(abi::ZC_DMA_READ_MAX);
        let target = self.pick_dma_reg();
        let (z, mut kind) = match target {
            Some(r) => (self.zfd_of(&r), IdKind::Valid(r)),
            None => (self.pick_zfd(), IdKind::Zero),
        };
        // A range inside the region: one byte, all the engine takes, a
        // few bytes, anything; from its start, to its end, across a page
        // boundary, anywhere.
        let (rlen, raddr) = target.map_or((pg, 0), |r| (r.len, r.addr));
        let most = rlen.clamp(1, max);
        let len = match self.rng.below(5) {
            0 => 1,
            1 => most,
            2 => self.rng.range(1, most.min(64)),
            _ => self.rng.range(1, most),
        };
        let last = rlen.saturating_sub(len);
        let offset = match self.rng.below(4) {
            0 => 0,
            1 => last,
            2 => {
                // The region's k-th page boundary, minus a part of `len`.
                let edge = pg - raddr % pg + pg * self.rng.below(rlen / pg + 1);
                edge.saturating_sub(self.rng.range(0, len - 1)).min(last)
            }
            _ => self.rng.range(0, last),
        };
        let misalign = self.rng.chance(1, 4);
        let buf = self.out.anywhere(&mut self.rng, len as usize, 8, misalign) as u64;
        let mut a = abi::ZcDmaRead {
            id: target.map_or(0, |r| r.id),
            len: len as u32,
            offset,
            buf,
            ..Default::default()
        };
        let mut at = Buf::Ours;
        let faulty = self.faulty();
        if faulty {
            for _ in 0..self.rng.range(1, 3) {
                let l = u64::from(a.len).max(1);
                match self.rng.below(10) {
                    0 => a.len = 0,
                    1 => {
                        a.len = match self.rng.below(3) {
                            0 => abi::ZC_DMA_READ_MAX + 1,
                            1 => self.rng.pick(&[2 * abi::ZC_DMA_READ_MAX, u32::MAX]),
                            _ => args::edge_u32(&mut self.rng),
                        }
                    }
                    2 => a.transfers = args::nonzero_u32(&mut self.rng),
                    3 => a.reserved = args::nonzero_u32(&mut self.rng),
                    4 => {
                        // Past the region's end.
                        a.offset = match self.rng.below(4) {
                            0 => rlen.saturating_sub(l) + self.rng.range(1, pg),
                            1 => rlen,
                            2 => rlen + pg * self.rng.range(1, 512),
                            _ => args::edge_len(&mut self.rng),
                        }
                    }
                    // offset + len wraps.
                    5 => a.offset = u64::MAX - self.rng.below(l.min(pg)),
                    6 => (a.id, kind) = self.bad_id(z.ctx),
                    7 => {
                        // Another context's engine region.
                        if let Some(r) = sh.book.pick_engine(&mut self.rng) {
                            if r.ctx != z.ctx {
                                (a.id, kind) = (r.id, IdKind::Foreign);
                            }
                        }
                    }
                    8 => {
                        let (p, k) = sh.wild.out_ptr(&mut self.rng, l as usize, true);
                        (a.buf, at) = (p, Buf::Wild(k));
                    }
                    _ => {
                        // Ending at, or running into, our buffer's guard.
                        let k = self.rng.range(1, l.min(max));
                        (a.buf, at) = ((self.out.end() as u64) - k, Buf::Ours);
                    }
                }
            }
        }
        // The device time it costs; when spent, a read the module refuses
        // before any transfer instead.
        let ms = engine_ms(&a, kind);
        if ms > 0 && !sh.engine.take(sh.t0.elapsed(), ms) {
            match self.rng.below(3) {
                0 => a.len = 0,
                1 => a.transfers = args::nonzero_u32(&mut self.rng),
                _ => a.reserved = args::nonzero_u32(&mut self.rng),
            }
        }
        // What the ABI decides, from the argument as it is now.
        let l = u64::from(a.len);
        let len_ok = (1..=max).contains(&l);
        let mut c = Conds::default();
        if !len_ok {
            c.add("len 0 or above ZC_DMA_READ_MAX", libc::EINVAL);
        }
        if a.transfers != 0 || a.reserved != 0 {
            c.add("transfers or reserved set", libc::EINVAL);
        }
        Self::id_cond(&mut c, kind);
        if let (IdKind::Valid(r), true) = (kind, len_ok) {
            match a.offset.checked_add(l) {
                None => c.add("offset + len wraps", libc::EOVERFLOW),
                Some(end) if end > r.len => c.add("range past the region", libc::EINVAL),
                Some(_) if !r.engine => c.add("region not mapped for the engine", libc::ENXIO),
                Some(_) => {
                    // Unmapped by an unbind of the engine since, or one
                    // racing the read.
                    c.also(libc::ENXIO);
                    c.also(libc::ENODEV);
                }
            }
        }
        c.also(libc::ENOMEM);
        // Whether `buf` cannot take the bytes: written last, after the
        // engine's read, so any earlier refusal wins (any is right).
        let scratch_end = sh.wild.scratch.end() as u64;
        let (buf_bad, buf_maybe) = match at {
            _ if !len_ok => (false, false),
            Buf::Ours => (!self.out.holds(a.buf as usize, l as usize), false),
            Buf::Wild(k) => (
                k.unmapped() || a.buf.checked_add(l).is_none_or(|e| e > scratch_end),
                false,
            ),
        };
        if buf_bad {
            if matches!(kind, IdKind::Guess) {
                // It cannot succeed, whatever region the guess names.
                c.e.fail_any();
                c.also(libc::EFAULT);
            } else {
                c.add("buf not writable", libc::EFAULT);
            }
        } else if buf_maybe {
            c.also(libc::EFAULT);
        }
        let (p, place) = self.place(Op::DmaRead, &a, faulty, &mut c);
        let r = self.ioctl(z.fd, abi::ZC_IOC_DMA_READ, p);
        let what = || format!("{a:?} {place:?} {kind:?} buf {at:?}");
        if r.0 < 0 && (r.1 == libc::ETIMEDOUT || r.1 == libc::EIO) {
            let why = if r.1 == libc::ETIMEDOUT {
                "a transfer did not complete within 5 s"
            } else {
                "the engine is wedged by an earlier timeout"
            };
            sh.findings.add(
                Kind::Engine,
                format!("DMA_READ -> {}: {why}", errno_name(r.1)),
                what,
            );
        }
        if !self.judge(Op::DmaRead, r, &c, what) {
            return;
        }
        let Some(b) = self.back::<abi::ZcDmaRead>(p, place) else {
            return;
        };
        // Exactly what the ABI counts for a region we know; for a guessed
        // one, at least a page and at most what any range of `len` makes.
        let want = match kind {
            IdKind::Valid(r) => r.addr.checked_add(a.offset).and_then(|s| transfers(s, l)),
            _ => None,
        };
        let t = u64::from(b.transfers);
        let bad_transfers = match want {
            Some(w) => t != w,
            None => t == 0 || t > l.div_ceil(pg) + 1 + l / ROUND,
        };
        if b.id != a.id
            || b.len != a.len
            || b.offset != a.offset
            || b.buf != a.buf
            || b.reserved != 0
        {
            self.bad_output("DMA_READ: input fields changed", || {
                format!("in {a:?} out {b:?}")
            });
        } else if bad_transfers {
            self.bad_output("DMA_READ: transfers", || {
                format!("in {a:?} out {b:?}, want {want:?} ({kind:?})")
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_follow_the_abi() {
        let pg = page() as u64;
        let max = u64::from(abi::ZC_DMA_READ_MAX);
        assert_eq!(transfers(pg, 1), Some(1));
        assert_eq!(transfers(2 * pg - 1, 2), Some(2));
        assert_eq!(transfers(u64::MAX, 2), None);
        if pg == 4096 {
            // One page, the round boundary inside it.
            assert_eq!(transfers(pg, max), Some(2));
            // Two pages, the boundary at the second's start.
            assert_eq!(transfers(pg + 1, max), Some(2));
            // "a 4096-byte read over two pages: 3".
            assert_eq!(transfers(pg + 100, max), Some(3));
            assert_eq!(transfers(pg + 100, max - 1), Some(2));
        }
    }

    #[test]
    fn only_reads_that_reach_the_engine_cost_its_time() {
        let pg = page() as u64;
        let r = Reg {
            fd: 3,
            ctx: 1,
            id: 7,
            addr: 16 * pg,
            len: 2 * pg,
            pages: 2,
            read_only: false,
            engine: true,
            private: true,
        };
        let a = abi::ZcDmaRead {
            id: 7,
            len: 1,
            ..Default::default()
        };
        // One byte: a transfer in, a transfer out.
        assert_eq!(engine_ms(&a, IdKind::Valid(r)), 200);
        let whole = abi::ZcDmaRead {
            len: abi::ZC_DMA_READ_MAX,
            offset: 100,
            ..a
        };
        if pg == 4096 {
            assert_eq!(engine_ms(&whole, IdKind::Valid(r)), 500);
        }
        for refused in [
            abi::ZcDmaRead { len: 0, ..a },
            abi::ZcDmaRead { transfers: 1, ..a },
            abi::ZcDmaRead { reserved: 1, ..a },
            abi::ZcDmaRead {
                offset: 2 * pg,
                ..a
            },
            abi::ZcDmaRead {
                offset: u64::MAX,
                ..a
            },
        ] {
            assert_eq!(engine_ms(&refused, IdKind::Valid(r)), 0, "{refused:?}");
        }
        let plain = Reg { engine: false, ..r };
        assert_eq!(engine_ms(&a, IdKind::Valid(plain)), 0);
        assert_eq!(engine_ms(&a, IdKind::Stale), 0);
    }
}
