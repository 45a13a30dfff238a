#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make fuzz SECS=N [SEED=S] [THREADS=T]`: the fuzzer (tools/fuzz) on the
# test kernel (KASAN, lockdep, kmemleak...) for N seconds, then rmmod, then
# one verdict: the fuzzer's own checks (counters back to their baseline, no
# call that should have failed succeeded, records match sends), rmmod
# succeeded, and no splat or leak in the kernel log.
. "$(dirname "$0")/common.sh"
cd "$ZCOPY_ROOT"

secs=${SECS:-300}
seed=${SEED:-$(date +%s)}
threads=${THREADS:-4}
out=$ZCOPY_CACHE/runs/fuzz
rm -rf "$out" && mkdir -p "$out"

tools/harness/module.sh test >/dev/null
say "fuzzing for $secs s (seed $seed, $threads threads) on the test kernel"
# The guest leaves the fuzzer's exit code and rmmod's in the output.
fuzz=$ZCOPY_ROOT/tools/target/release/zcopy-fuzz
tools/harness/vm.sh --kernel test --out "$out/vm" -- /bin/sh -c \
	"$ZCOPY_ROOT/tools/harness/net.sh >/dev/null; $fuzz --seed $seed --secs $secs --threads $threads; echo fuzz exit \$?; rmmod zcopy; echo rmmod exit \$?" \
	>/dev/null 2>"$out/vm.log" || true
cat "$out/vm/output" 2>/dev/null

checks=()
grep -q '^fuzz exit 0$' "$out/vm/output" 2>/dev/null &&
	checks+=(--pass "fuzzer: $secs s, seed $seed, no finding") ||
	checks+=(--fail "fuzzer: $secs s, seed $seed, no finding" --fail-log "$out/vm/output")
grep -q '^rmmod exit 0$' "$out/vm/output" 2>/dev/null &&
	checks+=(--pass "rmmod after the fuzzer") ||
	checks+=(--fail "rmmod after the fuzzer" --fail-log "$out/vm/output")
exec tools/target/release/zcopy-verdict "${checks[@]}" \
	--dmesg "$out/vm/dmesg" --kmemleak "$out/vm/kmemleak"
