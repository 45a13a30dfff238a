//! `zcopyctl`: drive and inspect the zcopy kernel module.

mod abi;
mod device;
mod system;

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(version, about = "Drive and inspect the zcopy kernel module")]
struct Cli {
    /// Machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The module's ABI version and features, and the IOMMUs and network
    /// interfaces it can use.
    Info,
    /// Register a fresh buffer, show what zcopy holds for it page by page,
    /// unregister it and show that everything was given back.
    Region {
        /// Buffer size in bytes.
        #[arg(long, default_value_t = 64 * 1024)]
        size: usize,
        /// Map it for this network interface's DMA device (name or index).
        #[arg(long)]
        dev: Option<String>,
        /// Pin read-only.
        #[arg(long)]
        read_only: bool,
        /// Show at most this many pages.
        #[arg(long, default_value_t = 8)]
        show: u32,
    },
}

#[derive(Serialize)]
struct Info {
    abi_version: u32,
    features: Vec<&'static str>,
    iommu_domain_type: Option<String>,
    iommus: Vec<system::Iommu>,
    nics: Vec<system::Nic>,
}

fn feature_names(bits: u64) -> Vec<&'static str> {
    abi::FEATURE_NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|&(_, n)| n)
        .collect()
}

fn info(json: bool) -> Result<()> {
    let v = device::Device::open()?.version()?;
    let sys = Path::new("/sys");
    let info = Info {
        abi_version: v.abi_version,
        features: feature_names(v.features),
        iommu_domain_type: system::iommu_mode(sys),
        iommus: system::iommus(sys),
        nics: system::nics(sys),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!(
        "zcopy: ABI version {} (this zcopyctl speaks {}), features: {}",
        info.abi_version,
        abi::ZC_ABI_VERSION,
        if info.features.is_empty() {
            "none yet".to_string()
        } else {
            info.features.join(", ")
        }
    );
    if info.iommus.is_empty() {
        println!("IOMMU: none (devices reach all of memory)");
    }
    for i in &info.iommus {
        println!(
            "IOMMU: {} translating {} devices, default domain {}",
            i.name,
            i.devices,
            info.iommu_domain_type.as_deref().unwrap_or("?")
        );
    }
    println!(
        "{:<10} {:<14} {:<14} {:>11} {:>6}  state",
        "interface", "driver", "dma device", "iommu group", "mtu"
    );
    for n in &info.nics {
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        println!(
            "{:<10} {:<14} {:<14} {:>11} {:>6}  {}",
            n.name,
            opt(&n.driver),
            opt(&n.dma_device),
            n.iommu_group.map_or("-".into(), |g| g.to_string()),
            n.mtu.map_or("-".into(), |m| m.to_string()),
            opt(&n.operstate),
        );
    }
    Ok(())
}

/// An ifindex from an interface name or number.
fn ifindex(dev: &str) -> Result<i32> {
    if let Ok(n) = dev.parse() {
        return Ok(n);
    }
    let path = format!("/sys/class/net/{dev}/ifindex");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no interface {dev}"))?;
    Ok(text.trim().parse()?)
}

/// `VmPin` of this process, in kB.
fn vm_pin_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPin:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn page_flags(f: u32) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (abi::ZC_PAGE_DMA_PINNED, "pinned"),
        (abi::ZC_PAGE_MAPPED, "mapped"),
        (abi::ZC_PAGE_LARGE, "large"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    v.join(",")
}

#[derive(Serialize)]
struct RegionReport {
    id: u32,
    nr_pages: u32,
    nr_folios: u32,
    mapped: bool,
    read_only: bool,
    vm_pin_kb_before: Option<u64>,
    vm_pin_kb_registered: Option<u64>,
    vm_pin_kb_after: Option<u64>,
    pages: Vec<abi::ZcPageInfo>,
    stats_registered: abi::ZcStats,
    stats_after: abi::ZcStats,
}

fn region(json: bool, size: usize, dev: Option<&str>, read_only: bool, show: u32) -> Result<()> {
    anyhow::ensure!(size > 0, "--size must be positive");
    let ifindex = dev.map(ifindex).transpose()?.unwrap_or(0);
    let d = device::Device::open()?;
    // Touched, so every page exists before it is pinned.
    let buf = vec![0x5au8; size];
    let flags = if read_only {
        abi::ZC_REGISTER_READONLY
    } else {
        0
    };
    let vm_pin_kb_before = vm_pin_kb();
    let r = d.register(&buf, flags, ifindex)?;
    let vm_pin_kb_registered = vm_pin_kb();
    let (ri, pages) = d.region_info(r.id, 0, show.min(r.nr_pages))?;
    let stats_registered = d.stats()?;
    d.unregister(r.id)?;
    let report = RegionReport {
        id: r.id,
        nr_pages: r.nr_pages,
        nr_folios: r.nr_folios,
        mapped: ri.flags & abi::ZC_REGION_MAPPED != 0,
        read_only: ri.flags & abi::ZC_REGION_READONLY != 0,
        vm_pin_kb_before,
        vm_pin_kb_registered,
        vm_pin_kb_after: vm_pin_kb(),
        pages,
        stats_registered,
        stats_after: d.stats()?,
    };
    drop(buf);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let kb = |v: Option<u64>| v.map_or("?".into(), |v| format!("{v} kB"));
    println!(
        "registered {} bytes as region {}: {} pages, {} pins{}{}",
        size,
        report.id,
        report.nr_pages,
        report.nr_folios,
        if report.read_only { ", read-only" } else { "" },
        if report.mapped {
            format!(", mapped for ifindex {ifindex}")
        } else {
            String::new()
        }
    );
    println!(
        "VmPin: {} before, {} registered, {} after unregistering",
        kb(report.vm_pin_kb_before),
        kb(report.vm_pin_kb_registered),
        kb(report.vm_pin_kb_after)
    );
    println!(
        "{:>5} {:>9} {:>9} {:>6} {:>18}  flags",
        "page", "refcount", "pincount", "order", "iova"
    );
    for (i, p) in report.pages.iter().enumerate() {
        println!(
            "{:>5} {:>9} {:>9} {:>6} {:>#18x}  {}",
            i,
            p.refcount,
            p.pincount,
            p.order,
            p.iova,
            page_flags(p.flags)
        );
    }
    let (m, a) = (&report.stats_registered.module, &report.stats_after.module);
    println!(
        "module: {} regions, {} pages pinned, {} mapped while registered; {}, {}, {} after",
        m.regions, m.pinned_pages, m.mapped_pages, a.regions, a.pinned_pages, a.mapped_pages
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => info(cli.json),
        Cmd::Region {
            size,
            dev,
            read_only,
            show,
        } => region(cli.json, size, dev.as_deref(), read_only, show),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_flags_are_named() {
        assert_eq!(page_flags(0), "");
        assert_eq!(
            page_flags(abi::ZC_PAGE_DMA_PINNED | abi::ZC_PAGE_MAPPED),
            "pinned,mapped"
        );
    }

    #[test]
    fn ifindex_takes_numbers() {
        assert_eq!(ifindex("7").unwrap(), 7);
        assert!(ifindex("no-such-interface-zz").is_err());
    }

    #[test]
    fn feature_names_follow_the_bits() {
        assert!(feature_names(0).is_empty());
        assert_eq!(
            feature_names(abi::ZC_FEAT_REGISTER | abi::ZC_FEAT_SENDFILE),
            vec!["register", "sendfile"]
        );
    }
}
