// SPDX-License-Identifier: GPL-2.0
/*
 * zcopy integration tests: sends from regions (ZC_IOC_SEND, ZC_IOC_XMIT)
 * and their completion records, over the network tools/harness/net.sh
 * builds: the e1000e -> hub -> virtio-net wire, a veth pair between
 * namespaces, a dummy device, and loopback.
 *
 * Receivers run in child processes, in namespace "zrx" unless the test is
 * about local delivery, and report the bytes they got and their FNV-1a
 * hash through a pipe; the sender compares them with its own buffer.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <net/ethernet.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "itest.h"

#define WIRE_TX "10.99.1.1"

uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}


/* A buffer of `len` bytes no two runs of which look alike. */
static unsigned char *pattern(size_t len, unsigned int seed)
{
	unsigned char *p = map_anon(len);
	size_t i;

	if (p)
		for (i = 0; i < len; i++)
			p[i] = (unsigned char)((i * 131 + seed) ^ (i >> 12));
	return p;
}

static int ifindex_of(const char *name)
{
	return (int)if_nametoindex(name);
}

/* Enters namespace zrx (network only). */
static int enter_zrx(void)
{
	int fd = open("/run/netns/zrx", O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = setns(fd, CLONE_NEWNET);
	close(fd);
	return ret;
}

void sh(const char *cmd)
{
	if (system(cmd) != 0)
		printf("# '%s' failed\n", cmd);
}

/* ---- receivers ---------------------------------------------------------- */

/*
 * Starts a receiver of `type` (SOCK_STREAM: until EOF; SOCK_DGRAM: until
 * `datagrams` datagrams) on ip:port, in zrx unless `local`. Returns once it
 * listens.
 */
int start_receiver(struct receiver *r, int type, const char *ip, int port, bool local,
			  unsigned long datagrams)
{
	int ready[2], res[2];
	if (pipe2(ready, O_CLOEXEC) || pipe2(res, O_CLOEXEC))
		return -1;
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (r->pid == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
		struct timeval tv = { .tv_sec = 60 };
		struct result out = { .hash = FNV0 };
		static unsigned char buf[256 * 1024];
		int s, one = 1, c2;
		ssize_t n;

		close(ready[0]);
		close(res[0]);
		if (!local && enter_zrx())
			_exit(2);
		inet_pton(AF_INET, ip, &a.sin_addr);
		s = socket(AF_INET, type, 0);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (type == SOCK_DGRAM) {
			int big = 4 * MiB;

			setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		}
		if (bind(s, (void *)&a, sizeof(a)) || (type == SOCK_STREAM && listen(s, 4)))
			_exit(3);
		if (!local) {
			struct ifreq ifr = { 0 };

			snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "zrx0");
			if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0)
				memcpy(out.mac, ifr.ifr_hwaddr.sa_data, 6);
		}
		if (write(ready[1], out.mac, 6) != 6)
			_exit(4);
		if (type == SOCK_STREAM) {
			c2 = accept(s, NULL, NULL);
			if (c2 < 0)
				_exit(5);
			setsockopt(c2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			while ((n = read(c2, buf, sizeof(buf))) > 0) {
				out.hash = fnv(out.hash, buf, n);
				out.bytes += n;
			}
		} else {
			while (out.datagrams < datagrams && (n = recv(s, buf, sizeof(buf), 0)) >= 0) {
				out.hash = fnv(out.hash, buf, n);
				out.bytes += n;
				out.datagrams++;
			}
		}
		if (write(res[1], &out, sizeof(out)) != sizeof(out))
			_exit(6);
		_exit(0);
	}
	close(ready[1]);
	close(res[1]);
	r->result = res[0];
	if (read(ready[0], r->mac, 6) != 6) {
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	return 0;
}

/* Waits for the receiver's result. */
int finish_receiver(struct receiver *r, struct result *out)
{
	int status;
	ssize_t n = read(r->result, out, sizeof(*out));

	close(r->result);
	waitpid(r->pid, &status, 0);
	return n == sizeof(*out) ? 0 : -1;
}

int connect_to(int type, const char *ip, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, ip, &a.sin_addr);
	if (s < 0 || connect(s, (void *)&a, sizeof(a))) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* ---- sends and completions ------------------------------------------ */

static int zsend(int fd, int sock, __u32 region, __u64 off, __u64 len, __u64 tag, __u32 flags,
		 __u64 *sent)
{
	struct zc_send s = {
		.fd = sock, .flags = flags, .region = region, .offset = off, .len = len, .tag = tag,
	};
	int ret = ioctl(fd, ZC_IOC_SEND, &s);

	if (sent)
		*sent = s.sent;
	return ret;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Reads `n` completion records into recs (blocking, 120 s at most).
 * Returns records read.
 */
int read_completions(int fd, struct zc_completion *recs, int n)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	int got = 0;

	sigaction(SIGALRM, &sa, NULL);
	alarm(120);
	while (got < n) {
		ssize_t r = read(fd, recs + got, (n - got) * sizeof(*recs));

		if (r < 0)
			break;
		got += r / sizeof(*recs);
	}
	alarm(0);
	return got;
}

/*
 * Sends region bytes [off, off + len) through `sock` in sends of at most
 * `chunk` bytes (a short send is continued), then reads one record per
 * send and checks tags, bytes and that none or all are COPIED, as `copied`
 * says (-1: either).
 */
static int send_and_complete(int fd, int sock, __u32 region, __u64 off, __u64 len, __u64 chunk,
			     int copied)
{
	static struct zc_completion recs[ZC_COMPLETION_SLOTS];
	__u64 done = 0, tag = 1000, want_bytes = 0;
	int nsends = 0, i, got;

	while (done < len) {
		__u64 n = len - done < chunk ? len - done : chunk, sent = 0;

		CHECK(nsends < ZC_COMPLETION_SLOTS, "too many sends");
		CHECK(zsend(fd, sock, region, off + done, n, tag + nsends, 0, &sent) == 0,
		      "send %llu at %llu", (unsigned long long)n, (unsigned long long)(off + done));
		CHECK(sent > 0 && sent <= n, "sent %llu of %llu", (unsigned long long)sent,
		      (unsigned long long)n);
		done += sent;
		want_bytes += sent;
		nsends++;
	}
	got = read_completions(fd, recs, nsends);
	CHECK(got == nsends, "%d records for %d sends", got, nsends);
	for (i = 0; i < nsends; i++) {
		CHECK(recs[i].tag >= tag && recs[i].tag < tag + nsends, "tag %llu",
		      (unsigned long long)recs[i].tag);
		CHECK(recs[i].status == 0, "status %d", recs[i].status);
		want_bytes -= recs[i].bytes;
		if (copied >= 0)
			CHECK(!!(recs[i].flags & ZC_COMPLETION_COPIED) == copied,
			      "record %d flags %#x, want %s", i, recs[i].flags,
			      copied ? "COPIED" : "not COPIED");
	}
	CHECK(want_bytes == 0, "records' bytes do not add up");
	return 0;
}

/*
 * One TCP stream: a receiver at ip:port, a region over buf[0..size) mapped
 * for `ifindex` (0: none), bytes [off, off+len) sent; the receiver must get
 * exactly them.
 */
static int tcp_stream(const char *ip, int port, bool local, unsigned char *buf, size_t size,
		      size_t off, size_t len, size_t chunk, int ifindex, int copied)
{
	struct receiver rx;
	struct result res;
	struct zc_register r;
	int fd = open_dev(), s, ret;

	CHECK(fd >= 0, "open");
	CHECK(reg(fd, buf, size, ZC_REGISTER_READONLY, ifindex, &r) == 0, "register %zu", size);
	CHECK(start_receiver(&rx, SOCK_STREAM, ip, port, local, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, ip, port);
	CHECK(s >= 0, "connect %s:%d", ip, port);
	ret = send_and_complete(fd, s, r.id, off, len, chunk, copied);
	close(s);
	CHECK(finish_receiver(&rx, &res) == 0, "receiver result");
	if (ret)
		return ret;
	CHECK(res.bytes == len, "receiver got %llu bytes, want %zu", (unsigned long long)res.bytes,
	      len);
	CHECK(res.hash == fnv(FNV0, buf + off, len), "receiver's bytes differ (len %zu)", len);
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(fd);
	return 0;
}

int harness(const char *name)
{
	const char *dir = getenv("ZCOPY_HARNESS");
	char cmd[4096];

	if (!dir)
		return fail("ZCOPY_HARNESS is not set");
	snprintf(cmd, sizeof(cmd), "%s/%s", dir, name);
	if (system(cmd) != 0)
		return fail("%s", cmd);
	return 0;
}

int test_network_setup(void)
{
	if (harness("net.sh"))
		return 1;
	CHECK(ifindex_of("ztx0") > 0 && ifindex_of("zv0") > 0 && ifindex_of("zd0") > 0,
	      "interfaces");
	return 0;
}

int test_send_tcp_wire(void)
{
	static const struct {
		size_t off, len;
	} cases[] = {
		{ 0, 1 }, { 0, 4095 }, { 100, 4097 }, { 4096, 65536 }, { 3, MiB + 5 }, { 1, 4 * MiB - 1 },
	};
	size_t size = 4 * MiB + PAGE;
	unsigned char *buf = pattern(size, 1);
	int tx = ifindex_of("ztx0"), port = 7100;
	unsigned int i;

	CHECK(buf && tx > 0, "setup");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (tcp_stream(WIRE_RX, port++, false, buf, size, cases[i].off, cases[i].len,
			       256 * 1024, tx, 0))
			return fail("wire case %u: %zu bytes at %zu", i, cases[i].len, cases[i].off);
	munmap(buf, size);
	return 0;
}

int test_send_huge_pages_over_the_wire(void)
{
	size_t size = 4 * MiB;
	unsigned char *raw = mmap(NULL, size + 2 * MiB, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *buf = (unsigned char *)(((unsigned long)raw + 2 * MiB - 1) & ~(2 * MiB - 1));
	size_t i;

	CHECK(raw != MAP_FAILED, "mmap");
	CHECK(madvise(buf, size, MADV_HUGEPAGE) == 0, "madvise");
	for (i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 7 + (i >> 16));
	/* Across the boundary between the two huge pages, and the tail. */
	if (tcp_stream(WIRE_RX, 7150, false, buf, size, 2 * MiB - 5000, 2 * MiB + 4000, MiB,
		       ifindex_of("ztx0"), 0))
		return 1;
	munmap(raw, size + 2 * MiB);
	return 0;
}

int test_send_tcp_veth(void)
{
	size_t size = 16 * MiB;
	unsigned char *buf = pattern(size, 2);

	CHECK(buf, "setup");
	/* Delivered into a socket (in another namespace): the stack copies. */
	if (tcp_stream(VETH_RX, 7200, false, buf, size, 0, size, 4 * MiB, 0, 1))
		return 1;
	if (tcp_stream(VETH_RX, 7201, false, buf, size, 777, 1, 1, 0, 1))
		return 1;
	munmap(buf, size);
	return 0;
}

int test_send_local_is_copied(void)
{
	unsigned char *buf = pattern(3 * PAGE, 3);

	CHECK(buf, "setup");
	return tcp_stream("127.0.0.1", 7300, true, buf, 3 * PAGE, 10, 2 * PAGE, PAGE, 0, 1);
}

/* UDP datagrams of `dlen` bytes from consecutive offsets starting mid-page. */
static int udp_datagrams(const char *ip, int port, bool receiver, int n, size_t dlen, int copied)
{
	size_t size = n * dlen + PAGE;
	unsigned char *buf = pattern(size, 4);
	struct zc_stats st0, st1;
	struct zc_register r;
	struct receiver rx;
	struct result res;
	uint64_t h = FNV0;
	int fd = open_dev(), s, i, ret;

	CHECK(fd >= 0 && buf, "setup");
	CHECK(reg(fd, buf, size, 0, 0, &r) == 0, "register");
	if (receiver)
		CHECK(start_receiver(&rx, SOCK_DGRAM, ip, port, false, n) == 0, "receiver");
	s = connect_to(SOCK_DGRAM, ip, port);
	CHECK(s >= 0, "connect");
	st0 = get_stats(fd);
	ret = send_and_complete(fd, s, r.id, 333, n * dlen, dlen, copied);
	st1 = get_stats(fd);
	close(s);
	if (receiver) {
		CHECK(finish_receiver(&rx, &res) == 0, "receiver result");
		for (i = 0; i < n; i++)
			h = fnv(h, buf + 333 + i * dlen, dlen);
		CHECK(res.datagrams == (unsigned long)n && res.hash == h,
		      "receiver got %llu datagrams, %s", (unsigned long long)res.datagrams,
		      res.hash == h ? "same bytes" : "different bytes");
	}
	if (ret)
		return ret;
	CHECK(st1.context.sends - st0.context.sends == (unsigned long)n, "sends counted");
	CHECK(st1.context.completions - st0.context.completions == (unsigned long)n,
	      "completions counted");
	if (copied == 0)
		CHECK(st1.context.bytes_zerocopy - st0.context.bytes_zerocopy == n * dlen &&
			      st1.context.bytes_copied == st0.context.bytes_copied,
		      "bytes by reference %llu, copied %llu",
		      (unsigned long long)(st1.context.bytes_zerocopy - st0.context.bytes_zerocopy),
		      (unsigned long long)(st1.context.bytes_copied - st0.context.bytes_copied));
	close(fd);
	munmap(buf, size);
	return 0;
}

int test_send_udp_dummy_not_copied(void)
{
	return udp_datagrams(DUMMY_PEER, 9, false, 64, 1400, 0);
}

int test_send_udp_wire(void)
{
	return udp_datagrams(WIRE_RX, 7400, true, 32, 1472, 0);
}

int test_send_udp_veth(void)
{
	return udp_datagrams(VETH_RX, 7401, true, 32, 1000, 1);
}

int test_send_unregister_busy_until_complete(void)
{
	unsigned char *buf = pattern(64 * 1024, 5);
	struct zc_completion rec;
	struct zc_register r;
	struct receiver rx;
	struct result res;
	long long pinned0 = module_pinned();
	int fd = open_dev(), s, sret, uret, uerr, rerr, fl;
	ssize_t rret;
	__u64 sent;

	CHECK(fd >= 0 && buf, "setup");
	CHECK(reg(fd, buf, 64 * 1024, 0, 0, &r) == 0, "register");
	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, 7500, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, WIRE_RX, 7500);
	CHECK(s >= 0, "connect");
	/* No ACK can come back while the receiving NIC is down. */
	sh("ip -n zrx link set zrx0 down");
	sret = zsend(fd, s, r.id, 0, 64 * 1024, 42, 0, &sent);
	uret = unreg(fd, r.id);
	uerr = errno;
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	rret = read(fd, &rec, sizeof(rec));
	rerr = errno;
	fcntl(fd, F_SETFL, fl);
	/* Up again before checking anything, so a failure here cannot leave
	 * the wire cut for the tests after it. */
	sh("ip -n zrx link set zrx0 up");
	CHECK(sret == 0 && sent == 64 * 1024, "send");
	CHECK(uret == -1 && uerr == EBUSY, "unregister in flight: %d, errno %d", uret, uerr);
	CHECK(rret == -1 && rerr == EAGAIN, "non-blocking read, none ready: %zd, errno %d", rret,
	      rerr);
	CHECK(read_completions(fd, &rec, 1) == 1, "record after the link came back");
	CHECK(rec.tag == 42 && rec.bytes == 64 * 1024 && rec.flags == 0, "record tag %llu flags %#x",
	      (unsigned long long)rec.tag, rec.flags);
	CHECK(unreg(fd, r.id) == 0, "unregister after the record");
	CHECK(module_pinned() == pinned0, "pinned %lld, want %lld", module_pinned(), pinned0);
	close(s);
	CHECK(finish_receiver(&rx, &res) == 0 && res.bytes == 64 * 1024 &&
		      res.hash == fnv(FNV0, buf, 64 * 1024),
	      "receiver got %llu bytes", (unsigned long long)res.bytes);
	close(fd);
	return 0;
}

/* ---- many senders, one fd, an eventfd -------------------------------- */

#define THREADS 4
#define PER_THREAD 2500

struct sender {
	int fd, sock;
	__u32 region;
	unsigned int id;
	int err;
	unsigned long enobufs;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	unsigned int i;

	for (i = 0; i < PER_THREAD; i++) {
		__u64 tag = (__u64)s->id * PER_THREAD + i;

		while (zsend(s->fd, s->sock, s->region, (i * 61) % 8000, 64, tag, 0, NULL)) {
			if (errno != ENOBUFS) {
				s->err = errno;
				return NULL;
			}
			s->enobufs++;
			usleep(1000);
		}
	}
	return NULL;
}

int test_send_10000_from_threads_with_eventfd(void)
{
	static unsigned char seen[THREADS * PER_THREAD];
	struct sender senders[THREADS];
	pthread_t th[THREADS];
	struct zc_eventfd ze = { 0 };
	struct zc_completion recs[256];
	struct epoll_event ev = { .events = EPOLLIN };
	struct zc_register r;
	unsigned char *buf = pattern(3 * PAGE, 6);
	unsigned long total = 0, wakeups = 0, enobufs = 0;
	int fd = open_dev(), efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ep = epoll_create1(0);
	int sock, i;

	CHECK(fd >= 0 && efd >= 0 && ep >= 0 && buf, "setup");
	CHECK(reg(fd, buf, 3 * PAGE, 0, 0, &r) == 0, "register");
	ze.fd = efd;
	CHECK(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze) == 0, "set eventfd");
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0, "epoll_ctl");
	sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	CHECK(sock >= 0, "socket");
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < THREADS; i++) {
		senders[i] = (struct sender){ .fd = fd, .sock = sock, .region = r.id, .id = i };
		CHECK(pthread_create(&th[i], NULL, sender_main, &senders[i]) == 0, "thread");
	}
	while (total < THREADS * PER_THREAD) {
		uint64_t v;
		ssize_t n;
		int k;

		k = epoll_wait(ep, &ev, 1, 60000);
		CHECK(k == 1, "epoll_wait timed out with %lu of %u records", total,
		      THREADS * PER_THREAD);
		CHECK(read(efd, &v, sizeof(v)) == sizeof(v) && v > 0, "eventfd read");
		wakeups++;
		while ((n = read(fd, recs, sizeof(recs))) > 0) {
			for (k = 0; k < n / (ssize_t)sizeof(recs[0]); k++) {
				__u64 t = recs[k].tag;

				CHECK(t < THREADS * PER_THREAD, "unknown tag %llu", (unsigned long long)t);
				CHECK(!seen[t], "tag %llu twice", (unsigned long long)t);
				CHECK(recs[k].bytes == 64, "bytes %llu", (unsigned long long)recs[k].bytes);
				seen[t] = 1;
				total++;
			}
		}
		CHECK(n < 0 && errno == EAGAIN, "read ended with %zd", n);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(senders[i].err == 0, "thread %d: errno %d", i, senders[i].err);
		enobufs += senders[i].enobufs;
	}
	for (i = 0; i < THREADS * PER_THREAD; i++)
		CHECK(seen[i], "tag %d missing", i);
	CHECK(read(fd, recs, sizeof(recs)) < 0 && errno == EAGAIN, "no extra records");
	printf("# %lu records, %lu eventfd wake-ups, %lu ENOBUFS retries\n", total, wakeups,
	       enobufs);
	ze.fd = -1;
	CHECK(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze) == 0, "clear eventfd");
	close(sock);
	close(fd);
	close(efd);
	close(ep);
	return 0;
}

/* Records nobody reads fill the queue: the next send is refused, nothing
 * is dropped, and reading one record makes room for one send. */
int test_send_queue_full_is_enobufs(void)
{
	unsigned char *buf = pattern(PAGE, 12);
	struct zc_completion rec;
	struct zc_register r;
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), i, n = 0;

	CHECK(fd >= 0 && sock >= 0 && buf, "setup");
	CHECK(reg(fd, buf, PAGE, 0, 0, &r) == 0, "register");
	for (i = 0; i < ZC_COMPLETION_SLOTS; i++)
		CHECK(zsend(fd, sock, r.id, 0, 100, i, 0, NULL) == 0, "send %d", i);
	CHECK_ERRNO(zsend(fd, sock, r.id, 0, 100, 9999, 0, NULL), ENOBUFS, "send into a full queue");
	CHECK(read_completions(fd, &rec, 1) == 1, "one record");
	CHECK(zsend(fd, sock, r.id, 0, 100, 10000, 0, NULL) == 0, "send after reading one");
	CHECK_ERRNO(zsend(fd, sock, r.id, 0, 100, 9999, 0, NULL), ENOBUFS, "full again");
	/* Every accepted send has its record: 1 read + 1024 now. */
	while (n < ZC_COMPLETION_SLOTS) {
		static struct zc_completion recs[ZC_COMPLETION_SLOTS];
		int got = read_completions(fd, recs, ZC_COMPLETION_SLOTS - n);

		CHECK(got > 0, "records after %d", n);
		n += got;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, &rec, sizeof(rec)), EAGAIN, "no record beyond the sends");
	close(sock);
	close(fd);
	return 0;
}

/* ---- batches of sends ------------------------------------------------ */

static struct zc_send send_entry(int sock, __u32 region, __u64 off, __u64 len, __u64 tag)
{
	return (struct zc_send){
		.fd = sock, .region = region, .offset = off, .len = len, .tag = tag,
	};
}

/* ZC_IOC_SEND_BATCH with a header as given; *out is the header afterwards. */
static int batch_ioctl(int fd, __u64 sends, __u32 nr, __u32 accepted, __s32 error,
		       __u32 reserved, struct zc_send_batch *out)
{
	struct zc_send_batch b = {
		.sends = sends, .nr = nr, .accepted = accepted, .error = error,
		.reserved = reserved,
	};
	int ret = ioctl(fd, ZC_IOC_SEND_BATCH, &b);

	if (out)
		*out = b;
	return ret;
}

static int zbatch(int fd, struct zc_send *e, __u32 nr, struct zc_send_batch *out)
{
	return batch_ioctl(fd, (unsigned long)e, nr, 0, 0, 0, out);
}

int test_send_batch_bad_inputs(void)
{
	unsigned char *buf = pattern(PAGE, 13), *edge_page;
	struct zc_send e[ZC_SEND_BATCH_MAX + 1], *edge;
	struct zc_completion recs[ZC_SEND_BATCH_MAX];
	struct zc_stats st0, st1;
	struct zc_register r, r2;
	struct zc_send_batch b;
	struct zc_version v;
	int fd = open_dev(), other = open_dev(), udp = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	int ret, err, got, i;
	unsigned long long seen = 0;
	long long sends0;
	void *gone;

	CHECK(fd >= 0 && other >= 0 && udp >= 0 && buf, "setup");
	memset(&v, 0xa5, sizeof(v));
	CHECK(ioctl(fd, ZC_IOC_VERSION, &v) == 0, "ZC_IOC_VERSION");
	CHECK(v.abi_version == ZC_ABI_VERSION && v.abi_version >= 4, "abi_version %u, want %u",
	      v.abi_version, ZC_ABI_VERSION);
	CHECK(v.features & ZC_FEAT_SEND_BATCH, "features %#llx lack ZC_FEAT_SEND_BATCH",
	      (unsigned long long)v.features);
	CHECK(reg(fd, buf, PAGE, 0, 0, &r) == 0, "register");
	CHECK(reg(other, buf, PAGE, 0, 0, &r2) == 0, "register on another fd");
	gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(gone != MAP_FAILED, "mmap");
	munmap(gone, PAGE);
	/* Valid entries: only the header or the pointer is wrong below. */
	for (i = 0; i <= ZC_SEND_BATCH_MAX; i++)
		e[i] = send_entry(udp, r.id, i, 100, 1000 + i);
	st0 = get_stats(fd);
	sends0 = debugfs_value("sends");

	/* The header. */
#define BATCH(nr, accepted, error, reserved) \
	batch_ioctl(fd, (unsigned long)e, nr, accepted, error, reserved, NULL)
	CHECK_ERRNO(BATCH(0, 0, 0, 0), EINVAL, "nr 0");
	CHECK_ERRNO(BATCH(ZC_SEND_BATCH_MAX + 1, 0, 0, 0), EINVAL, "nr ZC_SEND_BATCH_MAX + 1");
	CHECK_ERRNO(BATCH(~0U, 0, 0, 0), EINVAL, "nr ~0");
	CHECK_ERRNO(BATCH(1, 1, 0, 0), EINVAL, "accepted 1 on input");
	CHECK_ERRNO(BATCH(2, 1, 0, 0), EINVAL, "accepted 1 of 2 on input");
	CHECK_ERRNO(BATCH(1, 0, ENOENT, 0), EINVAL, "error ENOENT on input");
	CHECK_ERRNO(BATCH(1, 0, -1, 0), EINVAL, "error -1 on input");
	CHECK_ERRNO(BATCH(1, 0, 0, 1), EINVAL, "reserved 1");
	CHECK_ERRNO(BATCH(1, 0, 0, 1U << 31), EINVAL, "reserved bit 31");
#undef BATCH
	/* The array and the header's own address. */
	CHECK_ERRNO(batch_ioctl(fd, 0, 1, 0, 0, 0, NULL), EFAULT, "NULL sends");
	CHECK_ERRNO(batch_ioctl(fd, 8, 1, 0, 0, 0, NULL), EFAULT, "sends at address 8");
	CHECK_ERRNO(batch_ioctl(fd, (unsigned long)gone, 1, 0, 0, 0, NULL), EFAULT,
		    "sends in an unmapped page");
	CHECK_ERRNO(batch_ioctl(fd, 0xffff888000000000ULL, 4, 0, 0, 0, NULL), EFAULT,
		    "sends at a kernel address");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND_BATCH, NULL), EFAULT, "NULL header");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND_BATCH, (void *)8), EFAULT, "header at address 8");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND_BATCH, gone), EFAULT, "header in an unmapped page");

	/* The first entry refused: the call fails with its errno, as
	 * ZC_IOC_SEND would, sends nothing after it and writes nothing back. */
	{
		const struct zc_send flags = {
			.fd = udp, .flags = 1U << 7, .region = r.id, .len = 100, .tag = 1,
		};
		const struct zc_send resv = {
			.fd = udp, .region = r.id, .reserved = 1, .len = 100, .tag = 1,
		};
		const struct zc_send sent = {
			.fd = udp, .region = r.id, .len = 100, .tag = 1, .sent = 1,
		};
		const struct {
			struct zc_send first;
			int err;
			const char *what;
		} cases[] = {
			{ send_entry(udp, r2.id, 0, 100, 1), ENOENT, "a region of another fd" },
			{ send_entry(udp, 0, 0, 100, 1), ENOENT, "region 0" },
			{ send_entry(-1, r.id, 0, 100, 1), EBADF, "fd -1" },
			{ send_entry(fd, r.id, 0, 100, 1), ENOTSOCK, "the zcopy fd itself" },
			{ send_entry(udp, r.id, 0, 0, 1), EINVAL, "zero length" },
			{ send_entry(udp, r.id, PAGE - 50, 100, 1), EINVAL, "past the region's end" },
			{ send_entry(udp, r.id, ~0ULL, 2, 1), EOVERFLOW, "offset + length wraps" },
			{ flags, EINVAL, "unknown flag" },
			{ resv, EINVAL, "entry's reserved field" },
			{ sent, EINVAL, "entry's sent not zero" },
		};
		unsigned int c;

		for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			struct zc_send two[2] = { cases[c].first, send_entry(udp, r.id, 0, 100, 2) };

			errno = 0;
			ret = zbatch(fd, two, 2, &b);
			err = errno;
			CHECK(ret == -1 && err == cases[c].err, "first entry %s: returned %d errno %d, want %d",
			      cases[c].what, ret, err, cases[c].err);
			CHECK(b.accepted == 0 && b.error == 0,
			      "first entry %s: header written back (accepted %u error %d)", cases[c].what,
			      b.accepted, b.error);
			CHECK(two[0].sent == cases[c].first.sent && two[1].sent == 0,
			      "first entry %s: entries written back (sent %llu, %llu)", cases[c].what,
			      (unsigned long long)two[0].sent, (unsigned long long)two[1].sent);
		}
	}
	st1 = get_stats(fd);
	CHECK(st1.context.sends == st0.context.sends &&
		      st1.context.completions == st0.context.completions,
	      "refused batches were counted: sends %llu -> %llu",
	      (unsigned long long)st0.context.sends, (unsigned long long)st1.context.sends);
	CHECK(debugfs_value("sends") == sends0, "refused batches were counted (module)");
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, recs, sizeof(recs)), EAGAIN, "refused batches leave no record");
	/* They hold nothing once the call returns. */
	CHECK(unreg(fd, r.id) == 0, "unregister right after the refused batches");
	fcntl(fd, F_SETFL, 0);

	/* The most entries a batch takes. */
	CHECK(reg(fd, buf, PAGE, 0, 0, &r) == 0, "register again");
	for (i = 0; i < ZC_SEND_BATCH_MAX; i++)
		e[i] = send_entry(udp, r.id, i, 100, 2000 + i);
	CHECK(zbatch(fd, e, ZC_SEND_BATCH_MAX, &b) == 0, "a batch of ZC_SEND_BATCH_MAX");
	CHECK(b.accepted == ZC_SEND_BATCH_MAX && b.error == 0, "accepted %u error %d", b.accepted,
	      b.error);
	for (i = 0; i < ZC_SEND_BATCH_MAX; i++)
		CHECK(e[i].sent == 100, "entry %d sent %llu", i, (unsigned long long)e[i].sent);
	got = read_completions(fd, recs, ZC_SEND_BATCH_MAX);
	CHECK(got == ZC_SEND_BATCH_MAX, "%d records for %d sends", got, ZC_SEND_BATCH_MAX);
	for (i = 0; i < got; i++) {
		__u64 t = recs[i].tag - 2000;

		CHECK(recs[i].tag >= 2000 && t < ZC_SEND_BATCH_MAX && !(seen & (1ULL << t)),
		      "record %d: tag %llu", i, (unsigned long long)recs[i].tag);
		CHECK(recs[i].bytes == 100 && recs[i].status == 0, "record %d: bytes %llu status %d",
		      i, (unsigned long long)recs[i].bytes, recs[i].status);
		seen |= 1ULL << t;
	}

	/* An array running into an unmapped page: entry 0 is readable, entry
	 * 1 is not. Either the whole call fails with EFAULT and sends nothing,
	 * or entry 0 goes out and entry 1 is refused with EFAULT. */
	edge_page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(edge_page != MAP_FAILED, "mmap");
	munmap(edge_page + PAGE, PAGE);
	edge = (struct zc_send *)(edge_page + PAGE - sizeof(*edge));
	edge[0] = send_entry(udp, r.id, 0, 100, 3000);
	st0 = get_stats(fd);
	errno = 0;
	ret = zbatch(fd, edge, 2, &b);
	err = errno;
	st1 = get_stats(fd);
	if (ret) {
		CHECK(err == EFAULT, "array into an unmapped page: errno %d, want EFAULT", err);
		CHECK(st1.context.sends == st0.context.sends && edge[0].sent == 0,
		      "a failed batch sent %llu", (unsigned long long)(st1.context.sends -
								 st0.context.sends));
	} else {
		CHECK(b.accepted == 1 && b.error == EFAULT && edge[0].sent == 100,
		      "array into an unmapped page: accepted %u error %d sent %llu, want 1, EFAULT, 100",
		      b.accepted, b.error, (unsigned long long)edge[0].sent);
		CHECK(st1.context.sends == st0.context.sends + 1, "sends %llu -> %llu",
		      (unsigned long long)st0.context.sends, (unsigned long long)st1.context.sends);
		CHECK(read_completions(fd, recs, 1) == 1 && recs[0].tag == 3000 && recs[0].bytes == 100,
		      "record of the readable entry: tag %llu", (unsigned long long)recs[0].tag);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, recs, sizeof(recs)), EAGAIN, "no record beyond the accepted entries");
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	munmap(edge_page, PAGE);
	close(udp);
	close(other);
	close(fd);
	munmap(buf, PAGE);
	return 0;
}

/* A batch of 5 whose entry 3 names a region of another fd: 0..2 go out,
 * 3 and 4 do not; then one whose entry 1 has fd -1. */
int test_send_batch_partial_acceptance(void)
{
	unsigned char *buf = pattern(PAGE, 14);
	struct zc_completion recs[8];
	struct zc_stats st0, st1;
	struct zc_register r, r2;
	struct zc_send_batch b;
	struct zc_send e[5];
	int fd = open_dev(), other = open_dev(), udp = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), i;
	unsigned int seen = 0;
	__u64 bytes = 0;

	CHECK(fd >= 0 && other >= 0 && udp >= 0 && buf, "setup");
	CHECK(reg(fd, buf, PAGE, 0, 0, &r) == 0, "register");
	CHECK(reg(other, buf, PAGE, 0, 0, &r2) == 0, "register on another fd");
	for (i = 0; i < 5; i++)
		e[i] = send_entry(udp, r.id, 100 * i + 7, 200 + i, 400 + i);
	e[3].region = r2.id;
	st0 = get_stats(fd);
	CHECK(zbatch(fd, e, 5, &b) == 0, "batch refused at entry 3");
	CHECK(b.accepted == 3 && b.error == ENOENT, "accepted %u error %d, want 3 and ENOENT (%d)",
	      b.accepted, b.error, ENOENT);
	for (i = 0; i < 3; i++) {
		CHECK(e[i].sent == e[i].len, "entry %d sent %llu of %llu", i,
		      (unsigned long long)e[i].sent, (unsigned long long)e[i].len);
		bytes += e[i].len;
	}
	CHECK(e[3].sent == 0 && e[4].sent == 0, "entries 3 and 4 written back: sent %llu, %llu",
	      (unsigned long long)e[3].sent, (unsigned long long)e[4].sent);
	CHECK(e[3].tag == 403 && e[3].region == r2.id && e[4].tag == 404 && e[4].len == 204,
	      "entries 3 and 4 changed");
	CHECK(read_completions(fd, recs, 3) == 3, "three records");
	for (i = 0; i < 3; i++) {
		__u64 t = recs[i].tag - 400;

		CHECK(recs[i].tag >= 400 && t < 3 && !(seen & (1U << t)), "record %d: tag %llu", i,
		      (unsigned long long)recs[i].tag);
		CHECK(recs[i].bytes == 200 + t && recs[i].status == 0 && recs[i].flags == 0,
		      "record %d: bytes %llu status %d flags %#x", i,
		      (unsigned long long)recs[i].bytes, recs[i].status, recs[i].flags);
		seen |= 1U << t;
	}
	st1 = get_stats(fd);
	CHECK(st1.context.sends - st0.context.sends == 3 &&
		      st1.context.completions - st0.context.completions == 3,
	      "sends +%llu, completions +%llu, want 3 and 3",
	      (unsigned long long)(st1.context.sends - st0.context.sends),
	      (unsigned long long)(st1.context.completions - st0.context.completions));
	CHECK(st1.context.bytes_zerocopy - st0.context.bytes_zerocopy == bytes &&
		      st1.context.bytes_copied == st0.context.bytes_copied &&
		      st1.context.completions_copied == st0.context.completions_copied,
	      "bytes by reference +%llu (want %llu), copied +%llu",
	      (unsigned long long)(st1.context.bytes_zerocopy - st0.context.bytes_zerocopy),
	      (unsigned long long)bytes,
	      (unsigned long long)(st1.context.bytes_copied - st0.context.bytes_copied));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, recs, sizeof(recs)), EAGAIN, "a record for entry 3 or 4");

	/* A bad fd at entry 1. */
	fcntl(fd, F_SETFL, 0);
	for (i = 0; i < 3; i++)
		e[i] = send_entry(udp, r.id, 10 * i, 50, 500 + i);
	e[1].fd = -1;
	CHECK(zbatch(fd, e, 3, &b) == 0, "batch refused at entry 1");
	CHECK(b.accepted == 1 && b.error == EBADF, "accepted %u error %d, want 1 and EBADF (%d)",
	      b.accepted, b.error, EBADF);
	CHECK(e[0].sent == 50 && e[1].sent == 0 && e[2].sent == 0, "sent %llu %llu %llu",
	      (unsigned long long)e[0].sent, (unsigned long long)e[1].sent,
	      (unsigned long long)e[2].sent);
	CHECK(read_completions(fd, recs, 1) == 1 && recs[0].tag == 500 && recs[0].bytes == 50,
	      "record of entry 0: tag %llu bytes %llu", (unsigned long long)recs[0].tag,
	      (unsigned long long)recs[0].bytes);
	st1 = get_stats(fd);
	CHECK(st1.context.sends - st0.context.sends == 4 &&
		      st1.context.completions - st0.context.completions == 4,
	      "sends +%llu, completions +%llu, want 4 and 4",
	      (unsigned long long)(st1.context.sends - st0.context.sends),
	      (unsigned long long)(st1.context.completions - st0.context.completions));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, recs, sizeof(recs)), EAGAIN, "a record for entry 1 or 2");
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(udp);
	close(other);
	close(fd);
	munmap(buf, PAGE);
	return 0;
}

/* Tags of test_send_batch_refusal_consumes_nothing: never submitted,
 * accepted, refused, record read. */
enum { TAG_NONE, TAG_ACCEPTED, TAG_REFUSED, TAG_DONE };

/* Marks entries [0, accepted) accepted and the rest refused; checks sent. */
static int mark_batch(unsigned char *state, const struct zc_send *e, unsigned int n,
		      unsigned int accepted)
{
	unsigned int j;

	for (j = 0; j < n; j++) {
		CHECK(e[j].sent == (j < accepted ? e[j].len : 0), "entry %u of %u: sent %llu", j, n,
		      (unsigned long long)e[j].sent);
		state[e[j].tag] = j < accepted ? TAG_ACCEPTED : TAG_REFUSED;
	}
	return 0;
}

/* Reads n records; each must be of an accepted send whose record has not
 * come yet. */
static int take_records(int fd, unsigned char *state, unsigned int ntags, unsigned long n)
{
	static struct zc_completion recs[ZC_COMPLETION_SLOTS];

	while (n) {
		int want = n < ZC_COMPLETION_SLOTS ? n : ZC_COMPLETION_SLOTS;
		int got = read_completions(fd, recs, want), i;

		CHECK(got == want, "%d of %d records", got, want);
		for (i = 0; i < got; i++) {
			__u64 t = recs[i].tag;

			CHECK(t < ntags && state[t] != TAG_NONE, "unknown tag %llu",
			      (unsigned long long)t);
			CHECK(state[t] != TAG_REFUSED, "a record for refused tag %llu",
			      (unsigned long long)t);
			CHECK(state[t] != TAG_DONE, "tag %llu twice", (unsigned long long)t);
			CHECK(recs[i].bytes == 100, "tag %llu: bytes %llu", (unsigned long long)t,
			      (unsigned long long)recs[i].bytes);
			state[t] = TAG_DONE;
		}
		n -= got;
	}
	return 0;
}

/* With room for 2 sends, a batch of 5 gets 2 out; the 3 refused take no
 * room: reading a record makes room for exactly one more send. */
int test_send_batch_refusal_consumes_nothing(void)
{
	enum { ROOM = 2, NTAGS = ZC_COMPLETION_SLOTS + 64 };
	static unsigned char state[NTAGS];
	unsigned char *buf = pattern(PAGE, 15);
	struct zc_completion rec;
	struct zc_send_batch b;
	struct zc_register r;
	struct zc_send e[5];
	struct zc_stats st;
	unsigned long accepted = 0, taken = 0;
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), i;
	__u64 tag = 0;

	CHECK(fd >= 0 && sock >= 0 && buf, "setup");
	CHECK(reg(fd, buf, PAGE, 0, 0, &r) == 0, "register");
	memset(state, TAG_NONE, sizeof(state));
	for (i = 0; i < ZC_COMPLETION_SLOTS - ROOM; i++, tag++) {
		CHECK(zsend(fd, sock, r.id, 0, 100, tag, 0, NULL) == 0, "send %d", i);
		state[tag] = TAG_ACCEPTED;
		accepted++;
	}

	for (i = 0; i < 5; i++)
		e[i] = send_entry(sock, r.id, 10 * i, 100, tag + i);
	CHECK(zbatch(fd, e, 5, &b) == 0, "a batch of 5 with room for %d", ROOM);
	CHECK(b.accepted == ROOM && b.error == ENOBUFS, "accepted %u error %d, want %d and ENOBUFS",
	      b.accepted, b.error, ROOM);
	if (mark_batch(state, e, 5, b.accepted))
		return 1;
	accepted += b.accepted;
	tag += 5;

	/* Full: the first entry is refused, so the call fails. */
	for (i = 0; i < 3; i++)
		e[i] = send_entry(sock, r.id, 0, 100, tag + i);
	CHECK_ERRNO(zbatch(fd, e, 3, &b), ENOBUFS, "a batch into a full queue");
	CHECK(b.accepted == 0 && b.error == 0, "header written back by a failed batch");
	if (mark_batch(state, e, 3, 0))
		return 1;
	tag += 3;

	/* One record read: room for one send, not four. */
	if (take_records(fd, state, NTAGS, 1))
		return 1;
	taken++;
	CHECK(zsend(fd, sock, r.id, 0, 100, tag, 0, NULL) == 0, "a send after reading one record");
	state[tag++] = TAG_ACCEPTED;
	accepted++;
	CHECK_ERRNO(zsend(fd, sock, r.id, 0, 100, tag, 0, NULL), ENOBUFS, "a second send");
	state[tag++] = TAG_REFUSED;

	/* Again, through a batch. */
	if (take_records(fd, state, NTAGS, 1))
		return 1;
	taken++;
	for (i = 0; i < 3; i++)
		e[i] = send_entry(sock, r.id, 0, 100, tag + i);
	CHECK(zbatch(fd, e, 3, &b) == 0, "a batch of 3 after reading one record");
	CHECK(b.accepted == 1 && b.error == ENOBUFS, "accepted %u error %d, want 1 and ENOBUFS",
	      b.accepted, b.error);
	if (mark_batch(state, e, 3, b.accepted))
		return 1;
	accepted += b.accepted;
	tag += 3;
	CHECK_ERRNO(zsend(fd, sock, r.id, 0, 100, tag, 0, NULL), ENOBUFS, "full after the batch");
	state[tag++] = TAG_REFUSED;

	st = get_stats(fd);
	CHECK(st.context.sends == accepted, "sends %llu, want %lu",
	      (unsigned long long)st.context.sends, accepted);
	/* Every accepted send has its record, once; no refused one has. */
	if (take_records(fd, state, NTAGS, accepted - taken))
		return 1;
	for (i = 0; i < (int)tag; i++)
		CHECK(state[i] != TAG_ACCEPTED, "no record for tag %d", i);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, &rec, sizeof(rec)), EAGAIN, "a record beyond the accepted sends");
	st = get_stats(fd);
	CHECK(st.context.sends == accepted && st.context.completions == accepted,
	      "sends %llu completions %llu, want %lu", (unsigned long long)st.context.sends,
	      (unsigned long long)st.context.completions, accepted);
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(sock);
	close(fd);
	munmap(buf, PAGE);
	return 0;
}

/* Threads sending in batches, as test_send_10000_from_threads_with_eventfd
 * does one by one. */
struct batch_sender {
	int fd, sock;
	__u32 region;
	unsigned int id;
	int err;		/* an errno, or -1 */
	const char *why;
	unsigned long calls, refused, stopped;
};

static int batch_queue_filled, batch_senders_stop;

static void *batch_sender_failed(struct batch_sender *s, int err, const char *why)
{
	s->err = err;
	s->why = why;
	return NULL;
}

static void *batch_sender_main(void *arg)
{
	struct batch_sender *s = arg;
	struct zc_send e[ZC_SEND_BATCH_MAX];
	unsigned int next = 0, round = 0, n, j;
	struct zc_send_batch b;
	sigset_t set;

	/* SIGALRM ends read_completions() in the reading thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (next < PER_THREAD && !__atomic_load_n(&batch_senders_stop, __ATOMIC_RELAXED)) {
		/* From 1 to ZC_SEND_BATCH_MAX entries. */
		n = ZC_SEND_BATCH_MAX - (s->id * 7 + round++ * 13) % ZC_SEND_BATCH_MAX;
		if (n > PER_THREAD - next)
			n = PER_THREAD - next;
		for (j = 0; j < n; j++)
			e[j] = send_entry(s->sock, s->region, ((next + j) * 61) % 8000, 64,
					  (__u64)s->id * PER_THREAD + next + j);
		s->calls++;
		if (zbatch(s->fd, e, n, &b)) {
			if (errno != ENOBUFS)
				return batch_sender_failed(s, errno, "batch failed");
			s->refused++;
			__atomic_store_n(&batch_queue_filled, 1, __ATOMIC_RELAXED);
			usleep(1000);
			continue;
		}
		if (b.accepted < 1 || b.accepted > n)
			return batch_sender_failed(s, -1, "accepted out of range");
		for (j = 0; j < n; j++)
			if (e[j].sent != (j < b.accepted ? 64 : 0))
				return batch_sender_failed(s, -1, "an entry's sent");
		next += b.accepted;
		if (b.accepted < n) {
			/* Stopped early: the rest goes in the next batch. */
			if (b.error != ENOBUFS)
				return batch_sender_failed(s, b.error, "batch stopped early");
			s->stopped++;
			__atomic_store_n(&batch_queue_filled, 1, __ATOMIC_RELAXED);
			usleep(1000);
		} else if (b.error != 0) {
			return batch_sender_failed(s, b.error, "error with every entry accepted");
		}
	}
	return NULL;
}

/* Waits for the senders to fill the queue, then reads every record. */
static int collect_batch_records(int fd, unsigned char *seen, unsigned long *copied)
{
	static struct zc_completion recs[256];
	unsigned long total = 0;
	int i;

	/* Nobody reads until the queue is full, so some batch must stop
	 * early or be refused. */
	for (i = 0; i < 60000 && !__atomic_load_n(&batch_queue_filled, __ATOMIC_RELAXED); i++)
		usleep(1000);
	CHECK(__atomic_load_n(&batch_queue_filled, __ATOMIC_RELAXED),
	      "no ENOBUFS in 60 s with nobody reading");
	while (total < THREADS * PER_THREAD) {
		int want = THREADS * PER_THREAD - total < 256 ? THREADS * PER_THREAD - total : 256;
		int got = read_completions(fd, recs, want);

		for (i = 0; i < got; i++) {
			__u64 t = recs[i].tag;

			CHECK(t < THREADS * PER_THREAD, "unknown tag %llu", (unsigned long long)t);
			CHECK(!seen[t], "tag %llu twice", (unsigned long long)t);
			CHECK(recs[i].bytes == 64 && recs[i].status == 0, "tag %llu: bytes %llu status %d",
			      (unsigned long long)t, (unsigned long long)recs[i].bytes, recs[i].status);
			seen[t] = 1;
			*copied += !!(recs[i].flags & ZC_COMPLETION_COPIED);
		}
		total += got;
		CHECK(got == want, "%lu of %u records, then none for 120 s", total,
		      THREADS * PER_THREAD);
	}
	return 0;
}

int test_send_batch_10000_from_threads(void)
{
	static unsigned char seen[THREADS * PER_THREAD];
	struct batch_sender senders[THREADS];
	pthread_t th[THREADS];
	struct zc_completion rec;
	struct zc_register r;
	struct zc_stats st;
	unsigned char *buf = pattern(3 * PAGE, 16);
	unsigned long copied = 0, calls = 0, refused = 0, stopped = 0;
	int fd = open_dev(), sock = connect_to(SOCK_DGRAM, DUMMY_PEER, 9), started = 0, ret, i;

	CHECK(fd >= 0 && sock >= 0 && buf, "setup");
	CHECK(reg(fd, buf, 3 * PAGE, 0, 0, &r) == 0, "register");
	memset(seen, 0, sizeof(seen));
	batch_queue_filled = 0;
	batch_senders_stop = 0;
	for (i = 0; i < THREADS; i++) {
		senders[i] = (struct batch_sender){ .fd = fd, .sock = sock, .region = r.id, .id = i };
		if (pthread_create(&th[i], NULL, batch_sender_main, &senders[i]))
			break;
		started++;
	}
	ret = started == THREADS ? collect_batch_records(fd, seen, &copied) : fail("thread");
	__atomic_store_n(&batch_senders_stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < started; i++) {
		CHECK(senders[i].err == 0, "thread %d: %s, error %d", i, senders[i].why,
		      senders[i].err);
		calls += senders[i].calls;
		refused += senders[i].refused;
		stopped += senders[i].stopped;
	}
	if (ret)
		return ret;
	for (i = 0; i < THREADS * PER_THREAD; i++)
		CHECK(seen[i], "tag %d missing", i);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, &rec, sizeof(rec)), EAGAIN, "a record beyond the sends");
	CHECK(refused + stopped > 0, "no batch met a full queue");
	st = get_stats(fd);
	CHECK(st.context.sends == THREADS * PER_THREAD &&
		      st.context.completions == THREADS * PER_THREAD,
	      "sends %llu completions %llu, want %u", (unsigned long long)st.context.sends,
	      (unsigned long long)st.context.completions, THREADS * PER_THREAD);
	CHECK(st.context.bytes_zerocopy + st.context.bytes_copied == THREADS * PER_THREAD * 64ULL,
	      "bytes by reference %llu + copied %llu, want %llu",
	      (unsigned long long)st.context.bytes_zerocopy,
	      (unsigned long long)st.context.bytes_copied, THREADS * PER_THREAD * 64ULL);
	CHECK(st.context.completions_copied == copied, "completions_copied %llu, records %lu",
	      (unsigned long long)st.context.completions_copied, copied);
	printf("# %lu batches, %lu refused, %lu stopped early by ENOBUFS\n", calls, refused,
	       stopped);
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(sock);
	close(fd);
	munmap(buf, 3 * PAGE);
	return 0;
}

/* 1 MiB in one batch of 16 entries of 64 KiB on one TCP socket, over veth
 * into zrx: the receiver must get exactly those bytes, in order. */
int test_send_batch_tcp_veth(void)
{
	enum { N = 16, LEN = 64 * 1024 };
	unsigned char *buf = pattern(N * LEN, 17);
	struct zc_completion recs[N];
	struct zc_send_batch b = { 0 };
	struct zc_register r;
	struct zc_send e[N];
	struct receiver rx;
	struct result res;
	unsigned int seen = 0;
	int fd = open_dev(), s, ret, err, got = 0, fin, i;

	CHECK(fd >= 0 && buf, "setup");
	CHECK(reg(fd, buf, N * LEN, ZC_REGISTER_READONLY, 0, &r) == 0, "register");
	CHECK(start_receiver(&rx, SOCK_STREAM, VETH_RX, 7250, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, VETH_RX, 7250);
	CHECK(s >= 0, "connect");
	for (i = 0; i < N; i++)
		e[i] = send_entry(s, r.id, (__u64)i * LEN, LEN, 700 + i);
	errno = 0;
	ret = zbatch(fd, e, N, &b);
	err = errno;
	if (ret == 0 && b.accepted <= N)
		got = read_completions(fd, recs, b.accepted);
	close(s);
	fin = finish_receiver(&rx, &res);
	CHECK(ret == 0, "batch of %d: errno %d", N, err);
	CHECK(b.accepted == N && b.error == 0, "accepted %u error %d", b.accepted, b.error);
	for (i = 0; i < N; i++)
		CHECK(e[i].sent == LEN, "entry %d: sent %llu", i, (unsigned long long)e[i].sent);
	CHECK(got == N, "%d records for %d sends", got, N);
	for (i = 0; i < N; i++) {
		__u64 t = recs[i].tag - 700;

		CHECK(recs[i].tag >= 700 && t < N && !(seen & (1U << t)), "record %d: tag %llu", i,
		      (unsigned long long)recs[i].tag);
		/* Delivered into a socket in another namespace: the stack copies. */
		CHECK(recs[i].bytes == LEN && recs[i].status == 0 &&
			      (recs[i].flags & ZC_COMPLETION_COPIED),
		      "record %d: bytes %llu status %d flags %#x", i,
		      (unsigned long long)recs[i].bytes, recs[i].status, recs[i].flags);
		seen |= 1U << t;
	}
	CHECK(fin == 0, "receiver result");
	CHECK(res.bytes == N * LEN, "receiver got %llu bytes, want %d",
	      (unsigned long long)res.bytes, N * LEN);
	CHECK(res.hash == fnv(FNV0, buf, N * LEN), "receiver's bytes differ");
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(fd);
	munmap(buf, N * LEN);
	return 0;
}

/*
 * Non-blocking entries on a TCP socket whose send buffer fills (no ACK
 * comes back while the receiving NIC is down): the batch stops at the
 * entry accepted short, or at the first refused with EAGAIN, and nothing
 * after it goes out; the receiver gets exactly the prefix accepted.
 */
int test_send_batch_stops_at_short_stream_send(void)
{
	enum { N = 8, LEN = 64 * 1024 };
	unsigned char *buf = pattern(N * LEN, 18);
	struct zc_completion recs[N];
	struct zc_send_batch b = { 0 };
	struct zc_register r;
	struct zc_send e[N];
	struct receiver rx;
	struct result res;
	unsigned int seen = 0, last;
	int fd = open_dev(), s, sndbuf = 64 * 1024, ret, err, got = 0, fin, i;
	__u64 sent = 0;

	CHECK(fd >= 0 && buf, "setup");
	CHECK(reg(fd, buf, N * LEN, 0, 0, &r) == 0, "register");
	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, 7550, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, WIRE_RX, 7550);
	CHECK(s >= 0, "connect");
	CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0, "SO_SNDBUF");
	for (i = 0; i < N; i++) {
		e[i] = send_entry(s, r.id, (__u64)i * LEN, LEN, 800 + i);
		e[i].flags = ZC_SEND_NONBLOCK;
	}
	sh("ip -n zrx link set zrx0 down");
	errno = 0;
	ret = zbatch(fd, e, N, &b);
	err = errno;
	/* Up again before checking anything (see
	 * test_send_unregister_busy_until_complete). */
	sh("ip -n zrx link set zrx0 up");
	if (ret == 0 && b.accepted <= N)
		got = read_completions(fd, recs, b.accepted);
	close(s);
	fin = finish_receiver(&rx, &res);
	CHECK(ret == 0, "batch: errno %d", err);
	CHECK(b.accepted >= 1 && b.accepted < N,
	      "accepted %u of %d entries of %d bytes with a %d-byte send buffer", b.accepted, N, LEN,
	      sndbuf);
	last = b.accepted - 1;
	for (i = 0; i < (int)last; i++)
		CHECK(e[i].sent == LEN, "entry %d before the last accepted: sent %llu", i,
		      (unsigned long long)e[i].sent);
	if (e[last].sent < LEN)
		CHECK(e[last].sent > 0 && b.error == 0,
		      "entry %u accepted short (%llu bytes): error %d, want 0", last,
		      (unsigned long long)e[last].sent, b.error);
	else
		CHECK(e[last].sent == LEN && b.error == EAGAIN,
		      "every accepted entry whole: entry %u refused with %d, want EAGAIN (%d)",
		      b.accepted, b.error, EAGAIN);
	for (i = last + 1; i < N; i++)
		CHECK(e[i].sent == 0, "entry %d after the stop: sent %llu", i,
		      (unsigned long long)e[i].sent);
	for (i = 0; i <= (int)last; i++)
		sent += e[i].sent;
	CHECK(got == (int)b.accepted, "%d records for %u sends", got, b.accepted);
	for (i = 0; i < got; i++) {
		__u64 t = recs[i].tag - 800;

		CHECK(recs[i].tag >= 800 && t <= last && !(seen & (1U << t)), "record %d: tag %llu",
		      i, (unsigned long long)recs[i].tag);
		CHECK(recs[i].bytes == e[t].sent && recs[i].status == 0,
		      "record %d: bytes %llu, entry sent %llu", i, (unsigned long long)recs[i].bytes,
		      (unsigned long long)e[t].sent);
		seen |= 1U << t;
	}
	CHECK(fin == 0, "receiver result");
	CHECK(res.bytes == sent && res.hash == fnv(FNV0, buf, sent),
	      "receiver got %llu bytes (%s), want the %llu accepted",
	      (unsigned long long)res.bytes,
	      res.hash == fnv(FNV0, buf, sent) ? "same" : "different", (unsigned long long)sent);
	printf("# %u entries accepted, %llu bytes, error %d\n", b.accepted,
	       (unsigned long long)sent, b.error);
	CHECK(unreg(fd, r.id) == 0, "unregister after the records");
	close(fd);
	munmap(buf, N * LEN);
	return 0;
}

/* ---- lifetimes ------------------------------------------------------- */

/* Waits up to 60 s for the module's pinned pages and outstanding sends to
 * drop to `pinned0` and 0. */
int wait_released(long long pinned0)
{
	int i;

	for (i = 0; i < 600; i++) {
		if (module_pinned() == pinned0 &&
		    debugfs_value("sends") == debugfs_value("completions"))
			return 0;
		usleep(100 * 1000);
	}
	return fail("pinned %lld (want %lld), sends %lld, completions %lld", module_pinned(),
		    pinned0, debugfs_value("sends"), debugfs_value("completions"));
}

/* A child streaming sends that cannot complete (the receiving NIC is down)
 * is killed, or closes its fd; once the link is back, nothing is left. */
static int stream_then_die(bool kill9)
{
	long long pinned0 = module_pinned();
	struct receiver rx;
	struct result res;
	int status, status2, port = kill9 ? 7600 : 7601;
	bool held, inflight;
	pid_t pid, waited;

	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, port, false, 0) == 0, "receiver");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		unsigned char *buf = pattern(MiB, 7);
		struct zc_register r;
		int fd = open_dev(), s = connect_to(SOCK_STREAM, WIRE_RX, port), i;

		if (fd < 0 || !buf || s < 0 || reg(fd, buf, MiB, 0, 0, &r))
			_exit(1);
		sh("ip -n zrx link set zrx0 down");
		for (i = 0; i < 8; i++)
			if (zsend(fd, s, r.id, i * 128 * 1024, 128 * 1024, i, ZC_SEND_NONBLOCK, NULL) &&
			    errno != EAGAIN)
				_exit(2);
		if (!kill9) {
			close(fd);
			close(s);
			_exit(0);
		}
		kill(getpid(), SIGSTOP);
		_exit(0);
	}
	waited = waitpid(pid, &status, WUNTRACED);
	held = module_pinned() > pinned0;
	inflight = debugfs_value("sends") > debugfs_value("completions");
	if (kill9 && waited == pid && WIFSTOPPED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status2, 0);
	}
	sh("ip -n zrx link set zrx0 up");
	CHECK(waited == pid, "child");
	if (kill9)
		CHECK(WIFSTOPPED(status), "child stopped");
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d", status);
	/* Killed, or its fd closed: yet the stack still holds the pages. */
	CHECK(held && inflight, "pages held %d, sends in flight %d", held, inflight);
	if (wait_released(pinned0))
		return 1;
	CHECK(finish_receiver(&rx, &res) == 0, "receiver");
	return 0;
}

int test_send_kill_mid_stream_releases(void)
{
	return stream_then_die(true);
}

int test_send_close_mid_stream_releases(void)
{
	return stream_then_die(false);
}

/* ---- bad inputs ------------------------------------------------------ */

int test_send_bad_inputs(void)
{
	unsigned char *buf = pattern(2 * PAGE, 8);
	struct zc_register r, r2;
	struct zc_eventfd ze = { 0 };
	struct zc_completion rec;
	int fd = open_dev(), other = open_dev(), udp, tcp, uds, pfd[2], closed;
	long long sends0;
	struct zc_send s;

	CHECK(fd >= 0 && other >= 0 && buf, "setup");
	CHECK(reg(fd, buf + 8, PAGE, 0, 0, &r) == 0, "register");
	CHECK(reg(other, buf, PAGE, 0, 0, &r2) == 0, "register on another fd");
	udp = connect_to(SOCK_DGRAM, DUMMY_PEER, 9);
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	uds = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK(udp >= 0 && tcp >= 0 && uds >= 0 && pipe(pfd) == 0, "sockets");
	closed = dup(udp);
	close(closed);
	sends0 = debugfs_value("sends");

#define SEND(sock, region, off, len, flags) zsend(fd, sock, region, off, len, 1, flags, NULL)
	CHECK_ERRNO(SEND(-1, r.id, 0, 1, 0), EBADF, "fd -1");
	CHECK_ERRNO(SEND(closed, r.id, 0, 1, 0), EBADF, "closed fd");
	CHECK_ERRNO(SEND(pfd[0], r.id, 0, 1, 0), ENOTSOCK, "a pipe");
	CHECK_ERRNO(SEND(fd, r.id, 0, 1, 0), ENOTSOCK, "the zcopy fd itself");
	CHECK_ERRNO(SEND(uds, r.id, 0, 1, 0), EOPNOTSUPP, "an AF_UNIX socket");
	CHECK_ERRNO(SEND(udp, r2.id, 0, 1, 0), ENOENT, "a region of another fd");
	CHECK_ERRNO(SEND(udp, 0, 0, 1, 0), ENOENT, "region 0");
	CHECK_ERRNO(SEND(udp, r.id, 0, 0, 0), EINVAL, "zero length");
	CHECK_ERRNO(SEND(udp, r.id, 1, PAGE, 0), EINVAL, "one byte past the end");
	CHECK_ERRNO(SEND(udp, r.id, PAGE, 1, 0), EINVAL, "offset at the end");
	CHECK_ERRNO(SEND(udp, r.id, ~0ULL, 2, 0), EOVERFLOW, "offset + length wraps");
	CHECK_ERRNO(SEND(udp, r.id, 0, 1, 1U << 7), EINVAL, "unknown flag");
	CHECK_ERRNO(SEND(tcp, r.id, 0, 1, 0), EPIPE, "unconnected TCP socket");
	s = (struct zc_send){ .fd = udp, .region = r.id, .len = 1, .reserved = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND, &s), EINVAL, "reserved field");
	s = (struct zc_send){ .fd = udp, .region = r.id, .len = 1, .sent = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND, &s), EINVAL, "sent not zero");
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SEND, (void *)8), EFAULT, "bad argument pointer");
	/* A datagram larger than UDP allows. */
	CHECK(reg(fd, map_anon(80 * 1024), 80 * 1024, 0, 0, &r2) == 0, "register 80 KiB");
	CHECK_ERRNO(SEND(udp, r2.id, 0, 70000, 0), EMSGSIZE, "70000-byte datagram");
	CHECK(debugfs_value("sends") == sends0, "failed sends were counted");

	/* Reading records. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	CHECK_ERRNO(read(fd, &rec, sizeof(rec) - 1), EINVAL, "read smaller than a record");
	CHECK_ERRNO(read(fd, &rec, sizeof(rec)), EAGAIN, "read: failed sends leave no record");
	ze.fd = pfd[0];
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze), EINVAL, "a pipe as eventfd");
	ze.fd = closed;
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze), EBADF, "a closed eventfd");
	ze.fd = -5;
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze), EBADF, "fd -5");
	ze = (struct zc_eventfd){ .fd = -1, .reserved = 1 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_SET_EVENTFD, &ze), EINVAL, "reserved field");
	/* Failed sends hold nothing once the call returns. */
	CHECK(unreg(fd, r.id) == 0, "unregister right after the failed sends");
	close(udp);
	close(tcp);
	close(uds);
	close(pfd[0]);
	close(pfd[1]);
	close(other);
	close(fd);
	return 0;
}

/* ---- raw transmit ---------------------------------------------------- */

static uint16_t ip_csum(const void *p, size_t n)
{
	const uint16_t *w = p;
	uint32_t sum = 0;

	for (; n > 1; n -= 2)
		sum += *w++;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct frame_hdr {
	struct ether_header eth;
	struct iphdr ip;
	struct udphdr udp;
} __attribute__((packed));

static void build_hdr(struct frame_hdr *h, const unsigned char dst[6], const unsigned char src[6],
		      int port, size_t payload)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->eth.ether_dhost, dst, 6);
	memcpy(h->eth.ether_shost, src, 6);
	h->eth.ether_type = htons(ETHERTYPE_IP);
	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.tot_len = htons(sizeof(h->ip) + sizeof(h->udp) + payload);
	inet_pton(AF_INET, WIRE_TX, &h->ip.saddr);
	inet_pton(AF_INET, WIRE_RX, &h->ip.daddr);
	h->ip.check = ip_csum(&h->ip, sizeof(h->ip));
	h->udp.source = htons(port);
	h->udp.dest = htons(port);
	h->udp.len = htons(sizeof(h->udp) + payload);
	h->udp.check = 0; /* none: allowed for UDP over IPv4 */
}

static int local_mac(const char *ifname, unsigned char mac[6])
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0), ret;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ret = ioctl(s, SIOCGIFHWADDR, &ifr);
	close(s);
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return ret;
}

static int xmit(int fd, int ifindex, __u32 region, const void *hdr, __u32 hdr_len, __u64 off,
		__u64 len, __u64 tag)
{
	struct zc_xmit x = {
		.ifindex = ifindex, .region = region, .hdr_len = hdr_len,
		.hdr = (unsigned long)hdr, .offset = off, .len = len, .tag = tag,
	};

	return ioctl(fd, ZC_IOC_XMIT, &x);
}

int test_xmit_raw_frames(void)
{
	enum { N = 8, LEN = 1400 };
	size_t size = 4 * PAGE;
	unsigned char *buf = pattern(size, 9), src[6];
	struct zc_completion recs[N];
	struct frame_hdr h;
	struct zc_register r;
	struct receiver rx;
	struct result res;
	uint64_t hash = FNV0;
	int fd = open_dev(), tx = ifindex_of("ztx0"), i;

	CHECK(fd >= 0 && buf && tx > 0, "setup");
	CHECK(reg(fd, buf, size, 0, tx, &r) == 0, "register");
	CHECK(local_mac("ztx0", src) == 0, "ztx0 MAC");
	CHECK(start_receiver(&rx, SOCK_DGRAM, WIRE_RX, 7700, false, N) == 0, "receiver");
	build_hdr(&h, rx.mac, src, 7700, LEN);
	for (i = 0; i < N; i++) {
		/* Payloads that cross page boundaries: 4000 + 1400 > 4096. */
		size_t off = 4000 - 300 * i;

		CHECK(xmit(fd, tx, r.id, &h, sizeof(h), off, LEN, 500 + i) == 0, "xmit %d", i);
		hash = fnv(hash, buf + off, LEN);
	}
	CHECK(read_completions(fd, recs, N) == N, "records");
	for (i = 0; i < N; i++)
		CHECK(recs[i].tag >= 500 && recs[i].tag < 500 + N && recs[i].bytes == LEN &&
			      !(recs[i].flags & ZC_COMPLETION_COPIED),
		      "record %d: tag %llu bytes %llu flags %#x", i, (unsigned long long)recs[i].tag,
		      (unsigned long long)recs[i].bytes, recs[i].flags);
	CHECK(finish_receiver(&rx, &res) == 0, "receiver");
	CHECK(res.datagrams == N && res.bytes == N * LEN && res.hash == hash,
	      "receiver got %llu datagrams, %llu bytes, %s", (unsigned long long)res.datagrams,
	      (unsigned long long)res.bytes, res.hash == hash ? "same bytes" : "different bytes");
	close(fd);
	munmap(buf, size);
	return 0;
}

static int xmit_unprivileged_child(void)
{
	unsigned char *buf = pattern(PAGE, 10), hdr[64] = { 0 };
	struct zc_register r;
	int fd = open_dev();

	CHECK(fd >= 0 && buf && reg(fd, buf, PAGE, 0, 0, &r) == 0, "setup");
	CHECK(drop_cap(CAP_NET_RAW) == 0, "drop CAP_NET_RAW");
	CHECK_ERRNO(xmit(fd, ifindex_of("zd0"), r.id, hdr, 42, 0, 100, 1), EPERM,
		    "xmit without CAP_NET_RAW");
	return 0;
}

int test_xmit_bad_inputs(void)
{
	unsigned char *buf = pattern(20 * PAGE, 11), hdr[ZC_XMIT_MAX_HDR + 1] = { 0 };
	struct zc_register r;
	struct zc_xmit x;
	int fd = open_dev(), d = ifindex_of("zd0"), tx = ifindex_of("ztx0");
	long long sends0 = debugfs_value("sends");

	CHECK(fd >= 0 && buf && d > 0 && tx > 0, "setup");
	CHECK(reg(fd, buf, 20 * PAGE, 0, 0, &r) == 0, "register");
	CHECK_ERRNO(xmit(fd, d, r.id, hdr, 0, 0, 100, 1), EINVAL, "no header");
	CHECK_ERRNO(xmit(fd, d, r.id, hdr, ZC_XMIT_MAX_HDR + 1, 0, 100, 1), EINVAL,
		    "header too long");
	CHECK_ERRNO(xmit(fd, tx, r.id, hdr, 13, 0, 100, 1), EINVAL,
		    "header shorter than Ethernet's");
	CHECK_ERRNO(xmit(fd, tx, r.id, (void *)8, 42, 0, 100, 1), EFAULT, "bad header pointer");
	CHECK_ERRNO(xmit(fd, 1000000, r.id, hdr, 42, 0, 100, 1), ENODEV, "no such interface");
	CHECK_ERRNO(xmit(fd, tx, r.id + 1000, hdr, 42, 0, 100, 1), ENOENT, "no such region");
	CHECK_ERRNO(xmit(fd, tx, r.id, hdr, 42, 0, 0, 1), EINVAL, "empty payload");
	CHECK_ERRNO(xmit(fd, tx, r.id, hdr, 42, 0, 20 * PAGE + 1, 1), EINVAL, "past the region");
	CHECK_ERRNO(xmit(fd, tx, r.id, hdr, 42, 0, 1500, 1), EMSGSIZE, "beyond the MTU");
	/* A large MTU, so that only the fragment count limits the frame. */
	sh("ip link set zd0 mtu 131072");
	CHECK_ERRNO(xmit(fd, d, r.id, hdr, 14, 1, 17 * PAGE, 1), EMSGSIZE,
		    "18 pages, more than an skb has fragments");
	CHECK(xmit(fd, d, r.id, hdr, 14, 0, 17 * PAGE, 77) == 0, "17 pages");
	sh("ip link set zd0 mtu 1500");
	{
		struct zc_completion rec;

		CHECK(read_completions(fd, &rec, 1) == 1 && rec.tag == 77 &&
			      rec.bytes == 17 * PAGE && rec.flags == 0,
		      "record of the 17-page frame: tag %llu flags %#x",
		      (unsigned long long)rec.tag, rec.flags);
	}
	x = (struct zc_xmit){ .ifindex = tx, .flags = 1, .region = r.id, .hdr_len = 42,
			      .hdr = (unsigned long)hdr, .len = 10 };
	CHECK_ERRNO(ioctl(fd, ZC_IOC_XMIT, &x), EINVAL, "flags");
	sh("ip link set zd0 down");
	CHECK_ERRNO(xmit(fd, d, r.id, hdr, 14, 0, 100, 1), ENETDOWN, "interface down");
	sh("ip link set zd0 up");
	CHECK(debugfs_value("sends") == sends0 + 1, "failed transmits were counted");
	CHECK(run_in_child(xmit_unprivileged_child) == 0, "unprivileged");
	close(fd);
	return 0;
}

/* ---- the samples and the benchmark's smoke run -------------------------- */

/* Runs sample `path` against a receiver over veth; the receiver must get
 * the sample's pattern: byte i = (i * 7 + (i >> 8)) & 0xff. */
static int run_sample(const char *path, const char *args_fmt, int port)
{
	const size_t len = 300000;
	unsigned char *want = malloc(len);
	struct receiver rx;
	struct result res;
	char cmd[4096], args[128];
	size_t i;
	int rc;

	CHECK(want, "malloc");
	for (i = 0; i < len; i++)
		want[i] = (unsigned char)(i * 7 + (i >> 8));
	CHECK(access(path, X_OK) == 0, "%s is not built", path);
	CHECK(start_receiver(&rx, SOCK_STREAM, VETH_RX, port, false, 0) == 0, "receiver");
	snprintf(args, sizeof(args), args_fmt, VETH_RX, port);
	snprintf(cmd, sizeof(cmd), "%s %s %zu", path, args, len);
	rc = system(cmd);
	CHECK(finish_receiver(&rx, &res) == 0, "receiver");
	CHECK(rc == 0, "%s exited with %d", cmd, rc);
	CHECK(res.bytes == len && res.hash == fnv(FNV0, want, len),
	      "%s: receiver got %llu bytes, %s", path, (unsigned long long)res.bytes,
	      res.hash == fnv(FNV0, want, len) ? "same" : "different");
	free(want);
	return 0;
}

int test_samples_send(void)
{
	const char *h = getenv("ZCOPY_HARNESS");
	char c[4096], rust[4096];

	CHECK(h, "ZCOPY_HARNESS is not set");
	snprintf(c, sizeof(c), "%s/../target/samples/zcopy_send", h);
	snprintf(rust, sizeof(rust), "%s/../target/samples/release/zcopy-send", h);
	if (run_sample(c, "%s %d", 8600) || run_sample(rust, "%s:%d", 8601))
		return 1;
	return 0;
}

/* Every method of the benchmark sends a few messages on every route, and
 * where there is a receiver it must get exactly the bytes sent (zcopyctl
 * fails otherwise). No timing is judged. */
int test_bench_smoke(void)
{
	return harness("bench.sh --sends 6 --reps 1 --sizes 4096,65536,1048576 >/dev/null");
}

/*
 * A socket opened non-blocking (O_NONBLOCK on its file, no ZC_SEND_NONBLOCK)
 * does not block, as sendmsg(2) derives MSG_DONTWAIT from the file: with no
 * ACK coming back (the receiving NIC down) and a small send buffer, a send of
 * more than fits returns short or EAGAIN at once. A child sends, so that a
 * send that blocks is caught (killed after a minute) rather than hanging the
 * suite.
 */
int test_send_nonblocking_socket_does_not_block(void)
{
	enum { LEN = 1024 * 1024 };
	unsigned char *buf = pattern(LEN, 19);
	struct zc_register r;
	struct receiver rx;
	struct result res;
	int fd = open_dev(), s, sndbuf = 64 * 1024, status = 0, i;
	pid_t pid;

	CHECK(fd >= 0 && buf, "setup");
	CHECK(reg(fd, buf, LEN, 0, 0, &r) == 0, "register");
	CHECK(start_receiver(&rx, SOCK_STREAM, WIRE_RX, 7560, false, 0) == 0, "receiver");
	s = connect_to(SOCK_STREAM, WIRE_RX, 7560);
	CHECK(s >= 0, "connect");
	CHECK(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0, "SO_SNDBUF");
	CHECK(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) == 0, "O_NONBLOCK");
	sh("ip -n zrx link set zrx0 down");
	pid = fork();
	if (pid == 0) {
		__u64 sent = 0;
		int ret = zsend(fd, s, r.id, 0, LEN, 900, 0, &sent);

		_exit((ret == 0 && sent > 0 && sent < LEN) || (ret < 0 && errno == EAGAIN) ? 0 : 1);
	}
	for (i = 0; pid > 0 && i < 600 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(100 * 1000);
	if (pid > 0 && i == 600) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	sh("ip -n zrx link set zrx0 up");
	close(s);
	finish_receiver(&rx, &res);
	CHECK(pid > 0, "fork");
	CHECK(i < 600, "the send blocked on a non-blocking socket");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "not a short send nor EAGAIN (status %#x)", status);
	close(fd);
	munmap(buf, LEN);
	return 0;
}
