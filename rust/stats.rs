// SPDX-License-Identifier: GPL-2.0

//! Module-wide counters.
//!
//! Each counter is a relaxed atomic: they are reported, never used to decide
//! anything, so no ordering with other memory is needed.

use kernel::sync::atomic::{
    Atomic,
    Relaxed, //
};

/// Open contexts (file descriptions of `/dev/zcopy`) right now.
pub(crate) static OPEN_CONTEXTS: Atomic<u64> = Atomic::new(0);

/// Contexts ever opened; also the source of context ids.
pub(crate) static CONTEXTS_OPENED: Atomic<u64> = Atomic::new(0);

/// Reads a counter.
pub(crate) fn get(counter: &Atomic<u64>) -> u64 {
    counter.load(Relaxed)
}
