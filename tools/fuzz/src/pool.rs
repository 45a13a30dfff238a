//! Real buffers to register regions from, of every kind of memory, and the
//! memory disturbances done to them while regions pin them.
//!
//! All slots live in one arena reserved `PROT_NONE` at the start; each is
//! followed by a guard page of the arena that is never touched, so a
//! range running past a slot's end always faults. The kernel only pins
//! and reads a slot (never writes it), so the fuzzer needs no care about
//! what state a slot is in when it registers it: a slot whose pages were
//! unmapped gives `EFAULT`, that is all.
//!
//! What the disturber may do to a slot without ever clobbering memory that
//! is not the fuzzer's: replace a mapped slot in place (`MAP_FIXED` over
//! our own mapping), unmap it (a hole; remapped later only with
//! `MAP_FIXED_NOREPLACE`), shrink it with `mremap` and grow it back in
//! place (without `MREMAP_MAYMOVE`, which cannot clobber either),
//! `madvise` and `mprotect` it. A hole can really be taken by another
//! mapping of the process meanwhile (a thread's stack, an allocator
//! arena): the slot then moves to a new reservation of its own, and the
//! taken range is remembered so that nothing of it is ever unmapped.

use std::{
    io,
    os::fd::RawFd,
    sync::{Mutex, MutexGuard},
};

use crate::{
    ptrs::{map_anon, page},
    rng::Rng,
};

/// What a slot's memory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Private anonymous memory.
    Anon,
    /// Private anonymous, 2 MiB aligned, `MADV_HUGEPAGE`: one folio.
    Huge,
    /// Private anonymous, `PROT_READ`: needs `ZC_REGISTER_READONLY`.
    ReadOnly,
    /// A `MAP_SHARED` memfd: shmem.
    Shmem,
    /// A `MAP_SHARED` regular file.
    FileShared,
    /// A `MAP_PRIVATE` regular file.
    FilePrivate,
    /// `PROT_NONE`.
    NoAccess,
}

/// Where a slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Our `PROT_NONE` reservation: to be mapped with `MAP_FIXED`.
    Reserved,
    Mapped,
    /// Unmapped: a hole in the arena.
    Hole,
    /// Shrunk to this many bytes by `mremap`; the rest is a hole.
    Shrunk(usize),
    /// Its hole was taken by someone else and it could not move.
    Dead,
}

/// A slot as a caller sees it at one moment.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub base: usize,
    pub len: usize,
    pub kind: Kind,
    pub state: State,
    /// In a reservation of its own (moved out of the arena), whose guard
    /// page is its last page.
    pub own: bool,
}

impl Slot {
    /// Whether registering it needs `ZC_REGISTER_READONLY`.
    pub fn read_only(&self) -> bool {
        matches!(self.kind, Kind::ReadOnly | Kind::FilePrivate)
    }
}

/// The slots, and ranges that were ours and were taken by others.
struct Inner {
    slots: Vec<Slot>,
    taken: Vec<(usize, usize)>,
}

/// The slots and the arena they live in.
pub struct Pool {
    arena: usize,
    arena_len: usize,
    inner: Mutex<Inner>,
    /// Backs the shmem slots.
    memfd: RawFd,
    /// Backs the file slots; never truncated, so mapping it cannot fault.
    file: RawFd,
}

const HUGE: usize = 2 << 20;

/// The slots made: (kind, pages; 0 for one huge page).
const LAYOUT: &[(Kind, usize)] = &[
    (Kind::Huge, 0),
    (Kind::Huge, 0),
    (Kind::Anon, 1),
    (Kind::Anon, 1),
    (Kind::Anon, 2),
    (Kind::Anon, 3),
    (Kind::Anon, 8),
    (Kind::Anon, 16),
    (Kind::Anon, 17),
    (Kind::Anon, 64),
    (Kind::ReadOnly, 2),
    (Kind::ReadOnly, 8),
    (Kind::Shmem, 4),
    (Kind::Shmem, 16),
    (Kind::FileShared, 8),
    (Kind::FilePrivate, 8),
    (Kind::NoAccess, 4),
];

/// Bytes of the backing files the file and shmem slots need.
pub fn backing_len() -> usize {
    64 * page()
}

impl Pool {
    /// Reserves the arena and maps every slot. `memfd` and `file` must be
    /// at least [`backing_len`] long.
    pub fn new(memfd: RawFd, file: RawFd) -> io::Result<Self> {
        let pg = page();
        let mut need = HUGE; // alignment slack
        for &(_, pages) in LAYOUT {
            need += if pages == 0 {
                HUGE + HUGE
            } else {
                pages * pg + pg
            };
        }
        let arena_len = need;
        let arena = map_anon(0, arena_len, libc::PROT_NONE, libc::MAP_NORESERVE)?;
        let mut at = (arena + HUGE - 1) & !(HUGE - 1);
        let mut slots = Vec::new();
        for &(kind, pages) in LAYOUT {
            let len = if pages == 0 { HUGE } else { pages * pg };
            slots.push(Slot {
                base: at,
                len,
                kind,
                state: State::Reserved,
                own: false,
            });
            // Huge slots are followed by a whole aligned gap, so the next
            // huge one stays aligned; the others by one guard page.
            at += if pages == 0 { 2 * HUGE } else { len + pg };
        }
        let pool = Self {
            arena,
            arena_len,
            inner: Mutex::new(Inner {
                slots,
                taken: Vec::new(),
            }),
            memfd,
            file,
        };
        {
            let mut inner = pool.lock();
            for s in inner.slots.iter_mut() {
                // The arena's own pages: MAP_FIXED over our reservation.
                pool.map(s, libc::MAP_FIXED)?;
            }
        }
        Ok(pool)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every slot now.
    #[cfg(test)]
    pub fn slots(&self) -> Vec<Slot> {
        self.lock().slots.clone()
    }

    /// Runs `f` with the slots as they are, and no disturbance until it
    /// returns (a fork: the child's copy is then exactly what `f` saw).
    pub fn hold<R>(&self, f: impl FnOnce(&[Slot]) -> R) -> R {
        let inner = self.lock();
        f(&inner.slots)
    }

    /// A random slot as it is now.
    pub fn pick(&self, rng: &mut Rng) -> Slot {
        let inner = self.lock();
        inner.slots[rng.below(inner.slots.len() as u64) as usize]
    }

    /// The guard page after a slot: never mapped.
    pub fn guard(&self, rng: &mut Rng) -> usize {
        let inner = self.lock();
        let s = inner.slots[rng.below(inner.slots.len() as u64) as usize];
        s.base + s.len
    }

    /// Moves a slot whose place was taken into a new reservation of its
    /// own (aligned for a huge page), with a guard page after it.
    fn relocate(s: &mut Slot, taken: &mut Vec<(usize, usize)>) {
        let pg = page();
        taken.push((s.base, s.len));
        let align = if s.kind == Kind::Huge { HUGE } else { pg };
        let total = s.len + align + pg;
        let Ok(p) = map_anon(0, total, libc::PROT_NONE, libc::MAP_NORESERVE) else {
            s.state = State::Dead;
            return;
        };
        let base = (p + align - 1) & !(align - 1);
        // Trim to [base, base + len + guard). SAFETY: our reservation.
        unsafe {
            if base > p {
                libc::munmap(p as *mut _, base - p);
            }
            let end = base + s.len + pg;
            if p + total > end {
                libc::munmap(end as *mut _, p + total - end);
            }
        }
        s.base = base;
        s.own = true;
        s.state = State::Reserved;
    }

    /// Maps slot `s` fresh (`how`: `MAP_FIXED` over our own mapping or
    /// reservation, or `MAP_FIXED_NOREPLACE` over a hole), fills it, and
    /// sets its state. Called with the slots locked.
    fn map(&self, s: &mut Slot, how: i32) -> io::Result<()> {
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let (fd, flags) = match s.kind {
            Kind::Shmem => (self.memfd, libc::MAP_SHARED),
            Kind::FileShared => (self.file, libc::MAP_SHARED),
            Kind::FilePrivate => (self.file, libc::MAP_PRIVATE),
            _ => (-1, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS),
        };
        let prot = match s.kind {
            Kind::NoAccess => libc::PROT_NONE,
            Kind::FilePrivate => libc::PROT_READ,
            _ => rw,
        };
        // SAFETY: `s.base..+len` is ours: our reservation or our mapping
        // (MAP_FIXED), or a hole we only take if it is still free
        // (MAP_FIXED_NOREPLACE).
        let p = unsafe { libc::mmap(s.base as *mut _, s.len, prot, flags | how, fd, 0) };
        if p == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            if how == libc::MAP_FIXED_NOREPLACE {
                s.state = State::Dead;
            }
            return Err(e);
        }
        if p as usize != s.base {
            // A kernel without MAP_FIXED_NOREPLACE placed it elsewhere.
            // SAFETY: the mapping just made, ours alone.
            unsafe { libc::munmap(p, s.len) };
            s.state = State::Dead;
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        s.state = State::Mapped;
        if s.kind == Kind::Huge {
            // SAFETY: our mapping.
            unsafe { libc::madvise(p, s.len, libc::MADV_HUGEPAGE) };
        }
        if prot & libc::PROT_WRITE != 0 || s.kind == Kind::ReadOnly {
            if s.kind == Kind::ReadOnly {
                // SAFETY: our mapping.
                unsafe { libc::mprotect(p, s.len, rw) };
            }
            // A pattern, so sent bytes are not all zero. SAFETY: our
            // mapping, writable, nothing else touches it while locked.
            unsafe { std::ptr::write_bytes(p.cast::<u8>(), (s.base >> 12) as u8 | 1, s.len) };
            if s.kind == Kind::ReadOnly {
                // SAFETY: our mapping.
                unsafe { libc::mprotect(p, s.len, libc::PROT_READ) };
            }
        }
        Ok(())
    }

    /// One memory disturbance on a random slot; returns its name.
    pub fn disturb(&self, rng: &mut Rng) -> &'static str {
        let mut inner = self.lock();
        let Inner { slots, taken } = &mut *inner;
        let i = rng.below(slots.len() as u64) as usize;
        let s = &mut slots[i];
        let pg = page();
        let base = s.base as *mut libc::c_void;
        match s.state {
            State::Dead => "dead",
            State::Reserved => match self.map(s, libc::MAP_FIXED) {
                Ok(()) => "map-moved",
                Err(_) => "map-failed",
            },
            State::Hole => match self.map(s, libc::MAP_FIXED_NOREPLACE) {
                Ok(()) => "remap-hole",
                Err(_) => {
                    Self::relocate(s, taken);
                    "hole-taken"
                }
            },
            State::Shrunk(now) => {
                // Grow back in place. SAFETY: our mapping; without
                // MREMAP_MAYMOVE nothing moves and nothing is unmapped.
                let p = unsafe { libc::mremap(base, now, s.len, 0) };
                if p == libc::MAP_FAILED {
                    // The rest was taken (or cannot grow): give up the
                    // part we have, and remap the whole as a hole.
                    // SAFETY: the part that is still ours.
                    unsafe { libc::munmap(base, now) };
                    s.state = State::Hole;
                    "grow-failed"
                } else {
                    s.state = State::Mapped;
                    "mremap-grow"
                }
            }
            State::Mapped => match rng.below(12) {
                0 => {
                    // SAFETY: our mapping; the hole is re-taken only with
                    // MAP_FIXED_NOREPLACE.
                    unsafe { libc::munmap(base, s.len) };
                    s.state = State::Hole;
                    "munmap"
                }
                1 | 2 => match self.map(s, libc::MAP_FIXED) {
                    Ok(()) => "replace",
                    Err(_) => "replace-failed",
                },
                3 if s.len > pg => {
                    let keep = pg * rng.range(1, (s.len / pg - 1) as u64) as usize;
                    // SAFETY: shrinking our mapping in place.
                    let p = unsafe { libc::mremap(base, s.len, keep, 0) };
                    if p != libc::MAP_FAILED {
                        s.state = State::Shrunk(keep);
                    }
                    "mremap-shrink"
                }
                4 | 5 => {
                    // SAFETY: our mapping; its contents are not needed.
                    unsafe { libc::madvise(base, s.len, libc::MADV_DONTNEED) };
                    "madv-dontneed"
                }
                6 => {
                    let advice = rng.pick(&[
                        libc::MADV_FREE,
                        libc::MADV_COLD,
                        libc::MADV_PAGEOUT,
                        libc::MADV_WILLNEED,
                    ]);
                    // SAFETY: as above.
                    unsafe { libc::madvise(base, s.len, advice) };
                    "madv-other"
                }
                7 => {
                    let advice = rng.pick(&[
                        libc::MADV_HUGEPAGE,
                        libc::MADV_NOHUGEPAGE,
                        25, /* MADV_COLLAPSE */
                    ]);
                    // SAFETY: as above.
                    unsafe { libc::madvise(base, s.len, advice) };
                    "madv-huge"
                }
                8 => {
                    // Away and back: a register in between gets EFAULT.
                    let normal = if s.read_only() {
                        libc::PROT_READ
                    } else if s.kind == Kind::NoAccess {
                        libc::PROT_NONE
                    } else {
                        libc::PROT_READ | libc::PROT_WRITE
                    };
                    // SAFETY: our mapping; nothing of ours reads it.
                    unsafe {
                        libc::mprotect(base, s.len, libc::PROT_NONE);
                        std::thread::yield_now();
                        libc::mprotect(base, s.len, normal);
                    }
                    "mprotect"
                }
                9 if !s.read_only() && s.kind != Kind::NoAccess => {
                    // Touch: breaks copy-on-write shared with forked
                    // children, faults pages back in after DONTNEED.
                    let n = rng.range(1, (s.len / pg) as u64) as usize;
                    for k in 0..n {
                        // SAFETY: our mapping, writable, locked.
                        unsafe { *((s.base + k * pg) as *mut u8) ^= 0xff };
                    }
                    "touch"
                }
                _ => {
                    // SAFETY: our mapping.
                    unsafe { libc::madvise(base, s.len, libc::MADV_DONTFORK) };
                    // SAFETY: as above.
                    unsafe { libc::madvise(base, s.len, libc::MADV_DOFORK) };
                    "madv-fork"
                }
            },
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Whatever is still ours: slots, guards, the arena's untouched
        // pages. Holes, and ranges taken by someone else, are left alone.
        let pg = page();
        let inner = self.lock();
        for s in &inner.slots {
            let n = match s.state {
                State::Mapped | State::Reserved => s.len,
                State::Shrunk(n) => n,
                State::Hole | State::Dead => 0,
            };
            if n > 0 {
                // SAFETY: our mapping or reservation.
                unsafe { libc::munmap(s.base as *mut _, n) };
            }
            if s.own {
                // SAFETY: the guard of its own reservation.
                unsafe { libc::munmap((s.base + s.len) as *mut _, pg) };
            }
        }
        // The arena minus its slots' ranges and the ranges taken.
        let mut skip: Vec<(usize, usize)> = inner
            .slots
            .iter()
            .filter(|s| !s.own)
            .map(|s| (s.base, s.len))
            .chain(inner.taken.iter().copied())
            .collect();
        skip.sort_unstable();
        let mut at = self.arena;
        let end = self.arena + self.arena_len;
        for (b, l) in skip {
            if b >= end || b + l <= self.arena {
                continue;
            }
            if b > at {
                // SAFETY: part of our reservation nothing else ever used.
                unsafe { libc::munmap(at as *mut _, b - at) };
            }
            at = at.max(b + l);
        }
        if end > at {
            // SAFETY: as above.
            unsafe { libc::munmap(at as *mut _, end - at) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptrs::mappings;

    fn backing() -> (RawFd, RawFd) {
        // SAFETY: memfd_create with a valid name.
        let a = unsafe { libc::memfd_create(c"pool-test".as_ptr(), libc::MFD_CLOEXEC) };
        // SAFETY: as above.
        let b = unsafe { libc::memfd_create(c"pool-test2".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(a >= 0 && b >= 0);
        // SAFETY: our fds.
        unsafe {
            libc::ftruncate(a, backing_len() as i64);
            libc::ftruncate(b, backing_len() as i64);
        }
        (a, b)
    }

    #[test]
    fn slots_are_separated_by_guards_and_huge_ones_aligned() {
        let (a, b) = backing();
        let p = Pool::new(a, b).unwrap();
        let slots = p.slots();
        assert_eq!(slots.len(), LAYOUT.len());
        for w in slots.windows(2) {
            assert!(w[0].base + w[0].len + page() <= w[1].base);
        }
        for s in &slots {
            assert_eq!(s.state, State::Mapped);
            assert!(!s.own);
            if s.kind == Kind::Huge {
                assert_eq!(s.base % HUGE, 0);
            }
        }
        // The guard after each slot faults: the kernel cannot write it.
        use std::os::fd::AsRawFd;
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let g = p.guard(&mut rng);
            // SAFETY: the kernel writes nothing if the page faults, and
            // the guard is our own reservation if it does not.
            let n = unsafe { libc::read(zero.as_raw_fd(), g as *mut _, 1) };
            assert_eq!(n, -1, "guard at {g:#x} is writable");
        }
    }

    #[test]
    fn disturbances_never_lose_track() {
        let (a, b) = backing();
        let p = Pool::new(a, b).unwrap();
        let mut rng = Rng::new(77);
        let mut names = std::collections::HashSet::new();
        for _ in 0..3000 {
            names.insert(p.disturb(&mut rng));
        }
        for want in [
            "munmap",
            "remap-hole",
            "replace",
            "mremap-shrink",
            "mremap-grow",
        ] {
            assert!(names.contains(want), "{want} never done: {names:?}");
        }
        // Mapped slots are really mapped, holes really not (or taken).
        let maps = mappings();
        for s in p.slots() {
            let mapped = maps
                .iter()
                .any(|&(x, y, _)| x <= s.base as u64 && (s.base as u64) < y);
            if s.state == State::Mapped {
                assert!(mapped, "{s:?}");
            }
        }
    }
}

#[cfg(test)]
mod relocation {
    use super::*;

    #[test]
    fn a_taken_hole_moves_the_slot_and_is_never_unmapped() {
        // SAFETY: memfd_create with valid names; ftruncate on our fds.
        let (a, b) = unsafe {
            let a = libc::memfd_create(c"reloc".as_ptr(), libc::MFD_CLOEXEC);
            let b = libc::memfd_create(c"reloc2".as_ptr(), libc::MFD_CLOEXEC);
            libc::ftruncate(a, backing_len() as i64);
            libc::ftruncate(b, backing_len() as i64);
            (a, b)
        };
        let p = Pool::new(a, b).unwrap();
        // Make slot 2 a hole, and let "someone else" take it.
        let victim = {
            let mut inner = p.lock();
            let s = &mut inner.slots[2];
            // SAFETY: our mapping.
            unsafe { libc::munmap(s.base as *mut _, s.len) };
            s.state = State::Hole;
            *s
        };
        let other = map_anon(
            victim.base,
            victim.len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED_NOREPLACE,
        )
        .unwrap();
        assert_eq!(other, victim.base);
        // SAFETY: the "other" mapping, ours in this test.
        unsafe { *(other as *mut u8) = 42 };
        // Disturb until slot 2 is tried.
        let mut rng = Rng::new(5);
        while p.slots()[2].state == State::Hole {
            p.disturb(&mut rng);
        }
        let moved = p.slots()[2];
        assert!(moved.own && moved.base != victim.base, "{moved:?}");
        // It maps again, in its new place.
        while p.slots()[2].state != State::Mapped {
            p.disturb(&mut rng);
        }
        drop(p);
        // The other mapping survived the pool.
        // SAFETY: still mapped (the pool never unmapped it).
        assert_eq!(unsafe { *(other as *const u8) }, 42);
        // SAFETY: ours.
        unsafe { libc::munmap(other as *mut _, victim.len) };
    }
}
