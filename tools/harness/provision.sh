#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Provision everything zcopy needs on a fresh Debian bookworm machine:
# host packages, the Rust pieces the kernel wants (rust-src, bindgen),
# virtme-ng, the Linux source package and a trixie build root with clang.
# Idempotent: each step checks for its result first, so a second run does no
# network work.
. "$(dirname "$0")/common.sh"

HOST_PACKAGES="flex bison bc libelf-dev libssl-dev cpio kmod qemu-system-x86 debootstrap python3-venv xz-utils iproute2 ethtool rsync e2fsprogs fonts-dejavu-core linux-perf"

step_host_packages() {
	local missing=()
	for p in $HOST_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return
	say "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "could not install: ${missing[*]}"
}

step_rust() {
	command -v rustc >/dev/null || die "rustc not found: zcopy needs a rustup toolchain (rustup.rs)"
	if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
		say "adding rustup component rust-src"
		rustup component add rust-src >/dev/null || die "rustup component add rust-src failed"
	fi
	if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
		say "installing bindgen-cli $BINDGEN_VERSION (about a minute)"
		cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION" ||
			die "cargo install bindgen-cli failed"
	fi
}

step_virtme() {
	[ -x "$VENV/bin/vng" ] && "$VENV/bin/vng" --version 2>/dev/null | grep -q "$VIRTME_NG_VERSION" && return
	say "installing virtme-ng $VIRTME_NG_VERSION in $VENV"
	python3 -m venv "$VENV" || die "python3 -m venv failed"
	"$VENV/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION" || die "pip install virtme-ng failed"
}

# Download linux-source-$KERNEL_SERIES from whichever suite has it, without
# touching the machine's own apt configuration.
step_kernel_source() {
	[ -f "$SRC_STAMP" ] && [ -d "$(kernel_src)" ] && return
	local mirror apt dl
	mirror=$(debian_mirror)
	apt=$ZCOPY_CACHE/apt
	dl=$ZCOPY_CACHE/dl
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dl" "$ZCOPY_CACHE/src"
	local opts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=-
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Get::List-Cleanup=0
		-qq)
	local suite deb=""
	for suite in $KERNEL_SUITES; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt/sources.list"
		apt-get "${opts[@]}" update 2>/dev/null || continue
		if (cd "$dl" && apt-get "${opts[@]}" download "linux-source-$KERNEL_SERIES" 2>/dev/null); then
			deb=$(ls -t "$dl"/linux-source-"$KERNEL_SERIES"_*.deb | head -n1)
			say "linux-source-$KERNEL_SERIES from $suite: $(basename "$deb")"
			break
		fi
	done
	[ -n "$deb" ] || die "linux-source-$KERNEL_SERIES is in none of: $KERNEL_SUITES (mirror $mirror)"
	local x=$ZCOPY_CACHE/dl/x
	rm -rf "$x" && dpkg -x "$deb" "$x"
	local tarball
	tarball=$(ls "$x"/usr/src/linux-source-"$KERNEL_SERIES".tar.* 2>/dev/null | head -n1)
	[ -n "$tarball" ] || die "no source tarball inside $deb"
	say "unpacking $(basename "$tarball")"
	local tmp=$ZCOPY_CACHE/src/.unpack
	rm -rf "$tmp" && mkdir -p "$tmp"
	tar -xf "$tarball" -C "$tmp"
	local ver
	ver=$(make -s -C "$tmp/linux-source-$KERNEL_SERIES" kernelversion)
	rm -rf "$ZCOPY_CACHE/src/linux-$ver"
	mv "$tmp/linux-source-$KERNEL_SERIES" "$ZCOPY_CACHE/src/linux-$ver"
	rm -rf "$tmp" "$x"
	echo "$ver" >"$SRC_STAMP"
}

step_buildroot() {
	[ -f "$BUILDROOT/.complete" ] && return
	say "creating the $BUILDROOT_SUITE build root (clang${LLVM_SUFFIX}) in $BUILDROOT"
	rm -rf "$BUILDROOT"
	debootstrap --variant=minbase --include="$BUILDROOT_PACKAGES" \
		"$BUILDROOT_SUITE" "$BUILDROOT" "$(debian_mirror)" >"$ZCOPY_CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed, see $ZCOPY_CACHE/debootstrap.log"
	touch "$BUILDROOT/.complete"
}

versions() {
	say "kernel      $(cat "$SRC_STAMP")"
	say "rustc       $(rustc --version)"
	say "bindgen     $(bindgen --version 2>&1 | head -n1)"
	say "clang       $(inroot clang$LLVM_SUFFIX --version | head -n1) (build root, also libclang)"
	say "qemu        $(qemu-system-x86_64 --version | head -n1)"
	say "virtme-ng   $("$VENV/bin/vng" --version 2>&1 | head -n1)"
}

[ "$(id -u)" = 0 ] || die "provisioning needs root (apt-get, debootstrap, chroot)"
mkdir -p "$ZCOPY_CACHE"
step_host_packages
step_rust
step_virtme
step_kernel_source
step_buildroot
versions
