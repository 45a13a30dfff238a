// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: sends from the page cache (ZC_IOC_SENDFILE) and
 * its introspection (ZC_IOC_FILE_PAGES), from tmpfs and from ext4 on the
 * virtio-blk disk tools/harness/disk.sh mounts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

#define EXT4 "/run/zcopy/ext4"
#define TMPFS "/run/zcopy/tmpfs"

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
	CHECK_ERRNO(SF(sock, file, (1ULL << 62), (1ULL << 62) + 5, 0), EOVERFLOW,
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
