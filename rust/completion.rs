// SPDX-License-Identifier: GPL-2.0

//! Completion records: one per send, read with `read(2)` on the zcopy fd.
//!
//! Each context has one [`Completions`] queue, shared (`Arc`) with the
//! sends it started, so records of sends still in flight when the file is
//! closed have somewhere to go (and are dropped with the queue). The queue
//! also keeps the send objects of finished sends for reuse, so a send
//! allocates nothing once a context has warmed up.
//!
//! The queue is bounded without ever dropping a record: a send first
//! reserves room ([`Completions::reserve`]), and `ZC_IOC_SEND` fails with
//! `ENOBUFS` when reservations plus unread records reach
//! `ZC_COMPLETION_SLOTS`. A reservation ends in exactly one
//! [`Completions::finish`]: with a record, or giving the room back if the
//! send failed; so every accepted send yields one record and the ring never
//! overflows. Send objects are at most as many as reservations once were at
//! a time, so the list that keeps them for reuse (allocated with room for
//! `ZC_COMPLETION_SLOTS`) never grows.
//!
//! Records are posted where the stack lets go of a send, which may be
//! softirq or hardirq context: the ring is under an interrupt-disabling
//! spinlock, and [`Completions::finish`] does everything under it, waking
//! readers and signalling the eventfd included, so that nothing touches the
//! queue after its lock is released (the context may be closed and the
//! queue freed at that very moment).
//!
//! A reader takes records out under the lock and copies them to user space
//! without it (a fault there may sleep for long); records it could not
//! copy go back to the head of the ring. While out, they keep their room
//! (`reading`), so putting them back always fits, and no other reader can
//! see them twice.

use crate::{
    abi,
    helpers, //
};
use kernel::{
    bindings,
    error::from_err_ptr,
    new_condvar, new_spinlock_irq,
    prelude::*,
    sync::{
        Arc,
        CondVar,
        SpinLockIrq, //
    },
};

/// Records the ring holds, and sends plus records a context may have.
const SLOTS: usize = abi::ZC_COMPLETION_SLOTS as usize;

/// A reference to an eventfd, signalled for each record.
///
/// # Invariants
///
/// `ptr` is an eventfd context on which this object holds a reference,
/// dropped exactly once, in `Drop`.
struct EventFd {
    ptr: *mut bindings::eventfd_ctx,
}

// SAFETY: An eventfd reference may be signalled and dropped from any task.
unsafe impl Send for EventFd {}

impl EventFd {
    fn get(fd: i32) -> Result<Self> {
        // SAFETY: Process context; returns a referenced context or an error.
        let ptr = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: `eventfd_ctx_fdget` took the reference.
        Ok(Self { ptr })
    }

    /// Any context (`eventfd_signal_mask` takes an irq-safe lock).
    fn signal(&self) {
        // SAFETY: The context is referenced (type invariant).
        unsafe { bindings::eventfd_signal_mask(self.ptr, 0) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: Dropping the reference taken in `get`.
        unsafe { bindings::eventfd_ctx_put(self.ptr) };
    }
}

/// A reference on this module, held by every queue: its sends' `ubuf_info`
/// operations and work items are code of this module, and a queue lives
/// until the last of its sends is done.
///
/// A queue is dropped in process context only: by the file's release
/// (which holds the module itself), or on the module's workqueue, which
/// module exit drains.
struct ModuleRef(());

impl ModuleRef {
    fn get() -> Self {
        // SAFETY: Called when a context is opened (an open file holds the
        // module already) or in a KUnit test of the loading module.
        unsafe { helpers::zc_module_get() };
        Self(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: Drops the reference taken in `get`.
        unsafe { helpers::zc_module_put() };
    }
}

/// Most records one `read` takes out at a time.
const READ_BATCH: usize = 64;

/// The ring of unread records, the count of reservations and the send
/// objects kept for reuse.
struct Ring<T> {
    records: KVec<abi::zc_completion>,
    head: usize,
    len: usize,
    /// Reservations of sends that have not finished yet.
    reserved: usize,
    /// Records taken out by readers and not yet copied to user space.
    reading: usize,
    /// Readers asleep waiting for a record (wake-ups cost only then).
    waiters: usize,
    eventfd: Option<EventFd>,
    /// Send objects kept for reuse; room for `SLOTS` allocated up front.
    free: KVec<T>,
    /// The context is gone: nothing more is kept for reuse.
    closed: bool,
}

impl<T> Ring<T> {
    fn used(&self) -> usize {
        self.len + self.reserved + self.reading
    }
}

/// A context's completion queue, keeping send objects of type `T`.
///
/// # Invariants
///
/// `ring.records.len() == SLOTS`, `ring.used() <= SLOTS`,
/// `ring.free.capacity() >= SLOTS`.
#[pin_data]
pub(crate) struct Completions<T> {
    #[pin]
    ring: SpinLockIrq<Ring<T>>,
    #[pin]
    ready: CondVar,
    _module: ModuleRef,
}

impl<T> Completions<T> {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let records = KVec::from_elem(abi::zc_completion::default(), SLOTS, GFP_KERNEL)?;
        let free = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                ring <- new_spinlock_irq!(Ring {
                    records,
                    head: 0,
                    len: 0,
                    reserved: 0,
                    reading: 0,
                    waiters: 0,
                    eventfd: None,
                    free,
                    closed: false,
                }),
                ready <- new_condvar!(),
                _module: ModuleRef::get(),
            }),
            GFP_KERNEL,
        )
    }

    /// Reserves room for one record and takes a send object kept for
    /// reuse, if there is one: `ENOBUFS` when the queue is full of records
    /// and outstanding sends. The reservation ends with [`Self::finish`] or
    /// [`Self::unreserve`].
    pub(crate) fn reserve(&self) -> Result<Option<T>> {
        let mut ring = self.ring.lock();
        if ring.used() >= SLOTS {
            return Err(ENOBUFS);
        }
        ring.reserved += 1;
        Ok(ring.free.pop())
    }

    /// Ends a reservation that has no send object to give back.
    pub(crate) fn unreserve(&self) {
        self.ring.lock().reserved -= 1;
    }

    /// Ends a reservation, in any context: posts `rec` (waking readers and
    /// signalling the eventfd) or, if `None`, gives the room back; and
    /// keeps `item` for reuse. Returns `item` if it is not kept (the
    /// context is closed), for the caller to drop in process context.
    ///
    /// Nothing touches the queue once its lock is released.
    pub(crate) fn finish(&self, rec: Option<abi::zc_completion>, item: T) -> Option<T> {
        let mut ring = self.ring.lock();
        ring.reserved -= 1;
        if let Some(rec) = rec {
            // The reservation was counted in `used()`, so the ring has room.
            let tail = (ring.head + ring.len) % SLOTS;
            ring.records[tail] = rec;
            ring.len += 1;
            if let Some(e) = &ring.eventfd {
                e.signal();
            }
            if ring.waiters > 0 {
                self.ready.notify_all();
            }
        }
        if ring.closed {
            return Some(item);
        }
        // Never more send objects than reservations at once: room enough.
        ring.free.push_within_capacity(item).err().map(|e| e.0)
    }

    /// The context is gone: from now on send objects are not kept, and
    /// those kept so far are returned (to be dropped outside the lock).
    pub(crate) fn close(&self) -> KVec<T> {
        let mut ring = self.ring.lock();
        ring.closed = true;
        core::mem::take(&mut ring.free)
    }

    /// Signals `fd` (an eventfd) for every record from now on; -1 stops.
    pub(crate) fn set_eventfd(&self, fd: i32) -> Result {
        let new = if fd == -1 {
            None
        } else if fd < 0 {
            return Err(EBADF);
        } else {
            Some(EventFd::get(fd)?)
        };
        let old = core::mem::replace(&mut self.ring.lock().eventfd, new);
        drop(old);
        Ok(())
    }

    /// Moves records into `out` until it has no room for another (or a
    /// batch is done), waiting for the first one unless `nowait`
    /// (`EAGAIN`). `write` copies one record out and says whether it could.
    /// Returns the bytes written; `EINVAL` if `room` cannot hold one
    /// record, `EFAULT` if the first cannot be written, `ERESTARTSYS` on a
    /// signal. Records not written stay queued.
    pub(crate) fn read(
        &self,
        nowait: bool,
        room: usize,
        mut write: impl FnMut(&abi::zc_completion) -> bool,
    ) -> Result<usize> {
        let size = size_of::<abi::zc_completion>();
        if room < size {
            return Err(EINVAL);
        }
        let mut batch = KVec::with_capacity(READ_BATCH.min(room / size), GFP_KERNEL)?;
        let mut ring = self.ring.lock();
        while ring.len == 0 {
            if nowait {
                return Err(EAGAIN);
            }
            ring.waiters += 1;
            let interrupted = self.ready.wait_interruptible(&mut ring);
            ring.waiters -= 1;
            if interrupted {
                return Err(ERESTARTSYS);
            }
        }
        let n = ring.len.min(batch.capacity());
        for i in 0..n {
            let rec = ring.records[(ring.head + i) % SLOTS];
            // Within the capacity allocated above: cannot fail.
            batch.push_within_capacity(rec).map_err(|_| ENOMEM)?;
        }
        ring.head = (ring.head + n) % SLOTS;
        ring.len -= n;
        ring.reading += n;
        drop(ring);

        let written = batch.iter().take_while(|r| write(r)).count();

        let mut ring = self.ring.lock();
        ring.reading -= n;
        // Put back, in order, what could not be written: their room was
        // kept in `reading`, so the ring has it.
        for rec in batch[written..].iter().rev() {
            ring.head = (ring.head + SLOTS - 1) % SLOTS;
            let head = ring.head;
            ring.records[head] = *rec;
            ring.len += 1;
        }
        drop(ring);
        if written == 0 {
            return Err(EFAULT);
        }
        Ok(written * size)
    }

    /// Unread records now (for tests and fdinfo).
    pub(crate) fn pending(&self) -> usize {
        self.ring.lock().len
    }
}

#[kunit_tests(zcopy_completion)]
mod tests {
    use super::*;

    /// A queue whose send objects are plain numbers.
    type Q = Completions<u32>;

    fn rec(tag: u64) -> abi::zc_completion {
        abi::zc_completion {
            tag,
            bytes: tag * 10,
            status: 0,
            flags: 0,
        }
    }

    /// A send that reserves and completes at once.
    fn post(c: &Q, tag: u64) -> Result {
        c.reserve()?;
        // The queue is open: the object is kept.
        assert!(c.finish(Some(rec(tag)), 0).is_none());
        Ok(())
    }

    fn drain(c: &Q, room: usize, tags: &mut KVec<u64>) -> Result<usize> {
        c.read(true, room, |r| tags.push(r.tag, GFP_KERNEL).is_ok())
    }

    #[test]
    fn records_come_out_once_in_order() -> Result {
        let c = Q::new()?;
        let size = size_of::<abi::zc_completion>();
        let mut tags = KVec::new();
        assert!(drain(&c, size, &mut tags) == Err(EAGAIN));
        assert!(drain(&c, size - 1, &mut tags) == Err(EINVAL));
        for t in 1..=3 {
            post(&c, t)?;
        }
        // Room for two: two come out, the third stays.
        assert!(drain(&c, 2 * size + 5, &mut tags) == Ok(2 * size));
        assert!(drain(&c, 8 * size, &mut tags) == Ok(size));
        assert!(drain(&c, size, &mut tags) == Err(EAGAIN));
        assert!(tags.as_slice() == [1, 2, 3]);
        Ok(())
    }

    #[test]
    fn records_that_cannot_be_written_stay_queued_in_order() -> Result {
        let c = Q::new()?;
        for t in 1..=4 {
            post(&c, t)?;
        }
        // The writer takes two, then faults: the other two stay, first.
        let mut tags = KVec::new();
        let n = c.read(true, 4 * 24, |r| {
            tags.len() < 2 && tags.push(r.tag, GFP_KERNEL).is_ok()
        })?;
        assert_eq!(n, 48);
        // A writer that faults on the first record: EFAULT, nothing lost.
        assert!(c.read(true, 4 * 24, |_| false) == Err(EFAULT));
        assert_eq!(c.pending(), 2);
        assert!(drain(&c, 4 * 24, &mut tags) == Ok(48));
        assert!(tags.as_slice() == [1, 2, 3, 4]);
        // All room is back: SLOTS reservations fit again.
        for _ in 0..SLOTS {
            c.reserve()?;
        }
        assert!(c.reserve().err() == Some(ENOBUFS));
        Ok(())
    }

    #[test]
    fn full_queue_is_enobufs_and_ended_reservations_come_back() -> Result {
        let c = Q::new()?;
        for _ in 0..SLOTS {
            c.reserve()?;
        }
        assert!(c.reserve().err() == Some(ENOBUFS));
        // A failed send gives its room back...
        c.unreserve();
        c.reserve()?;
        assert!(c.reserve().err() == Some(ENOBUFS));
        // ...a posted one keeps it until the record is read.
        assert!(c.finish(Some(rec(7)), 0).is_none());
        assert!(c.reserve().err() == Some(ENOBUFS));
        assert_eq!(c.pending(), 1);
        let mut tags = KVec::new();
        assert!(drain(&c, 64 * 24, &mut tags) == Ok(24));
        c.reserve()?;
        c.unreserve();
        // The ring wraps: post and read more than SLOTS records in total.
        for _ in 0..SLOTS - 1 {
            c.unreserve();
        }
        for t in 0..(SLOTS as u64 + 10) {
            post(&c, t)?;
            let mut one = KVec::new();
            assert!(drain(&c, 24, &mut one) == Ok(24));
            assert!(one.as_slice() == [t]);
        }
        Ok(())
    }

    #[test]
    fn objects_are_kept_for_reuse_until_the_queue_closes() -> Result {
        let c = Q::new()?;
        // Nothing kept yet: the first sends bring their own objects.
        assert!(c.reserve()?.is_none());
        assert!(c.reserve()?.is_none());
        assert!(c.finish(None, 1).is_none());
        assert!(c.finish(Some(rec(2)), 2).is_none());
        // Kept ones are handed out again, last in first out.
        assert!(c.reserve()? == Some(2));
        assert!(c.reserve()? == Some(1));
        assert!(c.finish(None, 1).is_none());
        // Closed: what was kept comes out, and nothing more is kept, but
        // records still go in.
        let kept = c.close();
        assert!(kept.as_slice() == [1]);
        assert!(c.finish(Some(rec(3)), 2) == Some(2));
        assert_eq!(c.pending(), 2);
        assert!(c.reserve()?.is_none());
        c.unreserve();
        Ok(())
    }

    #[test]
    fn bad_eventfd_is_refused() -> Result {
        let c = Q::new()?;
        assert!(c.set_eventfd(-2).err() == Some(EBADF));
        // A KUnit thread has no files: any descriptor is closed.
        assert!(c.set_eventfd(0).err() == Some(EBADF));
        assert!(c.set_eventfd(-1).is_ok());
        Ok(())
    }
}
