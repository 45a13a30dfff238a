//! `/dev/zcopy`: opening it and its ioctls.

use std::{
    fs::{File, OpenOptions},
    io,
    os::fd::AsRawFd,
};

use anyhow::{ensure, Context, Result};

use crate::abi;

pub const PATH: &str = "/dev/zcopy";

pub struct Device {
    file: File,
}

/// What one [`Device::send_batch`] did.
#[derive(Debug)]
pub struct BatchResult {
    /// Entries that went out, from the first; each has its `sent` filled
    /// in and one completion record to come.
    pub accepted: usize,
    /// The error that refused entry `accepted`, which consumed nothing;
    /// `None` if no entry was refused: all went out, or sending stopped
    /// after an entry accepted short (`sent < len`).
    pub error: Option<io::Error>,
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

    /// `ZC_IOC_SEND_BATCH` of `sends`, 1 to [`abi::ZC_SEND_BATCH_MAX`]
    /// entries, each the argument of one `ZC_IOC_SEND`.
    ///
    /// The entries go out in order until one is refused or accepted short;
    /// the `sent` of each accepted entry is filled in. If the first entry
    /// is refused the call fails with its error, as [`Device::send`] would.
    pub fn send_batch(&self, sends: &mut [abi::ZcSend]) -> Result<BatchResult> {
        let nr = sends.len();
        ensure!(
            (1..=abi::ZC_SEND_BATCH_MAX as usize).contains(&nr),
            "ZC_IOC_SEND_BATCH: {nr} entries, want 1 to {}",
            abi::ZC_SEND_BATCH_MAX
        );
        let mut b = abi::ZcSendBatch {
            sends: sends.as_mut_ptr() as u64,
            // CAST: at most ZC_SEND_BATCH_MAX, checked above.
            nr: nr as u32,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_send_batch`
        // and reads and writes `nr` entries at `sends`, which has `nr`.
        unsafe { self.ioctl(abi::ZC_IOC_SEND_BATCH, &mut b, "ZC_IOC_SEND_BATCH")? };
        ensure!(
            b.accepted as usize <= nr,
            "ZC_IOC_SEND_BATCH: {} of {nr} entries accepted",
            b.accepted
        );
        Ok(BatchResult {
            accepted: b.accepted as usize,
            error: (b.error != 0).then(|| io::Error::from_raw_os_error(b.error)),
        })
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

    /// `ZC_IOC_DMA_READ`: the DMA engine reads `out.len()` bytes of region
    /// `id` from `offset` through the region's IOVAs into `out`; the
    /// transfers it made.
    pub fn dma_read(&self, id: u32, offset: u64, out: &mut [u8]) -> Result<u32> {
        let mut a = abi::ZcDmaRead {
            id,
            len: u32::try_from(out.len())?,
            offset,
            buf: out.as_mut_ptr() as u64,
            ..Default::default()
        };
        // SAFETY: the command reads and writes one `struct zc_dma_read` and
        // writes at most `len` bytes to `buf`, which has `len`.
        unsafe { self.ioctl(abi::ZC_IOC_DMA_READ, &mut a, "ZC_IOC_DMA_READ")? };
        Ok(a.transfers)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Device` over `/dev/null`, which answers every ioctl ENOTTY: what
    /// happens before and around the call, without the module.
    fn null() -> Device {
        Device {
            file: File::open("/dev/null").unwrap(),
        }
    }

    #[test]
    fn send_batch_checks_the_length_first() {
        let d = null();
        let e = d.send_batch(&mut []).unwrap_err();
        assert!(e.to_string().contains("0 entries, want 1 to 64"), "{e}");
        let mut too_many = vec![abi::ZcSend::default(); abi::ZC_SEND_BATCH_MAX as usize + 1];
        let e = d.send_batch(&mut too_many).unwrap_err();
        assert!(e.to_string().contains("65 entries"), "{e}");
        assert!(e.downcast_ref::<io::Error>().is_none());
        // In range, the ioctl is made, and its failure names it.
        let mut most = vec![abi::ZcSend::default(); abi::ZC_SEND_BATCH_MAX as usize];
        for n in [1, most.len()] {
            let e = d.send_batch(&mut most[..n]).unwrap_err();
            assert_eq!(e.to_string(), "ZC_IOC_SEND_BATCH");
            assert_eq!(
                e.downcast_ref::<io::Error>().and_then(|e| e.raw_os_error()),
                Some(libc::ENOTTY)
            );
        }
    }
}
