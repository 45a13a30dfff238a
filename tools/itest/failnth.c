// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: every ioctl, and read(2) of completion records,
 * under systematic fault injection (Documentation/fault-injection/
 * fault-injection.rst, "Systematic faults using fail-nth").
 *
 * For N = 1, 2, ... the Nth fault site the call reaches fails: a slab
 * allocation (failslab), a page allocation (fail_page_alloc) or a copy
 * from or to user space (fail_usercopy), each counted per task through
 * /proc/thread-self/fail-nth. Once the call reaches fewer than N sites the
 * sweep of that call is over, and the call must have succeeded. A call a
 * fault was injected into must fail with a plausible errno and leave
 * nothing behind (no region, pin, charge, mapping, send or record), or
 * cope and succeed; either way, once what a successful call made is
 * undone, every counter is as before.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itest.h"

#define FAIL_NTH "/proc/thread-self/fail-nth"
#define DEBUGFS "/sys/kernel/debug/"
/* The tmpfs that sendfile_setup mounts (tools/harness/disk.sh). */
#define TMPFS_DIR "/run/zcopy/tmpfs"
/* Most fault sites one call may have before the sweep gives up. */
#define MAX_NTH 200
/* Payloads cross the base region's page boundary, and one datagram of
 * SEND_LEN bytes fits the dummy's MTU (no IP fragments). */
#define SEND_OFF 3500
#define SEND_LEN 1000
#define XMIT_OFF 4050
#define XMIT_LEN 100

/* ---- the fault-injection knobs, saved and restored ---------------------- */

struct knob {
	const char *path;	/* under DEBUGFS */
	const char *want;
	bool optional;
	bool saved;
	char old[64];
};

/*
 * What lib/fault-inject.c's should_fail_ex() looks at: with fail-nth set
 * for the task, only the stack-trace filter (require-/reject-*, present
 * with FAULT_INJECTION_STACKTRACE_FILTER) can veto the Nth site; then it
 * fails, printing per `verbose` (2, the default, dumps the stack: "Call
 * Trace:", which fails the run's log check; 1 prints a line; 0 nothing)
 * and decrementing `times` unless it is -1 (fail-nth ignores it otherwise:
 * -1 here so the sweep leaves no trace in it). Without fail-nth a site
 * fails only if `probability` is non-zero (checked before task-filter,
 * times, space and interval, which this test therefore leaves alone): 0,
 * so only fail-nth injects, and only in this task.
 */
#define KNOB(path, want) { path, want, false, false, "" }
#define OPTIONAL_KNOB(path, want) { path, want, true, false, "" }
#define ATTRS(dir)                                                                   \
	KNOB(dir "/probability", "0"), KNOB(dir "/verbose", "0"),                    \
	KNOB(dir "/times", "-1"), OPTIONAL_KNOB(dir "/require-start", "0"),          \
	OPTIONAL_KNOB(dir "/require-end", "0xffffffffffffffff"),                     \
	OPTIONAL_KNOB(dir "/reject-start", "0"), OPTIONAL_KNOB(dir "/reject-end", "0")

static struct knob knobs[] = {
	ATTRS("failslab"),
	ATTRS("fail_page_alloc"),
	ATTRS("fail_usercopy"),
	/* Sleeping allocations (GFP_KERNEL: __GFP_DIRECT_RECLAIM) are never
	 * fault sites unless these are N (mm/failslab.c, mm/fail_page_alloc.c). */
	KNOB("failslab/ignore-gfp-wait", "N"),
	KNOB("failslab/cache-filter", "N"),
	KNOB("fail_page_alloc/ignore-gfp-wait", "N"),
	/* User and page-cache pages (__GFP_HIGHMEM) stay out: their failure
	 * is the faulting task's OOM, not an error path of the call. */
	KNOB("fail_page_alloc/ignore-gfp-highmem", "Y"),
	/*
	 * Order 0 stays out (1 is the default, set here so a changed value
	 * cannot widen the sweep): order-0 pages are what vmalloc fills its
	 * areas with (and page tables are), and vmalloc reports a failure
	 * there with warn_alloc(), a stack dump, unless __GFP_NOWARN. zcopy's
	 * KVVec/kvmalloc buffers fall back to vmalloc above a page; this test
	 * keeps them below (2-page regions, a few entries), and failslab
	 * failing vmalloc's own GFP_KERNEL allocations would warn as well.
	 */
	KNOB("fail_page_alloc/min-order", "1"),
	/* Other fault attributes fail-nth also drives, if built in. */
	OPTIONAL_KNOB("fail_futex/verbose", "0"),
	OPTIONAL_KNOB("fail_make_request/verbose", "0"),
	OPTIONAL_KNOB("fail_function/verbose", "0"),
	OPTIONAL_KNOB("fail_skb_realloc/verbose", "0"),
};

#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

static int read_text(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = 0;
	out[strcspn(out, "\n")] = 0;
	return 0;
}

static int knobs_restore(void)
{
	char path[256];
	int bad = 0, i;

	for (i = (int)NKNOBS - 1; i >= 0; i--) {
		if (!knobs[i].saved)
			continue;
		snprintf(path, sizeof(path), DEBUGFS "%s", knobs[i].path);
		if (write_file(path, knobs[i].old))
			bad = fail("restoring %s to %s", path, knobs[i].old);
		knobs[i].saved = false;
	}
	return bad;
}

static int knobs_set(void)
{
	char path[256];
	unsigned int i;

	for (i = 0; i < NKNOBS; i++) {
		struct knob *k = &knobs[i];

		snprintf(path, sizeof(path), DEBUGFS "%s", k->path);
		if (read_text(path, k->old, sizeof(k->old))) {
			if (k->optional && errno == ENOENT)
				continue;
			return fail("reading %s", path);
		}
		k->saved = true;
		if (write_file(path, k->want))
			return fail("writing %s to %s", k->want, path);
	}
	return 0;
}

/* ---- fail-nth ------------------------------------------------------------- */

static int nth = -1;

/* Makes the Nth fault site from now on fail. The write copies its
 * argument in before it arms, so it is no fault site itself. */
static int arm(unsigned int n)
{
	char b[16];
	int len = snprintf(b, sizeof(b), "%u", n);

	return pwrite(nth, b, len, 0) == len ? 0 : -1;
}

/*
 * Right after the call: whether a fault was injected within it (1) or not
 * (0); -1 if fail-nth could not be read. Leaves fail-nth disarmed.
 *
 * Reading and disarming are fault sites themselves while armed: the read
 * formats the count and then copies it out, which takes one more (and
 * fails, EFAULT, if that was the last: the call left 1, so it reached no
 * Nth site); the disarming write copies "0" in before storing it, and may
 * take the last one likewise.
 */
static int injected(void)
{
	char b[24] = "";
	ssize_t n = pread(nth, b, sizeof(b) - 1, 0);
	int ret;

	if (n < 0 && errno == EFAULT)
		ret = 0;
	else if (n <= 0)
		ret = -1;
	else
		ret = strtoul(b, NULL, 10) == 0;
	if (pwrite(nth, "0", 1, 0) != 1 && errno != EFAULT)
		ret = -1;
	memset(b, 0, sizeof(b));
	if (pread(nth, b, sizeof(b) - 1, 0) <= 0 || strtoul(b, NULL, 10) != 0)
		ret = -1;
	return ret;
}

/* ---- counters --------------------------------------------------------------- */

struct snap {
	struct zc_counters c, m;	/* this context's, the module's */
	long vmpin;			/* kB */
	long long charged;		/* debugfs charged_pages */
};

static int take(int fd, struct snap *s)
{
	struct zc_stats st;

	memset(&st, 0, sizeof(st));
	if (ioctl(fd, ZC_IOC_STATS, &st))
		return fail("ZC_IOC_STATS");
	s->c = st.context;
	s->m = st.module;
	s->vmpin = status_kb("VmPin");
	s->charged = debugfs_value("charged_pages");
	CHECK(s->vmpin >= 0 && s->charged >= 0, "VmPin %ld kB, charged_pages %lld", s->vmpin,
	      s->charged);
	return 0;
}

/*
 * Where `b` differs from `a` plus `sends` sends: regions, pinned and mapped
 * pages, VmPin, charged pages; once `settled`, also completions (one per
 * send) and page-cache pages held. NULL if nowhere.
 */
static const char *differs(const struct snap *a, const struct snap *b, __u64 sends, bool settled)
{
	static char why[256];

#define SAME(f, d)                                                                       \
	do {                                                                             \
		if (b->c.f != a->c.f + (d) || b->m.f != a->m.f + (d)) {                  \
			snprintf(why, sizeof(why),                                       \
				 #f " %llu -> %llu, module %llu -> %llu (want +%llu)",    \
				 (unsigned long long)a->c.f, (unsigned long long)b->c.f,  \
				 (unsigned long long)a->m.f, (unsigned long long)b->m.f,  \
				 (unsigned long long)(d));                                \
			return why;                                                      \
		}                                                                        \
	} while (0)
	SAME(regions, 0);
	SAME(pinned_pages, 0);
	SAME(mapped_pages, 0);
	SAME(sends, sends);
	if (settled) {
		SAME(completions, sends);
		SAME(file_pages_held, 0);
	}
#undef SAME
	if (b->vmpin != a->vmpin) {
		snprintf(why, sizeof(why), "VmPin %ld -> %ld kB", a->vmpin, b->vmpin);
		return why;
	}
	if (b->charged != a->charged) {
		snprintf(why, sizeof(why), "charged_pages %lld -> %lld", a->charged, b->charged);
		return why;
	}
	return NULL;
}

/* Waits up to 5 s for the counters to come back to `s0` plus `sends`
 * completed sends (the last release of a send may run on a workqueue). */
static const char *settle(int fd, const struct snap *s0, __u64 sends)
{
	const char *why = "no counters";
	struct snap s;
	int i;

	for (i = 0; i < 100; i++) {
		if (take(fd, &s))
			return "no counters";
		why = differs(s0, &s, sends, true);
		if (!why)
			return NULL;
		usleep(50 * 1000);
	}
	return why;
}

static int nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* The `n` records of one call's sends (tags tag .. tag + ntags - 1, each
 * at most once, `bytes` each), then none: a non-blocking read is EAGAIN. */
static int collect(int fd, int n, __u64 tag, int ntags, __u64 bytes)
{
	struct zc_completion recs[2], extra;
	unsigned int seen = 0;
	ssize_t r;
	int i, err;

	CHECK(n >= 0 && n <= 2 && n <= ntags, "%d sends from one call", n);
	if (n)
		CHECK(read_completions(fd, recs, n) == n, "fewer than %d records", n);
	for (i = 0; i < n; i++) {
		__u64 k = recs[i].tag - tag;

		CHECK(recs[i].tag >= tag && k < (__u64)ntags && !(seen & (1U << k)) &&
			      recs[i].bytes == bytes && recs[i].status == 0,
		      "record tag %llu bytes %llu status %d (want tags from %llu, %llu bytes)",
		      (unsigned long long)recs[i].tag, (unsigned long long)recs[i].bytes,
		      recs[i].status, (unsigned long long)tag, (unsigned long long)bytes);
		seen |= 1U << k;
	}
	CHECK(nonblock(fd, true) == 0, "O_NONBLOCK");
	errno = 0;
	r = read(fd, &extra, sizeof(extra));
	err = errno;
	nonblock(fd, false);
	CHECK(r < 0 && err == EAGAIN, "a record no send accounts for (read %zd, tag %llu)", r,
	      r > 0 ? (unsigned long long)extra.tag : 0ULL);
	return 0;
}

/* ---- the calls ---------------------------------------------------------------- */

enum { NEED_NIC = 1, NEED_ENGINE = 2, NEED_FILE = 4, NEED_ZD0 = 8 };

struct fx;

struct op {
	const char *name;
	int needs;
	/* Outside the sweep's window: what the call needs (may be NULL). */
	int (*prepare)(struct fx *f);
	/* The one call, and nothing else (no other system call). */
	long (*call)(struct fx *f);
	/* After it (fail-nth disarmed): its results, and what it made
	 * undone. `sends`: how many the context counted during the call. */
	int (*after)(struct fx *f, long ret, int inj, int sends);
	const int *errnos;	/* plausible, 0-terminated */
	__u64 bytes;		/* each record's bytes */
	int ntags;		/* tags one call uses */
	__u32 reg_flags;	/* REGISTER's flags */
};

struct fx {
	const struct op *op;
	int fd, udp, efd, file, zd0, nic;
	unsigned char *buf;	/* 4 pages: 0-1 the base region, 2-3 registered and not */
	unsigned char *ebuf;	/* 1 page: the DMA engine's region */
	struct zc_register base;
	__u32 engine;		/* the engine region's id, 0 without an engine */
	__u32 victim;		/* UNREGISTER's region */
	int primed;		/* sends prepare made */
	__u64 tag;		/* the call's first tag */
	char path[128];
	union {
		struct zc_version v;
		struct zc_register r;
		struct zc_region_info ri;
		struct zc_stats st;
		struct zc_send s;
		struct zc_send_batch b;
		struct zc_sendfile sf;
		struct zc_file_pages fp;
		struct zc_dma_read dr;
		struct zc_completion rec[4];
	} u;
	struct zc_send batch[2];
	struct zc_page_info pi[2];
	struct zc_file_page pages[3];
	unsigned char out[64];
	unsigned char hdr[14];
};

static const int e_mem[] = { ENOMEM, EFAULT, 0 };
/* Sends also get the socket's answer to a failed skb allocation. */
static const int e_send[] = { ENOMEM, EFAULT, ENOBUFS, 0 };

static bool plausible(const int *errnos, int err)
{
	for (; *errnos; errnos++)
		if (*errnos == err)
			return true;
	return false;
}

static long call_version(struct fx *f)
{
	return ioctl(f->fd, ZC_IOC_VERSION, &f->u.v);
}

static int after_version(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(f->u.v.abi_version == ZC_ABI_VERSION, "abi_version %u", f->u.v.abi_version);
	return 0;
}

static long call_register(struct fx *f)
{
	f->u.r = (struct zc_register){
		.addr = (unsigned long)(f->buf + 2 * PAGE),
		.len = 2 * PAGE,
		.flags = f->op->reg_flags,
		.ifindex = (f->op->needs & NEED_NIC) ? f->nic : 0,
	};
	return ioctl(f->fd, ZC_IOC_REGISTER, &f->u.r);
}

static int after_register(struct fx *f, long ret, int inj, int sends)
{
	struct zc_region_info ri;
	bool mapped = f->op->needs & (NEED_NIC | NEED_ENGINE);

	(void)inj;
	(void)sends;
	if (ret < 0)
		return 0;
	CHECK(f->u.r.nr_pages == 2 && f->u.r.nr_folios >= 1 && f->u.r.nr_folios <= 2,
	      "nr_pages %u nr_folios %u", f->u.r.nr_pages, f->u.r.nr_folios);
	CHECK(region_pages(f->fd, f->u.r.id, 0, 0, NULL, &ri) == 0, "region info");
	CHECK(!mapped || (ri.flags & ZC_REGION_MAPPED), "registered, yet not mapped (flags %#x)",
	      ri.flags);
	CHECK(unreg(f->fd, f->u.r.id) == 0, "unregister");
	return 0;
}

static int prepare_unregister(struct fx *f)
{
	struct zc_register r;

	CHECK(reg(f->fd, f->buf + 2 * PAGE, 2 * PAGE, 0, 0, &r) == 0, "register");
	f->victim = r.id;
	return 0;
}

static long call_unregister(struct fx *f)
{
	struct zc_unregister u = { .id = f->victim };

	return ioctl(f->fd, ZC_IOC_UNREGISTER, &u);
}

static int after_unregister(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret < 0)
		CHECK(unreg(f->fd, f->victim) == 0, "the region went with a failed UNREGISTER");
	else
		CHECK_ERRNO(unreg(f->fd, f->victim), ENOENT, "unregistering it again");
	return 0;
}

static long call_region_info(struct fx *f)
{
	f->u.ri = (struct zc_region_info){
		.id = f->base.id, .nr_pages = 2, .pages = (unsigned long)f->pi,
	};
	return ioctl(f->fd, ZC_IOC_REGION_INFO, &f->u.ri);
}

static int after_region_info(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(f->u.ri.nr_pages == 2 && f->u.ri.total_pages == 2 &&
			      (f->pi[0].flags & ZC_PAGE_DMA_PINNED) &&
			      (f->pi[1].flags & ZC_PAGE_DMA_PINNED),
		      "nr_pages %u total_pages %u flags %#x %#x", f->u.ri.nr_pages,
		      f->u.ri.total_pages, f->pi[0].flags, f->pi[1].flags);
	return 0;
}

static long call_stats(struct fx *f)
{
	return ioctl(f->fd, ZC_IOC_STATS, &f->u.st);
}

static int after_stats(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(f->u.st.context.regions >= 1 && f->u.st.max_pinned_pages > 0,
		      "regions %llu max_pinned_pages %llu",
		      (unsigned long long)f->u.st.context.regions,
		      (unsigned long long)f->u.st.max_pinned_pages);
	return 0;
}

static long call_send(struct fx *f)
{
	f->u.s = (struct zc_send){
		.fd = f->udp, .region = f->base.id, .offset = SEND_OFF, .len = SEND_LEN,
		.tag = f->tag,
	};
	return ioctl(f->fd, ZC_IOC_SEND, &f->u.s);
}

static int after_send(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	if (ret == 0)
		CHECK(sends == 1 && f->u.s.sent == SEND_LEN, "%d sends, sent %llu", sends,
		      (unsigned long long)f->u.s.sent);
	return 0;
}

static long call_send_batch(struct fx *f)
{
	f->batch[0] = (struct zc_send){
		.fd = f->udp, .region = f->base.id, .offset = 100, .len = SEND_LEN, .tag = f->tag,
	};
	f->batch[1] = (struct zc_send){
		.fd = f->udp, .region = f->base.id, .offset = SEND_OFF, .len = SEND_LEN,
		.tag = f->tag + 1,
	};
	f->u.b = (struct zc_send_batch){ .sends = (unsigned long)f->batch, .nr = 2 };
	return ioctl(f->fd, ZC_IOC_SEND_BATCH, &f->u.b);
}

static int after_send_batch(struct fx *f, long ret, int inj, int sends)
{
	__u32 i;

	if (ret < 0)
		return 0;
	CHECK((int)f->u.b.accepted == sends, "accepted %u, %d sends counted", f->u.b.accepted,
	      sends);
	if (!inj)
		CHECK(f->u.b.accepted == 2 && f->u.b.error == 0, "accepted %u error %d",
		      f->u.b.accepted, f->u.b.error);
	else if (f->u.b.accepted < 2)
		/* The fault refused the second entry: the call succeeds and
		 * says so (abi.rst, ZC_IOC_SEND_BATCH). */
		CHECK(f->u.b.accepted == 1 && plausible(e_send, f->u.b.error),
		      "accepted %u error %d", f->u.b.accepted, f->u.b.error);
	for (i = 0; i < f->u.b.accepted; i++)
		CHECK(f->batch[i].sent == SEND_LEN, "entry %u: sent %llu", i,
		      (unsigned long long)f->batch[i].sent);
	return 0;
}

static long call_xmit(struct fx *f)
{
	struct zc_xmit x = {
		.ifindex = f->zd0, .region = f->base.id, .hdr_len = sizeof(f->hdr),
		.hdr = (unsigned long)f->hdr, .offset = XMIT_OFF, .len = XMIT_LEN, .tag = f->tag,
	};

	return ioctl(f->fd, ZC_IOC_XMIT, &x);
}

static int after_xmit(struct fx *f, long ret, int inj, int sends)
{
	(void)f;
	(void)inj;
	if (ret == 0)
		CHECK(sends == 1, "%d sends", sends);
	return 0;
}

static long call_set_eventfd(struct fx *f)
{
	struct zc_eventfd e = { .fd = f->efd };

	return ioctl(f->fd, ZC_IOC_SET_EVENTFD, &e);
}

static int after_set_eventfd(struct fx *f, long ret, int inj, int sends)
{
	struct zc_eventfd e = { .fd = -1 };

	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(ioctl(f->fd, ZC_IOC_SET_EVENTFD, &e) == 0, "clearing the eventfd");
	return 0;
}

static long call_sendfile(struct fx *f)
{
	f->u.sf = (struct zc_sendfile){
		.sock = f->udp, .fd = f->file, .offset = SEND_OFF, .len = SEND_LEN, .tag = f->tag,
	};
	return ioctl(f->fd, ZC_IOC_SENDFILE, &f->u.sf);
}

static int after_sendfile(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	if (ret == 0)
		CHECK(sends == 1 && f->u.sf.sent == SEND_LEN &&
			      f->u.sf.pages_cached + f->u.sf.pages_read == 2,
		      "%d sends, sent %llu, pages %u cached %u read", sends,
		      (unsigned long long)f->u.sf.sent, f->u.sf.pages_cached, f->u.sf.pages_read);
	return 0;
}

static long call_file_pages(struct fx *f)
{
	f->u.fp = (struct zc_file_pages){
		.fd = f->file, .nr_pages = 3, .pages = (unsigned long)f->pages,
	};
	return ioctl(f->fd, ZC_IOC_FILE_PAGES, &f->u.fp);
}

static int after_file_pages(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(f->u.fp.nr_pages == 3 && f->u.fp.resident == 3, "nr_pages %u resident %u",
		      f->u.fp.nr_pages, f->u.fp.resident);
	return 0;
}

static long call_dma_read(struct fx *f)
{
	f->u.dr = (struct zc_dma_read){
		.id = f->engine, .len = sizeof(f->out), .buf = (unsigned long)f->out,
	};
	return ioctl(f->fd, ZC_IOC_DMA_READ, &f->u.dr);
}

static int after_dma_read(struct fx *f, long ret, int inj, int sends)
{
	(void)inj;
	(void)sends;
	if (ret == 0)
		CHECK(f->u.dr.transfers == 1 && !memcmp(f->out, f->ebuf, sizeof(f->out)),
		      "transfers %u, %s bytes", f->u.dr.transfers,
		      memcmp(f->out, f->ebuf, sizeof(f->out)) ? "different" : "same");
	memset(f->out, 0, sizeof(f->out));
	return 0;
}

/* read(2): one record waiting, taken with a non-blocking read. */
static int prepare_read(struct fx *f)
{
	struct zc_send s = {
		.fd = f->udp, .region = f->base.id, .offset = 100, .len = SEND_LEN, .tag = f->tag,
	};
	char path[64];
	int i;

	CHECK(ioctl(f->fd, ZC_IOC_SEND, &s) == 0, "a send to read the record of");
	f->primed = 1;
	/* Its record is published (counted before it is posted). */
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", f->fd);
	for (i = 0; i < 1000 && file_value(path, "zcopy_completions_unread", ':') != 1; i++)
		usleep(10 * 1000);
	CHECK(i < 1000, "the send's record never came");
	CHECK(nonblock(f->fd, true) == 0, "O_NONBLOCK");
	return 0;
}

static long call_read(struct fx *f)
{
	return read(f->fd, f->u.rec, sizeof(f->u.rec));
}

static int after_read(struct fx *f, long ret, int inj, int sends)
{
	ssize_t r = ret;

	(void)inj;
	(void)sends;
	/* A failed read keeps the record first in line. */
	if (ret < 0)
		r = read(f->fd, f->u.rec, sizeof(f->u.rec));
	nonblock(f->fd, false);
	CHECK(r == sizeof(f->u.rec[0]) && f->u.rec[0].tag == f->tag &&
		      f->u.rec[0].bytes == SEND_LEN,
	      "%s: read %zd, tag %llu (want one record, tag %llu)",
	      ret < 0 ? "reading again after the failed read" : "the read", r,
	      (unsigned long long)f->u.rec[0].tag, (unsigned long long)f->tag);
	return 0;
}

static const struct op ops[] = {
	{ "VERSION", 0, NULL, call_version, after_version, e_mem, 0, 1, 0 },
	{ "REGISTER", 0, NULL, call_register, after_register, e_mem, 0, 1, 0 },
	{ "REGISTER(mapped, e1000e)", NEED_NIC, NULL, call_register, after_register, e_mem, 0, 1,
	  0 },
	{ "REGISTER(DMA engine)", NEED_ENGINE, NULL, call_register, after_register, e_mem, 0, 1,
	  ZC_REGISTER_DMA_ENGINE },
	{ "UNREGISTER", 0, prepare_unregister, call_unregister, after_unregister, e_mem, 0, 1, 0 },
	{ "REGION_INFO", 0, NULL, call_region_info, after_region_info, e_mem, 0, 1, 0 },
	{ "STATS", 0, NULL, call_stats, after_stats, e_mem, 0, 1, 0 },
	{ "SEND", 0, NULL, call_send, after_send, e_send, SEND_LEN, 1, 0 },
	{ "SEND_BATCH", 0, NULL, call_send_batch, after_send_batch, e_send, SEND_LEN, 2, 0 },
	{ "XMIT", NEED_ZD0, NULL, call_xmit, after_xmit, e_send, XMIT_LEN, 1, 0 },
	{ "SET_EVENTFD", 0, NULL, call_set_eventfd, after_set_eventfd, e_mem, 0, 1, 0 },
	{ "SENDFILE", NEED_FILE, NULL, call_sendfile, after_sendfile, e_send, SEND_LEN, 1, 0 },
	{ "FILE_PAGES", NEED_FILE, NULL, call_file_pages, after_file_pages, e_mem, 0, 1, 0 },
	{ "DMA_READ", NEED_ENGINE, NULL, call_dma_read, after_dma_read, e_mem, 0, 1, 0 },
	{ "read", 0, prepare_read, call_read, after_read, e_mem, 0, 1, 0 },
};

/* ---- the sweep ---------------------------------------------------------------- */

static __u64 next_tag = 1ULL << 40;

static int sweep(struct fx *f, const struct op *op)
{
	unsigned int n, failed = 0, survived = 0, kept = 0;
	struct snap s0, s1, s2;
	const char *why;

	f->op = op;
	for (n = 1; n <= MAX_NTH; n++) {
		long ret;
		int err, inj, sends;

		f->tag = next_tag;
		next_tag += 4;
		f->primed = 0;
		if (take(f->fd, &s0) || (op->prepare && op->prepare(f)) || take(f->fd, &s1))
			return fail("%s: N=%u: setting up the call", op->name, n);
		CHECK(arm(n) == 0, "%s: writing %u to " FAIL_NTH, op->name, n);
		errno = 0;
		ret = op->call(f);
		err = errno;
		inj = injected();
		CHECK(inj >= 0, "%s: N=%u: reading " FAIL_NTH, op->name, n);
		if (take(f->fd, &s2))
			return 1;
		sends = (int)(s2.c.sends - s1.c.sends);
		CHECK(inj || ret >= 0, "%s: N=%u reached no fault site, yet the call failed: %s",
		      op->name, n, strerror(err));
		if (ret < 0) {
			CHECK(plausible(op->errnos, err), "%s: fault %u: errno %d (%s)", op->name, n,
			      err, strerror(err));
			/* Only a send already on its way may outlive a failed
			 * call: its argument could not be written back (abi.rst,
			 * ZC_IOC_SEND_BATCH: "it still has its record, as
			 * ZC_IOC_SEND"). */
			CHECK(sends == 0 || err == EFAULT,
			      "%s: fault %u: %s, yet %d sends went out", op->name, n, strerror(err),
			      sends);
			why = differs(&s1, &s2, sends, false);
			CHECK(!why, "%s: fault %u (%s) left %s", op->name, n, strerror(err), why);
			failed++;
			kept += sends > 0;
		} else if (inj) {
			survived++;
		}
		if (op->after(f, ret, inj, sends))
			return fail("%s: N=%u: after the call (returned %ld, %s)", op->name, n, ret,
				    ret < 0 ? strerror(err) : "no error");
		if (collect(f->fd, sends, f->tag, op->ntags, op->bytes))
			return fail("%s: N=%u: the records", op->name, n);
		why = settle(f->fd, &s0, sends + f->primed);
		CHECK(!why, "%s: N=%u (%s): afterwards %s", op->name, n,
		      !inj ? "no fault" : ret < 0 ? strerror(err) : "survived", why);
		if (!inj) {
			printf("# fail-nth %s: %u sites, %u injected failures, %u survived\n",
			       op->name, n - 1, failed, survived);
			if (kept)
				printf("# fail-nth %s: %u of the failures were EFAULT writing the "
				       "argument back after the send went out (its record came)\n",
				       op->name, kept);
			return 0;
		}
	}
	return fail("%s: still a fault site at N=%d", op->name, MAX_NTH);
}

/* ---- fixtures ------------------------------------------------------------------ */

static struct fx fx;

/* A 3-page file on the suite's tmpfs (/tmp without it) for SENDFILE and
 * FILE_PAGES; f->file is -1 if its page cache cannot be sent. */
static int make_file(struct fx *f)
{
	struct zc_sendfile sf;
	struct zc_completion rec;
	unsigned char *p = map_anon(3 * PAGE);
	int wfd;

	CHECK(p, "mmap");
	snprintf(f->path, sizeof(f->path), "%s/zcopy-failnth",
		 access(TMPFS_DIR, W_OK) == 0 ? TMPFS_DIR : "/tmp");
	wfd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(wfd >= 0, "create %s", f->path);
	CHECK(write(wfd, p, 3 * PAGE) == (ssize_t)(3 * PAGE) && fsync(wfd) == 0, "write %s",
	      f->path);
	close(wfd);
	munmap(p, 3 * PAGE);
	f->file = open(f->path, O_RDONLY | O_CLOEXEC);
	CHECK(f->file >= 0, "open %s", f->path);
	/* Outside the sweep: a file whose page cache is not its content
	 * (overlayfs /tmp) is EOPNOTSUPP. */
	sf = (struct zc_sendfile){
		.sock = f->udp, .fd = f->file, .offset = SEND_OFF, .len = SEND_LEN, .tag = 1,
	};
	if (ioctl(f->fd, ZC_IOC_SENDFILE, &sf) == 0) {
		CHECK(read_completions(f->fd, &rec, 1) == 1, "the trial sendfile's record");
		return 0;
	}
	CHECK(errno == EOPNOTSUPP, "a trial ZC_IOC_SENDFILE from %s", f->path);
	printf("# %s: its page cache is not its content\n", f->path);
	close(f->file);
	f->file = -1;
	return 0;
}

static int fx_setup(struct fx *f)
{
	struct zc_register r;
	char pci[64];

	f->fd = open_dev();
	f->udp = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->buf = map_anon(4 * PAGE);
	f->ebuf = map_anon(PAGE);
	CHECK(f->fd >= 0 && f->udp >= 0 && f->efd >= 0 && f->buf && f->ebuf, "setup");
	/* What the calls write into is faulted in: no page fault (and its
	 * allocations) in the sweep's window. */
	memset(&f->u, 0, sizeof(f->u));
	memset(f->batch, 0, sizeof(f->batch));
	memset(f->pi, 0, sizeof(f->pi));
	memset(f->pages, 0, sizeof(f->pages));
	memset(f->out, 0, sizeof(f->out));
	memset(f->hdr, 0, sizeof(f->hdr));
	CHECK(reg(f->fd, f->buf, 2 * PAGE, 0, 0, &f->base) == 0, "the base region");
	/* The dummy peer's neighbour entry and the socket's route exist
	 * before the sweep: creating them is not what is under test (and a
	 * failed neighbour creation is logged as critical). */
	CHECK(send(f->udp, "x", 1, 0) == 1, "a datagram to " DUMMY_PEER);
	f->zd0 = (int)if_nametoindex("zd0");
	f->nic = iface_by_driver("e1000e", pci, sizeof(pci));
	if (reg(f->fd, f->ebuf, PAGE, ZC_REGISTER_DMA_ENGINE, 0, &r) == 0)
		f->engine = r.id;
	else
		CHECK(errno == ENODEV, "registering for the DMA engine");
	return make_file(f);
}

static void fx_teardown(struct fx *f)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->udp >= 0)
		close(f->udp);
	if (f->efd >= 0)
		close(f->efd);
	if (f->file >= 0)
		close(f->file);
	if (f->path[0])
		unlink(f->path);
	if (f->buf)
		munmap(f->buf, 4 * PAGE);
	if (f->ebuf)
		munmap(f->ebuf, PAGE);
}

static int sweep_all(struct fx *f)
{
	unsigned int i;
	int bad = 0;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct op *op = &ops[i];
		const char *skip = NULL;

		if ((op->needs & NEED_NIC) && f->nic <= 0)
			skip = "no e1000e interface";
		else if ((op->needs & NEED_ENGINE) && !f->engine)
			skip = "no DMA engine: registering for it is ENODEV";
		else if ((op->needs & NEED_FILE) && f->file < 0)
			skip = "no file whose page cache can be sent";
		else if ((op->needs & NEED_ZD0) && f->zd0 <= 0)
			skip = "no zd0 (dummy) interface";
		if (skip) {
			printf("# fail-nth %s: skipped: %s\n", op->name, skip);
			continue;
		}
		/* One failed sweep leaves the fixtures as they are: stop. */
		bad = sweep(f, op);
		if (bad)
			break;
	}
	return bad;
}

int test_fail_nth_sweep_every_ioctl(void)
{
	int ret;

	if (access(FAIL_NTH, W_OK) || access(DEBUGFS "failslab", F_OK)) {
		printf("# no " FAIL_NTH " or " DEBUGFS "failslab: a kernel without "
		       "FAULT_INJECTION and FAILSLAB\n");
		return -1;
	}
	memset(&fx, 0, sizeof(fx));
	fx.fd = fx.udp = fx.efd = fx.file = -1;
	nth = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	CHECK(nth >= 0, "open " FAIL_NTH);
	/* Earlier tests' sends are done: the module's counters hold still. */
	ret = wait_released(module_pinned());
	if (!ret)
		ret = fx_setup(&fx);
	if (!ret)
		ret = knobs_set();
	if (!ret)
		ret = sweep_all(&fx);
	if (knobs_restore())
		ret = 1;
	if (pwrite(nth, "0", 1, 0) != 1)
		ret = fail("disarming " FAIL_NTH);
	close(nth);
	nth = -1;
	fx_teardown(&fx);
	return ret;
}
