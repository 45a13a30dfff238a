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

    /// `ZC_IOC_STATS`.
    pub fn stats(&self) -> Result<abi::ZcStats> {
        let mut st = abi::ZcStats::default();
        // SAFETY: the command writes one `struct zc_stats`.
        unsafe { self.ioctl(abi::ZC_IOC_STATS, &mut st, "ZC_IOC_STATS")? };
        Ok(st)
    }
}
