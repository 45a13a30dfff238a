//! What the machine offers zcopy: IOMMUs and network interfaces, read from
//! sysfs.

use std::{fs, path::Path};

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Nic {
    pub name: String,
    /// The kernel driver behind the interface, if it has a device.
    pub driver: Option<String>,
    /// Its DMA device: the nearest device at or above the interface's own
    /// that sits in an IOMMU group (a virtio-net interface's parent is a
    /// virtio device; the DMA is done by the PCI function above it).
    pub dma_device: Option<String>,
    /// The IOMMU group of that device: the device reaches memory only
    /// through mappings made in this group's domain.
    pub iommu_group: Option<u32>,
    pub mtu: Option<u32>,
    pub operstate: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Iommu {
    pub name: String,
    /// Number of devices translated by this IOMMU.
    pub devices: usize,
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn link_name(p: &Path) -> Option<String> {
    fs::read_link(p)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// The device at or above `dev` that has an IOMMU group, and the group.
fn dma_device(dev: &Path) -> Option<(String, u32)> {
    let mut d = fs::canonicalize(dev).ok()?;
    loop {
        if let Some(g) = link_name(&d.join("iommu_group")).and_then(|g| g.parse().ok()) {
            return Some((d.file_name()?.to_string_lossy().into_owned(), g));
        }
        if !d.pop() || d.parent().is_none() || d.ends_with("devices") {
            return None;
        }
    }
}

fn sorted_entries(dir: &Path) -> Vec<fs::DirEntry> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    v.sort_by_key(|e| e.file_name());
    v
}

pub fn nics(sys: &Path) -> Vec<Nic> {
    sorted_entries(&sys.join("class/net"))
        .into_iter()
        .map(|e| {
            let dir = e.path();
            let dev = dir.join("device");
            let dma = dma_device(&dev);
            Nic {
                name: e.file_name().to_string_lossy().into_owned(),
                driver: link_name(&dev.join("driver")),
                dma_device: dma.as_ref().map(|(d, _)| d.clone()),
                iommu_group: dma.map(|(_, g)| g),
                mtu: read_trim(&dir.join("mtu")).and_then(|m| m.parse().ok()),
                operstate: read_trim(&dir.join("operstate")),
            }
        })
        .collect()
}

pub fn iommus(sys: &Path) -> Vec<Iommu> {
    sorted_entries(&sys.join("class/iommu"))
        .into_iter()
        .map(|e| Iommu {
            name: e.file_name().to_string_lossy().into_owned(),
            devices: sorted_entries(&e.path().join("devices")).len(),
        })
        .collect()
}

/// The kernel's default IOMMU domain type and strictness, from the boot
/// command line and sysfs, for people.
pub fn iommu_mode(sys: &Path) -> Option<String> {
    let group = sorted_entries(&sys.join("kernel/iommu_groups"))
        .into_iter()
        .next()?;
    read_trim(&group.path().join("type"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn reads_a_fake_sysfs() {
        let root = std::env::temp_dir().join(format!("zcopy-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let pci = root.join("devices/pci0000:00/0000:00:02.0");
        fs::create_dir_all(&pci).unwrap();
        fs::create_dir_all(root.join("bus/pci/drivers/e1000e")).unwrap();
        fs::create_dir_all(root.join("kernel/iommu_groups/3")).unwrap();
        fs::write(root.join("kernel/iommu_groups/3/type"), "DMA\n").unwrap();
        symlink(root.join("bus/pci/drivers/e1000e"), pci.join("driver")).unwrap();
        symlink(root.join("kernel/iommu_groups/3"), pci.join("iommu_group")).unwrap();
        let virtio = pci.join("virtio1");
        fs::create_dir_all(&virtio).unwrap();
        let eth = root.join("class/net/eth0");
        let veth = root.join("class/net/eth1");
        fs::create_dir_all(&veth).unwrap();
        symlink(&virtio, veth.join("device")).unwrap();
        let lo = root.join("class/net/lo");
        fs::create_dir_all(&eth).unwrap();
        fs::create_dir_all(&lo).unwrap();
        symlink(&pci, eth.join("device")).unwrap();
        fs::write(eth.join("mtu"), "1500\n").unwrap();
        fs::write(lo.join("mtu"), "65536\n").unwrap();
        let iommu = root.join("class/iommu/dmar0/devices");
        fs::create_dir_all(&iommu).unwrap();
        symlink(&pci, iommu.join("0000:00:02.0")).unwrap();

        let n = nics(&root);
        assert_eq!(n.len(), 3);
        assert_eq!(n[1].name, "eth1");
        assert_eq!(n[1].dma_device.as_deref(), Some("0000:00:02.0"));
        assert_eq!(n[1].iommu_group, Some(3));
        let n = [&n[0], &n[2]];
        assert_eq!(n[0].name, "eth0");
        assert_eq!(n[0].driver.as_deref(), Some("e1000e"));
        assert_eq!(n[0].dma_device.as_deref(), Some("0000:00:02.0"));
        assert_eq!(n[0].iommu_group, Some(3));
        assert_eq!(n[0].mtu, Some(1500));
        assert_eq!(n[1].name, "lo");
        assert_eq!(n[1].driver, None);
        assert_eq!(n[1].iommu_group, None);
        let i = iommus(&root);
        assert_eq!(i.len(), 1);
        assert_eq!((i[0].name.as_str(), i[0].devices), ("dmar0", 1));
        assert_eq!(iommu_mode(&root).as_deref(), Some("DMA"));
        fs::remove_dir_all(&root).unwrap();
    }
}
