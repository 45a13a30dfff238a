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

    /// `ZC_IOC_VERSION`.
    pub fn version(&self) -> Result<abi::ZcVersion> {
        let mut v = abi::ZcVersion::default();
        // SAFETY: ZC_IOC_VERSION writes exactly one `struct zc_version`,
        // which `ZcVersion` mirrors (checked against the header in abi.rs).
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                abi::ZC_IOC_VERSION as _,
                &mut v as *mut abi::ZcVersion,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error()).context("ZC_IOC_VERSION");
        }
        Ok(v)
    }
}
