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
//! - [`region`]: registered regions, which own
//!   - [`pin`]: long-term pins on user pages,
//!   - [`account`]: their charges to `RLIMIT_MEMLOCK`, `VmPin` and the
//!     module's cap,
//!   - [`dma`]: their mapping for a network device's DMA;
//! - [`send`]: sends of region bytes (through a socket or straight to a
//!   device) and of [`pagecache`] pages (a file's, through a socket), each
//!   ending in a record in
//!   - [`completion`]: the per-context queue `read(2)` drains;
//! - [`netdev`]: finding a device's DMA device, unmapping before it goes;
//! - [`engine`]: the DMA engine (QEMU's `edu` device), a PCI driver that
//!   reads regions through their IOVAs;
//! - [`stats`]: counters, per context and for the module, also in debugfs
//!   (`/sys/kernel/debug/zcopy/stats`).

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    driver,
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    pci,
    prelude::*,
};

mod abi;
mod account;
mod completion;
mod context;
mod dma;
mod engine;
mod helpers;
mod ioctl;
mod netdev;
mod pagecache;
mod pin;
mod region;
mod send;
mod stats;
#[cfg(CONFIG_KUNIT = "y")]
mod testing;

module! {
    type: ZcopyModule,
    name: "zcopy",
    authors: ["The zcopy developers"],
    description: "Zero-copy networking from pinned, IOMMU-mapped user pages",
    license: "GPL",
    params: {
        max_pinned_pages: u64 {
            default: 65536,
            description: "Most pages all regions may pin at once (default 65536: 256 MiB)",
        },
    },
}

/// The module-wide cap on pinned pages.
pub(crate) fn max_pinned_pages() -> u64 {
    module_parameters::max_pinned_pages.value()
}

/// Writes the module's counters as `name value` lines.
fn write_stats(_: &(), f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
    let c = stats::MODULE.to_abi();
    writeln!(f, "open_contexts {}", stats::get(&stats::OPEN_CONTEXTS))?;
    writeln!(f, "regions {}", c.regions)?;
    writeln!(f, "pinned_pages {}", c.pinned_pages)?;
    writeln!(f, "mapped_pages {}", c.mapped_pages)?;
    writeln!(f, "charged_pages {}", account::GlobalCharge::total())?;
    writeln!(f, "max_pinned_pages {}", max_pinned_pages())?;
    writeln!(f, "regions_total {}", c.regions_total)?;
    writeln!(f, "pinned_total {}", c.pinned_total)?;
    writeln!(f, "mapped_total {}", c.mapped_total)?;
    writeln!(f, "sends {}", c.sends)?;
    writeln!(f, "completions {}", c.completions)?;
    writeln!(f, "outstanding {}", c.sends.saturating_sub(c.completions))?;
    writeln!(f, "bytes_zerocopy {}", c.bytes_zerocopy)?;
    writeln!(f, "bytes_copied {}", c.bytes_copied)?;
    writeln!(f, "completions_copied {}", c.completions_copied)?;
    writeln!(f, "cache_hits {}", c.cache_hits)?;
    writeln!(f, "cache_misses {}", c.cache_misses)?;
    writeln!(f, "file_pages_held {}", c.file_pages_held)?;
    #[cfg(zcopy_test_hooks)]
    engine::probe::write(f)?;
    Ok(())
}

/// The module. The send workqueue, the notifier (and the list of mapped
/// regions) and the DMA engine's driver are set up before `/dev/zcopy`
/// appears, since it can be opened as soon as it is registered, and if
/// registering the device fails they are torn down again. The engine is
/// optional: without the device the driver stays unbound and the rest
/// works. At exit no context, hence no region, is left, and
/// no send is in flight (each holds a module reference); the workqueue is
/// drained first, so the last sends' teardown has finished.
#[pin_data]
struct ZcopyModule {
    _sends: send::SendQueue,
    /// Registered after the notifier (its unbind sweeps the notifier's list
    /// of mapped regions), dropped before it.
    #[pin]
    _engine: driver::Registration<pci::Adapter<engine::EduDriver>>,
    _notifier: netdev::Notifier,
    #[pin]
    _miscdev: MiscDeviceRegistration<context::Context>,
    #[pin]
    _stats: File<()>,
    _debugfs: Dir,
}

impl kernel::InPlaceModule for ZcopyModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!(
            "ABI version {}, features {:#x}\n",
            abi::ZC_ABI_VERSION,
            ioctl::FEATURES
        );
        let debugfs = Dir::new(c"zcopy");
        try_pin_init!(Self {
            // SAFETY: Called once, here.
            _sends: unsafe { send::SendQueue::create() }?,
            // SAFETY: Called once, here, before the device can be opened.
            _notifier: unsafe { netdev::Notifier::register() }?,
            _engine <- {
                // SAFETY: Called once, here, before the driver is registered.
                unsafe { engine::init() };
                driver::Registration::new(c"zcopy-edu", module)
            },
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"zcopy" }),
            _stats <- debugfs.read_callback_file(c"stats", (), &write_stats),
            _debugfs: debugfs,
        })
    }
}
