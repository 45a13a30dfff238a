// SPDX-License-Identifier: GPL-2.0

//! The ioctl front of `/dev/zcopy`.
//!
//! Thin by design: each command copies its argument in, calls the domain
//! code and copies the result out. Unknown commands, including a known
//! number with the wrong size or direction, are `ENOTTY`; a bad user pointer
//! is `EFAULT`.

use crate::{
    abi,
    context::Context, //
};
use kernel::{
    ioctl::_IOC_SIZE,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// The `ZC_FEAT_*` bits this module implements.
pub(crate) const FEATURES: u64 = 0;

/// Runs one ioctl on `ctx`.
pub(crate) fn dispatch(_ctx: &Context, cmd: u32, arg: usize) -> Result<isize> {
    let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
    match cmd {
        abi::ZC_IOC_VERSION => {
            user.writer().write(&version())?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

/// The reply to `ZC_IOC_VERSION`.
fn version() -> abi::zc_version {
    abi::zc_version {
        abi_version: abi::ZC_ABI_VERSION,
        reserved: 0,
        features: FEATURES,
    }
}
