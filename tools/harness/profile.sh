#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Inside the VM: where a send's CPU time goes. The benchmark's setup
# (tools/harness/bench-setup.sh), then one bench sample per route, size and
# method under `perf record -e cpu-clock -g` (TCG has no PMU; cpu-clock is
# a timer), each written out with `perf script` to
# $ZCOPY_OUT/prof/ROUTE-SIZE-METHOD.perf.txt for `zcopyctl profile`, which
# keeps the sending (main) thread's samples of the timed send loop: the
# samples are stamped with CLOCK_MONOTONIC (-k), the clock the bench's
# report (ROUTE-SIZE-METHOD.json) gives the loop's start and end in.
#
#   profile.sh [SECS]     seconds per sample (default 3)
#
# ZCOPY_PROFILE_METHODS (space-separated) replaces the list of methods.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PATH=$root/tools/target/release:$PATH
secs=${1:-3}
methods=${ZCOPY_PROFILE_METHODS:-msg-zerocopy io-uring-send-zc zcopy-send zcopy-send-batch sendfile zcopy-sendfile}
out=${ZCOPY_OUT:-/tmp}/prof
mkdir -p "$out"

data=$("$here/bench-setup.sh")
echo "kernel $(uname -r), $(nproc) vCPUs under QEMU TCG; perf $(perf version | cut -d' ' -f3)"

for rs in udp-dummy:4096 tcp-veth:4096 tcp-veth:65536; do
	route=${rs%:*} size=${rs#*:}
	for m in $methods; do
		f=$out/$route-$size-$m
		# perf record cannot write its file on the 9p share: a local one.
		perf record -q -e cpu-clock -g -k CLOCK_MONOTONIC -o "$data.perf" -- \
			zcopyctl bench --file "$data" --routes "$route" --sizes "$size" \
			--methods "$m" --secs "$secs" --reps 1 --out "$f.json" >"$f.bench.txt" 2>&1 ||
			{ cat "$f.bench.txt"; exit 1; }
		perf script -F +pid -i "$data.perf" >"$f.perf.txt" 2>/dev/null
		rm -f "$data.perf"
		echo "$route $size $m: $(grep -c 'cpu-clock' "$f.perf.txt") samples"
	done
done
