// SPDX-License-Identifier: GPL-2.0

//! The per-open context.
//!
//! Each open file description of `/dev/zcopy` owns one [`Context`]: its
//! registered regions and its counters live and die with it. Closing the
//! last reference to the descriptor (or the process exiting) drops the
//! context, and with it every region it still holds; a region a send still
//! uses goes when that send completes (the send holds it, and the
//! context's completion queue, until then).
//!
//! Lock order: [`Context::regions`] is taken before any lock of a region;
//! regions are torn down after it is released.

use crate::{
    abi,
    completion::Completions,
    helpers, ioctl,
    region::{
        InFlight,
        Region, //
        RegisterArgs,
    },
    send::Queue,
    stats::{
        self,
        Counters, //
    },
};
use kernel::{
    fs::{
        File,
        Kiocb, //
    },
    iov::IovIterDest,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    new_mutex,
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    sync::{
        atomic::Relaxed,
        Arc,
        Mutex, //
    },
};

/// The state behind one open file description of `/dev/zcopy`.
///
/// # Invariants
///
/// While a `Context` exists it is counted once in [`stats::OPEN_CONTEXTS`].
#[pin_data(PinnedDrop)]
pub(crate) struct Context {
    /// Unique for the module's lifetime, shown in `/proc/PID/fdinfo`.
    id: u64,
    /// This context's counters; regions and sends hold them too.
    counters: Arc<Counters>,
    /// Where this context's sends' records and counts go, and the send
    /// objects kept for reuse; sends hold it too.
    sends: Arc<Queue>,
    #[pin]
    regions: Mutex<KVec<Arc<Region>>>,
}

impl Context {
    fn new() -> Result<Pin<KBox<Self>>> {
        let counters = Arc::new(Counters::new(), GFP_KERNEL)?;
        let sends = Queue::new(&counters)?;
        let ctx = KBox::pin_init(
            try_pin_init!(Self {
                id: stats::CONTEXTS_OPENED.fetch_add(1, Relaxed) + 1,
                counters,
                sends,
                regions <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: counted here, uncounted in `drop`.
        stats::OPEN_CONTEXTS.add(1, Relaxed);
        Ok(ctx)
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub(crate) fn sends(&self) -> &Arc<Queue> {
        &self.sends
    }

    pub(crate) fn completions(&self) -> &Arc<Completions> {
        self.sends.completions()
    }

    /// Holds region `id` for a send (`ENOENT` if there is none). Taken
    /// under the table's lock, so it cannot race with `unregister`.
    pub(crate) fn hold(&self, id: u32) -> Result<InFlight> {
        let regions = self.regions.lock();
        let r = regions.iter().find(|r| r.id() == id).ok_or(ENOENT)?;
        Ok(InFlight::new(r.clone()))
    }

    /// Registers a region and returns it.
    pub(crate) fn register(&self, args: &RegisterArgs, max_pinned: u64) -> Result<Arc<Region>> {
        let region = Region::register(args, &self.counters, max_pinned)?;
        self.regions.lock().push(region.clone(), GFP_KERNEL)?;
        Ok(region)
    }

    /// The region `id` of this context: `ENOENT` if there is none.
    pub(crate) fn region(&self, id: u32) -> Result<Arc<Region>> {
        let regions = self.regions.lock();
        let r = regions.iter().find(|r| r.id() == id).ok_or(ENOENT)?;
        Ok(r.clone())
    }

    /// Forgets region `id` even while sends use it (they keep it alive
    /// until they complete): the undo of a `register` whose caller never
    /// learnt the id. `ENOENT` if there is no such region.
    pub(crate) fn forget(&self, id: u32) -> Result {
        let region = {
            let mut regions = self.regions.lock();
            let i = regions.iter().position(|r| r.id() == id).ok_or(ENOENT)?;
            regions.remove(i).map_err(|_| ENOENT)?
        };
        drop(region);
        Ok(())
    }

    /// Forgets region `id`; it is torn down once nothing else uses it.
    /// `ENOENT` if there is no such region, `EBUSY` while sends use it.
    pub(crate) fn unregister(&self, id: u32) -> Result {
        let region = {
            let mut regions = self.regions.lock();
            let i = regions.iter().position(|r| r.id() == id).ok_or(ENOENT)?;
            if regions[i].busy() {
                return Err(EBUSY);
            }
            regions.remove(i).map_err(|_| ENOENT)?
        };
        // Torn down here, outside the lock, if this was the last user.
        drop(region);
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Context {
    fn drop(self: Pin<&mut Self>) {
        // The send objects kept for reuse refer to the queue: let them go,
        // so that the queue goes when its last send in flight does.
        self.sends.close();
        stats::OPEN_CONTEXTS.fetch_sub(1, Relaxed);
    }
}

#[vtable]
impl MiscDevice for Context {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        Self::new()
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: The kiocb is valid for the duration of the call.
        let nowait = unsafe { helpers::zc_kiocb_nowait(kiocb.as_raw()) };
        let me = kiocb.file();
        let room = iov.len();
        me.completions().read(nowait, room, |rec| {
            let size = size_of::<abi::zc_completion>();
            // SAFETY: `zc_completion` is plain data with no padding (the
            // UAPI header asserts its size).
            let bytes =
                unsafe { core::slice::from_raw_parts(core::ptr::from_ref(rec).cast::<u8>(), size) };
            iov.copy_to_iter(bytes) == size
        })
    }

    fn ioctl(me: Pin<&Context>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        ioctl::dispatch(&me, cmd, arg)
    }

    #[cfg(CONFIG_COMPAT)]
    fn compat_ioctl(me: Pin<&Context>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // Every argument structure has one layout on all architectures.
        ioctl::dispatch(&me, cmd, arg)
    }

    fn show_fdinfo(me: Pin<&Context>, m: &SeqFile, _file: &File) {
        let c: abi::zc_counters = me.counters.to_abi();
        seq_print!(m, "zcopy_context:\t{}\n", me.id);
        seq_print!(
            m,
            "zcopy_open_contexts:\t{}\n",
            stats::get(&stats::OPEN_CONTEXTS)
        );
        seq_print!(m, "zcopy_regions:\t{}\n", c.regions);
        seq_print!(m, "zcopy_pinned_pages:\t{}\n", c.pinned_pages);
        seq_print!(m, "zcopy_mapped_pages:\t{}\n", c.mapped_pages);
        seq_print!(m, "zcopy_sends:\t{}\n", c.sends);
        seq_print!(m, "zcopy_completions:\t{}\n", c.completions);
        seq_print!(
            m,
            "zcopy_completions_unread:\t{}\n",
            me.completions().pending()
        );
    }
}

#[kunit_tests(zcopy_context)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_counted_while_alive() -> Result {
        let before = stats::get(&stats::OPEN_CONTEXTS);
        let a = Context::new()?;
        let b = Context::new()?;
        assert!(b.id > a.id);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before + 2);
        drop(a);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before + 1);
        drop(b);
        assert_eq!(stats::get(&stats::OPEN_CONTEXTS), before);
        Ok(())
    }

    #[test]
    fn unknown_and_double_unregister_are_enoent() -> Result {
        let ctx = Context::new()?;
        assert!(ctx.unregister(0).err() == Some(ENOENT));
        assert!(ctx.unregister(u32::MAX).err() == Some(ENOENT));
        assert!(ctx.region(12345).err() == Some(ENOENT));
        Ok(())
    }
}
