// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: run in the VM with zcopy.ko loaded, written
 * against the UAPI header only, results as KTAP on stdout.
 *
 *   zcopy_itest [-v]
 *
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/zcopy.h>

#define DEV "/dev/zcopy"
#define KNOWN_FEATURES (ZC_FEAT_REGISTER | ZC_FEAT_SEND | ZC_FEAT_SENDFILE)

/* A test returns 0 on pass, 1 on fail, -1 to skip; fail() says why. */
typedef int (*test_fn)(void);

static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d: %s)\n", errno, strerror(errno));
	return 1;
}

#define CHECK(cond, ...)                      \
	do {                                  \
		if (!(cond))                  \
			return fail(__VA_ARGS__); \
	} while (0)

/* An ioctl expected to fail with errno `err`. */
#define CHECK_ERRNO(call, err, what)                                          \
	do {                                                                  \
		errno = 0;                                                    \
		long __r = (call);                                            \
		CHECK(__r == -1 && errno == (err), "%s: returned %ld, want %s", \
		      what, __r, #err);                                       \
	} while (0)

static int open_dev(void)
{
	return open(DEV, O_RDWR | O_CLOEXEC);
}

/* A "key:\tvalue" number from /proc/self/fdinfo/FD, or -1. */
static long fdinfo_value(int fd, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			val = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	return val;
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
	for (i = 0; i < 2000; i++) {
		int x = open_dev();

		CHECK(x >= 0, "open #%d", i);
		CHECK(close(x) == 0, "close #%d", i);
	}
	after = fdinfo_value(fd, "zcopy_open_contexts");
	close(fd);
	CHECK(before >= 1, "zcopy_open_contexts %ld with one fd open", before);
	CHECK(after == before, "open contexts %ld after 2000 open/close, was %ld",
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
	for (i = 0; i < 5000; i++) {
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

static int test_rmmod_refused_while_open(void)
{
	const char *ko = getenv("ZCOPY_KO");
	int fd, kfd;

	if (!ko || !*ko || !strcmp(ko, "-")) {
		printf("# ZCOPY_KO not set: cannot reload the module afterwards\n");
		return -1;
	}
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

static const struct {
	const char *name;
	test_fn fn;
} tests[] = {
	{ "open", test_open },
	{ "version_roundtrip", test_version_roundtrip },
	{ "unknown_command_is_enotty", test_unknown_command_is_enotty },
	{ "bad_pointer_is_efault", test_bad_pointer_is_efault },
	{ "contexts_are_per_open", test_contexts_are_per_open },
	{ "open_close_many", test_open_close_many },
	{ "two_processes_at_once", test_two_processes_at_once },
	/* Last: it unloads and reloads the module. */
	{ "rmmod_refused_while_open", test_rmmod_refused_while_open },
};

int main(void)
{
	unsigned int i, n = sizeof(tests) / sizeof(tests[0]), failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("KTAP version 1\n1..%u\n", n);
	for (i = 0; i < n; i++) {
		int r = tests[i].fn();

		if (r < 0)
			printf("ok %u %s # SKIP\n", i + 1, tests[i].name);
		else
			printf("%s %u %s\n", r ? "not ok" : "ok", i + 1, tests[i].name);
		failed += r > 0;
	}
	return failed ? 1 : 0;
}
