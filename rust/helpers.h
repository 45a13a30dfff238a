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

struct device;
struct folio;
struct mm_struct;
struct page;
struct user_struct;

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
/* Whether it is registered and not going away; call under RTNL. */
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

#endif /* ZCOPY_HELPERS_H */
