#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: the file systems the page-cache tests and the demo use.
# Idempotent. Prints nothing on success.
#
#   /run/zcopy/ext4    the ext4 disk vm.sh attaches (virtio-blk, serial
#                      zcopy-ext4): page-cache misses are read from it by DMA
#   /run/zcopy/tmpfs   a tmpfs: the page cache is the file
set -eu
mkdir -p /run/zcopy/ext4 /run/zcopy/tmpfs
if ! mountpoint -q /run/zcopy/ext4; then
	dev=""
	for b in /sys/block/vd*; do
		[ "$(cat "$b/serial" 2>/dev/null)" = zcopy-ext4 ] && dev=/dev/$(basename "$b")
	done
	[ -n "$dev" ] || { echo "disk.sh: no virtio-blk disk with serial zcopy-ext4" >&2; exit 1; }
	mount -t ext4 "$dev" /run/zcopy/ext4
fi
mountpoint -q /run/zcopy/tmpfs || mount -t tmpfs -o size=128m zcopy /run/zcopy/tmpfs
