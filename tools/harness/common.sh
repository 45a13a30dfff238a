# SPDX-License-Identifier: GPL-2.0
# Shared settings for the harness scripts. Sourced, never run.
#
# Everything built or downloaded lives under $ZCOPY_CACHE, outside the
# repository, so a clean clone reuses it and `rm -rf` of the cache is a
# true cold start.

set -euo pipefail

ZCOPY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ZCOPY_CACHE=${ZCOPY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcopy}
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PATH"

# The kernel series we build against; any point release of it will do and
# the one used is recorded in $ZCOPY_CACHE/src/VERSION.
KERNEL_SERIES=7.3
# Debian suites that carry linux-source-$KERNEL_SERIES, tried in order.
KERNEL_SUITES="trixie-backports sid experimental"
# The build root: a Debian trixie tree with clang 19, needed because a
# KASAN kernel with Rust must be built by clang >= 17 (bookworm has 14).
BUILDROOT_SUITE=trixie
BUILDROOT_PACKAGES="clang-19,lld-19,llvm-19,libclang-19-dev,flex,bison,bc,libelf-dev,libssl-dev,make,python3,cpio,kmod,xz-utils,ca-certificates"
LLVM_SUFFIX=-19
BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42

# The VM's machine, shared by vm.sh and bootloop.sh (virtme-ng adds
# `-machine q35 -cpu max` under TCG): an emulated Intel IOMMU with
# interrupt remapping, an e1000e and a virtio-net NIC behind it, joined by
# a QEMU hub, and QEMU's `edu` device behind it too: zcopy's DMA engine
# (Documentation/dma.rst).
VM_MACHINE_OPTS=(
	-machine q35,kernel-irqchip=split
	-device intel-iommu,intremap=on,caching-mode=on
	-netdev hubport,id=wire0,hubid=0
	-netdev hubport,id=wire1,hubid=0
	-device e1000e,netdev=wire0,mac=52:54:00:5a:43:01
	-device virtio-net-pci,netdev=wire1,mac=52:54:00:5a:43:02,iommu_platform=on,disable-legacy=on
	-device edu
)
# The kernel command line's machine part. `no5lvl`: QEMU's `max` CPU offers
# LA57, and with 5-level paging a KASAN kernel reports a false
# "wild-memory-access" when an interrupt arrives while identify_cpu() has
# cleared the boot CPU's capabilities (pgtable_l5_enabled() then reads
# false, so KASAN_SHADOW_START moves above the direct map). 4-level paging
# gives 1 GiB of guest memory all it needs. Documentation/testing.rst.
VM_KERNEL_ARGS="intel_iommu=on iommu.strict=1 no5lvl"
# How virtme-ng boots it: TCG (/dev/kvm here cannot run an ordinary
# kernel), the host's root over 9p, 2 vCPUs, 1 GiB.
VNG_OPTS=(--disable-kvm --force-9p --skip-modules --cpus 2 --memory 1G --verbose)

BUILDROOT=$ZCOPY_CACHE/buildroot
VENV=$ZCOPY_CACHE/venv
SRC_STAMP=$ZCOPY_CACHE/src/VERSION

say() { printf '[zcopy] %s\n' "$*" >&2; }
die() { printf '[zcopy] error: %s\n' "$*" >&2; exit 1; }

# The Debian mirror this machine's own apt sources use.
debian_mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ')
	echo "${m:-http://deb.debian.org/debian}"
}

# The build directory of kernel VARIANT, built first if the cache misses.
# Builds are serialised: two at once on two cores help nobody, and two of
# the same variant would share a directory.
kernel_dir() {
	mkdir -p "$ZCOPY_CACHE/kbuild"
	flock "$ZCOPY_CACHE/kbuild/.lock" "$ZCOPY_ROOT/tools/harness/kernel.sh" "$1"
}

# The unpacked kernel source tree (after provisioning).
kernel_src() {
	[ -f "$SRC_STAMP" ] || die "kernel source missing: run 'make provision'"
	echo "$ZCOPY_CACHE/src/linux-$(cat "$SRC_STAMP")"
}

# Run a command inside the build root. The cache, the repository and the
# Rust toolchain homes are bind-mounted at the same paths, so absolute paths
# recorded by kbuild are valid both inside and outside.
inroot() {
	[ -x "$BUILDROOT/usr/bin/clang$LLVM_SUFFIX" ] || die "build root missing: run 'make provision'"
	unshare --mount --fork -- /bin/bash -euc '
		root=$1; shift
		mount --make-rprivate /
		# A fresh /tmp first: the binds below may live under /tmp (a
		# clone in /tmp), and must not be hidden by it.
		mount -t tmpfs tmpfs "$root/tmp"
		for d in /proc /sys /dev "$ZCOPY_CACHE/src" "$ZCOPY_CACHE/kbuild" "$ZCOPY_CACHE/module" \
			 "$ZCOPY_ROOT" "$RUSTUP_HOME" "$CARGO_HOME"; do
			mkdir -p "$d" "$root$d"
			mount --rbind "$d" "$root$d"
		done
		exec chroot "$root" /usr/bin/env -i \
			HOME=/root PATH="$CARGO_HOME/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
			RUSTUP_HOME="$RUSTUP_HOME" CARGO_HOME="$CARGO_HOME" \
			LIBCLANG_PATH=/usr/lib/llvm'"$LLVM_SUFFIX"'/lib \
			/bin/bash -euc "cd \"\$1\"; shift; exec \"\$@\"" - "$PWD" "$@"
	' - "$BUILDROOT" "$@"
}
export ZCOPY_ROOT ZCOPY_CACHE
