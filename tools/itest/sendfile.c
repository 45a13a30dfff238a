// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: sends from the page cache (ZC_IOC_SENDFILE) and
 * its introspection (ZC_IOC_FILE_PAGES), from tmpfs and from ext4 on the
 * virtio-blk disk tools/harness/disk.sh mounts; which files (not pseudo
 * files) and which callers (residency only for writers) they serve.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define EXT4 "/run/zcopy/ext4"
#define TMPFS "/run/zcopy/tmpfs"
#define NOBODY 65534

static int zsendfile(int fd, int sock, int file, __u64 off, __u64 len, __u64 tag, __u32 flags,
		     struct zc_sendfile *out)
{
	struct zc_sendfile s = {
		.sock = sock, .fd = file, .flags = flags, .offset = off, .len = len, .tag = tag,
	};
	int ret = ioctl(fd, ZC_IOC_SENDFILE, &s);

	if (out)
		*out = s;
	return ret;
}

/* Writes a file of `size` bytes (a pattern), or with a hole before `data`
 * bytes at `hole` when hole > 0. Returns 0. */
static int make_file(const char *path, size_t size, size_t hole, size_t data)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char *buf;
	size_t i, n = hole ? data : size;

	if (fd < 0)
		return -1;
	buf = malloc(n ? n : 1);
	for (i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 29 + (i >> 11) + size);
	if ((hole && (ftruncate(fd, size) || pwrite(fd, buf, n, hole) != (ssize_t)n)) ||
	    (!hole && write(fd, buf, n) != (ssize_t)n) || fsync(fd)) {
		free(buf);
		close(fd);
		return -1;
	}
	free(buf);
	close(fd);
	return 0;
}

/* FNV-1a of a whole file, and its size. */
static uint64_t file_hash(const char *path, size_t *size)
{
	static unsigned char buf[1 << 16];
	uint64_t h = FNV0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*size = 0;
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		h = fnv(h, buf, n);
		*size += n;
	}
	if (fd >= 0)
		close(fd);
	return h;
}

static int file_pages(int fd, int file, __u64 off, __u32 n, struct zc_file_page *pages,
		      __u32 *resident)
{
	struct zc_file_pages a = {
		.fd = file, .nr_pages = n, .offset = off, .pages = (unsigned long)pages,
	};

	if (ioctl(fd, ZC_IOC_FILE_PAGES, &a))
		return -1;
	if (resident)
		*resident = a.resident;
	return a.nr_pages;
}

static int drop_caches(void)
{
	sync();
	return write_file("/proc/sys/vm/drop_caches", "3");
}

/*
 * Sends the whole file at `path` over TCP to ip:port, in ZC_IOC_SENDFILE
 * calls of at most `chunk` bytes; the receiver must get exactly the file.
 * Records: one per call that sent bytes; all COPIED or none, as `copied`.
 */
static int send_file(const char *path, const char *ip, int port, size_t chunk, int copied)
{
	static struct zc_completion recs[ZC_COMPLETION_SLOTS];
	struct receiver rx;
	struct result res;
	size_t size;
	uint64_t h = file_hash(path, &size);
	int fd = open_dev(), file = open(path, O_RDONLY | O_CLOEXEC), s, calls = 0, i;
	__u64 off = 0;

	CHECK(fd >= 0 && file >= 0, "open %s", path);
	CHECK(start_receiver(&rx, SOCK_STREAM, ip, port, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, ip, port);
	CHECK(s >= 0, "connect");
	for (;;) {
		struct zc_sendfile r;

		CHECK(zsendfile(fd, s, file, off, chunk, calls, 0, &r) == 0, "sendfile at %llu",
		      (unsigned long long)off);
		if (r.sent == 0)
			break;
		CHECK(r.pages_cached + r.pages_read > 0, "no pages counted");
		off += r.sent;
		calls++;
	}
	CHECK(off == size, "sent %llu of %zu bytes", (unsigned long long)off, size);
	CHECK(read_completions(fd, recs, calls) == calls, "%d records", calls);
	for (i = 0; i < calls; i++)
		CHECK(recs[i].tag < (unsigned)calls && recs[i].status == 0 &&
			      (copied < 0 || !!(recs[i].flags & ZC_COMPLETION_COPIED) == copied),
		      "record %d: tag %llu flags %#x", i, (unsigned long long)recs[i].tag,
		      recs[i].flags);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, recs, sizeof(recs[0])), EAGAIN, "no extra record");
	close(s);
	CHECK(finish_receiver(&rx, &res) == 0, "receiver");
	CHECK(res.bytes == size && res.hash == h, "%s: receiver got %llu of %zu bytes, %s", path,
	      (unsigned long long)res.bytes, size, res.hash == h ? "same" : "different");
	close(file);
	close(fd);
	return 0;
}

int test_sendfile_setup(void)
{
	struct stat st;

	if (harness("disk.sh"))
		return 1;
	CHECK(stat(EXT4 "/lost+found", &st) == 0, "ext4 mounted");
	return 0;
}

int test_sendfile_bad_inputs(void)
{
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), pfd[2], closed;
	int file, wo, dir, proc, sk;
	struct zc_sendfile r;
	struct zc_file_page pg;
	struct zc_completion rec;

	CHECK(fd >= 0 && sock >= 0 && pipe(pfd) == 0, "setup");
	CHECK(make_file(TMPFS "/bad", 10000, 0, 0) == 0, "file");
	file = open(TMPFS "/bad", O_RDONLY | O_CLOEXEC);
	wo = open(TMPFS "/bad", O_WRONLY | O_CLOEXEC);
	dir = open(TMPFS, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	proc = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	closed = dup(file);
	close(closed);
	CHECK(file >= 0 && wo >= 0 && dir >= 0 && proc >= 0 && sk >= 0, "fds");

#define SF(sock_, file_, off, len, flags) zsendfile(fd, sock_, file_, off, len, 1, flags, NULL)
	CHECK_ERRNO(SF(-1, file, 0, 1, 0), EBADF, "socket -1");
	CHECK_ERRNO(SF(pfd[0], file, 0, 1, 0), ENOTSOCK, "a pipe as the socket");
	CHECK_ERRNO(SF(sock, -1, 0, 1, 0), EBADF, "file -1");
	CHECK_ERRNO(SF(sock, closed, 0, 1, 0), EBADF, "a closed file");
	CHECK_ERRNO(SF(sock, wo, 0, 1, 0), EBADF, "a write-only file");
	CHECK_ERRNO(SF(sock, dir, 0, 1, 0), EINVAL, "a directory");
	CHECK_ERRNO(SF(sock, pfd[0], 0, 1, 0), EINVAL, "a pipe as the file");
	CHECK_ERRNO(SF(sock, sk, 0, 1, 0), EINVAL, "a socket as the file");
	CHECK_ERRNO(SF(sock, proc, 0, 1, 0), EOPNOTSUPP, "a procfs file");
	CHECK_ERRNO(SF(sock, file, 0, 0, 0), EINVAL, "zero length");
	CHECK_ERRNO(SF(sock, file, 1ULL << 63, 1, 0), EINVAL, "a negative offset");
	CHECK_ERRNO(SF(sock, file, 0, (1ULL << 63) + 1, 0), EINVAL, "length past LLONG_MAX");
	/* rw_verify_area's answer, as sendfile(2)'s. */
	CHECK_ERRNO(SF(sock, file, (1ULL << 62), (1ULL << 62) + 5, 0), EINVAL,
		    "offset + length past LLONG_MAX");
	CHECK_ERRNO(SF(sock, file, 0, 1, 1U << 9), EINVAL, "unknown flag");
	r = (struct zc_sendfile){ .sock = sock, .fd = file, .len = 1, .reserved = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SENDFILE, &r), EINVAL, "reserved");
	r = (struct zc_sendfile){ .sock = sock, .fd = file, .len = 1, .pages_read = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SENDFILE, &r), EINVAL, "an out field set");
	/* At and past the end of the file: a short send of nothing, no record. */
	CHECK(zsendfile(fd, sock, file, 10000, 100, 1, 0, &r) == 0 && r.sent == 0, "at EOF");
	CHECK(zsendfile(fd, sock, file, 1 << 20, 100, 1, 0, &r) == 0 && r.sent == 0, "past EOF");
	/* Across the end: what there is. */
	CHECK(zsendfile(fd, sock, file, 9000, 5000, 2, 0, &r) == 0 && r.sent == 1000 &&
		      r.pages_cached == 1 && r.pages_read == 0,
	      "across EOF: sent %llu", (unsigned long long)r.sent);
	CHECK(read_completions(fd, &rec, 1) == 1 && rec.tag == 2 && rec.bytes == 1000, "record");
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, &rec, sizeof(rec)), EAGAIN, "only one record");

	CHECK_ERRNO(file_pages(fd, dir, 0, 1, &pg, NULL), EINVAL, "pages of a directory");
	CHECK_ERRNO(file_pages(fd, wo, 0, 1, &pg, NULL), EBADF, "pages of a write-only fd");
	CHECK_ERRNO(file_pages(fd, file, 0, 1, (void *)8, NULL), EFAULT, "bad pages pointer");
	close(file);
	close(wo);
	close(dir);
	close(proc);
	close(sk);
	close(pfd[0]);
	close(pfd[1]);
	close(sock);
	close(fd);
	return 0;
}

/*
 * As an unprivileged caller (nobody, no capabilities): which pages of a file
 * are cached is told only for files it could learn that of from
 * cachestat(2): open for writing, its own, or writable by it. Everything
 * is opened as root first, then the child drops to nobody.
 */
static int residency_child(void)
{
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	int ro = open(TMPFS "/resid-root", O_RDONLY | O_CLOEXEC);
	int rw = open(TMPFS "/resid-root", O_RDWR | O_CLOEXEC);
	int own = open(TMPFS "/resid-nobody", O_RDONLY | O_CLOEXEC);
	int world = open(TMPFS "/resid-world", O_RDONLY | O_CLOEXEC);
	struct zc_file_page pg[3];
	struct zc_sendfile r;
	struct zc_stats st;
	__u32 resident = 0;

	CHECK(fd >= 0 && sock >= 0 && ro >= 0 && rw >= 0 && own >= 0 && world >= 0, "setup");
	CHECK(setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0,
	      "become nobody");
	CHECK(geteuid() == NOBODY, "euid %u", geteuid());

	CHECK_ERRNO(file_pages(fd, ro, 0, 3, pg, NULL), EPERM,
		    "FILE_PAGES of root's 0644 file, opened read-only");
	CHECK(file_pages(fd, rw, 0, 3, pg, &resident) == 3 && resident == 3,
	      "FILE_PAGES of a file open for writing: %u resident", resident);
	CHECK(file_pages(fd, own, 0, 3, pg, &resident) == 3 && resident == 3,
	      "FILE_PAGES of its own file: %u resident", resident);
	CHECK(file_pages(fd, world, 0, 3, pg, &resident) == 3 && resident == 3,
	      "FILE_PAGES of a world-writable file: %u resident", resident);

	/* SENDFILE reads what it may read, but says nothing of the cache,
	 * not even through the counters. */
	CHECK(zsendfile(fd, sock, ro, 0, 3 * PAGE, 1, 0, &r) == 0 && r.sent == 3 * PAGE,
	      "SENDFILE of a file it may read");
	CHECK(r.pages_cached == 0 && r.pages_read == 0, "residency reported: %u cached, %u read",
	      r.pages_cached, r.pages_read);
	st = get_stats(fd);
	CHECK(st.context.cache_hits == 0 && st.context.cache_misses == 0,
	      "context counters: %llu hits, %llu misses", (unsigned long long)st.context.cache_hits,
	      (unsigned long long)st.context.cache_misses);
	/* Its own file: told, as before (every tmpfs page is a hit). */
	CHECK(zsendfile(fd, sock, own, 0, 3 * PAGE, 2, 0, &r) == 0 && r.sent == 3 * PAGE &&
		      r.pages_cached == 3 && r.pages_read == 0,
	      "SENDFILE of its own file: %u cached, %u read", r.pages_cached, r.pages_read);
	CHECK(get_stats(fd).context.cache_hits == 3, "context cache_hits");
	return 0;
}

int test_sendfile_residency_needs_write_access(void)
{
	struct zc_file_page pg[3];
	int fd = open_dev(), ro;

	CHECK(fd >= 0, "open");
	CHECK(make_file(TMPFS "/resid-root", 3 * PAGE, 0, 0) == 0 &&
		      make_file(TMPFS "/resid-nobody", 3 * PAGE, 0, 0) == 0 &&
		      make_file(TMPFS "/resid-world", 3 * PAGE, 0, 0) == 0,
	      "files");
	CHECK(chmod(TMPFS "/resid-root", 0644) == 0 &&
		      chown(TMPFS "/resid-nobody", NOBODY, NOBODY) == 0 &&
		      chmod(TMPFS "/resid-nobody", 0644) == 0 &&
		      chmod(TMPFS "/resid-world", 0666) == 0,
	      "modes");
	/* Root owns it: allowed. */
	ro = open(TMPFS "/resid-root", O_RDONLY | O_CLOEXEC);
	CHECK(ro >= 0 && file_pages(fd, ro, 0, 3, pg, NULL) == 3, "FILE_PAGES as root");
	close(ro);
	close(fd);
	if (run_in_child(residency_child))
		return 1;
	unlink(TMPFS "/resid-root");
	unlink(TMPFS "/resid-nobody");
	unlink(TMPFS "/resid-world");
	return 0;
}

/* The inotify events queued on `in` now: 1 if one IN_ACCESS for `wd`,
 * 0 if none, -1 otherwise. */
static int access_event(int in, int wd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev = (const void *)buf;
	ssize_t n = read(in, buf, sizeof(buf));

	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	if (n != (ssize_t)sizeof(*ev) + ev->len || ev->wd != wd || ev->mask != IN_ACCESS)
		return -1;
	return 1;
}

/*
 * SENDFILE checks and reports what sendfile(2) does (rw_verify_area before,
 * fsnotify_access after): the file must be open for reading, the range must
 * be a valid loff_t range, and a send that read something is an IN_ACCESS.
 * (No LSM or fanotify in the test kernel to see the rest.)
 */
int test_sendfile_checks_and_notifies_as_sendfile(void)
{
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), in, wd, file, wo;
	struct zc_completion rec;
	struct zc_sendfile r;
	off_t off = 0;

	CHECK(fd >= 0 && sock >= 0, "setup");
	CHECK(make_file(TMPFS "/notify", 10000, 0, 0) == 0, "file");
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	CHECK(in >= 0, "inotify_init1");
	wd = inotify_add_watch(in, TMPFS "/notify", IN_ACCESS);
	CHECK(wd >= 0, "inotify_add_watch");
	file = open(TMPFS "/notify", O_RDONLY | O_CLOEXEC);
	wo = open(TMPFS "/notify", O_WRONLY | O_CLOEXEC);
	CHECK(file >= 0 && wo >= 0, "open file");

	CHECK_ERRNO(zsendfile(fd, sock, wo, 0, 100, 1, 0, NULL), EBADF, "a write-only file");
	CHECK_ERRNO(zsendfile(fd, sock, file, 1ULL << 63, 1, 1, 0, NULL), EINVAL,
		    "a negative offset");
	CHECK_ERRNO(zsendfile(fd, sock, file, 0x7fffffffffffffffULL, 1, 1, 0, NULL), EINVAL,
		    "offset + length past LLONG_MAX by one");
	CHECK_ERRNO(zsendfile(fd, sock, file, 1, 0x7fffffffffffffffULL, 1, 0, NULL), EINVAL,
		    "offset + length past LLONG_MAX by one, the other way");
	CHECK_ERRNO(zsendfile(fd, sock, file, 0, 1ULL << 63, 1, 0, NULL), EINVAL,
		    "a negative length");
	CHECK(access_event(in, wd) == 0, "an event for refused calls");

	/* The kernel's own sendfile(2) is the reference. */
	CHECK(sendfile(sock, file, &off, 1000) == 1000, "sendfile(2)");
	CHECK(access_event(in, wd) == 1, "no IN_ACCESS from sendfile(2)");
	/* Nothing sent (at the end of the file): no event, as sendfile(2). */
	CHECK(zsendfile(fd, sock, file, 10000, 100, 1, 0, &r) == 0 && r.sent == 0, "at EOF");
	CHECK(access_event(in, wd) == 0, "IN_ACCESS for a send of nothing");
	CHECK(zsendfile(fd, sock, file, 0, 1000, 2, 0, &r) == 0 && r.sent == 1000, "send");
	CHECK(access_event(in, wd) == 1, "no IN_ACCESS (or not only) after SENDFILE");
	CHECK(read_completions(fd, &rec, 1) == 1 && rec.tag == 2, "record");
	close(wo);
	close(file);
	close(in);
	close(sock);
	close(fd);
	unlink(TMPFS "/notify");
	return 0;
}

/* The first of `paths` that opens and is a regular file, or -1. */
static int open_regular(const char *const *paths, const char **which)
{
	for (; *paths; paths++) {
		struct stat st;
		int f = open(*paths, O_RDONLY | O_CLOEXEC);

		if (f < 0)
			continue;
		if (fstat(f, &st) == 0 && S_ISREG(st.st_mode)) {
			*which = *paths;
			return f;
		}
		close(f);
	}
	return -1;
}

/* SENDFILE and FILE_PAGES of an open pseudo file: EOPNOTSUPP, while read(2)
 * of it gives text (what SENDFILE used to send instead was zeros). */
static int refused(int fd, int sock, int file, const char *path)
{
	struct zc_file_page pg;
	char buf[256];
	ssize_t n = pread(file, buf, sizeof(buf), 0), i;

	for (i = 0; i < n && !buf[i]; i++)
		;
	CHECK(n > 0 && i < n, "%s: read(2) gave %zd bytes, none non-zero", path, n);
	CHECK_ERRNO(zsendfile(fd, sock, file, 0, PAGE, 1, 0, NULL), EOPNOTSUPP, path);
	CHECK_ERRNO(file_pages(fd, file, 0, 1, &pg, NULL), EOPNOTSUPP, path);
	return 0;
}

/* Whether a file system of type `type` is mounted, per /proc/mounts; its
 * mount point into `dir`. */
static bool mounted(const char *type, char *dir, size_t len)
{
	char line[512], mnt[256], fs[64];
	FILE *f = fopen("/proc/mounts", "re");
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %255s %63s", mnt, fs) == 2 && !strcmp(fs, type)) {
			snprintf(dir, len, "%s", mnt);
			found = true;
		}
	if (f)
		fclose(f);
	return found;
}

/*
 * Files whose page cache is not their content are refused: kernfs (sysfs,
 * cgroup2), debugfs, procfs. Their page cache is empty or zero-filled by
 * read_folio; their bytes are made by each read.
 */
int test_sendfile_refuses_pseudo_files(void)
{
	static const char *const sysfs[] = {
		"/sys/kernel/mm/transparent_hugepage/enabled", "/sys/class/net/lo/mtu",
		"/sys/kernel/uevent_seqnum", NULL,
	};
	static const char *const debugfs[] = { "/sys/kernel/debug/zcopy/stats", NULL };
	static const char *const procfs[] = { "/proc/self/status", "/proc/meminfo", NULL };
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), f;
	char cg[256], path[300];
	bool ours = false;
	const char *p;

	CHECK(fd >= 0 && sock >= 0, "setup");
	f = open_regular(sysfs, &p);
	CHECK(f >= 0, "no sysfs attribute to read");
	if (refused(fd, sock, f, p))
		return 1;
	close(f);
	f = open_regular(debugfs, &p);
	CHECK(f >= 0, "no debugfs file to read");
	if (refused(fd, sock, f, p))
		return 1;
	close(f);
	f = open_regular(procfs, &p);
	CHECK(f >= 0, "no procfs file to read");
	if (refused(fd, sock, f, p))
		return 1;
	close(f);

	if (!mounted("cgroup2", cg, sizeof(cg))) {
		snprintf(cg, sizeof(cg), "/run/zcopy/cgroup2");
		mkdir(cg, 0755);
		ours = mount("none", cg, "cgroup2", 0, NULL) == 0;
		if (!ours) {
			printf("# cgroup2 not available (%s): not tested\n", strerror(errno));
			rmdir(cg);
		}
	}
	if (ours || mounted("cgroup2", cg, sizeof(cg))) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		f = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(f >= 0, "open %s", path);
		if (refused(fd, sock, f, path))
			return 1;
		close(f);
		if (ours) {
			umount(cg);
			rmdir(cg);
		}
	}
	close(sock);
	close(fd);
	return 0;
}

/*
 * The rule admits ramfs: no backing device, but its page cache is its only
 * store and sendfile(2) itself sends from it (filemap_splice_read).
 */
int test_sendfile_from_ramfs(void)
{
	const char *dir = "/run/zcopy/ramfs";
	struct zc_file_page pg[3];
	__u32 resident = 0;
	int fd, f, r;

	mkdir(dir, 0755);
	CHECK(mount("zcopy", dir, "ramfs", 0, NULL) == 0, "mount ramfs");
	r = make_file("/run/zcopy/ramfs/f", 2 * PAGE + 100, 0, 0);
	fd = open_dev();
	f = open("/run/zcopy/ramfs/f", O_RDONLY | O_CLOEXEC);
	if (r || fd < 0 || f < 0) {
		umount(dir);
		return fail("setup");
	}
	r = file_pages(fd, f, 0, 3, pg, &resident) == 3 && resident == 3 ? 0
		: fail("FILE_PAGES of a ramfs file: %u resident", resident);
	close(f);
	close(fd);
	if (!r)
		r = send_file("/run/zcopy/ramfs/f", VETH_RX, 8700, 4 * MiB, 1);
	umount(dir);
	return r;
}

int test_sendfile_sizes_over_veth(void)
{
	static const struct {
		size_t size, hole, data;
	} files[] = {
		{ 0, 0, 0 }, { 1, 0, 0 }, { 4095, 0, 0 }, { 4096, 0, 0 }, { 4097, 0, 0 },
		{ 10 * MiB, 0, 0 },
		{ 3 * MiB, MiB + 100, 5000 }, /* sparse: hole, data, hole */
	};
	static const char *const dirs[] = { TMPFS, EXT4 };
	int port = 8100;
	unsigned int i, d;

	for (d = 0; d < 2; d++) {
		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			char path[256];

			snprintf(path, sizeof(path), "%s/f%u", dirs[d], i);
			CHECK(make_file(path, files[i].size, files[i].hole, files[i].data) == 0,
			      "make %s", path);
			/* Local delivery into zrx: the stack copies. */
			if (send_file(path, VETH_RX, port++, 4 * MiB, 1))
				return fail("%s (%zu bytes)", path, files[i].size);
			unlink(path);
		}
	}
	return 0;
}

int test_sendfile_over_the_wire(void)
{
	CHECK(make_file(EXT4 "/wire", 10 * MiB + 7, 0, 0) == 0, "ext4 file");
	CHECK(make_file(TMPFS "/wire", 4097, 0, 0) == 0, "tmpfs file");
	CHECK(drop_caches() == 0, "drop caches");
	/* Read from the disk by DMA, out of the e1000e by DMA: no copy. */
	if (send_file(EXT4 "/wire", WIRE_RX, 8200, 2 * MiB, 0) ||
	    send_file(TMPFS "/wire", WIRE_RX, 8201, 2 * MiB, 0))
		return 1;
	unlink(EXT4 "/wire");
	unlink(TMPFS "/wire");
	return 0;
}

/* Compares ZC_IOC_FILE_PAGES residency with mincore() on a mapping. */
static int residency_agrees(int fd, const char *path, size_t size, __u32 *resident)
{
	size_t n = (size + PAGE - 1) / PAGE, i;
	struct zc_file_page *pg = calloc(n, sizeof(*pg));
	unsigned char *vec = calloc(n, 1);
	int file = open(path, O_RDONLY | O_CLOEXEC);
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, file, 0);

	CHECK(pg && vec && file >= 0 && map != MAP_FAILED, "setup");
	CHECK(file_pages(fd, file, 0, n, pg, resident) == (int)n, "file pages");
	CHECK(mincore(map, size, vec) == 0, "mincore");
	for (i = 0; i < n; i++)
		CHECK(!!(pg[i].flags & ZC_FILE_PAGE_RESIDENT) == (vec[i] & 1),
		      "page %zu: zcopy says %sresident, mincore %d", i,
		      pg[i].flags & ZC_FILE_PAGE_RESIDENT ? "" : "not ", vec[i] & 1);
	munmap(map, size);
	close(file);
	free(pg);
	free(vec);
	return 0;
}

int test_sendfile_misses_then_hits(void)
{
	const size_t size = MiB, n = size / PAGE;
	long long hits0, misses0;
	struct zc_sendfile r1, r2;
	__u32 resident;
	int fd = open_dev(), file, sock;

	CHECK(fd >= 0, "open");
	CHECK(make_file(EXT4 "/cold", size, 0, 0) == 0, "file");
	CHECK(drop_caches() == 0, "drop caches");
	if (residency_agrees(fd, EXT4 "/cold", size, &resident))
		return 1;
	CHECK(resident == 0, "%u pages resident after drop_caches", resident);

	file = open(EXT4 "/cold", O_RDONLY | O_CLOEXEC);
	sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	CHECK(file >= 0 && sock >= 0, "fds");
	hits0 = debugfs_value("cache_hits");
	misses0 = debugfs_value("cache_misses");
	/* UDP out of the dummy device: 1400 bytes at a time would take 750
	 * calls; one datagram of the first 60000 bytes reads in its pages. */
	CHECK(zsendfile(fd, sock, file, 0, 60000, 1, 0, &r1) == 0 && r1.sent == 60000,
	      "first send");
	CHECK(r1.pages_read == 15 && r1.pages_cached == 0,
	      "first send: %u read, %u cached", r1.pages_read, r1.pages_cached);
	CHECK(zsendfile(fd, sock, file, 0, 60000, 2, 0, &r2) == 0 && r2.pages_read == 0 &&
		      r2.pages_cached == 15,
	      "second send: %u read, %u cached", r2.pages_read, r2.pages_cached);
	CHECK(debugfs_value("cache_misses") - misses0 == r1.pages_read &&
		      debugfs_value("cache_hits") - hits0 == r1.pages_cached + 15,
	      "counters");
	if (residency_agrees(fd, EXT4 "/cold", size, &resident))
		return 1;
	/* At least the pages sent; readahead may have brought more. */
	CHECK(resident >= 15 && resident <= n, "%u pages resident", resident);
	close(sock);
	close(file);
	unlink(EXT4 "/cold");
	close(fd);
	return 0;
}

int test_sendfile_pages_held_in_flight(void)
{
	enum { N = 16 };
	struct zc_file_page before[N], during[N], after[N];
	struct zc_completion rec;
	struct zc_sendfile r;
	struct receiver rx;
	struct result res;
	cpu_set_t one, all;
	long long held;
	int fd = open_dev(), file, s, i;

	CHECK(fd >= 0, "open");
	/*
	 * A new page sits in a per-CPU LRU batch, which holds a reference of
	 * its own until the batch fills up. Create the file on one CPU and
	 * then enough other pages there that its batch has been drained, so
	 * the counts read below are zcopy's doing alone.
	 */
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0 &&
		      sched_setaffinity(0, sizeof(one), &one) == 0,
	      "affinity");
	CHECK(make_file(TMPFS "/held", N * PAGE, 0, 0) == 0, "file");
	CHECK(make_file(TMPFS "/filler", 128 * PAGE, 0, 0) == 0, "filler");
	sched_setaffinity(0, sizeof(all), &all);
	file = open(TMPFS "/held", O_RDONLY | O_CLOEXEC);
	CHECK(file >= 0, "open file");
	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, 8300, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, WIRE_RX, 8300);
	CHECK(s >= 0, "connect");
	CHECK(file_pages(fd, file, 0, N, before, NULL) == N, "pages before");
	sh("ip -n zrx link set zrx0 down");
	CHECK(zsendfile(fd, s, file, 0, N * PAGE, 7, 0, &r) == 0 && r.sent == N * PAGE, "send");
	i = file_pages(fd, file, 0, N, during, NULL);
	held = debugfs_value("file_pages_held");
	sh("ip -n zrx link set zrx0 up");
	CHECK(i == N, "pages during");
	CHECK(held == N, "file_pages_held %lld", held);
	/* zcopy's reference, and maybe the stack's own: TCP takes page
	 * references of its own when it splits or trims a queued skb
	 * (skb_zcopy_downgrade_managed), as retransmission may. */
	for (i = 0; i < N; i++)
		CHECK(before[i].order == 0 && during[i].refcount >= before[i].refcount + 1,
		      "page %d: refcount %u before, %u in flight", i, before[i].refcount,
		      during[i].refcount);
	CHECK(read_completions(fd, &rec, 1) == 1 && rec.tag == 7 && rec.flags == 0, "record");
	CHECK(file_pages(fd, file, 0, N, after, NULL) == N, "pages after");
	for (i = 0; i < N; i++)
		CHECK(after[i].refcount == before[i].refcount, "page %d: refcount %u after, %u before",
		      i, after[i].refcount, before[i].refcount);
	CHECK(debugfs_value("file_pages_held") == 0, "pages still held");
	close(s);
	CHECK(finish_receiver(&rx, &res) == 0 && res.bytes == N * PAGE, "receiver");
	close(file);
	unlink(TMPFS "/held");
	unlink(TMPFS "/filler");
	close(fd);
	return 0;
}

/* The file is truncated and rewritten under a stream of sends: whatever
 * the receiver gets, nothing crashes, leaks or stays held. */
int test_sendfile_truncate_during_stream(void)
{
	static struct zc_completion recs[ZC_COMPLETION_SLOTS];
	const size_t size = MiB;
	struct receiver rx;
	struct result res;
	unsigned long long total = 0;
	int fd = open_dev(), file, s, i, calls = 0, status, changed = 0;
	pid_t pid;

	CHECK(fd >= 0, "open");
	CHECK(make_file(EXT4 "/trunc", size, 0, 0) == 0, "file");
	file = open(EXT4 "/trunc", O_RDONLY | O_CLOEXEC);
	CHECK(file >= 0, "open file");
	CHECK(start_receiver(&rx, SOCK_STREAM, VETH_RX, 8400, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, VETH_RX, 8400);
	CHECK(s >= 0, "connect");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int w = open(EXT4 "/trunc", O_RDWR | O_CLOEXEC);
		static unsigned char buf[64 * 1024];

		memset(buf, 0x33, sizeof(buf));
		for (i = 0; w >= 0 && i < 60; i++) {
			/* Shrink (dropping pages that may be in flight), then
			 * write into what is left. */
			if (ftruncate(w, (i % 4 + 1) * 200000) ||
			    pwrite(w, buf, sizeof(buf), (i % 3) * 150000) < 0)
				_exit(1);
		}
		_exit(0);
	}
	/* Send until the writer is done (and at least 50 times). */
	for (i = 0; i < ZC_COMPLETION_SLOTS - 1; i++) {
		struct zc_sendfile r;

		if (i >= 50 && waitpid(pid, &status, WNOHANG) == pid) {
			changed = 1;
			break;
		}
		CHECK(zsendfile(fd, s, file, (i * 70000) % size, 200000, i, 0, &r) == 0,
		      "send %d", i);
		if (r.sent) {
			total += r.sent;
			calls++;
		}
	}
	if (!changed)
		CHECK(waitpid(pid, &status, 0) == pid, "writer");
	CHECK(WIFEXITED(status) && !WEXITSTATUS(status), "writer failed");
	CHECK(calls > 0, "no send carried bytes");
	CHECK(read_completions(fd, recs, calls) == calls, "%d records", calls);
	close(s);
	CHECK(finish_receiver(&rx, &res) == 0 && res.bytes == total,
	      "receiver got %llu bytes, sent %llu", (unsigned long long)res.bytes, total);
	CHECK(debugfs_value("file_pages_held") == 0, "pages still held");
	printf("# %d of %d sends carried %llu bytes while the file changed\n", calls, i, total);
	close(file);
	unlink(EXT4 "/trunc");
	close(fd);
	return 0;
}

int test_sendfile_kill_mid_stream_releases(void)
{
	long long pinned0 = module_pinned(), held;
	struct receiver rx;
	struct result res;
	int status, status2;
	pid_t pid, waited;

	CHECK(make_file(EXT4 "/kill", MiB, 0, 0) == 0, "file");
	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, 8500, false, 0) == 0, "receiver");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int fd = open_dev(), file = open(EXT4 "/kill", O_RDONLY | O_CLOEXEC), i;
		int s = connect_to(SOCK_STREAM, WIRE_RX, 8500);

		if (fd < 0 || file < 0 || s < 0)
			_exit(1);
		sh("ip -n zrx link set zrx0 down");
		for (i = 0; i < 8; i++)
			if (zsendfile(fd, s, file, i * 128 * 1024, 128 * 1024, i, ZC_SEND_NONBLOCK,
				      NULL) &&
			    errno != EAGAIN)
				_exit(2);
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	waited = waitpid(pid, &status, WUNTRACED);
	held = debugfs_value("file_pages_held");
	if (waited == pid && WIFSTOPPED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status2, 0);
	}
	sh("ip -n zrx link set zrx0 up");
	CHECK(waited == pid && WIFSTOPPED(status), "child stopped");
	CHECK(held > 0, "no pages held in flight");
	if (wait_released(pinned0))
		return 1;
	CHECK(debugfs_value("file_pages_held") == 0, "pages still held: %lld",
	      debugfs_value("file_pages_held"));
	CHECK(finish_receiver(&rx, &res) == 0, "receiver");
	unlink(EXT4 "/kill");
	return 0;
}
