/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zcopy: zero-copy networking from pinned, IOMMU-mapped user pages.
 *
 * This header is the ABI of /dev/zcopy and its single source of truth: the
 * module's Rust bindings are generated from it by bindgen at build time, and
 * the user-space crates check their mirror of it against it in a test.
 *
 * Every argument structure has explicit padding, only fixed-width types and
 * 64-bit user pointers, so it has one layout on every architecture. Reserved
 * fields must be zero on input; the module answers EINVAL otherwise so they
 * can be given a meaning later.
 */
#ifndef _UAPI_LINUX_ZCOPY_H
#define _UAPI_LINUX_ZCOPY_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Bumped on any incompatible change to this file. */
#define ZC_ABI_VERSION 1

/* The ioctl type byte ('Z' sub-range 0xc0-0xdf is unassigned). */
#define ZC_IOC_MAGIC 'Z'
#define ZC_IOC_BASE 0xc0

/*
 * Feature bits reported by ZC_IOC_VERSION, one per ioctl family beyond
 * ZC_IOC_VERSION itself. A bit is set only when the running module
 * implements that family.
 */
#define ZC_FEAT_REGISTER	(1ULL << 0)	/* ZC_IOC_REGISTER and friends */
#define ZC_FEAT_SEND		(1ULL << 1)	/* sends from regions */
#define ZC_FEAT_SENDFILE	(1ULL << 2)	/* sends from the page cache */

/**
 * struct zc_version - argument of %ZC_IOC_VERSION (written by the module)
 * @abi_version: %ZC_ABI_VERSION of the running module
 * @reserved:    zero
 * @features:    %ZC_FEAT_* bits the running module implements
 */
struct zc_version {
	__u32 abi_version;
	__u32 reserved;
	__u64 features;
};

#define ZC_IOC_VERSION _IOR(ZC_IOC_MAGIC, ZC_IOC_BASE + 0x00, struct zc_version)

#endif /* _UAPI_LINUX_ZCOPY_H */
