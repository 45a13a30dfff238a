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

/* ioctl numbers, offsets from ZC_IOC_BASE. */
#define ZC_NR_VERSION		0x00
#define ZC_NR_REGISTER		0x01
#define ZC_NR_UNREGISTER	0x02
#define ZC_NR_REGION_INFO	0x03
#define ZC_NR_STATS		0x04

#define ZC_IOC_VERSION _IOR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_VERSION, struct zc_version)

/* zc_register.flags */
#define ZC_REGISTER_READONLY	(1U << 0)	/* pin without FOLL_WRITE */

/**
 * struct zc_register - argument of %ZC_IOC_REGISTER
 * @addr:      in: start of the buffer, any alignment
 * @len:       in: its length in bytes, > 0; the pages covering
 *             [addr, addr + len) are pinned
 * @flags:     in: %ZC_REGISTER_* bits
 * @ifindex:   in: 0, or the network interface (in the caller's network
 *             namespace) whose DMA device the region is mapped for
 * @id:        out: the region id, unique for the module's lifetime
 * @nr_pages:  out: pages the region covers
 * @nr_folios: out: pins held (one per folio run: a huge page is one pin)
 * @reserved:  zero
 *
 * Pins the pages long-term, charges them to RLIMIT_MEMLOCK and, with an
 * ifindex, maps them for that interface's device through the IOMMU.
 */
struct zc_register {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__s32 ifindex;
	__u32 id;
	__u32 nr_pages;
	__u32 nr_folios;
	__u32 reserved;
};

#define ZC_IOC_REGISTER _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_REGISTER, struct zc_register)

/**
 * struct zc_unregister - argument of %ZC_IOC_UNREGISTER
 * @id:       in: a region id of this file description
 * @reserved: zero
 */
struct zc_unregister {
	__u32 id;
	__u32 reserved;
};

#define ZC_IOC_UNREGISTER _IOW(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_UNREGISTER, struct zc_unregister)

/* zc_page_info.flags */
#define ZC_PAGE_DMA_PINNED	(1U << 0)	/* folio_maybe_dma_pinned() */
#define ZC_PAGE_MAPPED		(1U << 1)	/* the region holds a device mapping */
#define ZC_PAGE_LARGE		(1U << 2)	/* part of a large folio */

/**
 * struct zc_page_info - one page of a region, as seen right now
 * @iova:     its I/O virtual address in the mapped device's domain; 0 if
 *            the region is not mapped or the caller lacks CAP_SYS_ADMIN
 * @refcount: the folio's reference count
 * @pincount: the folio's DMA pin count
 * @flags:    %ZC_PAGE_* bits
 * @order:    the folio's order (0: a single page)
 * @reserved: zero
 */
struct zc_page_info {
	__u64 iova;
	__u32 refcount;
	__u32 pincount;
	__u32 flags;
	__u16 order;
	__u16 reserved;
};

/* zc_region_info.flags */
#define ZC_REGION_READONLY	(1U << 0)	/* registered with ZC_REGISTER_READONLY */
#define ZC_REGION_MAPPED	(1U << 1)	/* holds a device mapping now */

/**
 * struct zc_region_info - argument of %ZC_IOC_REGION_INFO
 * @id:          in: the region
 * @first_page:  in: index of the first page to report
 * @nr_pages:    in: room in @pages; out: entries written
 * @flags:       out: %ZC_REGION_* bits
 * @pages:       in: user pointer to struct zc_page_info[@nr_pages]
 * @addr:        out: the region's start address, as registered
 * @len:         out: its length, as registered
 * @total_pages: out: pages in the region
 * @ifindex:     out: the interface it was mapped for, or 0
 */
struct zc_region_info {
	__u32 id;
	__u32 first_page;
	__u32 nr_pages;
	__u32 flags;
	__u64 pages;
	__u64 addr;
	__u64 len;
	__u32 total_pages;
	__s32 ifindex;
};

#define ZC_IOC_REGION_INFO _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_REGION_INFO, struct zc_region_info)

/**
 * struct zc_counters - page and region counts
 * @regions:       regions registered now
 * @pinned_pages:  pages pinned now
 * @mapped_pages:  pages mapped for a device now
 * @regions_total: regions ever registered
 * @pinned_total:  pages ever pinned
 * @mapped_total:  pages ever mapped
 */
struct zc_counters {
	__u64 regions;
	__u64 pinned_pages;
	__u64 mapped_pages;
	__u64 regions_total;
	__u64 pinned_total;
	__u64 mapped_total;
};

/**
 * struct zc_stats - argument of %ZC_IOC_STATS (written by the module)
 * @module:  for the whole module
 * @context: for this file description
 * @max_pinned_pages: the module's cap on pages pinned at once
 */
struct zc_stats {
	struct zc_counters module;
	struct zc_counters context;
	__u64 max_pinned_pages;
};

#define ZC_IOC_STATS _IOR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_STATS, struct zc_stats)

#endif /* _UAPI_LINUX_ZCOPY_H */
