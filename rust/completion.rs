// SPDX-License-Identifier: GPL-2.0

//! Completion records: one per send, read with `read(2)` on the zcopy fd.
//!
//! Each context has one [`Completions`] queue, shared with the sends it
//! started (through their send objects), so records of sends still in
//! flight when the file is closed have somewhere to go (and are dropped
//! with the queue).
//!
//! The queue is bounded without ever dropping a record: a send first
//! reserves room ([`Completions::reserve`]), and `ZC_IOC_SEND` fails with
//! `ENOBUFS` when reservations plus unread records reach
//! `ZC_COMPLETION_SLOTS` (`used`). A reservation ends in exactly one
//! [`Completions::post`] or [`Completions::unreserve`], so every accepted
//! send yields one record and the ring never overflows.
//!
//! Records are posted where the stack lets go of a send, which may be
//! softirq context, and posting takes no lock: the poster claims the next
//! position of the ring (`tail`), writes its record into that cell and
//! publishes it by setting the cell's sequence number to the position plus
//! one. `used` bounds claimed positions not yet read to `SLOTS`, so a claim
//! never lands on a record not yet read. Readers, one at a time (`reader`),
//! take published records from `head` on, in order; a record not yet
//! published ends what a reader takes. A reader copies records to user
//! space without a lock (a fault may sleep for long) and puts those it
//! could not copy in a stash, first in line for the next read, which it
//! made room for before taking them; their room in the ring stays counted
//! in `used` until they are written.
//!
//! Readers that find nothing wait on `ready`, which posters wake only when
//! someone waits (`zc_wake_ready`, with `wait_event`'s ordering).

use crate::{
    abi,
    helpers, //
};
use kernel::{
    bindings,
    error::from_err_ptr,
    new_mutex, new_spinlock_irq,
    prelude::*,
    static_lock_class,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Full,
            Relaxed,
            Release, //
        },
        Arc,
        Mutex,
        SpinLockIrq, //
    },
    types::Opaque,
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

/// Room for one record in the ring.
///
/// # Invariants
///
/// `rec` is written only by the poster that claimed a position `pos` with
/// `pos % SLOTS` naming this cell, before it sets `seq` to `pos + 1`, and
/// read only by the reader holding `Completions::reader`, after it saw
/// `seq == pos + 1`.
struct Cell {
    seq: Atomic<usize>,
    rec: Opaque<abi::zc_completion>,
}

/// What readers keep between reads.
///
/// # Invariants
///
/// `stash` has room for `stash.len() + out` records.
struct Reader {
    /// Records taken from the ring that could not be written to user
    /// space, oldest first: served before the ring.
    stash: KVec<abi::zc_completion>,
    /// Records readers have taken out and not yet written or put back.
    out: usize,
}

/// A context's completion queue.
///
/// # Invariants
///
/// - `cells.len() == SLOTS`; `used <= SLOTS`, and `used` is at least the
///   reservations plus the records claimed and not yet written to user
///   space (in the ring or the stash).
/// - `head` only changes under `reader`.
#[pin_data]
pub(crate) struct Completions {
    used: Atomic<usize>,
    /// The next position a poster claims.
    tail: Atomic<usize>,
    /// The next position a reader takes.
    head: Atomic<usize>,
    /// Records in the readers' stash (a hint for waiting readers).
    stashed: Atomic<usize>,
    cells: KVec<Cell>,
    #[pin]
    reader: Mutex<Reader>,
    /// Readers waiting for a record.
    #[pin]
    ready: Opaque<bindings::wait_queue_head>,
    /// An eventfd is set: posters look at `eventfd` (a hint; set and
    /// cleared under its lock).
    has_eventfd: Atomic<u32>,
    #[pin]
    eventfd: SpinLockIrq<Option<EventFd>>,
    _module: ModuleRef,
}

// SAFETY: The cells are shared as the `Cell` invariant says, everything
// else is atomics, locks and a wait queue, which are thread-safe.
unsafe impl Send for Completions {}
// SAFETY: As above.
unsafe impl Sync for Completions {}

impl Completions {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let mut cells = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for pos in 0..SLOTS {
            // No position is published in a cell before the poster of
            // `pos` writes `pos + 1`; `pos` itself is never `p + 1` for a
            // `p` that maps to this cell and is not yet claimed.
            let cell = Cell {
                seq: Atomic::new(pos),
                rec: Opaque::new(abi::zc_completion::default()),
            };
            cells.push_within_capacity(cell).map_err(|_| ENOMEM)?;
        }
        let stash = KVec::with_capacity(READ_BATCH, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                used: Atomic::new(0),
                tail: Atomic::new(0),
                head: Atomic::new(0),
                stashed: Atomic::new(0),
                cells,
                reader <- new_mutex!(Reader { stash, out: 0 }),
                // SAFETY: `__init_waitqueue_head` initialises the head in
                // place; the name and the class key are static.
                ready <- Opaque::ffi_init(|slot| unsafe {
                    bindings::__init_waitqueue_head(
                        slot,
                        c"zcopy::Completions::ready".as_char_ptr(),
                        static_lock_class!().as_ptr(),
                    )
                }),
                has_eventfd: Atomic::new(0),
                eventfd <- new_spinlock_irq!(None),
                _module: ModuleRef::get(),
            }),
            GFP_KERNEL,
        )
    }

    /// Reserves room for one record: `ENOBUFS` when the queue is full of
    /// records and outstanding sends. Ends with [`Self::post`] or
    /// [`Self::unreserve`].
    pub(crate) fn reserve(&self) -> Result {
        let mut used = self.used.load(Relaxed);
        loop {
            if used >= SLOTS {
                return Err(ENOBUFS);
            }
            match self.used.cmpxchg(used, used + 1, Full) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Ends a reservation without a record (the send failed). Any context.
    pub(crate) fn unreserve(&self) {
        self.used.fetch_sub(1, Full);
    }

    /// Ends a reservation with its record, in any context: publishes it,
    /// signals the eventfd and wakes waiting readers. Takes no lock unless
    /// an eventfd is set.
    pub(crate) fn post(&self, rec: abi::zc_completion) {
        // Fully ordered, as every change of `used`: claims and the counts
        // that allow them happen in one order.
        let pos = self.tail.fetch_add(1, Full);
        let cell = &self.cells[pos % SLOTS];
        // The cell's last record (of `pos - SLOTS`) was read before this
        // claim: claimed positions not yet read plus reservations not yet
        // claimed (ours among them) never exceed `used <= SLOTS`, positions
        // are read in order, and `used` is lowered after a read.
        // SAFETY: `pos` is ours alone, and its cell free (just above).
        unsafe { *cell.rec.get() = rec };
        // INVARIANT: written before it is published.
        cell.seq.store(pos + 1, Release);
        if self.has_eventfd.load(Relaxed) != 0 {
            if let Some(e) = &*self.eventfd.lock() {
                e.signal();
            }
        }
        // SAFETY: `ready` is an initialised wait queue head.
        unsafe { helpers::zc_wake_ready(self.ready.get()) };
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
        let old = {
            let mut slot = self.eventfd.lock();
            self.has_eventfd.store(u32::from(new.is_some()), Relaxed);
            core::mem::replace(&mut *slot, new)
        };
        drop(old);
        Ok(())
    }

    /// Moves records into `out` until it has no room for another (or a
    /// batch is done), waiting for the first one unless `nowait`
    /// (`EAGAIN`). `write` copies one record out and says whether it could.
    /// Returns the bytes written; `EINVAL` if `room` cannot hold one
    /// record, `EFAULT` if the first cannot be written, `ERESTARTSYS` on a
    /// signal. Records not written stay first in line.
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
        let want = READ_BATCH.min(room / size);
        let mut batch = KVec::with_capacity(want, GFP_KERNEL)?;
        loop {
            let mut reader = self.reader.lock();
            // Room to put back, should they fault, the records this read
            // and the others out now take: nothing is lost then.
            let out = reader.out;
            reader.stash.reserve(out + want, GFP_KERNEL)?;
            // The stash first: it holds the oldest records.
            let from_stash = reader.stash.len().min(want);
            for rec in &reader.stash[..from_stash] {
                // Within the capacity allocated above: cannot fail.
                batch.push_within_capacity(*rec).map_err(|_| ENOMEM)?;
            }
            reader.stash.rotate_left(from_stash);
            let kept = reader.stash.len() - from_stash;
            reader.stash.truncate(kept);
            self.stashed.store(kept, Relaxed);
            let mut head = self.head.load(Relaxed);
            while batch.len() < want {
                let cell = &self.cells[head % SLOTS];
                if cell.seq.load(Acquire) != head + 1 {
                    break;
                }
                // SAFETY: Published (`seq == head + 1`, acquired above),
                // and the poster of `head + SLOTS` waits for `used`, which
                // counts this record until it is written (`Cell`).
                let rec = unsafe { *cell.rec.get() };
                batch.push_within_capacity(rec).map_err(|_| ENOMEM)?;
                head += 1;
            }
            // INVARIANT: moved under `reader`.
            self.head.store(head, Relaxed);
            if !batch.is_empty() {
                // INVARIANT: the stash has room for them (reserved above).
                reader.out += batch.len();
                break;
            }
            drop(reader);
            if nowait {
                return Err(EAGAIN);
            }
            // SAFETY: `ready` is an initialised wait queue head; `self`
            // outlives the wait, and the condition only reads it.
            let r = unsafe {
                helpers::zc_wait_ready(
                    self.ready.get(),
                    Some(readable),
                    core::ptr::from_ref(self).cast(),
                )
            };
            if r != 0 {
                return Err(ERESTARTSYS);
            }
        }
        // Written without a lock: a fault may sleep for long.
        let written = batch.iter().take_while(|r| write(r)).count();
        // Put back, first in line, what could not be written.
        let mut reader = self.reader.lock();
        reader.out -= batch.len();
        let rest = &batch[written..];
        for rec in rest {
            // Cannot fail: the room was reserved (`Reader`'s invariant).
            reader
                .stash
                .push_within_capacity(*rec)
                .map_err(|_| ENOMEM)?;
        }
        reader.stash.rotate_right(rest.len());
        self.stashed.store(reader.stash.len(), Relaxed);
        drop(reader);
        // Their room is free once written.
        self.used.fetch_sub(written, Full);
        if !rest.is_empty() {
            // Another reader may be waiting for these.
            // SAFETY: `ready` is an initialised wait queue head.
            unsafe { helpers::zc_wake_ready(self.ready.get()) };
        }
        if written == 0 {
            return Err(EFAULT);
        }
        Ok(written * size)
    }

    /// Unread records now (for tests and fdinfo).
    pub(crate) fn pending(&self) -> usize {
        let reader = self.reader.lock();
        let published = {
            let mut head = self.head.load(Relaxed);
            let mut n = 0;
            while n < SLOTS && self.cells[head % SLOTS].seq.load(Acquire) == head + 1 {
                head += 1;
                n += 1;
            }
            n
        };
        reader.stash.len() + published
    }
}

/// `zc_wait_ready`'s condition: whether the queue at `arg` has a record
/// for a reader, in the stash or published in the ring.
///
/// # Safety
///
/// `arg` points to a live [`Completions`].
unsafe extern "C" fn readable(arg: *const c_void) -> bool {
    // SAFETY: As the caller promises.
    let c = unsafe { &*arg.cast::<Completions>() };
    let head = c.head.load(Relaxed);
    c.stashed.load(Relaxed) != 0 || c.cells[head % SLOTS].seq.load(Acquire) == head + 1
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

    /// A send that reserves and completes at once.
    fn post(c: &Completions, tag: u64) -> Result {
        c.reserve()?;
        c.post(rec(tag));
        Ok(())
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
            post(&c, t)?;
        }
        assert_eq!(c.pending(), 3);
        // Room for two: two come out, the third stays.
        assert!(drain(&c, 2 * size + 5, &mut tags) == Ok(2 * size));
        assert!(drain(&c, 8 * size, &mut tags) == Ok(size));
        assert!(drain(&c, size, &mut tags) == Err(EAGAIN));
        assert!(tags.as_slice() == [1, 2, 3]);
        Ok(())
    }

    #[test]
    fn records_that_cannot_be_written_stay_first_in_order() -> Result {
        let c = Completions::new()?;
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
        // Newer records queue up behind the ones kept back.
        post(&c, 5)?;
        // A read with room for one takes the oldest kept back.
        assert!(drain(&c, 24, &mut tags) == Ok(24));
        assert!(drain(&c, 4 * 24, &mut tags) == Ok(48));
        assert!(tags.as_slice() == [1, 2, 3, 4, 5]);
        // All room is back: SLOTS reservations fit again.
        for _ in 0..SLOTS {
            c.reserve()?;
        }
        assert!(c.reserve() == Err(ENOBUFS));
        Ok(())
    }

    #[test]
    fn full_queue_is_enobufs_and_ended_reservations_come_back() -> Result {
        let c = Completions::new()?;
        for _ in 0..SLOTS {
            c.reserve()?;
        }
        assert!(c.reserve() == Err(ENOBUFS));
        // A failed send gives its room back...
        c.unreserve();
        c.reserve()?;
        assert!(c.reserve() == Err(ENOBUFS));
        // ...a posted one keeps it until the record is read.
        c.post(rec(7));
        assert!(c.reserve() == Err(ENOBUFS));
        assert_eq!(c.pending(), 1);
        let mut tags = KVec::new();
        assert!(drain(&c, 64 * 24, &mut tags) == Ok(24));
        c.reserve()?;
        c.unreserve();
        for _ in 0..SLOTS - 1 {
            c.unreserve();
        }
        // The ring wraps: post and read more than SLOTS records in total,
        // and a full ring of records comes out in order.
        for t in 0..(SLOTS as u64 + 10) {
            post(&c, t)?;
            let mut one = KVec::new();
            assert!(drain(&c, 24, &mut one) == Ok(24));
            assert!(one.as_slice() == [t]);
        }
        for t in 0..SLOTS as u64 {
            post(&c, t)?;
        }
        assert!(c.reserve() == Err(ENOBUFS));
        let mut all = KVec::new();
        while drain(&c, 64 * 24, &mut all).is_ok() {}
        assert_eq!(all.len(), SLOTS);
        assert!(all.iter().enumerate().all(|(i, &t)| t == i as u64));
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
