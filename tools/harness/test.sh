#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make test`: every test zcopy has, one verdict.
#
#  1. provision what is missing (and print the versions in use);
#  2. host: cargo test, clippy and rustfmt for tools/;
#  3. the module: built against the test kernel with CLIPPY=1, zero
#     warnings, rustfmt-clean;
#  4. the VM (test kernel: KASAN, lockdep, DEBUG_VM, IOMMU_DEBUG_PAGEALLOC,
#     kmemleak, ...): load the module (its KUnit suites run), then the
#     integration suite;
#  5. zcopy-verdict reads it all, with the kernel log, and prints
#     `N passed, M failed`.
. "$(dirname "$0")/common.sh"
cd "$ZCOPY_ROOT"

"$ZCOPY_ROOT/tools/harness/provision.sh"

out=${ZCOPY_TEST_OUT:-$ZCOPY_CACHE/runs/test}
rm -rf "$out" && mkdir -p "$out"
checks=()
check() { # check NAME CMD...: run CMD, log to $out, record pass or fail
	local name=$1 log
	shift
	log=$out/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_').log
	if "$@" >"$log" 2>&1; then
		checks+=(--pass "$name")
	else
		checks+=(--fail "$name" --fail-log "$log")
		say "FAILED: $name (log: $log)"
	fi
}

say "host: building and testing tools/"
check "host: cargo build" cargo build --release --quiet --manifest-path tools/Cargo.toml
cargo test --manifest-path tools/Cargo.toml --quiet >"$out/cargo-test.log" 2>&1 || true
check "host: cargo clippy -D warnings" cargo clippy --quiet --manifest-path tools/Cargo.toml --all-targets -- -D warnings
check "host: cargo fmt --check" sh -c "cd tools && cargo fmt --check"
check "host: integration suite builds" make -s itest
check "host: samples build (C and Rust)" make -s samples
check "host: samples: cargo clippy -D warnings and fmt" sh -c \
	"cargo clippy --quiet --manifest-path samples/rust/Cargo.toml --target-dir tools/target/samples -- -D warnings && cd samples/rust && cargo fmt --check"

say "module: building against the test kernel (first time: ~10 min)"
check "module: builds with CLIPPY=1 and no warnings" tools/harness/module.sh test
check "module: rustfmt --check" tools/harness/rustfmt.sh --check

vm_rc=0
if [ -f "$ZCOPY_CACHE/module/$(basename "$(kernel_dir test 2>/dev/null)")/zcopy.ko" ]; then
	say "VM: KUnit suites and the integration suite on the test kernel"
	tools/harness/vm.sh --kernel test --out "$out/vm" -- \
		env ZCOPY_HARNESS="$ZCOPY_ROOT/tools/harness" "$ZCOPY_ROOT/tools/target/itest/zcopy_itest" >/dev/null 2>"$out/vm.log" || vm_rc=$?
	cat "$out/vm.log" >&2
fi

suites=()
for s in $(grep -ho 'kunit_tests(zcopy_[a-z0-9_]*)' rust/*.rs | sed 's/.*(\(.*\))/\1/' | sort -u); do
	suites+=(--expect-suite "$s")
done

# Without a finished VM run, the suites it should have run are failures.
[ -f "$out/vm/rc" ] || checks+=(--fail "VM run finished" --fail-log "$out/vm.log")

exec tools/target/release/zcopy-verdict \
	--cargo-test "$out/cargo-test.log" "${checks[@]}" \
	--insmod "$out/vm/insmod" --kunit "$out/vm/kunit" "${suites[@]}" \
	--itest "$out/vm/output" --dmesg "$out/vm/dmesg" --kmemleak "$out/vm/kmemleak"
