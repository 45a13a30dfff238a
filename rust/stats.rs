// SPDX-License-Identifier: GPL-2.0

//! Counters: for the whole module and for each open context.
//!
//! Each counter is a relaxed atomic: they are reported, never used to decide
//! anything, so no ordering with other memory is needed. A [`Gauge`] is a
//! value that holds some amount of one gauge (regions, pinned pages, mapped
//! pages) in both its context's counters and the module's, and gives it
//! back when dropped, so the gauges cannot drift from what is really held.

use crate::abi;
use kernel::{
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
    },
};

/// Open contexts (file descriptions of `/dev/zcopy`) right now.
pub(crate) static OPEN_CONTEXTS: Atomic<u64> = Atomic::new(0);

/// Contexts ever opened; also the source of context ids.
pub(crate) static CONTEXTS_OPENED: Atomic<u64> = Atomic::new(0);

/// The module's counters.
pub(crate) static MODULE: Counters = Counters::new();

/// Reads a counter.
pub(crate) fn get(counter: &Atomic<u64>) -> u64 {
    counter.load(Relaxed)
}

/// What a [`Gauge`] counts.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Regions,
    PinnedPages,
    MappedPages,
    /// Page-cache pages held by sends in flight.
    FilePages,
}

/// Send events, each counted since the counters were created.
#[derive(Clone, Copy)]
enum Event {
    Sends,
    Completions,
    BytesZerocopy,
    BytesCopied,
    CompletionsCopied,
    CacheHits,
    CacheMisses,
}

/// One set of counters (see `struct zc_counters` in the UAPI header).
pub(crate) struct Counters {
    now: [Atomic<u64>; 4],
    total: [Atomic<u64>; 4],
    events: [Atomic<u64>; 7],
}

impl Counters {
    pub(crate) const fn new() -> Self {
        Self {
            now: [const { Atomic::new(0) }; 4],
            total: [const { Atomic::new(0) }; 4],
            events: [const { Atomic::new(0) }; 7],
        }
    }

    fn event(&self, e: Event, n: u64) {
        self.events[e as usize].add(n, Relaxed);
    }

    fn events(&self, e: Event) -> u64 {
        self.events[e as usize].load(Relaxed)
    }

    /// A send was accepted by the stack or a device (here and in [`MODULE`]).
    pub(crate) fn count_send(&self) {
        self.event(Event::Sends, 1);
        MODULE.event(Event::Sends, 1);
    }

    /// A page-cache send found `hits` pages cached and read `misses` in.
    pub(crate) fn count_cache(&self, hits: u64, misses: u64) {
        for c in [self, &MODULE] {
            c.event(Event::CacheHits, hits);
            c.event(Event::CacheMisses, misses);
        }
    }

    /// A send of `bytes` completed (here and in [`MODULE`]).
    pub(crate) fn count_completion(&self, bytes: u64, copied: bool) {
        for c in [self, &MODULE] {
            c.event(Event::Completions, 1);
            if copied {
                c.event(Event::BytesCopied, bytes);
                c.event(Event::CompletionsCopied, 1);
            } else {
                c.event(Event::BytesZerocopy, bytes);
            }
        }
    }

    /// The current value of a gauge.
    pub(crate) fn now(&self, kind: Kind) -> u64 {
        self.now[kind as usize].load(Relaxed)
    }

    /// A snapshot in the ABI's layout.
    pub(crate) fn to_abi(&self) -> abi::zc_counters {
        abi::zc_counters {
            regions: self.now(Kind::Regions),
            pinned_pages: self.now(Kind::PinnedPages),
            mapped_pages: self.now(Kind::MappedPages),
            regions_total: self.total[Kind::Regions as usize].load(Relaxed),
            pinned_total: self.total[Kind::PinnedPages as usize].load(Relaxed),
            mapped_total: self.total[Kind::MappedPages as usize].load(Relaxed),
            sends: self.events(Event::Sends),
            completions: self.events(Event::Completions),
            bytes_zerocopy: self.events(Event::BytesZerocopy),
            bytes_copied: self.events(Event::BytesCopied),
            completions_copied: self.events(Event::CompletionsCopied),
            cache_hits: self.events(Event::CacheHits),
            cache_misses: self.events(Event::CacheMisses),
            file_pages_held: self.now(Kind::FilePages),
            reserved: 0,
        }
    }

    fn add(&self, kind: Kind, n: u64) {
        self.now[kind as usize].add(n, Relaxed);
        self.total[kind as usize].add(n, Relaxed);
    }

    fn sub(&self, kind: Kind, n: u64) {
        self.now[kind as usize].fetch_sub(n, Relaxed);
    }
}

/// `n` of gauge `kind`, held in a context's counters and the module's.
///
/// # Invariants
///
/// `n` was added to `kind` in `ctx` and in [`MODULE`], and is subtracted
/// from both exactly once, in `Drop`.
pub(crate) struct Gauge {
    ctx: Arc<Counters>,
    kind: Kind,
    n: u64,
}

impl Gauge {
    pub(crate) fn new(ctx: &Arc<Counters>, kind: Kind, n: usize) -> Self {
        // CAST: `usize` is 64-bit on every architecture zcopy builds for.
        let n = n as u64;
        ctx.add(kind, n);
        MODULE.add(kind, n);
        // INVARIANT: added just above.
        Self {
            ctx: ctx.clone(),
            kind,
            n,
        }
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.ctx.sub(self.kind, self.n);
        MODULE.sub(self.kind, self.n);
    }
}

#[kunit_tests(zcopy_stats)]
mod tests {
    use super::*;

    #[test]
    fn gauges_count_while_alive() -> Result {
        let ctx = Arc::new(Counters::new(), GFP_KERNEL)?;
        let module_before = MODULE.now(Kind::MappedPages);
        let a = Gauge::new(&ctx, Kind::MappedPages, 5);
        let b = Gauge::new(&ctx, Kind::MappedPages, 2);
        assert_eq!(ctx.now(Kind::MappedPages), 7);
        assert_eq!(ctx.now(Kind::PinnedPages), 0);
        drop(a);
        assert_eq!(ctx.now(Kind::MappedPages), 2);
        drop(b);
        assert_eq!(ctx.now(Kind::MappedPages), 0);
        assert_eq!(ctx.to_abi().mapped_total, 7);
        assert_eq!(MODULE.now(Kind::MappedPages), module_before);
        Ok(())
    }
}
