// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: run in the VM with zcopy.ko loaded, written
 * against the UAPI header only, results as KTAP on stdout.
 *
 *   zcopy_itest [FILTER]
 *
 * With FILTER, only the tests whose name contains it run (and "open",
 * "network_setup" and "sendfile_setup", which others need).
 * ZCOPY_KO, when set, is the module's path: the last test unloads the
 * module and loads it again from there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/zcopy.h>

#include "itest.h"

int fail(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d: %s)\n", errno, strerror(errno));
	return 1;
}

#define KNOWN_FEATURES \
	(ZC_FEAT_REGISTER | ZC_FEAT_SEND | ZC_FEAT_SENDFILE | ZC_FEAT_SEND_BATCH | ZC_FEAT_DMA_ENGINE)


int open_dev(void)
{
	return open(DEV, O_RDWR | O_CLOEXEC);
}

/* The number after "KEY<sep>" on a line of PATH, or -1. */
long long file_value(const char *path, const char *key, char sep)
{
	char line[256];
	size_t klen = strlen(key);
	long long val = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == sep)
			val = strtoll(line + klen + 1, NULL, 10);
	fclose(f);
	return val;
}

/* A "key:\tvalue" number from /proc/self/fdinfo/FD, or -1. */
static long fdinfo_value(int fd, const char *key)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return file_value(path, key, ':');
}

static int test_open(void)
{
	int fd = open_dev();

	CHECK(fd >= 0, "open " DEV);
	close(fd);
	return 0;
}

static int test_version_roundtrip(void)
{
	struct zc_version v;
	int fd = open_dev();

	CHECK(fd >= 0, "open");
	memset(&v, 0xa5, sizeof(v));
	CHECK(ioctl(fd, ZC_IOC_VERSION, &v) == 0, "ZC_IOC_VERSION");
	close(fd);
	CHECK(v.abi_version == ZC_ABI_VERSION, "abi_version %u, want %u",
	      v.abi_version, ZC_ABI_VERSION);
	CHECK(v.reserved == 0, "reserved %#x, want 0", v.reserved);
	CHECK(!(v.features & ~(__u64)KNOWN_FEATURES), "unknown feature bits %#llx",
	      (unsigned long long)v.features);
	printf("# abi %u features %#llx\n", v.abi_version, (unsigned long long)v.features);
	return 0;
}

static int test_unknown_command_is_enotty(void)
{
	struct zc_version v;
	int fd = open_dev();

	CHECK(fd >= 0, "open");
	CHECK_ERRNO(ioctl(fd, _IO(ZC_IOC_MAGIC, 0xdf)), ENOTTY, "unused number");
	CHECK_ERRNO(ioctl(fd, _IOR('x', ZC_IOC_BASE, struct zc_version), &v), ENOTTY,
		    "foreign type byte");
	CHECK_ERRNO(ioctl(fd, _IOW(ZC_IOC_MAGIC, ZC_IOC_BASE, struct zc_version), &v),
		    ENOTTY, "VERSION number, wrong direction");
	CHECK_ERRNO(ioctl(fd, _IOR(ZC_IOC_MAGIC, ZC_IOC_BASE, __u64), &v), ENOTTY,
		    "VERSION number, wrong size");
	CHECK_ERRNO(ioctl(fd, TCGETS, &v), ENOTTY, "TCGETS");
	close(fd);
	return 0;
}

static int test_bad_pointer_is_efault(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *gone, *ro;
	int fd = open_dev();

	CHECK(fd >= 0, "open");
	gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(gone != MAP_FAILED && ro != MAP_FAILED, "mmap");
	munmap(gone, page);

	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, NULL), EFAULT, "NULL");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, (void *)1), EFAULT, "address 1");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, gone), EFAULT, "unmapped page");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, ro), EFAULT, "read-only page");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, (void *)0xffff888000000000ul), EFAULT,
		    "kernel address");
	/* The last bytes of a mapping: the struct straddles into nothing. */
	CHECK_ERRNO(ioctl(fd, ZC_IOC_VERSION, (char *)ro + page - 8), EFAULT,
		    "struct crossing into an unmapped page");
	munmap(ro, page);
	close(fd);
	return 0;
}

static int test_contexts_are_per_open(void)
{
	int a = open_dev(), b = open_dev(), c;
	long ia, ib, ic;

	CHECK(a >= 0 && b >= 0, "open");
	c = dup(a);
	ia = fdinfo_value(a, "zcopy_context");
	ib = fdinfo_value(b, "zcopy_context");
	ic = fdinfo_value(c, "zcopy_context");
	close(a);
	close(b);
	close(c);
	CHECK(ia > 0 && ib > 0, "fdinfo has no zcopy_context (%ld, %ld)", ia, ib);
	CHECK(ia != ib, "two opens share context %ld", ia);
	CHECK(ic == ia, "a dup'ed fd has context %ld, want %ld", ic, ia);
	return 0;
}

static int test_open_close_many(void)
{
	int fd = open_dev(), i;
	long before, after;

	CHECK(fd >= 0, "open");
	before = fdinfo_value(fd, "zcopy_open_contexts");
	for (i = 0; i < 1000; i++) {
		int x = open_dev();

		CHECK(x >= 0, "open #%d", i);
		CHECK(close(x) == 0, "close #%d", i);
	}
	after = fdinfo_value(fd, "zcopy_open_contexts");
	close(fd);
	CHECK(before >= 1, "zcopy_open_contexts %ld with one fd open", before);
	CHECK(after == before, "open contexts %ld after 1000 open/close, was %ld",
	      after, before);
	return 0;
}

/* A child: its own fd, many VERSION round trips. Exit status 0 on success. */
static void hammer(int shared_fd)
{
	struct zc_version v;
	int fd = open_dev(), i;

	if (fd < 0)
		_exit(10);
	for (i = 0; i < 1500; i++) {
		int use = (i & 1) ? fd : shared_fd;

		if (ioctl(use, ZC_IOC_VERSION, &v) || v.abi_version != ZC_ABI_VERSION)
			_exit(11);
	}
	close(fd);
	_exit(0);
}

static int test_two_processes_at_once(void)
{
	int shared = open_dev(), status, i, bad = 0;
	pid_t pid[2];

	CHECK(shared >= 0, "open");
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		CHECK(pid[i] >= 0, "fork");
		if (pid[i] == 0)
			hammer(shared);
	}
	for (i = 0; i < 2; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i], "waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("# child %d: status %#x\n", i, status);
			bad = 1;
		}
	}
	close(shared);
	return bad;
}


/* ---- regions ------------------------------------------------------------ */

struct zc_stats get_stats(int fd)
{
	struct zc_stats st;

	memset(&st, 0xff, sizeof(st));
	if (ioctl(fd, ZC_IOC_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

/* The module's pinned pages now, through a fresh fd. */
long long module_pinned(void)
{
	int fd = open_dev();
	struct zc_stats st;

	if (fd < 0)
		return -1;
	st = get_stats(fd);
	close(fd);
	return (long long)st.module.pinned_pages;
}

/* A "Key:   N kB" value of /proc/self/status, or -1. */
long status_kb(const char *key)
{
	return file_value("/proc/self/status", key, ':');
}

/* A "name N" line of /sys/kernel/debug/zcopy/stats, or -1. */
long long debugfs_value(const char *name)
{
	return file_value("/sys/kernel/debug/zcopy/stats", name, ' ');
}

int reg(int fd, const void *addr, unsigned long len, __u32 flags, int ifindex,
	       struct zc_register *out)
{
	struct zc_register r = {
		.addr = (unsigned long)addr,
		.len = len,
		.flags = flags,
		.ifindex = ifindex,
	};
	int ret = ioctl(fd, ZC_IOC_REGISTER, &r);

	if (out)
		*out = r;
	return ret;
}

int unreg(int fd, __u32 id)
{
	struct zc_unregister u = { .id = id };

	return ioctl(fd, ZC_IOC_UNREGISTER, &u);
}

/* Fills pages[0..n) of region id; returns entries written or -1. */
int region_pages(int fd, __u32 id, __u32 first, __u32 n, struct zc_page_info *pages,
			struct zc_region_info *out)
{
	struct zc_region_info ri = {
		.id = id,
		.first_page = first,
		.nr_pages = n,
		.pages = (unsigned long)pages,
	};

	if (ioctl(fd, ZC_IOC_REGION_INFO, &ri))
		return -1;
	if (out)
		*out = ri;
	return ri.nr_pages;
}

void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0x5a, len);
	return p;
}

/* The ifindex and PCI address of the interface driven by `driver`, or 0. */
int iface_by_driver(const char *driver, char *pci, size_t pcilen)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *e;
	int ifindex = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && !ifindex) {
		char path[PATH_MAX], link[PATH_MAX];
		ssize_t n;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		if (strcmp(strrchr(link, '/') + 1, driver))
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/device", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		snprintf(pci, pcilen, "%s", strrchr(link, '/') + 1);
		snprintf(path, sizeof(path), "/sys/class/net/%s/ifindex", e->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fscanf(f, "%d", &ifindex) != 1)
				ifindex = 0;
			fclose(f);
		}
	}
	closedir(d);
	return ifindex;
}

int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Drops `cap` from this process's effective and permitted sets. */
int drop_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[cap / 32].effective &= ~(1U << (cap % 32));
	d[cap / 32].permitted &= ~(1U << (cap % 32));
	return syscall(SYS_capset, &h, d);
}

static int test_register_roundtrip(void)
{
	int fd = open_dev();
	char *buf = map_anon(4 * PAGE);
	struct zc_register r;
	struct zc_page_info pi[5];
	struct zc_region_info ri;
	struct zc_stats st;
	long vmpin0 = status_kb("VmPin");
	int i;

	CHECK(fd >= 0 && buf, "setup");
	/* 3 pages' worth starting mid-page: 4 pages are pinned. */
	CHECK(reg(fd, buf + 100, 3 * PAGE, 0, 0, &r) == 0, "register");
	CHECK(r.id != 0 && r.nr_pages == 4 && r.nr_folios == 4,
	      "id %u nr_pages %u nr_folios %u", r.id, r.nr_pages, r.nr_folios);
	CHECK(status_kb("VmPin") == vmpin0 + 16, "VmPin %ld kB, want %ld", status_kb("VmPin"),
	      vmpin0 + 16);
	st = get_stats(fd);
	CHECK(st.context.regions == 1 && st.context.pinned_pages == 4 &&
	      st.context.mapped_pages == 0, "context stats %llu/%llu/%llu",
	      (unsigned long long)st.context.regions, (unsigned long long)st.context.pinned_pages,
	      (unsigned long long)st.context.mapped_pages);
	CHECK(debugfs_value("pinned_pages") >= 4 && debugfs_value("regions") >= 1,
	      "debugfs stats: pinned_pages %lld regions %lld", debugfs_value("pinned_pages"),
	      debugfs_value("regions"));
	CHECK(region_pages(fd, r.id, 0, 5, pi, &ri) == 4, "region info");
	CHECK(ri.total_pages == 4 && ri.addr == (unsigned long)buf + 100 && ri.len == 3 * PAGE &&
	      ri.flags == 0 && ri.ifindex == 0, "region description");
	for (i = 0; i < 4; i++) {
		CHECK(pi[i].flags == ZC_PAGE_DMA_PINNED, "page %d flags %#x", i, pi[i].flags);
		CHECK(pi[i].pincount == 1, "page %d pincount %u", i, pi[i].pincount);
		CHECK(pi[i].refcount > 1024, "page %d refcount %u", i, pi[i].refcount);
		CHECK(pi[i].iova == 0 && pi[i].order == 0, "page %d iova/order", i);
	}
	CHECK(region_pages(fd, r.id, 3, 5, pi, NULL) == 1, "info from the last page");
	CHECK(region_pages(fd, r.id, 4, 5, pi, NULL) == 0, "info past the last page");
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK(debugfs_value("pinned_pages") == module_pinned(), "debugfs and ioctl disagree");
	CHECK(status_kb("VmPin") == vmpin0, "VmPin %ld kB after, want %ld", status_kb("VmPin"),
	      vmpin0);
	st = get_stats(fd);
	CHECK(st.context.regions == 0 && st.context.pinned_pages == 0 &&
	      st.context.regions_total == 1 && st.context.pinned_total == 4, "stats after");
	close(fd);
	munmap(buf, 4 * PAGE);
	return 0;
}

static int test_register_10000_times(void)
{
	int fd = open_dev(), i;
	char *buf = map_anon(2 * PAGE);
	long vmpin0 = status_kb("VmPin"), vmlck0 = status_kb("VmLck");
	long long pinned0 = module_pinned();
	struct zc_page_info ref[2], now[2];
	struct zc_register r, obs;

	CHECK(fd >= 0 && buf, "setup");
	/* An observer region shows the pages' counts; it pins once itself. */
	CHECK(reg(fd, buf, 2 * PAGE, ZC_REGISTER_READONLY, 0, &obs) == 0, "observer");
	CHECK(region_pages(fd, obs.id, 0, 2, ref, NULL) == 2, "observer info");
	for (i = 0; i < 10000; i++) {
		CHECK(reg(fd, buf, 2 * PAGE, 0, 0, &r) == 0, "register #%d", i);
		CHECK(unreg(fd, r.id) == 0, "unregister #%d", i);
	}
	CHECK(region_pages(fd, obs.id, 0, 2, now, NULL) == 2, "observer info after");
	for (i = 0; i < 2; i++)
		CHECK(now[i].refcount == ref[i].refcount && now[i].pincount == ref[i].pincount,
		      "page %d: refcount %u pincount %u, were %u %u", i, now[i].refcount,
		      now[i].pincount, ref[i].refcount, ref[i].pincount);
	CHECK(unreg(fd, obs.id) == 0, "observer unregister");
	CHECK(module_pinned() == pinned0, "module pinned %lld, was %lld", module_pinned(), pinned0);
	CHECK(status_kb("VmPin") == vmpin0 && status_kb("VmLck") == vmlck0, "VmPin/VmLck moved");
	close(fd);
	munmap(buf, 2 * PAGE);
	return 0;
}

/* In a child without CAP_IPC_LOCK and RLIMIT_MEMLOCK of 8 pages. */
/* A counter of /proc/vmstat, or -1 if there is none. */
static long long vmstat(const char *name)
{
	size_t n = strlen(name);
	long long v = -1;
	char line[128];
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ' ') {
			v = atoll(line + n + 1);
			break;
		}
	fclose(f);
	return v;
}

static int memlock_child(void)
{
	struct rlimit rl = { 8 * PAGE, 8 * PAGE };
	size_t big_len = 64UL << 20;
	char *big = mmap(NULL, big_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *buf = map_anon(16 * PAGE);
	struct zc_register r;
	int fd = open_dev();
	long long pinned0, pins0;

	CHECK(fd >= 0 && buf && big != MAP_FAILED, "setup");
	CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0, "setrlimit");
	CHECK(drop_cap(CAP_IPC_LOCK) == 0, "drop CAP_IPC_LOCK");
	pinned0 = get_stats(fd).module.pinned_pages;
	CHECK(reg(fd, buf, 8 * PAGE, 0, 0, &r) == 0, "8 pages within an 8-page limit");
	CHECK_ERRNO(reg(fd, buf + 8 * PAGE, PAGE, 0, 0, NULL), ENOMEM, "a 9th page");
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK_ERRNO(reg(fd, buf, 9 * PAGE, 0, 0, NULL), ENOMEM, "9 pages at once");
	/* Refused before anything is pinned: the limit limits what the call
	 * itself pins on its way to ENOMEM. */
	pins0 = vmstat("nr_foll_pin_acquired");
	CHECK(pins0 >= 0, "nr_foll_pin_acquired in /proc/vmstat");
	CHECK_ERRNO(reg(fd, big, big_len, 0, 0, NULL), ENOMEM, "64 MiB over an 8-page limit");
	CHECK(vmstat("nr_foll_pin_acquired") == pins0, "%lld pages pinned on the way to ENOMEM",
	      vmstat("nr_foll_pin_acquired") - pins0);
	CHECK((long long)get_stats(fd).module.pinned_pages == pinned0, "pages left pinned");
	CHECK(status_kb("VmPin") == 0, "VmPin %ld kB", status_kb("VmPin"));
	CHECK(reg(fd, buf, 8 * PAGE, 0, 0, &r) == 0, "8 pages again");
	close(fd);
	return 0;
}

int run_in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(fn() ? 1 : 0);
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int test_memlock_limit(void)
{
	return run_in_child(memlock_child);
}

static int test_huge_page_is_one_folio(void)
{
	size_t huge = 2UL << 20;
	char *raw = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *buf = (char *)(((unsigned long)raw + huge - 1) & ~(huge - 1));
	struct zc_page_info pi[2];
	struct zc_register r;
	long vmpin0 = status_kb("VmPin");
	int fd = open_dev();

	CHECK(fd >= 0 && raw != MAP_FAILED, "setup");
	CHECK(madvise(buf, huge, MADV_HUGEPAGE) == 0, "MADV_HUGEPAGE");
	memset(buf, 1, huge);
	CHECK(reg(fd, buf, huge, 0, 0, &r) == 0, "register");
	CHECK(r.nr_pages == 512, "nr_pages %u", r.nr_pages);
	CHECK(r.nr_folios == 1, "nr_folios %u: the huge page is not one pin", r.nr_folios);
	CHECK(status_kb("VmPin") == vmpin0 + 2048, "VmPin +%ld kB", status_kb("VmPin") - vmpin0);
	CHECK(region_pages(fd, r.id, 0, 1, pi, NULL) == 1 &&
	      region_pages(fd, r.id, 511, 1, pi + 1, NULL) == 1, "info");
	CHECK(pi[0].order == 9 && (pi[0].flags & ZC_PAGE_LARGE) && pi[0].pincount == 1,
	      "order %u flags %#x pincount %u", pi[0].order, pi[0].flags, pi[0].pincount);
	CHECK(pi[1].order == 9 && pi[1].pincount == 1, "last page of the folio");
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK(status_kb("VmPin") == vmpin0, "VmPin after");
	close(fd);
	munmap(raw, 2 * huge);
	return 0;
}

static int test_hugetlb_is_one_folio(void)
{
	size_t huge = 2UL << 20;
	struct zc_register r;
	long vmpin0 = status_kb("VmPin");
	int fd = open_dev();
	char *buf;

	CHECK(fd >= 0, "open");
	CHECK(write_file("/proc/sys/vm/nr_hugepages", "2") == 0, "reserve huge pages");
	buf = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	CHECK(buf != MAP_FAILED, "MAP_HUGETLB");
	memset(buf, 2, huge);
	CHECK(reg(fd, buf + 5 * PAGE, 3 * PAGE, 0, 0, &r) == 0, "register part of it");
	CHECK(r.nr_pages == 3 && r.nr_folios == 1, "nr_pages %u nr_folios %u", r.nr_pages,
	      r.nr_folios);
	/* The whole folio is pinned, so the whole folio is charged. */
	CHECK(status_kb("VmPin") == vmpin0 + 2048, "VmPin +%ld kB", status_kb("VmPin") - vmpin0);
	close(fd);
	CHECK(status_kb("VmPin") == vmpin0, "VmPin after close");
	munmap(buf, huge);
	write_file("/proc/sys/vm/nr_hugepages", "0");
	return 0;
}

static int test_fork_keeps_parent_pages(void)
{
	char pci[64];
	int ifindex = iface_by_driver("e1000e", pci, sizeof(pci));
	char *buf = map_anon(2 * PAGE);
	struct zc_page_info before[2], after[2];
	struct zc_register r;
	int fd = open_dev(), status, i;
	pid_t pid;

	CHECK(fd >= 0 && buf && ifindex > 0, "setup (e1000e ifindex %d)", ifindex);
	memset(buf, 'P', 2 * PAGE);
	CHECK(reg(fd, buf, 2 * PAGE, 0, ifindex, &r) == 0, "register mapped");
	CHECK(region_pages(fd, r.id, 0, 2, before, NULL) == 2, "info");
	CHECK(before[0].iova != 0, "no IOVA for a privileged caller");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		memset(buf, 'C', 2 * PAGE);
		_exit(buf[0] == 'C' ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "child");
	for (i = 0; i < (int)(2 * PAGE); i++)
		CHECK(buf[i] == 'P', "parent byte %d is %#x after the child wrote", i, buf[i]);
	CHECK(region_pages(fd, r.id, 0, 2, after, NULL) == 2, "info after");
	for (i = 0; i < 2; i++)
		CHECK(after[i].iova == before[i].iova && after[i].pincount == before[i].pincount &&
		      (after[i].flags & ZC_PAGE_DMA_PINNED), "page %d changed identity", i);
	close(fd);
	munmap(buf, 2 * PAGE);
	return 0;
}

static int iova_child(void)
{
	char pci[64];
	int ifindex = iface_by_driver("e1000e", pci, sizeof(pci));
	char *buf = map_anon(PAGE);
	struct zc_page_info pi;
	struct zc_register r;
	int fd = open_dev();

	CHECK(fd >= 0 && buf && ifindex > 0, "setup");
	CHECK(reg(fd, buf, PAGE, 0, ifindex, &r) == 0, "register mapped");
	CHECK(region_pages(fd, r.id, 0, 1, &pi, NULL) == 1 && pi.iova != 0, "root sees the IOVA");
	CHECK(drop_cap(CAP_SYS_ADMIN) == 0, "drop CAP_SYS_ADMIN");
	CHECK(region_pages(fd, r.id, 0, 1, &pi, NULL) == 1, "info");
	CHECK(pi.iova == 0 && (pi.flags & ZC_PAGE_MAPPED), "unprivileged: iova %#llx flags %#x",
	      (unsigned long long)pi.iova, pi.flags);
	return 0;
}

static int test_iova_only_for_cap_sys_admin(void)
{
	return run_in_child(iova_child);
}

static int test_mapping_and_bad_interfaces(void)
{
	char pci[64];
	int e1000e = iface_by_driver("e1000e", pci, sizeof(pci));
	int virtio = iface_by_driver("virtio_net", pci, sizeof(pci));
	char *buf = map_anon(3 * PAGE);
	struct zc_page_info pi[3];
	struct zc_region_info ri;
	struct zc_register r;
	struct zc_stats st;
	int fd = open_dev(), i;
	long long pinned0 = module_pinned();

	CHECK(fd >= 0 && buf && e1000e > 0 && virtio > 0, "setup");
	CHECK_ERRNO(reg(fd, buf, PAGE, 0, 1, NULL), EOPNOTSUPP, "loopback");
	CHECK_ERRNO(reg(fd, buf, PAGE, 0, 100000, NULL), ENODEV, "unknown ifindex");
	CHECK_ERRNO(reg(fd, buf, PAGE, 0, -5, NULL), ENODEV, "negative ifindex");
	CHECK(module_pinned() == pinned0, "failed registrations left pages pinned");
	/* virtio-net: its DMA device is the PCI function above the virtio device. */
	CHECK(reg(fd, buf, 3 * PAGE, 0, virtio, &r) == 0, "map for virtio-net");
	CHECK(region_pages(fd, r.id, 0, 3, pi, &ri) == 3, "info");
	CHECK((ri.flags & ZC_REGION_MAPPED) && ri.ifindex == virtio, "region flags %#x", ri.flags);
	for (i = 0; i < 3; i++)
		CHECK(pi[i].iova && (pi[i].flags & ZC_PAGE_MAPPED), "page %d not mapped", i);
	st = get_stats(fd);
	CHECK(st.context.mapped_pages == 3, "mapped_pages %llu",
	      (unsigned long long)st.context.mapped_pages);
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK(get_stats(fd).context.mapped_pages == 0, "mapped after unregister");
	close(fd);
	munmap(buf, 3 * PAGE);
	return 0;
}

static int test_unbinding_the_nic_unmaps(void)
{
	char pci[64];
	int ifindex = iface_by_driver("e1000e", pci, sizeof(pci));
	char *buf = map_anon(2 * PAGE);
	struct zc_page_info pi[2];
	struct zc_region_info ri;
	struct zc_register r;
	int fd = open_dev(), rebound;

	CHECK(fd >= 0 && buf && ifindex > 0, "setup");
	CHECK(reg(fd, buf, 2 * PAGE, 0, ifindex, &r) == 0, "register mapped");
	CHECK(get_stats(fd).context.mapped_pages == 2, "mapped");
	CHECK(write_file("/sys/bus/pci/drivers/e1000e/unbind", pci) == 0, "unbind %s", pci);
	CHECK(region_pages(fd, r.id, 0, 2, pi, &ri) == 2, "info after unbind");
	rebound = write_file("/sys/bus/pci/drivers/e1000e/bind", pci);
	CHECK(!(ri.flags & ZC_REGION_MAPPED), "still mapped after the device went away");
	CHECK(pi[0].iova == 0 && !(pi[0].flags & ZC_PAGE_MAPPED), "page still has an IOVA");
	CHECK(pi[0].flags & ZC_PAGE_DMA_PINNED, "the region must stay pinned");
	CHECK(get_stats(fd).context.mapped_pages == 0, "mapped_pages after unbind");
	CHECK(unreg(fd, r.id) == 0, "unregister after unbind");
	CHECK(rebound == 0, "rebind %s", pci);
	close(fd);
	munmap(buf, 2 * PAGE);
	return 0;
}

static int test_bad_register_inputs(void)
{
	char *buf = map_anon(4 * PAGE), *ro, *none;
	struct zc_register r;
	int fd = open_dev(), other = open_dev();
	long long pinned0 = module_pinned();
	long vmpin0 = status_kb("VmPin");
	struct zc_register bad;

	CHECK(fd >= 0 && other >= 0 && buf, "setup");
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED && none != MAP_FAILED, "mmap");
	munmap(buf + PAGE, PAGE); /* a hole in the middle */

	CHECK_ERRNO(reg(fd, NULL, PAGE, 0, 0, NULL), EFAULT, "NULL address");
	CHECK_ERRNO(reg(fd, buf, 0, 0, 0, NULL), EINVAL, "zero length");
	CHECK_ERRNO(reg(fd, (void *)-4096L, 2 * PAGE, 0, 0, NULL), EOVERFLOW,
		    "length wrapping the address space");
	CHECK_ERRNO(reg(fd, buf, 3 * PAGE, 0, 0, NULL), EFAULT, "hole in the middle");
	CHECK_ERRNO(reg(fd, none, PAGE, 0, 0, NULL), EFAULT, "PROT_NONE");
	CHECK_ERRNO(reg(fd, ro, PAGE, 0, 0, NULL), EFAULT, "read-only mapping, writable pin");
	CHECK_ERRNO(reg(fd, (void *)0xffff888000000000UL, PAGE, 0, 0, NULL), EFAULT,
		    "kernel address");
	CHECK_ERRNO(reg(fd, buf, PAGE, 1U << 7, 0, NULL), EINVAL, "unknown flag");
	bad = (struct zc_register){ .addr = (unsigned long)buf, .len = PAGE, .reserved = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_REGISTER, &bad), EINVAL, "reserved field set");
	CHECK_ERRNO(ioctl(fd, _IOWR(ZC_IOC_MAGIC, ZC_IOC_BASE + ZC_NR_REGISTER, __u64[4]), &bad),
		    ENOTTY, "a struct shorter than the ABI's");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_REGISTER, NULL), EFAULT, "NULL argument");
	{
		/* A valid request in a read-only page: the reply cannot be
		 * copied out, so the region must not survive. */
		char *argp = map_anon(PAGE);
		struct zc_register *rr = (struct zc_register *)argp;

		CHECK(argp, "mmap");
		memset(rr, 0, sizeof(*rr));
		rr->addr = (unsigned long)buf;
		rr->len = PAGE;
		CHECK(mprotect(argp, PAGE, PROT_READ) == 0, "mprotect");
		CHECK_ERRNO(ioctl(fd, ZC_IOC_REGISTER, rr), EFAULT, "read-only argument");
		munmap(argp, PAGE);
	}
	CHECK(module_pinned() == pinned0 && status_kb("VmPin") == vmpin0,
	      "a refused registration left something pinned");

	CHECK(reg(fd, ro, PAGE, ZC_REGISTER_READONLY, 0, &r) == 0, "read-only mapping, read-only pin");
	CHECK_ERRNO(unreg(other, r.id), ENOENT, "another fd's region");
	CHECK_ERRNO(region_pages(other, r.id, 0, 0, NULL, NULL), ENOENT, "another fd's region info");
	CHECK_ERRNO(region_pages(fd, r.id, 2, 1, NULL, NULL), EINVAL, "first_page past the end");
	CHECK_ERRNO(region_pages(fd, r.id, 0, 1, (void *)8, NULL), EFAULT, "bad pages pointer");
	{
		/* Output fields set on input, one at a time. */
		struct zc_region_info ri[5];
		unsigned int i;

		for (i = 0; i < 5; i++) {
			memset(&ri[i], 0, sizeof(ri[i]));
			ri[i].id = r.id;
		}
		ri[0].flags = 1;
		ri[1].addr = 1;
		ri[2].len = 1;
		ri[3].total_pages = 1;
		ri[4].ifindex = 1;
		static const char *const field[5] = { "flags", "addr", "len", "total_pages",
						      "ifindex" };

		for (i = 0; i < 5; i++)
			CHECK_ERRNO(ioctl(fd, ZC_IOC_REGION_INFO, &ri[i]), EINVAL, field[i]);
	}
	{
		struct zc_unregister u = { .id = r.id, .reserved = 1 };

		CHECK_ERRNO(ioctl(fd, ZC_IOC_UNREGISTER, &u), EINVAL, "unregister reserved");
	}
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK_ERRNO(unreg(fd, r.id), ENOENT, "double unregister");
	CHECK_ERRNO(unreg(fd, 0), ENOENT, "id 0");
	CHECK(module_pinned() == pinned0, "pinned after");
	close(fd);
	close(other);
	munmap(ro, PAGE);
	munmap(none, PAGE);
	munmap(buf, PAGE);
	munmap(buf + 2 * PAGE, 2 * PAGE);
	return 0;
}

static int test_close_and_kill_release_everything(void)
{
	char *buf = map_anon(8 * PAGE);
	long long pinned0 = module_pinned();
	int fd = open_dev(), i, status;
	pid_t pid;

	CHECK(fd >= 0 && buf, "setup");
	for (i = 0; i < 8; i++)
		CHECK(reg(fd, buf + i * PAGE, PAGE, 0, 0, NULL) == 0, "register %d", i);
	CHECK(module_pinned() == pinned0 + 8, "pinned %lld", module_pinned());
	close(fd);
	CHECK(module_pinned() == pinned0, "close left %lld pinned", module_pinned() - pinned0);

	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int cfd = open_dev();

		for (i = 0; i < 8; i++)
			reg(cfd, buf + i * PAGE, PAGE, 0, 0, NULL);
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status), "child stopped");
	CHECK(module_pinned() == pinned0 + 8, "child pinned %lld", module_pinned() - pinned0);
	kill(pid, SIGKILL);
	CHECK(waitpid(pid, &status, 0) == pid, "reap");
	CHECK(module_pinned() == pinned0, "kill -9 left %lld pinned", module_pinned() - pinned0);
	munmap(buf, 8 * PAGE);
	return 0;
}

static int reload(const char *ko, const char *params)
{
	int kfd;

	/* A failed test may have returned without closing its descriptors,
	 * and any open /dev/zcopy keeps the module loaded. */
	syscall(SYS_close_range, 3, ~0U, 0);

	if (syscall(SYS_delete_module, "zcopy", O_NONBLOCK))
		return fail("delete_module");
	kfd = open(ko, O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return fail("open %s", ko);
	if (syscall(SYS_finit_module, kfd, params, 0)) {
		close(kfd);
		return fail("finit_module %s", params);
	}
	close(kfd);
	return 0;
}

static int test_global_cap(void)
{
	const char *ko = getenv("ZCOPY_KO");
	char *buf = map_anon(16 * PAGE);
	struct zc_register r;
	struct zc_stats st;
	int fd;

	if (!ko || !*ko || !strcmp(ko, "-")) {
		printf("# ZCOPY_KO not set: cannot reload the module with a cap\n");
		return -1;
	}
	CHECK(buf, "setup");
	if (reload(ko, "max_pinned_pages=8"))
		return 1;
	fd = open_dev();
	CHECK(fd >= 0, "open");
	st = get_stats(fd);
	CHECK(st.max_pinned_pages == 8, "max_pinned_pages %llu",
	      (unsigned long long)st.max_pinned_pages);
	CHECK(reg(fd, buf, 8 * PAGE, 0, 0, &r) == 0, "8 pages under a cap of 8");
	CHECK_ERRNO(reg(fd, buf + 8 * PAGE, PAGE, 0, 0, NULL), ENOMEM, "a 9th page");
	CHECK(get_stats(fd).module.pinned_pages == 8, "pinned after refusal");
	CHECK(unreg(fd, r.id) == 0, "unregister");
	CHECK_ERRNO(reg(fd, buf, 9 * PAGE, 0, 0, NULL), ENOMEM, "9 pages at once");
	CHECK(get_stats(fd).module.pinned_pages == 0, "pinned after refusal");
	close(fd);
	munmap(buf, 16 * PAGE);
	return reload(ko, "");
}

/*
 * A send past MAX_RW_COUNT goes out short, as every kernel send path
 * clamps: TCP counts a send in an int, so 2 GiB + 8 KiB at once returned an
 * error after the data went out. The region is 2 GiB + 8 KiB of address
 * space backed by 2 MiB of memory (one memfd mapped 1,025 times, end to
 * end: the VM has 1 GiB) and the receiver, on loopback, discards with
 * MSG_TRUNC; the module is reloaded with a cap that allows it, and back.
 */
static int test_send_past_max_rw_count(void)
{
	const unsigned long len = (2UL << 30) + 2 * PAGE, max_rw = 0x7ffff000UL;
	const char *ko = getenv("ZCOPY_KO");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7990) };
	struct timeval tv = { .tv_sec = 300 };
	struct zc_send s = { .len = len, .tag = 77 };
	struct zc_completion rec;
	struct zc_register r;
	long long got = 0;
	int ls, fd, sk, st, p[2];
	pid_t rx;
	char *buf;

	if (!ko || !*ko || !strcmp(ko, "-")) {
		printf("# ZCOPY_KO not set: cannot reload the module with a larger cap\n");
		return -1;
	}
	CHECK(reload(ko, "max_pinned_pages=1048576") == 0, "reload with a 4 GiB cap");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(ls, 1) == 0 &&
	      pipe(p) == 0, "listen");
	rx = fork();
	CHECK(rx >= 0, "fork");
	if (rx == 0) {
		int c = accept(ls, NULL, NULL);
		ssize_t n;

		while (c >= 0 && (n = recv(c, NULL, 1 << 20, MSG_TRUNC)) > 0)
			got += n;
		_exit(write(p[1], &got, sizeof(got)) == sizeof(got) ? 0 : 1);
	}
	close(ls);
	{
		const unsigned long chunk = 2UL << 20, span = len + chunk;
		int mfd = memfd_create("zcopy-max-rw", MFD_CLOEXEC);
		char *c;

		CHECK(mfd >= 0 && ftruncate(mfd, chunk) == 0, "memfd");
		buf = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		CHECK(buf != MAP_FAILED, "reserve 2 GiB");
		for (c = buf; c < buf + len; c += chunk)
			CHECK(mmap(c, chunk, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mfd, 0) == c,
			      "map the memfd at %p", (void *)c);
		memset(buf, 0x5a, chunk);
		close(mfd);
	}
	fd = open_dev();
	CHECK(fd >= 0, "open");
	CHECK(reg(fd, buf, len, ZC_REGISTER_READONLY, 0, &r) == 0, "register 2 GiB + 8 KiB");
	sk = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(sk >= 0 && setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
	      connect(sk, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	s.fd = sk;
	s.region = r.id;
	CHECK(ioctl(fd, ZC_IOC_SEND, &s) == 0, "send of 2 GiB + 8 KiB");
	CHECK(s.sent == max_rw, "sent %llu, want MAX_RW_COUNT %lu", (unsigned long long)s.sent,
	      max_rw);
	CHECK(read_completions(fd, &rec, 1) == 1 && rec.tag == 77 && rec.bytes == max_rw,
	      "record: tag %llu bytes %llu", (unsigned long long)rec.tag,
	      (unsigned long long)rec.bytes);
	close(sk);
	CHECK(read(p[0], &got, sizeof(got)) == sizeof(got) && waitpid(rx, &st, 0) == rx,
	      "receiver");
	CHECK(got == (long long)max_rw, "the receiver got %lld bytes", got);
	CHECK(unreg(fd, r.id) == 0, "unregister");
	close(fd);
	munmap(buf, len + (2UL << 20));
	return reload(ko, "");
}

static int test_rmmod_refused_while_open(void)
{
	const char *ko = getenv("ZCOPY_KO");
	int fd, kfd;

	if (!ko || !*ko || !strcmp(ko, "-")) {
		printf("# ZCOPY_KO not set: cannot reload the module afterwards\n");
		return -1;
	}
	syscall(SYS_close_range, 3, ~0U, 0); /* see reload() */
	fd = open_dev();
	CHECK(fd >= 0, "open");
	CHECK_ERRNO(syscall(SYS_delete_module, "zcopy", O_NONBLOCK), EWOULDBLOCK,
		    "delete_module while open");
	close(fd);
	CHECK(syscall(SYS_delete_module, "zcopy", O_NONBLOCK) == 0,
	      "delete_module after close");
	CHECK(access(DEV, F_OK) == -1 && errno == ENOENT, DEV " still exists");
	kfd = open(ko, O_RDONLY | O_CLOEXEC);
	CHECK(kfd >= 0, "open %s", ko);
	CHECK(syscall(SYS_finit_module, kfd, "", 0) == 0, "finit_module");
	close(kfd);
	fd = open_dev();
	CHECK(fd >= 0, "open after reload");
	close(fd);
	return 0;
}

/*
 * The fuzzer's short run (tools/fuzz; `make fuzz` runs it longer): 12,000
 * calls from 4 threads, with every disturbance but moving the NICs. It
 * fails on its own findings (counters not back to their baseline, a call
 * that succeeded where the ABI says it fails, records that match no send);
 * the verdict adds the kernel log.
 */
static int test_fuzz_12000_calls(void)
{
	const char *dir = getenv("ZCOPY_HARNESS");
	char line[512], cmd[4096];
	int status;
	FILE *p;

	CHECK(dir, "ZCOPY_HARNESS is not set");
	snprintf(cmd, sizeof(cmd),
		 "%s/../target/release/zcopy-fuzz --seed 7 --calls 12000 --threads 4 2>&1", dir);
	p = popen(cmd, "r");
	CHECK(p, "popen %s", cmd);
	while (fgets(line, sizeof(line), p))
		printf("# %s", line);
	status = pclose(p);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "zcopy-fuzz: status %#x", status);
	return 0;
}

/* A case marked U runs as an unprivileged user (see run_case); R, as root. */
#define U 1
#define R 0

static const struct {
	const char *name;
	test_fn fn;
	int unprivileged;
} tests[] = {
	{ "open", test_open, R },
	{ "version_roundtrip", test_version_roundtrip, U },
	{ "unknown_command_is_enotty", test_unknown_command_is_enotty, U },
	{ "bad_pointer_is_efault", test_bad_pointer_is_efault, U },
	{ "contexts_are_per_open", test_contexts_are_per_open, U },
	{ "open_close_many", test_open_close_many, U },
	{ "two_processes_at_once", test_two_processes_at_once, U },
	{ "register_roundtrip", test_register_roundtrip, R },
	{ "register_10000_times", test_register_10000_times, U },
	{ "memlock_limit", test_memlock_limit, U },
	{ "huge_page_is_one_folio", test_huge_page_is_one_folio, U },
	{ "hugetlb_is_one_folio", test_hugetlb_is_one_folio, R },
	{ "fork_keeps_parent_pages", test_fork_keeps_parent_pages, R },
	{ "iova_only_for_cap_sys_admin", test_iova_only_for_cap_sys_admin, R },
	{ "mapping_and_bad_interfaces", test_mapping_and_bad_interfaces, R },
	{ "dma_engine_reads_through_iovas", test_dma_engine_reads_through_iovas, R },
	{ "dma_engine_huge_and_read_only", test_dma_engine_huge_and_read_only, U },
	{ "dma_engine_bad_inputs", test_dma_engine_bad_inputs, U },
	{ "dma_engine_read_after_unmap_faults_while_pinned",
	  test_dma_engine_read_after_unmap_faults_while_pinned, R },
	{ "dma_engine_unbind_unmaps_and_absent_is_enodev",
	  test_dma_engine_unbind_unmaps_and_absent_is_enodev, R },
	/* Sends, before the NIC is unbound (it comes back renamed). */
	{ "network_setup", test_network_setup, R },
	{ "send_bad_inputs", test_send_bad_inputs, R },
	{ "send_batch_bad_inputs", test_send_batch_bad_inputs, U },
	{ "send_tcp_wire", test_send_tcp_wire, R },
	{ "send_huge_pages_over_the_wire", test_send_huge_pages_over_the_wire, R },
	{ "send_tcp_veth", test_send_tcp_veth, R },
	{ "send_batch_tcp_veth", test_send_batch_tcp_veth, R },
	{ "send_batch_stops_at_short_stream_send", test_send_batch_stops_at_short_stream_send, R },
	{ "send_nonblocking_socket_does_not_block", test_send_nonblocking_socket_does_not_block, R },
	{ "send_local_is_copied", test_send_local_is_copied, R },
	{ "send_udp_dummy_not_copied", test_send_udp_dummy_not_copied, U },
	{ "send_batch_partial_acceptance", test_send_batch_partial_acceptance, U },
	{ "send_udp_wire", test_send_udp_wire, R },
	{ "send_udp_veth", test_send_udp_veth, R },
	{ "send_unregister_busy_until_complete", test_send_unregister_busy_until_complete, R },
	{ "send_10000_from_threads_with_eventfd", test_send_10000_from_threads_with_eventfd, U },
	{ "send_batch_10000_from_threads", test_send_batch_10000_from_threads, U },
	{ "send_queue_full_is_enobufs", test_send_queue_full_is_enobufs, U },
	{ "send_batch_refusal_consumes_nothing", test_send_batch_refusal_consumes_nothing, R },
	{ "send_kill_mid_stream_releases", test_send_kill_mid_stream_releases, R },
	{ "send_close_mid_stream_releases", test_send_close_mid_stream_releases, R },
	{ "xmit_raw_frames", test_xmit_raw_frames, R },
	{ "xmit_bad_inputs", test_xmit_bad_inputs, R },
	{ "sendfile_setup", test_sendfile_setup, R },
	{ "sendfile_bad_inputs", test_sendfile_bad_inputs, U },
	{ "sendfile_residency_needs_write_access", test_sendfile_residency_needs_write_access, R },
	{ "sendfile_checks_and_notifies_as_sendfile",
	  test_sendfile_checks_and_notifies_as_sendfile, R },
	{ "sendfile_refuses_pseudo_files", test_sendfile_refuses_pseudo_files, R },
	{ "sendfile_from_ramfs", test_sendfile_from_ramfs, R },
	{ "sendfile_sizes_over_veth", test_sendfile_sizes_over_veth, R },
	{ "sendfile_over_the_wire", test_sendfile_over_the_wire, R },
	{ "sendfile_misses_then_hits", test_sendfile_misses_then_hits, R },
	{ "sendfile_pages_held_in_flight", test_sendfile_pages_held_in_flight, R },
	{ "sendfile_truncate_during_stream", test_sendfile_truncate_during_stream, R },
	{ "sendfile_kill_mid_stream_releases", test_sendfile_kill_mid_stream_releases, R },
	{ "samples_send", test_samples_send, R },
	{ "bench_smoke", test_bench_smoke, R },
	{ "fuzz_12000_calls", test_fuzz_12000_calls, R },
	{ "unbinding_the_nic_unmaps", test_unbinding_the_nic_unmaps, R },
	{ "bad_register_inputs", test_bad_register_inputs, U },
	{ "close_and_kill_release_everything", test_close_and_kill_release_everything, U },
	{ "fail_nth_sweep_every_ioctl", test_fail_nth_sweep_every_ioctl, R },
	/* Last: these unload and reload the module. */
	{ "global_cap", test_global_cap, R },
	{ "send_past_max_rw_count", test_send_past_max_rw_count, R },
	{ "rmmod_refused_while_open", test_rmmod_refused_while_open, R },
};

/*
 * The unprivileged caller: /dev/zcopy belongs to group ZCOPY_GID, mode 0660
 * (what tools/udev/60-zcopy.rules sets up), and a case marked U runs in a
 * child that is user nobody in that group, with no capabilities and the
 * memlock limit an administrator would grant (256 MiB). So the ABI those
 * cases test is the one an ordinary user gets.
 */
#define ZCOPY_GID 4242
#define NOBODY 65534

static int open_device_to_group(void)
{
	if (chown(DEV, 0, ZCOPY_GID) || chmod(DEV, 0660))
		return -1;
	return 0;
}

static int become_unprivileged(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	struct rlimit rl = { 256UL << 20, 256UL << 20 };
	gid_t g = ZCOPY_GID;

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(1, &g) ||
	    setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	/* Our /proc/self files stay ours to read. */
	prctl(PR_SET_DUMPABLE, 1);
	if (syscall(SYS_capget, &h, d) || d[0].effective || d[1].effective || d[0].permitted ||
	    d[1].permitted)
		return -1;
	return 0;
}

/* Runs case i, as nobody if it is marked so: 0 pass, 1 fail, -1 skip. */
static int run_case(unsigned int i)
{
	int status;
	pid_t pid;

	if (!tests[i].unprivileged || getuid() != 0)
		return tests[i].fn();
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (pid == 0) {
		int r;

		if (become_unprivileged())
			_exit(fail("cannot become an unprivileged user"));
		r = tests[i].fn();
		_exit(r < 0 ? 2 : r ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return fail("waitpid");
	if (!WIFEXITED(status))
		return fail("the unprivileged case died (status %#x)", status);
	return WEXITSTATUS(status) == 2 ? -1 : WEXITSTATUS(status) ? 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned int i, n = sizeof(tests) / sizeof(tests[0]), failed = 0, planned = 0;
	const char *only = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < n; i++)
		planned += !only || strstr(tests[i].name, only) || i == 0 ||
			   !strcmp(tests[i].name, "network_setup") ||
			   !strcmp(tests[i].name, "sendfile_setup");
	printf("KTAP version 1\n1..%u\n", planned);
	if (getuid() == 0 && open_device_to_group())
		printf("# cannot give %s to group %d: unprivileged cases will fail\n", DEV,
		       ZCOPY_GID);
	planned = 0;
	for (i = 0; i < n; i++) {
		struct timespec t0, t1;
		int r;

		/* A filter keeps the first test (open) and the setups. */
		if (only && !strstr(tests[i].name, only) && i != 0 &&
		    strcmp(tests[i].name, "network_setup") && strcmp(tests[i].name, "sendfile_setup"))
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = run_case(i);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		/* Where the suite's time goes (a diagnostic, not a verdict). */
		printf("# %s: %.1f s%s\n", tests[i].name,
		       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		       tests[i].unprivileged ? ", as an unprivileged user" : "");
		planned++;
		if (r < 0)
			printf("ok %u %s # SKIP\n", planned, tests[i].name);
		else
			printf("%s %u %s\n", r ? "not ok" : "ok", planned, tests[i].name);
		failed += r > 0;
	}
	return failed ? 1 : 0;
}
