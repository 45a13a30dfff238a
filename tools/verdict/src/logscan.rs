//! Finds the kernel's own reports of trouble in a kernel log: warnings,
//! BUGs, oopses, KASAN/KFENCE/UBSAN reports, lockdep splats, RCU stalls,
//! hung tasks, kmemleak reports and IOMMU (DMAR) faults. Any one of them
//! fails a test run, even when every test passed, except the one kind of
//! fault a test provokes on purpose: the DMA engine's read of an IOVA that
//! zcopy just unmapped, which the module announces ("dma probe: engine
//! read of unmapped IOVA 0x...") and the IOMMU must refuse.

/// Substrings that start a report. Each is specific enough not to match the
/// banners these checkers print at boot ("KASAN: ... enabled" is an
/// informational line; "BUG: KASAN:" is a report).
const REPORT_MARKERS: &[&str] = &[
    "WARNING: ",
    "BUG: ",
    "kernel BUG at",
    "Oops: ",
    "Oops#",
    "general protection fault",
    "Kernel panic",
    "UBSAN: ",
    "INFO: possible ",
    "INFO: task ",
    "INFO: rcu",
    "rcu: INFO:",
    "detected stall",
    "DEBUG_LOCKS_WARN_ON",
    "suspected memory leak",
    "unreferenced object 0x",
    "Call Trace:",
    "kfence: KFENCE: ",
    "iommu: page ",
    "DMAR: [",
];

/// What the module logs for each probe of a stale IOVA (test builds).
const PROBE_MARKER: &str = "dma probe: engine read of unmapped IOVA 0x";
/// What the DMAR driver logs for a fault, before the page's address.
const FAULT_ADDR: &str = "fault addr 0x";

/// The hexadecimal number at the start of `s`.
fn hex_prefix(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(s.len());
    u64::from_str_radix(&s[..end], 16).ok()
}

/// The page address after `marker` on `line`.
fn page_after(line: &str, marker: &str) -> Option<u64> {
    let at = line.find(marker)? + marker.len();
    hex_prefix(&line[at..]).map(|a| a & !0xfff)
}

/// One report found in a log: its line number (1-based) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub text: String,
}

/// Every line of `log` that starts a report, in order. A DMAR read fault
/// at a page the module's probe read is expected, not a report.
pub fn scan(log: &str) -> Vec<Finding> {
    let probed: Vec<u64> = log
        .lines()
        .filter_map(|l| page_after(l, PROBE_MARKER))
        .collect();
    let expected = |l: &str| {
        l.contains("DMAR: [DMA Read")
            && page_after(l, FAULT_ADDR).is_some_and(|a| probed.contains(&a))
    };
    // A probe the IOMMU did not refuse (or that could not run) is a report.
    let bad_probe = |l: &str| l.contains(PROBE_MARKER) && !l.contains(" refused, ");
    log.lines()
        .enumerate()
        .filter(|(_, l)| {
            (REPORT_MARKERS.iter().any(|m| l.contains(m)) && !expected(l)) || bad_probe(l)
        })
        .map(|(i, l)| Finding {
            line: i + 1,
            text: l.trim_end().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_boot_log_has_no_findings() {
        let log = "[    0.000000] Linux version 7.3.4\n\
                   [    0.100000] kasan: KernelAddressSanitizer initialized (generic)\n\
                   [    0.200000] kfence: initialized - using 2097152 bytes for 255 objects\n\
                   [    0.300000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc.\n\
                   [    0.400000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15704)\n\
                   [    1.000000] zcopy: ABI version 1, features 0x0\n";
        assert_eq!(scan(log), vec![]);
    }

    #[test]
    fn reports_are_found() {
        for line in [
            "[ 5.1] WARNING: CPU: 1 PID: 77 at rust/zcopy.rs:10 foo+0x1/0x2",
            "[ 5.1] BUG: KASAN: slab-use-after-free in bar",
            "[ 5.1] BUG: sleeping function called from invalid context",
            "[ 5.1] Oops: general protection fault, probably for non-canonical address",
            "[ 5.1] WARNING: possible circular locking dependency detected",
            "[ 5.1] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "[ 5.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[ 5.1] UBSAN: array-index-out-of-bounds in x.c:1:2",
            "[ 5.1] DMAR: [DMA Read NO_PASID] Request device [0000:00:02.0] fault addr 0xfff8000 [fault reason 0x06] PTE Read access is not set",
            "[ 5.1] DMAR: [DMA Write NO_PASID] Request device [0000:00:02.0] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set",
        ] {
            let log = format!("[ 1.0] fine\n{line}\n[ 6.0] fine\n");
            let found = scan(&log);
            assert_eq!(found.len(), 1, "{line}");
            assert_eq!(found[0].line, 2);
        }
    }

    #[test]
    fn only_the_probed_dma_fault_is_expected() {
        let log = "[ 1.0] DMAR: DRHD: handling fault status reg 2\n\
                   [ 1.0] DMAR: [DMA Read NO_PASID] Request device [0000:00:0c.0] fault addr 0xfff8000 [fault reason 0x06] PTE Read access is not set\n\
                   [ 1.1] zcopy: dma probe: engine read of unmapped IOVA 0xfff8000 refused, nothing read; page pin count 1\n\
                   [ 2.0] DMAR: [DMA Read NO_PASID] Request device [0000:00:0c.0] fault addr 0xfff7000 [fault reason 0x06] PTE Read access is not set\n\
                   [ 3.0] DMAR: [DMA Write NO_PASID] Request device [0000:00:0c.0] fault addr 0xfff8000 [fault reason 0x05] PTE Write access is not set\n";
        let found = scan(log);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 4);
        assert_eq!(found[1].line, 5);
    }

    #[test]
    fn a_probe_that_read_data_is_a_report() {
        let log = "[ 1.1] zcopy: dma probe: engine read of unmapped IOVA 0xfff8000 READ DATA; page pin count 1\n\
                   [ 1.2] zcopy: dma probe: engine read of unmapped IOVA 0xfff7000 failed to run; page pin count 1\n\
                   [ 1.3] zcopy: dma probe: engine read of unmapped IOVA 0xfff6000 refused, nothing read; page pin count 1\n";
        let found = scan(log);
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
