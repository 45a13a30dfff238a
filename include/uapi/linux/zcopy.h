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
#define ZC_ABI_VERSION 5

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
#define ZC_FEAT_SEND_BATCH	(1ULL << 3)	/* many sends in one call */
#define ZC_FEAT_DMA_ENGINE	(1ULL << 4)	/* regions for the DMA engine, ZC_IOC_DMA_READ */

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
#define ZC_NR_SEND		0x05
#define ZC_NR_XMIT		0x06
#define ZC_NR_SET_EVENTFD	0x07
#define ZC_NR_SENDFILE		0x08
#define ZC_NR_FILE_PAGES	0x09
#define ZC_NR_SEND_BATCH	0x0a
#define ZC_NR_DMA_READ		0x0b

#define ZC_IOC_VERSION _IOR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_VERSION, struct zc_version)

/* zc_register.flags */
#define ZC_REGISTER_READONLY	(1U << 0)	/* pin without FOLL_WRITE */
#define ZC_REGISTER_DMA_ENGINE	(1U << 1)	/* map for the DMA engine (ifindex 0) */

/**
 * struct zc_register - argument of %ZC_IOC_REGISTER
 * @addr:      in: start of the buffer, any alignment
 * @len:       in: its length in bytes, > 0; the pages covering
 *             [addr, addr + len) are pinned
 * @flags:     in: %ZC_REGISTER_* bits
 * @ifindex:   in: 0, or the network interface (in the caller's network
 *             namespace) whose DMA device the region is mapped for; 0
 *             with %ZC_REGISTER_DMA_ENGINE
 * @id:        out: the region id, unique for the module's lifetime
 * @nr_pages:  out: pages the region covers
 * @nr_folios: out: pins held (one per folio run: a huge page is one pin)
 * @reserved:  zero
 *
 * Pins the pages long-term, charges them to RLIMIT_MEMLOCK and, with an
 * ifindex, maps them for that interface's device through the IOMMU; with
 * %ZC_REGISTER_DMA_ENGINE, for the DMA engine (%ZC_IOC_DMA_READ).
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
#define ZC_REGION_DMA_ENGINE	(1U << 2)	/* registered with ZC_REGISTER_DMA_ENGINE */

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
 * struct zc_counters - page, region and send counts
 * @regions:       regions registered now
 * @pinned_pages:  pages pinned now
 * @mapped_pages:  pages mapped for a device now
 * @regions_total: regions ever registered
 * @pinned_total:  pages ever pinned
 * @mapped_total:  pages ever mapped
 * @sends:         sends the stack or a device accepted (each gets a
 *                 completion record)
 * @completions:   completion records produced; @sends - @completions are
 *                 outstanding
 * @bytes_zerocopy: bytes of completed sends that left by reference
 * @bytes_copied:  bytes of completed sends the stack had to copy
 *                 (%ZC_COMPLETION_COPIED)
 * @completions_copied: completion records with %ZC_COMPLETION_COPIED
 * @cache_hits:    pages %ZC_IOC_SENDFILE found in the page cache
 * @cache_misses:  pages %ZC_IOC_SENDFILE had to read in
 * @file_pages_held: page-cache pages held by sends in flight now
 * @reserved:      zero
 */
struct zc_counters {
	__u64 regions;
	__u64 pinned_pages;
	__u64 mapped_pages;
	__u64 regions_total;
	__u64 pinned_total;
	__u64 mapped_total;
	__u64 sends;
	__u64 completions;
	__u64 bytes_zerocopy;
	__u64 bytes_copied;
	__u64 completions_copied;
	__u64 cache_hits;
	__u64 cache_misses;
	__u64 file_pages_held;
	__u64 reserved;
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

/* zc_send.flags */
#define ZC_SEND_NONBLOCK	(1U << 0)	/* MSG_DONTWAIT: EAGAIN, or a short send */
#define ZC_SEND_MORE		(1U << 1)	/* MSG_MORE: more data follows */

/**
 * struct zc_send - argument of %ZC_IOC_SEND
 * @fd:       in: a connected TCP or UDP socket (IPv4 or IPv6) of the caller
 * @flags:    in: %ZC_SEND_* bits
 * @region:   in: a region id of this file description
 * @reserved: zero
 * @offset:   in: first byte to send, from the region's start address
 * @len:      in: bytes to send, > 0 (a UDP datagram must fit one)
 * @tag:      in: copied into this send's completion record
 * @sent:     out: bytes the socket accepted (a stream socket may accept
 *            fewer than @len when non-blocking or interrupted)
 *
 * The bytes enter the stack as page fragments over the region's pinned
 * pages. Unless the call fails, exactly one &struct zc_completion with
 * @tag follows, once the stack has released every fragment; until then
 * the region cannot be unregistered (%EBUSY) and its bytes must not be
 * modified.
 */
struct zc_send {
	__s32 fd;
	__u32 flags;
	__u32 region;
	__u32 reserved;
	__u64 offset;
	__u64 len;
	__u64 tag;
	__u64 sent;
};

#define ZC_IOC_SEND _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_SEND, struct zc_send)

/* Longest header ZC_IOC_XMIT copies into an sk_buff's linear area. */
#define ZC_XMIT_MAX_HDR		256

/**
 * struct zc_xmit - argument of %ZC_IOC_XMIT (needs %CAP_NET_RAW)
 * @ifindex: in: the interface, in the caller's network namespace
 * @flags:   in: zero
 * @region:  in: a region id of this file description
 * @hdr_len: in: bytes at @hdr, from the device's link header length to
 *           %ZC_XMIT_MAX_HDR
 * @hdr:     in: user pointer to the frame's headers (link, network,
 *           transport), complete with checksums: the frame is sent as is
 * @offset:  in: first payload byte, from the region's start address
 * @len:     in: payload bytes, > 0; the frame must fit the device's MTU
 *           and the payload at most MAX_SKB_FRAGS pages
 * @tag:     in: copied into the completion record
 *
 * Builds an sk_buff holding only the headers in its linear area (after the
 * device's needed headroom) and the payload as fragments over the pinned
 * pages, and hands it to the device (dev_queue_xmit). One completion
 * record follows unless the call fails.
 */
struct zc_xmit {
	__s32 ifindex;
	__u32 flags;
	__u32 region;
	__u32 hdr_len;
	__u64 hdr;
	__u64 offset;
	__u64 len;
	__u64 tag;
};

#define ZC_IOC_XMIT _IOW(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_XMIT, struct zc_xmit)

/* zc_completion.flags */
#define ZC_COMPLETION_COPIED	(1U << 0)	/* the stack copied the bytes */

/**
 * struct zc_completion - a record read(2) returns, one per send
 * @tag:    the send's tag
 * @bytes:  bytes the send handed to the stack (zc_send.sent)
 * @status: 0; reserved for failures known only after the send returned
 * @flags:  %ZC_COMPLETION_* bits
 *
 * Produced once the stack has released every fragment of the send: the
 * region's bytes may be reused and the region unregistered. COPIED: some
 * or all of the bytes were copied rather than sent by reference (delivery
 * to a local socket, a route through a device without scatter-gather or
 * checksum offload), as MSG_ZEROCOPY's SO_EE_CODE_ZEROCOPY_COPIED.
 */
struct zc_completion {
	__u64 tag;
	__u64 bytes;
	__s32 status;
	__u32 flags;
};

/* Sends outstanding plus records unread, per file description, at most. */
#define ZC_COMPLETION_SLOTS	1024

/**
 * struct zc_eventfd - argument of %ZC_IOC_SET_EVENTFD
 * @fd:       in: an eventfd signalled (by 1) for every completion record
 *            produced, or -1 to stop
 * @reserved: zero
 */
struct zc_eventfd {
	__s32 fd;
	__u32 reserved;
};

#define ZC_IOC_SET_EVENTFD _IOW(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_SET_EVENTFD, struct zc_eventfd)

/* Most bytes one ZC_IOC_SENDFILE sends; a longer request is a short send. */
#define ZC_SENDFILE_MAX		(16U << 20)

/**
 * struct zc_sendfile - argument of %ZC_IOC_SENDFILE
 * @sock:     in: a connected TCP or UDP socket (IPv4 or IPv6) of the caller
 * @fd:       in: a regular file opened for reading
 * @flags:    in: %ZC_SEND_* bits
 * @reserved: zero
 * @offset:   in: file offset of the first byte, at most LLONG_MAX
 * @len:      in: bytes to send, > 0, at most LLONG_MAX, and so is @offset +
 *            @len; the send stops at the end of the file and after
 *            %ZC_SENDFILE_MAX bytes
 * @tag:      in: copied into the completion record
 * @sent:     out: bytes the socket accepted (0 at or past the end of file)
 * @pages_cached: out: pages that were in the page cache already; 0 unless
 *                the caller may see the file's residency (%ZC_IOC_FILE_PAGES)
 * @pages_read:   out: pages read in for this send; 0 likewise
 *
 * Sends the file's page-cache pages as fragments, holding a reference on
 * each until the stack has released them; one completion record follows
 * when @sent > 0. The bytes are whatever the pages hold when the device
 * reads them: a write or truncate in the meantime is not undone.
 */
struct zc_sendfile {
	__s32 sock;
	__s32 fd;
	__u32 flags;
	__u32 reserved;
	__u64 offset;
	__u64 len;
	__u64 tag;
	__u64 sent;
	__u32 pages_cached;
	__u32 pages_read;
};

#define ZC_IOC_SENDFILE _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_SENDFILE, struct zc_sendfile)

/* zc_file_page.flags */
#define ZC_FILE_PAGE_RESIDENT	(1U << 0)	/* in the page cache */
#define ZC_FILE_PAGE_UPTODATE	(1U << 1)
#define ZC_FILE_PAGE_DIRTY	(1U << 2)
#define ZC_FILE_PAGE_WRITEBACK	(1U << 3)

/**
 * struct zc_file_page - one page of a file's page cache, as seen right now
 * @refcount: its folio's reference count, not counting the lookup's own
 * @mapcount: how many page tables map the folio
 * @flags:    %ZC_FILE_PAGE_* bits; 0 (and all else 0) when not resident
 * @order:    the folio's order
 */
struct zc_file_page {
	__u32 refcount;
	__u32 mapcount;
	__u32 flags;
	__u32 order;
};

/**
 * struct zc_file_pages - argument of %ZC_IOC_FILE_PAGES
 * @fd:       in: a regular file opened for reading
 * @nr_pages: in: room in @pages (at most 4096 are written); out: written
 * @offset:   in: file offset; the page containing it is reported first
 * @pages:    in: user pointer to struct zc_file_page[@nr_pages]
 * @resident: out: entries with %ZC_FILE_PAGE_RESIDENT
 * @reserved: zero
 *
 * Only for callers who may see which pages are cached, by cachestat(2)'s
 * rule: @fd is open for writing, or the caller owns the file or could open
 * it for writing; -EPERM otherwise.
 */
struct zc_file_pages {
	__s32 fd;
	__u32 nr_pages;
	__u64 offset;
	__u64 pages;
	__u32 resident;
	__u32 reserved;
};

#define ZC_IOC_FILE_PAGES _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_FILE_PAGES, struct zc_file_pages)

/* Most sends one ZC_IOC_SEND_BATCH takes. */
#define ZC_SEND_BATCH_MAX	64

/**
 * struct zc_send_batch - argument of %ZC_IOC_SEND_BATCH
 * @sends:    in: user pointer to struct zc_send[@nr], each exactly the
 *            argument of one %ZC_IOC_SEND (its own socket, region range,
 *            flags and tag); each accepted entry's @sent is written back
 * @nr:       in: entries, 1 to %ZC_SEND_BATCH_MAX
 * @accepted: out: entries that went out, from the first; in: zero
 * @error:    out: the errno (positive) that refused entry @accepted, or 0
 *            if none was refused; in: zero
 * @reserved: zero
 *
 * The entries are sent in order, as that many %ZC_IOC_SEND calls would be,
 * and each accepted one has its own completion record. Sending stops at
 * the first entry refused (its errno in @error; it consumes nothing: no
 * record, no reservation) or accepted short (@sent < @len, on a stream
 * socket: the entries after it would leave a gap in the stream). If the
 * first entry is refused, the call fails with its errno, as %ZC_IOC_SEND
 * would; otherwise it succeeds and says how far it got.
 */
struct zc_send_batch {
	__u64 sends;
	__u32 nr;
	__u32 accepted;
	__s32 error;
	__u32 reserved;
};

#define ZC_IOC_SEND_BATCH _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_SEND_BATCH, struct zc_send_batch)

/* Most bytes one ZC_IOC_DMA_READ reads: the engine's buffer. */
#define ZC_DMA_READ_MAX		4096

/**
 * struct zc_dma_read - argument of %ZC_IOC_DMA_READ
 * @id:        in: a region of this file description registered with
 *             %ZC_REGISTER_DMA_ENGINE and still mapped
 * @len:       in: bytes to read, 1 to %ZC_DMA_READ_MAX
 * @offset:    in: where to start, in bytes from the region's start address
 * @buf:       in: user pointer to @len bytes, which receive what the
 *             engine read
 * @transfers: out: DMA transfers the engine made from the region (one per
 *             page the range touches, and one more where the engine's
 *             buffer fills up mid-page); in: zero
 * @reserved:  zero
 *
 * The DMA engine reads bytes [@offset, @offset + @len) of the region
 * through the region's IOVAs (through the IOMMU) into its own buffer, and
 * the bytes are handed back in @buf: what a device sees of the pinned
 * pages, not what the CPU sees.
 */
struct zc_dma_read {
	__u32 id;
	__u32 len;
	__u64 offset;
	__u64 buf;
	__u32 transfers;
	__u32 reserved;
};

#define ZC_IOC_DMA_READ _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_DMA_READ, struct zc_dma_read)

#endif /* _UAPI_LINUX_ZCOPY_H */
