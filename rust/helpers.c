// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the zcopy Rust crate; see helpers.h.
 */
#include <linux/build_bug.h>
#include <linux/zcopy.h>

#include "helpers.h"

/* The ABI must not depend on the architecture: no implicit padding. */
static_assert(sizeof(struct zc_version) == 16);

u32 zc_c_ioc_version(void)
{
	return ZC_IOC_VERSION;
}

