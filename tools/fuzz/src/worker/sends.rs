//! Send calls: `ZC_IOC_SEND`, `ZC_IOC_SEND_BATCH`, `ZC_IOC_XMIT`,
//! `ZC_IOC_SENDFILE`, each tracked in the ledger until its record.

use std::os::fd::RawFd;

use zcopy::abi;

use super::{Conds, IdKind, Worker};
use crate::{
    args,
    ioctls::Op,
    net::SockKind,
    ptrs::{page, GuardedBuf},
    state::{is_worker_tag, IfKind, Outcome, Reg},
};

/// An ethernet + IPv4 + UDP header, complete with the IP checksum.
pub fn frame(src: [u8; 4], dst: [u8; 4], dport: u16, payload: u16) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0x5a, 0x46, 0x55, 0x5a, 0x5a]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(28 + payload).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let udp = &mut f[34..42];
    udp[..2].copy_from_slice(&0x5a5au16.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&(8 + payload).to_be_bytes());
    f
}

impl Worker<'_> {
    /// A valid `zc_send` over region `reg` through a sending socket.
    pub(super) fn valid_send(
        &mut self,
        reg: &Reg,
        sock: RawFd,
        kind: Option<SockKind>,
    ) -> abi::ZcSend {
        let off = self.rng.below(reg.len);
        let mut max = reg.len - off;
        if kind.is_some_and(|k| k.is_udp()) {
            max = max.min(args::UDP_MAX);
        }
        let len = match self.rng.below(4) {
            0 => max,
            1 => self.rng.range(1, max.min(64)),
            _ => self.rng.range(1, max),
        };
        let mut flags = 0;
        if self.rng.chance(3, 4) {
            flags |= abi::ZC_SEND_NONBLOCK;
        }
        if self.rng.chance(1, 10) {
            flags |= abi::ZC_SEND_MORE;
        }
        abi::ZcSend {
            fd: sock,
            flags,
            region: reg.id,
            reserved: 0,
            offset: off,
            len,
            tag: self.next_tag(),
            sent: 0,
        }
    }

    /// Breaks a `zc_send` in one or two ways, noting the conditions.
    pub(super) fn break_send(&mut self, s: &mut abi::ZcSend, ctx: u64, kind: &mut IdKind) {
        for _ in 0..self.rng.range(1, 2) {
            match self.rng.below(9) {
                0 => s.flags |= args::unknown_bits(&mut self.rng, 3),
                1 => s.reserved = args::nonzero_u32(&mut self.rng),
                2 => s.sent = args::nonzero_u64(&mut self.rng),
                3 => s.len = 0,
                4 => s.len = args::edge_len(&mut self.rng),
                5 => s.offset = args::edge_len(&mut self.rng),
                6 => (s.region, *kind) = self.bad_id(ctx),
                7 => {
                    if let IdKind::Valid(r) = *kind {
                        s.len = args::len_near(&mut self.rng, r.len - s.offset.min(r.len));
                    }
                }
                _ => s.tag = args::raw_tag(&mut self.rng),
            }
        }
    }

    /// The conditions a `zc_send` (or batch entry) carries.
    pub(super) fn send_conds(s: &abi::ZcSend, kind: IdKind, c: &mut Conds) {
        if s.flags & !3 != 0 {
            c.add("unknown flag", libc::EINVAL);
        }
        if s.reserved != 0 || s.sent != 0 {
            c.add("reserved or sent set", libc::EINVAL);
        }
        if s.len == 0 {
            c.add("len 0", libc::EINVAL);
        }
        let end = s.offset.checked_add(s.len);
        if end.is_none() {
            c.add("offset + len wraps", libc::EOVERFLOW);
        }
        Self::id_cond(c, kind);
        if let (IdKind::Valid(r), Some(e)) = (kind, end) {
            if e > r.len && s.len > 0 {
                if r.private {
                    c.add("range past the region", libc::EINVAL);
                } else {
                    c.also(libc::EINVAL);
                }
            }
        }
    }

    pub(super) fn send(&mut self) {
        let Some(reg) = self.pick_reg() else {
            return self.register();
        };
        let z = self.zfd_of(&reg);
        let faulty = self.faulty();
        let mut c = Conds::default();
        let (sock, sk) = self.pick_sock(&mut c, faulty);
        let mut s = self.valid_send(&reg, sock, sk);
        let mut kind = IdKind::Valid(reg);
        if faulty {
            self.break_send(&mut s, z.ctx, &mut kind);
        }
        Self::send_conds(&s, kind, &mut c);
        c.also(libc::ENOBUFS);
        let (p, place) = self.place(Op::Send, &s, faulty, &mut c);
        let ours = place.as_built() && is_worker_tag(s.tag);
        if ours {
            self.sh.ledger.pending(s.tag, z.ctx);
        }
        let r = self.ioctl(z.fd, abi::ZC_IOC_SEND, p);
        let ok = self.judge(Op::Send, r, &c, || {
            format!("{s:?} {place:?} {sk:?} {kind:?}")
        });
        let out = match (ok, self.back::<abi::ZcSend>(p, place)) {
            (true, Some(b)) => {
                // (A datagram goes whole, but the socket's number may have
                // been reused by a stream socket meanwhile: not checked.)
                if b.sent == 0 || b.sent > s.len {
                    self.bad_output("SEND: sent", || format!("in {s:?} out {b:?} {sk:?}"));
                }
                Outcome::Sent(b.sent)
            }
            (true, None) => Outcome::Maybe,
            (false, _) if r.1 == libc::EFAULT => Outcome::Maybe,
            _ => Outcome::Failed,
        };
        if ours {
            self.sh.ledger.resolve(s.tag, out, &self.sh.findings);
        }
    }

    pub(super) fn send_batch(&mut self) {
        let Some(reg) = self.pick_reg() else {
            return self.register();
        };
        let z = self.zfd_of(&reg);
        let faulty = self.faulty();
        let max = abi::ZC_SEND_BATCH_MAX as usize;
        let esz = size_of::<abi::ZcSend>();
        let n = match self.rng.below(4) {
            0 => 1,
            1 => max,
            _ => self.rng.range(1, 8) as usize,
        };
        // Entries: the first with the conditions of a lone send.
        let mut first = Conds::default();
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let r = if i == 0 {
                Some(reg)
            } else {
                self.pick_reg_in(z.ctx)
            };
            let Some(r) = r else { break };
            let mut c = Conds::default();
            let broken = faulty && self.rng.chance(1, 3);
            let (sock, sk) = self.pick_sock(&mut c, broken);
            let mut s = self.valid_send(&r, sock, sk);
            let mut kind = IdKind::Valid(r);
            if faulty && self.rng.chance(1, 4) {
                self.break_send(&mut s, z.ctx, &mut kind);
            }
            if i == 0 {
                Self::send_conds(&s, kind, &mut c);
                c.also(libc::ENOBUFS);
                first = c;
            }
            entries.push(s);
        }
        let n = entries.len();
        // Where the entries go: from the start of the batch page, or so
        // that some run into its guard.
        let cut = faulty && self.rng.chance(1, 5);
        let at = if cut {
            self.batch.end()
                - esz * self.rng.range(0, n as u64 - 1) as usize
                - self.rng.range(0, 7) as usize
        } else {
            self.batch.base() + 8 * self.rng.range(0, 4) as usize
        };
        let room = (self.batch.end() - at) / esz;
        self.batch.zero(self.batch.base(), self.batch.len());
        for (i, e) in entries.iter().enumerate() {
            let q = at + i * esz;
            let fit = (self.batch.end() - q).min(esz);
            if q < self.batch.end() {
                self.batch.put(q, e, fit);
            }
        }
        let mut b = abi::ZcSendBatch {
            sends: at as u64,
            nr: n as u32,
            ..Default::default()
        };
        let mut sends_bad = false;
        if faulty {
            match self.rng.below(7) {
                0 => {
                    let e = args::edge_u32(&mut self.rng);
                    b.nr = self.rng.pick(&[0, max as u32 + 1, u32::MAX, e]);
                }
                1 => b.accepted = args::nonzero_u32(&mut self.rng),
                2 => b.error = args::nonzero_u32(&mut self.rng) as i32,
                3 => b.reserved = args::nonzero_u32(&mut self.rng),
                4 => {
                    let (p, k) = self.sh.wild.out_ptr(&mut self.rng, n * esz, false);
                    b.sends = p;
                    sends_bad = k.unmapped();
                }
                5 => b.nr = (n as u32 + self.rng.range(1, 4) as u32).min(max as u32),
                _ => {}
            }
        }
        let mut c = Conds::default();
        if b.nr == 0 || b.nr > max as u32 {
            c.add("nr 0 or above 64", libc::EINVAL);
        }
        if b.accepted != 0 || b.error != 0 || b.reserved != 0 {
            c.add("accepted, error or reserved set", libc::EINVAL);
        }
        if !c.e.must_fail {
            if sends_bad {
                c.add("entries unmapped", libc::EFAULT);
            } else if cut && room == 0 {
                c.add("first entry cut by a guard page", libc::EFAULT);
            } else if b.sends == at as u64 {
                // The first entry decides, as a lone send.
                c = first;
            }
        }
        let (p, place) = self.place(Op::SendBatch, &b, faulty, &mut c);
        let ours = place.as_built() && b.sends == at as u64;
        let tags: Vec<u64> = entries
            .iter()
            .map(|e| e.tag)
            .filter(|&t| is_worker_tag(t))
            .collect();
        if ours {
            for &t in &tags {
                self.sh.ledger.pending(t, z.ctx);
            }
        }
        let r = self.ioctl(z.fd, abi::ZC_IOC_SEND_BATCH, p);
        let ok = self.judge(Op::SendBatch, r, &c, || {
            format!(
                "{b:?} {place:?} entries {n} room {room}; first {:?}",
                entries.first()
            )
        });
        if !ours {
            return;
        }
        let back = self.back::<abi::ZcSendBatch>(p, place);
        for (i, e) in entries.iter().enumerate() {
            if !is_worker_tag(e.tag) {
                continue;
            }
            let readable = i < room && at + (i + 1) * esz <= self.batch.end();
            let got: Option<abi::ZcSend> = readable.then(|| self.batch.get(at + i * esz));
            let out = match (ok, back) {
                (true, Some(bb)) => {
                    if i < bb.accepted as usize {
                        match got {
                            Some(g) if g.sent > 0 && g.sent <= e.len => Outcome::Sent(g.sent),
                            Some(g) => {
                                self.bad_output("SEND_BATCH: accepted entry's sent", || {
                                    format!("entry {i} {g:?} of {bb:?}")
                                });
                                Outcome::Maybe
                            }
                            None => Outcome::Maybe,
                        }
                    } else {
                        if got.is_some_and(|g| g.sent != e.sent) {
                            self.bad_output("SEND_BATCH: refused entry written back", || {
                                format!("entry {i} {got:?} of {bb:?}")
                            });
                        }
                        Outcome::Failed
                    }
                }
                (true, None) => Outcome::Maybe,
                (false, _) if r.1 == libc::EFAULT => Outcome::Maybe,
                _ => Outcome::Failed,
            };
            self.sh.ledger.resolve(e.tag, out, &self.sh.findings);
        }
        if let (true, Some(bb)) = (ok, back) {
            let refused = bb.error != 0;
            let last_short = bb.accepted > 0
                && (bb.accepted as usize) <= n
                && readable_sent_short(&self.batch, at, esz, bb.accepted as usize - 1, room);
            if bb.accepted == 0
                || bb.accepted > b.nr
                || bb.reserved != 0
                || (refused && !Op::Send.is_documented(bb.error))
                || (refused && bb.accepted >= b.nr)
                || (bb.accepted < b.nr && !refused && !last_short)
            {
                self.bad_output("SEND_BATCH: accepted/error", || {
                    format!("in {b:?} out {bb:?} (entries {n}, room {room})")
                });
            }
        }
    }

    pub(super) fn xmit(&mut self) {
        let Some(reg) = self.pick_reg() else {
            return self.register();
        };
        let sh = self.sh;
        let z = self.zfd_of(&reg);
        let faulty = self.faulty();
        let (ifindex, ifk) = match self.rng.below(5) {
            0 => (1, IfKind::Loopback),
            1 => (
                sh.ifaces.dummy.load(std::sync::atomic::Ordering::Relaxed),
                IfKind::Virtual,
            ),
            2 => (
                sh.ifaces.wire.load(std::sync::atomic::Ordering::Relaxed),
                IfKind::Wire,
            ),
            _ => (
                sh.ifaces.lab.load(std::sync::atomic::Ordering::Relaxed),
                IfKind::Lab,
            ),
        };
        let pg = page() as u64;
        let off = self.rng.below(reg.len);
        let len = self.rng.range(1, (reg.len - off).min(1400));
        let (src, dst, port) = match ifk {
            IfKind::Loopback => ([127, 0, 0, 1], [127, 0, 0, 1], 9),
            IfKind::Virtual => ([10, 99, 3, 1], [10, 99, 3, 2], 9),
            IfKind::Wire => ([10, 99, 1, 1], [10, 99, 1, 2], sh.wire_udp),
            _ => ([10, 99, 9, 1], [10, 99, 9, 2], sh.lab_udp),
        };
        let f = frame(src, dst, port, len as u16);
        let hp = self.hdr.base() + 8 * self.rng.below(16) as usize;
        self.hdr.put(hp, &f, f.len());
        let mut x = abi::ZcXmit {
            ifindex,
            flags: 0,
            region: reg.id,
            hdr_len: f.len() as u32,
            hdr: hp as u64,
            offset: off,
            len,
            tag: self.next_tag(),
        };
        let mut kind = IdKind::Valid(reg);
        let mut hdr_kind = None;
        if faulty {
            for _ in 0..self.rng.range(1, 2) {
                match self.rng.below(9) {
                    0 => x.flags = args::nonzero_u32(&mut self.rng),
                    1 => x.hdr_len = self.rng.pick(&[0, 1, 13, 14, 256, 257, u32::MAX]),
                    2 => {
                        let (p, k) = sh.wild.in_ptr(&mut self.rng, x.hdr_len as usize);
                        x.hdr = p;
                        hdr_kind = Some(k);
                    }
                    3 => {
                        // Header ending at, or running into, a guard.
                        x.hdr = (self.hdr.end() - self.rng.range(1, 64) as usize) as u64;
                        // (A wild pointer picked before is replaced.)
                        hdr_kind = None;
                    }
                    4 => x.ifindex = self.rng.pick(&[0, -1, i32::MIN, i32::MAX]),
                    5 => (x.region, kind) = self.bad_id(z.ctx),
                    6 => {
                        let e = args::edge_len(&mut self.rng);
                        x.len = self.rng.pick(&[0, 1501, 17 * pg + 1, u64::MAX, e]);
                    }
                    7 => x.offset = args::edge_len(&mut self.rng),
                    _ => x.tag = args::raw_tag(&mut self.rng),
                }
            }
        }
        let mut c = Conds::default();
        if x.flags != 0 {
            c.add("flags set", libc::EINVAL);
        }
        if x.hdr_len == 0 || x.hdr_len > abi::ZC_XMIT_MAX_HDR {
            c.add("hdr_len 0 or above 256", libc::EINVAL);
        } else {
            match hdr_kind {
                Some(k) if k.unmapped() => c.add("hdr unmapped", libc::EFAULT),
                Some(_) => c.also(libc::EFAULT),
                None if x.hdr + u64::from(x.hdr_len) > self.hdr.end() as u64 => {
                    c.add("hdr runs into a guard page", libc::EFAULT)
                }
                None => {}
            }
        }
        if x.ifindex <= 0 || x.ifindex == i32::MAX {
            c.add("no such interface", libc::ENODEV);
        }
        if x.len == 0 {
            c.add("len 0", libc::EINVAL);
        }
        let end = x.offset.checked_add(x.len);
        if end.is_none() {
            c.add("offset + len wraps", libc::EOVERFLOW);
        }
        Self::id_cond(&mut c, kind);
        if let (IdKind::Valid(r), Some(e)) = (kind, end) {
            if e > r.len && x.len > 0 {
                if r.private {
                    c.add("range past the region", libc::EINVAL);
                } else {
                    c.also(libc::EINVAL);
                }
            }
        }
        // The lab's interface may be down, gone or renumbered; any queue
        // may drop the frame.
        for e in [
            libc::ENETDOWN,
            libc::ENODEV,
            libc::ENOBUFS,
            libc::EMSGSIZE,
            libc::EINVAL,
            libc::EPERM,
        ] {
            c.also(e);
        }
        let (p, place) = self.place(Op::Xmit, &x, faulty, &mut c);
        let ours = place.as_built() && is_worker_tag(x.tag);
        if ours {
            sh.ledger.pending(x.tag, z.ctx);
        }
        let r = self.ioctl(z.fd, abi::ZC_IOC_XMIT, p);
        let ok = self.judge(Op::Xmit, r, &c, || {
            format!("{x:?} {place:?} {ifk:?} {kind:?}")
        });
        if ours {
            let out = if ok {
                Outcome::Sent(x.len)
            } else {
                Outcome::Failed
            };
            sh.ledger.resolve(x.tag, out, &sh.findings);
        }
    }

    pub(super) fn sendfile(&mut self) {
        let z = self.pick_zfd();
        let faulty = self.faulty();
        let mut c = Conds::default();
        let broken = faulty && self.rng.chance(1, 2);
        let (sock, sk) = self.pick_sock(&mut c, broken);
        let broken = faulty && self.rng.chance(1, 2);
        let (fd, fk) = self.pick_file(&mut c, broken);
        let size = self.sh.files.send_len;
        let pg = page() as u64;
        let mut s = abi::ZcSendfile {
            sock,
            fd,
            flags: if self.rng.chance(3, 4) {
                abi::ZC_SEND_NONBLOCK
            } else {
                0
            },
            reserved: 0,
            offset: match self.rng.below(4) {
                0 => 0,
                1 => self.rng.below(size),
                2 => pg * self.rng.below(size / pg),
                _ => size - self.rng.below(2 * pg).min(size),
            },
            len: match self.rng.below(5) {
                0 => self.rng.range(1, pg),
                1 => self.rng.range(1, 64 * pg),
                2 => u64::from(abi::ZC_SENDFILE_MAX) + self.rng.below(2),
                _ => self.rng.range(1, 4 * pg),
            },
            tag: self.next_tag(),
            ..Default::default()
        };
        if sk.is_some_and(|k| k.is_udp()) {
            s.len = s.len.min(args::UDP_MAX);
        }
        if faulty {
            for _ in 0..self.rng.range(0, 2) {
                match self.rng.below(8) {
                    0 => s.flags |= args::unknown_bits(&mut self.rng, 3),
                    1 => s.reserved = args::nonzero_u32(&mut self.rng),
                    2 => match self.rng.below(3) {
                        0 => s.sent = args::nonzero_u64(&mut self.rng),
                        1 => s.pages_cached = args::nonzero_u32(&mut self.rng),
                        _ => s.pages_read = args::nonzero_u32(&mut self.rng),
                    },
                    3 => s.len = args::edge_len(&mut self.rng),
                    4 => s.offset = args::edge_len(&mut self.rng),
                    5 => {
                        s.offset = args::LLONG_MAX - self.rng.below(2 * pg);
                        s.len = self.rng.range(1, 4 * pg);
                    }
                    6 => s.len = 0,
                    _ => s.tag = args::raw_tag(&mut self.rng),
                }
            }
        }
        if s.flags & !3 != 0 {
            c.add("unknown flag", libc::EINVAL);
        }
        if s.reserved != 0 || s.sent != 0 || s.pages_cached != 0 || s.pages_read != 0 {
            c.add("reserved or output field set", libc::EINVAL);
        }
        if s.len == 0 || s.len > args::LLONG_MAX {
            c.add("len 0 or above LLONG_MAX", libc::EINVAL);
        }
        if s.offset > args::LLONG_MAX {
            c.add("offset above LLONG_MAX", libc::EINVAL);
        } else if s.len <= args::LLONG_MAX && s.offset.saturating_add(s.len) > args::LLONG_MAX {
            c.add("offset + len above LLONG_MAX", libc::EOVERFLOW);
        }
        c.also(libc::ENOBUFS);
        let (p, place) = self.place(Op::Sendfile, &s, faulty, &mut c);
        let ours = place.as_built() && is_worker_tag(s.tag);
        if ours {
            self.sh.ledger.pending(s.tag, z.ctx);
        }
        let r = self.ioctl(z.fd, abi::ZC_IOC_SENDFILE, p);
        let ok = self.judge(Op::Sendfile, r, &c, || {
            format!("{s:?} {place:?} {sk:?} {fk:?}")
        });
        let out = match (ok, self.back::<abi::ZcSendfile>(p, place)) {
            (true, Some(b)) => {
                let cap = s.len.min(u64::from(abi::ZC_SENDFILE_MAX));
                if b.sent > cap {
                    self.bad_output("SENDFILE: sent", || format!("in {s:?} out {b:?}"));
                }
                Outcome::Sent(b.sent)
            }
            (true, None) => Outcome::Maybe,
            (false, _) if r.1 == libc::EFAULT => Outcome::Maybe,
            _ => Outcome::Failed,
        };
        if ours {
            self.sh.ledger.resolve(s.tag, out, &self.sh.findings);
        }
    }
}

/// Whether entry `i` at `at` was accepted short (`sent < len`).
fn readable_sent_short(buf: &GuardedBuf, at: usize, esz: usize, i: usize, room: usize) -> bool {
    if i >= room || at + (i + 1) * esz > buf.end() {
        return true; // cannot tell
    }
    let e: abi::ZcSend = buf.get(at + i * esz);
    e.sent < e.len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_a_valid_ip_checksum() {
        let f = frame([10, 99, 9, 1], [10, 99, 9, 2], 4242, 100);
        let ip = &f[14..34];
        let mut sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 128);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 4242);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 108);
    }
}
