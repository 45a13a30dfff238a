//! File descriptors that are not what a call wants: a pipe, a regular file,
//! one opened write-only or `O_PATH`, a directory, a procfs file, an
//! eventfd, `/dev/null`, a closed number, negative and huge numbers; and
//! the files sends read from.
//!
//! They stay open (and their numbers valid) for the whole run; only the
//! sockets of [`crate::net::Socks`] are replaced while the workers run.

use std::{
    ffi::CString,
    fs, io,
    os::{
        fd::{IntoRawFd, RawFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use crate::{pool, ptrs::page, rng::Rng};

/// What an fd is, as far as the oracles care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A `/dev/zcopy` fd.
    Zcopy,
    /// A socket.
    IpSocket,
    Pipe,
    /// A regular file open for reading (page cache zcopy can fill).
    File,
    /// A regular file open only for writing.
    FileWriteOnly,
    /// An `O_PATH` fd.
    Path,
    Dir,
    /// A procfs file: regular, without a page cache zcopy can fill.
    Proc,
    Eventfd,
    /// A character device other than zcopy.
    DevNull,
    /// A number that was closed (it may be reused meanwhile).
    Closed,
    /// Negative (-1 included, which `ZC_IOC_SET_EVENTFD` takes).
    Negative,
    /// Beyond any open file (above `RLIMIT_NOFILE`).
    Huge,
}

impl FdKind {
    /// Whether it is certainly not an open file.
    pub fn never_open(self) -> bool {
        matches!(self, FdKind::Negative | FdKind::Huge)
    }

    /// Whether it is an open file that is certainly not a socket.
    pub fn open_non_socket(self) -> bool {
        matches!(
            self,
            FdKind::Zcopy
                | FdKind::Pipe
                | FdKind::File
                | FdKind::FileWriteOnly
                | FdKind::Dir
                | FdKind::Proc
                | FdKind::Eventfd
                | FdKind::DevNull
        )
    }
}

/// The files sends and mappings read from, in a directory of the run.
pub struct Files {
    /// Sent by `ZC_IOC_SENDFILE`, truncated and rewritten meanwhile.
    pub send_path: PathBuf,
    /// Mapped by the pool's file slots; never truncated.
    pub map_path: PathBuf,
    /// `send_path` open read-write (for the disturbances).
    pub send_rw: RawFd,
    /// `map_path` open read-write.
    pub map_rw: RawFd,
    /// A memfd: shmem, for the pool and as a tmpfs file to send.
    pub memfd: RawFd,
    /// The send file's size at the start.
    pub send_len: u64,
}

/// A byte pattern for file contents.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

fn open_raw(path: &Path, flags: i32) -> RawFd {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return -1;
    };
    // SAFETY: a valid C string.
    unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) }
}

impl Files {
    /// Creates the files in the first usable directory of `dirs`.
    pub fn create(dirs: &[PathBuf]) -> io::Result<Self> {
        let pid = std::process::id();
        let dir = dirs
            .iter()
            .find(|d| {
                let probe = d.join(format!(".zcopy-fuzz-{pid}"));
                let ok = fs::write(&probe, b"x").is_ok();
                let _ = fs::remove_file(&probe);
                ok
            })
            .ok_or_else(|| io::Error::other("no writable directory for the data files"))?;
        let send_path = dir.join(format!("zcopy-fuzz-{pid}.send"));
        let map_path = dir.join(format!("zcopy-fuzz-{pid}.map"));
        let send_len = (1 << 20) + 123;
        fs::write(&send_path, pattern(send_len, 1))?;
        fs::write(&map_path, pattern(pool::backing_len(), 2))?;
        let send_rw = open_raw(&send_path, libc::O_RDWR);
        let map_rw = open_raw(&map_path, libc::O_RDWR);
        // SAFETY: memfd_create with a valid name.
        let memfd = unsafe { libc::memfd_create(c"zcopy-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
        if send_rw < 0 || map_rw < 0 || memfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let m = pattern(pool::backing_len(), 3);
        // SAFETY: writing our buffer to our memfd.
        if unsafe { libc::pwrite(memfd, m.as_ptr().cast(), m.len(), 0) } != m.len() as isize {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            send_path,
            map_path,
            send_rw,
            map_rw,
            memfd,
            send_len: send_len as u64,
        })
    }

    /// A file disturbance: truncate, extend, rewrite, evict from the page
    /// cache; returns its name.
    pub fn disturb(&self, rng: &mut Rng) -> &'static str {
        let pg = page() as u64;
        let fd = self.send_rw;
        match rng.below(5) {
            0 => {
                let len = rng.pick(&[0, 1, pg - 1, pg + 1, self.send_len / 2]);
                // SAFETY: our fd.
                unsafe { libc::ftruncate(fd, len as i64) };
                "truncate"
            }
            1 => {
                // SAFETY: our fd.
                unsafe { libc::ftruncate(fd, self.send_len as i64) };
                "extend"
            }
            2 => {
                let off = rng.below(self.send_len);
                let b = pattern(rng.range(1, 3 * pg) as usize, rng.next_u32() as u8);
                // SAFETY: writing our buffer to our fd.
                unsafe { libc::pwrite(fd, b.as_ptr().cast(), b.len(), off as i64) };
                "rewrite"
            }
            3 => {
                // SAFETY: our fd. Dirty pages are written, then dropped.
                unsafe {
                    libc::fdatasync(fd);
                    libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
                }
                "evict"
            }
            _ => {
                // SAFETY: our fd.
                unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_WILLNEED) };
                "readahead"
            }
        }
    }

    pub fn remove(&self) {
        let _ = fs::remove_file(&self.send_path);
        let _ = fs::remove_file(&self.map_path);
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for fd in [self.send_rw, self.map_rw, self.memfd] {
            // SAFETY: our fds.
            unsafe { libc::close(fd) };
        }
        self.remove();
    }
}

/// The zoo of wrong (and right) files, all open for the whole run.
pub struct Zoo {
    fds: Vec<(FdKind, RawFd)>,
    owned: Vec<RawFd>,
}

impl Zoo {
    pub fn new(files: &Files) -> Self {
        let mut fds = Vec::new();
        let mut owned = Vec::new();
        let mut add = |kind: FdKind, fd: RawFd| {
            if fd >= 0 {
                fds.push((kind, fd));
                owned.push(fd);
            }
        };
        let mut p = [-1; 2];
        // SAFETY: a valid array of two.
        unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
        add(FdKind::Pipe, p[0]);
        add(FdKind::Pipe, p[1]);
        add(FdKind::File, open_raw(&files.send_path, libc::O_RDONLY));
        add(FdKind::File, open_raw(&files.send_path, libc::O_RDONLY));
        add(FdKind::File, open_raw(&files.map_path, libc::O_RDONLY));
        add(
            FdKind::FileWriteOnly,
            open_raw(&files.send_path, libc::O_WRONLY),
        );
        add(FdKind::Path, open_raw(&files.send_path, libc::O_PATH));
        let dir = files.send_path.parent().unwrap_or(Path::new("/"));
        add(
            FdKind::Dir,
            open_raw(dir, libc::O_RDONLY | libc::O_DIRECTORY),
        );
        add(
            FdKind::Proc,
            open_raw(Path::new("/proc/self/status"), libc::O_RDONLY),
        );
        // SAFETY: eventfd(2).
        add(FdKind::Eventfd, unsafe {
            libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK)
        });
        add(
            FdKind::DevNull,
            open_raw(Path::new("/dev/null"), libc::O_RDWR),
        );
        // A number, then closed.
        let closed = open_raw(Path::new("/dev/null"), libc::O_RDONLY);
        // SAFETY: the fd just opened.
        unsafe { libc::close(closed) };
        fds.push((FdKind::Closed, closed));
        fds.push((FdKind::File, files.memfd));
        for n in [-1, -2, i32::MIN] {
            fds.push((FdKind::Negative, n));
        }
        for n in [i32::MAX, 1 << 24] {
            fds.push((FdKind::Huge, n));
        }
        Self { fds, owned }
    }

    /// Any fd of the zoo.
    pub fn pick(&self, rng: &mut Rng) -> (FdKind, RawFd) {
        rng.pick(&self.fds)
    }

    /// An fd of the zoo of one of `kinds`, if there is one.
    pub fn pick_of(&self, rng: &mut Rng, kinds: &[FdKind]) -> Option<(FdKind, RawFd)> {
        let v: Vec<_> = self.fds.iter().filter(|(k, _)| kinds.contains(k)).collect();
        (!v.is_empty()).then(|| *v[rng.below(v.len() as u64) as usize])
    }

    /// The eventfds.
    pub fn eventfd(&self) -> Option<RawFd> {
        self.fds
            .iter()
            .find(|(k, _)| *k == FdKind::Eventfd)
            .map(|&(_, fd)| fd)
    }

    pub fn close(&mut self) {
        for fd in self.owned.drain(..) {
            // SAFETY: our fds.
            unsafe { libc::close(fd) };
        }
        self.fds.clear();
    }
}

impl Drop for Zoo {
    fn drop(&mut self) {
        self.close();
    }
}

/// The device to fuzz: `/dev/zcopy`, or `$ZCOPY_FUZZ_DEVICE` (to exercise
/// the fuzzer itself without the module, e.g. on `/dev/null`, where every
/// ioctl fails `ENOTTY`).
pub fn device_path() -> PathBuf {
    std::env::var_os("ZCOPY_FUZZ_DEVICE").map_or_else(|| zcopy::device::PATH.into(), PathBuf::from)
}

/// Opens the device, non-blocking or not; the raw fd.
pub fn open_zcopy(nonblock: bool) -> io::Result<RawFd> {
    let mut o = fs::OpenOptions::new();
    o.read(true).write(true);
    if nonblock {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    Ok(o.open(device_path())?.into_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_and_files_are_what_they_say() {
        let dir = std::env::temp_dir();
        let files = Files::create(&[PathBuf::from("/nonexistent/x"), dir]).unwrap();
        assert!(files.send_path.exists());
        let zoo = Zoo::new(&files);
        let mut rng = Rng::new(3);
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        for _ in 0..200 {
            let (k, fd) = zoo.pick(&mut rng);
            // SAFETY: fstat into our struct.
            let r = unsafe { libc::fstat(fd, &mut st) };
            match k {
                FdKind::Negative | FdKind::Huge => assert_eq!(r, -1),
                FdKind::File | FdKind::FileWriteOnly => {
                    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG)
                }
                FdKind::Dir => assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR),
                FdKind::Pipe => assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFIFO),
                _ => {}
            }
        }
        for _ in 0..20 {
            files.disturb(&mut rng);
        }
        assert!(zoo.eventfd().is_some());
        drop(zoo);
        let p = files.send_path.clone();
        drop(files);
        assert!(!p.exists());
    }
}
