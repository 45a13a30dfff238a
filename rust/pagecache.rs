// SPDX-License-Identifier: GPL-2.0

//! Sends from the page cache: the pages of a file range, referenced for as
//! long as the stack may use them, and what the page cache holds.
//!
//! C header: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h)
//! (`filemap_get_folio`, `page_cache_sync_readahead`, `read_mapping_folio`).
//!
//! For each page of the range, `zc_file_get_page` looks the folio up in the
//! file's `address_space`; a miss starts readahead for the rest of the range
//! and waits for the read (killable), falling back to a synchronous read.
//! Pages not cached when the first miss is found are counted read in. A
//! tmpfs file's page cache is the file itself: a missing page is a hole,
//! sent as the zero page. Each page comes back with a folio reference,
//! which [`FilePages`] keeps until the send completes.
//!
//! Which files: those whose page cache is their content (tmpfs, file
//! systems that read their folios from a backing device, and files
//! `sendfile(2)` itself sends from the page cache); pseudo files (sysfs,
//! cgroupfs, configfs, procfs, debugfs) generate their bytes on each read
//! and are refused. Who learns what is cached: only callers that pass
//! `cachestat(2)`'s test; for others `ZC_IOC_FILE_PAGES` is `EPERM` and a
//! send reports (and counts) no hits or misses.
//!
//! What the reference protects: the page itself. Truncation may remove it
//! from the file and a write may change it meanwhile; the stack then sends
//! what the page holds when the device reads it, as `sendfile` does.

use crate::{
    abi,
    account::user_sized,
    helpers,
    pin::Bvecs,
    stats::{
        Counters,
        Gauge,
        Kind, //
    },
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    fs::LocalFile,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc, //
    },
};

/// A regular file open for reading, whose page cache is its content.
pub(crate) struct FileRef {
    file: ARef<LocalFile>,
}

impl FileRef {
    /// `fd`: `EBADF` if not open (or not for reading), `EINVAL` if not a
    /// regular file, `EOPNOTSUPP` if its page cache is not its content
    /// (sysfs, cgroupfs, configfs, procfs, debugfs, DAX; the rule is
    /// `zc_page_cache_is_content` in `helpers.c`).
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        let file = LocalFile::fget(fd)?;
        // SAFETY: `file` is a valid, referenced file.
        to_result(unsafe { helpers::zc_file_check(file.as_ptr()) })?;
        Ok(Self { file })
    }

    fn as_ptr(&self) -> *mut bindings::file {
        self.file.as_ptr()
    }

    /// Whether the caller may learn which of the file's pages are cached:
    /// `cachestat(2)`'s rule (the file is open for writing, or the caller
    /// owns it or could open it for writing), which `mincore(2)` follows
    /// too since CVE-2019-5489.
    pub(crate) fn may_see_residency(&self) -> bool {
        // SAFETY: The file is referenced; process context (the caller's
        // credentials are read).
        unsafe { helpers::zc_file_may_see_cache(self.as_ptr()) }
    }

    /// What `sendfile(2)` checks before reading bytes `[offset, offset +
    /// len)` (`rw_verify_area`): the range (`EINVAL`), then the LSM and
    /// fanotify permission events, either of which may refuse. May sleep.
    pub(crate) fn verify_read(&self, offset: u64, len: u64) -> Result {
        // CAST: out-of-range values wrap negative, which is what
        // `rw_verify_area` tests for.
        let (pos, count) = (offset as i64, len as usize);
        // SAFETY: The file is referenced; process context, no locks held.
        to_result(unsafe { helpers::zc_file_read_verify(self.as_ptr(), pos, count) })
    }

    /// Reports a read that read something (`fsnotify_access`: inotify's
    /// `IN_ACCESS`, fanotify's `FAN_ACCESS`), as `sendfile(2)` does.
    pub(crate) fn accessed(&self) {
        // SAFETY: The file is referenced; process context.
        unsafe { helpers::zc_file_accessed(self.as_ptr()) };
    }

    /// The file's size now.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: The file is referenced.
        let size = unsafe { helpers::zc_file_size(self.as_ptr()) };
        // CAST: `i_size` is never negative.
        size as u64
    }

    /// The state of page `index` in the page cache.
    pub(crate) fn page_state(&self, index: u64) -> abi::zc_file_page {
        let mut p = abi::zc_file_page::default();
        // SAFETY: The file is referenced; the out-pointers are valid.
        let resident = unsafe {
            helpers::zc_file_page_state(
                self.as_ptr(),
                // CAST: page indices of a 64-bit kernel fit in `usize`.
                index as usize,
                &mut p.refcount,
                &mut p.mapcount,
                &mut p.flags,
                &mut p.order,
            )
        };
        if !resident {
            p = abi::zc_file_page::default();
        }
        p
    }
}

/// Page-cache pages held for a send: one folio reference per page.
///
/// # Invariants
///
/// Each entry of `pages` is a page on whose folio this object holds one
/// reference, dropped exactly once, in `Drop`; `bvecs` describes exactly
/// `pages`.
pub(crate) struct FilePages {
    bvecs: Bvecs,
    pages: KVVec<*mut bindings::page>,
    _held: Gauge,
}

// SAFETY: Folio references are not tied to a task.
unsafe impl Send for FilePages {}
// SAFETY: Shared access only reads the arrays.
unsafe impl Sync for FilePages {}

/// What [`FilePages::gather`] found.
pub(crate) struct Gathered {
    pub(crate) pages: FilePages,
    pub(crate) hits: u32,
    pub(crate) misses: u32,
}

impl FilePages {
    /// References the pages under bytes `[start, end)` of `file`, reading
    /// in what is missing. `start < end`. Hits and misses are counted, and
    /// reported, only if `residency` (the caller may see which pages were
    /// cached, [`FileRef::may_see_residency`]); otherwise both are 0.
    pub(crate) fn gather(
        file: &FileRef,
        start: u64,
        end: u64,
        counters: &Arc<Counters>,
        residency: bool,
    ) -> Result<Gathered> {
        // CAST: `PAGE_SIZE` fits in `u64`.
        let page = PAGE_SIZE as u64;
        let (first, last) = (start / page, end.div_ceil(page));
        // CAST: bounded by `ZC_SENDFILE_MAX / PAGE_SIZE + 1`.
        let n = (last - first) as usize;
        let mut pages = KVVec::with_capacity(n, user_sized())?;
        // Misses are the pages not cached when the first miss was found
        // (before its readahead brought the others in); pages before it
        // were all cached.
        let mut misses: Option<usize> = None;
        let mut err = None;
        for index in first..last {
            let (mut hit, mut ahead) = (false, 0);
            // SAFETY: The file is referenced; `hit` and `ahead` are valid
            // out-pointers.
            let p = unsafe {
                // CAST: page indices of a 64-bit kernel fit in `usize`.
                helpers::zc_file_get_page(
                    file.as_ptr(),
                    index as usize,
                    (last - index) as usize,
                    &mut hit,
                    &mut ahead,
                )
            };
            match from_err_ptr(p) {
                Ok(p) => {
                    // Within the capacity allocated above.
                    if pages.push_within_capacity(p).is_err() {
                        // SAFETY: `p` holds the reference just taken.
                        unsafe { helpers::zc_page_put(p) };
                        err = Some(ENOMEM);
                        break;
                    }
                    if !hit && misses.is_none() {
                        // CAST: `last - index <= n`, a `usize`.
                        let rest = (last - index) as usize;
                        misses = Some(rest - ahead.min(rest - 1));
                    }
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let misses = misses.unwrap_or(0).min(pages.len());
        // CAST: at most `ZC_SENDFILE_MAX / PAGE_SIZE + 1` pages.
        let (hits, misses) = if residency {
            ((pages.len() - misses) as u32, misses as u32)
        } else {
            // The counters are readable by every caller (`ZC_IOC_STATS`):
            // they would tell the same thing.
            (0, 0)
        };
        counters.count_cache(u64::from(hits), u64::from(misses));
        let bvecs = Bvecs::new(&pages);
        let held = Gauge::new(counters, Kind::FilePages, pages.len());
        let bvecs = match (bvecs, err) {
            (Ok(b), None) => b,
            (b, e) => {
                drop(b);
                for &p in pages.iter() {
                    // SAFETY: Each page holds the reference taken above.
                    unsafe { helpers::zc_page_put(p) };
                }
                return Err(e.unwrap_or(ENOMEM));
            }
        };
        // INVARIANT: one reference per page, taken above; `bvecs` built
        // from `pages`.
        Ok(Gathered {
            pages: Self {
                bvecs,
                pages,
                _held: held,
            },
            hits,
            misses,
        })
    }

    pub(crate) fn bvecs(&self) -> &Bvecs {
        &self.bvecs
    }
}

impl Drop for FilePages {
    fn drop(&mut self) {
        for &p in self.pages.iter() {
            // SAFETY: Each page holds one reference (type invariant).
            unsafe { helpers::zc_page_put(p) };
        }
    }
}
