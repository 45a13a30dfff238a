// SPDX-License-Identifier: GPL-2.0

//! Charging pinned pages to memory limits.
//!
//! C headers: [`include/linux/sched/user.h`](srctree/include/linux/sched/user.h),
//! [`include/linux/mm_types.h`](srctree/include/linux/mm_types.h).
//!
//! Pinned memory cannot be reclaimed, so it is charged where io_uring and
//! AF_XDP charge it: to the caller's `user_struct::locked_vm` against
//! `RLIMIT_MEMLOCK` (skipped for `CAP_IPC_LOCK`), and always to the caller's
//! `mm_struct::pinned_vm`, which `/proc/PID/status` shows as `VmPin`. On
//! top, the module caps the pages all its regions pin at once
//! ([`GlobalCharge`], the `max_pinned_pages` parameter). Each charge is a
//! value whose `Drop` gives it back.

use crate::helpers;
use kernel::{
    bindings,
    mm::Mm,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
    },
};

/// Allocation flags for arrays whose size the caller decides (the pages of
/// a region, the entries of a reply): charged to the caller's memory
/// cgroup, and without the allocation-failure warning, a stack trace the
/// caller could print at will (as io_uring does for its user-sized arrays).
pub(crate) fn user_sized() -> kernel::alloc::Flags {
    GFP_KERNEL_ACCOUNT | kernel::alloc::flags::__GFP_NOWARN
}

/// `cur + pages` if it stays within `limit`, without overflowing.
pub(crate) fn try_add(cur: u64, pages: u64, limit: u64) -> Option<u64> {
    cur.checked_add(pages).filter(|&new| new <= limit)
}

/// Atomically adds `pages` to `counter` unless the sum would pass `limit`.
fn add_within(counter: &Atomic<i64>, pages: u64, limit: u64) -> Result {
    let mut cur = counter.load(Relaxed);
    loop {
        // CAST: the counters never go negative; a negative value (a bug
        // elsewhere) reads as huge and refuses the charge.
        let new = try_add(cur as u64, pages, limit).ok_or(ENOMEM)?;
        // CAST: `new <= limit`, and limits are far below `i64::MAX` pages.
        match counter.cmpxchg(cur, new as i64, Relaxed) {
            Ok(_) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
}

/// Pages charged to the caller's `RLIMIT_MEMLOCK` and `VmPin`.
///
/// # Invariants
///
/// - `mm` is the charged mm; `pages` were added to its `pinned_vm`.
/// - `user`, if non-null, holds a reference (`get_current_user`) and
///   `pages` were added to its `locked_vm`.
pub(crate) struct MemlockCharge {
    mm: ARef<Mm>,
    user: *mut bindings::user_struct,
    pages: u64,
}

// SAFETY: The charge may be given back from any task: it only touches
// atomics and drops references, which any task may do.
unsafe impl Send for MemlockCharge {}
// SAFETY: `&MemlockCharge` exposes nothing mutable.
unsafe impl Sync for MemlockCharge {}

/// `user->locked_vm` as an atomic.
///
/// # Safety
///
/// `user` must be a valid `user_struct` for `'a`.
unsafe fn locked_vm<'a>(user: *mut bindings::user_struct) -> &'a Atomic<i64> {
    // SAFETY: `locked_vm` is an `atomic_long_t`, a 64-bit counter only ever
    // accessed atomically, that lives as long as `user`, which is valid by
    // the caller's promise.
    unsafe { Atomic::from_ptr(helpers::zc_user_locked_vm(user)) }
}

/// `mm->pinned_vm` as an atomic.
fn pinned_vm(mm: &Mm) -> &Atomic<i64> {
    // SAFETY: `pinned_vm` is an `atomic64_t` only ever accessed atomically,
    // that lives as long as `mm`, which is valid for the borrow.
    unsafe { Atomic::from_ptr(helpers::zc_mm_pinned_vm(mm.as_raw())) }
}

/// The current task's mm, referenced (`mmgrab`).
///
/// Read through a C helper: the kernel's Rust `task_struct` bindings do not
/// match the C layout in this configuration, so `current!().mm()` would
/// read the wrong field.
fn current_mm() -> Result<ARef<Mm>> {
    // SAFETY: Reads `current->mm`, which only the task itself changes.
    let mm = unsafe { helpers::zc_current_mm() };
    if mm.is_null() {
        return Err(EFAULT);
    }
    // SAFETY: `current->mm` is valid while the task runs, which covers this
    // call; `ARef::from` takes a reference of our own (`mmgrab`).
    Ok(ARef::from(unsafe { Mm::from_raw(mm) }))
}

impl MemlockCharge {
    /// Charges `pages` to the current task's user and mm.
    pub(crate) fn charge(pages: usize) -> Result<Self> {
        // CAST: `usize` is 64-bit on every architecture zcopy builds for.
        let pages = pages as u64;
        let mm = current_mm()?;
        // SAFETY: `capable` may be called from any process context.
        let exempt = unsafe { bindings::capable(bindings::CAP_IPC_LOCK as i32) };
        let user = if exempt {
            core::ptr::null_mut()
        } else {
            // SAFETY: Called from process context; returns a reference.
            let user = unsafe { helpers::zc_get_current_user() };
            // SAFETY: Reads the current task's rlimit.
            let limit = (unsafe { helpers::zc_rlimit_memlock() } >> PAGE_SHIFT) as u64;
            // SAFETY: We hold a reference to `user`.
            let locked = unsafe { locked_vm(user) };
            if let Err(e) = add_within(locked, pages, limit) {
                // SAFETY: Drops the reference taken above.
                unsafe { bindings::free_uid(user) };
                return Err(e);
            }
            user
        };
        // CAST: bounded by the pinned pages, far below `i64::MAX`.
        pinned_vm(&mm).add(pages as i64, Relaxed);
        // INVARIANT: both counters were charged above, the reference taken.
        Ok(Self { mm, user, pages })
    }

    /// Charges `pages` more to the same user and mm; on `ENOMEM` the
    /// charge is as it was.
    pub(crate) fn grow(&mut self, pages: usize) -> Result {
        // CAST: as in `charge`.
        let pages = pages as u64;
        if !self.user.is_null() {
            // SAFETY: Reads the current task's rlimit.
            let limit = (unsafe { helpers::zc_rlimit_memlock() } >> PAGE_SHIFT) as u64;
            // SAFETY: We hold a reference to `user` (type invariant).
            add_within(unsafe { locked_vm(self.user) }, pages, limit)?;
        }
        // CAST: as in `charge`.
        pinned_vm(&self.mm).add(pages as i64, Relaxed);
        // INVARIANT: both counters were charged `pages` more above.
        self.pages += pages;
        Ok(())
    }
}

impl Drop for MemlockCharge {
    fn drop(&mut self) {
        // CAST: as in `charge`.
        let pages = self.pages as i64;
        pinned_vm(&self.mm).fetch_sub(pages, Relaxed);
        if !self.user.is_null() {
            // SAFETY: By the type invariant we hold a reference to `user`.
            unsafe { locked_vm(self.user) }.fetch_sub(pages, Relaxed);
            // SAFETY: Drops that reference, once.
            unsafe { bindings::free_uid(self.user) };
        }
    }
}

/// Pages all regions of the module hold charged, against `max_pinned_pages`.
static GLOBAL_PINNED: Atomic<i64> = Atomic::new(0);

/// Pages charged to the module-wide cap.
///
/// # Invariants
///
/// `pages` were added to `GLOBAL_PINNED`.
pub(crate) struct GlobalCharge {
    pages: u64,
}

impl GlobalCharge {
    /// Charges `pages` unless the module would then hold more than `max`.
    pub(crate) fn charge(pages: usize, max: u64) -> Result<Self> {
        // CAST: as in `MemlockCharge::charge`.
        let pages = pages as u64;
        add_within(&GLOBAL_PINNED, pages, max)?;
        // INVARIANT: charged just above.
        Ok(Self { pages })
    }

    /// Charges `pages` more, unless the module would then hold more than
    /// `max`; on `ENOMEM` the charge is as it was.
    pub(crate) fn grow(&mut self, pages: usize, max: u64) -> Result {
        // CAST: as in `MemlockCharge::charge`.
        let pages = pages as u64;
        add_within(&GLOBAL_PINNED, pages, max)?;
        // INVARIANT: charged just above.
        self.pages += pages;
        Ok(())
    }

    /// Pages charged by the whole module now.
    pub(crate) fn total() -> u64 {
        // CAST: never negative, see `add_within`.
        GLOBAL_PINNED.load(Relaxed) as u64
    }
}

impl Drop for GlobalCharge {
    fn drop(&mut self) {
        // CAST: as in `charge`.
        GLOBAL_PINNED.fetch_sub(self.pages as i64, Relaxed);
    }
}

#[kunit_tests(zcopy_account)]
mod tests {
    use super::*;
    use crate::testing::UserMem;

    #[test]
    fn try_add_checks_limit_and_overflow() {
        assert_eq!(try_add(0, 4, 4), Some(4));
        assert_eq!(try_add(1, 4, 4), None);
        assert_eq!(try_add(u64::MAX, 1, u64::MAX), None);
        assert_eq!(try_add(1, u64::MAX, u64::MAX), None);
        assert_eq!(try_add(0, 0, 0), Some(0));
    }

    #[test]
    fn global_cap_refuses_and_gives_back() -> Result {
        let base = GlobalCharge::total();
        let a = GlobalCharge::charge(10, base + 15)?;
        assert_eq!(GlobalCharge::total(), base + 10);
        assert!(GlobalCharge::charge(6, base + 15).err() == Some(ENOMEM));
        assert_eq!(GlobalCharge::total(), base + 10);
        let mut b = GlobalCharge::charge(2, base + 15)?;
        assert!(b.grow(4, base + 15).err() == Some(ENOMEM));
        assert_eq!(GlobalCharge::total(), base + 12);
        b.grow(3, base + 15)?;
        assert_eq!(GlobalCharge::total(), base + 15);
        drop(a);
        drop(b);
        assert_eq!(GlobalCharge::total(), base);
        Ok(())
    }

    #[test]
    fn memlock_charges_pinned_vm_and_gives_back() -> Result {
        // A test runs in a kthread; give it an mm as a registering task has.
        let _mem = UserMem::new(kernel::page::PAGE_SIZE)?;
        let mm = current_mm()?;
        let before = pinned_vm(&mm).load(Relaxed);
        let mut c = MemlockCharge::charge(3)?;
        assert_eq!(pinned_vm(&mm).load(Relaxed), before + 3);
        c.grow(2)?;
        assert_eq!(pinned_vm(&mm).load(Relaxed), before + 5);
        drop(c);
        assert_eq!(pinned_vm(&mm).load(Relaxed), before);
        Ok(())
    }
}
