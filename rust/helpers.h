/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for the zcopy Rust crate: the kernel offers these only as
 * static inline functions or macros, which bindgen cannot call, or they
 * touch types (struct net_device) the kernel's Rust bindings do not carry.
 * Each helper is a forward of a few lines; the logic stays in Rust.
 *
 * A network device crosses into Rust only as an opaque pointer.
 */
#ifndef ZCOPY_HELPERS_H
#define ZCOPY_HELPERS_H

#include <linux/types.h>

struct bio_vec;
struct device;
struct eventfd_ctx;
struct file;
struct folio;
struct kiocb;
struct mm_struct;
struct page;
struct sk_buff;
struct socket;
struct ubuf_info;
struct user_struct;
struct wait_queue_head;
struct workqueue_struct;

/* ZC_IOC_* as the C preprocessor computes them, to check Rust's values. */
u32 zc_c_ioc_number(u32 nr);
/* sizeof(struct sg_table) and offsetof(nents), to check the Rust layout. */
u32 zc_c_sg_table_size(void);
u32 zc_c_sg_table_nents_offset(void);

/*
 * current->mm, no reference taken. The kernel's Rust bindings for
 * task_struct do not match the C layout in this configuration (their
 * offset of ->mm is off by 48 bytes), so Rust must not read task fields.
 */
struct mm_struct *zc_current_mm(void);

/* get_current_user(): a reference to the caller's user_struct. */
struct user_struct *zc_get_current_user(void);
/* rlimit(RLIMIT_MEMLOCK) of the caller, in bytes. */
unsigned long zc_rlimit_memlock(void);
/* &user->locked_vm and &mm->pinned_vm: 64-bit counters, used atomically. */
s64 *zc_user_locked_vm(struct user_struct *user);
s64 *zc_mm_pinned_vm(struct mm_struct *mm);

struct folio *zc_page_folio(struct page *page);
unsigned long zc_folio_nr_pages(struct folio *folio);
unsigned int zc_folio_order(struct folio *folio);
int zc_folio_ref_count(struct folio *folio);
/* The folio's DMA pin count (exact for large folios, refcount-derived
 * as folio_maybe_dma_pinned() computes it for small ones). */
int zc_folio_pincount(struct folio *folio);
bool zc_folio_maybe_dma_pinned(struct folio *folio);

/*
 * The network device with this ifindex in the caller's network namespace,
 * held (dev_hold), or NULL.
 */
void *zc_netdev_get(int ifindex);
void zc_netdev_put(void *netdev);
/*
 * The device doing the interface's DMA: the nearest ancestor of the
 * net_device's own device that has a DMA mask, or NULL (virtual ones).
 */
struct device *zc_netdev_dma_device(void *netdev);
/* Whether it is registered, not going away, and in the caller's network
 * namespace; call under RTNL. */
bool zc_netdev_registered(void *netdev);
void zc_rtnl_lock(void);
void zc_rtnl_unlock(void);

/* The netdevice notifier that calls zcopy_netdev_unregister(). */
int zc_netdev_notifier_register(void);
void zc_netdev_notifier_unregister(void);

/*
 * KUnit only: an anonymous private read-write mapping of len bytes in the
 * test's mm (kunit_vm_mmap; unmapped when the test ends), or an error
 * value (IS_ERR_VALUE).
 */
unsigned long zc_kunit_mmap_anon(unsigned long len);

/* Implemented in Rust (netdev.rs): NETDEV_UNREGISTER, under RTNL. */
void zcopy_netdev_unregister(void *netdev);

/* --- sends ---------------------------------------------------------- */

/* sizeof(struct ubuf_info) and sizeof(struct bio_vec), to check Rust's. */
u32 zc_c_ubuf_info_size(void);
u32 zc_c_bio_vec_size(void);

/*
 * A bio_vec per page, each covering the whole page, in a kvmalloc'd array
 * freed by zc_bvecs_free(); NULL when out of memory.
 */
struct bio_vec *zc_bvecs_alloc(struct page *const *pages, size_t n);
void zc_bvecs_free(struct bio_vec *bv);

/*
 * Makes uarg, storage embedded in a send object, a zcopy ubuf_info with
 * one reference (the caller's). Its ops call zcopy_ubuf_event() for every
 * reference dropped and zcopy_ubuf_done() after the last.
 */
void zc_ubuf_init(struct ubuf_info *uarg);
/*
 * Drops the caller's reference; true if it was the last, in which case the
 * ops were not called and the caller finishes the send itself.
 */
bool zc_ubuf_put(struct ubuf_info *uarg);

/* Implemented in Rust (send.rs); may run in softirq context. */
void zcopy_ubuf_event(struct ubuf_info *uarg, bool skb, bool success);
void zcopy_ubuf_done(struct ubuf_info *uarg);

/* Whether a socket is TCP or UDP over IPv4/IPv6 (-EOPNOTSUPP otherwise). */
int zc_sock_check(struct socket *sock);
/*
 * fdget() of a TCP or UDP socket: its struct fd word, to give to
 * zc_fdput() exactly once, with *sock set; or -EBADF, -ENOTSOCK,
 * -EOPNOTSUPP (IS_ERR_VALUE). fdget takes no reference when the file
 * table is not shared, which a send needs only for the call.
 */
unsigned long zc_sock_fdget(int fd, struct socket **sock);
void zc_fdput(unsigned long word);

/*
 * sock_sendmsg() of bytes [skip, skip + len) of the pages in bv[0..nr),
 * as page fragments owned by uarg (msg_ubuf, MSG_ZEROCOPY, MSG_NOSIGNAL).
 * Returns bytes accepted or -errno.
 */
int zc_sock_send(struct socket *sock, struct ubuf_info *uarg,
		 const struct bio_vec *bv, size_t nr, size_t skip, size_t len,
		 bool nonblock, bool more);

/*
 * Raw transmit: an sk_buff whose linear area holds hdr (with the device's
 * needed headroom reserved before it) and whose fragments are bytes
 * [skip, skip + len) of bv[0..nr), owned by uarg. Returns it, or an
 * ERR_PTR: -ENETDOWN, -EOPNOTSUPP (no scatter-gather), -EINVAL (header
 * shorter than the link header or longer than ZC_XMIT_MAX_HDR),
 * -EMSGSIZE (beyond the MTU, or more pages than an skb has fragments),
 * -ENOMEM.
 */
struct sk_buff *zc_xmit_build(void *netdev, struct ubuf_info *uarg,
			      const void *hdr, u32 hdr_len,
			      const struct bio_vec *bv, size_t nr, size_t skip,
			      size_t len);
/* dev_queue_xmit(skb), consuming it; 0, or -ENOBUFS when it was dropped. */
int zc_xmit(struct sk_buff *skb);
/* Frees an skb that was never transmitted. */
void zc_skb_free(struct sk_buff *skb);
/* For tests: an skb's linear length, fragment count and fragments. */
u32 zc_skb_headlen(struct sk_buff *skb);
u32 zc_skb_headroom(struct sk_buff *skb);
u32 zc_skb_nr_frags(struct sk_buff *skb);
struct page *zc_skb_frag_page(struct sk_buff *skb, u32 i);
u32 zc_skb_frag_off(struct sk_buff *skb, u32 i);
u32 zc_skb_frag_size(struct sk_buff *skb, u32 i);
u32 zc_netdev_needed_headroom(void *netdev);

/* Whether a read on this kiocb must not block. */
bool zc_kiocb_nowait(struct kiocb *iocb);

/* The module's workqueue for send teardown; created and destroyed once. */
/*
 * wait_event_interruptible(*wq, ready(arg)), and a wake-up of @wq's
 * waiters if it has any (wq_has_sleeper), for the completion queue.
 */
int zc_wait_ready(struct wait_queue_head *wq, bool (*ready)(const void *), const void *arg);
void zc_wake_ready(struct wait_queue_head *wq);

int zc_wq_create(void);
void zc_wq_destroy(void);
struct workqueue_struct *zc_wq(void);

/* --- the page cache ----------------------------------------------- */

/*
 * Whether zcopy can send from this file: 0, -EBADF (not open for reading),
 * -EINVAL (not a regular file), -EOPNOTSUPP (its page cache is not its
 * content: sysfs, cgroupfs, configfs, procfs, debugfs, DAX...; see
 * helpers.c for the rule).
 */
int zc_file_check(struct file *file);
/*
 * Whether the caller may learn which of the file's pages are cached:
 * cachestat(2)'s rule (can_do_cachestat), after CVE-2019-5489. The file is
 * open for writing, or the caller owns it (or has CAP_FOWNER over its
 * owner), or could open it for writing.
 */
bool zc_file_may_see_cache(struct file *file);
/*
 * rw_verify_area(READ, ...) for bytes [pos, pos + count), as sendfile(2)
 * does before reading: the range (-EINVAL), the LSM's
 * security_file_permission() and fanotify's permission and pre-content
 * events (which may sleep). 0 or -errno. Process context, no locks held.
 */
int zc_file_read_verify(struct file *file, s64 pos, size_t count);
/* fsnotify_access(): the IN_ACCESS/FAN_ACCESS event of a read that read. */
void zc_file_accessed(struct file *file);
s64 zc_file_size(struct file *file);
/*
 * The page at index of the file, referenced and up to date: looked up in
 * the page cache, or read in (readahead of ra_pages from index, then a
 * synchronous read if needed). *hit says whether it was cached; on a miss,
 * *cached_ahead is how many of the next ra_pages - 1 pages were cached
 * before the readahead. A tmpfs hole is the zero page. ERR_PTR (-EIO,
 * -EINTR, -ENOMEM...) on failure.
 */
struct page *zc_file_get_page(struct file *file, unsigned long index, unsigned long ra_pages,
			      bool *hit, unsigned long *cached_ahead);
void zc_page_put(struct page *page);
/* The state of page index in the file's page cache; false if absent. */
bool zc_file_page_state(struct file *file, unsigned long index, u32 *refcount, u32 *mapcount,
			u32 *flags, u32 *order);

/* A module reference for each send in flight (the ubuf ops live here). */
void zc_module_get(void);
void zc_module_put(void);

#endif /* ZCOPY_HELPERS_H */
