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

# Builtins where they do: under KASAN and TCG every program started costs
# a good fraction of a second, so links and addresses are set up by one
# `ip -batch` per namespace.
by_driver() {
	for d in /sys/class/net/*; do
		drv=$(readlink "$d/device/driver" 2>/dev/null) || continue
		if [ "${drv##*/}" = "$1" ]; then
			echo "${d##*/}"
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
ip -batch - <<EOF
link set lo up
link set dev $tx down
link set dev $tx name ztx0
link set dev $rx down
link set dev $rx name zrx0
link set dev zrx0 netns zrx
addr add 10.99.1.1/24 dev ztx0
link set ztx0 up
link add zv0 type veth peer name zv1 netns zrx
addr add 10.99.2.1/24 dev zv0
link set zv0 up
link add zd0 type dummy
addr add 10.99.3.1/24 dev zd0
link set zd0 up
EOF
ip -n zrx -batch - <<EOF
link set lo up
addr add 10.99.1.2/24 dev zrx0
link set zrx0 up
addr add 10.99.2.2/24 dev zv1
link set zv1 up
EOF

# Wait for the e1000e's carrier (it comes up a moment after the link).
carrier() {
	c=0
	read -r c </sys/class/net/ztx0/carrier 2>/dev/null || c=0
	[ "$c" = 1 ]
}
i=0
while ! carrier; do
	[ $i -lt 100 ] || { echo "net.sh: ztx0 has no carrier" >&2; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
