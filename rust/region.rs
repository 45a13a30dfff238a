// SPDX-License-Identifier: GPL-2.0

//! Registered regions: user pages pinned, charged and optionally mapped for
//! a network device, for as long as the region lives.
//!
//! A [`Region`] owns, in this order: its device mapping (if any), its pins,
//! its charges. Rust drops fields in declaration order, so teardown is
//! always **unmap, then unpin, then uncharge**: the device loses its
//! translations before the pages can be freed or reused, and the pages are
//! released before the limits they were charged to are. That order is a
//! property of the type, not of any function someone could reorder.
//!
//! A region is shared (`Arc`): its context's table holds one reference and
//! anything using it (a send in flight) holds another, so it is torn down
//! when the last user lets go. `inflight` counts users that must block
//! `ZC_IOC_UNREGISTER` (`EBUSY`).
//!
//! Lock order: RTNL, then `netdev::MAPPED`, then [`Region::mapping`].

use crate::{
    abi,
    account::{
        GlobalCharge,
        MemlockCharge, //
    },
    dma::{
        DmaMapping,
        Owner, //
    },
    engine,
    netdev::{
        self,
        NetdevRef,
        Rtnl, //
    },
    pin::{
        Bvecs,
        PinnedPages, //
    },
    stats::{
        Counters,
        Gauge,
        Kind, //
    },
};
use kernel::{
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, Mutex, UniqueArc,
    },
};

/// The page-aligned start and page count of `[addr, addr + len)`.
///
/// `EINVAL` for an empty range, `EFAULT` for NULL, `EOVERFLOW` when the
/// range wraps the address space or has more pages than the ABI counts.
pub(crate) fn span(addr: u64, len: u64) -> Result<(usize, usize)> {
    if len == 0 {
        return Err(EINVAL);
    }
    if addr == 0 {
        return Err(EFAULT);
    }
    // CAST: `PAGE_SIZE` fits in `u64`.
    let page = PAGE_SIZE as u64;
    let end = addr
        .checked_add(len)
        .and_then(|e| e.checked_add(page - 1))
        .ok_or(EOVERFLOW)?
        & !(page - 1);
    let start = addr & !(page - 1);
    let nr = (end - start) / page;
    if nr > u64::from(u32::MAX) {
        return Err(EOVERFLOW);
    }
    let start = usize::try_from(start).map_err(|_| EOVERFLOW)?;
    // CAST: `nr <= u32::MAX`.
    Ok((start, nr as usize))
}

/// Region ids are unique for the module's lifetime, so a stale or foreign
/// id never names someone else's region.
static NEXT_ID: Atomic<u32> = Atomic::new(1);

/// The next id of `next`: `ENOSPC` once all ids (1 to `u32::MAX`) have been
/// given out, rather than wrap and give one out twice.
fn next_id(next: &Atomic<u32>) -> Result<u32> {
    let mut id = next.load(Relaxed);
    loop {
        if id == 0 {
            return Err(ENOSPC);
        }
        // 0 marks the end: after `u32::MAX` comes none.
        match next.cmpxchg(id, id.wrapping_add(1), Relaxed) {
            Ok(_) => return Ok(id),
            Err(now) => id = now,
        }
    }
}

/// A device mapping and the gauge that counts it.
struct Mapped {
    mapping: DmaMapping,
    _gauge: Gauge,
}

/// What `ZC_IOC_REGISTER` asks for.
pub(crate) struct RegisterArgs {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) read_only: bool,
    pub(crate) ifindex: i32,
    /// Map for the DMA engine (`ifindex` is 0).
    pub(crate) engine: bool,
}

/// A registered region.
///
/// # Invariants
///
/// - `mapping`, when `Some`, maps exactly the pages of `pins`, and the
///   region is listed in `netdev::MAPPED`.
#[pin_data(PinnedDrop)]
pub(crate) struct Region {
    id: u32,
    addr: u64,
    len: u64,
    read_only: bool,
    ifindex: i32,
    engine: bool,
    inflight: Atomic<u32>,
    // Fields drop in declaration order, and that order is the teardown
    // order: first unmap (the device can no longer reach the pages), then
    // unpin, then give back the charges. Keep it so.
    #[pin]
    mapping: Mutex<Option<Mapped>>,
    bvecs: Bvecs,
    pins: PinnedPages,
    _memlock: MemlockCharge,
    _global: GlobalCharge,
    _pinned: Gauge,
    _region: Gauge,
}

impl Region {
    /// Pins, charges and (with an ifindex) maps the caller's range.
    pub(crate) fn register(
        args: &RegisterArgs,
        ctx: &Arc<Counters>,
        max_pinned: u64,
    ) -> Result<Arc<Self>> {
        let (start, nr_pages) = span(args.addr, args.len)?;
        // Charged before anything is pinned or allocated for the pages: a
        // request over the limits pins nothing. A pin charges its whole
        // folio, which is at least the pages asked for; the rest of it is
        // charged once the folios are known.
        let mut memlock = MemlockCharge::charge(nr_pages)?;
        let mut global = GlobalCharge::charge(nr_pages, max_pinned)?;
        // Dropped before the charges on every path (declared after them).
        let pins = PinnedPages::pin(start, nr_pages, args.read_only)?;
        let more = pins.charge().saturating_sub(nr_pages);
        if more > 0 {
            memlock.grow(more)?;
            global.grow(more, max_pinned)?;
        }
        let bvecs = Bvecs::new(pins.pages())?;
        let id = next_id(&NEXT_ID)?;
        let region = Arc::pin_init(
            try_pin_init!(Self {
                id,
                addr: args.addr,
                len: args.len,
                read_only: args.read_only,
                ifindex: args.ifindex,
                engine: args.engine,
                inflight: Atomic::new(0),
                mapping <- new_mutex!(None),
                bvecs,
                _pinned: Gauge::new(ctx, Kind::PinnedPages, pins.len()),
                _region: Gauge::new(ctx, Kind::Regions, 1),
                pins,
                _memlock: memlock,
                _global: global,
            }),
            GFP_KERNEL,
        )?;
        if args.engine {
            region.map_for_engine(ctx)?;
        } else if args.ifindex != 0 {
            region.map_for(args.ifindex, ctx)?;
        }
        Ok(region)
    }

    /// Maps the region for the DMA device of interface `ifindex`.
    fn map_for(&self, ifindex: i32, ctx: &Arc<Counters>) -> Result {
        let netdev = NetdevRef::get(ifindex)?;
        netdev.dma_device()?;
        let (owner, pages) = (Owner::Netdev(netdev), self.pins.pages());
        // Mapped before RTNL is taken: a large region takes long to map.
        // SAFETY: `self.pins` outlives the mapping: the mapping lives in
        // `self.mapping`, which is dropped (or emptied) before `self.pins`;
        // on failure below it is dropped here.
        let mapping = unsafe { DmaMapping::map(owner, pages) }?;
        let rtnl = Rtnl::lock();
        // Under RTNL the device cannot start unregistering or change
        // namespace; once it unregisters, the notifier will find this
        // region in the list.
        if !mapping.netdev_registered(&rtnl) {
            drop(rtnl);
            return Err(ENODEV);
        }
        let mut list = netdev::mapped();
        list.insert(self)?;
        self.install(mapping, ctx);
        Ok(())
    }

    /// Maps the region for the DMA engine.
    fn map_for_engine(&self, ctx: &Arc<Counters>) -> Result {
        let engine = engine::get()?;
        let mapping = engine.exclusive(|| {
            // SAFETY: As in `map_for`.
            unsafe { DmaMapping::map(Owner::Engine(engine.device()), self.pins.pages()) }
        })?;
        let mut list = netdev::mapped();
        // Under the list's lock: once unbinding has begun, its sweep of the
        // list may already have run; before that, it will find us.
        if !engine.present() {
            return Err(ENODEV);
        }
        list.insert(self)?;
        self.install(mapping, ctx);
        Ok(())
    }

    /// Keeps `mapping`; the caller has listed the region in
    /// `netdev::MAPPED` and holds its lock.
    fn install(&self, mapping: DmaMapping, ctx: &Arc<Counters>) {
        // INVARIANT: mapped for our pages, and listed by the caller.
        *self.mapping.lock() = Some(Mapped {
            mapping,
            _gauge: Gauge::new(ctx, Kind::MappedPages, self.pins.len()),
        });
    }

    /// The DMA engine reads bytes `[offset, offset + out.len())` of the
    /// region through its IOVAs into `out`; the transfers it made.
    /// `ENXIO` if the region is not mapped for the engine.
    pub(crate) fn dma_read(&self, offset: u64, out: &mut [u8]) -> Result<u32> {
        let r = self.range(offset, out.len() as u64)?;
        // Held across the transfers: the IOVAs stay mapped until they end.
        let guard = self.mapping.lock();
        let m = match guard.as_ref() {
            Some(m) if m.mapping.is_for_engine() => &m.mapping,
            _ => return Err(ENXIO),
        };
        let engine = engine::get()?;
        let page = PAGE_SIZE as u64;
        // The range's first page; `range` checked it is inside the region.
        let first = (self.addr % page + offset) / page;
        let mut chunks = KVec::with_capacity(r.nr, GFP_KERNEL)?;
        let (mut skip, mut left) = (r.skip, r.len);
        for i in 0..r.nr {
            let n = left.min(PAGE_SIZE - skip);
            let iova = m.iova(first as usize + i).ok_or(EINVAL)?;
            chunks.push((iova + skip as u64, n), GFP_KERNEL)?;
            left -= n;
            skip = 0;
        }
        engine.read(&chunks, out)
    }

    /// Unmaps the region if it is mapped for `netdev`; true if it did.
    /// Called with `netdev::MAPPED` locked, under RTNL.
    pub(crate) fn unmap_if_for(&self, netdev: *mut c_void) -> bool {
        let mut guard = self.mapping.lock();
        if guard.as_ref().is_some_and(|m| m.mapping.is_for(netdev)) {
            // Dropping the mapping unmaps it and releases the device.
            *guard = None;
            return true;
        }
        false
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn nr_pages(&self) -> usize {
        self.pins.len()
    }

    pub(crate) fn nr_pins(&self) -> usize {
        self.pins.nr_pins()
    }

    /// Whether a user that blocks unregistering holds the region.
    pub(crate) fn busy(&self) -> bool {
        self.inflight.load(Relaxed) != 0
    }

    /// The pages under bytes `[offset, offset + len)` of the region
    /// (offsets from its start address): `EINVAL` for an empty range or
    /// one past the end, `EOVERFLOW` when it wraps.
    pub(crate) fn range(&self, offset: u64, len: u64) -> Result<ByteRange> {
        if len == 0 {
            return Err(EINVAL);
        }
        let end = offset.checked_add(len).ok_or(EOVERFLOW)?;
        if end > self.len {
            return Err(EINVAL);
        }
        // CAST: `PAGE_SIZE` fits in `u64`; region offsets and lengths fit
        // in `usize` (the region is mapped in the caller's address space).
        let page = PAGE_SIZE as u64;
        let abs = self.addr % page + offset;
        let first = (abs / page) as usize;
        let last = (abs + len).div_ceil(page) as usize;
        if last > self.bvecs.len() {
            return Err(EINVAL);
        }
        Ok(ByteRange {
            // SAFETY: `first < last <= self.bvecs.len()`, in bounds.
            bvecs: unsafe { self.bvecs.as_ptr().add(first) },
            nr: last - first,
            skip: (abs % page) as usize,
            len: len as usize,
        })
    }

    #[cfg(CONFIG_KUNIT = "y")]
    pub(crate) fn pins_for_test(&self) -> &[*mut kernel::bindings::page] {
        self.pins.pages()
    }

    /// Fills `out` with the state of pages `first..first + n`, IOVAs only
    /// if `privileged`.
    pub(crate) fn page_info(
        &self,
        first: usize,
        n: usize,
        privileged: bool,
        out: &mut KVVec<abi::zc_page_info>,
    ) -> Result {
        let guard = self.mapping.lock();
        for i in first..first + n {
            let st = self.pins.page_state(i).ok_or(EINVAL)?;
            let iova = guard.as_ref().and_then(|m| m.mapping.iova(i));
            let mut flags = 0;
            if st.dma_pinned {
                flags |= abi::ZC_PAGE_DMA_PINNED;
            }
            if iova.is_some() {
                flags |= abi::ZC_PAGE_MAPPED;
            }
            if st.order > 0 {
                flags |= abi::ZC_PAGE_LARGE;
            }
            out.push(
                abi::zc_page_info {
                    iova: if privileged { iova.unwrap_or(0) } else { 0 },
                    // CAST: counts are non-negative `int`s.
                    refcount: st.refcount as u32,
                    pincount: st.pincount as u32,
                    flags,
                    // CAST: folio orders are below 64.
                    order: st.order as u16,
                    reserved: 0,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(())
    }

    /// The region's description for `ZC_IOC_REGION_INFO`.
    pub(crate) fn describe(&self, info: &mut abi::zc_region_info) {
        let mut flags = 0;
        if self.read_only {
            flags |= abi::ZC_REGION_READONLY;
        }
        if self.mapping.lock().is_some() {
            flags |= abi::ZC_REGION_MAPPED;
        }
        if self.engine {
            flags |= abi::ZC_REGION_DMA_ENGINE;
        }
        info.flags = flags;
        info.addr = self.addr;
        info.len = self.len;
        // CAST: `span` bounds the page count by `u32::MAX`.
        info.total_pages = self.pins.len() as u32;
        info.ifindex = self.ifindex;
    }
}

/// Bytes of a region as the send paths take them: `nr` whole-page
/// `bio_vec`s from `bvecs`, and `len` bytes from `skip` into the first.
/// Valid while the region is.
pub(crate) struct ByteRange {
    pub(crate) bvecs: *const kernel::bindings::bio_vec,
    pub(crate) nr: usize,
    pub(crate) skip: usize,
    pub(crate) len: usize,
}

/// A send's hold on a region: while it exists the region is alive and
/// counted busy, so `ZC_IOC_UNREGISTER` answers `EBUSY`.
///
/// # Invariants
///
/// Counted once in the region's `inflight`, uncounted in `Drop`.
pub(crate) struct InFlight(Arc<Region>);

impl InFlight {
    pub(crate) fn new(region: Arc<Region>) -> Self {
        region.inflight.add(1, Relaxed);
        // INVARIANT: counted just above.
        Self(region)
    }

    pub(crate) fn region(&self) -> &Region {
        &self.0
    }

    /// Lets go of the region in any context, even atomic: returns it as a
    /// [`LastHold`] if this was its last reference, for the caller to drop
    /// where it may sleep.
    pub(crate) fn release(self) -> Option<LastHold> {
        let this = core::mem::ManuallyDrop::new(self);
        this.0.inflight.fetch_sub(1, Relaxed);
        // SAFETY: `this` is never used or dropped again, so the `Arc` is
        // moved out of it exactly once.
        let region = unsafe { core::ptr::read(&this.0) };
        Arc::into_unique_or_drop(region).map(LastHold)
    }
}

/// The last reference to a region: dropping it tears the region down
/// (unmaps, unpins), which sleeps.
pub(crate) struct LastHold(
    #[allow(dead_code, reason = "held for its Drop")] Pin<UniqueArc<Region>>,
);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Relaxed);
    }
}

#[pinned_drop]
impl PinnedDrop for Region {
    fn drop(self: Pin<&mut Self>) {
        // Leave the list of mapped regions before the fields (the mapping
        // first) are torn down, so the notifier never sees a dying region.
        netdev::mapped().remove(&self);
    }
}

#[kunit_tests(zcopy_region)]
mod tests {
    use super::*;
    use crate::{
        pin::probe,
        testing::{
            counts,
            UserMem, //
        },
    };
    use kernel::bindings;

    #[test]
    fn ids_never_repeat_and_run_out_instead_of_wrapping() {
        let next = Atomic::new(u32::MAX - 1);
        assert!(next_id(&next) == Ok(u32::MAX - 1));
        assert!(next_id(&next) == Ok(u32::MAX));
        assert!(next_id(&next) == Err(ENOSPC));
        assert!(next_id(&next) == Err(ENOSPC));
        let next = Atomic::new(1);
        assert!(next_id(&next) == Ok(1));
        assert!(next_id(&next) == Ok(2));
    }

    #[test]
    fn span_rounds_to_pages_and_rejects_bad_ranges() {
        let p = PAGE_SIZE as u64;
        assert!(span(p, 1) == Ok((PAGE_SIZE, 1)));
        assert!(span(p + 1, p) == Ok((PAGE_SIZE, 2)));
        assert!(span(p - 1, 2) == Ok((0, 2)));
        assert!(span(p, 0) == Err(EINVAL));
        assert!(span(0, p) == Err(EFAULT));
        assert!(span(u64::MAX - 10, 100) == Err(EOVERFLOW));
        assert!(span(u64::MAX - p + 2, 1) == Err(EOVERFLOW));
        assert!(span(p, (u64::from(u32::MAX) + 1) * p) == Err(EOVERFLOW));
    }

    /// An interface of the test's network namespace with a DMA device.
    fn dma_ifindex() -> Option<i32> {
        (1..64).find(|&i| NetdevRef::get(i).is_ok_and(|n| n.dma_device().is_ok()))
    }

    fn args(mem: &UserMem, len: usize, ifindex: i32) -> RegisterArgs {
        RegisterArgs {
            addr: mem.addr() as u64,
            len: len as u64,
            read_only: false,
            ifindex,
            engine: false,
        }
    }

    #[test]
    fn register_then_drop_returns_counts() -> Result {
        let mem = UserMem::new(3 * PAGE_SIZE)?;
        mem.touch()?;
        let observer = PinnedPages::pin(mem.addr(), 3, true)?;
        let before = counts(&observer)?;
        let ctx = Arc::new(Counters::new(), GFP_KERNEL)?;
        let r = Region::register(&args(&mem, 3 * PAGE_SIZE, 0), &ctx, u64::MAX)?;
        assert_eq!(r.nr_pages(), 3);
        assert_eq!(ctx.now(Kind::PinnedPages), 3);
        assert_eq!(ctx.now(Kind::Regions), 1);
        assert_eq!(ctx.now(Kind::MappedPages), 0);
        drop(r);
        assert_eq!(ctx.now(Kind::PinnedPages), 0);
        assert_eq!(ctx.now(Kind::Regions), 0);
        assert!(counts(&observer)? == before);
        Ok(())
    }

    #[test]
    fn global_cap_refuses_and_pins_nothing() -> Result {
        let mem = UserMem::new(2 * PAGE_SIZE)?;
        mem.touch()?;
        let ctx = Arc::new(Counters::new(), GFP_KERNEL)?;
        let cap = GlobalCharge::total() + 1;
        let r = Region::register(&args(&mem, 2 * PAGE_SIZE, 0), &ctx, cap);
        assert!(r.err() == Some(ENOMEM));
        assert_eq!(ctx.now(Kind::PinnedPages), 0);
        assert_eq!(GlobalCharge::total(), cap - 1);
        Ok(())
    }

    // What the probe saw between unmap and unpin.
    static PROBE_DOMAIN: Atomic<usize> = Atomic::new(0);
    static PROBE_IOVA: Atomic<u64> = Atomic::new(0);
    static PROBE_RAN: Atomic<u32> = Atomic::new(0);
    static PROBE_PHYS: Atomic<u64> = Atomic::new(u64::MAX);
    static PROBE_PINNED: Atomic<u32> = Atomic::new(0);

    fn probe_fn(p: &PinnedPages) {
        let domain = PROBE_DOMAIN.load(Relaxed) as *mut bindings::iommu_domain;
        // SAFETY: The domain outlives the device, which is still bound.
        let phys = unsafe { bindings::iommu_iova_to_phys(domain, PROBE_IOVA.load(Relaxed)) };
        PROBE_PHYS.store(phys, Relaxed);
        PROBE_PINNED.store(
            u32::from(p.page_state(0).is_some_and(|s| s.dma_pinned)),
            Relaxed,
        );
        PROBE_RAN.store(1, Relaxed);
    }

    #[test]
    fn teardown_unmaps_before_it_unpins() -> Result {
        let ifindex = dma_ifindex();
        assert!(ifindex.is_some());
        let ifindex = ifindex.ok_or(ENODEV)?;
        let mem = UserMem::new(2 * PAGE_SIZE)?;
        mem.touch()?;
        let ctx = Arc::new(Counters::new(), GFP_KERNEL)?;
        let r = Region::register(&args(&mem, 2 * PAGE_SIZE, ifindex), &ctx, u64::MAX)?;
        assert_eq!(ctx.now(Kind::MappedPages), 2);
        let (domain, iova) = {
            let g = r.mapping.lock();
            let m = g.as_ref().ok_or(EINVAL)?;
            (m.mapping.iommu_domain(), m.mapping.iova(0).ok_or(EINVAL)?)
        };
        assert!(!domain.is_null());
        // SAFETY: The domain belongs to the mapped, still bound device.
        let phys = unsafe { bindings::iommu_iova_to_phys(domain, iova) };
        assert!(phys != 0);
        PROBE_DOMAIN.store(domain as usize, Relaxed);
        PROBE_IOVA.store(iova, Relaxed);
        PROBE_RAN.store(0, Relaxed);
        probe::set(probe_fn);
        drop(r);
        assert_eq!(PROBE_RAN.load(Relaxed), 1);
        // At the moment of unpinning, the IOVA no longer translated...
        assert_eq!(PROBE_PHYS.load(Relaxed), 0);
        // ...and the page was still pinned.
        assert_eq!(PROBE_PINNED.load(Relaxed), 1);
        assert_eq!(ctx.now(Kind::MappedPages), 0);
        Ok(())
    }

    #[test]
    fn virtual_interface_is_eopnotsupp_and_missing_is_enodev() -> Result {
        let mem = UserMem::new(PAGE_SIZE)?;
        mem.touch()?;
        let ctx = Arc::new(Counters::new(), GFP_KERNEL)?;
        // ifindex 1 is loopback in every namespace.
        let r = Region::register(&args(&mem, PAGE_SIZE, 1), &ctx, u64::MAX);
        assert!(r.err() == Some(EOPNOTSUPP));
        let r = Region::register(&args(&mem, PAGE_SIZE, 0x7fff_0000), &ctx, u64::MAX);
        assert!(r.err() == Some(ENODEV));
        assert_eq!(ctx.now(Kind::PinnedPages), 0);
        Ok(())
    }
}
