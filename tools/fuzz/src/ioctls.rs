//! The calls the fuzzer makes: every ioctl of the ABI, `read(2)`, and
//! commands that are not the ABI's; the errnos `Documentation/abi.rst`
//! documents for each; and the oracle type for calls whose outcome the
//! ABI decides.

use zcopy::abi;

use crate::rng::Rng;

/// One kind of call. `BadCmd` is any command number the ABI does not
/// define on a zcopy fd; `WrongFd` an ABI command on a file that is not
/// `/dev/zcopy` (not zcopy's to answer: counted, never judged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Version,
    Register,
    Unregister,
    RegionInfo,
    Stats,
    Send,
    Xmit,
    SetEventfd,
    Sendfile,
    FilePages,
    SendBatch,
    DmaRead,
    Read,
    BadCmd,
    WrongFd,
}

impl Op {
    pub const ALL: [Op; 15] = [
        Op::Version,
        Op::Register,
        Op::Unregister,
        Op::RegionInfo,
        Op::Stats,
        Op::Send,
        Op::Xmit,
        Op::SetEventfd,
        Op::Sendfile,
        Op::FilePages,
        Op::SendBatch,
        Op::DmaRead,
        Op::Read,
        Op::BadCmd,
        Op::WrongFd,
    ];

    /// The ABI's ioctls: the first entries of [`Op::ALL`].
    pub const IOCTLS: usize = 12;

    pub fn name(self) -> &'static str {
        match self {
            Op::Version => "VERSION",
            Op::Register => "REGISTER",
            Op::Unregister => "UNREGISTER",
            Op::RegionInfo => "REGION_INFO",
            Op::Stats => "STATS",
            Op::Send => "SEND",
            Op::Xmit => "XMIT",
            Op::SetEventfd => "SET_EVENTFD",
            Op::Sendfile => "SENDFILE",
            Op::FilePages => "FILE_PAGES",
            Op::SendBatch => "SEND_BATCH",
            Op::DmaRead => "DMA_READ",
            Op::Read => "read",
            Op::BadCmd => "bad-cmd",
            Op::WrongFd => "wrong-fd",
        }
    }

    /// The ioctl command, for the ABI's ioctls.
    pub fn cmd(self) -> Option<u32> {
        Some(match self {
            Op::Version => abi::ZC_IOC_VERSION,
            Op::Register => abi::ZC_IOC_REGISTER,
            Op::Unregister => abi::ZC_IOC_UNREGISTER,
            Op::RegionInfo => abi::ZC_IOC_REGION_INFO,
            Op::Stats => abi::ZC_IOC_STATS,
            Op::Send => abi::ZC_IOC_SEND,
            Op::Xmit => abi::ZC_IOC_XMIT,
            Op::SetEventfd => abi::ZC_IOC_SET_EVENTFD,
            Op::Sendfile => abi::ZC_IOC_SENDFILE,
            Op::FilePages => abi::ZC_IOC_FILE_PAGES,
            Op::SendBatch => abi::ZC_IOC_SEND_BATCH,
            Op::DmaRead => abi::ZC_IOC_DMA_READ,
            Op::Read | Op::BadCmd | Op::WrongFd => return None,
        })
    }

    /// Whether the module writes the argument back (`_IOR`/`_IOWR`).
    pub fn writes_arg(self) -> bool {
        self.cmd().is_some_and(|c| c >> 30 & 2 != 0)
    }

    /// The errnos `Documentation/abi.rst` gives for this call, beyond the
    /// conventions every ioctl shares (`EFAULT` for a bad argument
    /// pointer, `ENOTTY` for an unknown command).
    pub fn documented(self) -> &'static [i32] {
        use libc::*;
        match self {
            Op::Version | Op::Stats => &[],
            Op::Register => &[EINVAL, EFAULT, EOVERFLOW, ENOMEM, ENODEV, EOPNOTSUPP],
            Op::Unregister => &[ENOENT, EBUSY, EINVAL],
            Op::RegionInfo => &[ENOENT, EINVAL, EFAULT],
            Op::Send => &[
                EBADF, ENOTSOCK, EOPNOTSUPP, ENOENT, EINVAL, EOVERFLOW, ENOBUFS, EFAULT,
            ],
            Op::SendBatch => &[
                EINVAL, EFAULT, EBADF, ENOTSOCK, EOPNOTSUPP, ENOENT, EOVERFLOW, ENOBUFS,
            ],
            Op::Xmit => &[
                EPERM, EINVAL, EFAULT, ENODEV, ENOENT, EOVERFLOW, ENETDOWN, EOPNOTSUPP, EMSGSIZE,
                ENOBUFS,
            ],
            Op::SetEventfd => &[EBADF, EINVAL],
            Op::Sendfile => &[
                EBADF, ENOTSOCK, EOPNOTSUPP, EINVAL, EOVERFLOW, ENOBUFS, EIO, EINTR,
            ],
            Op::FilePages => &[EBADF, EINVAL, EOPNOTSUPP, EFAULT],
            // ETIMEDOUT and EIO are documented, and the worker reports
            // them anyway: the engine timed out, or is wedged.
            Op::DmaRead => &[
                EINVAL, EOVERFLOW, ENOENT, ENXIO, ENODEV, ETIMEDOUT, EIO, ENOMEM, EFAULT,
            ],
            Op::Read => &[EINVAL, EAGAIN, EINTR, EFAULT],
            Op::BadCmd => &[ENOTTY],
            Op::WrongFd => &[],
        }
    }

    /// Whether the ABI also allows the socket's own errnos ("others: from
    /// the socket"), as `ZC_IOC_SEND`, `ZC_IOC_SEND_BATCH` and
    /// `ZC_IOC_SENDFILE` do.
    pub fn socket_errnos(self) -> bool {
        matches!(self, Op::Send | Op::SendBatch | Op::Sendfile)
    }

    /// Whether `errno` is one the ABI documents for this call.
    pub fn is_documented(self, errno: i32) -> bool {
        match self {
            Op::WrongFd => true,
            Op::Read => self.documented().contains(&errno),
            _ => {
                errno == libc::EFAULT
                    || errno == libc::ENOTTY
                    || self.documented().contains(&errno)
                    || (self.socket_errnos() && SOCKET_ERRNOS.contains(&errno))
            }
        }
    }
}

/// What a send may get from the socket: those `abi.rst` names (`EPIPE`,
/// `EAGAIN`, `EMSGSIZE`, `EDESTADDRREQ`, `ECONNRESET`) and those its
/// "..." stands for: what `sendmsg(2)` on a TCP or UDP socket answers.
pub const SOCKET_ERRNOS: &[i32] = &[
    libc::EPIPE,
    libc::EAGAIN,
    libc::EMSGSIZE,
    libc::EDESTADDRREQ,
    libc::ECONNRESET,
    // The "..." of "ECONNRESET...":
    libc::ENOTCONN,
    libc::ECONNREFUSED,
    libc::EINTR,
    libc::ENETUNREACH,
    libc::EHOSTUNREACH,
    libc::ENETDOWN,
    libc::ETIMEDOUT,
    libc::ENOMEM,
    libc::ENOBUFS,
    libc::EPERM,
    libc::EACCES,
    libc::EINVAL,
    libc::EOPNOTSUPP,
    libc::EHOSTDOWN,
];

/// What a call's outcome must be, where the ABI decides it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Errnos the call may fail with (a bit per errno below 128).
    set: u128,
    /// `set` is binding: some condition decides the errno.
    decided: bool,
    /// The call must fail: success is a finding.
    pub must_fail: bool,
}

impl Expect {
    /// Anything documented.
    pub const ANY: Expect = Expect {
        set: 0,
        decided: false,
        must_fail: false,
    };

    /// Must fail with exactly `errno`.
    pub fn errno(errno: i32) -> Self {
        let mut e = Self::ANY;
        e.add(errno);
        e
    }

    fn bit(errno: i32) -> u128 {
        if (0..128).contains(&errno) {
            1 << errno
        } else {
            0
        }
    }

    /// Adds a condition: the call must fail, with `errno` among those
    /// allowed. With several conditions true at once the ABI does not
    /// say which wins, so any of them is right.
    pub fn add(&mut self, errno: i32) {
        self.set |= Self::bit(errno);
        self.decided = true;
        self.must_fail = true;
    }

    /// Allows `errno` without requiring failure: a condition that may or
    /// may not hold when the call is made (a shared region another thread
    /// may have unregistered, a socket being replaced).
    pub fn also(&mut self, errno: i32) {
        self.set |= Self::bit(errno);
    }

    /// The call must fail, with any documented errno unless a condition
    /// decides which.
    pub fn fail_any(&mut self) {
        self.must_fail = true;
    }

    /// Only `errno` is right, whatever else holds (a bad argument
    /// pointer: the module cannot see the rest).
    pub fn only(&mut self, errno: i32) {
        *self = Self::errno(errno);
    }

    /// Whether `errno` is allowed.
    pub fn allows(&self, errno: i32) -> bool {
        !self.decided || self.set & Self::bit(errno) != 0
    }

    /// The allowed errnos' names, for messages.
    pub fn names(&self) -> String {
        if !self.decided {
            return "any".into();
        }
        (0..128)
            .filter(|&e| self.set & (1 << e) != 0)
            .map(errno_name)
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// A command number the ABI does not define, with magic `'Z'` (no other
/// layer of the kernel answers those: the VFS's generic ioctls use other
/// magics): an unknown number in or out of zcopy's range, or a known one
/// with the wrong size or direction.
pub fn bad_cmd(rng: &mut Rng) -> u32 {
    let magic = u32::from(abi::ZC_IOC_MAGIC) << 8;
    loop {
        let known = rng.pick(&Op::ALL[..Op::IOCTLS]).cmd().unwrap_or(0);
        let cmd = match rng.below(6) {
            // A known command, another size.
            0 => {
                let size = (known >> 16) & 0x3fff;
                let other = match rng.below(4) {
                    0 => 0,
                    1 => size - 8,
                    2 => size + 8,
                    _ => rng.below(0x4000) as u32,
                };
                (known & !(0x3fff << 16)) | (other << 16)
            }
            // Another direction.
            1 => (known & !(3 << 30)) | ((rng.below(4) as u32) << 30),
            // An unknown number in zcopy's sub-range (past DMA_READ's
            // 0xcb, up to 0xdf) and the rest of 'Z'.
            2 => (known & !0xff) | (0xcc + rng.below(0x14) as u32),
            3 => (known & !0xff) | rng.below(0x100) as u32,
            // Bare numbers.
            4 => magic | rng.below(0x100) as u32,
            _ => (rng.next_u32() & !0xff00) | magic,
        };
        if !Op::ALL.iter().any(|op| op.cmd() == Some(cmd)) {
            return cmd;
        }
    }
}

/// The symbolic name of an errno.
pub fn errno_name(e: i32) -> String {
    use libc::*;
    let name = match e {
        0 => "ok",
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ENOTTY => "ENOTTY",
        EFBIG => "EFBIG",
        ENOSPC => "ENOSPC",
        ESPIPE => "ESPIPE",
        EROFS => "EROFS",
        EPIPE => "EPIPE",
        ERANGE => "ERANGE",
        EDEADLK => "EDEADLK",
        ENOSYS => "ENOSYS",
        EOVERFLOW => "EOVERFLOW",
        ENOTSOCK => "ENOTSOCK",
        EDESTADDRREQ => "EDESTADDRREQ",
        EMSGSIZE => "EMSGSIZE",
        EPROTOTYPE => "EPROTOTYPE",
        EOPNOTSUPP => "EOPNOTSUPP",
        EAFNOSUPPORT => "EAFNOSUPPORT",
        EADDRINUSE => "EADDRINUSE",
        EADDRNOTAVAIL => "EADDRNOTAVAIL",
        ENETDOWN => "ENETDOWN",
        ENETUNREACH => "ENETUNREACH",
        ECONNABORTED => "ECONNABORTED",
        ECONNRESET => "ECONNRESET",
        ENOBUFS => "ENOBUFS",
        EISCONN => "EISCONN",
        ENOTCONN => "ENOTCONN",
        ETIMEDOUT => "ETIMEDOUT",
        ECONNREFUSED => "ECONNREFUSED",
        EHOSTDOWN => "EHOSTDOWN",
        EHOSTUNREACH => "EHOSTUNREACH",
        EALREADY => "EALREADY",
        EINPROGRESS => "EINPROGRESS",
        ECANCELED => "ECANCELED",
        // Kernel-internal codes that must never reach user space.
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        515 => "ENOIOCTLCMD",
        516 => "ERESTART_RESTARTBLOCK",
        524 => "ENOTSUPP",
        _ => return format!("E{e}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_commands_are_never_abi_commands_and_keep_the_magic() {
        let mut rng = Rng::new(4);
        for _ in 0..100_000 {
            let c = bad_cmd(&mut rng);
            assert!(Op::ALL.iter().all(|op| op.cmd() != Some(c)));
            assert_eq!((c >> 8) & 0xff, u32::from(b'Z'));
        }
    }

    #[test]
    fn documented_errnos_follow_abi_rst() {
        assert!(Op::Register.is_documented(libc::EOVERFLOW));
        assert!(!Op::Register.is_documented(libc::ENOENT));
        assert!(Op::Unregister.is_documented(libc::EFAULT));
        assert!(Op::Send.is_documented(libc::ECONNRESET));
        assert!(!Op::Register.is_documented(libc::ECONNRESET));
        assert!(!Op::Read.is_documented(libc::ENOTTY));
        assert!(!Op::Send.is_documented(512));
        assert!(Op::BadCmd.is_documented(libc::ENOTTY));
        // Direction bits: the ones the module writes back.
        assert!(Op::Register.writes_arg());
        assert!(Op::Version.writes_arg());
        assert!(!Op::Unregister.writes_arg());
        assert!(!Op::Xmit.writes_arg());
        assert!(Op::DmaRead.writes_arg());
        for e in [libc::ENXIO, libc::EOVERFLOW, libc::ETIMEDOUT, libc::EFAULT] {
            assert!(Op::DmaRead.is_documented(e));
        }
        assert!(!Op::DmaRead.is_documented(libc::EBUSY));
        // Every ABI ioctl has a command, and only those.
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.cmd().is_some(), i < Op::IOCTLS, "{op:?}");
        }
    }

    #[test]
    fn expectations_combine() {
        assert!(Expect::ANY.allows(libc::EIO));
        let any = Expect::ANY;
        assert!(!any.must_fail);
        let mut e = Expect::errno(libc::EINVAL);
        assert!(e.allows(libc::EINVAL) && !e.allows(libc::EFAULT));
        e.add(libc::EFAULT);
        assert!(e.allows(libc::EFAULT) && e.must_fail);
        assert_eq!(e.names(), "EFAULT|EINVAL");
        // Maybe-conditions widen a decided set, and do not decide one.
        let mut m = Expect::ANY;
        m.also(libc::ENOENT);
        assert!(m.allows(libc::EIO) && !m.must_fail);
        m.fail_any();
        assert!(m.allows(libc::EIO) && m.must_fail);
        m.add(libc::EINVAL);
        assert!(m.allows(libc::ENOENT) && m.allows(libc::EINVAL) && !m.allows(libc::EIO));
        m.only(libc::EFAULT);
        assert!(!m.allows(libc::EINVAL) && m.allows(libc::EFAULT));
    }
}
