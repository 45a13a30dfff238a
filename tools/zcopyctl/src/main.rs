//! `zcopyctl`: drive and inspect the zcopy kernel module.

mod bench;
mod flame;
mod plot;
mod profile;
mod stats;
mod system;

use zcopy::{abi, device};

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
    /// The running module's ABI version and features.
    Version,
    /// The module's counters (and those of a fresh file description).
    Stat,
    /// Register a fresh buffer, show what zcopy holds for it page by page,
    /// unregister it and show that everything was given back.
    #[command(alias = "register")]
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
    /// Send a buffer zero-copy over TCP (or UDP) and report every
    /// completion: register it, connect, ZC_IOC_SEND it in chunks, read the
    /// records, unregister.
    Send {
        /// Where to: ADDRESS:PORT.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// UDP instead of TCP (each chunk is one datagram).
        #[arg(long)]
        udp: bool,
        /// Bytes to send (a generated pattern), unless --file is given.
        #[arg(long, default_value_t = 1024 * 1024)]
        size: usize,
        /// Send this file's contents instead.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// Bytes per ZC_IOC_SEND.
        #[arg(long, default_value_t = 256 * 1024)]
        chunk: usize,
        /// Map the buffer for this interface's DMA device (name or index).
        #[arg(long)]
        dev: Option<String>,
        /// Show at most this many pages of the region.
        #[arg(long, default_value_t = 4)]
        show: u32,
    },
    /// Send a file from the page cache over TCP (ZC_IOC_SENDFILE), and
    /// report what was cached, what was read in, and every completion.
    Sendfile {
        /// The file.
        file: std::path::PathBuf,
        /// Where to: ADDRESS:PORT.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// Bytes per ZC_IOC_SENDFILE.
        #[arg(long, default_value_t = 1024 * 1024)]
        chunk: u64,
    },
    /// Have the DMA engine (QEMU's edu device) read a fresh buffer through
    /// its IOVAs: register it for the engine, read it back through the
    /// device and compare with what was written, unregister. With the
    /// module's test hooks, show the engine's read of the stale IOVA
    /// between the unmap and the unpin.
    Dma {
        /// Buffer size in bytes.
        #[arg(long, default_value_t = 3 * 4096)]
        size: usize,
    },
    /// Page-cache residency of a file: which pages are resident, dirty,
    /// under writeback, and their reference and map counts.
    Pages {
        /// The file.
        file: std::path::PathBuf,
        /// Show every page, not only the summary.
        #[arg(long)]
        all: bool,
    },
    /// Benchmark every way of sending, side by side: CPU per byte and
    /// throughput per method, route and message size (needs the VM's
    /// network, tools/harness/net.sh).
    Bench {
        /// The data file every method sends from (a multiple of the
        /// largest size; on tmpfs, so the page cache holds it all).
        #[arg(long)]
        file: std::path::PathBuf,
        /// Message sizes in bytes.
        #[arg(long, value_delimiter = ',', default_values_t = default_sizes())]
        sizes: Vec<usize>,
        /// Methods (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<bench::Method>,
        /// Routes (default: both).
        #[arg(long, value_delimiter = ',')]
        routes: Vec<bench::Route>,
        /// Seconds per sample.
        #[arg(long, default_value_t = 0.2)]
        secs: f64,
        /// A fixed number of sends per sample instead (a smoke test).
        #[arg(long)]
        sends: Option<u64>,
        /// Repetitions of every sample (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Write the full report (every sample) here as JSON.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Plot a benchmark report (JSON) as SVG and PNG.
    Plot {
        /// The report `zcopyctl bench --out` wrote.
        report: std::path::PathBuf,
        /// The directory for cpu_per_byte.svg and cpu_per_byte.png.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Profile the sending thread from `perf script` listings: a flame graph
    /// and collapsed stacks per listing, and per route and size a table of
    /// the symbols each method spends its samples in (self and inclusive).
    Profile {
        /// The directory of `<route>-<size>-<method>.perf.txt` listings
        /// (`perf script` of a `perf record -e cpu-clock -g` recording).
        dir: std::path::PathBuf,
        /// Where to write `<stem>.svg`, `<stem>.folded`, profile.txt and
        /// profile.json (default: DIR).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Count only the samples of this command's main thread (tid = pid).
        #[arg(long, default_value = "zcopyctl")]
        comm: String,
        /// Symbols per table.
        #[arg(long, default_value_t = 15)]
        top: usize,
    },
    /// Receive one TCP stream (or UDP datagrams until --count) and print
    /// the bytes received and their FNV-1a 64 hash.
    Sink {
        /// Listen on ADDRESS:PORT.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// UDP instead of TCP.
        #[arg(long)]
        udp: bool,
        /// UDP: stop after this many datagrams.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Enter this network namespace (/run/netns/NAME) first.
        #[arg(long)]
        netns: Option<String>,
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

fn version(json: bool) -> Result<()> {
    let v = device::Device::open()?.version()?;
    let features = feature_names(v.features);
    if json {
        println!(
            "{}",
            serde_json::json!({ "abi_version": v.abi_version, "features": features })
        );
    } else {
        println!(
            "zcopy ABI {} (zcopyctl built for {}), features: {}",
            v.abi_version,
            abi::ZC_ABI_VERSION,
            features.join(" ")
        );
    }
    anyhow::ensure!(
        v.abi_version == abi::ZC_ABI_VERSION,
        "the module speaks ABI {}, zcopyctl {}",
        v.abi_version,
        abi::ZC_ABI_VERSION
    );
    Ok(())
}

fn stat(json: bool) -> Result<()> {
    let st = device::Device::open()?.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    let m = &st.module;
    println!(
        "regions {} (ever {}), pages pinned {} (ever {}), mapped {} (ever {}), cap {}",
        m.regions,
        m.regions_total,
        m.pinned_pages,
        m.pinned_total,
        m.mapped_pages,
        m.mapped_total,
        st.max_pinned_pages
    );
    println!(
        "sends {}, completions {} ({} outstanding), bytes by reference {}, copied {} ({} records copied)",
        m.sends,
        m.completions,
        m.sends.saturating_sub(m.completions),
        m.bytes_zerocopy,
        m.bytes_copied,
        m.completions_copied
    );
    println!(
        "page cache: {} hits, {} misses, {} pages held by sends",
        m.cache_hits, m.cache_misses, m.file_pages_held
    );
    Ok(())
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

/// A `name value` line of the module's debugfs statistics.
fn debugfs_stat(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/sys/kernel/debug/zcopy/stats").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn dma(size: usize) -> Result<()> {
    anyhow::ensure!(size > 0, "--size must be positive");
    let d = device::Device::open()?;
    // Neither zeros nor 0xc3, what a refused device read leaves behind.
    let pattern = |seed: usize| -> Vec<u8> {
        (0..size)
            .map(|i| match (i * 131 + seed) as u8 {
                0 | 0xc3 => 0x3c,
                b => b,
            })
            .collect()
    };
    let mut buf = pattern(1);
    let r = d.register(&buf, abi::ZC_REGISTER_DMA_ENGINE, 0)?;
    let (_, pages) = d.region_info(r.id, 0, r.nr_pages.min(8))?;
    let iovas: Vec<String> = pages.iter().map(|p| format!("{:#x}", p.iova)).collect();
    println!(
        "registered {size} bytes as region {} for the DMA engine: {} pages at IOVAs {}",
        r.id,
        r.nr_pages,
        iovas.join(" ")
    );
    let max = abi::ZC_DMA_READ_MAX as usize;
    let check =
        |buf: &[u8], what: &str| -> Result<()> {
            let (mut transfers, mut got) = (0, vec![0u8; size]);
            for off in (0..size).step_by(max) {
                let end = (off + max).min(size);
                transfers += d.dma_read(r.id, off as u64, &mut got[off..end])?;
            }
            let same = got == buf;
            println!(
            "the device read {size} bytes through the IOVAs in {transfers} transfers ({what}): {}",
            if same { "identical to what user space wrote" } else { "DIFFERENT" }
        );
            anyhow::ensure!(same, "the device read other bytes than user space wrote");
            Ok(())
        };
    check(&buf, "as written")?;
    buf.copy_from_slice(&pattern(7));
    check(
        &buf,
        "after the CPU rewrote the buffer: the pinned pages, not a copy",
    )?;
    let probes = debugfs_stat("dma_probes");
    d.unregister(r.id)?;
    drop(buf);
    match (probes, debugfs_stat("dma_probes")) {
        (Some(a), Some(b)) if b > a => {
            let outcome = debugfs_stat("dma_probe_outcome");
            println!(
                "unregistered: between the unmap and the unpin the engine read IOVA {:#x}: {}; \
                 the page's pin count was {}",
                debugfs_stat("dma_probe_iova").unwrap_or(0),
                if outcome == Some(1) {
                    "refused by the IOMMU, nothing read"
                } else {
                    "NOT REFUSED"
                },
                debugfs_stat("dma_probe_pincount").unwrap_or(0)
            );
            anyhow::ensure!(outcome == Some(1), "the device read an unmapped IOVA");
        }
        _ => println!("unregistered (this module has no test hooks: no probe of the stale IOVA)"),
    }
    Ok(())
}

/// FNV-1a, 64 bits: the hash `send` and `sink` both print.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Splits `len` bytes into sends of at most `chunk`: (offset, length).
fn chunks(len: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .step_by(chunk.max(1))
        .map(move |o| (o, chunk.max(1).min(len - o)))
}

#[derive(Serialize)]
struct SendReport {
    to: String,
    protocol: &'static str,
    bytes: usize,
    fnv1a: String,
    region: u32,
    nr_pages: u32,
    nr_folios: u32,
    mapped_for: Option<i32>,
    pages: Vec<abi::ZcPageInfo>,
    sends: usize,
    completions: Vec<abi::ZcCompletion>,
    copied: usize,
    stats_before: abi::ZcCounters,
    stats_after: abi::ZcCounters,
}

#[allow(clippy::too_many_arguments)]
fn send(
    json: bool,
    to: std::net::SocketAddr,
    udp: bool,
    size: usize,
    file: Option<&Path>,
    chunk: usize,
    dev: Option<&str>,
    show: u32,
) -> Result<()> {
    use std::os::fd::AsRawFd;

    anyhow::ensure!(chunk > 0, "--chunk must be positive");
    let buf: Vec<u8> = match file {
        Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        None => (0..size).map(|i| (i * 131 + (i >> 12)) as u8).collect(),
    };
    anyhow::ensure!(!buf.is_empty(), "nothing to send");
    let ifindex = dev.map(ifindex).transpose()?;
    let d = device::Device::open()?;
    let r = d.register(&buf, abi::ZC_REGISTER_READONLY, ifindex.unwrap_or(0))?;
    let (_, pages) = d.region_info(r.id, 0, show.min(r.nr_pages))?;
    let before = d.stats()?.context;
    enum Sock {
        Tcp(std::net::TcpStream),
        Udp(std::net::UdpSocket),
    }
    let sock = if udp {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.connect(to)
            .with_context(|| format!("connecting to {to}"))?;
        Sock::Udp(s)
    } else {
        Sock::Tcp(std::net::TcpStream::connect(to).with_context(|| format!("connecting to {to}"))?)
    };
    let fd = match &sock {
        Sock::Tcp(s) => s.as_raw_fd(),
        Sock::Udp(s) => s.as_raw_fd(),
    };
    let mut sends = 0;
    for (off, len) in chunks(buf.len(), chunk) {
        let mut done = 0;
        while done < len {
            done += d.send(
                fd,
                r.id,
                (off + done) as u64,
                (len - done) as u64,
                sends as u64,
            )? as usize;
            sends += 1;
            anyhow::ensure!(
                sends < abi::ZC_COMPLETION_SLOTS as usize,
                "more sends than completion slots: use a larger --chunk"
            );
        }
    }
    drop(sock);
    let mut completions = Vec::new();
    while completions.len() < sends {
        completions.extend(d.completions(sends - completions.len())?);
    }
    let after = d.stats()?.context;
    d.unregister(r.id)?;
    let copied = completions
        .iter()
        .filter(|c| c.flags & abi::ZC_COMPLETION_COPIED != 0)
        .count();
    let report = SendReport {
        to: to.to_string(),
        protocol: if udp { "udp" } else { "tcp" },
        bytes: buf.len(),
        fnv1a: format!("{:016x}", fnv1a(FNV_INIT, &buf)),
        region: r.id,
        nr_pages: r.nr_pages,
        nr_folios: r.nr_folios,
        mapped_for: ifindex,
        pages,
        sends,
        completions,
        copied,
        stats_before: before,
        stats_after: after,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "region {}: {} bytes, {} pages, {} pins{}",
        report.region,
        report.bytes,
        report.nr_pages,
        report.nr_folios,
        ifindex.map_or(String::new(), |i| format!(", mapped for ifindex {i}"))
    );
    for (i, p) in report.pages.iter().enumerate() {
        println!(
            "  page {i}: refcount {} pincount {} iova {:#x} {}",
            p.refcount,
            p.pincount,
            p.iova,
            page_flags(p.flags)
        );
    }
    println!(
        "sent {} bytes to {} over {} in {} sends; {} completions, {} copied by the stack",
        report.bytes,
        report.to,
        report.protocol,
        report.sends,
        report.completions.len(),
        report.copied
    );
    println!(
        "bytes by reference {}, bytes copied {} (this fd)",
        after.bytes_zerocopy - before.bytes_zerocopy,
        after.bytes_copied - before.bytes_copied
    );
    println!("fnv1a {}", report.fnv1a);
    Ok(())
}

#[derive(Serialize)]
struct SendfileReport {
    file: String,
    to: String,
    bytes: u64,
    fnv1a: String,
    calls: usize,
    pages_cached: u64,
    pages_read: u64,
    completions: Vec<abi::ZcCompletion>,
    copied: usize,
}

fn sendfile(json: bool, path: &Path, to: std::net::SocketAddr, chunk: u64) -> Result<()> {
    use std::os::fd::AsRawFd;

    anyhow::ensure!(chunk > 0, "--chunk must be positive");
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let d = device::Device::open()?;
    let sock = std::net::TcpStream::connect(to).with_context(|| format!("connecting to {to}"))?;
    let (mut off, mut calls, mut cached, mut read) = (0u64, 0usize, 0u64, 0u64);
    loop {
        let r = d.sendfile(sock.as_raw_fd(), file.as_raw_fd(), off, chunk, calls as u64)?;
        if r.sent == 0 {
            break;
        }
        off += r.sent;
        calls += 1;
        cached += u64::from(r.pages_cached);
        read += u64::from(r.pages_read);
    }
    drop(sock);
    let mut completions = Vec::new();
    while completions.len() < calls {
        completions.extend(d.completions(calls - completions.len())?);
    }
    let bytes = std::fs::read(path)?;
    let copied = completions
        .iter()
        .filter(|c| c.flags & abi::ZC_COMPLETION_COPIED != 0)
        .count();
    let report = SendfileReport {
        file: path.display().to_string(),
        to: to.to_string(),
        bytes: off,
        fnv1a: format!("{:016x}", fnv1a(FNV_INIT, &bytes[..off as usize])),
        calls,
        pages_cached: cached,
        pages_read: read,
        completions,
        copied,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "sent {} bytes of {} to {} in {} calls: {} pages were cached, {} read in",
        report.bytes, report.file, report.to, report.calls, cached, read
    );
    println!(
        "{} completions, {} copied by the stack; fnv1a {}",
        report.completions.len(),
        report.copied,
        report.fnv1a
    );
    Ok(())
}

#[derive(Serialize)]
struct PagesReport {
    file: String,
    size: u64,
    pages: usize,
    resident: usize,
    dirty: usize,
    writeback: usize,
    mapped: usize,
    detail: Vec<abi::ZcFilePage>,
}

fn pages(json: bool, path: &Path, all: bool) -> Result<()> {
    use std::os::fd::AsRawFd;

    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata()?.len();
    let d = device::Device::open()?;
    let n = size.div_ceil(4096);
    let mut detail = Vec::new();
    while (detail.len() as u64) < n {
        let want = (n - detail.len() as u64).min(4096) as u32;
        let got = d.file_pages(file.as_raw_fd(), detail.len() as u64 * 4096, want)?;
        anyhow::ensure!(!got.is_empty(), "ZC_IOC_FILE_PAGES returned nothing");
        detail.extend(got);
    }
    let count = |bit: u32| detail.iter().filter(|p| p.flags & bit != 0).count();
    let report = PagesReport {
        file: path.display().to_string(),
        size,
        pages: detail.len(),
        resident: count(abi::ZC_FILE_PAGE_RESIDENT),
        dirty: count(abi::ZC_FILE_PAGE_DIRTY),
        writeback: count(abi::ZC_FILE_PAGE_WRITEBACK),
        mapped: detail.iter().filter(|p| p.mapcount > 0).count(),
        detail: if all { detail } else { Vec::new() },
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} bytes, {} pages: {} resident, {} dirty, {} under writeback, {} mapped",
        report.file,
        report.size,
        report.pages,
        report.resident,
        report.dirty,
        report.writeback,
        report.mapped
    );
    for (i, p) in report.detail.iter().enumerate() {
        println!(
            "  page {i}: refcount {} mapcount {} order {} {}",
            p.refcount,
            p.mapcount,
            p.order,
            file_page_flags(p.flags)
        );
    }
    Ok(())
}

fn file_page_flags(f: u32) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (abi::ZC_FILE_PAGE_RESIDENT, "resident"),
        (abi::ZC_FILE_PAGE_UPTODATE, "uptodate"),
        (abi::ZC_FILE_PAGE_DIRTY, "dirty"),
        (abi::ZC_FILE_PAGE_WRITEBACK, "writeback"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        "absent".into()
    } else {
        v.join(",")
    }
}

fn default_sizes() -> Vec<usize> {
    (10..=20).map(|k| 1usize << k).collect()
}

#[allow(clippy::too_many_arguments)]
fn run_bench(
    json: bool,
    file: std::path::PathBuf,
    sizes: Vec<usize>,
    methods: Vec<bench::Method>,
    routes: Vec<bench::Route>,
    secs: f64,
    sends: Option<u64>,
    reps: usize,
    out: Option<&Path>,
) -> Result<()> {
    use std::io::IsTerminal;

    anyhow::ensure!(!sizes.is_empty() && sizes.iter().all(|&s| s > 0), "--sizes");
    anyhow::ensure!(reps > 0 && secs > 0.0, "--reps and --secs must be positive");
    let opts = bench::Options {
        file,
        sizes,
        methods: if methods.is_empty() {
            bench::Method::ALL.to_vec()
        } else {
            methods
        },
        routes: if routes.is_empty() {
            vec![bench::Route::UdpDummy, bench::Route::TcpVeth]
        } else {
            routes
        },
        secs,
        sends,
        reps,
        progress: std::io::stderr().is_terminal(),
    };
    let report = bench::run(&opts)?;
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", bench::table(&report));
    }
    let bad: Vec<String> = report
        .samples
        .iter()
        .filter(|s| s.verified == Some(false))
        .map(|s| format!("{} {} {} B", s.route.name(), s.method.name(), s.size))
        .collect();
    anyhow::ensure!(
        bad.is_empty(),
        "the receiver's bytes differ: {}",
        bad.join(", ")
    );
    Ok(())
}

pub(crate) fn enter_netns(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;

    let f = std::fs::File::open(format!("/run/netns/{name}"))
        .with_context(|| format!("no network namespace {name}"))?;
    // SAFETY: plain system call on a valid descriptor.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setns");
    }
    Ok(())
}

fn sink(listen: std::net::SocketAddr, udp: bool, count: u64, netns: Option<&str>) -> Result<()> {
    use std::io::Read;

    if let Some(ns) = netns {
        enter_netns(ns)?;
    }
    let (mut bytes, mut h) = (0u64, FNV_INIT);
    let mut buf = vec![0u8; 256 * 1024];
    if udp {
        let s = std::net::UdpSocket::bind(listen)?;
        println!("listening on udp {listen}");
        for _ in 0..count {
            let n = s.recv(&mut buf)?;
            h = fnv1a(h, &buf[..n]);
            bytes += n as u64;
        }
    } else {
        let l = std::net::TcpListener::bind(listen)?;
        println!("listening on tcp {listen}");
        let (mut c, peer) = l.accept()?;
        println!("connection from {peer}");
        loop {
            let n = c.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h = fnv1a(h, &buf[..n]);
            bytes += n as u64;
        }
    }
    println!("received {bytes} bytes, fnv1a {h:016x}");
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => info(cli.json),
        Cmd::Version => version(cli.json),
        Cmd::Stat => stat(cli.json),
        Cmd::Region {
            size,
            dev,
            read_only,
            show,
        } => region(cli.json, size, dev.as_deref(), read_only, show),
        Cmd::Send {
            to,
            udp,
            size,
            file,
            chunk,
            dev,
            show,
        } => send(
            cli.json,
            to,
            udp,
            size,
            file.as_deref(),
            chunk,
            dev.as_deref(),
            show,
        ),
        Cmd::Sendfile { file, to, chunk } => sendfile(cli.json, &file, to, chunk),
        Cmd::Pages { file, all } => pages(cli.json, &file, all),
        Cmd::Dma { size } => dma(size),
        Cmd::Sink {
            listen,
            udp,
            count,
            netns,
        } => sink(listen, udp, count, netns.as_deref()),
        Cmd::Bench {
            file,
            sizes,
            methods,
            routes,
            secs,
            sends,
            reps,
            out,
        } => run_bench(
            cli.json,
            file,
            sizes,
            methods,
            routes,
            secs,
            sends,
            reps,
            out.as_deref(),
        ),
        Cmd::Plot { report, out } => {
            let text = std::fs::read_to_string(&report)
                .with_context(|| format!("reading {}", report.display()))?;
            let r: bench::Report = serde_json::from_str(&text)?;
            std::fs::create_dir_all(&out)?;
            plot::plot(&r, &out)
        }
        Cmd::Profile {
            dir,
            out,
            comm,
            top,
        } => profile::run(cli.json, &dir, out.as_deref().unwrap_or(&dir), &comm, top),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_arguments_parse() {
        let cli = Cli::try_parse_from([
            "zcopyctl",
            "bench",
            "--file",
            "/x",
            "--sizes",
            "1024,4096",
            "--methods",
            "zcopy-send,msg-zerocopy",
            "--reps",
            "5",
        ])
        .unwrap();
        match cli.cmd {
            Cmd::Bench {
                sizes,
                methods,
                reps,
                routes,
                ..
            } => {
                assert_eq!(sizes, vec![1024, 4096]);
                assert_eq!(
                    methods,
                    vec![bench::Method::ZcopySend, bench::Method::MsgZerocopy]
                );
                assert_eq!(reps, 5);
                assert!(routes.is_empty());
            }
            _ => panic!("not bench"),
        }
        assert!(
            Cli::try_parse_from(["zcopyctl", "bench", "--file", "/x", "--methods", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["zcopyctl", "bench"]).is_err());
    }

    #[test]
    fn profile_arguments_parse() {
        let cli = Cli::try_parse_from(["zcopyctl", "profile", "/d"]).unwrap();
        match cli.cmd {
            Cmd::Profile {
                dir,
                out,
                comm,
                top,
            } => {
                assert_eq!(dir, Path::new("/d"));
                assert_eq!((out, comm.as_str(), top), (None, "zcopyctl", 15));
            }
            _ => panic!("not profile"),
        }
        let cli = Cli::try_parse_from([
            "zcopyctl", "profile", "/d", "--out", "/o", "--comm", "x", "--top", "3",
        ])
        .unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Profile { out: Some(o), top: 3, .. } if o == Path::new("/o")
        ));
        assert!(Cli::try_parse_from(["zcopyctl", "profile"]).is_err());
    }

    #[test]
    fn register_is_an_alias_of_region() {
        let cli = Cli::try_parse_from(["zcopyctl", "register", "--size", "4096"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Region { size: 4096, .. }));
        let cli = Cli::try_parse_from(["zcopyctl", "--json", "stat"]).unwrap();
        assert!(cli.json && matches!(cli.cmd, Cmd::Stat));
    }

    #[test]
    fn default_sizes_are_1k_to_1m() {
        let s = default_sizes();
        assert_eq!((s[0], *s.last().unwrap(), s.len()), (1024, 1 << 20, 11));
    }

    #[test]
    fn chunks_cover_the_buffer_once() {
        let c: Vec<_> = chunks(10, 4).collect();
        assert_eq!(c, vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(chunks(4, 4).collect::<Vec<_>>(), vec![(0, 4)]);
        assert_eq!(chunks(0, 4).count(), 0);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        // From the FNV reference test vectors.
        assert_eq!(fnv1a(FNV_INIT, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_INIT, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_INIT, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn file_page_flags_are_named() {
        assert_eq!(file_page_flags(0), "absent");
        assert_eq!(
            file_page_flags(abi::ZC_FILE_PAGE_RESIDENT | abi::ZC_FILE_PAGE_DIRTY),
            "resident,dirty"
        );
    }

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
        assert_eq!(
            feature_names(abi::ZC_FEAT_SEND | abi::ZC_FEAT_SEND_BATCH),
            vec!["send", "send-batch"]
        );
    }
}
