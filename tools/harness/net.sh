#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: the network the send tests and the demo use. Idempotent.
#
#   namespace "init"                          namespace "zrx"
#   ztx0 (e1000e)     10.99.1.1 ── QEMU hub ── zrx0 (virtio-net) 10.99.1.2
#   zv0  (veth)       10.99.2.1 ────────────── zv1  (veth)       10.99.2.2
#   zd0  (dummy)      10.99.3.1   (nothing behind it: a pure transmit sink)
#
# Traffic to 10.99.1.2 leaves through the e1000e, is DMA'd through the
# emulated IOMMU, crosses the hub and arrives by DMA on the virtio-net.
set -eu

by_driver() {
	for d in /sys/class/net/*; do
		if [ "$(basename "$(readlink -f "$d/device/driver" 2>/dev/null)")" = "$1" ]; then
			basename "$d"
			return
		fi
	done
}

[ -e /run/netns/zrx ] && ip -n zrx link show zrx0 >/dev/null 2>&1 && exit 0

tx=$(by_driver e1000e)
rx=$(by_driver virtio_net)
[ -n "$tx" ] || { echo "net.sh: no e1000e interface" >&2; exit 1; }
[ -n "$rx" ] || { echo "net.sh: no virtio-net interface" >&2; exit 1; }

ip netns add zrx
ip link set lo up
ip -n zrx link set lo up

ip link set dev "$tx" down
ip link set dev "$tx" name ztx0
ip link set dev "$rx" down
ip link set dev "$rx" name zrx0
ip link set dev zrx0 netns zrx
ip addr add 10.99.1.1/24 dev ztx0
ip link set ztx0 up
ip -n zrx addr add 10.99.1.2/24 dev zrx0
ip -n zrx link set zrx0 up

ip link add zv0 type veth peer name zv1 netns zrx
ip addr add 10.99.2.1/24 dev zv0
ip link set zv0 up
ip -n zrx addr add 10.99.2.2/24 dev zv1
ip -n zrx link set zv1 up

ip link add zd0 type dummy
ip addr add 10.99.3.1/24 dev zd0
ip link set zd0 up

# Wait for the e1000e's carrier (it comes up a moment after the link).
i=0
while [ "$(cat /sys/class/net/ztx0/carrier 2>/dev/null)" != 1 ]; do
	[ $i -lt 100 ] || { echo "net.sh: ztx0 has no carrier" >&2; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
