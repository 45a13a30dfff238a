#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run one command in a VM with zcopy loaded, and bring back its output,
# exit status and the full kernel log.
#
#   vm.sh [--kernel test|release] [--out DIR] [--no-module] -- CMD [ARG...]
#
# The VM: QEMU (TCG: /dev/kvm here cannot run an ordinary kernel) on a q35
# machine with an emulated Intel IOMMU in strict mode, an e1000e and a
# virtio-net NIC (iommu_platform=on) joined by a QEMU hub and nothing else
# (no host networking), and a fresh 256 MiB ext4 disk on virtio-blk
# (iommu_platform=on, serial zcopy-ext4). virtme-ng boots the kernel with the host's root file
# system over 9p, so host-built programs run in the guest unchanged.
#
# After the run, DIR (default $ZCOPY_CACHE/runs/VARIANT) holds:
#   output        the command's stdout and stderr
#   rc            its exit status
#   insmod        insmod's output and status
#   kunit/*.ktap  the module's KUnit results, one file a suite
#   dmesg         the kernel log, after a kmemleak scan
#   console.log   everything QEMU's console printed
. "$(dirname "$0")/common.sh"

variant=release out="" module=1
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) variant=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--no-module) module=0; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || die "usage: vm.sh [--kernel test|release] [--out DIR] [--no-module] -- CMD [ARG...]"
out=${out:-$ZCOPY_CACHE/runs/$variant}

kdir=$(kernel_dir "$variant")
ko=-
[ "$module" = 1 ] && ko=$("$ZCOPY_ROOT/tools/harness/module.sh" "$variant")

rm -rf "$out" && mkdir -p "$out"
out=$(cd "$out" && pwd)

# A fresh ext4 disk every run, on virtio-blk behind the IOMMU: page-cache
# misses are read from it by DMA (the guest mounts it, tools/harness/disk.sh).
disk=$out.disk.img
rm -f "$disk"
truncate -s 256M "$disk"
mkfs.ext4 -q -F -L zcopy "$disk" || die "mkfs.ext4 failed"

qemu_opts=(
	"${VM_MACHINE_OPTS[@]}"
	-drive file=$disk,if=none,id=zdisk,format=raw,cache=unsafe
	-device virtio-blk-pci,drive=zdisk,serial=zcopy-ext4,iommu_platform=on,disable-legacy=on
)
guest_cmd=$(printf '%q ' "$ZCOPY_ROOT/tools/harness/guest.sh" "$out" "$ko" "$@")
timeout=${ZCOPY_VM_TIMEOUT:-1200}

say "booting the $variant kernel (TCG, 2 vCPUs, Intel IOMMU strict, e1000e + virtio-net, virtio-blk)"
start=$SECONDS
set +e
PATH="$VENV/bin:$PATH" timeout --foreground -k 10 "$timeout" vng --run "$kdir" "${VNG_OPTS[@]}" \
	--rwdir "$out" --cwd "$PWD" \
	--qemu-opts="${qemu_opts[*]}" \
	--append "root=/dev/root $VM_KERNEL_ARGS panic_on_oops=1 kunit.filter_glob=zcopy_*" \
	--exec "$guest_cmd" </dev/null >"$out/console.log" 2>&1
vng_rc=$?
set -e
say "VM finished in $((SECONDS - start)) s"

[ -f "$out/output" ] && cat "$out/output"
if [ ! -f "$out/rc" ]; then
	tail -n 60 "$out/console.log" >&2
	[ "$vng_rc" = 124 ] && die "the VM did not finish within ${timeout}s (log: $out/console.log)"
	die "the VM ended before the command finished (log: $out/console.log)"
fi
exit "$(cat "$out/rc")"
