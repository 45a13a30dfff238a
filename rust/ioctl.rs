// SPDX-License-Identifier: GPL-2.0

//! The ioctl front of `/dev/zcopy`.
//!
//! Thin by design: each command copies its argument in, checks what only
//! the ABI knows (reserved fields, unknown flags), calls the domain code and
//! copies the result out. Unknown commands, including a known number with
//! the wrong size or direction, are `ENOTTY`; a bad user pointer is
//! `EFAULT`. See `Documentation/abi.rst` for every errno.

use crate::{
    abi,
    account::user_sized,
    context::Context,
    pagecache::FileRef,
    region::RegisterArgs,
    send,
    stats, //
};
use kernel::{
    bindings,
    ioctl::_IOC_SIZE,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

/// The `ZC_FEAT_*` bits this module implements.
pub(crate) const FEATURES: u64 = (abi::ZC_FEAT_REGISTER
    | abi::ZC_FEAT_SEND
    | abi::ZC_FEAT_SENDFILE
    | abi::ZC_FEAT_SEND_BATCH
    | abi::ZC_FEAT_DMA_ENGINE) as u64;

/// Most `zc_page_info` entries one `ZC_IOC_REGION_INFO` call returns.
pub(crate) const MAX_INFO_PAGES: u32 = 4096;

/// Runs one ioctl on `ctx`.
pub(crate) fn dispatch(ctx: &Context, cmd: u32, arg: usize) -> Result<isize> {
    let user = UserSlice::new(UserPtr::from_addr(arg), _IOC_SIZE(cmd));
    match cmd {
        abi::ZC_IOC_VERSION => user.writer().write(&version())?,
        abi::ZC_IOC_REGISTER => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_register = r.read()?;
            register(ctx, &mut a)?;
            if let Err(e) = w.write(&a) {
                // The caller cannot learn the id: do not keep the region,
                // even if a send that guessed the id uses it already.
                ctx.forget(a.id)?;
                return Err(e);
            }
        }
        abi::ZC_IOC_UNREGISTER => {
            let a: abi::zc_unregister = user.reader().read()?;
            if a.reserved != 0 {
                return Err(EINVAL);
            }
            ctx.unregister(a.id)?;
        }
        abi::ZC_IOC_REGION_INFO => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_region_info = r.read()?;
            region_info(ctx, &mut a)?;
            w.write(&a)?;
        }
        abi::ZC_IOC_STATS => user.writer().write(&abi::zc_stats {
            module: stats::MODULE.to_abi(),
            context: ctx.counters().to_abi(),
            max_pinned_pages: crate::max_pinned_pages(),
        })?,
        abi::ZC_IOC_SEND => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_send = r.read()?;
            a.sent = send::send(&a, |id| ctx.hold(id), ctx.sends())?;
            // The send is on its way whether or not the caller can read
            // the count; its record says how many bytes it carried.
            w.write(&a)?;
        }
        abi::ZC_IOC_SEND_BATCH => {
            let (mut r, mut w) = user.reader_writer();
            let mut b: abi::zc_send_batch = r.read()?;
            send_batch(ctx, &mut b)?;
            w.write(&b)?;
        }
        abi::ZC_IOC_XMIT => {
            let a: abi::zc_xmit = user.reader().read()?;
            send::xmit(&a, |id| ctx.hold(id), ctx.sends())?;
        }
        abi::ZC_IOC_SENDFILE => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_sendfile = r.read()?;
            let res = send::sendfile(&a, ctx.sends())?;
            a.sent = res.sent;
            a.pages_cached = res.cached;
            a.pages_read = res.read;
            w.write(&a)?;
        }
        abi::ZC_IOC_FILE_PAGES => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_file_pages = r.read()?;
            file_pages(&mut a)?;
            w.write(&a)?;
        }
        abi::ZC_IOC_DMA_READ => {
            let (mut r, mut w) = user.reader_writer();
            let mut a: abi::zc_dma_read = r.read()?;
            dma_read(ctx, &mut a)?;
            w.write(&a)?;
        }
        abi::ZC_IOC_SET_EVENTFD => {
            let a: abi::zc_eventfd = user.reader().read()?;
            if a.reserved != 0 {
                return Err(EINVAL);
            }
            ctx.completions().set_eventfd(a.fd)?;
        }
        _ => return Err(ENOTTY),
    }
    Ok(0)
}

/// `ZC_IOC_SEND_BATCH`: the entries in order, each exactly a
/// `ZC_IOC_SEND`, until one is refused (its errno in `error`; an error of
/// its own if it is the first) or accepted short.
fn send_batch(ctx: &Context, b: &mut abi::zc_send_batch) -> Result {
    if b.nr == 0
        || b.nr > abi::ZC_SEND_BATCH_MAX
        || b.accepted != 0
        || b.error != 0
        || b.reserved != 0
    {
        return Err(EINVAL);
    }
    let size = size_of::<abi::zc_send>();
    // CAST: user addresses fit in `usize`; `nr` is at most 64.
    let entries = UserSlice::new(UserPtr::from_addr(b.sends as usize), b.nr as usize * size);
    let (mut r, mut w) = entries.reader_writer();
    for _ in 0..b.nr {
        let sent = r.read::<abi::zc_send>().and_then(|mut a| {
            a.sent = send::send(&a, |id| ctx.hold(id), ctx.sends())?;
            Ok(a)
        });
        let a = match sent {
            Ok(a) => a,
            Err(e) if b.accepted == 0 => return Err(e),
            Err(e) => {
                // The call succeeds, so a signal cannot restart it.
                let e = if e == ERESTARTSYS { EINTR } else { e };
                b.error = -e.to_errno();
                break;
            }
        };
        b.accepted += 1;
        // As for `ZC_IOC_SEND`: on a fault here the send is on its way
        // anyway, and its record says how many bytes it carried.
        w.write(&a)?;
        if a.sent < a.len {
            break;
        }
    }
    Ok(())
}

/// The reply to `ZC_IOC_VERSION`.
fn version() -> abi::zc_version {
    abi::zc_version {
        abi_version: abi::ZC_ABI_VERSION,
        reserved: 0,
        features: FEATURES,
    }
}

fn register(ctx: &Context, a: &mut abi::zc_register) -> Result {
    let engine = a.flags & abi::ZC_REGISTER_DMA_ENGINE != 0;
    if a.flags & !(abi::ZC_REGISTER_READONLY | abi::ZC_REGISTER_DMA_ENGINE) != 0
        || (engine && a.ifindex != 0)
        || a.reserved != 0
        || a.id != 0
        || a.nr_pages != 0
        || a.nr_folios != 0
    {
        return Err(EINVAL);
    }
    if a.ifindex < 0 {
        return Err(ENODEV);
    }
    let args = RegisterArgs {
        addr: a.addr,
        len: a.len,
        read_only: a.flags & abi::ZC_REGISTER_READONLY != 0,
        ifindex: a.ifindex,
        engine,
    };
    let region = ctx.register(&args, crate::max_pinned_pages())?;
    a.id = region.id();
    // CAST: `region::span` bounds the page count by `u32::MAX`; pins are at
    // most one per page.
    a.nr_pages = region.nr_pages() as u32;
    a.nr_folios = region.nr_pins() as u32;
    Ok(())
}

fn region_info(ctx: &Context, a: &mut abi::zc_region_info) -> Result {
    // Output fields are zero on input, as everywhere in the ABI.
    if a.flags != 0 || a.addr != 0 || a.len != 0 || a.total_pages != 0 || a.ifindex != 0 {
        return Err(EINVAL);
    }
    let region = ctx.region(a.id)?;
    region.describe(a);
    if a.first_page > a.total_pages {
        return Err(EINVAL);
    }
    let n = a
        .nr_pages
        .min(a.total_pages - a.first_page)
        .min(MAX_INFO_PAGES);
    if n > 0 {
        // SAFETY: `capable` may be called from any process context.
        let privileged = unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) };
        let mut pages = KVVec::with_capacity(n as usize, user_sized())?;
        region.page_info(a.first_page as usize, n as usize, privileged, &mut pages)?;
        // CAST: user addresses fit in `usize`; a truncated one faults.
        let mut w = UserSlice::new(
            UserPtr::from_addr(a.pages as usize),
            pages.len() * size_of::<abi::zc_page_info>(),
        )
        .writer();
        for p in pages.iter() {
            w.write(p)?;
        }
    }
    a.nr_pages = n;
    Ok(())
}

/// `ZC_IOC_DMA_READ`: the engine reads region bytes through their IOVAs,
/// and they are handed back.
fn dma_read(ctx: &Context, a: &mut abi::zc_dma_read) -> Result {
    if a.len == 0 || a.len > abi::ZC_DMA_READ_MAX || a.transfers != 0 || a.reserved != 0 {
        return Err(EINVAL);
    }
    let region = ctx.region(a.id)?;
    let mut bytes = KVec::from_elem(0u8, a.len as usize, GFP_KERNEL)?;
    a.transfers = region.dma_read(a.offset, &mut bytes)?;
    // CAST: user addresses fit in `usize`; a truncated one faults.
    UserSlice::new(UserPtr::from_addr(a.buf as usize), bytes.len())
        .writer()
        .write_slice(&bytes)
}

fn file_pages(a: &mut abi::zc_file_pages) -> Result {
    if a.reserved != 0 || a.resident != 0 {
        return Err(EINVAL);
    }
    let file = FileRef::get(a.fd)?;
    // The page-cache side channel of CVE-2019-5489: only for callers that
    // could learn it from `cachestat(2)`, with its errno.
    if !file.may_see_residency() {
        return Err(EPERM);
    }
    let n = a.nr_pages.min(MAX_INFO_PAGES);
    // CAST: `PAGE_SIZE` fits in `u64`.
    let first = a.offset / kernel::page::PAGE_SIZE as u64;
    let mut pages = KVVec::with_capacity(n as usize, user_sized())?;
    let mut resident = 0;
    for i in 0..u64::from(n) {
        let p = file.page_state(first + i);
        if p.flags & abi::ZC_FILE_PAGE_RESIDENT != 0 {
            resident += 1;
        }
        pages.push(p, GFP_KERNEL)?;
    }
    // CAST: user addresses fit in `usize`; a truncated one faults.
    let mut w = UserSlice::new(
        UserPtr::from_addr(a.pages as usize),
        pages.len() * size_of::<abi::zc_file_page>(),
    )
    .writer();
    for p in pages.iter() {
        w.write(p)?;
    }
    a.nr_pages = n;
    a.resident = resident;
    Ok(())
}
