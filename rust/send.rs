// SPDX-License-Identifier: GPL-2.0

//! Sends from registered regions: `ZC_IOC_SEND` through a socket and
//! `ZC_IOC_XMIT` straight to a device.
//!
//! C header: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h)
//! (`struct ubuf_info`).
//!
//! Each send is one [`SendOp`] object. It embeds the `struct ubuf_info` that
//! the stack attaches to every `sk_buff` carrying its fragments: the stack
//! takes a reference on it per `sk_buff` and drops it when that `sk_buff`'s
//! fragments are released (sent and freed, or copied away), and the sender
//! holds one more for the duration of the call. Whoever drops the last
//! reference finishes the send ([`SendOp::complete`]), in this order:
//!
//! 1. its hold on the region ([`InFlight`]) is released;
//! 2. its completion record is posted (unless the send failed), and the
//!    object goes back to its context's queue for the next send.
//!
//! That is done on the spot, in whatever context the stack is in (softirq,
//! most often), except what may sleep: when the hold was the region's last
//! reference (its context was closed, or it was unregistered, while the
//! send was in flight) the region must be torn down (unmapped, unpinned),
//! and page-cache pages are put; then the rest is done in process context
//! on the module's workqueue, in the same order. So when user space reads a
//! record, the region no longer counts the send (`ZC_IOC_UNREGISTER` will
//! not say `EBUSY` because of it).
//!
//! A send allocates nothing, takes no module reference and no lock that
//! disables interrupts: send objects are kept by the context's [`Queue`]
//! for reuse (a lock-free stack), every send object refers to its queue,
//! whose completion queue holds the module ([`crate::completion`]), and
//! records are posted there without a lock.
//!
//! The fragments carry no page references of their own
//! (`SKBFL_MANAGED_FRAG_REFS`): the region's pins keep the pages alive,
//! and the region lives until the send is done.

use crate::{
    abi,
    completion::Completions,
    helpers,
    netdev::NetdevRef,
    pagecache::{
        FilePages,
        FileRef, //
    },
    region::{
        ByteRange,
        InFlight,
        LastHold, //
    },
    stats::Counters, //
};
use kernel::{
    bindings,
    error::to_result,
    impl_has_work, new_mutex, new_work,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc, Mutex,
    },
    types::Opaque,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    workqueue::{
        self,
        Work,
        WorkItem, //
    },
};

/// The end of [`Queue::returned`] once the queue is closed.
fn closed() -> *mut SendOp {
    core::ptr::NonNull::dangling().as_ptr()
}

/// A context's sends: where their records and counts go, and the send
/// objects kept for reuse.
///
/// A finished send goes back, in any context, onto `returned`, a lock-free
/// stack (a compare-and-exchange of its head); a sender takes the whole
/// stack at once into `cache` when that is empty and pops from there,
/// under `cache`'s mutex (process context only), so a send takes no lock
/// that disables interrupts or bottom halves. Objects are at most as many
/// as reservations once were at a time: `ZC_COMPLETION_SLOTS`.
///
/// # Invariants
///
/// - `returned` and `cache.head` are null-terminated lists, linked by
///   [`SendOp::next`], of send objects leaked from their boxes and used by
///   no one else; `returned` ends with the dangling [`closed`] marker
///   instead once the queue is closed, and takes nothing more then.
/// - Every send object refers to its queue, so the queue is dropped only
///   once both lists are empty: [`Queue::close`] must empty them first (the
///   context does, when it goes).
#[pin_data]
pub(crate) struct Queue {
    returned: Atomic<*mut SendOp>,
    #[pin]
    cache: Mutex<Cache>,
    completions: Arc<Completions>,
    counters: Arc<Counters>,
}

/// See [`Queue`].
struct Cache {
    head: *mut SendOp,
}

// SAFETY: The lists hold send objects, which are `Send`; the head pointers
// are only used as the `Queue` invariant says.
unsafe impl Send for Cache {}
// SAFETY: As above; `returned` is an atomic.
unsafe impl Send for Queue {}
// SAFETY: As above.
unsafe impl Sync for Queue {}

impl Queue {
    pub(crate) fn new(counters: &Arc<Counters>) -> Result<Arc<Self>> {
        let completions = Completions::new()?;
        Arc::pin_init(
            try_pin_init!(Self {
                returned: Atomic::new(core::ptr::null_mut()),
                cache <- new_mutex!(Cache {
                    head: core::ptr::null_mut(),
                }),
                completions,
                counters: counters.clone(),
            }),
            GFP_KERNEL,
        )
    }

    /// Where the records of this context's sends go.
    pub(crate) fn completions(&self) -> &Arc<Completions> {
        &self.completions
    }

    /// A send object kept for reuse, if there is one. Process context.
    fn take(&self) -> Option<Pin<KBox<SendOp>>> {
        let mut cache = self.cache.lock();
        if cache.head.is_null() {
            let all = self.returned.xchg(core::ptr::null_mut(), Acquire);
            if all == closed() {
                self.returned.store(all, Release);
                return None;
            }
            cache.head = all;
        }
        let op = cache.head;
        if op.is_null() {
            return None;
        }
        // SAFETY: `op` heads the cache, a list of leaked send objects that
        // only we use (type invariant); it leaves the list here.
        unsafe {
            cache.head = (*op).next;
            Some(Pin::new_unchecked(KBox::from_raw(op)))
        }
    }

    /// Keeps `op` for reuse, in any context; gives it back if the queue is
    /// closed, for the caller to drop in process context. Takes the queue
    /// by pointer: once `op` is published, another thread may free it and,
    /// with it, the queue.
    ///
    /// # Safety
    ///
    /// `this` is a live queue, which `op` refers to.
    unsafe fn give_back(this: *const Self, op: Pin<KBox<SendOp>>) -> Option<Pin<KBox<SendOp>>> {
        // SAFETY: Alive as long as `op` is ours (the caller's promise); no
        // reference to it outlives the exchange that publishes `op`.
        let returned = unsafe { &(*this).returned };
        // SAFETY: The object stays pinned: it is only rebuilt into a pinned
        // box again (`take`, `free_list`, or just below).
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(op) });
        let mut head = returned.load(Relaxed);
        loop {
            if head == closed() {
                // SAFETY: `raw` was leaked just above and is still ours.
                return Some(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) });
            }
            // SAFETY: `raw` is ours until the exchange below publishes it.
            unsafe { (*raw).next = head };
            // INVARIANT: linked before it is published (release).
            match returned.cmpxchg(head, raw, Release) {
                Ok(_) => return None,
                Err(now) => head = now,
            }
        }
    }

    /// The context is gone: from now on send objects are not kept, and
    /// those kept so far are freed (their number is returned). Process
    /// context.
    pub(crate) fn close(&self) -> usize {
        // INVARIANT: closed from now on.
        let returned = self.returned.xchg(closed(), Acquire);
        let cached = core::mem::take(&mut self.cache.lock().head);
        // SAFETY: Both lists are ours now (type invariant).
        unsafe { free_list(returned) + free_list(cached) }
    }
}

/// Frees a list of leaked send objects; returns how many.
///
/// # Safety
///
/// `head` is null, the [`closed`] marker, or a list as in [`Queue`]'s
/// invariant that no one else uses.
unsafe fn free_list(mut head: *mut SendOp) -> usize {
    let mut n = 0;
    while !head.is_null() && head != closed() {
        // SAFETY: A leaked, pinned send object of the list, ours alone.
        let op = unsafe { Pin::new_unchecked(KBox::from_raw(head)) };
        head = op.next;
        drop(op);
        n += 1;
    }
    n
}

/// The module's workqueue, where sends that must sleep are finished.
///
/// # Invariants
///
/// While a `SendQueue` exists, `helpers::zc_wq()` is a live workqueue.
pub(crate) struct SendQueue(());

impl SendQueue {
    /// Creates the workqueue.
    ///
    /// # Safety
    ///
    /// At most one `SendQueue` exists at a time.
    pub(crate) unsafe fn create() -> Result<Self> {
        // SAFETY: Module init, process context.
        to_result(unsafe { helpers::zc_wq_create() })?;
        // INVARIANT: created just above.
        Ok(Self(()))
    }
}

impl Drop for SendQueue {
    fn drop(&mut self) {
        // Drains it: every send's teardown has finished when this returns.
        // SAFETY: Created in `create`; nothing is queued after module exit
        // begins, since every send object holds a queue, which holds a
        // module reference.
        unsafe { helpers::zc_wq_destroy() };
    }
}

/// What a send keeps alive until the stack is done with its fragments.
pub(crate) enum Hold {
    /// A registered region (pinned pages), counted busy.
    Region(InFlight),
    /// Page-cache pages, one folio reference each.
    File(#[allow(dead_code, reason = "held for its Drop")] FilePages),
}

/// One send, from the ioctl to its completion record; then kept by its
/// queue for the next send of the same context.
///
/// # Invariants
///
/// - While the stack may use it, `ubuf` was initialised by `zc_ubuf_init`
///   and the `SendOp` is leaked from its box; the box is taken back only
///   after the last reference on `ubuf` is gone.
/// - A `SendOp` the stack uses holds a reservation in `queue`, ended by
///   [`SendOp::complete`]; `finished` says it was ended.
#[pin_data]
pub(crate) struct SendOp {
    #[pin]
    ubuf: Opaque<bindings::ubuf_info>,
    #[pin]
    work: Work<SendOp>,
    tag: u64,
    /// Bytes the stack accepted; 0 means the send failed (no record).
    accepted: Atomic<u64>,
    /// Some `sk_buff` carrying the fragments was released without copying.
    used: Atomic<u32>,
    /// The stack copied the fragments somewhere on the way.
    copied: Atomic<u32>,
    hold: Option<Hold>,
    /// The region, when the hold was its last reference, to be torn down
    /// in process context.
    last: Option<LastHold>,
    /// The reservation is ended; the object is only to be dropped.
    finished: bool,
    /// The next object in a list of [`Queue`] while kept there.
    next: *mut SendOp,
    queue: Arc<Queue>,
}

impl_has_work! {
    impl HasWork<Self> for SendOp { self.work }
}

// SAFETY: The `ubuf_info` is shared with the stack, which may drop its
// references from any CPU; every other field is `Send`.
unsafe impl core::marker::Send for SendOp {}
// SAFETY: Shared access only reads plain fields and atomics, and the
// `ubuf_info` is only touched through the C helpers and the stack.
unsafe impl Sync for SendOp {}

impl WorkItem for SendOp {
    type Pointer = Pin<KBox<SendOp>>;

    fn run(this: Pin<KBox<SendOp>>) {
        SendOp::complete(this, false);
    }
}

/// Room for one record in a context's queue: the start of every send.
/// Dropped unused, it gives the room back.
pub(crate) struct Reservation<'a> {
    queue: &'a Arc<Queue>,
    started: bool,
}

impl<'a> Reservation<'a> {
    /// `ENOBUFS` when the queue is full of records and sends in flight.
    pub(crate) fn new(queue: &'a Arc<Queue>) -> Result<Self> {
        queue.completions.reserve()?;
        Ok(Self {
            queue,
            started: false,
        })
    }

    /// Readies the send object for the stack: tagged `tag`, keeping `hold`
    /// until its completion. Returns its `ubuf_info`, with the one
    /// reference the caller now holds (see [`SendOp::release`]).
    fn start(mut self, tag: u64, hold: Hold) -> Result<*mut bindings::ubuf_info> {
        let mut op = match self.queue.take() {
            Some(op) => op,
            None => KBox::pin_init(
                try_pin_init!(SendOp {
                    ubuf: Opaque::uninit(),
                    work <- new_work!("zcopy::SendOp::work"),
                    tag: 0,
                    accepted: Atomic::new(0),
                    used: Atomic::new(0),
                    copied: Atomic::new(0),
                    hold: None,
                    last: None,
                    finished: false,
                    next: core::ptr::null_mut(),
                    queue: self.queue.clone(),
                }),
                GFP_KERNEL,
            )?,
        };
        let p = op.as_mut().project();
        *p.tag = tag;
        p.accepted.store(0, Relaxed);
        p.used.store(0, Relaxed);
        p.copied.store(0, Relaxed);
        *p.hold = Some(hold);
        // INVARIANT: the reservation now belongs to the send object.
        *p.finished = false;
        self.started = true;
        // SAFETY: The `SendOp` is pinned and not moved out of the box: it is
        // rebuilt from this pointer by `from_last_ref`.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(op) });
        // SAFETY: `raw` is valid; `ubuf` is initialised before any use.
        let ubuf = unsafe { Opaque::cast_into(&raw const (*raw).ubuf) };
        // SAFETY: `ubuf` is embedded in a live, pinned `SendOp` that no one
        // else uses.
        unsafe { helpers::zc_ubuf_init(ubuf) };
        Ok(ubuf)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.started {
            self.queue.completions.unreserve();
        }
    }
}

impl SendOp {
    /// The `SendOp` that embeds `ubuf`.
    ///
    /// # Safety
    ///
    /// `ubuf` was returned by [`Reservation::start`] and its `SendOp` is
    /// still alive.
    unsafe fn from_ubuf<'a>(ubuf: *mut bindings::ubuf_info) -> &'a SendOp {
        // SAFETY: `Opaque<T>` is `repr(transparent)`; the caller promises
        // `ubuf` is the `ubuf` field of a live `SendOp`.
        unsafe { &*kernel::container_of!(Opaque::cast_from(ubuf), SendOp, ubuf) }
    }

    /// Takes back the box [`Reservation::start`] leaked.
    ///
    /// # Safety
    ///
    /// The last reference on `ubuf`, returned by [`Reservation::start`], is
    /// gone: nothing else refers to its `SendOp` any more.
    unsafe fn from_last_ref(ubuf: *mut bindings::ubuf_info) -> Pin<KBox<SendOp>> {
        // SAFETY: The caller promises the `SendOp` is ours alone; it was
        // pinned, and stays so.
        unsafe {
            let raw = kernel::container_of!(Opaque::cast_from(ubuf), SendOp, ubuf).cast_mut();
            Pin::new_unchecked(KBox::from_raw(raw))
        }
    }

    /// Records how many bytes the stack accepted and drops the sender's
    /// reference. If that was the last (the stack is done already: the
    /// send failed, or every sk_buff was freed before the call returned),
    /// the send is finished here; otherwise by whoever drops the last one.
    ///
    /// # Safety
    ///
    /// `ubuf` was returned by [`Reservation::start`] and the caller still
    /// holds the reference it came with. Process context.
    unsafe fn release(ubuf: *mut bindings::ubuf_info, accepted: u64) {
        // SAFETY: Our reference keeps the `SendOp` alive until the put.
        let send = unsafe { SendOp::from_ubuf(ubuf) };
        if accepted > 0 {
            send.queue.counters.count_send();
        }
        send.accepted.store(accepted, Relaxed);
        // SAFETY: Drops the caller's reference; its release ordering
        // publishes `accepted` to whoever drops the last one.
        if unsafe { helpers::zc_ubuf_put(ubuf) } {
            // SAFETY: That was the last reference.
            let send = unsafe { SendOp::from_last_ref(ubuf) };
            SendOp::complete(send, false);
        }
    }

    /// Finishes a send whose last reference is gone: lets go of its pages,
    /// then posts its record and hands the object back to its queue. If
    /// `atomic` (the caller may not sleep) and letting go would sleep,
    /// the rest goes to the workqueue.
    fn complete(mut this: Pin<KBox<SendOp>>, atomic: bool) {
        let p = this.as_mut().project();
        if *p.finished {
            // Its queue was closed: all that is left is to free it, here
            // in process context (only the workqueue gets here).
            return;
        }
        // 1. Let go of the pages first.
        match p.hold.take() {
            Some(Hold::Region(h)) => *p.last = h.release(),
            Some(Hold::File(pages)) if atomic => *p.hold = Some(Hold::File(pages)),
            Some(Hold::File(pages)) => drop(pages),
            None => {}
        }
        if p.hold.is_some() || p.last.is_some() {
            if atomic {
                return Self::defer(this);
            }
            // This may tear a region down.
            drop(p.last.take());
        }
        // 2. Then tell user space. As io_uring's notifications: copied if
        // any release said so, or if no `sk_buff` ever carried the
        // fragments (the stack copied into its own buffers before building
        // any).
        let bytes = p.accepted.load(Relaxed);
        let copied = p.copied.load(Relaxed) != 0 || p.used.load(Relaxed) == 0;
        let queue: &Queue = p.queue;
        if bytes > 0 {
            queue.counters.count_completion(bytes, copied);
            queue.completions.post(abi::zc_completion {
                tag: *p.tag,
                bytes,
                status: 0,
                flags: if copied { abi::ZC_COMPLETION_COPIED } else { 0 },
            });
        } else {
            queue.completions.unreserve();
        }
        // INVARIANT: the reservation ended just above.
        *p.finished = true;
        // 3. Keep the object for the next send.
        let queue: *const Queue = queue;
        // SAFETY: `this` refers to the queue, which is alive until
        // `give_back` publishes `this`, and then touches it no more.
        if let Some(this) = unsafe { Queue::give_back(queue, this) } {
            // The context is closed: the object is freed, which drops its
            // reference on the queue (and perhaps the module's).
            if atomic {
                Self::defer(this);
            }
        }
    }

    /// Finishes `this` on the module's workqueue.
    fn defer(this: Pin<KBox<SendOp>>) {
        // SAFETY: A `SendQueue` exists while any send object does: each
        // holds a queue, which holds a module reference, and the workqueue
        // is destroyed only at module exit.
        let wq = unsafe { workqueue::Queue::from_raw(helpers::zc_wq()) };
        wq.enqueue(this);
    }
}

/// The stack dropped a reference on a send's `ubuf_info`.
///
/// # Safety
///
/// Called by `zc_ubuf_complete` only, for a `ubuf` of a live [`SendOp`].
#[no_mangle]
unsafe extern "C" fn zcopy_ubuf_event(ubuf: *mut bindings::ubuf_info, skb: bool, success: bool) {
    // SAFETY: The reference being dropped keeps the `SendOp` alive.
    let send = unsafe { SendOp::from_ubuf(ubuf) };
    if !success {
        send.copied.store(1, Relaxed);
    } else if skb {
        send.used.store(1, Relaxed);
    }
}

/// The last reference on a send's `ubuf_info` is gone; any context.
///
/// # Safety
///
/// Called by `zc_ubuf_complete` only, once per `ubuf`, after the last
/// reference was dropped.
#[no_mangle]
unsafe extern "C" fn zcopy_ubuf_done(ubuf: *mut bindings::ubuf_info) {
    // SAFETY: The last reference is gone, as the caller promises.
    let send = unsafe { SendOp::from_last_ref(ubuf) };
    SendOp::complete(send, true);
}

/// The flags of `ZC_IOC_SEND` that mean something.
const SEND_FLAGS: u32 = abi::ZC_SEND_NONBLOCK | abi::ZC_SEND_MORE;

/// A socket, held for the duration of one call through its file
/// descriptor (`fdget`: no reference unless the file table is shared).
///
/// # Invariants
///
/// `word` is a `struct fd` from `zc_sock_fdget`, put exactly once, in
/// `Drop`; `sock` is its TCP or UDP socket.
struct Socket {
    word: c_ulong,
    sock: *mut bindings::socket,
}

impl Socket {
    /// The TCP or UDP socket open as `fd`: `EBADF`, `ENOTSOCK` for other
    /// files, `EOPNOTSUPP` for other sockets.
    fn get(fd: i32) -> Result<Self> {
        if fd < 0 {
            return Err(EBADF);
        }
        let mut sock = core::ptr::null_mut();
        // SAFETY: Process context; `sock` is a valid out-pointer.
        let word = unsafe { helpers::zc_sock_fdget(fd, &mut sock) };
        // CAST: errors are small negative values, as `IS_ERR_VALUE` tests.
        let signed = word as c_long;
        if (-(bindings::MAX_ERRNO as c_long)..0).contains(&signed) {
            // CAST: just checked to be a negative errno.
            return Err(Error::from_errno(signed as i32));
        }
        // INVARIANT: a `struct fd` holding a TCP or UDP socket.
        Ok(Self { word, sock })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: Put once, as the invariant says.
        unsafe { helpers::zc_fdput(self.word) };
    }
}

/// `ZC_IOC_SEND`: validates `a`, sends, and returns the bytes accepted.
/// Most bytes one send passes to the stack: every kernel send path clamps
/// to `MAX_RW_COUNT` (`INT_MAX` rounded down to a page), and TCP counts a
/// send in an `int`.
pub(crate) const MAX_RW_COUNT: u64 = i32::MAX as u64 & !(PAGE_SIZE as u64 - 1);

/// The bytes of a send of `len` that go to the stack: a longer one is sent
/// short, which the ABI allows (`sent`).
pub(crate) fn send_len(len: u64) -> u64 {
    len.min(MAX_RW_COUNT)
}

pub(crate) fn send(
    a: &abi::zc_send,
    hold: impl FnOnce(u32) -> Result<InFlight>,
    queue: &Arc<Queue>,
) -> Result<u64> {
    if a.flags & !SEND_FLAGS != 0 || a.reserved != 0 || a.sent != 0 {
        return Err(EINVAL);
    }
    let sock = Socket::get(a.fd)?;
    let inflight = hold(a.region)?;
    let region = inflight.region();
    // The whole range must lie in the region; past `MAX_RW_COUNT` only
    // its start is sent (rare: looked up again only then).
    let mut range = region.range(a.offset, a.len)?;
    let len = send_len(a.len);
    if len < a.len {
        range = region.range(a.offset, len)?;
    }
    send_through(
        sock,
        range,
        Hold::Region(inflight),
        Reservation::new(queue)?,
        a.tag,
        a.flags,
    )
}

/// Sends `range` through `sock` as one send that keeps `hold` (the pages
/// under `range`) until its completion; returns the bytes accepted.
fn send_through(
    sock: Socket,
    range: ByteRange,
    hold: Hold,
    res: Reservation<'_>,
    tag: u64,
    flags: u32,
) -> Result<u64> {
    let ubuf = res.start(tag, hold)?;
    // SAFETY: The socket is held; `ubuf` is ours; the pages of `range` are
    // kept by the send's hold, and their bio_vecs live as long.
    let ret = unsafe {
        helpers::zc_sock_send(
            sock.sock,
            ubuf,
            range.bvecs,
            range.nr,
            range.skip,
            range.len,
            flags & abi::ZC_SEND_NONBLOCK != 0,
            flags & abi::ZC_SEND_MORE != 0,
        )
    };
    // CAST: a non-negative `int` fits in `u64`.
    let accepted = if ret > 0 { ret as u64 } else { 0 };
    // SAFETY: `ubuf` came from `Reservation::start` and we still hold its
    // reference; process context.
    unsafe { SendOp::release(ubuf, accepted) };
    drop(sock);
    to_result(ret.min(0))?;
    Ok(accepted)
}

/// What `ZC_IOC_SENDFILE` reports.
pub(crate) struct SendfileResult {
    pub(crate) sent: u64,
    pub(crate) cached: u32,
    pub(crate) read: u32,
}

/// `ZC_IOC_SENDFILE`: validates `a`, gathers the page-cache pages of the
/// range and sends them.
pub(crate) fn sendfile(a: &abi::zc_sendfile, queue: &Arc<Queue>) -> Result<SendfileResult> {
    if a.flags & !SEND_FLAGS != 0
        || a.reserved != 0
        || a.sent != 0
        || a.pages_cached != 0
        || a.pages_read != 0
    {
        return Err(EINVAL);
    }
    // CAST: `i64::MAX` is positive.
    let max = i64::MAX as u64;
    // `rw_verify_area`'s range rule, checked before the descriptors are
    // looked up: an offset, count or end that is negative as a `loff_t` is
    // `EINVAL`. (The sum cannot wrap: both terms are at most `max`.)
    if a.len == 0 || a.len > max || a.offset > max || a.offset + a.len > max {
        return Err(EINVAL);
    }
    let end = a.offset + a.len;
    let sock = Socket::get(a.sock)?;
    let file = FileRef::get(a.fd)?;
    // As `sendfile(2)`, before anything is read: the LSM and fanotify may
    // refuse, or (pre-content events) fill the range first.
    file.verify_read(a.offset, a.len)?;
    let end = end
        .min(file.size())
        .min(a.offset + u64::from(abi::ZC_SENDFILE_MAX));
    if a.offset >= end {
        // At or past the end of the file: nothing to send, like sendfile.
        return Ok(SendfileResult {
            sent: 0,
            cached: 0,
            read: 0,
        });
    }
    let res = Reservation::new(queue)?;
    // Which pages were cached is told only to who may see it, as
    // `ZC_IOC_FILE_PAGES`. (That a miss takes longer, as for `read(2)`,
    // cannot be hidden; and it is one-shot: the send reads the page in.)
    let residency = file.may_see_residency();
    let got = FilePages::gather(&file, a.offset, end, &queue.counters, residency)?;
    // CAST: both are below `ZC_SENDFILE_MAX` + a page, far below `usize::MAX`.
    let range = ByteRange {
        bvecs: got.pages.bvecs().as_ptr(),
        nr: got.pages.bvecs().len(),
        skip: (a.offset % PAGE_SIZE as u64) as usize,
        len: (end - a.offset) as usize,
    };
    let sent = send_through(sock, range, Hold::File(got.pages), res, a.tag, a.flags)?;
    if sent > 0 {
        // As `sendfile(2)` after a transfer: inotify's `IN_ACCESS`.
        file.accessed();
    }
    Ok(SendfileResult {
        sent,
        cached: got.hits,
        read: got.misses,
    })
}

/// `ZC_IOC_XMIT`: validates `a`, builds the frame and hands it to the
/// device.
pub(crate) fn xmit(
    a: &abi::zc_xmit,
    hold: impl FnOnce(u32) -> Result<InFlight>,
    queue: &Arc<Queue>,
) -> Result {
    if a.flags != 0 {
        return Err(EINVAL);
    }
    // SAFETY: `capable` may be called from any process context.
    if !unsafe { bindings::capable(bindings::CAP_NET_RAW as i32) } {
        return Err(EPERM);
    }
    if a.hdr_len == 0 || a.hdr_len > abi::ZC_XMIT_MAX_HDR {
        return Err(EINVAL);
    }
    // CAST: `hdr_len <= ZC_XMIT_MAX_HDR`; user addresses fit in `usize`.
    let mut hdr = KVec::new();
    UserSlice::new(UserPtr::from_addr(a.hdr as usize), a.hdr_len as usize)
        .read_all(&mut hdr, GFP_KERNEL)?;
    let dev = NetdevRef::get(a.ifindex)?;
    let inflight = hold(a.region)?;
    let range = inflight.region().range(a.offset, a.len)?;
    let ubuf = Reservation::new(queue)?.start(a.tag, Hold::Region(inflight))?;
    // SAFETY: The device is held, `ubuf` is ours, and the pages and their
    // bio_vecs live as long as the send (see `send`).
    let skb = unsafe {
        helpers::zc_xmit_build(
            dev.as_ptr(),
            ubuf,
            hdr.as_ptr().cast(),
            a.hdr_len,
            range.bvecs,
            range.nr,
            range.skip,
            range.len,
        )
    };
    let ret = match kernel::error::from_err_ptr(skb) {
        // SAFETY: A built skb is ours to transmit; the call consumes it.
        Ok(skb) => to_result(unsafe { helpers::zc_xmit(skb) }),
        Err(e) => Err(e),
    };
    let accepted = if ret.is_ok() { a.len } else { 0 };
    // SAFETY: `ubuf` came from `Reservation::start` and we still hold its
    // reference; process context.
    unsafe { SendOp::release(ubuf, accepted) };
    ret
}

#[kunit_tests(zcopy_send)]
mod tests {
    use super::*;
    use crate::{
        region::{
            Region,
            RegisterArgs, //
        },
        testing::UserMem,
    };
    use kernel::page::PAGE_SIZE;

    #[test]
    fn ubuf_info_and_bio_vec_layouts_match_c() {
        // SAFETY: Pure functions.
        let (u, b) = unsafe { (helpers::zc_c_ubuf_info_size(), helpers::zc_c_bio_vec_size()) };
        assert_eq!(size_of::<bindings::ubuf_info>(), u as usize);
        assert_eq!(size_of::<bindings::bio_vec>(), b as usize);
    }

    #[test]
    fn sends_are_clamped_to_max_rw_count() {
        // What fs/read_write.c and net/socket.c clamp to: INT_MAX & PAGE_MASK.
        assert_eq!(MAX_RW_COUNT, 0x7fff_f000);
        assert_eq!(send_len(1), 1);
        assert_eq!(send_len(MAX_RW_COUNT), MAX_RW_COUNT);
        assert_eq!(send_len(MAX_RW_COUNT + 1), MAX_RW_COUNT);
        // Past `INT_MAX` TCP's `int` count turned negative, past 4 GiB
        // the count wrapped.
        assert_eq!(send_len(1 << 31), MAX_RW_COUNT);
        assert_eq!(send_len((1 << 32) + 5), MAX_RW_COUNT);
        assert_eq!(send_len(u64::MAX), MAX_RW_COUNT);
    }

    /// Builds (not sends) a frame over loopback from `mem`'s region and
    /// checks where its bytes are; then frees it and waits for the record.
    #[test]
    fn frame_holds_headers_linear_and_region_pages_as_fragments() -> Result {
        let mem = UserMem::new(4 * PAGE_SIZE)?;
        mem.touch()?;
        let counters = Arc::new(Counters::new(), GFP_KERNEL)?;
        let args = RegisterArgs {
            addr: (mem.addr() + 8) as u64,
            len: (3 * PAGE_SIZE) as u64,
            read_only: false,
            ifindex: 0,
            engine: false,
        };
        let region = Region::register(&args, &counters, u64::MAX)?;
        let sink = Queue::new(&counters)?;
        // Loopback (ifindex 1) does scatter-gather and has a 14-byte header.
        let dev = NetdevRef::get(1)?;
        let hdr = [0xabu8; 42];
        // Payload: from region offset 92 (page offset 100), two pages long.
        let (off, len) = (92u64, 2 * PAGE_SIZE);
        let range = region.range(off, len as u64)?;
        let inflight = InFlight::new(region.clone());
        assert!(region.busy());
        let ubuf = Reservation::new(&sink)?.start(0x5eed, Hold::Region(inflight))?;
        // SAFETY: As in `xmit`.
        let skb = unsafe {
            helpers::zc_xmit_build(
                dev.as_ptr(),
                ubuf,
                hdr.as_ptr().cast(),
                42,
                range.bvecs,
                range.nr,
                range.skip,
                range.len,
            )
        };
        let skb = kernel::error::from_err_ptr(skb)?;
        // SAFETY: `skb` is a live skb we own until `zc_skb_free`.
        unsafe {
            assert_eq!(helpers::zc_skb_headlen(skb), 42);
            assert!(
                helpers::zc_skb_headroom(skb) >= helpers::zc_netdev_needed_headroom(dev.as_ptr())
            );
            assert_eq!(helpers::zc_skb_nr_frags(skb), 3);
            let pages = region.pins_for_test();
            let want = [(0, 100, PAGE_SIZE - 100), (1, 0, PAGE_SIZE), (2, 0, 100)];
            for (i, &(page, off, size)) in want.iter().enumerate() {
                let i = i as u32;
                assert!(helpers::zc_skb_frag_page(skb, i) == pages[page]);
                assert_eq!(helpers::zc_skb_frag_off(skb, i) as usize, off);
                assert_eq!(helpers::zc_skb_frag_size(skb, i) as usize, size);
            }
            helpers::zc_skb_free(skb);
        }
        // SAFETY: `ubuf` is from `Reservation::start`; we hold its first
        // reference.
        unsafe { SendOp::release(ubuf, len as u64) };
        let mut got = KVec::new();
        let n = sink
            .completions()
            .read(false, 24, |r| got.push(*r, GFP_KERNEL).is_ok())?;
        assert_eq!(n, 24);
        assert_eq!(got[0].tag, 0x5eed);
        assert_eq!(got[0].bytes, len as u64);
        // Freed without a copy: sent by reference.
        assert_eq!(got[0].flags, 0);
        assert!(!region.busy());
        let c = counters.to_abi();
        assert_eq!(
            (c.sends, c.completions, c.bytes_zerocopy),
            (1, 1, len as u64)
        );
        // The send object was kept for reuse: the closed queue gives it up.
        assert_eq!(sink.close(), 1);
        Ok(())
    }

    #[test]
    fn frames_the_device_cannot_take_are_refused() -> Result {
        let mem = UserMem::new(20 * PAGE_SIZE)?;
        mem.touch()?;
        let counters = Arc::new(Counters::new(), GFP_KERNEL)?;
        let args = RegisterArgs {
            addr: mem.addr() as u64,
            len: (20 * PAGE_SIZE) as u64,
            read_only: false,
            ifindex: 0,
            engine: false,
        };
        let region = Region::register(&args, &counters, u64::MAX)?;
        let sink = Queue::new(&counters)?;
        let dev = NetdevRef::get(1)?;
        let hdr = [0u8; abi::ZC_XMIT_MAX_HDR as usize + 1];
        // (header length, offset, length, errno). Loopback's MTU is 64 KiB,
        // so the fragment limit alone is tested in the integration suite
        // (on a dummy device with a larger MTU).
        let cases = [
            (13u32, 0u64, 100usize, EINVAL),
            (abi::ZC_XMIT_MAX_HDR + 1, 0, 100, EINVAL),
            (14, 0, 16 * PAGE_SIZE + 1, EMSGSIZE),
        ];
        let mut ubufs = KVec::new();
        for &(hlen, off, len, errno) in cases.iter() {
            let range = region.range(off, len as u64)?;
            let hold = Hold::Region(InFlight::new(region.clone()));
            let ubuf = Reservation::new(&sink)?.start(1, hold)?;
            // Each send finished before the next started: one object
            // serves them all.
            let first = *ubufs.first().unwrap_or(&ubuf);
            assert!(ubuf == first);
            ubufs.push(ubuf, GFP_KERNEL)?;
            // SAFETY: As in `xmit`.
            let skb = unsafe {
                helpers::zc_xmit_build(
                    dev.as_ptr(),
                    ubuf,
                    hdr.as_ptr().cast(),
                    hlen,
                    range.bvecs,
                    range.nr,
                    range.skip,
                    range.len,
                )
            };
            assert!(kernel::error::from_err_ptr(skb).err() == Some(errno));
            // SAFETY: As above.
            unsafe { SendOp::release(ubuf, 0) };
        }
        // Failed sends post nothing and give everything back, at once: the
        // sender's reference was the last.
        assert_eq!(sink.completions().pending(), 0);
        assert!(!region.busy());
        assert_eq!(counters.to_abi().sends, 0);
        assert_eq!(ubufs.len(), cases.len());
        // Every reservation ended: the whole queue is free again, and the
        // one object is given up when the queue closes.
        let mut held = KVec::new();
        for _ in 0..abi::ZC_COMPLETION_SLOTS {
            held.push(Reservation::new(&sink)?, GFP_KERNEL)?;
        }
        assert!(Reservation::new(&sink).err() == Some(ENOBUFS));
        drop(held);
        assert_eq!(sink.close(), 1);
        Ok(())
    }
}
