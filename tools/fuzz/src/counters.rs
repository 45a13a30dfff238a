//! The module's counters: read at the start as a baseline and waited for
//! at the end, once every fd is closed and every child reaped.
//!
//! Where they are read:
//!
//! - `/sys/kernel/debug/zcopy/stats` (debugfs, `name value` lines): the
//!   gauges `open_contexts`, `regions`, `pinned_pages`, `mapped_pages`,
//!   `charged_pages` (the module-wide `max_pinned_pages` charge),
//!   `outstanding` (sends without a completion record yet) and
//!   `file_pages_held`;
//! - `ZC_IOC_STATS` on a fresh fd (its `module` half): `regions`,
//!   `pinned_pages`, `mapped_pages`, `file_pages_held` and `sends -
//!   completions`, so the check works without debugfs too;
//! - `/proc/self/status`: `VmPin` (this process's `pinned_vm`, charged by
//!   every region it registered);
//! - the per-user `RLIMIT_MEMLOCK` charge (`locked_vm`), which nothing
//!   shows: a child running as `nobody` without `CAP_IPC_LOCK` and with a
//!   16-page limit registers exactly 16 pages (must succeed: nothing is
//!   left charged to that user) and then 1 more (must fail `ENOMEM`).

use std::{
    collections::BTreeMap,
    fs,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use zcopy::abi;

use crate::ptrs::{map_anon, page};

pub const DEBUGFS_STATS: &str = "/sys/kernel/debug/zcopy/stats";

/// The debugfs gauges: what is held now, each back to its baseline once
/// everything is closed.
pub const DEBUGFS_GAUGES: &[&str] = &[
    "open_contexts",
    "regions",
    "pinned_pages",
    "mapped_pages",
    "charged_pages",
    "outstanding",
    "file_pages_held",
];

/// The user `nobody`, whose memlock charge the probe looks at.
pub const NOBODY: u32 = 65534;
/// Pages the memlock probe's limit allows.
pub const PROBE_PAGES: usize = 16;

/// One reading of every counter: `source/name -> value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<String, i64>);

/// Parses debugfs's `name value` lines, keeping the gauges.
pub fn parse_debugfs(text: &str) -> BTreeMap<String, i64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            DEBUGFS_GAUGES
                .contains(&k)
                .then(|| Some((format!("debugfs/{k}"), v.trim().parse().ok()?)))?
        })
        .collect()
}

/// `VmPin` from `/proc/self/status`, in kB.
pub fn parse_vmpin(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPin:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The module half of `ZC_IOC_STATS`, through a fresh fd.
pub fn module_stats() -> Option<abi::ZcStats> {
    let d = zcopy::device::Device::open().ok()?;
    d.stats().ok()
}

/// Every counter now. Debugfs is read before the fd for `ZC_IOC_STATS` is
/// opened, so `open_contexts` does not count it.
pub fn snapshot() -> Snapshot {
    let mut m = BTreeMap::new();
    if let Ok(t) = fs::read_to_string(DEBUGFS_STATS) {
        m.extend(parse_debugfs(&t));
    }
    if let Some(st) = module_stats() {
        let c = st.module;
        for (k, v) in [
            ("regions", c.regions),
            ("pinned_pages", c.pinned_pages),
            ("mapped_pages", c.mapped_pages),
            ("file_pages_held", c.file_pages_held),
            ("outstanding", c.sends.wrapping_sub(c.completions)),
        ] {
            m.insert(format!("STATS/{k}"), v as i64);
        }
    }
    if let Some(v) = fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(parse_vmpin)
    {
        m.insert("self/VmPin_kB".into(), v);
    }
    Snapshot(m)
}

/// The counters of `now` that differ from `base`: `(name, base, now)`;
/// one missing now counts as differing.
pub fn differences(base: &Snapshot, now: &Snapshot) -> Vec<(String, i64, Option<i64>)> {
    base.0
        .iter()
        .filter_map(|(k, &b)| {
            let n = now.0.get(k).copied();
            (n != Some(b)).then(|| (k.clone(), b, n))
        })
        .collect()
}

/// Polls until every counter is back at `base`, for at most `limit`;
/// returns what is still off, and the time it took.
pub fn wait_back(base: &Snapshot, limit: Duration) -> (Vec<(String, i64, Option<i64>)>, Duration) {
    let t0 = Instant::now();
    loop {
        let d = differences(base, &snapshot());
        if d.is_empty() || t0.elapsed() >= limit {
            return (d, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the memlock probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Exactly the limit registered, one page more refused.
    Clean,
    /// Registering exactly the limit failed with this errno: something is
    /// still charged to the user.
    Charged(i32),
    /// One page over the limit was accepted.
    OverLimit,
    /// The probe could not run (why).
    Skipped(&'static str),
}

/// Runs the memlock probe in a child (see the module's doc). Call only
/// while the process has one thread, or from a thread that does nothing
/// but wait: the child only makes system calls.
pub fn memlock_probe() -> Probe {
    let pg = page();
    let Ok(dev) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(crate::fds::device_path())
    else {
        return Probe::Skipped("cannot open the device");
    };
    let len = (PROBE_PAGES + 1) * pg;
    let Ok(buf) = map_anon(0, len, libc::PROT_READ | libc::PROT_WRITE, 0) else {
        return Probe::Skipped("mmap");
    };
    // SAFETY: our mapping. No huge page: the charge is per folio.
    unsafe {
        libc::madvise(buf as *mut _, len, libc::MADV_NOHUGEPAGE);
        std::ptr::write_bytes(buf as *mut u8, 0x5a, len);
    }
    let fd = dev.as_raw_fd();
    // SAFETY: fork; the child below makes only system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the child: raw system calls on values prepared above.
        unsafe { libc::_exit(probe_child(fd, buf, pg)) };
    }
    let result = if pid < 0 {
        Probe::Skipped("fork")
    } else {
        let mut status = 0;
        // SAFETY: our child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
            (true, 0) => Probe::Clean,
            (true, 1) => Probe::OverLimit,
            (true, 2) => Probe::Skipped("dropping privileges"),
            (true, e) if e >= 100 => Probe::Charged(e - 100),
            _ => Probe::Skipped("probe child died"),
        }
    };
    // SAFETY: our mapping.
    unsafe { libc::munmap(buf as *mut _, len) };
    result
}

/// The probe's child: becomes `nobody` with a `PROBE_PAGES` memlock limit
/// and registers. Exit: 0 clean, 1 over the limit accepted, 2 setup
/// failed, 100 + errno when the limit itself was refused.
fn probe_child(fd: i32, buf: usize, pg: usize) -> i32 {
    let lim = libc::rlimit {
        rlim_cur: (PROBE_PAGES * pg) as u64,
        rlim_max: (PROBE_PAGES * pg) as u64,
    };
    // SAFETY: raw system calls with valid arguments.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0
            || libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<u32>()) != 0
            || libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY) != 0
            || libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY) != 0
        {
            return 2;
        }
    }
    let reg = |len: usize| -> Result<u32, i32> {
        let mut r = abi::ZcRegister {
            addr: buf as u64,
            len: len as u64,
            ..Default::default()
        };
        // SAFETY: `r` is a valid zc_register; `buf` our mapping.
        let ret = unsafe { libc::ioctl(fd, abi::ZC_IOC_REGISTER as _, &mut r) };
        if ret == 0 {
            Ok(r.id)
        } else {
            // SAFETY: errno of this thread.
            Err(unsafe { *libc::__errno_location() })
        }
    };
    let unreg = |id: u32| {
        let mut u = abi::ZcUnregister { id, reserved: 0 };
        // SAFETY: a valid zc_unregister.
        unsafe { libc::ioctl(fd, abi::ZC_IOC_UNREGISTER as _, &mut u) };
    };
    match reg(PROBE_PAGES * pg) {
        Ok(id) => unreg(id),
        Err(e) => return 100 + e.min(150),
    }
    match reg((PROBE_PAGES + 1) * pg) {
        Ok(id) => {
            unreg(id);
            1
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debugfs_lines_are_parsed_and_filtered() {
        let t = "open_contexts 2\nregions 3\npinned_pages 17\nregions_total 99\n\
                 outstanding 0\nbytes_copied 5\nbogus\ncharged_pages x\n";
        let m = parse_debugfs(t);
        assert_eq!(m.get("debugfs/regions"), Some(&3));
        assert_eq!(m.get("debugfs/pinned_pages"), Some(&17));
        assert_eq!(m.get("debugfs/outstanding"), Some(&0));
        assert!(!m.contains_key("debugfs/regions_total"));
        assert!(!m.contains_key("debugfs/charged_pages"));
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn vmpin_is_read() {
        let s = "Name:\tx\nVmLck:\t       0 kB\nVmPin:\t      64 kB\nVmHWM:\t1 kB\n";
        assert_eq!(parse_vmpin(s), Some(64));
        assert_eq!(parse_vmpin("Name: x\n"), None);
    }

    #[test]
    fn differences_name_each_counter_off() {
        let mut a = Snapshot::default();
        a.0.insert("debugfs/regions".into(), 0);
        a.0.insert("STATS/pinned_pages".into(), 4);
        let mut b = a.clone();
        assert!(differences(&a, &b).is_empty());
        b.0.insert("debugfs/regions".into(), 2);
        b.0.remove("STATS/pinned_pages");
        let d = differences(&a, &b);
        assert_eq!(
            d,
            vec![
                ("STATS/pinned_pages".into(), 4, None),
                ("debugfs/regions".into(), 0, Some(2)),
            ]
        );
    }
}
