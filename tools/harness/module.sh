#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build zcopy.ko against one of the two kernels and print its path.
#
#   module.sh test|release
#
# The module is built in the build root with the kernel's own toolchain and
# the kernel's clippy lints (CLIPPY=1); any compiler or clippy warning fails
# the build. Sources are mirrored into a per-kernel directory in the cache,
# so the two builds never share objects and the repository stays clean.
# Both builds carry the test hooks (ZCOPY_TEST_HOOKS=y: the DMA engine's
# probe of a stale IOVA at teardown, Documentation/dma.rst), which the test
# suite and `make run` show; a plain kbuild of the module has none.
. "$(dirname "$0")/common.sh"

variant=${1:-}
[ "$variant" = test ] || [ "$variant" = release ] || die "usage: module.sh test|release"
kdir=$(kernel_dir "$variant")
out=$ZCOPY_CACHE/module/$(basename "$kdir")
mkdir -p "$out"
rsync -a --delete --exclude '*.o' --exclude '*.ko' --exclude '.*.cmd' \
	--exclude '*_generated.rs' --exclude '*.mod*' --exclude '*.d' \
	--exclude modules.order --exclude Module.symvers \
	"$ZCOPY_ROOT/Kbuild" "$ZCOPY_ROOT/include" "$ZCOPY_ROOT/rust" "$out/" >/dev/null
# rsync --delete only prunes inside the listed directories; that is all
# the module's sources.
log=$out/build.log
inroot make -C "$kdir" M="$out" LLVM="$LLVM_SUFFIX" CLIPPY=1 ZCOPY_TEST_HOOKS=y >"$log" 2>&1 || {
	cat "$log" >&2
	die "module build failed"
}
if grep -qiE '(^|[^a-z_])(warning|error)(\[|:)' "$log"; then
	cat "$log" >&2
	die "module build has warnings (zero allowed)"
fi
say "module: $out/zcopy.ko"
echo "$out/zcopy.ko"
