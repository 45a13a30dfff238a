// SPDX-License-Identifier: GPL-2.0

//! Long-term pins on user pages.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)
//! (`pin_user_pages_fast`, `unpin_folio`).
//!
//! A [`PinnedPages`] holds `FOLL_PIN | FOLL_LONGTERM` pins on every page
//! covering a user range, so the pages cannot move, be swapped, migrated or
//! freed until it is dropped. GUP moves pages out of `ZONE_MOVABLE`/CMA first
//! and refuses `VM_IO`/`VM_PFNMAP` mappings, holes and pages the caller may
//! not access (`EFAULT`).
//!
//! Pins are coalesced per folio run: when consecutive pages belong to one
//! folio (a huge page, a large folio), one pin on the folio is kept and the
//! others are dropped at once, as io_uring does for registered buffers. A
//! huge page is therefore pinned, and charged, once.

use crate::{
    account::user_sized,
    helpers, //
};
use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*, //
};

/// Pages covering a user range, pinned long-term.
///
/// # Invariants
///
/// - `pages` holds every page of the range in order; each belongs to the
///   folio of some entry of `pins` that covers it.
/// - Each entry of `pins` is one `FOLL_PIN` pin this object holds on that
///   folio, released exactly once, in `Drop`.
/// - `charge` is the sum of `folio_nr_pages` over `pins`.
pub(crate) struct PinnedPages {
    pages: KVVec<*mut bindings::page>,
    pins: KVVec<*mut bindings::folio>,
    charge: usize,
}

// SAFETY: The pins are owned by this object, not by a task: any task may
// read the pages' state or drop the pins.
unsafe impl Send for PinnedPages {}
// SAFETY: `&PinnedPages` only reads page pointers and folio state through
// functions that are safe to call concurrently.
unsafe impl Sync for PinnedPages {}

/// The largest number of pages one `pin_user_pages_fast` call takes.
const PIN_BATCH: usize = 1 << 16;

impl PinnedPages {
    /// Pins the `nr_pages` pages starting at the page-aligned user address
    /// `start` in the current task's address space, for reading by a
    /// device, and also for writing unless `read_only`.
    pub(crate) fn pin(start: usize, nr_pages: usize, read_only: bool) -> Result<Self> {
        if nr_pages == 0 || start % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        let mut pages: KVVec<*mut bindings::page> = KVVec::with_capacity(nr_pages, user_sized())?;
        let mut flags = bindings::FOLL_LONGTERM;
        if !read_only {
            flags |= bindings::FOLL_WRITE;
        }
        while pages.len() < nr_pages {
            let done = pages.len();
            let want = (nr_pages - done).min(PIN_BATCH);
            // CAST: `want` is at most `PIN_BATCH`, which fits in `c_int`.
            let want_c = want as i32;
            // SAFETY: `pages` has room for `nr_pages - done >= want` more
            // entries after `done`; GUP validates the user range itself.
            let got = unsafe {
                bindings::pin_user_pages_fast(
                    start + done * PAGE_SIZE,
                    want_c,
                    flags,
                    pages.as_mut_ptr().add(done),
                )
            };
            if got <= 0 {
                // SAFETY: The first `done` entries are pages pinned above.
                unsafe { bindings::unpin_user_pages(pages.as_mut_ptr(), done as c_ulong) };
                return Err(if got < 0 {
                    Error::from_errno(got)
                } else {
                    EFAULT
                });
            }
            // CAST: `got` is positive and at most `want`.
            let got = got as usize;
            // SAFETY: GUP initialised `got` more entries after `done`, all
            // within capacity.
            unsafe { pages.inc_len(got) };
        }
        Self::coalesce(pages)
    }

    /// Keeps one pin per run of pages in the same folio and drops the rest.
    fn coalesce(mut pages: KVVec<*mut bindings::page>) -> Result<Self> {
        let mut pins = KVVec::new();
        let mut charge = 0;
        let mut prev: *mut bindings::folio = core::ptr::null_mut();
        let mut failed = None;
        for (i, &page) in pages.iter().enumerate() {
            // SAFETY: `page` is pinned, so it and its folio are valid.
            let folio = unsafe { helpers::zc_page_folio(page) };
            if folio == prev {
                // SAFETY: This page holds a pin of its own from GUP; the
                // folio keeps the run's first pin, so dropping this one
                // leaves the folio pinned.
                unsafe { bindings::unpin_user_page(page) };
                continue;
            }
            if let Err(e) = pins.push(folio, user_sized()) {
                failed = Some((i, e));
                break;
            }
            // SAFETY: `folio` is pinned.
            charge += unsafe { helpers::zc_folio_nr_pages(folio) } as usize;
            prev = folio;
        }
        if let Some((i, e)) = failed {
            // Pages from `i` on still hold their own GUP pins.
            // CAST: a page count fits in `c_ulong`.
            let rest = (pages.len() - i) as c_ulong;
            // SAFETY: Entries `i..` are pinned pages not yet accounted for.
            unsafe { bindings::unpin_user_pages(pages.as_mut_ptr().add(i), rest) };
            // INVARIANT: `pins` covers exactly the pages before `i`.
            pages.truncate(i);
            drop(Self {
                pages,
                pins,
                charge,
            });
            return Err(e.into());
        }
        // INVARIANT: every page before was either the first of its folio run
        // (its pin is in `pins`) or had its own pin dropped.
        Ok(Self {
            pages,
            pins,
            charge,
        })
    }

    /// Number of pages.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// Number of pins held (folio runs).
    pub(crate) fn nr_pins(&self) -> usize {
        self.pins.len()
    }

    /// Pages to charge against memory limits: whole folios, once each.
    pub(crate) fn charge(&self) -> usize {
        self.charge
    }

    /// The pages, in order, as raw pointers for building scatterlists.
    pub(crate) fn pages(&self) -> &[*mut bindings::page] {
        &self.pages
    }

    /// The state of page `i` right now.
    pub(crate) fn page_state(&self, i: usize) -> Option<PageState> {
        let page = *self.pages.get(i)?;
        // SAFETY: `page` is pinned by `self`, so it and its folio are valid.
        Some(unsafe { PageState::of(page) })
    }
}

/// One whole-page `bio_vec` per page of a [`PinnedPages`], built once at
/// registration so sends look nothing up: a send's fragments are taken
/// straight from a slice of it.
///
/// # Invariants
///
/// `ptr` is a `kvmalloc`'d array of `len` initialised `bio_vec`s, freed
/// exactly once, in `Drop`. Its pages are those of a `PinnedPages` that
/// its owner drops after it.
pub(crate) struct Bvecs {
    ptr: *mut bindings::bio_vec,
    len: usize,
}

// SAFETY: The array is only read after it is built, and freeing it needs
// no particular task.
unsafe impl Send for Bvecs {}
// SAFETY: As above.
unsafe impl Sync for Bvecs {}

impl Bvecs {
    pub(crate) fn new(pages: &[*mut bindings::page]) -> Result<Self> {
        // SAFETY: `pages` is a valid array of `pages.len()` pointers.
        let ptr = unsafe { helpers::zc_bvecs_alloc(pages.as_ptr(), pages.len()) };
        if ptr.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: allocated and filled just above.
        Ok(Self {
            ptr,
            len: pages.len(),
        })
    }

    pub(crate) fn as_ptr(&self) -> *const bindings::bio_vec {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Bvecs {
    fn drop(&mut self) {
        // SAFETY: Allocated by `zc_bvecs_alloc`, freed once.
        unsafe { helpers::zc_bvecs_free(self.ptr) };
    }
}

/// A snapshot of one pinned page's folio.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageState {
    pub(crate) refcount: i32,
    pub(crate) pincount: i32,
    pub(crate) dma_pinned: bool,
    pub(crate) order: u32,
}

impl PageState {
    /// The state of `page` right now.
    ///
    /// # Safety
    ///
    /// `page` must be a valid page that cannot be freed during the call
    /// (pinned, or otherwise referenced).
    pub(crate) unsafe fn of(page: *mut bindings::page) -> Self {
        // SAFETY: `page` is valid (function contract), so is its folio.
        let folio = unsafe { helpers::zc_page_folio(page) };
        // SAFETY: As above, for all four reads.
        unsafe {
            Self {
                refcount: helpers::zc_folio_ref_count(folio),
                pincount: helpers::zc_folio_pincount(folio),
                dma_pinned: helpers::zc_folio_maybe_dma_pinned(folio),
                order: helpers::zc_folio_order(folio),
            }
        }
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        #[cfg(CONFIG_KUNIT = "y")]
        probe::run(self);
        for &folio in self.pins.iter() {
            // SAFETY: By the type invariant, this is one pin held by `self`
            // on `folio`, released here exactly once.
            unsafe { bindings::unpin_folio(folio) };
        }
    }
}

/// A hook for tests: a function the next [`PinnedPages`] drop calls just
/// before it unpins, so a test can observe the moment between a region's
/// unmap and its unpin through the real teardown path.
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) mod probe {
    use super::PinnedPages;
    use kernel::sync::atomic::{
        Atomic,
        Relaxed, //
    };

    static PROBE: Atomic<usize> = Atomic::new(0);

    pub(super) fn run(p: &PinnedPages) {
        let f = PROBE.xchg(0, Relaxed);
        if f != 0 {
            // SAFETY: Only `set` stores a nonzero value, and it stores a
            // `fn(&PinnedPages)`.
            let f: fn(&PinnedPages) = unsafe { core::mem::transmute(f) };
            f(p);
        }
    }

    /// Makes the next `PinnedPages::drop` call `f` before unpinning.
    pub(crate) fn set(f: fn(&PinnedPages)) {
        PROBE.store(f as usize, Relaxed);
    }
}

#[kunit_tests(zcopy_pin)]
mod tests {
    use super::*;
    use crate::testing::{
        counts,
        UserMem, //
    };

    #[test]
    fn pin_adds_one_pin_per_page_and_drop_restores() -> Result {
        let mem = UserMem::new(4 * PAGE_SIZE)?;
        mem.touch()?;
        // A read-only observer pin gives access to the pages' counts.
        let observer = PinnedPages::pin(mem.addr(), 4, true)?;
        let before = counts(&observer)?;
        let p = PinnedPages::pin(mem.addr(), 4, false)?;
        assert_eq!(p.len(), 4);
        assert_eq!(p.nr_pins(), 4);
        assert_eq!(p.charge(), 4);
        let during = counts(&observer)?;
        for i in 0..4 {
            let s = p.page_state(i).ok_or(EINVAL)?;
            assert!(s.dma_pinned);
            assert_eq!(s.order, 0);
            assert_eq!(s.pincount, before[i].1 + 1);
            assert_eq!(
                during[i].0,
                before[i].0 + bindings::GUP_PIN_COUNTING_BIAS as i32
            );
        }
        drop(p);
        assert!(counts(&observer)? == before);
        Ok(())
    }

    #[test]
    fn unmapped_range_is_efault_and_pins_nothing() -> Result {
        let mem = UserMem::new(2 * PAGE_SIZE)?;
        mem.touch()?;
        let observer = PinnedPages::pin(mem.addr(), 2, true)?;
        let before = counts(&observer)?;
        // From the second page on: the page after it is a hole.
        let r = PinnedPages::pin(mem.addr() + PAGE_SIZE, 2, false);
        assert!(r.err() == Some(EFAULT));
        assert!(counts(&observer)? == before);
        Ok(())
    }

    #[test]
    fn bad_arguments_are_einval() {
        assert!(PinnedPages::pin(PAGE_SIZE, 0, false).err() == Some(EINVAL));
        assert!(PinnedPages::pin(1, 1, false).err() == Some(EINVAL));
    }
}
