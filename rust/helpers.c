// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for the zcopy Rust crate; see helpers.h.
 */
#include <kunit/test.h>
#include <kunit/test-bug.h>
#include <linux/backing-dev.h>
#include <linux/build_bug.h>
#include <linux/bvec.h>
#include <linux/mman.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/fsnotify.h>
#include <linux/in.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/skbuff.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/nsproxy.h>
#include <linux/rtnetlink.h>
#include <linux/scatterlist.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/zcopy.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "helpers.h"

/* The ABI must not depend on the architecture: no implicit padding. */
static_assert(sizeof(struct zc_version) == 16);
static_assert(sizeof(struct zc_register) == 40);
static_assert(sizeof(struct zc_unregister) == 8);
static_assert(sizeof(struct zc_page_info) == 24);
static_assert(sizeof(struct zc_region_info) == 48);
static_assert(sizeof(struct zc_counters) == 120);
static_assert(sizeof(struct zc_stats) == 248);
static_assert(sizeof(struct zc_sendfile) == 56);
static_assert(sizeof(struct zc_file_page) == 16);
static_assert(sizeof(struct zc_file_pages) == 32);
static_assert(sizeof(struct zc_dma_read) == 32);
static_assert(sizeof(struct zc_send) == 48);
static_assert(sizeof(struct zc_xmit) == 48);
static_assert(sizeof(struct zc_completion) == 24);
static_assert(sizeof(struct zc_eventfd) == 8);
static_assert(sizeof(struct zc_send_batch) == 24);

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
	case ZC_NR_SEND:
		return ZC_IOC_SEND;
	case ZC_NR_XMIT:
		return ZC_IOC_XMIT;
	case ZC_NR_SET_EVENTFD:
		return ZC_IOC_SET_EVENTFD;
	case ZC_NR_SENDFILE:
		return ZC_IOC_SENDFILE;
	case ZC_NR_FILE_PAGES:
		return ZC_IOC_FILE_PAGES;
	case ZC_NR_SEND_BATCH:
		return ZC_IOC_SEND_BATCH;
	case ZC_NR_DMA_READ:
		return ZC_IOC_DMA_READ;
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
	struct net_device *dev = netdev;

	ASSERT_RTNL();
	/* A device moves between namespaces under RTNL. */
	return dev->reg_state == NETREG_REGISTERED &&
	       net_eq(dev_net(dev), current->nsproxy->net_ns);
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


/* --- sends ------------------------------------------------------------ */

u32 zc_c_ubuf_info_size(void)
{
	return sizeof(struct ubuf_info);
}

u32 zc_c_bio_vec_size(void)
{
	return sizeof(struct bio_vec);
}

struct bio_vec *zc_bvecs_alloc(struct page *const *pages, size_t n)
{
	struct bio_vec *bv = kvmalloc_array(n, sizeof(*bv), GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	size_t i;

	if (!bv)
		return NULL;
	for (i = 0; i < n; i++)
		bvec_set_page(&bv[i], pages[i], PAGE_SIZE, 0);
	return bv;
}

void zc_bvecs_free(struct bio_vec *bv)
{
	kvfree(bv);
}

/*
 * Called for every reference the stack (or the sender) drops, from any
 * context the last user of an skb runs in. success is false when the stack
 * had to copy the fragments (skb_copy_ubufs: local delivery, a device
 * without scatter-gather).
 */
static void zc_ubuf_complete(struct sk_buff *skb, struct ubuf_info *uarg,
			     bool success)
{
	/*
	 * An RCU reader, as vhost_zerocopy_complete: finishing the send may
	 * drop the last reference on the module (a closed context's queue),
	 * and module unload waits for RCU readers (free_module), so this
	 * code stays until the section ends, in any context.
	 */
	rcu_read_lock();
	/* Note the outcome before the reference goes, so the last one sees
	 * every earlier outcome (refcount_dec_and_test orders them). */
	zcopy_ubuf_event(uarg, skb != NULL, success);
	if (refcount_dec_and_test(&uarg->refcnt))
		zcopy_ubuf_done(uarg);
	rcu_read_unlock();
}

static const struct ubuf_info_ops zc_ubuf_ops = {
	.complete = zc_ubuf_complete,
};

void zc_ubuf_init(struct ubuf_info *uarg)
{
	uarg->ops = &zc_ubuf_ops;
	/* As io_uring's notifications: the fragments stay usable for as long
	 * as the ubuf_info lives, whoever holds the skb, so forwarding it
	 * (veth, bridges) need not copy them. */
	uarg->flags = SKBFL_ZEROCOPY_FRAG | SKBFL_DONT_ORPHAN;
	refcount_set(&uarg->refcnt, 1);
}

bool zc_ubuf_put(struct ubuf_info *uarg)
{
	return refcount_dec_and_test(&uarg->refcnt);
}

/*
 * msghdr.sg_from_iter for bvec iterators over pinned pages: the fragments
 * take no page references of their own (SKBFL_MANAGED_FRAG_REFS); the
 * region's pins keep the pages until the ubuf_info completes. This is
 * io_uring's io_sg_from_iter (io_uring/net.c), which is static there, except
 * for an skb that already holds fragments of its own (data written without
 * zcopy): io_uring falls back to zerocopy_fill_skb_from_iter(), which is not
 * exported, so this answers -EMSGSIZE with the skb untouched, on which TCP
 * starts a new segment (and a corked UDP datagram fails with EMSGSIZE).
 */
static int zc_sg_from_iter(struct sk_buff *skb, struct iov_iter *from,
			   size_t length)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	int frag = shinfo->nr_frags;
	int ret = 0;
	struct bvec_iter bi;
	ssize_t copied = 0;
	unsigned long truesize = 0;

	if (!frag)
		shinfo->flags |= SKBFL_MANAGED_FRAG_REFS;
	else if (unlikely(!skb_zcopy_managed(skb)))
		return -EMSGSIZE;

	bi.bi_size = min(from->count, length);
	bi.bi_offset = from->iov_offset;
	bi.bi_idx = 0;

	while (bi.bi_size && frag < MAX_SKB_FRAGS) {
		struct bio_vec v = mp_bvec_iter_bvec(from->bvec, bi);

		copied += v.bv_len;
		truesize += PAGE_ALIGN(v.bv_len + v.bv_offset);
		__skb_fill_page_desc_noacc(shinfo, frag++, v.bv_page,
					   v.bv_offset, v.bv_len);
		bvec_iter_advance_single(from->bvec, &bi, v.bv_len);
	}
	if (bi.bi_size)
		ret = -EMSGSIZE;

	shinfo->nr_frags = frag;
	from->bvec += bi.bi_idx;
	from->nr_segs -= bi.bi_idx;
	from->count -= copied;
	from->iov_offset = bi.bi_offset;

	skb->data_len += copied;
	skb->len += copied;
	skb->truesize += truesize;
	return ret;
}

unsigned long zc_sock_fdget(int fd, struct socket **sock)
{
	struct fd f = fdget(fd);
	int err;

	if (fd_empty(f))
		return -EBADF;
	*sock = sock_from_file(fd_file(f));
	err = *sock ? zc_sock_check(*sock) : -ENOTSOCK;
	if (err) {
		fdput(f);
		return err;
	}
	return f.word;
}

void zc_fdput(unsigned long word)
{
	fdput((struct fd){ .word = word });
}

int zc_sock_check(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk || (sk->sk_family != AF_INET && sk->sk_family != AF_INET6))
		return -EOPNOTSUPP;
	if (sk->sk_type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP)
		return 0;
	if (sk->sk_type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP)
		return 0;
	return -EOPNOTSUPP;
}

int zc_sock_send(struct socket *sock, struct ubuf_info *uarg,
		 const struct bio_vec *bv, size_t nr, size_t skip, size_t len,
		 bool nonblock, bool more)
{
	struct msghdr msg = {
		.msg_flags = MSG_ZEROCOPY | MSG_NOSIGNAL |
			     (nonblock ? MSG_DONTWAIT : 0) |
			     (more ? MSG_MORE : 0),
		.msg_ubuf = uarg,
		.sg_from_iter = zc_sg_from_iter,
	};

	/* A socket opened non-blocking does not block, as sendmsg(2). */
	if (sock->file->f_flags & O_NONBLOCK)
		msg.msg_flags |= MSG_DONTWAIT;
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bv, nr, skip + len);
	iov_iter_advance(&msg.msg_iter, skip);
	return sock_sendmsg(sock, &msg);
}

struct sk_buff *zc_xmit_build(void *netdev, struct ubuf_info *uarg,
			      const void *hdr, u32 hdr_len,
			      const struct bio_vec *bv, size_t nr, size_t skip,
			      size_t len)
{
	struct net_device *dev = netdev;
	int headroom = LL_RESERVED_SPACE(dev);
	int tailroom = dev->needed_tailroom;
	struct skb_shared_info *shinfo;
	struct sk_buff *skb;
	size_t i;
	int frag = 0;

	if (!netif_running(dev))
		return ERR_PTR(-ENETDOWN);
	if (!(dev->features & NETIF_F_SG))
		return ERR_PTR(-EOPNOTSUPP);
	if (hdr_len < dev->hard_header_len || hdr_len > ZC_XMIT_MAX_HDR)
		return ERR_PTR(-EINVAL);
	if (hdr_len - dev->hard_header_len + len > dev->mtu)
		return ERR_PTR(-EMSGSIZE);
	/* Bytes [skip, skip + len) of whole-page bvecs touch this many pages. */
	if (DIV_ROUND_UP(skip % PAGE_SIZE + len, PAGE_SIZE) > MAX_SKB_FRAGS)
		return ERR_PTR(-EMSGSIZE);

	skb = alloc_skb(headroom + hdr_len + tailroom, GFP_KERNEL);
	if (!skb)
		return ERR_PTR(-ENOMEM);
	skb_reserve(skb, headroom);
	skb_put_data(skb, hdr, hdr_len);
	skb->dev = dev;
	skb_reset_mac_header(skb);
	skb_set_network_header(skb, dev->hard_header_len);
	skb->protocol = dev_parse_header_protocol(skb);

	shinfo = skb_shinfo(skb);
	shinfo->flags |= SKBFL_MANAGED_FRAG_REFS;
	for (i = skip / PAGE_SIZE; i < nr && len; i++) {
		u32 off = i == skip / PAGE_SIZE ? skip % PAGE_SIZE : 0;
		u32 n = min_t(size_t, len, bv[i].bv_len - off);

		__skb_fill_page_desc_noacc(shinfo, frag++, bv[i].bv_page,
					   bv[i].bv_offset + off, n);
		skb->len += n;
		skb->data_len += n;
		skb->truesize += PAGE_SIZE;
		len -= n;
	}
	shinfo->nr_frags = frag;
	skb_zcopy_set(skb, uarg, NULL);
	return skb;
}

int zc_xmit(struct sk_buff *skb)
{
	int rc = dev_queue_xmit(skb);

	if (rc > 0)
		rc = net_xmit_errno(rc);
	return rc;
}

void zc_skb_free(struct sk_buff *skb)
{
	kfree_skb(skb);
}

u32 zc_skb_headlen(struct sk_buff *skb)
{
	return skb_headlen(skb);
}

u32 zc_skb_headroom(struct sk_buff *skb)
{
	return skb_headroom(skb);
}

u32 zc_skb_nr_frags(struct sk_buff *skb)
{
	return skb_shinfo(skb)->nr_frags;
}

struct page *zc_skb_frag_page(struct sk_buff *skb, u32 i)
{
	return skb_frag_page(&skb_shinfo(skb)->frags[i]);
}

u32 zc_skb_frag_off(struct sk_buff *skb, u32 i)
{
	return skb_frag_off(&skb_shinfo(skb)->frags[i]);
}

u32 zc_skb_frag_size(struct sk_buff *skb, u32 i)
{
	return skb_frag_size(&skb_shinfo(skb)->frags[i]);
}

u32 zc_netdev_needed_headroom(void *netdev)
{
	struct net_device *dev = netdev;

	return dev->hard_header_len + dev->needed_headroom;
}

bool zc_kiocb_nowait(struct kiocb *iocb)
{
	return (iocb->ki_flags & IOCB_NOWAIT) ||
	       (iocb->ki_filp->f_flags & O_NONBLOCK);
}

/*
 * The completion queue's readers wait, and its producers (any context)
 * wake them, with wait_event's ordering: a waiter is queued before it
 * tests @ready, and a producer publishes its record before it looks for
 * waiters (wq_has_sleeper's barrier), so no wake-up is lost.
 */
int zc_wait_ready(struct wait_queue_head *wq, bool (*ready)(const void *), const void *arg)
{
	return wait_event_interruptible(*wq, ready(arg));
}

void zc_wake_ready(struct wait_queue_head *wq)
{
	if (wq_has_sleeper(wq))
		wake_up_all(wq);
}

static struct workqueue_struct *zc_send_wq;

int zc_wq_create(void)
{
	zc_send_wq = alloc_workqueue("zcopy", WQ_UNBOUND, 0);
	return zc_send_wq ? 0 : -ENOMEM;
}

void zc_wq_destroy(void)
{
	destroy_workqueue(zc_send_wq);
	zc_send_wq = NULL;
}

struct workqueue_struct *zc_wq(void)
{
	return zc_send_wq;
}

void zc_module_get(void)
{
	__module_get(THIS_MODULE);
}

void zc_module_put(void)
{
	module_put(THIS_MODULE);
}

/* --- the page cache ---------------------------------------------------- */

/*
 * Whether the file's page cache is its content, so that sending its pages
 * sends what read(2) returns. Admitted, positively:
 *
 *  - tmpfs: shmem's page cache (with swap) is the file itself;
 *  - a file system that fills its page cache from a backing store: it reads
 *    folios in (read_folio) and has a backing device of its own, a block
 *    device's (ext4, xfs, btrfs...) or one it registered (super_setup_bdi:
 *    9p, NFS, FUSE, CIFS...);
 *  - a file whose splice_read is filemap_splice_read: sendfile(2) itself
 *    sends its page-cache pages (ramfs, whose page cache is its store).
 *
 * Everything else is refused, in particular the pseudo file systems, which
 * all sit on noop_backing_dev_info and generate their bytes on each read:
 * kernfs (sysfs, cgroup2) and configfs, whose ram_aops read_folio fills
 * zeros, and procfs, debugfs, tracefs, which have no read_folio at all; also
 * overlayfs (the pages are the lower file's) and DAX (no page cache).
 */
static bool zc_page_cache_is_content(struct file *file)
{
	struct address_space *mapping = file->f_mapping;
	struct inode *inode = file_inode(file);

	if (shmem_mapping(mapping))
		return true;
	/* zc_file_get_page() falls back to read_mapping_folio(). */
	if (IS_DAX(inode) || !mapping->a_ops->read_folio)
		return false;
	return inode->i_sb->s_bdi != &noop_backing_dev_info ||
	       file->f_op->splice_read == filemap_splice_read;
}

int zc_file_check(struct file *file)
{
	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode))
		return -EINVAL;
	if (!zc_page_cache_is_content(file))
		return -EOPNOTSUPP;
	return 0;
}

/* can_do_cachestat() (mm/filemap.c), which is static there. */
bool zc_file_may_see_cache(struct file *file)
{
	if (file->f_mode & FMODE_WRITE)
		return true;
	if (file_owner_or_capable(file))
		return true;
	return file_permission(file, MAY_WRITE) == 0;
}

int zc_file_read_verify(struct file *file, s64 pos, size_t count)
{
	loff_t ppos = pos;

	return rw_verify_area(READ, file, &ppos, count);
}

void zc_file_accessed(struct file *file)
{
	fsnotify_access(file);
}

s64 zc_file_size(struct file *file)
{
	return i_size_read(file_inode(file));
}

/* Pages of [index, end) present and up to date in the page cache. */
static unsigned long zc_count_cached(struct address_space *mapping, unsigned long index,
				     unsigned long end)
{
	unsigned long n = 0;

	while (index < end) {
		struct folio *folio = filemap_get_folio(mapping, index);
		unsigned long next;

		if (IS_ERR(folio)) {
			index++;
			continue;
		}
		next = min(folio_next_index(folio), end);
		if (folio_test_uptodate(folio))
			n += next - index;
		folio_put(folio);
		index = next;
	}
	return n;
}

struct page *zc_file_get_page(struct file *file, unsigned long index, unsigned long ra_pages,
			      bool *hit, unsigned long *cached_ahead)
{
	struct address_space *mapping = file->f_mapping;
	struct folio *folio;
	int err;

	if (shmem_mapping(mapping)) {
		/* tmpfs: the page cache is the file. SGP_READ reads a swapped
		 * page back in and allocates nothing: a hole is the zero page. */
		*hit = true;
		err = shmem_get_folio(file_inode(file), index, 0, &folio, SGP_READ);
		if (err)
			return ERR_PTR(err);
		if (!folio) {
			get_page(ZERO_PAGE(0));
			return ZERO_PAGE(0);
		}
		folio_unlock(folio);
		return folio_file_page(folio, index);
	}

	folio = filemap_get_folio(mapping, index);
	if (!IS_ERR(folio) && folio_test_uptodate(folio)) {
		*hit = true;
		return folio_file_page(folio, index);
	}
	*hit = false;
	/* Before readahead brings them in: which of the rest were cached? */
	*cached_ahead = zc_count_cached(mapping, index + 1, index + ra_pages);
	if (IS_ERR(folio)) {
		page_cache_sync_readahead(mapping, &file->f_ra, file, index, ra_pages);
		folio = filemap_get_folio(mapping, index);
	}
	if (!IS_ERR(folio)) {
		/* Readahead unlocks the folio when its read completes. */
		err = folio_wait_locked_killable(folio);
		if (err) {
			folio_put(folio);
			return ERR_PTR(err);
		}
		if (folio_test_uptodate(folio))
			return folio_file_page(folio, index);
		folio_put(folio);
	}
	/* Not read ahead, or the read failed: read it now, or fail. */
	folio = read_mapping_folio(mapping, index, file);
	if (IS_ERR(folio))
		return ERR_CAST(folio);
	return folio_file_page(folio, index);
}

void zc_page_put(struct page *page)
{
	put_page(page);
}

bool zc_file_page_state(struct file *file, unsigned long index, u32 *refcount, u32 *mapcount,
			u32 *flags, u32 *order)
{
	struct folio *folio = filemap_get_folio(file->f_mapping, index);

	if (IS_ERR(folio))
		return false;
	/* Not counting the reference this lookup took. */
	*refcount = folio_ref_count(folio) - 1;
	*mapcount = max(folio_mapcount(folio), 0);
	*flags = ZC_FILE_PAGE_RESIDENT;
	if (folio_test_uptodate(folio))
		*flags |= ZC_FILE_PAGE_UPTODATE;
	if (folio_test_dirty(folio))
		*flags |= ZC_FILE_PAGE_DIRTY;
	if (folio_test_writeback(folio))
		*flags |= ZC_FILE_PAGE_WRITEBACK;
	*order = folio_order(folio);
	folio_put(folio);
	return true;
}
