// SPDX-License-Identifier: GPL-2.0

//! Fixtures shared by the KUnit suites.

use crate::{
    helpers,
    pin::PinnedPages, //
};
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// `(refcount, pincount)` of each page `observer` pins: a read-only pin of
/// its own gives a test access to the pages' counts.
pub(crate) fn counts(observer: &PinnedPages) -> Result<KVec<(i32, i32)>> {
    let mut v = KVec::new();
    for i in 0..observer.len() {
        let s = observer.page_state(i).ok_or(EINVAL)?;
        v.push((s.refcount, s.pincount), GFP_KERNEL)?;
    }
    Ok(v)
}

/// Anonymous user memory in the KUnit test's own mm, unmapped by KUnit
/// when the test ends.
pub(crate) struct UserMem {
    addr: usize,
    len: usize,
}

impl UserMem {
    /// Maps `len` bytes (a multiple of the page size) read-write.
    pub(crate) fn new(len: usize) -> Result<Self> {
        // SAFETY: The helper only calls `kunit_vm_mmap` for the current test.
        let addr = unsafe { helpers::zc_kunit_mmap_anon(len as c_ulong) } as usize;
        if addr >= (-4095isize) as usize {
            // CAST: an error value is a negative errno in an unsigned long.
            return Err(Error::from_errno(addr as isize as i32));
        }
        Ok(Self { addr, len })
    }

    pub(crate) fn addr(&self) -> usize {
        self.addr
    }

    /// Writes every page once so it is faulted in, with the page index as
    /// its first byte.
    pub(crate) fn touch(&self) -> Result {
        for (i, page) in (self.addr..self.addr + self.len)
            .step_by(PAGE_SIZE)
            .enumerate()
        {
            let mut w = UserSlice::new(UserPtr::from_addr(page), 1).writer();
            // CAST: only the low byte of the index is wanted.
            w.write_slice(&[i as u8])?;
        }
        Ok(())
    }
}
