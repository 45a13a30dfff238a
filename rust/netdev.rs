// SPDX-License-Identifier: GPL-2.0

//! Network devices: finding one's DMA device, and unmapping regions before
//! a device goes away.
//!
//! C header: [`include/linux/netdevice.h`](srctree/include/linux/netdevice.h).
//!
//! The Rust bindings carry no `struct net_device`, so one crosses into Rust
//! only as an opaque pointer held by a [`NetdevRef`]; the few fields needed
//! are read by the C helpers.
//!
//! Regions mapped for a device are listed in [`MAPPED`]. When a device is
//! unregistered, the netdevice notifier (under RTNL) unmaps every region
//! mapped for it before the device can go away; the regions stay pinned.
//!
//! Lock order: RTNL, then [`MAPPED`], then a region's mapping lock.

use crate::{
    helpers,
    region::Region, //
};
use kernel::{
    bindings,
    prelude::*,
    sync::GlobalGuard, //
};

/// A held (`dev_hold`) network device.
///
/// # Invariants
///
/// `ptr` is a `struct net_device *` on which this object holds a reference,
/// dropped exactly once, in `Drop`.
pub(crate) struct NetdevRef {
    ptr: *mut c_void,
}

// SAFETY: A device reference may be dropped from any task.
unsafe impl Send for NetdevRef {}
// SAFETY: `&NetdevRef` only reads through the C helpers.
unsafe impl Sync for NetdevRef {}

impl NetdevRef {
    /// The interface `ifindex` of the caller's network namespace.
    pub(crate) fn get(ifindex: i32) -> Result<Self> {
        // SAFETY: Process context; returns a held device or NULL.
        let ptr = unsafe { helpers::zc_netdev_get(ifindex) };
        if ptr.is_null() {
            return Err(ENODEV);
        }
        // INVARIANT: `zc_netdev_get` took the reference.
        Ok(Self { ptr })
    }

    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.ptr
    }

    /// The device that does the interface's DMA: the nearest ancestor of
    /// the interface's own device that has a DMA mask (a virtio-net
    /// interface's parent is a virtio device; its DMA is done by the PCI
    /// function above that). Virtual interfaces (loopback, veth, dummy)
    /// have none: `EOPNOTSUPP`.
    pub(crate) fn dma_device(&self) -> Result<*mut bindings::device> {
        // SAFETY: The device is held (type invariant); its ancestors live at
        // least as long as it does.
        let dev = unsafe { helpers::zc_netdev_dma_device(self.ptr) };
        if dev.is_null() {
            return Err(EOPNOTSUPP);
        }
        Ok(dev)
    }

    /// Whether it is registered, not being unregistered, and still in the
    /// caller's network namespace (it may have moved since [`Self::get`]).
    pub(crate) fn registered(&self, _rtnl: &Rtnl) -> bool {
        // SAFETY: The device is held and RTNL is held, as the helper needs.
        unsafe { helpers::zc_netdev_registered(self.ptr) }
    }
}

impl Drop for NetdevRef {
    fn drop(&mut self) {
        // SAFETY: Drops the reference this object holds, once.
        unsafe { helpers::zc_netdev_put(self.ptr) };
    }
}

/// The RTNL mutex, held.
pub(crate) struct Rtnl(());

impl Rtnl {
    pub(crate) fn lock() -> Self {
        // SAFETY: Process context; released in `Drop`.
        unsafe { helpers::zc_rtnl_lock() };
        Self(())
    }
}

impl Drop for Rtnl {
    fn drop(&mut self) {
        // SAFETY: Taken in `lock`.
        unsafe { helpers::zc_rtnl_unlock() };
    }
}

/// The regions holding a device mapping right now.
///
/// # Invariants
///
/// Each entry points to a live [`Region`] whose mapping is `Some`; a region
/// removes itself (in its drop, under this lock) before it is freed.
pub(crate) struct MappedList(KVec<*const Region>);

// SAFETY: The pointers are only dereferenced under the lock, while the
// regions are alive (type invariant).
unsafe impl Send for MappedList {}

impl MappedList {
    pub(crate) fn insert(&mut self, r: &Region) -> Result {
        self.0.push(core::ptr::from_ref(r), GFP_KERNEL)?;
        Ok(())
    }

    pub(crate) fn remove(&mut self, r: &Region) {
        let p = core::ptr::from_ref(r);
        self.0.retain(|e| *e != p);
    }
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before any region.
    pub(crate) unsafe(uninit) static MAPPED: Mutex<MappedList> = MappedList(KVec::new());
}

/// Locks [`MAPPED`].
pub(crate) fn mapped() -> GlobalGuard<MAPPED> {
    MAPPED.lock()
}

/// The netdevice notifier, registered for as long as this value lives.
///
/// # Invariants
///
/// The notifier is registered; `Drop` unregisters it, once.
pub(crate) struct Notifier(());

impl Notifier {
    /// Initialises [`MAPPED`] and registers the notifier.
    ///
    /// # Safety
    ///
    /// Called once, from the module initialiser.
    pub(crate) unsafe fn register() -> Result<Self> {
        // SAFETY: Called once, before anything uses the lock.
        unsafe { MAPPED.init() };
        // SAFETY: Registers a static notifier block, unregistered in `Drop`.
        kernel::error::to_result(unsafe { helpers::zc_netdev_notifier_register() })?;
        // INVARIANT: registered just above.
        Ok(Self(()))
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // SAFETY: Registered in `register` (type invariant).
        unsafe { helpers::zc_netdev_notifier_unregister() };
        // A static is never dropped: free the list's buffer by hand. It is
        // empty, since no context (and so no region) outlives the module.
        let list = core::mem::take(&mut MAPPED.lock().0);
        drop(list);
    }
}

/// Unmaps every region mapped for the device `key` names (a
/// `net_device`, or the DMA engine's `device`).
pub(crate) fn unmap_all_for(key: *mut c_void) {
    let mut list = MAPPED.lock();
    list.0.retain(|r| {
        // SAFETY: Entries are live regions (type invariant of `MappedList`)
        // and we hold the lock they remove themselves under.
        let region = unsafe { &**r };
        !region.unmap_if_for(key)
    });
}

/// Called by the netdevice notifier on `NETDEV_UNREGISTER`, under RTNL.
#[no_mangle]
extern "C" fn zcopy_netdev_unregister(netdev: *mut c_void) {
    unmap_all_for(netdev);
}
