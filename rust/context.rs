// SPDX-License-Identifier: GPL-2.0

//! The per-open context.
//!
//! Each open file description of `/dev/zcopy` owns one [`Context`]; what a
//! caller registers or sends through a descriptor lives and dies with it.
//! Closing the last reference to the descriptor drops the context, which
//! releases everything it holds.

use crate::{
    ioctl,
    stats, //
};
use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    sync::atomic::Relaxed,
};

/// The state behind one open file description of `/dev/zcopy`.
///
/// # Invariants
///
/// While a `Context` exists it is counted once in [`stats::OPEN_CONTEXTS`].
pub(crate) struct Context {
    /// Unique for the module's lifetime, shown in `/proc/PID/fdinfo`.
    id: u64,
}

impl Context {
    fn new() -> Self {
        let id = stats::CONTEXTS_OPENED.fetch_add(1, Relaxed) + 1;
        stats::OPEN_CONTEXTS.add(1, Relaxed);
        // INVARIANT: counted just above, uncounted in `Drop`.
        Self { id }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        stats::OPEN_CONTEXTS.fetch_sub(1, Relaxed);
    }
}

#[vtable]
impl MiscDevice for Context {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(Self::new(), GFP_KERNEL)?)
    }

    fn ioctl(me: &Context, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(me, cmd, arg)
    }

    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(me: &Context, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // Every argument structure has one layout on all architectures.
        ioctl::dispatch(me, cmd, arg)
    }

    fn show_fdinfo(me: &Context, m: &SeqFile, _file: &File) {
        seq_print!(m, "zcopy_context:\t{}\n", me.id);
        seq_print!(
            m,
            "zcopy_open_contexts:\t{}\n",
            stats::get(&stats::OPEN_CONTEXTS)
        );
    }
}

#[kunit_tests(zcopy_context)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_counted_while_alive() {
        let before = stats::get(&stats::OPEN_CONTEXTS);
        let a = Context::new();
        let b = Context::new();
        assert!(b.id > a.id);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before + 2);
        drop(a);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before + 1);
        drop(b);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before);
    }
}
