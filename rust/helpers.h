/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for the zcopy Rust crate: the kernel offers these only as
 * static inline functions or macros, which bindgen cannot call. Each helper
 * is a one-line forward; the logic stays in Rust.
 */
#ifndef ZCOPY_HELPERS_H
#define ZCOPY_HELPERS_H

#include <linux/types.h>

/* ZC_IOC_VERSION as the C preprocessor computes it, to check Rust's value. */
u32 zc_c_ioc_version(void);

#endif /* ZCOPY_HELPERS_H */
