#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: what every benchmark sample needs, for bench.sh and
# profile.sh. Builds the network and the file systems, lets UDP datagrams
# up to 64 KiB leave the dummy device unfragmented (its MTU is raised),
# writes an 8 MiB data file on tmpfs (every method sends from it, or from
# the same bytes in memory) and prints its path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

"$here/net.sh" >&2
"$here/disk.sh" >&2
ip link set zd0 mtu 65535
data=/run/zcopy/tmpfs/bench.dat
head -c $((8 * 1024 * 1024)) /dev/urandom >"$data"
echo "$data"
