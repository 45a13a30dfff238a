//! Network disturbances, on the fuzzer's own lab: a veth pair `zfz0`
//! (10.99.9.1, this namespace) / `zfz1` (10.99.9.2, namespace `zfz`),
//! with a receiver in `zfz`. Its links go down and up, change MTU, move
//! to namespace `zfz2` and back, lose and regain their addresses, and the
//! pair is deleted and recreated (a new ifindex), while the workers send
//! through it and register regions for it. Everything is deleted at the
//! end; net.sh's interfaces are left as they were.
//!
//! With `--move-nics`, net.sh's e1000e `ztx0` also goes down and up and
//! moves to `zfz2` and back (a `NETDEV_UNREGISTER` for the regions mapped
//! for it), and is restored at the end: back in this namespace, its
//! address, up, with carrier.

use std::time::{Duration, Instant};

use crate::{
    net::{
        ifindex, ip_batch, netns_exists, LAB_IF, LAB_LOCAL, LAB_NS, LAB_NS2, LAB_PEER,
        LAB_REMOTE_CIDR, TX_ADDR, TX_IF,
    },
    rng::Rng,
    state::Shared,
};

/// The lab: made by [`Lab::setup`], removed by [`Lab::teardown`] (or when
/// dropped, on any way out).
pub struct Lab {
    pub active: bool,
    move_nics: bool,
    torn: std::sync::atomic::AtomicBool,
    /// This process's pid: `ip ... netns PID` names our namespace.
    home: String,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

impl Lab {
    /// A lab that does nothing (`--no-net`).
    pub fn none() -> Self {
        Self {
            active: false,
            move_nics: false,
            torn: true.into(),
            home: std::process::id().to_string(),
        }
    }

    /// Makes the lab, after removing what a previous run may have left.
    pub fn setup(move_nics: bool) -> Self {
        let mut lab = Self {
            active: false,
            move_nics,
            torn: false.into(),
            home: std::process::id().to_string(),
        };
        lab.remove();
        let _ = std::process::Command::new("ip")
            .args(["netns", "add", LAB_NS])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "add", LAB_NS2])
            .status();
        lab.create_pair();
        lab.active = ifindex(LAB_IF) > 0 && netns_exists(LAB_NS);
        lab
    }

    fn create_pair(&self) {
        ip_batch(
            None,
            &[
                format!("link add {LAB_IF} type veth peer name {LAB_PEER} netns {LAB_NS}"),
                format!("addr add {LAB_LOCAL} dev {LAB_IF}"),
                format!("link set {LAB_IF} up"),
            ],
        );
        ip_batch(
            Some(LAB_NS),
            &[
                "link set lo up".into(),
                format!("addr add {LAB_REMOTE_CIDR} dev {LAB_PEER}"),
                format!("link set {LAB_PEER} up"),
            ],
        );
    }

    /// Brings `zfz0` home and up with its address, wherever it went.
    fn restore_pair(&self) {
        let home = &self.home;
        ip_batch(Some(LAB_NS2), &[format!("link set {LAB_IF} netns {home}")]);
        ip_batch(
            Some(LAB_NS2),
            &[format!("link set {LAB_PEER} netns {LAB_NS}")],
        );
        ip_batch(None, &[format!("link set {LAB_PEER} netns {LAB_NS}")]);
        if ifindex(LAB_IF) == 0 {
            self.create_pair();
            return;
        }
        ip_batch(
            None,
            &[
                format!("addr add {LAB_LOCAL} dev {LAB_IF}"),
                format!("link set {LAB_IF} mtu 1500"),
                format!("link set {LAB_IF} up"),
            ],
        );
        ip_batch(
            Some(LAB_NS),
            &[
                format!("addr add {LAB_REMOTE_CIDR} dev {LAB_PEER}"),
                format!("link set {LAB_PEER} up"),
            ],
        );
    }

    /// Brings `ztx0` home, addressed and up, and waits for its carrier.
    fn restore_tx(&self) {
        let home = &self.home;
        ip_batch(Some(LAB_NS2), &[format!("link set {TX_IF} netns {home}")]);
        ip_batch(
            None,
            &[
                format!("addr add {TX_ADDR} dev {TX_IF}"),
                format!("link set {TX_IF} up"),
            ],
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            let c = std::fs::read_to_string(format!("/sys/class/net/{TX_IF}/carrier"));
            if c.is_ok_and(|c| c.trim() == "1") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("zcopy-fuzz: warning: {TX_IF} has no carrier after restoring it");
    }

    /// Deletes the pair and the namespaces (wherever the ends are).
    fn remove(&self) {
        for ns in [None, Some(LAB_NS), Some(LAB_NS2)] {
            ip_batch(ns, &s(&["link del zfz0", "link del zfz1"]));
        }
        for ns in [LAB_NS, LAB_NS2] {
            if netns_exists(ns) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", ns])
                    .status();
            }
        }
    }

    /// One disturbance; returns its name.
    pub fn step(&self, sh: &Shared, rng: &mut Rng) -> &'static str {
        let home = &self.home;
        let nap = |rng: &mut Rng| std::thread::sleep(Duration::from_millis(rng.range(10, 300)));
        let what = match rng.below(if self.move_nics { 9 } else { 7 }) {
            0 => {
                ip_batch(None, &[format!("link set {LAB_IF} down")]);
                nap(rng);
                ip_batch(None, &[format!("link set {LAB_IF} up")]);
                "down-up"
            }
            1 => {
                ip_batch(Some(LAB_NS), &[format!("link set {LAB_PEER} down")]);
                nap(rng);
                ip_batch(Some(LAB_NS), &[format!("link set {LAB_PEER} up")]);
                "peer-down-up"
            }
            2 => {
                let mtu = rng.pick(&[68, 576, 1280, 9000, 1500]);
                ip_batch(None, &[format!("link set {LAB_IF} mtu {mtu}")]);
                "mtu"
            }
            3 => {
                ip_batch(Some(LAB_NS), &[format!("link set {LAB_PEER} netns {home}")]);
                nap(rng);
                self.restore_pair();
                "peer-netns"
            }
            4 => {
                ip_batch(None, &[format!("link set {LAB_IF} netns {LAB_NS2}")]);
                sh.ifaces.refresh();
                nap(rng);
                self.restore_pair();
                "netns"
            }
            5 => {
                ip_batch(None, &[format!("link del {LAB_IF}")]);
                sh.ifaces.refresh();
                nap(rng);
                self.create_pair();
                "recreate"
            }
            6 => {
                ip_batch(None, &[format!("addr flush dev {LAB_IF}")]);
                nap(rng);
                ip_batch(None, &[format!("addr add {LAB_LOCAL} dev {LAB_IF}")]);
                "addr"
            }
            7 => {
                ip_batch(None, &[format!("link set {TX_IF} down")]);
                nap(rng);
                ip_batch(None, &[format!("link set {TX_IF} up")]);
                "nic-down-up"
            }
            _ => {
                ip_batch(None, &[format!("link set {TX_IF} netns {LAB_NS2}")]);
                sh.ifaces.refresh();
                nap(rng);
                self.restore_tx();
                "nic-netns"
            }
        };
        sh.ifaces.refresh();
        what
    }

    /// Restores what `--move-nics` touched and deletes the lab.
    pub fn teardown(&self) {
        if self.torn.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if self.move_nics {
            self.restore_tx();
        }
        // Whatever of it was made, even if it never became usable.
        self.remove();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

pub fn run(sh: &Shared, lab: &Lab, mut rng: Rng) {
    if !lab.active {
        return;
    }
    while super::pause(sh, &mut rng, 50, 500) {
        super::count("net", lab.step(sh, &mut rng));
    }
}
