//! User pointers: buffers the kernel may write into safely, and wild
//! pointers that must never land in the fuzzer's own live memory.
//!
//! The kernel writes through output pointers (the argument structure, the
//! `pages` arrays, `read(2)`'s buffer, `ZC_IOC_SEND_BATCH`'s entries), so a
//! pointer handed to it for output is always one of:
//!
//! - inside a [`GuardedBuf`] owned by the one thread making the call, or
//!   inside the shared [`Wild::scratch`] mapping that nothing ever reads;
//!   each is followed by a `PROT_NONE` guard page, and the kernel writes
//!   sequentially from the pointer, so an overlong write faults at the
//!   guard before it can reach anything else;
//! - an address that is never mapped: NULL and small integers (below
//!   `mmap_min_addr`), the permanent `PROT_NONE` reservation, a hole far
//!   below where `mmap` places anything, the top page of the user range
//!   and above (`TASK_SIZE`), kernel and non-canonical addresses.
//!
//! Input-only pointers (a region's `addr`, `ZC_IOC_XMIT`'s `hdr`) may point
//! anywhere, the fuzzer's own code and stack included: the kernel only
//! reads or pins what they point at.

use std::{io, sync::OnceLock};

use crate::rng::Rng;

/// The page size.
pub fn page() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// `x` rounded up to whole pages.
pub fn page_up(x: usize) -> usize {
    x.div_ceil(page()) * page()
}

/// An anonymous private mapping.
pub fn map_anon(addr: usize, len: usize, prot: i32, extra: i32) -> io::Result<usize> {
    // SAFETY: a new anonymous mapping; with MAP_FIXED the callers only
    // name ranges they own (checked by each caller).
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

/// A read-write mapping of `len` bytes followed by one `PROT_NONE` guard
/// page: a place the kernel may write into, from any offset, for any
/// length, without reaching anything past it.
pub struct GuardedBuf {
    base: usize,
    len: usize,
}

impl GuardedBuf {
    pub fn new(len: usize) -> io::Result<Self> {
        let len = page_up(len.max(1));
        let base = map_anon(0, len + page(), libc::PROT_READ | libc::PROT_WRITE, 0)?;
        // SAFETY: the last page of the mapping just made.
        if unsafe { libc::mprotect((base + len) as *mut _, page(), libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the mapping just made, used by nobody.
            unsafe { libc::munmap(base as *mut _, len + page()) };
            return Err(e);
        }
        Ok(Self { base, len })
    }

    pub fn base(&self) -> usize {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The first byte of the guard page.
    pub fn end(&self) -> usize {
        self.base + self.len
    }

    /// Whether `[p, p + n)` lies inside the writable part.
    pub fn holds(&self, p: usize, n: usize) -> bool {
        p >= self.base && p.checked_add(n).is_some_and(|e| e <= self.end())
    }

    /// A pointer from which `n` bytes fit, aligned to `align` (a power of
    /// two) unless `misalign`, anywhere in the buffer.
    pub fn anywhere(&self, rng: &mut Rng, n: usize, align: usize, misalign: bool) -> usize {
        let room = self.len.saturating_sub(n);
        let mut off = rng.below(room as u64 + 1) as usize;
        off &= !(align - 1);
        if misalign && off + n < self.len {
            off += 1 + rng.below((align.max(2) - 1) as u64) as usize;
            off = off.min(room);
        }
        self.base + off
    }

    /// Changes the protection of the writable part.
    pub fn protect(&self, prot: i32) -> io::Result<()> {
        // SAFETY: our own mapping.
        if unsafe { libc::mprotect(self.base as *mut _, self.len, prot) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Copies `v`'s bytes to `p`, of which the first `n` at most are
    /// written (a value cut short by the guard page).
    pub fn put<T: Copy>(&self, p: usize, v: &T, n: usize) {
        let n = n.min(size_of::<T>());
        assert!(self.holds(p, n), "put outside the buffer");
        // SAFETY: `[p, p + n)` is inside our writable mapping (checked),
        // and `v` has at least `n` bytes.
        unsafe { std::ptr::copy_nonoverlapping((v as *const T).cast::<u8>(), p as *mut u8, n) };
    }

    /// Reads a `T` from `p`, which must hold one.
    pub fn get<T: Copy>(&self, p: usize) -> T {
        assert!(self.holds(p, size_of::<T>()), "get outside the buffer");
        // SAFETY: inside our mapping (checked); `T` is plain data.
        unsafe { std::ptr::read_unaligned(p as *const T) }
    }

    /// Zeroes `[p, p + n)`.
    pub fn zero(&self, p: usize, n: usize) {
        assert!(self.holds(p, n), "zero outside the buffer");
        // SAFETY: inside our mapping (checked).
        unsafe { std::ptr::write_bytes(p as *mut u8, 0, n) };
    }
}

impl Drop for GuardedBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, ours alone.
        unsafe { libc::munmap(self.base as *mut _, self.len + page()) };
    }
}

// SAFETY: a GuardedBuf is an address range; which thread uses it is the
// owner's business.
unsafe impl Send for GuardedBuf {}
// SAFETY: as above; `put`/`get` copy plain bytes.
unsafe impl Sync for GuardedBuf {}

/// Kernel addresses: the direct map, the kernel text, vmalloc, vmemmap,
/// the fixmap top, the last page.
pub const KERNEL_ADDRS: &[u64] = &[
    0xffff_8880_0000_0000,
    0xffff_ffff_8100_0000,
    0xffff_c900_0000_0000,
    0xffff_ea00_0000_0000,
    0xffff_ffff_ff60_0000,
    0xffff_ffff_ffff_f000,
];

/// Non-canonical addresses (bits 47..63 not all equal).
pub const NONCANONICAL_ADDRS: &[u64] = &[
    0x0000_8000_0000_0000,
    0x8000_0000_0000_0000,
    0xdead_0000_0000_0000,
    0x7fff_0000_0000_0000,
    0x0001_0000_0000_0000,
    0xfffe_ffff_ffff_f000,
];

/// The end of the 4-level user address range (`TASK_SIZE_MAX`): this page
/// and everything above it up to the kernel is never mapped for a task.
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Where the permanent hole is made: far below both the executable (PIE
/// bases start at 2/3 of the range) and the top-down `mmap` area.
const HOLE_HINT: usize = 0x1000_0000_0000;

/// What kind of wild pointer: for counting and for the oracles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WildKind {
    Null,
    Small,
    ProtNone,
    Hole,
    BeyondTask,
    Kernel,
    NonCanonical,
    NearMax,
    /// In the scratch mapping: readable garbage, writable.
    Scratch,
    /// In the scratch mapping, ending at or running into its guard page.
    GuardEdge,
    /// Our own code or stack, or a freed mapping anything may reuse: only
    /// ever read or pinned through.
    Live,
}

impl WildKind {
    /// Whether nothing is mapped there: any access faults.
    pub fn unmapped(self) -> bool {
        !matches!(
            self,
            WildKind::Scratch | WildKind::GuardEdge | WildKind::Live
        )
    }

    /// Whether it is negative as a signed address: the kernel half, which
    /// `access_ok` refuses outright, whatever the length.
    pub fn kernel_half(self) -> bool {
        matches!(self, WildKind::Kernel | WildKind::NearMax)
    }

    /// Whether it is not a user address at all (at or above `TASK_SIZE`).
    #[cfg(test)]
    pub fn not_user(self) -> bool {
        matches!(
            self,
            WildKind::BeyondTask | WildKind::Kernel | WildKind::NonCanonical | WildKind::NearMax
        )
    }
}

/// The memory that wild pointers point at.
pub struct Wild {
    /// Written by the kernel, read by nobody.
    pub scratch: GuardedBuf,
    /// A permanent `PROT_NONE` reservation.
    pub prot_none: usize,
    pub prot_none_len: usize,
    /// A range that was mapped and unmapped, where `mmap` never places
    /// anything.
    pub hole: usize,
    /// An ordinary freed mapping, which anything may reuse later: for
    /// input-only pointers.
    pub recent_hole: usize,
}

impl Wild {
    pub fn new() -> io::Result<Self> {
        let pg = page();
        let scratch = GuardedBuf::new(4 * pg)?;
        // Pointers go into its first 4 pages; the rest keeps a long write
        // from them inside it.
        let prot_none_len = 4 * pg + (128 << 10);
        let prot_none = map_anon(0, prot_none_len, libc::PROT_NONE, libc::MAP_NORESERVE)?;
        // Map and unmap, so the hole is a real once-mapped hole, far below
        // anything mmap places; if the hint is taken (it never is), a
        // range beyond it, never mapped either (the tests check against
        // /proc/self/maps). Each `Wild` its own (tests make several).
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let hint = HOLE_HINT + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * (1 << 20);
        let hole = match map_anon(hint, 4 * pg, libc::PROT_READ, libc::MAP_FIXED_NOREPLACE) {
            Ok(p) => {
                // SAFETY: the mapping just made.
                unsafe { libc::munmap(p as *mut _, 4 * pg) };
                p
            }
            Err(_) => hint + 64 * pg,
        };
        let recent_hole = map_anon(0, pg, libc::PROT_READ, 0)?;
        // SAFETY: the mapping just made.
        unsafe { libc::munmap(recent_hole as *mut _, pg) };
        Ok(Self {
            scratch,
            prot_none,
            prot_none_len,
            hole,
            recent_hole,
        })
    }

    /// A pointer the kernel may write up to `n` bytes through (or try
    /// to), with its kind. `with_garbage`: the scratch mapping may be
    /// used, whose bytes are garbage; never for a structure that holds
    /// user pointers itself, since the kernel would follow them.
    pub fn out_ptr(&self, rng: &mut Rng, n: usize, with_garbage: bool) -> (u64, WildKind) {
        let pg = page() as u64;
        let kinds: &[WildKind] = if with_garbage {
            &[
                WildKind::Null,
                WildKind::Small,
                WildKind::ProtNone,
                WildKind::Hole,
                WildKind::BeyondTask,
                WildKind::Kernel,
                WildKind::NonCanonical,
                WildKind::NearMax,
                WildKind::Scratch,
                WildKind::GuardEdge,
                WildKind::GuardEdge,
            ]
        } else {
            &[
                WildKind::Null,
                WildKind::Small,
                WildKind::ProtNone,
                WildKind::Hole,
                WildKind::BeyondTask,
                WildKind::Kernel,
                WildKind::NonCanonical,
                WildKind::NearMax,
            ]
        };
        let kind = rng.pick(kinds);
        let p = match kind {
            WildKind::Null => 0,
            WildKind::Small => rng.pick(&[1, 8, 0xfff, 0x1000, 0x1001, 0xffff]),
            WildKind::ProtNone => self.prot_none as u64 + rng.below(4 * pg),
            WildKind::Hole => self.hole as u64 + rng.below(4 * pg - 1),
            WildKind::BeyondTask => TASK_SIZE + rng.below(2 * pg),
            WildKind::Kernel => rng.pick(KERNEL_ADDRS) + rng.below(pg) * rng.below(2),
            WildKind::NonCanonical => {
                if rng.chance(1, 3) {
                    // Bit 63 clear, one of bits 47..62 set: the top 17
                    // bits are not all equal.
                    (rng.next_u64() & 0x0000_7fff_ffff_ffff) | (1 << rng.range(47, 62))
                } else {
                    rng.pick(NONCANONICAL_ADDRS)
                }
            }
            WildKind::NearMax => u64::MAX - rng.below(2 * pg),
            WildKind::Scratch => {
                let misalign = rng.chance(1, 2);
                self.scratch
                    .anywhere(rng, n.min(self.scratch.len()), 1, misalign) as u64
            }
            WildKind::GuardEdge | WildKind::Live => {
                // Ends exactly at the guard, or runs into it.
                let n = n.clamp(1, self.scratch.len()) as u64;
                self.scratch.end() as u64 - rng.range(1, n)
            }
        };
        (p, kind)
    }

    /// A pointer the kernel only reads or pins through: any out pointer,
    /// or an ordinary freed mapping, our own code or stack.
    pub fn in_ptr(&self, rng: &mut Rng, n: usize) -> (u64, WildKind) {
        match rng.below(8) {
            0 => (
                self.recent_hole as u64 + rng.below(page() as u64),
                WildKind::Live,
            ),
            1 => {
                // Our own code: file-backed, read-only, on whatever file
                // system the binary lives on.
                (
                    Self::new as fn() -> io::Result<Self> as usize as u64,
                    WildKind::Live,
                )
            }
            2 => {
                let local = 0u64;
                (std::ptr::addr_of!(local) as u64, WildKind::Live)
            }
            _ => self.out_ptr(rng, n, true),
        }
    }
}

impl Drop for Wild {
    fn drop(&mut self) {
        // SAFETY: our reservation.
        unsafe { libc::munmap(self.prot_none as *mut _, self.prot_none_len) };
    }
}

/// The mappings of this process, from `/proc/self/maps`: `(start, end,
/// accessible)`.
#[cfg(test)]
pub fn mappings() -> Vec<(u64, u64, bool)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (a, b) = f.next()?.split_once('-')?;
            let perms = f.next()?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
                !perms.starts_with("---"),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accessible mappings `[p, p + n)` overlaps.
    fn overlaps(maps: &[(u64, u64, bool)], p: u64, n: u64) -> Vec<(u64, u64)> {
        let e = p.saturating_add(n.max(1));
        maps.iter()
            .filter(|&&(a, b, ok)| ok && p < b && e > a)
            .map(|&(a, b, _)| (a, b))
            .collect()
    }

    #[test]
    fn out_pointers_never_touch_live_memory_but_scratch() {
        let w = Wild::new().unwrap();
        let keep = GuardedBuf::new(3 * page()).unwrap();
        let maps = mappings();
        let (sb, se) = (w.scratch.base() as u64, w.scratch.end() as u64);
        let mut rng = Rng::new(0xfeed);
        let mut kinds = std::collections::HashSet::new();
        for i in 0..50_000 {
            let n = [1usize, 24, 48, 4096, 65536][i % 5];
            let (p, kind) = w.out_ptr(&mut rng, n, i % 2 == 0);
            kinds.insert(format!("{kind:?}"));
            if kind.not_user() {
                // Not a user address: refused before any access (the
                // vsyscall page is listed in maps, and is no exception).
                assert!(p >= TASK_SIZE, "{kind:?} {p:#x} is a user address");
            } else if kind.unmapped() {
                // Nothing accessible from p on for n bytes (or up to
                // 64 KiB: a write stops at the first fault anyway).
                let bad = overlaps(&maps, p, n.min(65536) as u64);
                assert!(bad.is_empty(), "{kind:?} {p:#x}+{n} hits {bad:x?}");
            } else {
                // Starts inside scratch: a sequential write meets the guard
                // before anything else.
                assert!(p >= sb && p < se, "{kind:?} {p:#x} outside scratch");
                assert!(!keep.holds(p as usize, 1));
            }
            if i % 2 == 1 {
                assert!(kind.unmapped(), "garbage-free pointer in scratch: {kind:?}");
            }
        }
        assert_eq!(kinds.len(), 10, "every kind generated: {kinds:?}");
    }

    #[test]
    fn guard_edge_pointers_end_at_or_run_into_the_guard() {
        let w = Wild::new().unwrap();
        let mut rng = Rng::new(3);
        let mut exact = false;
        for _ in 0..20_000 {
            let (p, kind) = w.out_ptr(&mut rng, 48, true);
            if kind == WildKind::GuardEdge {
                let end = w.scratch.end() as u64;
                assert!(p < end && p + 48 >= end);
                exact |= p + 48 == end;
            }
        }
        assert!(exact, "a buffer ending exactly at the guard is generated");
    }

    #[test]
    fn the_guard_really_faults() {
        let b = GuardedBuf::new(100).unwrap();
        assert_eq!(b.len(), page());
        let fd = std::fs::File::open("/dev/zero").unwrap();
        use std::os::fd::AsRawFd;
        // Reading across the guard: only the writable part is filled.
        let p = b.end() - 10;
        // SAFETY: the kernel writes into our buffer up to its guard.
        let n = unsafe { libc::read(fd.as_raw_fd(), p as *mut _, 100) };
        assert_eq!(n, 10);
        // SAFETY: as above; the guard page itself.
        let n = unsafe { libc::read(fd.as_raw_fd(), b.end() as *mut _, 1) };
        assert_eq!(n, -1);
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EFAULT)
        );
    }

    #[test]
    fn anywhere_fits_and_aligns() {
        let b = GuardedBuf::new(2 * page()).unwrap();
        let mut rng = Rng::new(9);
        for i in 0..10_000 {
            let n = 1 + i % 200;
            let p = b.anywhere(&mut rng, n, 8, false);
            assert!(b.holds(p, n));
            assert_eq!(p % 8, 0);
            let q = b.anywhere(&mut rng, n, 8, true);
            assert!(b.holds(q, n));
        }
    }
}
