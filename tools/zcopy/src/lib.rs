//! `zcopy`: the user-space side of `/dev/zcopy`.
//!
//! - [`abi`]: the ABI, mirrored from `include/uapi/linux/zcopy.h` and
//!   checked against it by `cargo test`;
//! - [`device`]: opening `/dev/zcopy` and its ioctls, each a safe method.
//!
//! ```no_run
//! let d = zcopy::device::Device::open()?;
//! let buf = vec![0u8; 65536];
//! let region = d.register(&buf, zcopy::abi::ZC_REGISTER_READONLY, 0)?;
//! # let sock = 0;
//! let _sent = d.send(sock, region.id, 0, buf.len() as u64, 1)?;
//! let _records = d.completions(1)?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod abi;
pub mod device;
