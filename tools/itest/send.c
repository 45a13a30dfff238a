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
