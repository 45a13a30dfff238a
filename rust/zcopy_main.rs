// SPDX-License-Identifier: GPL-2.0

//! zcopy: zero-copy networking from pinned, IOMMU-mapped user pages.
//!
//! The crate root: module registration and the map of the crate. Each file is
//! one concept:
//!
//! - [`abi`]: the ABI of `/dev/zcopy`, generated from
//!   [`include/uapi/linux/zcopy.h`](../include/uapi/linux/zcopy.h);
//! - [`helpers`]: bindings to the C helpers in `rust/helpers.c`;
//! - [`context`]: the per-open context behind each file descriptor;
//! - [`ioctl`]: the ioctl front, which copies arguments in, calls the domain
//!   code and copies results out;
//! - [`stats`]: module-wide counters.

use kernel::{
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
};

mod abi;
mod context;
mod helpers;
mod ioctl;
mod stats;

module! {
    type: ZcopyModule,
    name: "zcopy",
    authors: ["The zcopy developers"],
    description: "Zero-copy networking from pinned, IOMMU-mapped user pages",
    license: "GPL",
}

#[pin_data]
struct ZcopyModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<context::Context>,
}

impl kernel::InPlaceModule for ZcopyModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!(
            "ABI version {}, features {:#x}\n",
            abi::ZC_ABI_VERSION,
            ioctl::FEATURES
        );
        try_pin_init!(Self {
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"zcopy" }),
        })
    }
}
