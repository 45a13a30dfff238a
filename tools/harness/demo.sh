#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`, inside the VM with zcopy loaded: show what a user wants to see
# first. Runs under tools/harness/vm.sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$root/tools/target/release:$PATH

# checked PORT CMD...: a receiver in zrx on 10.99.1.2:PORT, then CMD (a
# zcopyctl send or sendfile to it); both print an FNV-1a hash of the bytes,
# which must agree.
checked() {
	local port=$1 sink i=0 sent got
	shift
	zcopyctl sink --netns zrx --listen 10.99.1.2:$port >/tmp/zcopy-sink.out 2>&1 &
	sink=$!
	until grep -q listening /tmp/zcopy-sink.out 2>/dev/null || [ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	"$@" >/tmp/zcopy-send.out || { cat /tmp/zcopy-send.out; exit 1; }
	cat /tmp/zcopy-send.out
	wait $sink
	sed 's/^/receiver: /' /tmp/zcopy-sink.out
	sent=$(sed -n 's/.*fnv1a //p' /tmp/zcopy-send.out)
	got=$(sed -n 's/.*fnv1a //p' /tmp/zcopy-sink.out)
	if [ -z "$sent" ] || [ "$sent" != "$got" ]; then
		echo "== MISMATCH: sender ${sent:-nothing}, receiver ${got:-nothing}"
		exit 1
	fi
	echo "== every byte arrived: sender and receiver both hash to $sent"
}

echo "== kernel $(uname -r), booted with: $(tr ' ' '\n' </proc/cmdline | grep -E '^(intel_iommu|iommu)' | tr '\n' ' ')"
echo "== the module"
grep -h zcopy /proc/modules || true
dmesg | grep -E 'zcopy:' | sed 's/^/   /'
echo
echo "== what zcopy sees"
zcopyctl info

echo
echo "== the network: ztx0 (e1000e) here, zrx0 (virtio-net) in namespace zrx, one QEMU hub between"
"$root/tools/harness/net.sh"
ip -br addr show ztx0
ip -n zrx -br addr show zrx0

echo
echo "== a 64 KiB buffer, registered and mapped for ztx0's DMA device, then unregistered"
zcopyctl region --size 65536 --dev ztx0 --show 4

size=$((4 * 1024 * 1024))
echo
echo "== $size bytes sent zero-copy over TCP: ztx0 -> wire -> zrx0, a receiver in zrx checks them"
checked 7000 zcopyctl send --to 10.99.1.2:7000 --size $size --chunk $((512 * 1024)) --dev ztx0
echo
echo "== an 8 MiB file on the ext4 disk (virtio-blk), sent from the page cache"
"$root/tools/harness/disk.sh"
f=/run/zcopy/ext4/demo.bin
head -c $((8 * 1024 * 1024)) /dev/urandom >$f
sync
echo 3 >/proc/sys/vm/drop_caches
echo "-- after drop_caches:"
zcopyctl pages $f
for round in first second; do
	echo "-- $round send (misses are read from the disk, hits come from the page cache):"
	checked 7001 zcopyctl sendfile $f --to 10.99.1.2:7001 --chunk $((2 * 1024 * 1024))
done
echo "-- after the sends:"
zcopyctl pages $f

echo
echo "== the DMA engine (QEMU's edu device, behind the IOMMU) reads a buffer through its IOVAs"
zcopyctl dma --size $((3 * 4096))
iova=$(sed -n 's/^dma_probe_iova //p' /sys/kernel/debug/zcopy/stats)
if [ -n "$iova" ] && [ "$iova" != 0 ]; then
	sleep 1 # the IOMMU reports faults by interrupt
	echo "-- the IOMMU's report of that refused read:"
	dmesg | grep -F "fault addr $(printf '%#x' "$iova") " | sed 's/^/   /' || echo "   (none logged)"
fi

echo
echo "== the module's counters (/sys/kernel/debug/zcopy/stats)"
sed 's/^/   /' /sys/kernel/debug/zcopy/stats
