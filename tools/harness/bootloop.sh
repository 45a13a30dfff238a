#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot a zcopy kernel N times in the VM, exactly as vm.sh does but with no
# module, no disk and nothing to run, and count the boots whose kernel log
# has a report. For trouble of the machine or the kernel that zcopy cannot
# cause, such as a boot-time splat that comes and goes.
#
#   bootloop.sh [--kernel test|release] [-n N] [--args 'KERNEL ARGS']
#
# --args replaces the machine part of the kernel command line
# ($VM_KERNEL_ARGS in common.sh), to compare a setting with and without.
# Each boot's console is kept in $ZCOPY_CACHE/runs/bootloop/.
. "$(dirname "$0")/common.sh"

variant=test n=20 args=$VM_KERNEL_ARGS
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) variant=$2; shift 2 ;;
	-n) n=$2; shift 2 ;;
	--args) args=$2; shift 2 ;;
	*) die "usage: bootloop.sh [--kernel test|release] [-n N] [--args 'KERNEL ARGS']" ;;
	esac
done
kdir=$(kernel_dir "$variant")
out=$ZCOPY_CACHE/runs/bootloop
rm -rf "$out" && mkdir -p "$out"

say "$n boots of the $variant kernel, command line: $args"
bad=0
for i in $(seq 1 "$n"); do
	log=$out/boot-$i.log
	start=$SECONDS
	PATH="$VENV/bin:$PATH" timeout --foreground -k 10 600 vng --run "$kdir" "${VNG_OPTS[@]}" \
		--qemu-opts="${VM_MACHINE_OPTS[*]}" --append "root=/dev/root $args" \
		--exec true </dev/null >"$log" 2>&1 || true
	reports=$(grep -E 'BUG: |WARNING: |Oops|UBSAN: |Call Trace:|Kernel panic' "$log" || true)
	grep -q 'script exited with code 0' "$log" || reports="${reports:+$reports
}the boot did not run its command (log: $log)"
	if [ -n "$reports" ]; then
		bad=$((bad + 1))
		printf 'boot %2d: %3d s: REPORT\n%s\n' "$i" $((SECONDS - start)) "$(echo "$reports" | head -n 3 | sed 's/^/    /')"
	else
		printf 'boot %2d: %3d s: clean\n' "$i" $((SECONDS - start))
	fi
done
echo "$bad of $n boots had a report (logs: $out)"
[ "$bad" = 0 ]
