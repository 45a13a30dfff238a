// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the zcopy Rust crate; see helpers.h.
 */
#include <kunit/test.h>
#include <kunit/test-bug.h>
#include <linux/build_bug.h>
#include <linux/mman.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/netdevice.h>
#include <linux/nsproxy.h>
#include <linux/rtnetlink.h>
#include <linux/scatterlist.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/zcopy.h>
#include <net/net_namespace.h>

#include "helpers.h"

/* The ABI must not depend on the architecture: no implicit padding. */
static_assert(sizeof(struct zc_version) == 16);
static_assert(sizeof(struct zc_register) == 40);
static_assert(sizeof(struct zc_unregister) == 8);
static_assert(sizeof(struct zc_page_info) == 24);
static_assert(sizeof(struct zc_region_info) == 48);
static_assert(sizeof(struct zc_counters) == 48);
static_assert(sizeof(struct zc_stats) == 104);

u32 zc_c_ioc_number(u32 nr)
{
	switch (nr) {
	case ZC_NR_VERSION:
		return ZC_IOC_VERSION;
	case ZC_NR_REGISTER:
		return ZC_IOC_REGISTER;
	case ZC_NR_UNREGISTER:
		return ZC_IOC_UNREGISTER;
	case ZC_NR_REGION_INFO:
		return ZC_IOC_REGION_INFO;
	case ZC_NR_STATS:
		return ZC_IOC_STATS;
	}
	return 0;
}

u32 zc_c_sg_table_size(void)
{
	return sizeof(struct sg_table);
}

u32 zc_c_sg_table_nents_offset(void)
{
	return offsetof(struct sg_table, nents);
}

struct mm_struct *zc_current_mm(void)
{
	return current->mm;
}

struct user_struct *zc_get_current_user(void)
{
	return get_current_user();
}

unsigned long zc_rlimit_memlock(void)
{
	return rlimit(RLIMIT_MEMLOCK);
}

s64 *zc_user_locked_vm(struct user_struct *user)
{
	static_assert(sizeof(user->locked_vm) == sizeof(s64));
	return (s64 *)&user->locked_vm;
}

s64 *zc_mm_pinned_vm(struct mm_struct *mm)
{
	static_assert(sizeof(mm->pinned_vm) == sizeof(s64));
	return (s64 *)&mm->pinned_vm;
}

struct folio *zc_page_folio(struct page *page)
{
	return page_folio(page);
}

unsigned long zc_folio_nr_pages(struct folio *folio)
{
	return folio_nr_pages(folio);
}

unsigned int zc_folio_order(struct folio *folio)
{
	return folio_order(folio);
}

int zc_folio_ref_count(struct folio *folio)
{
	return folio_ref_count(folio);
}

int zc_folio_pincount(struct folio *folio)
{
	if (folio_has_pincount(folio))
		return atomic_read(&folio->_pincount);
	return folio_ref_count(folio) / GUP_PIN_COUNTING_BIAS;
}

bool zc_folio_maybe_dma_pinned(struct folio *folio)
{
	return folio_maybe_dma_pinned(folio);
}

void *zc_netdev_get(int ifindex)
{
	return dev_get_by_index(current->nsproxy->net_ns, ifindex);
}

void zc_netdev_put(void *netdev)
{
	dev_put(netdev);
}

struct device *zc_netdev_dma_device(void *netdev)
{
	struct device *dev = ((struct net_device *)netdev)->dev.parent;

	while (dev && !dev->dma_mask)
		dev = dev->parent;
	return dev;
}

bool zc_netdev_registered(void *netdev)
{
	ASSERT_RTNL();
	return ((struct net_device *)netdev)->reg_state == NETREG_REGISTERED;
}

void zc_rtnl_lock(void)
{
	rtnl_lock();
}

void zc_rtnl_unlock(void)
{
	rtnl_unlock();
}

static int zc_netdev_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	if (event == NETDEV_UNREGISTER)
		zcopy_netdev_unregister(netdev_notifier_info_to_dev(ptr));
	return NOTIFY_DONE;
}

static struct notifier_block zc_netdev_notifier = {
	.notifier_call = zc_netdev_event,
};

int zc_netdev_notifier_register(void)
{
	return register_netdevice_notifier(&zc_netdev_notifier);
}

void zc_netdev_notifier_unregister(void)
{
	unregister_netdevice_notifier(&zc_netdev_notifier);
}

unsigned long zc_kunit_mmap_anon(unsigned long len)
{
#if IS_BUILTIN(CONFIG_KUNIT)
	struct kunit *test = kunit_get_current_test();

	if (!test)
		return -EINVAL;
	return kunit_vm_mmap(test, NULL, 0, len, PROT_READ | PROT_WRITE,
			     MAP_ANONYMOUS | MAP_PRIVATE, 0);
#else
	return -EOPNOTSUPP;
#endif
}

