#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build (or find in the cache) one of the two zcopy kernels and print its
# build directory on stdout.
#
#   kernel.sh test      KASAN, lockdep, DEBUG_VM, IOMMU_DEBUG_PAGEALLOC, ...
#   kernel.sh release   the same machine without the checkers
#   kernel.sh --key VARIANT   print the cache key only
#
# Both are built by clang in the trixie build root (KASAN with Rust needs
# clang, and a module must be built with its kernel's toolchain, so one
# toolchain for everything). The cache key covers everything that goes into
# the build: kernel version, config fragments, this script, rustc, bindgen
# and clang versions. A key hit skips the build.
. "$(dirname "$0")/common.sh"

key_only=0
[ "${1:-}" = --key ] && { key_only=1; shift; }
variant=${1:-}
case "$variant" in
release) fragments=(zcopy.config profile.config) ;;
test) fragments=(zcopy.config debug.config) ;;
*) die "usage: kernel.sh test|release" ;;
esac

src=$(kernel_src)
kver=$(cat "$SRC_STAMP")
toolchain=$(
	rustc --version
	bindgen --version 2>&1 | head -n1
	inroot "clang$LLVM_SUFFIX" --version | head -n1
)
key=$(
	{
		echo "$kver $variant"
		echo "$toolchain"
		for f in "${fragments[@]}"; do cat "$ZCOPY_ROOT/tools/kernel/$f"; done
		cat "$0"
	} | sha256sum | cut -c1-16
)
out=$ZCOPY_CACHE/kbuild/$variant-$kver-$key
[ "$key_only" = 1 ] && { echo "$out"; exit 0; }

if [ -f "$out/.complete" ]; then
	say "$variant kernel: cache hit ($out)"
	echo "$out"
	exit 0
fi

rm -rf "$out"
mkdir -p "$out"
log=$out/build.log
say "$variant kernel: building $kver in $out (log: $log)"
kmake() { inroot make -C "$src" O="$out" LLVM="$LLVM_SUFFIX" "$@"; }

# The fragments carry a reason after each symbol; kconfig wants bare lines.
clean=$out/zcopy-fragment.config
for f in "${fragments[@]}"; do
	sed -e 's/[[:space:]]*#.*$//' -e '/^$/d' "$ZCOPY_ROOT/tools/kernel/$f"
done >"$clean"

{
	kmake tinyconfig
	inroot "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$clean"
	kmake olddefconfig
} >"$log" 2>&1 || die "kernel configuration failed, see $log"

# Kconfig drops a symbol whose dependencies are unmet without a word.
dropped=()
while IFS= read -r line; do
	case "$line" in
	*=n) grep -qE "^${line%=n}=[ym]$" "$out/.config" && dropped+=("$line") ;;
	*) grep -qxF "$line" "$out/.config" || dropped+=("$line") ;;
	esac
done <"$clean"
if [ ${#dropped[@]} -ne 0 ]; then
	say "these requested symbols did not survive olddefconfig:"
	printf '    %s\n' "${dropped[@]}" >&2
	if printf '%s\n' "${dropped[@]}" | grep -q '^CONFIG_RUST='; then
		say "Rust is not available to this kernel build; 'make rustavailable' says:"
		kmake rustavailable >&2 || true
	fi
	die "kernel configuration for '$variant' is incomplete"
fi

start=$SECONDS
kmake -j"$(($(nproc) + 1))" >>"$log" 2>&1 || {
	tail -n 30 "$log" >&2
	die "kernel build failed, see $log"
}
touch "$out/.complete"
# One build tree per variant: drop those with a stale key, and the module
# builds made against them.
for old in "$ZCOPY_CACHE/kbuild/$variant-"* "$ZCOPY_CACHE/module/$variant-"*; do
	[ "$(basename "$old")" = "$(basename "$out")" ] || rm -rf "$old"
done
say "$variant kernel: built in $((SECONDS - start)) s"
echo "$out"
