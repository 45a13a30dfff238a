//! The `/dev/zcopy` ABI, mirrored from `include/uapi/linux/zcopy.h`.
//!
//! The header is the source of truth; the test at the end of this file
//! compiles a C program against it and fails on any difference in layout,
//! constants or ioctl numbers.

pub const ZC_ABI_VERSION: u32 = 5;
pub const ZC_IOC_MAGIC: u8 = b'Z';
pub const ZC_IOC_BASE: u8 = 0xc0;

pub const ZC_FEAT_REGISTER: u64 = 1 << 0;
pub const ZC_FEAT_SEND: u64 = 1 << 1;
pub const ZC_FEAT_SENDFILE: u64 = 1 << 2;
pub const ZC_FEAT_SEND_BATCH: u64 = 1 << 3;
pub const ZC_FEAT_DMA_ENGINE: u64 = 1 << 4;

/// The names of the feature bits, for people.
pub const FEATURE_NAMES: &[(u64, &str)] = &[
    (ZC_FEAT_REGISTER, "register"),
    (ZC_FEAT_SEND, "send"),
    (ZC_FEAT_SENDFILE, "sendfile"),
    (ZC_FEAT_SEND_BATCH, "send-batch"),
    (ZC_FEAT_DMA_ENGINE, "dma-engine"),
];

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcVersion {
    pub abi_version: u32,
    pub reserved: u32,
    pub features: u64,
}

pub const ZC_NR_VERSION: u8 = 0x00;
pub const ZC_NR_REGISTER: u8 = 0x01;
pub const ZC_NR_UNREGISTER: u8 = 0x02;
pub const ZC_NR_REGION_INFO: u8 = 0x03;
pub const ZC_NR_STATS: u8 = 0x04;
pub const ZC_NR_SEND: u8 = 0x05;
pub const ZC_NR_XMIT: u8 = 0x06;
pub const ZC_NR_SET_EVENTFD: u8 = 0x07;
pub const ZC_NR_SENDFILE: u8 = 0x08;
pub const ZC_NR_FILE_PAGES: u8 = 0x09;
pub const ZC_NR_SEND_BATCH: u8 = 0x0a;
pub const ZC_NR_DMA_READ: u8 = 0x0b;

pub const ZC_REGISTER_READONLY: u32 = 1 << 0;
pub const ZC_REGISTER_DMA_ENGINE: u32 = 1 << 1;

pub const ZC_PAGE_DMA_PINNED: u32 = 1 << 0;
pub const ZC_PAGE_MAPPED: u32 = 1 << 1;
pub const ZC_PAGE_LARGE: u32 = 1 << 2;

pub const ZC_REGION_READONLY: u32 = 1 << 0;
pub const ZC_REGION_MAPPED: u32 = 1 << 1;
pub const ZC_REGION_DMA_ENGINE: u32 = 1 << 2;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcRegister {
    pub addr: u64,
    pub len: u64,
    pub flags: u32,
    pub ifindex: i32,
    pub id: u32,
    pub nr_pages: u32,
    pub nr_folios: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcUnregister {
    pub id: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ZcPageInfo {
    pub iova: u64,
    pub refcount: u32,
    pub pincount: u32,
    pub flags: u32,
    pub order: u16,
    pub reserved: u16,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcRegionInfo {
    pub id: u32,
    pub first_page: u32,
    pub nr_pages: u32,
    pub flags: u32,
    pub pages: u64,
    pub addr: u64,
    pub len: u64,
    pub total_pages: u32,
    pub ifindex: i32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ZcCounters {
    pub regions: u64,
    pub pinned_pages: u64,
    pub mapped_pages: u64,
    pub regions_total: u64,
    pub pinned_total: u64,
    pub mapped_total: u64,
    pub sends: u64,
    pub completions: u64,
    pub bytes_zerocopy: u64,
    pub bytes_copied: u64,
    pub completions_copied: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub file_pages_held: u64,
    pub reserved: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ZcStats {
    pub module: ZcCounters,
    pub context: ZcCounters,
    pub max_pinned_pages: u64,
}

pub const ZC_SEND_NONBLOCK: u32 = 1 << 0;
pub const ZC_SEND_MORE: u32 = 1 << 1;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcSend {
    pub fd: i32,
    pub flags: u32,
    pub region: u32,
    pub reserved: u32,
    pub offset: u64,
    pub len: u64,
    pub tag: u64,
    pub sent: u64,
}

pub const ZC_XMIT_MAX_HDR: u32 = 256;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "mirrored for completeness; zcopyctl sends no raw frames"
)]
pub struct ZcXmit {
    pub ifindex: i32,
    pub flags: u32,
    pub region: u32,
    pub hdr_len: u32,
    pub hdr: u64,
    pub offset: u64,
    pub len: u64,
    pub tag: u64,
}

pub const ZC_COMPLETION_COPIED: u32 = 1 << 0;
pub const ZC_COMPLETION_SLOTS: u32 = 1024;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ZcCompletion {
    pub tag: u64,
    pub bytes: u64,
    pub status: i32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcEventfd {
    pub fd: i32,
    pub reserved: u32,
}

pub const ZC_SENDFILE_MAX: u32 = 16 << 20;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcSendfile {
    pub sock: i32,
    pub fd: i32,
    pub flags: u32,
    pub reserved: u32,
    pub offset: u64,
    pub len: u64,
    pub tag: u64,
    pub sent: u64,
    pub pages_cached: u32,
    pub pages_read: u32,
}

pub const ZC_FILE_PAGE_RESIDENT: u32 = 1 << 0;
pub const ZC_FILE_PAGE_UPTODATE: u32 = 1 << 1;
pub const ZC_FILE_PAGE_DIRTY: u32 = 1 << 2;
pub const ZC_FILE_PAGE_WRITEBACK: u32 = 1 << 3;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ZcFilePage {
    pub refcount: u32,
    pub mapcount: u32,
    pub flags: u32,
    pub order: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcFilePages {
    pub fd: i32,
    pub nr_pages: u32,
    pub offset: u64,
    pub pages: u64,
    pub resident: u32,
    pub reserved: u32,
}

pub const ZC_SEND_BATCH_MAX: u32 = 64;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcSendBatch {
    pub sends: u64,
    pub nr: u32,
    pub accepted: u32,
    pub error: i32,
    pub reserved: u32,
}

pub const ZC_DMA_READ_MAX: u32 = 4096;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcDmaRead {
    pub id: u32,
    pub len: u32,
    pub offset: u64,
    pub buf: u64,
    pub transfers: u32,
    pub reserved: u32,
}

const IOC_READ: u32 = 2;
const IOC_WRITE: u32 = 1;

const fn ioc(dir: u32, nr: u8, size: usize) -> u32 {
    // CAST: every argument struct is far below the 14-bit size limit.
    (dir << 30) | ((size as u32) << 16) | ((ZC_IOC_MAGIC as u32) << 8) | nr as u32
}

const fn iow<T>(nr: u8) -> u32 {
    ioc(IOC_WRITE, ZC_IOC_BASE + nr, size_of::<T>())
}

const fn ior<T>(nr: u8) -> u32 {
    ioc(IOC_READ, ZC_IOC_BASE + nr, size_of::<T>())
}

const fn iowr<T>(nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ZC_IOC_BASE + nr, size_of::<T>())
}

pub const ZC_IOC_VERSION: u32 = ior::<ZcVersion>(ZC_NR_VERSION);
pub const ZC_IOC_REGISTER: u32 = iowr::<ZcRegister>(ZC_NR_REGISTER);
pub const ZC_IOC_UNREGISTER: u32 = iow::<ZcUnregister>(ZC_NR_UNREGISTER);
pub const ZC_IOC_REGION_INFO: u32 = iowr::<ZcRegionInfo>(ZC_NR_REGION_INFO);
pub const ZC_IOC_STATS: u32 = ior::<ZcStats>(ZC_NR_STATS);
pub const ZC_IOC_SEND: u32 = iowr::<ZcSend>(ZC_NR_SEND);
#[allow(
    dead_code,
    reason = "mirrored for completeness; zcopyctl sends no raw frames"
)]
pub const ZC_IOC_XMIT: u32 = iow::<ZcXmit>(ZC_NR_XMIT);
pub const ZC_IOC_SET_EVENTFD: u32 = iow::<ZcEventfd>(ZC_NR_SET_EVENTFD);
pub const ZC_IOC_SENDFILE: u32 = iowr::<ZcSendfile>(ZC_NR_SENDFILE);
pub const ZC_IOC_FILE_PAGES: u32 = iowr::<ZcFilePages>(ZC_NR_FILE_PAGES);
pub const ZC_IOC_SEND_BATCH: u32 = iowr::<ZcSendBatch>(ZC_NR_SEND_BATCH);
pub const ZC_IOC_DMA_READ: u32 = iowr::<ZcDmaRead>(ZC_NR_DMA_READ);

#[cfg(test)]
mod tests {
    use super::*;
    use std::{mem::offset_of, path::Path, process::Command};

    /// Compiles and runs a C program that prints what the header says,
    /// one `name value` line each.
    fn from_c_header() -> Vec<(String, u64)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(format!("zcopy-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("abi.c");
        let exe = dir.join("abi");
        std::fs::write(
            &src,
            r#"
#include <stddef.h>
#include <stdio.h>
#include <linux/zcopy.h>
#define P(x) printf(#x " %llu\n", (unsigned long long)(x))
int main(void)
{
	P(ZC_ABI_VERSION); P(ZC_IOC_MAGIC); P(ZC_IOC_BASE);
	P(ZC_FEAT_REGISTER); P(ZC_FEAT_SEND); P(ZC_FEAT_SENDFILE);
	P(ZC_NR_VERSION); P(ZC_NR_REGISTER); P(ZC_NR_UNREGISTER);
	P(ZC_NR_REGION_INFO); P(ZC_NR_STATS);
	P(ZC_NR_SEND); P(ZC_NR_XMIT); P(ZC_NR_SET_EVENTFD);
	P(ZC_REGISTER_READONLY); P(ZC_PAGE_DMA_PINNED); P(ZC_PAGE_MAPPED);
	P(ZC_PAGE_LARGE); P(ZC_REGION_READONLY); P(ZC_REGION_MAPPED);
	P(sizeof(struct zc_version));
	P(offsetof(struct zc_version, abi_version));
	P(offsetof(struct zc_version, reserved));
	P(offsetof(struct zc_version, features));
	P(sizeof(struct zc_register));
	P(offsetof(struct zc_register, len)); P(offsetof(struct zc_register, flags));
	P(offsetof(struct zc_register, ifindex)); P(offsetof(struct zc_register, id));
	P(offsetof(struct zc_register, nr_pages)); P(offsetof(struct zc_register, nr_folios));
	P(offsetof(struct zc_register, reserved));
	P(sizeof(struct zc_unregister)); P(offsetof(struct zc_unregister, reserved));
	P(sizeof(struct zc_page_info));
	P(offsetof(struct zc_page_info, refcount)); P(offsetof(struct zc_page_info, pincount));
	P(offsetof(struct zc_page_info, flags)); P(offsetof(struct zc_page_info, order));
	P(offsetof(struct zc_page_info, reserved));
	P(sizeof(struct zc_region_info));
	P(offsetof(struct zc_region_info, first_page)); P(offsetof(struct zc_region_info, nr_pages));
	P(offsetof(struct zc_region_info, flags)); P(offsetof(struct zc_region_info, pages));
	P(offsetof(struct zc_region_info, addr)); P(offsetof(struct zc_region_info, len));
	P(offsetof(struct zc_region_info, total_pages));
	P(offsetof(struct zc_region_info, ifindex));
	P(sizeof(struct zc_counters)); P(offsetof(struct zc_counters, mapped_total));
	P(sizeof(struct zc_stats)); P(offsetof(struct zc_stats, context));
	P(offsetof(struct zc_stats, max_pinned_pages));
	P(ZC_IOC_VERSION); P(ZC_IOC_REGISTER); P(ZC_IOC_UNREGISTER);
	P(ZC_IOC_REGION_INFO); P(ZC_IOC_STATS);
	P(ZC_SEND_NONBLOCK); P(ZC_SEND_MORE); P(ZC_XMIT_MAX_HDR);
	P(ZC_COMPLETION_COPIED); P(ZC_COMPLETION_SLOTS);
	P(offsetof(struct zc_counters, sends)); P(offsetof(struct zc_counters, reserved));
	P(sizeof(struct zc_send)); P(offsetof(struct zc_send, flags));
	P(offsetof(struct zc_send, region)); P(offsetof(struct zc_send, offset));
	P(offsetof(struct zc_send, len)); P(offsetof(struct zc_send, tag));
	P(offsetof(struct zc_send, sent));
	P(sizeof(struct zc_xmit)); P(offsetof(struct zc_xmit, region));
	P(offsetof(struct zc_xmit, hdr_len)); P(offsetof(struct zc_xmit, hdr));
	P(offsetof(struct zc_xmit, offset)); P(offsetof(struct zc_xmit, len));
	P(offsetof(struct zc_xmit, tag));
	P(sizeof(struct zc_completion)); P(offsetof(struct zc_completion, bytes));
	P(offsetof(struct zc_completion, status)); P(offsetof(struct zc_completion, flags));
	P(sizeof(struct zc_eventfd)); P(offsetof(struct zc_eventfd, reserved));
	P(ZC_IOC_SEND); P(ZC_IOC_XMIT); P(ZC_IOC_SET_EVENTFD);
	P(ZC_NR_SENDFILE); P(ZC_NR_FILE_PAGES); P(ZC_SENDFILE_MAX);
	P(offsetof(struct zc_counters, cache_hits)); P(offsetof(struct zc_counters, file_pages_held));
	P(sizeof(struct zc_sendfile)); P(offsetof(struct zc_sendfile, fd));
	P(offsetof(struct zc_sendfile, flags)); P(offsetof(struct zc_sendfile, offset));
	P(offsetof(struct zc_sendfile, len)); P(offsetof(struct zc_sendfile, tag));
	P(offsetof(struct zc_sendfile, sent)); P(offsetof(struct zc_sendfile, pages_cached));
	P(offsetof(struct zc_sendfile, pages_read));
	P(ZC_FILE_PAGE_RESIDENT); P(ZC_FILE_PAGE_UPTODATE); P(ZC_FILE_PAGE_DIRTY);
	P(ZC_FILE_PAGE_WRITEBACK);
	P(sizeof(struct zc_file_page)); P(offsetof(struct zc_file_page, mapcount));
	P(offsetof(struct zc_file_page, flags)); P(offsetof(struct zc_file_page, order));
	P(sizeof(struct zc_file_pages)); P(offsetof(struct zc_file_pages, nr_pages));
	P(offsetof(struct zc_file_pages, offset)); P(offsetof(struct zc_file_pages, pages));
	P(offsetof(struct zc_file_pages, resident)); P(offsetof(struct zc_file_pages, reserved));
	P(ZC_IOC_SENDFILE); P(ZC_IOC_FILE_PAGES);
	P(ZC_FEAT_SEND_BATCH); P(ZC_NR_SEND_BATCH); P(ZC_SEND_BATCH_MAX);
	P(sizeof(struct zc_send_batch)); P(offsetof(struct zc_send_batch, sends));
	P(offsetof(struct zc_send_batch, nr)); P(offsetof(struct zc_send_batch, accepted));
	P(offsetof(struct zc_send_batch, error)); P(offsetof(struct zc_send_batch, reserved));
	P(ZC_IOC_SEND_BATCH);
	P(ZC_FEAT_DMA_ENGINE); P(ZC_NR_DMA_READ); P(ZC_DMA_READ_MAX);
	P(ZC_REGISTER_DMA_ENGINE); P(ZC_REGION_DMA_ENGINE);
	P(sizeof(struct zc_dma_read)); P(offsetof(struct zc_dma_read, id));
	P(offsetof(struct zc_dma_read, len)); P(offsetof(struct zc_dma_read, offset));
	P(offsetof(struct zc_dma_read, buf)); P(offsetof(struct zc_dma_read, transfers));
	P(offsetof(struct zc_dma_read, reserved)); P(ZC_IOC_DMA_READ);
	return 0;
}
"#,
        )
        .unwrap();
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let status = Command::new(cc)
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(root.join("include/uapi"))
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("a C compiler");
        assert!(status.success(), "the C header does not compile");
        let out = Command::new(&exe).output().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect()
    }

    /// `("offsetof(struct c, field)", Rust offset)`.
    macro_rules! off {
        ($rust:ident, $c:ident, $field:ident) => {
            (
                concat!(
                    "offsetof(struct ",
                    stringify!($c),
                    ", ",
                    stringify!($field),
                    ")"
                ),
                offset_of!($rust, $field) as u64,
            )
        };
    }

    #[test]
    fn mirror_matches_the_c_header() {
        let rust: Vec<(&str, u64)> = vec![
            ("ZC_ABI_VERSION", ZC_ABI_VERSION.into()),
            ("ZC_IOC_MAGIC", ZC_IOC_MAGIC.into()),
            ("ZC_IOC_BASE", ZC_IOC_BASE.into()),
            ("ZC_FEAT_REGISTER", ZC_FEAT_REGISTER),
            ("ZC_FEAT_SEND", ZC_FEAT_SEND),
            ("ZC_FEAT_SENDFILE", ZC_FEAT_SENDFILE),
            ("ZC_NR_VERSION", ZC_NR_VERSION.into()),
            ("ZC_NR_REGISTER", ZC_NR_REGISTER.into()),
            ("ZC_NR_UNREGISTER", ZC_NR_UNREGISTER.into()),
            ("ZC_NR_REGION_INFO", ZC_NR_REGION_INFO.into()),
            ("ZC_NR_STATS", ZC_NR_STATS.into()),
            ("ZC_NR_SEND", ZC_NR_SEND.into()),
            ("ZC_NR_XMIT", ZC_NR_XMIT.into()),
            ("ZC_NR_SET_EVENTFD", ZC_NR_SET_EVENTFD.into()),
            ("ZC_REGISTER_READONLY", ZC_REGISTER_READONLY.into()),
            ("ZC_PAGE_DMA_PINNED", ZC_PAGE_DMA_PINNED.into()),
            ("ZC_PAGE_MAPPED", ZC_PAGE_MAPPED.into()),
            ("ZC_PAGE_LARGE", ZC_PAGE_LARGE.into()),
            ("ZC_REGION_READONLY", ZC_REGION_READONLY.into()),
            ("ZC_REGION_MAPPED", ZC_REGION_MAPPED.into()),
            ("sizeof(struct zc_version)", size_of::<ZcVersion>() as u64),
            (
                "offsetof(struct zc_version, abi_version)",
                offset_of!(ZcVersion, abi_version) as u64,
            ),
            (
                "offsetof(struct zc_version, reserved)",
                offset_of!(ZcVersion, reserved) as u64,
            ),
            (
                "offsetof(struct zc_version, features)",
                offset_of!(ZcVersion, features) as u64,
            ),
            ("sizeof(struct zc_register)", size_of::<ZcRegister>() as u64),
            off!(ZcRegister, zc_register, len),
            off!(ZcRegister, zc_register, flags),
            off!(ZcRegister, zc_register, ifindex),
            off!(ZcRegister, zc_register, id),
            off!(ZcRegister, zc_register, nr_pages),
            off!(ZcRegister, zc_register, nr_folios),
            off!(ZcRegister, zc_register, reserved),
            (
                "sizeof(struct zc_unregister)",
                size_of::<ZcUnregister>() as u64,
            ),
            off!(ZcUnregister, zc_unregister, reserved),
            (
                "sizeof(struct zc_page_info)",
                size_of::<ZcPageInfo>() as u64,
            ),
            off!(ZcPageInfo, zc_page_info, refcount),
            off!(ZcPageInfo, zc_page_info, pincount),
            off!(ZcPageInfo, zc_page_info, flags),
            off!(ZcPageInfo, zc_page_info, order),
            off!(ZcPageInfo, zc_page_info, reserved),
            (
                "sizeof(struct zc_region_info)",
                size_of::<ZcRegionInfo>() as u64,
            ),
            off!(ZcRegionInfo, zc_region_info, first_page),
            off!(ZcRegionInfo, zc_region_info, nr_pages),
            off!(ZcRegionInfo, zc_region_info, flags),
            off!(ZcRegionInfo, zc_region_info, pages),
            off!(ZcRegionInfo, zc_region_info, addr),
            off!(ZcRegionInfo, zc_region_info, len),
            off!(ZcRegionInfo, zc_region_info, total_pages),
            off!(ZcRegionInfo, zc_region_info, ifindex),
            ("sizeof(struct zc_counters)", size_of::<ZcCounters>() as u64),
            off!(ZcCounters, zc_counters, mapped_total),
            ("sizeof(struct zc_stats)", size_of::<ZcStats>() as u64),
            off!(ZcStats, zc_stats, context),
            off!(ZcStats, zc_stats, max_pinned_pages),
            ("ZC_IOC_VERSION", ZC_IOC_VERSION.into()),
            ("ZC_IOC_REGISTER", ZC_IOC_REGISTER.into()),
            ("ZC_IOC_UNREGISTER", ZC_IOC_UNREGISTER.into()),
            ("ZC_IOC_REGION_INFO", ZC_IOC_REGION_INFO.into()),
            ("ZC_IOC_STATS", ZC_IOC_STATS.into()),
            ("ZC_SEND_NONBLOCK", ZC_SEND_NONBLOCK.into()),
            ("ZC_SEND_MORE", ZC_SEND_MORE.into()),
            ("ZC_XMIT_MAX_HDR", ZC_XMIT_MAX_HDR.into()),
            ("ZC_COMPLETION_COPIED", ZC_COMPLETION_COPIED.into()),
            ("ZC_COMPLETION_SLOTS", ZC_COMPLETION_SLOTS.into()),
            off!(ZcCounters, zc_counters, sends),
            off!(ZcCounters, zc_counters, reserved),
            ("sizeof(struct zc_send)", size_of::<ZcSend>() as u64),
            off!(ZcSend, zc_send, flags),
            off!(ZcSend, zc_send, region),
            off!(ZcSend, zc_send, offset),
            off!(ZcSend, zc_send, len),
            off!(ZcSend, zc_send, tag),
            off!(ZcSend, zc_send, sent),
            ("sizeof(struct zc_xmit)", size_of::<ZcXmit>() as u64),
            off!(ZcXmit, zc_xmit, region),
            off!(ZcXmit, zc_xmit, hdr_len),
            off!(ZcXmit, zc_xmit, hdr),
            off!(ZcXmit, zc_xmit, offset),
            off!(ZcXmit, zc_xmit, len),
            off!(ZcXmit, zc_xmit, tag),
            (
                "sizeof(struct zc_completion)",
                size_of::<ZcCompletion>() as u64,
            ),
            off!(ZcCompletion, zc_completion, bytes),
            off!(ZcCompletion, zc_completion, status),
            off!(ZcCompletion, zc_completion, flags),
            ("sizeof(struct zc_eventfd)", size_of::<ZcEventfd>() as u64),
            off!(ZcEventfd, zc_eventfd, reserved),
            ("ZC_IOC_SEND", ZC_IOC_SEND.into()),
            ("ZC_IOC_XMIT", ZC_IOC_XMIT.into()),
            ("ZC_IOC_SET_EVENTFD", ZC_IOC_SET_EVENTFD.into()),
            ("ZC_NR_SENDFILE", ZC_NR_SENDFILE.into()),
            ("ZC_NR_FILE_PAGES", ZC_NR_FILE_PAGES.into()),
            ("ZC_SENDFILE_MAX", ZC_SENDFILE_MAX.into()),
            off!(ZcCounters, zc_counters, cache_hits),
            off!(ZcCounters, zc_counters, file_pages_held),
            ("sizeof(struct zc_sendfile)", size_of::<ZcSendfile>() as u64),
            off!(ZcSendfile, zc_sendfile, fd),
            off!(ZcSendfile, zc_sendfile, flags),
            off!(ZcSendfile, zc_sendfile, offset),
            off!(ZcSendfile, zc_sendfile, len),
            off!(ZcSendfile, zc_sendfile, tag),
            off!(ZcSendfile, zc_sendfile, sent),
            off!(ZcSendfile, zc_sendfile, pages_cached),
            off!(ZcSendfile, zc_sendfile, pages_read),
            ("ZC_FILE_PAGE_RESIDENT", ZC_FILE_PAGE_RESIDENT.into()),
            ("ZC_FILE_PAGE_UPTODATE", ZC_FILE_PAGE_UPTODATE.into()),
            ("ZC_FILE_PAGE_DIRTY", ZC_FILE_PAGE_DIRTY.into()),
            ("ZC_FILE_PAGE_WRITEBACK", ZC_FILE_PAGE_WRITEBACK.into()),
            (
                "sizeof(struct zc_file_page)",
                size_of::<ZcFilePage>() as u64,
            ),
            off!(ZcFilePage, zc_file_page, mapcount),
            off!(ZcFilePage, zc_file_page, flags),
            off!(ZcFilePage, zc_file_page, order),
            (
                "sizeof(struct zc_file_pages)",
                size_of::<ZcFilePages>() as u64,
            ),
            off!(ZcFilePages, zc_file_pages, nr_pages),
            off!(ZcFilePages, zc_file_pages, offset),
            off!(ZcFilePages, zc_file_pages, pages),
            off!(ZcFilePages, zc_file_pages, resident),
            off!(ZcFilePages, zc_file_pages, reserved),
            ("ZC_IOC_SENDFILE", ZC_IOC_SENDFILE.into()),
            ("ZC_IOC_FILE_PAGES", ZC_IOC_FILE_PAGES.into()),
            ("ZC_FEAT_SEND_BATCH", ZC_FEAT_SEND_BATCH),
            ("ZC_NR_SEND_BATCH", ZC_NR_SEND_BATCH.into()),
            ("ZC_SEND_BATCH_MAX", ZC_SEND_BATCH_MAX.into()),
            (
                "sizeof(struct zc_send_batch)",
                size_of::<ZcSendBatch>() as u64,
            ),
            off!(ZcSendBatch, zc_send_batch, sends),
            off!(ZcSendBatch, zc_send_batch, nr),
            off!(ZcSendBatch, zc_send_batch, accepted),
            off!(ZcSendBatch, zc_send_batch, error),
            off!(ZcSendBatch, zc_send_batch, reserved),
            ("ZC_IOC_SEND_BATCH", ZC_IOC_SEND_BATCH.into()),
            ("ZC_FEAT_DMA_ENGINE", ZC_FEAT_DMA_ENGINE),
            ("ZC_NR_DMA_READ", ZC_NR_DMA_READ.into()),
            ("ZC_DMA_READ_MAX", ZC_DMA_READ_MAX.into()),
            ("ZC_REGISTER_DMA_ENGINE", ZC_REGISTER_DMA_ENGINE.into()),
            ("ZC_REGION_DMA_ENGINE", ZC_REGION_DMA_ENGINE.into()),
            ("sizeof(struct zc_dma_read)", size_of::<ZcDmaRead>() as u64),
            off!(ZcDmaRead, zc_dma_read, id),
            off!(ZcDmaRead, zc_dma_read, len),
            off!(ZcDmaRead, zc_dma_read, offset),
            off!(ZcDmaRead, zc_dma_read, buf),
            off!(ZcDmaRead, zc_dma_read, transfers),
            off!(ZcDmaRead, zc_dma_read, reserved),
            ("ZC_IOC_DMA_READ", ZC_IOC_DMA_READ.into()),
        ];
        let c = from_c_header();
        assert_eq!(c.len(), rust.len());
        for ((cn, cv), (rn, rv)) in c.iter().zip(&rust) {
            assert_eq!(cn, rn);
            assert_eq!(cv, rv, "{cn}: C says {cv:#x}, Rust says {rv:#x}");
        }
    }
}
