#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rustfmt the module's sources with the kernel's .rustfmt.toml (never
# `make M=... rustfmt`, which formats the kernel tree too).
#   rustfmt.sh [--check]
. "$(dirname "$0")/common.sh"
cd "$ZCOPY_ROOT"
rustfmt --edition 2021 --config-path "$(kernel_src)/.rustfmt.toml" "$@" rust/zcopy_main.rs
