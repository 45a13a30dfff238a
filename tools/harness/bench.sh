#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: the benchmark. The setup of bench-setup.sh, then
# `zcopyctl bench` with any extra arguments. The report goes to
# $ZCOPY_OUT/bench.json.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PATH=$root/tools/target/release:$PATH

data=$("$here/bench-setup.sh")
echo "kernel $(uname -r), $(nproc) vCPUs under QEMU TCG; data: 8 MiB on tmpfs"
zcopyctl bench --file "$data" --out "${ZCOPY_OUT:-/tmp}/bench.json" "$@"
