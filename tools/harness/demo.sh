#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`, inside the VM with zcopy loaded: show what a user wants to see
# first. Runs under tools/harness/vm.sh.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$root/tools/target/release:$PATH

echo "== kernel: $(uname -r), booted with: $(cat /proc/cmdline | tr ' ' '\n' | grep -E '^(intel_iommu|iommu)' | tr '\n' ' ')"
echo "== the module"
grep -h zcopy /proc/modules || true
dmesg | grep -E 'zcopy:' | sed 's/^/   /'
echo "== what zcopy sees"
zcopyctl info
