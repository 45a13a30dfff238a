//! What a forked child does until it is killed: raw calls on the zcopy
//! fds it inherited (the parent's shared contexts) and on one of its own,
//! registering its copy-on-write view of the parent's buffers.
//!
//! A child of a multithreaded process may only make system calls: another
//! thread may have held the allocator's lock at the fork. So everything
//! the child needs is prepared by the parent in a [`Plan`] of fixed-size
//! arrays, and the child allocates nothing, formats nothing and cannot
//! panic (every index is taken modulo a non-zero length).

use zcopy::abi;

use crate::{rng::Rng, state::CHILD_TAG};

pub const MAX_FDS: usize = 8;
pub const MAX_SOCKS: usize = 48;
pub const MAX_SLOTS: usize = 24;

/// Everything a child uses, prepared before the fork.
#[derive(Clone, Copy)]
pub struct Plan {
    pub zfds: [i32; MAX_FDS],
    pub nzfds: usize,
    pub socks: [i32; MAX_SOCKS],
    pub nsocks: usize,
    /// `(base, len, writable)` of the pool's mapped slots.
    pub slots: [(u64, u64, bool); MAX_SLOTS],
    pub nslots: usize,
    pub scratch: u64,
    pub scratch_len: u64,
    pub file: i32,
    pub seed: u64,
    /// Become `nobody` with a small memlock limit: memlock charges,
    /// `ENOMEM`, `EPERM` for `ZC_IOC_XMIT`, IOVAs hidden.
    pub drop_priv: bool,
    /// Open a zcopy fd of its own, which dies with the child.
    pub open_own: bool,
    pub parent: i32,
    pub iters: u32,
}

/// A registered region the child remembers.
#[derive(Clone, Copy, Default)]
struct Region {
    fd: i32,
    id: u32,
    len: u64,
}

fn ioctl<T>(fd: i32, cmd: u32, arg: &mut T) -> bool {
    // SAFETY: `arg` is a valid `T` on the child's stack, the structure
    // `cmd` takes; the user pointers in it point into the child's copy of
    // the parent's memory (slots, scratch).
    unsafe { libc::ioctl(fd, cmd as _, arg as *mut T) == 0 }
}

/// Runs the plan; never returns.
pub fn run(p: &Plan) -> ! {
    let mut rng = Rng::new(p.seed);
    let pg = 4096u64;
    // The parent's fatal-signal handler speaks for the parent: a child
    // dies quietly (its death is counted by the parent).
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: signal(2), async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    if p.drop_priv {
        let lim = libc::rlimit {
            rlim_cur: 64 * pg,
            rlim_max: 64 * pg,
        };
        // SAFETY: raw system calls; this process has one thread.
        unsafe {
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<u32>());
            libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534);
            libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534);
        }
    }
    let mut zfds = p.zfds;
    let mut nz = p.nzfds.min(MAX_FDS);
    if p.open_own && nz < MAX_FDS {
        // SAFETY: open(2) with a static C string.
        let fd = unsafe {
            libc::open(
                c"/dev/zcopy".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd >= 0 {
            zfds[nz] = fd;
            nz += 1;
        }
    }
    if nz == 0 || p.nslots == 0 {
        // SAFETY: _exit(2).
        unsafe { libc::_exit(0) };
    }
    let mut regs = [Region::default(); 16];
    let mut nregs = 0usize;
    for i in 0..p.iters {
        // SAFETY: getppid(2).
        if i % 64 == 0 && unsafe { libc::getppid() } != p.parent {
            break;
        }
        let fd = zfds[rng.below(nz as u64) as usize];
        let (base, len, writable) = p.slots[rng.below(p.nslots as u64) as usize];
        let reg = regs[rng.below(nregs.max(1) as u64) as usize];
        let sock = if p.nsocks > 0 {
            p.socks[rng.below(p.nsocks as u64) as usize]
        } else {
            -1
        };
        let tag = CHILD_TAG | u64::from(i);
        match rng.below(12) {
            0..=2 => {
                let off = rng.below(len);
                let mut a = abi::ZcRegister {
                    addr: base + off,
                    len: rng.range(1, len - off),
                    flags: if writable && rng.chance(2, 3) {
                        0
                    } else {
                        abi::ZC_REGISTER_READONLY
                    },
                    ..Default::default()
                };
                if ioctl(fd, abi::ZC_IOC_REGISTER, &mut a) {
                    let slot = if nregs < regs.len() {
                        nregs += 1;
                        nregs - 1
                    } else {
                        rng.below(regs.len() as u64) as usize
                    };
                    regs[slot] = Region {
                        fd,
                        id: a.id,
                        len: a.len,
                    };
                }
            }
            3..=5 if nregs > 0 => {
                let off = rng.below(reg.len);
                let mut s = abi::ZcSend {
                    fd: sock,
                    flags: abi::ZC_SEND_NONBLOCK,
                    region: reg.id,
                    offset: off,
                    len: rng.range(1, (reg.len - off).min(65507)),
                    tag,
                    ..Default::default()
                };
                ioctl(reg.fd, abi::ZC_IOC_SEND, &mut s);
            }
            6 if nregs > 0 => {
                let mut u = abi::ZcUnregister {
                    id: reg.id,
                    reserved: 0,
                };
                ioctl(reg.fd, abi::ZC_IOC_UNREGISTER, &mut u);
            }
            7 if nregs > 0 => {
                let mut ri = abi::ZcRegionInfo {
                    id: reg.id,
                    nr_pages: (p.scratch_len / 24) as u32,
                    pages: p.scratch,
                    ..Default::default()
                };
                ioctl(reg.fd, abi::ZC_IOC_REGION_INFO, &mut ri);
            }
            8 => {
                // SAFETY: the child's copy of the scratch mapping.
                unsafe { libc::read(fd, p.scratch as *mut _, 24 * 16) };
            }
            9 if writable => {
                // Write to the child's copy: breaks copy-on-write under
                // the pins. SAFETY: a slot mapped writable at the fork,
                // which only this process can change in its own copy.
                unsafe { *((base + rng.below(len)) as *mut u8) ^= 0x55 };
            }
            10 => {
                let mut s = abi::ZcSendfile {
                    sock,
                    fd: p.file,
                    flags: abi::ZC_SEND_NONBLOCK,
                    offset: rng.below(1 << 20),
                    len: rng.range(1, 16 * pg),
                    tag,
                    ..Default::default()
                };
                ioctl(fd, abi::ZC_IOC_SENDFILE, &mut s);
            }
            _ => {
                // Lose the child's view of a slot while regions pin it.
                // SAFETY: the child's own copy of the mapping.
                unsafe { libc::madvise(base as *mut _, len as usize, libc::MADV_DONTNEED) };
            }
        }
    }
    // SAFETY: _exit(2): no destructors, no atexit handlers.
    unsafe { libc::_exit(0) }
}
