//! What the threads share: the run's settings and resources, the region
//! ids seen, the ledger of sends and their completion records, and the
//! interfaces' current numbers.

use std::{
    collections::{HashMap, VecDeque},
    os::fd::RawFd,
    sync::{
        atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use zcopy::abi;

use crate::{
    fds::{Files, Zoo},
    net::{self, Socks},
    opts::Opts,
    pool::Pool,
    ptrs::Wild,
    rng::Rng,
    tally::{Findings, Kind},
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An open `/dev/zcopy` fd and the context behind it (our own numbering:
/// one per open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZFd {
    pub fd: RawFd,
    pub ctx: u64,
    pub nonblock: bool,
}

/// A region as registered: for picking valid ids and ranges.
#[derive(Clone, Copy, Debug)]
pub struct Reg {
    pub fd: RawFd,
    pub ctx: u64,
    pub id: u32,
    pub addr: u64,
    pub len: u64,
    pub pages: u32,
    pub read_only: bool,
    /// Registered with `ZC_REGISTER_DMA_ENGINE`: mapped for the DMA engine,
    /// a target for `ZC_IOC_DMA_READ`.
    pub engine: bool,
    /// On a worker's private fd: nobody else can unregister it.
    pub private: bool,
}

/// Region ids seen: live ones by context, and unregistered ones (which
/// never name a region again: ids are unique for the module's lifetime).
#[derive(Default)]
pub struct Book {
    live: Mutex<Vec<Reg>>,
    stale: Mutex<VecDeque<u32>>,
    max_id: AtomicU32,
}

impl Book {
    pub fn add(&self, r: Reg) {
        self.max_id.fetch_max(r.id, Relaxed);
        let mut v = lock(&self.live);
        if v.len() >= 1024 {
            v.remove(0);
        }
        v.push(r);
    }

    /// Region `id` is gone.
    pub fn remove(&self, id: u32) {
        lock(&self.live).retain(|r| r.id != id);
        let mut s = lock(&self.stale);
        if s.len() >= 256 {
            s.pop_front();
        }
        s.push_back(id);
    }

    /// Context `ctx` was closed: its regions are gone.
    pub fn forget_ctx(&self, ctx: u64) {
        let gone: Vec<u32> = {
            let mut v = lock(&self.live);
            let gone = v.iter().filter(|r| r.ctx == ctx).map(|r| r.id).collect();
            v.retain(|r| r.ctx != ctx);
            gone
        };
        let mut s = lock(&self.stale);
        for id in gone {
            if s.len() >= 256 {
                s.pop_front();
            }
            s.push_back(id);
        }
    }

    /// A live region of context `ctx`.
    pub fn pick_in(&self, rng: &mut Rng, ctx: u64) -> Option<Reg> {
        let v = lock(&self.live);
        let mine: Vec<&Reg> = v.iter().filter(|r| r.ctx == ctx).collect();
        (!mine.is_empty()).then(|| *mine[rng.below(mine.len() as u64) as usize])
    }

    /// A live region of the DMA engine.
    pub fn pick_engine(&self, rng: &mut Rng) -> Option<Reg> {
        let v = lock(&self.live);
        let e: Vec<&Reg> = v.iter().filter(|r| r.engine).collect();
        (!e.is_empty()).then(|| *e[rng.below(e.len() as u64) as usize])
    }

    /// Live regions of the DMA engine (each costs the device time when
    /// torn down).
    pub fn engine_regions(&self) -> usize {
        lock(&self.live).iter().filter(|r| r.engine).count()
    }

    /// Any live region.
    pub fn pick(&self, rng: &mut Rng) -> Option<Reg> {
        let v = lock(&self.live);
        (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize])
    }

    /// The id of a live region of another context than `ctx`.
    pub fn pick_foreign(&self, rng: &mut Rng, ctx: u64) -> Option<u32> {
        let v = lock(&self.live);
        let other: Vec<u32> = v.iter().filter(|r| r.ctx != ctx).map(|r| r.id).collect();
        (!other.is_empty()).then(|| other[rng.below(other.len() as u64) as usize])
    }

    /// An id that was unregistered.
    pub fn pick_stale(&self, rng: &mut Rng) -> Option<u32> {
        let s = lock(&self.stale);
        (!s.is_empty()).then(|| s[rng.below(s.len() as u64) as usize])
    }

    /// An id near the highest seen: maybe someone's (a forked child's).
    pub fn guess(&self, rng: &mut Rng) -> u32 {
        let m = self.max_id.load(Relaxed);
        m.wrapping_add(rng.below(8) as u32).wrapping_sub(3)
    }
}

/// Engine regions of the workers' at most at once: each costs the device
/// 0.3 s when torn down (the teardown probe of test builds), all of them
/// when the fds close at the end.
pub const MAX_ENGINE_REGIONS: usize = 4;
/// Device time an engine region's teardown costs, charged when it is made.
pub const ENGINE_TEARDOWN_MS: u64 = 300;
/// Device time of one engine transfer.
pub const ENGINE_TRANSFER_MS: u64 = 100;
/// The share of the run's time the workers may keep the DMA engine busy,
/// and the device time they may spend at once: the engine does one read
/// (and one mapping, one teardown) at a time, from any context, sleeping
/// uninterruptibly, so more would stall the workers queued behind it.
const ENGINE_SHARE: f64 = 0.2;
const ENGINE_BURST_MS: u64 = 1000;

/// The DMA engine's time the workers have committed: reads made and
/// engine regions' teardowns to come.
#[derive(Default)]
pub struct EngineBudget {
    spent_ms: AtomicU64,
}

impl EngineBudget {
    /// Takes `ms` of device time, if `elapsed` of run allows it.
    pub fn take(&self, elapsed: Duration, ms: u64) -> bool {
        let allowed = (elapsed.as_secs_f64() * 1000.0 * ENGINE_SHARE) as u64 + ENGINE_BURST_MS;
        self.spent_ms
            .fetch_update(Relaxed, Relaxed, |s| {
                (s.saturating_add(ms) <= allowed).then_some(s + ms)
            })
            .is_ok()
    }

    /// Gives back `ms` taken for something that did not happen.
    pub fn give_back(&self, ms: u64) {
        let _ = self
            .spent_ms
            .fetch_update(Relaxed, Relaxed, |s| Some(s.saturating_sub(ms)));
    }
}

/// A tag the workers give sends: `(thread + 1) << 48 | n`, top byte 0.
pub fn worker_tag(tid: usize, n: u64) -> u64 {
    ((tid as u64 + 1) << 48) | (n & 0xffff_ffff_ffff)
}

/// Whether `tag` is a worker's (forked children use `CHILD_TAG`, garbage
/// arguments anything).
pub fn is_worker_tag(tag: u64) -> bool {
    tag >> 56 == 0 && (tag >> 48) & 0xff != 0
}

/// The tags forked children use.
pub const CHILD_TAG: u64 = 0xcc << 56;

/// Where a send stands in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// The call is being made.
    Pending { ctx: u64 },
    /// Accepted `bytes`: one record with them follows.
    Sent { ctx: u64, bytes: u64 },
    /// The call failed after the send may have gone out (its argument
    /// could not be written back): a record may follow.
    Maybe { ctx: u64 },
    /// The record came before the call returned.
    Early { ctx: u64, bytes: u64 },
}

/// How a send call ended, for the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent(u64),
    Maybe,
    Failed,
}

/// Every send's tag until its completion record is read: a record for a
/// send that failed, a second record, a record with other bytes or in
/// another context are findings.
#[derive(Default)]
pub struct Ledger {
    m: Mutex<HashMap<u64, Entry>>,
    pub foreign: AtomicU64,
    pub records: AtomicU64,
}

impl Ledger {
    pub fn pending(&self, tag: u64, ctx: u64) {
        lock(&self.m).insert(tag, Entry::Pending { ctx });
    }

    pub fn resolve(&self, tag: u64, out: Outcome, f: &Findings) {
        let mut m = lock(&self.m);
        let Some(&e) = m.get(&tag) else { return };
        let ctx = match e {
            Entry::Pending { ctx } => ctx,
            Entry::Early { ctx, bytes } => {
                m.remove(&tag);
                match out {
                    Outcome::Sent(b) if b != bytes => f.add(
                        Kind::Records,
                        "record bytes differ from the send's".into(),
                        || format!("tag {tag:#x}: sent {b}, record {bytes} (ctx {ctx})"),
                    ),
                    Outcome::Failed => f.add(
                        Kind::Records,
                        "record for a send that failed".into(),
                        || format!("tag {tag:#x}: record {bytes} bytes (ctx {ctx})"),
                    ),
                    _ => {}
                }
                return;
            }
            _ => return,
        };
        match out {
            Outcome::Sent(bytes) if bytes > 0 => {
                m.insert(tag, Entry::Sent { ctx, bytes });
            }
            Outcome::Maybe => {
                m.insert(tag, Entry::Maybe { ctx });
            }
            _ => {
                m.remove(&tag);
            }
        }
    }

    /// A record was read from context `ctx`.
    pub fn record(&self, r: &abi::ZcCompletion, ctx: u64, f: &Findings) {
        self.records.fetch_add(1, Relaxed);
        if r.status != 0 || r.flags & !abi::ZC_COMPLETION_COPIED != 0 || r.bytes == 0 {
            f.add(Kind::Records, "record with a bad field".into(), || {
                format!("{r:?}")
            });
        }
        if !is_worker_tag(r.tag) {
            self.foreign.fetch_add(1, Relaxed);
            return;
        }
        let mut m = lock(&self.m);
        match m.get(&r.tag).copied() {
            None => f.add(
                Kind::Records,
                "record for no send outstanding (failed, unknown or repeated)".into(),
                || format!("{r:?} (ctx {ctx})"),
            ),
            Some(Entry::Pending { ctx: c }) => {
                m.insert(
                    r.tag,
                    Entry::Early {
                        ctx: c,
                        bytes: r.bytes,
                    },
                );
            }
            Some(Entry::Early { .. }) => {
                f.add(Kind::Records, "two records for one send".into(), || {
                    format!("{r:?} (ctx {ctx})")
                })
            }
            Some(Entry::Sent { ctx: c, bytes }) => {
                m.remove(&r.tag);
                if bytes != r.bytes {
                    f.add(
                        Kind::Records,
                        "record bytes differ from the send's".into(),
                        || format!("{r:?}: sent {bytes}"),
                    );
                }
                if c != ctx {
                    f.add(
                        Kind::Records,
                        "record read from another context".into(),
                        || format!("{r:?}: sent on ctx {c}, read on {ctx}"),
                    );
                }
            }
            Some(Entry::Maybe { .. }) => {
                m.remove(&r.tag);
            }
        }
    }

    /// Context `ctx` was closed: its records will never be read.
    pub fn forget_ctx(&self, ctx: u64) {
        lock(&self.m).retain(|_, e| match *e {
            Entry::Pending { ctx: c }
            | Entry::Sent { ctx: c, .. }
            | Entry::Maybe { ctx: c }
            | Entry::Early { ctx: c, .. } => c != ctx,
        });
    }

    /// Sends whose record was never read.
    pub fn unread(&self) -> usize {
        lock(&self.m)
            .values()
            .filter(|e| matches!(e, Entry::Sent { .. }))
            .count()
    }
}

/// What an interface index is, for the oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfKind {
    /// Loopback (1): no DMA device.
    Loopback,
    /// net.sh's dummy `zd0` or veth `zv0`: virtual, never moved.
    Virtual,
    /// The lab's veth, which the disturber moves, deletes and recreates.
    Lab,
    /// The e1000e `ztx0`: a real DMA device behind the IOMMU.
    Wire,
    /// 0: none (for `ZC_IOC_REGISTER`, not mapped).
    Zero,
    /// Negative.
    Negative,
    /// Names no interface (`i32::MAX`).
    Missing,
    /// Anything.
    Random,
}

/// The interfaces' indexes now (the lab's change as it is recreated).
pub struct Ifaces {
    pub dummy: AtomicI32,
    pub veth: AtomicI32,
    pub wire: AtomicI32,
    pub lab: AtomicI32,
}

impl Ifaces {
    pub fn new() -> Self {
        let i = Self {
            dummy: AtomicI32::new(0),
            veth: AtomicI32::new(0),
            wire: AtomicI32::new(0),
            lab: AtomicI32::new(0),
        };
        i.refresh();
        i
    }

    pub fn refresh(&self) {
        self.dummy.store(net::ifindex(net::DUMMY_IF), Relaxed);
        self.veth.store(net::ifindex("zv0"), Relaxed);
        self.wire.store(net::ifindex(net::TX_IF), Relaxed);
        self.lab.store(net::ifindex(net::LAB_IF), Relaxed);
    }

    /// An interface index and what it is.
    pub fn pick(&self, rng: &mut Rng) -> (i32, IfKind) {
        let (i, k) = match rng.below(10) {
            0 => (1, IfKind::Loopback),
            1 => (self.dummy.load(Relaxed), IfKind::Virtual),
            2 => (self.veth.load(Relaxed), IfKind::Virtual),
            3 | 4 => (self.wire.load(Relaxed), IfKind::Wire),
            5 | 6 => (self.lab.load(Relaxed), IfKind::Lab),
            7 => (rng.pick(&[-1, -2, i32::MIN]), IfKind::Negative),
            8 => (i32::MAX, IfKind::Missing),
            _ => (rng.below(64) as i32, IfKind::Random),
        };
        if i == 0 {
            (0, IfKind::Zero)
        } else {
            (i, k)
        }
    }
}

impl Default for Ifaces {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything the threads share.
pub struct Shared {
    pub opts: Opts,
    pub t0: Instant,
    pub stop: AtomicBool,
    /// Calls made (or about to be), across threads.
    pub calls: AtomicU64,
    /// The zcopy fds every worker uses.
    pub shared: Vec<ZFd>,
    pub next_ctx: AtomicU64,
    pub wild: Wild,
    pub pool: Pool,
    pub files: Files,
    pub zoo: Zoo,
    pub socks: Socks,
    pub ifaces: Ifaces,
    pub book: Book,
    /// The DMA engine's time the workers may still spend.
    pub engine: EngineBudget,
    pub ledger: Ledger,
    pub findings: Findings,
    /// The module's cap on pinned pages.
    pub max_pinned: u64,
    /// Where raw frames are sent to: the lab's and the wire's UDP ports.
    pub lab_udp: u16,
    pub wire_udp: u16,
    /// Worker threads that may be interrupted: (worker, thread).
    pub kickable: Mutex<Vec<(usize, libc::pthread_t)>>,
}

impl Shared {
    /// Takes one call from the budget; false once the run is over.
    pub fn take_call(&self) -> bool {
        if self.stop.load(Relaxed) {
            return false;
        }
        let n = self.calls.fetch_add(1, Relaxed);
        let over_calls = self.opts.calls.is_some_and(|c| n >= c);
        let over_time = self
            .opts
            .secs
            .is_some_and(|s| self.t0.elapsed().as_secs_f64() >= s);
        if over_calls || over_time || crate::signals::stop_requested() {
            self.calls.fetch_sub(1, Relaxed);
            self.stop.store(true, Relaxed);
            return false;
        }
        true
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// A fresh context number.
    pub fn new_ctx(&self) -> u64 {
        self.next_ctx.fetch_add(1, Relaxed)
    }

    pub fn kickable(&self) -> MutexGuard<'_, Vec<(usize, libc::pthread_t)>> {
        lock(&self.kickable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_told_apart() {
        assert!(is_worker_tag(worker_tag(0, 5)));
        assert!(is_worker_tag(worker_tag(200, u64::MAX)));
        assert!(!is_worker_tag(CHILD_TAG | 7));
        assert!(!is_worker_tag(0));
        assert!(!is_worker_tag(u64::MAX));
    }

    fn rec(tag: u64, bytes: u64) -> abi::ZcCompletion {
        abi::ZcCompletion {
            tag,
            bytes,
            status: 0,
            flags: 0,
        }
    }

    #[test]
    fn ledger_matches_records_to_sends() {
        let f = Findings::new(false);
        let l = Ledger::default();
        let (a, b, c, d) = (
            worker_tag(0, 1),
            worker_tag(0, 2),
            worker_tag(0, 3),
            worker_tag(0, 4),
        );
        // A plain send and its record.
        l.pending(a, 1);
        l.resolve(a, Outcome::Sent(10), &f);
        assert_eq!(l.unread(), 1);
        l.record(&rec(a, 10), 1, &f);
        assert_eq!(l.unread(), 0);
        // The record comes before the call returns.
        l.pending(b, 1);
        l.record(&rec(b, 5), 1, &f);
        l.resolve(b, Outcome::Sent(5), &f);
        // A maybe-send with or without a record.
        l.pending(c, 2);
        l.resolve(c, Outcome::Maybe, &f);
        l.record(&rec(c, 5), 2, &f);
        assert!(f.list().is_empty(), "{:?}", f.list());
        // A failed send with a record; a repeated record; wrong bytes.
        l.pending(d, 1);
        l.record(&rec(d, 5), 1, &f);
        l.resolve(d, Outcome::Failed, &f);
        l.record(&rec(a, 10), 1, &f);
        l.pending(a, 1);
        l.resolve(a, Outcome::Sent(10), &f);
        l.record(&rec(a, 11), 3, &f);
        let kinds: Vec<String> = f.list().into_iter().map(|x| x.1).collect();
        assert_eq!(
            kinds,
            [
                "record bytes differ from the send's",
                "record for a send that failed",
                "record for no send outstanding (failed, unknown or repeated)",
                "record read from another context",
            ]
        );
        // Foreign tags are only counted.
        l.record(&rec(CHILD_TAG | 1, 3), 1, &f);
        assert_eq!(l.foreign.load(Relaxed), 1);
    }

    #[test]
    fn book_knows_foreign_and_stale_ids() {
        let b = Book::default();
        let r = |ctx, id| Reg {
            fd: 3,
            ctx,
            id,
            addr: 0,
            len: 1,
            pages: 1,
            read_only: false,
            engine: id == 11,
            private: true,
        };
        b.add(r(1, 10));
        b.add(r(2, 11));
        assert_eq!(b.engine_regions(), 1);
        let mut rng = Rng::new(1);
        assert_eq!(b.pick_foreign(&mut rng, 1), Some(11));
        assert_eq!(b.pick_in(&mut rng, 1).map(|r| r.id), Some(10));
        b.forget_ctx(1);
        assert_eq!(b.pick_stale(&mut rng), Some(10));
        assert!(b.pick_in(&mut rng, 1).is_none());
        assert!((8..=17).contains(&b.guess(&mut rng)));
        assert_eq!(b.pick_engine(&mut rng).map(|r| r.id), Some(11));
        b.remove(11);
        assert!(b.pick_engine(&mut rng).is_none());
        assert_eq!(b.engine_regions(), 0);
    }

    #[test]
    fn the_engine_budget_grows_with_the_run() {
        let e = EngineBudget::default();
        let at = Duration::from_secs;
        // The burst at the start, then 20% of the time.
        assert!(e.take(at(0), 600));
        assert!(!e.take(at(0), 500));
        assert!(e.take(at(0), 400));
        assert!(!e.take(at(1), 300));
        assert!(e.take(at(2), 300));
        e.give_back(300);
        assert!(e.take(at(2), 300));
        // 1300 spent; 10 s allow 3000.
        assert!(!e.take(at(10), 1701));
        assert!(e.take(at(10), 1700));
    }
}
