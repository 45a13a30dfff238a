#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the VM (started by vm.sh): load zcopy, keep its KUnit results,
# run the command, then save the kernel log. Arguments: OUT KO|- CMD...
set -u
out=$1 ko=$2
shift 2

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
export ZCOPY_GUEST=1 ZCOPY_OUT=$out ZCOPY_KO=$ko

if [ "$ko" != - ]; then
	insmod "$ko" >"$out/insmod" 2>&1
	echo "status $?" >>"$out/insmod"
	# KUnit suites ran while the module loaded; their debugfs results go
	# away with the module, so keep them now.
	mkdir -p "$out/kunit"
	for d in /sys/kernel/debug/kunit/zcopy_*; do
		[ -e "$d/results" ] && cat "$d/results" >"$out/kunit/$(basename "$d").ktap"
	done
fi

"$@" >"$out/output" 2>&1
rc=$?

if [ -w /sys/kernel/debug/kmemleak ]; then
	# One scan reports every unreferenced object older than 5 s; a leak by
	# the command is older than that by the time it is done.
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >"$out/kmemleak"
fi
dmesg >"$out/dmesg"
echo "$rc" >"$out/rc"
sync
