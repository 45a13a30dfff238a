//! The `/dev/zcopy` ABI, mirrored from `include/uapi/linux/zcopy.h`.
//!
//! The header is the source of truth; the test at the end of this file
//! compiles a C program against it and fails on any difference in layout,
//! constants or ioctl numbers.

pub const ZC_ABI_VERSION: u32 = 1;
pub const ZC_IOC_MAGIC: u8 = b'Z';
pub const ZC_IOC_BASE: u8 = 0xc0;

pub const ZC_FEAT_REGISTER: u64 = 1 << 0;
pub const ZC_FEAT_SEND: u64 = 1 << 1;
pub const ZC_FEAT_SENDFILE: u64 = 1 << 2;

/// The names of the feature bits, for people.
pub const FEATURE_NAMES: &[(u64, &str)] = &[
    (ZC_FEAT_REGISTER, "register"),
    (ZC_FEAT_SEND, "send"),
    (ZC_FEAT_SENDFILE, "sendfile"),
];

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZcVersion {
    pub abi_version: u32,
    pub reserved: u32,
    pub features: u64,
}

const IOC_READ: u32 = 2;
const IOC_WRITE: u32 = 1;

const fn ioc(dir: u32, nr: u8, size: usize) -> u32 {
    // CAST: every argument struct is far below the 14-bit size limit.
    (dir << 30) | ((size as u32) << 16) | ((ZC_IOC_MAGIC as u32) << 8) | nr as u32
}

#[allow(dead_code, reason = "used by the ioctls that write")]
const fn iow<T>(nr: u8) -> u32 {
    ioc(IOC_WRITE, nr, size_of::<T>())
}

const fn ior<T>(nr: u8) -> u32 {
    ioc(IOC_READ, nr, size_of::<T>())
}

pub const ZC_IOC_VERSION: u32 = ior::<ZcVersion>(ZC_IOC_BASE);

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
	P(sizeof(struct zc_version));
	P(offsetof(struct zc_version, abi_version));
	P(offsetof(struct zc_version, reserved));
	P(offsetof(struct zc_version, features));
	P(ZC_IOC_VERSION);
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

    #[test]
    fn mirror_matches_the_c_header() {
        let rust: Vec<(&str, u64)> = vec![
            ("ZC_ABI_VERSION", ZC_ABI_VERSION.into()),
            ("ZC_IOC_MAGIC", ZC_IOC_MAGIC.into()),
            ("ZC_IOC_BASE", ZC_IOC_BASE.into()),
            ("ZC_FEAT_REGISTER", ZC_FEAT_REGISTER),
            ("ZC_FEAT_SEND", ZC_FEAT_SEND),
            ("ZC_FEAT_SENDFILE", ZC_FEAT_SENDFILE),
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
            ("ZC_IOC_VERSION", ZC_IOC_VERSION.into()),
        ];
        let c = from_c_header();
        assert_eq!(c.len(), rust.len());
        for ((cn, cv), (rn, rv)) in c.iter().zip(&rust) {
            assert_eq!(cn, rn);
            assert_eq!(cv, rv, "{cn}: C says {cv:#x}, Rust says {rv:#x}");
        }
    }
}
