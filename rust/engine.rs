// SPDX-License-Identifier: GPL-2.0

//! The DMA engine: QEMU's `edu` PCI device (1234:11e8), a device whose DMA
//! we control, so that a region's IOVAs are really read by a device.
//!
//! Device model: `hw/misc/edu.c` in QEMU, `docs/specs/edu.rst`. BAR0 holds
//! the DMA registers (source, destination, count, command, 8 bytes each,
//! written here 4 bytes at a time: the kernel crate maps a BAR for 32-bit
//! access, and a 4-byte write sets the whole register);
//! the device has a 4 KiB buffer at device address [`BUF_ADDR`]. A transfer
//! copies between that buffer and a bus address (an IOVA: the device sits
//! behind the IOMMU like the NICs), and takes 100 ms of the device's
//! clock. Its DMA mask is 28 bits.
//!
//! The engine reads region bytes through the region's IOVAs into its buffer
//! and then writes its buffer into a coherent bounce buffer of ours, whose
//! bytes go back to user space: what a device sees of the pinned pages, not
//! what the CPU sees.
//!
//! Completion is polled (the command register's run bit clears when a
//! transfer ends), with a timeout: a device that never completes wedges the
//! engine (`EIO` from then on) instead of hanging its callers. The device
//! can also raise an interrupt at the end of a transfer; the kernel crate's
//! IRQ registration borrows the vector allocation it came from, which the
//! driver data cannot hold next to it, and a transfer of this device lasts
//! a fixed 100 ms, so a sleeping poll costs nothing an interrupt would save.
//!
//! There is at most one engine. It is published in [`ENGINE`] while bound;
//! regions mapped for it are listed with the NICs' in `netdev::MAPPED`, and
//! unbinding unmaps them (as unregistering a NIC does) before the device
//! goes.
//!
//! Lock order: `netdev::MAPPED`, then a region's mapping lock, then
//! [`Engine::state`]. [`ENGINE`] is never held while taking another lock.

use crate::{
    netdev,
    pin::PageState, //
};
use kernel::{
    bindings,
    device::{
        self,
        Core, //
    },
    dma::{
        self,
        Coherent,
        DmaMask, //
    },
    io::{
        poll::read_poll_timeout,
        Io, //
    },
    new_mutex, pci,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex},
    time::Delta,
};

/// PCI vendor id QEMU gives its own test devices (not assigned by the
/// PCI-SIG, so the kernel crate has no constant for it).
const EDU_VENDOR: u16 = 0x1234;
const EDU_DEVICE: u32 = 0x11e8;
// SAFETY: `pci::Vendor` is a transparent `u16` and any value is a vendor
// id; 0x1234 is the one QEMU's test devices carry.
const EDU_VENDOR_ID: pci::Vendor = unsafe { core::mem::transmute::<u16, pci::Vendor>(EDU_VENDOR) };

/// Identification register: `0xRRrr00ed`, major and minor version.
const REG_ID: usize = 0x00;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_CNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;
/// The registers we use end here; the BAR is larger.
const BAR_SIZE: usize = 0xa0;

const CMD_RUN: u32 = 1 << 0;
/// Direction bit: set, the device buffer is written to RAM; clear, RAM is
/// read into the device buffer.
const CMD_TO_RAM: u32 = 1 << 1;

/// The device's buffer: device address and size.
pub(crate) const BUF_ADDR: u32 = 0x40000;
pub(crate) const BUF_SIZE: usize = 4096;
/// The bytes of it one transfer may use: QEMU 7.2's model refuses a
/// transfer that ends exactly at the buffer's end (its range check is off
/// by one, fixed in 8.2.1) with `hw_error`, which aborts the machine.
pub(crate) const BUF_USABLE: usize = BUF_SIZE - 1;

/// The device's DMA mask (QEMU's default `dma_mask` property).
const DMA_BITS: u32 = 28;

/// How long a transfer may take (the model's is 100 ms).
const TIMEOUT: Delta = Delta::from_secs(5);
const POLL: Delta = Delta::from_millis(5);

type Bar = pci::DevresBar<BAR_SIZE>;

/// One DMA transfer between the device buffer and a bus address.
///
/// # Invariants
///
/// `[buf_off, buf_off + len)` lies inside the usable part of the device
/// buffer ([`BUF_USABLE`]) and `len > 0`: QEMU aborts on a transfer that
/// leaves it (or is empty). `bus` fits the 32-bit registers (the DMA mask is narrower).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Transfer {
    bus: u32,
    buf_off: usize,
    len: usize,
    to_ram: bool,
}

impl Transfer {
    /// RAM at bus address `bus` into the device buffer at `buf_off`.
    pub(crate) fn from_ram(bus: u64, buf_off: usize, len: usize) -> Result<Self> {
        Self::new(bus, buf_off, len, false)
    }

    /// The device buffer at `buf_off` into RAM at bus address `bus`.
    pub(crate) fn to_ram(bus: u64, buf_off: usize, len: usize) -> Result<Self> {
        Self::new(bus, buf_off, len, true)
    }

    fn new(bus: u64, buf_off: usize, len: usize, to_ram: bool) -> Result<Self> {
        let end = buf_off.checked_add(len).ok_or(EINVAL)?;
        if len == 0 || end > BUF_USABLE {
            return Err(EINVAL);
        }
        let bus = u32::try_from(bus).map_err(|_| EINVAL)?;
        // INVARIANT: checked just above.
        Ok(Self {
            bus,
            buf_off,
            len,
            to_ram,
        })
    }

    /// The register writes that start it, in order (the command last).
    pub(crate) fn program(&self) -> [(usize, u32); 4] {
        // CAST: `buf_off < BUF_SIZE` and `len <= BUF_SIZE` (invariant).
        let dev = BUF_ADDR + self.buf_off as u32;
        let (src, dst) = if self.to_ram {
            (dev, self.bus)
        } else {
            (self.bus, dev)
        };
        let dir = if self.to_ram { CMD_TO_RAM } else { 0 };
        [
            (REG_DMA_SRC, src),
            (REG_DMA_DST, dst),
            (REG_DMA_CNT, self.len as u32),
            (REG_DMA_CMD, CMD_RUN | dir),
        ]
    }
}

/// Waits, sleeping, until `read_cmd` shows the run bit clear:
/// `ETIMEDOUT` after `timeout`, or the error `read_cmd` returns.
pub(crate) fn wait_done(
    read_cmd: impl FnMut() -> Result<u32>,
    poll: Delta,
    timeout: Delta,
) -> Result {
    read_poll_timeout(read_cmd, |cmd: &u32| cmd & CMD_RUN == 0, poll, timeout).map(|_| ())
}

/// What the engine's lock protects.
struct State {
    /// The device is being unbound: no more transfers.
    gone: bool,
    /// A transfer did not complete: the device's state is unknown.
    wedged: bool,
}

/// The bound engine.
///
/// # Invariants
///
/// - `bounce` was allocated for `dev` and is only accessed by the CPU or
///   the device while `state` is locked.
/// - `dev` has a DMA mask of [`DMA_BITS`].
#[pin_data]
pub(crate) struct Engine {
    dev: ARef<device::Device>,
    bar: Bar,
    bounce: Coherent<[u8; BUF_SIZE]>,
    #[pin]
    state: Mutex<State>,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised in the module initialiser, before the driver is
    // registered.
    pub(crate) unsafe(uninit) static ENGINE: Mutex<Option<Arc<Engine>>> = None;
}

/// Initialises [`ENGINE`].
///
/// # Safety
///
/// Called once, from the module initialiser, before the driver is
/// registered.
pub(crate) unsafe fn init() {
    // SAFETY: Called once, before anything uses the lock (contract).
    unsafe { ENGINE.init() };
}

/// The bound engine: `ENODEV` without one.
pub(crate) fn get() -> Result<Arc<Engine>> {
    ENGINE.lock().clone().ok_or(ENODEV)
}

impl Engine {
    fn probe(pdev: &pci::Device<Core<'_>>) -> Result<Arc<Self>> {
        pdev.enable_device_mem()?;
        pdev.set_master();
        // SAFETY: Nothing allocates or maps for this device yet: it is
        // being probed.
        unsafe { dma::Device::dma_set_mask_and_coherent(pdev, DmaMask::new::<DMA_BITS>())? };
        let bar = pdev.iomap_region_sized::<BAR_SIZE>(0, c"zcopy-edu")?;
        let id = bar.read32(REG_ID);
        if id & 0xff != 0xed {
            dev_err!(pdev, "not an edu device (id {:#x})\n", id);
            return Err(ENODEV);
        }
        // The model has no reset: a transfer started before a reload may
        // still be running.
        wait_done(|| Ok(bar.read32(REG_DMA_CMD)), POLL, TIMEOUT)?;
        let bar = bar.into_devres()?;
        let dev: &device::Device<device::Bound> = pdev.as_ref();
        let bounce = Coherent::<[u8; BUF_SIZE]>::zeroed(dev, GFP_KERNEL)?;
        dev_info!(
            pdev,
            "DMA engine: edu {}.{}, {} byte buffer, {}-bit DMA\n",
            id >> 24,
            (id >> 16) & 0xff,
            BUF_SIZE,
            DMA_BITS
        );
        Arc::pin_init(
            try_pin_init!(Self {
                dev: ARef::from(dev),
                bar,
                bounce,
                state <- new_mutex!(State {
                    gone: false,
                    wedged: false
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The device that does the engine's DMA, referenced.
    pub(crate) fn device(&self) -> ARef<device::Device> {
        self.dev.clone()
    }

    /// The device as a key comparable with a mapping's.
    pub(crate) fn key(&self) -> *mut c_void {
        raw_device(&self.dev).cast()
    }

    /// Runs `f` (which maps memory for the engine) under the engine's lock,
    /// so that no IOVA is allocated for it while a test probe reads a
    /// stale one.
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let _st = self.state.lock();
        f()
    }

    /// Whether the engine still takes work (false once unbinding began).
    pub(crate) fn present(&self) -> bool {
        !self.state.lock().gone
    }

    /// Runs one transfer and waits for it; the caller holds `state`.
    fn run(&self, st: &mut State, t: &Transfer) -> Result {
        if st.gone {
            return Err(ENODEV);
        }
        if st.wedged {
            return Err(EIO);
        }
        {
            let bar = self.bar.try_access().ok_or(ENODEV)?;
            for (reg, val) in t.program() {
                bar.try_write32(val, reg)?;
            }
        }
        let read_cmd = || {
            let bar = self.bar.try_access().ok_or(ENODEV)?;
            Ok(bar.read32(REG_DMA_CMD))
        };
        if let Err(e) = wait_done(read_cmd, POLL, TIMEOUT) {
            if e == ETIMEDOUT {
                st.wedged = true;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Reads bytes through the bus addresses of `chunks` (each a `(bus
    /// address, bytes)` run, in order) into `out`, which they fill exactly;
    /// the number of transfers from RAM it made. A read larger than the
    /// usable buffer takes several rounds (fill the buffer, write it out).
    pub(crate) fn read(&self, chunks: &[(u64, usize)], out: &mut [u8]) -> Result<u32> {
        if chunks.iter().map(|c| c.1).sum::<usize>() != out.len() {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let (mut at, mut done, mut transfers) = (0, 0, 0u32);
        for &(mut bus, mut len) in chunks {
            while len > 0 {
                let n = len.min(BUF_USABLE - at);
                self.run(&mut st, &Transfer::from_ram(bus, at, n)?)?;
                transfers += 1;
                (at, bus, len) = (at + n, bus + n as u64, len - n);
                if at == BUF_USABLE {
                    self.copy_out(&mut st, &mut out[done..done + at])?;
                    (done, at) = (done + at, 0);
                }
            }
        }
        if at > 0 {
            self.copy_out(&mut st, &mut out[done..done + at])?;
        }
        Ok(transfers)
    }

    /// Writes the first `out.len()` bytes of the device buffer to the
    /// bounce buffer and copies them into `out`.
    fn copy_out(&self, st: &mut State, out: &mut [u8]) -> Result {
        self.run(
            st,
            &Transfer::to_ram(self.bounce.dma_address(), 0, out.len())?,
        )?;
        // SAFETY: The device wrote the bounce buffer and is done with it
        // (the transfer completed, and the MMIO read that saw it complete
        // orders this read after the device's writes); we hold `state`, so
        // no other transfer touches it (type invariant).
        let src = unsafe { &*self.bounce.as_ptr() };
        out.copy_from_slice(&src[..out.len()]);
        Ok(())
    }

    /// Fills the device buffer with `byte`, from the bounce buffer.
    fn fill(&self, st: &mut State, byte: u8) -> Result {
        // SAFETY: We hold `state`: neither the device nor another thread
        // uses the bounce buffer now (type invariant).
        unsafe { (*self.bounce.as_mut_ptr()).fill(byte) };
        self.run(
            st,
            &Transfer::from_ram(self.bounce.dma_address(), 0, BUF_USABLE)?,
        )
    }

    /// Stops taking work and unmaps every region mapped for the engine;
    /// called when the device is unbound.
    fn retire(&self) {
        // Waits for a transfer in progress to end.
        self.state.lock().gone = true;
        netdev::unmap_all_for(self.key());
    }
}

/// The raw device behind `dev`.
pub(crate) fn raw_device(dev: &device::Device) -> *mut bindings::device {
    // CAST: `device::Device` is a transparent wrapper of `struct device`.
    core::ptr::from_ref(dev).cast_mut().cast()
}

/// The device-side view of the teardown order, for tests: between the
/// unmap of a region mapped for the engine and the unpin of its pages, the
/// engine is told to read the first page's stale IOVA. The IOMMU must
/// refuse it (a DMAR fault), while the page is still pinned. A refused
/// read leaves the device buffer as it was filled (a pattern), or zeroed
/// (QEMU's model stores what a failed bus read returns, zeros); either
/// way no byte of the page arrives, which the test makes sure is neither
/// zeros nor the pattern.
#[cfg(zcopy_test_hooks)]
pub(crate) mod probe {
    use super::*;
    use kernel::sync::atomic::{
        Atomic,
        Relaxed, //
    };

    /// Outcomes, as `outcome` in the statistics.
    pub(crate) const NONE: u32 = 0;
    /// The device buffer kept its pattern or was zeroed: nothing was read.
    pub(crate) const REFUSED: u32 = 1;
    /// The device buffer changed: the device read something.
    pub(crate) const READ: u32 = 2;
    /// The engine could not run the probe.
    pub(crate) const FAILED: u32 = 3;

    static PROBES: Atomic<u64> = Atomic::new(0);
    static IOVA: Atomic<u64> = Atomic::new(0);
    static PINCOUNT: Atomic<i32> = Atomic::new(0);
    static DMA_PINNED: Atomic<u32> = Atomic::new(0);
    static OUTCOME: Atomic<u32> = Atomic::new(NONE);

    /// The pattern the device buffer is filled with before the probe.
    const PATTERN: u8 = 0xc3;

    /// Runs `unmap`, which unmaps `iova`, then probes `iova`, whose page is
    /// `page`. The engine's lock is held from before the unmap to the end
    /// of the probe, and engine mappings are made under it
    /// ([`Engine::exclusive`]): the freed IOVA cannot be handed to another
    /// region before the probe has read it.
    ///
    /// # Safety
    ///
    /// `page` stays pinned until after the call.
    pub(crate) unsafe fn unmap_then_probe(
        unmap: impl FnOnce(),
        iova: u64,
        page: *mut bindings::page,
    ) {
        let Ok(engine) = get() else {
            // Unbinding: the device is going away with its mappings.
            unmap();
            return;
        };
        let mut st = engine.state.lock();
        unmap();
        // SAFETY: `page` is pinned (function contract).
        let pinned = unsafe { PageState::of(page) };
        let mut buf = [0u8; 64];
        let outcome = engine
            .fill(&mut st, PATTERN)
            .and_then(|()| engine.run(&mut st, &Transfer::from_ram(iova, 0, buf.len())?))
            .and_then(|()| engine.copy_out(&mut st, &mut buf));
        let outcome = match outcome {
            Ok(()) if buf.iter().all(|&b| b == PATTERN) || buf.iter().all(|&b| b == 0) => REFUSED,
            Ok(()) => READ,
            Err(_) => FAILED,
        };
        drop(st);
        IOVA.store(iova, Relaxed);
        PINCOUNT.store(pinned.pincount, Relaxed);
        DMA_PINNED.store(u32::from(pinned.dma_pinned), Relaxed);
        OUTCOME.store(outcome, Relaxed);
        PROBES.add(1, Relaxed);
        pr_info!(
            "dma probe: engine read of unmapped IOVA {:#x} {}; page pin count {}\n",
            iova,
            match outcome {
                REFUSED => "refused, nothing read",
                READ => "READ DATA",
                _ => "failed to run",
            },
            pinned.pincount
        );
    }

    /// Writes the last probe's result as statistics lines.
    pub(crate) fn write(f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        writeln!(f, "dma_probes {}", PROBES.load(Relaxed))?;
        writeln!(f, "dma_probe_iova {}", IOVA.load(Relaxed))?;
        writeln!(f, "dma_probe_pincount {}", PINCOUNT.load(Relaxed))?;
        writeln!(f, "dma_probe_dma_pinned {}", DMA_PINNED.load(Relaxed))?;
        writeln!(f, "dma_probe_outcome {}", OUTCOME.load(Relaxed))
    }
}

/// The PCI driver for the engine.
pub(crate) struct EduDriver;

/// The driver's data for a bound engine.
pub(crate) struct Binding {
    engine: Arc<Engine>,
}

kernel::pci_device_table!(
    EDU_TABLE,
    <EduDriver as pci::Driver>::IdInfo,
    [(pci::DeviceId::from_id(EDU_VENDOR_ID, EDU_DEVICE), ())]
);

impl pci::Driver for EduDriver {
    type IdInfo = ();
    type Data<'bound> = Binding;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &EDU_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let engine = Engine::probe(pdev)?;
        let mut slot = ENGINE.lock();
        if slot.is_some() {
            dev_info!(pdev, "a DMA engine is already bound; this one stays idle\n");
            return Err(EBUSY);
        }
        *slot = Some(engine.clone());
        Ok(Binding { engine })
    }

    fn unbind<'bound>(_pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        ENGINE.lock().take();
        this.engine.retire();
    }
}

#[kunit_tests(zcopy_engine)]
mod tests {
    use super::*;

    #[test]
    fn transfers_stay_inside_the_device_buffer() {
        assert!(Transfer::from_ram(0x1000, 0, BUF_SIZE - 1).is_ok());
        assert!(Transfer::from_ram(0x1000, BUF_SIZE - 2, 1).is_ok());
        // QEMU 7.2 aborts on these two.
        assert!(Transfer::from_ram(0x1000, 0, BUF_SIZE) == Err(EINVAL));
        assert!(Transfer::from_ram(0x1000, BUF_SIZE - 1, 1) == Err(EINVAL));
        assert!(Transfer::from_ram(0x1000, 0, 0) == Err(EINVAL));
        assert!(Transfer::from_ram(0x1000, 1, BUF_SIZE) == Err(EINVAL));
        assert!(Transfer::to_ram(0x1000, BUF_SIZE, 1) == Err(EINVAL));
        assert!(Transfer::to_ram(0x1000, usize::MAX, 2) == Err(EINVAL));
        assert!(Transfer::to_ram(1 << 32, 0, 1) == Err(EINVAL));
    }

    #[test]
    fn programming_sets_addresses_then_starts() {
        let t = Transfer::from_ram(0xfff_f000, 0x100, 0x20).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            t.program(),
            [
                (REG_DMA_SRC, 0xfff_f000),
                (REG_DMA_DST, BUF_ADDR + 0x100),
                (REG_DMA_CNT, 0x20),
                (REG_DMA_CMD, CMD_RUN),
            ]
        );
        let t = Transfer::to_ram(0x2000, 0, BUF_USABLE).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            t.program(),
            [
                (REG_DMA_SRC, BUF_ADDR),
                (REG_DMA_DST, 0x2000),
                (REG_DMA_CNT, BUF_USABLE as u32),
                (REG_DMA_CMD, CMD_RUN | CMD_TO_RAM),
            ]
        );
    }

    #[test]
    fn waiting_ends_when_the_run_bit_clears() {
        let mut reads = 0;
        let r = wait_done(
            || {
                reads += 1;
                Ok(if reads < 3 {
                    CMD_RUN | CMD_TO_RAM
                } else {
                    CMD_TO_RAM
                })
            },
            Delta::from_micros(10),
            Delta::from_secs(1),
        );
        assert!(r == Ok(()));
        assert_eq!(reads, 3);
    }

    #[test]
    fn a_device_that_never_completes_times_out() {
        let r = wait_done(
            || Ok(CMD_RUN),
            Delta::from_micros(100),
            Delta::from_millis(20),
        );
        assert!(r == Err(ETIMEDOUT));
    }

    #[test]
    fn a_gone_device_ends_the_wait_with_its_error() {
        let r = wait_done(|| Err(ENODEV), Delta::from_micros(10), Delta::from_secs(1));
        assert!(r == Err(ENODEV));
    }
}
