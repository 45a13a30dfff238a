#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: the benchmark. Builds the network and the file systems,
# lets UDP datagrams up to 64 KiB leave the dummy device unfragmented (its
# MTU is raised), writes an 8 MiB data file on tmpfs (every method sends
# from it, or from the same bytes in memory) and runs `zcopyctl bench`
# with any extra arguments. The report goes to $ZCOPY_OUT/bench.json.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PATH=$root/tools/target/release:$PATH

"$here/net.sh"
"$here/disk.sh"
ip link set zd0 mtu 65535
data=/run/zcopy/tmpfs/bench.dat
head -c $((8 * 1024 * 1024)) /dev/urandom >"$data"
echo "kernel $(uname -r), $(nproc) vCPUs under QEMU TCG; data: 8 MiB on tmpfs"
zcopyctl bench --file "$data" --out "${ZCOPY_OUT:-/tmp}/bench.json" "$@"
