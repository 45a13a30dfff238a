//! `zcopyctl`: drive and inspect the zcopy kernel module.

mod abi;
mod device;
mod system;

use std::path::Path;

use anyhow::Result;
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => info(cli.json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_follow_the_bits() {
        assert!(feature_names(0).is_empty());
        assert_eq!(
            feature_names(abi::ZC_FEAT_REGISTER | abi::ZC_FEAT_SENDFILE),
            vec!["register", "sendfile"]
        );
    }
}
