// SPDX-License-Identifier: GPL-2.0

//! Completion records: one per send, read with `read(2)` on the zcopy fd.
//!
//! Each context has one [`Completions`] queue, shared (`Arc`) with the
//! sends it started, so records of sends still in flight when the file is
//! closed have somewhere to go (and are dropped with the queue).
//!
//! The queue is bounded without ever dropping a record: a send first
//! reserves a [`Slot`], and `ZC_IOC_SEND` fails with `ENOBUFS` when
//! reserved slots plus unread records reach `ZC_COMPLETION_SLOTS`. A slot
//! turns into exactly one record, or is given back if the send fails, so
//! every accepted send yields one record and the ring never overflows.
//!
//! A reader takes records out under the lock and copies them to user space
//! without it (a fault there may sleep for long); records it could not
//! copy go back to the head of the ring. While out, they keep their room
//! (`reading`), so putting them back always fits, and no other reader can
//! see them twice.

use crate::abi;
use kernel::{
    bindings,
    error::from_err_ptr,
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        Arc,
        CondVar,
        Mutex, //
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

/// Most records one `read` takes out at a time.
const READ_BATCH: usize = 64;

/// The ring of unread records and the count of reserved slots.
struct Ring {
    records: KVec<abi::zc_completion>,
    head: usize,
    len: usize,
    /// Slots of sends that have not completed yet.
    reserved: usize,
    /// Records taken out by readers and not yet copied to user space.
    reading: usize,
    /// Readers asleep waiting for a record (wake-ups cost only then).
    waiters: usize,
    eventfd: Option<EventFd>,
}

impl Ring {
    fn used(&self) -> usize {
        self.len + self.reserved + self.reading
    }
}

/// A context's completion queue.
///
/// # Invariants
///
/// `ring.records.len() == SLOTS`, `ring.used() <= SLOTS`.
#[pin_data]
pub(crate) struct Completions {
    #[pin]
    ring: Mutex<Ring>,
    #[pin]
    ready: CondVar,
}

impl Completions {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let records = KVec::from_elem(abi::zc_completion::default(), SLOTS, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                ring <- new_mutex!(Ring {
                    records,
                    head: 0,
                    len: 0,
                    reserved: 0,
                    reading: 0,
                    waiters: 0,
                    eventfd: None,
                }),
                ready <- new_condvar!(),
            }),
            GFP_KERNEL,
        )
    }

    /// Reserves room for one record: `ENOBUFS` when the queue is full of
    /// records and outstanding sends.
    pub(crate) fn reserve(self: &Arc<Self>) -> Result<Slot> {
        let mut ring = self.ring.lock();
        if ring.used() >= SLOTS {
            return Err(ENOBUFS);
        }
        ring.reserved += 1;
        Ok(Slot {
            sink: self.clone(),
            posted: false,
        })
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

/// Room for one record in a [`Completions`] queue, held by a send.
///
/// # Invariants
///
/// Unless `posted`, this slot is counted in `sink`'s `reserved`.
pub(crate) struct Slot {
    sink: Arc<Completions>,
    posted: bool,
}

impl Slot {
    /// Turns the slot into `rec`, wakes readers and signals the eventfd.
    pub(crate) fn post(mut self, rec: abi::zc_completion) {
        let mut ring = self.sink.ring.lock();
        // The slot was counted in `used()`, so the ring has room.
        let tail = (ring.head + ring.len) % SLOTS;
        ring.records[tail] = rec;
        ring.len += 1;
        ring.reserved -= 1;
        if let Some(e) = &ring.eventfd {
            e.signal();
        }
        let wake = ring.waiters > 0;
        drop(ring);
        // INVARIANT: `reserved` no longer counts this slot.
        self.posted = true;
        if wake {
            self.sink.ready.notify_all();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.posted {
            self.sink.ring.lock().reserved -= 1;
        }
    }
}

#[kunit_tests(zcopy_completion)]
mod tests {
    use super::*;

    fn rec(tag: u64) -> abi::zc_completion {
        abi::zc_completion {
            tag,
            bytes: tag * 10,
            status: 0,
            flags: 0,
        }
    }

    fn drain(c: &Completions, room: usize, tags: &mut KVec<u64>) -> Result<usize> {
        c.read(true, room, |r| tags.push(r.tag, GFP_KERNEL).is_ok())
    }

    #[test]
    fn records_come_out_once_in_order() -> Result {
        let c = Completions::new()?;
        let size = size_of::<abi::zc_completion>();
        let mut tags = KVec::new();
        assert!(drain(&c, size, &mut tags) == Err(EAGAIN));
        assert!(drain(&c, size - 1, &mut tags) == Err(EINVAL));
        for t in 1..=3 {
            c.reserve()?.post(rec(t));
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
        let c = Completions::new()?;
        for t in 1..=4 {
            c.reserve()?.post(rec(t));
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
        let mut slots = KVec::new();
        for _ in 0..SLOTS {
            slots.push(c.reserve()?, GFP_KERNEL)?;
        }
        assert!(c.reserve().err() == Some(ENOBUFS));
        Ok(())
    }

    #[test]
    fn full_queue_is_enobufs_and_dropped_slots_come_back() -> Result {
        let c = Completions::new()?;
        let mut slots = KVec::new();
        for _ in 0..SLOTS {
            slots.push(c.reserve()?, GFP_KERNEL)?;
        }
        assert!(c.reserve().err() == Some(ENOBUFS));
        // A failed send gives its slot back...
        drop(slots.pop());
        let s = c.reserve()?;
        assert!(c.reserve().err() == Some(ENOBUFS));
        // ...a posted one keeps it until the record is read.
        s.post(rec(7));
        assert!(c.reserve().err() == Some(ENOBUFS));
        assert_eq!(c.pending(), 1);
        let mut tags = KVec::new();
        assert!(drain(&c, 64 * 24, &mut tags) == Ok(24));
        drop(c.reserve()?);
        // The ring wraps: post and read more than SLOTS records in total.
        drop(slots);
        for t in 0..(SLOTS as u64 + 10) {
            c.reserve()?.post(rec(t));
            let mut one = KVec::new();
            assert!(drain(&c, 24, &mut one) == Ok(24));
            assert!(one.as_slice() == [t]);
        }
        Ok(())
    }

    #[test]
    fn bad_eventfd_is_refused() -> Result {
        let c = Completions::new()?;
        assert!(c.set_eventfd(-2).err() == Some(EBADF));
        // A KUnit thread has no files: any descriptor is closed.
        assert!(c.set_eventfd(0).err() == Some(EBADF));
        assert!(c.set_eventfd(-1).is_ok());
        Ok(())
    }
}
