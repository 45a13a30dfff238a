//! `/dev/zcopy`: opening it and its ioctls.

use std::{
    fs::{File, OpenOptions},
    io,
    os::fd::AsRawFd,
};

use anyhow::{Context, Result};

use crate::abi;

pub const PATH: &str = "/dev/zcopy";

pub struct Device {
    file: File,
}

impl Device {
    pub fn open() -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(PATH)
            .with_context(|| format!("opening {PATH} (is zcopy.ko loaded?)"))?;
        Ok(Self { file })
    }

    /// Runs ioctl `cmd` with `arg`, whose type the command's number names.
    ///
    /// # Safety
    ///
    /// `T` must be the structure `cmd` reads and writes, and any user
    /// pointer inside it must be valid for what the command does with it.
    unsafe fn ioctl<T>(&self, cmd: u32, arg: &mut T, name: &str) -> Result<()> {
        // SAFETY: `arg` is a valid `T` for the duration of the call, and
        // the caller promises `T` is what `cmd` expects.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg as *mut T) };
        if r != 0 {
            return Err(io::Error::last_os_error()).context(name.to_string());
        }
        Ok(())
    }

    /// `ZC_IOC_VERSION`.
    pub fn version(&self) -> Result<abi::ZcVersion> {
        let mut v = abi::ZcVersion::default();
        // SAFETY: the command writes one `struct zc_version`, which
        // `ZcVersion` mirrors (checked against the header in abi.rs).
        unsafe { self.ioctl(abi::ZC_IOC_VERSION, &mut v, "ZC_IOC_VERSION")? };
        Ok(v)
    }

    /// `ZC_IOC_REGISTER` of `buf`, mapped for `ifindex` if non-zero.
    ///
    /// The caller keeps `buf` mapped while the region exists.
    pub fn register(&self, buf: &[u8], flags: u32, ifindex: i32) -> Result<abi::ZcRegister> {
        let mut r = abi::ZcRegister {
            addr: buf.as_ptr() as u64,
            len: buf.len() as u64,
            flags,
            ifindex,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_register`;
        // it pins the pages of `buf`, which it does not write.
        unsafe { self.ioctl(abi::ZC_IOC_REGISTER, &mut r, "ZC_IOC_REGISTER")? };
        Ok(r)
    }

    /// `ZC_IOC_UNREGISTER`.
    pub fn unregister(&self, id: u32) -> Result<()> {
        let mut u = abi::ZcUnregister { id, reserved: 0 };
        // SAFETY: the command reads one `struct zc_unregister`.
        unsafe { self.ioctl(abi::ZC_IOC_UNREGISTER, &mut u, "ZC_IOC_UNREGISTER") }
    }

    /// `ZC_IOC_REGION_INFO` for pages `first..first + n` of region `id`.
    pub fn region_info(
        &self,
        id: u32,
        first: u32,
        n: u32,
    ) -> Result<(abi::ZcRegionInfo, Vec<abi::ZcPageInfo>)> {
        let mut pages = vec![abi::ZcPageInfo::default(); n as usize];
        let mut ri = abi::ZcRegionInfo {
            id,
            first_page: first,
            nr_pages: n,
            pages: pages.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_region_info`
        // and writes at most `n` entries to `pages`, which has room for `n`.
        unsafe { self.ioctl(abi::ZC_IOC_REGION_INFO, &mut ri, "ZC_IOC_REGION_INFO")? };
        pages.truncate(ri.nr_pages as usize);
        Ok((ri, pages))
    }

    /// `ZC_IOC_SEND` of region bytes `[offset, offset + len)` through the
    /// socket `fd`; returns the bytes the socket accepted.
    pub fn send(&self, fd: i32, region: u32, offset: u64, len: u64, tag: u64) -> Result<u64> {
        let mut s = abi::ZcSend {
            fd,
            region,
            offset,
            len,
            tag,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_send`.
        unsafe { self.ioctl(abi::ZC_IOC_SEND, &mut s, "ZC_IOC_SEND")? };
        Ok(s.sent)
    }

    /// `ZC_IOC_SENDFILE` of file bytes `[offset, offset + len)` through the
    /// socket `sock`.
    pub fn sendfile(
        &self,
        sock: i32,
        file: i32,
        offset: u64,
        len: u64,
        tag: u64,
    ) -> Result<abi::ZcSendfile> {
        let mut s = abi::ZcSendfile {
            sock,
            fd: file,
            offset,
            len,
            tag,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_sendfile`.
        unsafe { self.ioctl(abi::ZC_IOC_SENDFILE, &mut s, "ZC_IOC_SENDFILE")? };
        Ok(s)
    }

    /// `ZC_IOC_FILE_PAGES`: page-cache state of `n` pages of `file` from the
    /// page holding `offset`.
    pub fn file_pages(&self, file: i32, offset: u64, n: u32) -> Result<Vec<abi::ZcFilePage>> {
        let mut pages = vec![abi::ZcFilePage::default(); n as usize];
        let mut a = abi::ZcFilePages {
            fd: file,
            nr_pages: n,
            offset,
            pages: pages.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_file_pages`
        // and writes at most `n` entries to `pages`, which has room for `n`.
        unsafe { self.ioctl(abi::ZC_IOC_FILE_PAGES, &mut a, "ZC_IOC_FILE_PAGES")? };
        pages.truncate(a.nr_pages as usize);
        Ok(pages)
    }

    /// Reads completion records, blocking until at least one is ready.
    pub fn completions(&self, max: usize) -> Result<Vec<abi::ZcCompletion>> {
        let mut recs = vec![abi::ZcCompletion::default(); max.max(1)];
        let size = std::mem::size_of::<abi::ZcCompletion>();
        // SAFETY: `recs` has room for `recs.len()` records; the module
        // writes whole records only.
        let n = unsafe {
            libc::read(
                self.file.as_raw_fd(),
                recs.as_mut_ptr().cast(),
                recs.len() * size,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("reading completion records");
        }
        recs.truncate(n as usize / size);
        Ok(recs)
    }

    /// `ZC_IOC_STATS`.
    pub fn stats(&self) -> Result<abi::ZcStats> {
        let mut st = abi::ZcStats::default();
        // SAFETY: the command writes one `struct zc_stats`.
        unsafe { self.ioctl(abi::ZC_IOC_STATS, &mut st, "ZC_IOC_STATS")? };
        Ok(st)
    }
}
