#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`, inside the VM with zcopy loaded: show what a user wants to see
# first. Runs under tools/harness/vm.sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$root/tools/target/release:$PATH

echo "== kernel $(uname -r), booted with: $(tr ' ' '\n' </proc/cmdline | grep -E '^(intel_iommu|iommu)' | tr '\n' ' ')"
echo "== the module"
grep -h zcopy /proc/modules || true
dmesg | grep -E 'zcopy:' | sed 's/^/   /'
echo
echo "== what zcopy sees"
zcopyctl info

# The interface the e1000e drives: its DMA goes through the emulated IOMMU.
nic=""
for d in /sys/class/net/*; do
	[ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = e1000e ] && nic=$(basename "$d")
done
echo
echo "== a 64 KiB buffer, registered and mapped for ${nic:-no NIC} (e1000e), then unregistered"
zcopyctl region --size 65536 ${nic:+--dev "$nic"} --show 4
