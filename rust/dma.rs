// SPDX-License-Identifier: GPL-2.0

//! Streaming DMA mappings of pinned pages for one device.
//!
//! C headers: [`include/linux/dma-mapping.h`](srctree/include/linux/dma-mapping.h),
//! [`include/linux/scatterlist.h`](srctree/include/linux/scatterlist.h).
//!
//! A [`DmaMapping`] builds a scatterlist over pages someone else keeps
//! pinned and maps it with `dma_map_sgtable` for a device, read-only from
//! the device's side (`DMA_TO_DEVICE`). Behind an IOMMU the pages get IOVAs
//! in the device's domain, and only they become reachable by it. Dropping
//! the mapping unmaps it (with `iommu.strict=1` the IOTLB is flushed
//! before `dma_unmap_sgtable` returns) and only then releases the device.
//! The device is a network interface's, or the DMA engine's ([`engine`]).
//!
//! [`engine`]: crate::engine

use crate::{
    account::user_sized,
    engine,
    netdev::NetdevRef, //
};
use kernel::{
    bindings,
    device,
    dma::DataDirection,
    page::PAGE_SIZE,
    prelude::*,
    sync::aref::ARef,
    types::Opaque, //
};

/// Whose DMA device a mapping is for; held for as long as the mapping.
pub(crate) enum Owner {
    /// A network interface's: its DMA device is found through it.
    Netdev(NetdevRef),
    /// The DMA engine's device.
    Engine(ARef<device::Device>),
}

impl Owner {
    fn dma_device(&self) -> Result<*mut bindings::device> {
        match self {
            Self::Netdev(n) => n.dma_device(),
            Self::Engine(d) => Ok(engine::raw_device(d)),
        }
    }

    /// The key `netdev::unmap_all_for` names it by.
    fn key(&self) -> *mut c_void {
        match self {
            Self::Netdev(n) => n.as_ptr(),
            Self::Engine(d) => engine::raw_device(d).cast(),
        }
    }
}

/// Pinned pages mapped for a device.
///
/// # Invariants
///
/// - `sgt` is an initialised `sg_table` over the pages, mapped for `dev`
///   with `DMA_TO_DEVICE`; it is unmapped and freed exactly once, in `Drop`.
/// - `dev` holds a reference (`get_device`), dropped after the unmap.
/// - `iovas[i]` is the bus address of page `i`.
/// - `first` is the first page mapped, pinned for as long as the mapping
///   lives and until after it is dropped.
pub(crate) struct DmaMapping {
    sgt: KBox<Opaque<bindings::sg_table>>,
    dev: *mut bindings::device,
    iovas: KVVec<u64>,
    #[cfg_attr(not(zcopy_test_hooks), expect(dead_code))]
    first: *mut bindings::page,
    /// Whom the mapping was made for; released last.
    owner: Owner,
}

// SAFETY: A mapping may be torn down from any task.
unsafe impl Send for DmaMapping {}
// SAFETY: `&DmaMapping` only reads immutable fields.
unsafe impl Sync for DmaMapping {}

impl DmaMapping {
    /// Maps `pages` for `owner`'s DMA device.
    ///
    /// # Safety
    ///
    /// The pages must stay pinned until the returned mapping has been
    /// dropped.
    pub(crate) unsafe fn map(owner: Owner, pages: &[*mut bindings::page]) -> Result<Self> {
        let dev = owner.dma_device()?;
        let Some(&first) = pages.first() else {
            return Err(EINVAL);
        };
        let n: u32 = pages.len().try_into().map_err(|_| E2BIG)?;
        // SAFETY: `dev` is valid while `netdev` is held.
        let max_segment = match unsafe { bindings::dma_max_mapping_size(dev) } {
            0 => u32::MAX,
            m => u32::try_from(m).unwrap_or(u32::MAX),
        };
        let sgt = KBox::new(Opaque::<bindings::sg_table>::zeroed(), GFP_KERNEL)?;
        // SAFETY: `sgt` is zeroed memory for a table; `pages` holds `n`
        // valid page pointers, which the function only reads.
        kernel::error::to_result(unsafe {
            bindings::sg_alloc_table_from_pages_segment(
                sgt.get(),
                pages.as_ptr().cast_mut(),
                n,
                0,
                pages.len() * PAGE_SIZE,
                max_segment,
                bindings::GFP_KERNEL,
            )
        })?;
        // SAFETY: `dev` is a live device (held through `owner`); `sgt` was
        // initialised above.
        let r =
            unsafe { bindings::dma_map_sgtable(dev, sgt.get(), DataDirection::ToDevice.into(), 0) };
        if r != 0 {
            // SAFETY: Allocated above and not mapped.
            unsafe { bindings::sg_free_table(sgt.get()) };
            return Err(Error::from_errno(r));
        }
        // SAFETY: `dev` is valid; the reference is dropped in `Drop`.
        unsafe { bindings::get_device(dev) };
        // INVARIANT: mapped and referenced above; `iovas` is filled next.
        let mut this = Self {
            sgt,
            dev,
            iovas: KVVec::new(),
            first,
            owner,
        };
        this.iovas = this.page_iovas(pages.len())?;
        Ok(this)
    }

    /// Walks the DMA segments: each covers a run of whole pages.
    fn page_iovas(&self, nr_pages: usize) -> Result<KVVec<u64>> {
        let mut iovas = KVVec::with_capacity(nr_pages, user_sized())?;
        // SAFETY: `sgt` is initialised and mapped (type invariant).
        let (mut sg, nents) = unsafe { ((*self.sgt.get()).sgl, (*self.sgt.get()).nents) };
        for _ in 0..nents {
            if sg.is_null() {
                break;
            }
            // SAFETY: `sg` is one of the table's first `nents` entries.
            let (addr, len) = unsafe { (bindings::sg_dma_address(sg), bindings::sg_dma_len(sg)) };
            let mut off = 0;
            while off < len as usize && iovas.len() < nr_pages {
                iovas.push(addr + off as u64, user_sized())?;
                off += PAGE_SIZE;
            }
            // SAFETY: As above; `sg_next` returns NULL after the last one.
            sg = unsafe { bindings::sg_next(sg) };
        }
        if iovas.len() != nr_pages {
            return Err(EIO);
        }
        Ok(iovas)
    }

    /// The bus address (IOVA behind an IOMMU) of page `i`.
    pub(crate) fn iova(&self, i: usize) -> Option<u64> {
        self.iovas.get(i).copied()
    }

    /// The mapped device's IOMMU domain, or null without one.
    pub(crate) fn iommu_domain(&self) -> *mut bindings::iommu_domain {
        // SAFETY: `dev` is held (type invariant).
        unsafe { bindings::iommu_get_domain_for_dev(self.dev) }
    }

    /// Whether the mapping was made for the device `key` names (see
    /// `netdev::unmap_all_for`).
    pub(crate) fn is_for(&self, key: *mut c_void) -> bool {
        self.owner.key() == key
    }

    /// Whether the mapping is for a network interface that is registered
    /// in the caller's namespace ([`NetdevRef::registered`]).
    pub(crate) fn netdev_registered(&self, rtnl: &crate::netdev::Rtnl) -> bool {
        match &self.owner {
            Owner::Netdev(n) => n.registered(rtnl),
            Owner::Engine(_) => false,
        }
    }

    /// Whether the mapping is for the DMA engine.
    pub(crate) fn is_for_engine(&self) -> bool {
        matches!(self.owner, Owner::Engine(_))
    }
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        // Unmap first: after this the device can no longer reach the pages.
        let unmap = || {
            // SAFETY: Mapped in `map` for `dev` with this direction and no
            // attributes; unmapped only here.
            unsafe {
                bindings::dma_unmap_sgtable(
                    self.dev,
                    self.sgt.get(),
                    DataDirection::ToDevice.into(),
                    0,
                )
            }
        };
        // The pages are still pinned after the unmap: whoever pins them
        // drops this mapping first (the contract of `map`). Tests have the
        // engine try the stale address then.
        #[cfg(zcopy_test_hooks)]
        match (self.is_for_engine(), self.iovas.first()) {
            // SAFETY: `first` is still pinned (type invariant).
            (true, Some(&iova)) => unsafe {
                engine::probe::unmap_then_probe(unmap, iova, self.first)
            },
            _ => unmap(),
        }
        #[cfg(not(zcopy_test_hooks))]
        unmap();
        // SAFETY: Initialised in `map`, freed only here.
        unsafe { bindings::sg_free_table(self.sgt.get()) };
        // SAFETY: Drops the reference taken in `map`.
        unsafe { bindings::put_device(self.dev) };
        // `owner` is released after this body.
    }
}

#[kunit_tests(zcopy_dma)]
mod tests {
    use super::*;
    use crate::helpers;

    #[test]
    fn sg_table_layout_matches_c() {
        // `DmaMapping` allocates the table from the Rust type's size and
        // reads `sgl` and `nents` at the Rust offsets: both must be C's.
        // SAFETY: The helpers return constants.
        let (size, nents) = unsafe {
            (
                helpers::zc_c_sg_table_size(),
                helpers::zc_c_sg_table_nents_offset(),
            )
        };
        assert_eq!(size as usize, size_of::<bindings::sg_table>());
        assert_eq!(
            nents as usize,
            core::mem::offset_of!(bindings::sg_table, nents)
        );
    }
}
