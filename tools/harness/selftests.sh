#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel's own zero-copy senders, as a cross-check of the benchmark's
# MSG_ZEROCOPY and io_uring SEND_ZC numbers.
#
#   selftests.sh build     (host) build msg_zerocopy and io_uring_zerocopy_tx
#                          from the kernel tree into tools/target/selftests
#   selftests.sh run       (VM, after bench-setup.sh) run each for 2 s per
#                          size on udp-dummy and print the sending process's
#                          CPU per byte, as the benchmark measures it
. "$(dirname "$0")/common.sh"
out=$ZCOPY_ROOT/tools/target/selftests

case "${1:-}" in
build)
	src=$(kernel_src)
	st=$src/tools/testing/selftests/net
	mkdir -p "$out/inc/linux"
	# The host's UAPI headers are older than the tree's io_uring.
	cp "$src/include/uapi/linux/io_uring.h" "$out/inc/linux/"
	cp -r "$src/include/uapi/linux/io_uring" "$out/inc/linux/"
	gcc -O2 -o "$out/msg_zerocopy" "$st/msg_zerocopy.c"
	gcc -O2 -I "$out/inc" -I "$src/tools/include" -o "$out/io_uring_zerocopy_tx" \
		"$st/io_uring_zerocopy_tx.c"
	;;
run)
	echo
	echo "udp-dummy — the kernel's selftests in the same boot: sender CPU, ns per byte"
	printf '  %-6s %18s %18s\n' size msg_zerocopy io_uring_zc_tx
	for size in 4096 32768; do
		line=$(printf '  %-6s' "$((size / 1024))K")
		for t in mz io; do
			if [ $t = mz ]; then
				cmd="$out/msg_zerocopy -4 -D 10.99.3.2 -S 10.99.3.1 -t 2 -s $size -z udp"
			else
				# Mode 2: SEND_ZC from a registered buffer, 32 per batch.
				cmd="$out/io_uring_zerocopy_tx -4 -D 10.99.3.2 -t 2 -s $size -n 32 -m 2 udp"
			fi
			# bash's own `time`: user and system CPU of the command.
			r=$({ TIMEFORMAT='TIME %U %S' && time $cmd 2>&1; } 2>&1)
			# tx=N is the sends; each carried $size bytes.
			sends=$(echo "$r" | sed -n 's/.*tx=\([0-9]*\).*/\1/p' | head -n1)
			cpu=$(echo "$r" | sed -n 's/^TIME \([0-9.]*\) \([0-9.]*\)$/\1 \2/p')
			if [ -n "$sends" ] && [ -n "$cpu" ]; then
				line+=$(echo "$cpu $sends $size" |
					awk '{ printf " %18.3f", ($1 + $2) * 1e9 / ($3 * $4) }')
			else
				line+=$(printf ' %18s' failed)
			fi
		done
		echo "$line"
	done
	;;
*) die "usage: selftests.sh build|run" ;;
esac
