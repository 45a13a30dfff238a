/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the integration suite's files share: the check macros and the
 * helpers defined in zcopy_itest.c.
 */
#ifndef ZCOPY_ITEST_H
#define ZCOPY_ITEST_H

#include <errno.h>
#include <stddef.h>
#include <linux/zcopy.h>

#define DEV "/dev/zcopy"
#define PAGE 4096UL

/* A test returns 0 on pass, 1 on fail, -1 to skip; fail() says why. */
typedef int (*test_fn)(void);

/* Prints "# <message> (errno ...)" and returns 1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond, ...)                      \
	do {                                  \
		if (!(cond))                  \
			return fail(__VA_ARGS__); \
	} while (0)

/* A call expected to fail with errno `err`. */
#define CHECK_ERRNO(call, err, what)                                          \
	do {                                                                  \
		errno = 0;                                                    \
		long __r = (call);                                            \
		CHECK(__r == -1 && errno == (err), "%s: returned %ld, want %s", \
		      what, __r, #err);                                       \
	} while (0)

int open_dev(void);
/* The number after "KEY<sep>" on a line of PATH, or -1. */
long long file_value(const char *path, const char *key, char sep);
struct zc_stats get_stats(int fd);
/* The module's pinned pages now, through a fresh fd. */
long long module_pinned(void);
/* A "name N" line of /sys/kernel/debug/zcopy/stats, or -1. */
long long debugfs_value(const char *name);
int reg(int fd, const void *addr, unsigned long len, __u32 flags, int ifindex,
	struct zc_register *out);
int unreg(int fd, __u32 id);
int region_pages(int fd, __u32 id, __u32 first, __u32 n, struct zc_page_info *pages,
		 struct zc_region_info *out);
/* An anonymous mapping filled with 0x5a, or NULL. */
void *map_anon(size_t len);
/* The ifindex (and PCI address) of the interface driven by `driver`, or 0. */
int iface_by_driver(const char *driver, char *pci, size_t pcilen);
int write_file(const char *path, const char *text);
/* Drops `cap` from this process's effective and permitted sets. */
int drop_cap(int cap);
/* Runs fn in a child process; 0 if it returned 0. */
int run_in_child(int (*fn)(void));
long status_kb(const char *key);

/* send.c: the network of tools/harness/net.sh, and its receivers */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_RX "10.99.1.2"	/* behind the e1000e -> hub -> virtio-net wire */
#define VETH_RX "10.99.2.2"	/* behind the veth pair */
#define DUMMY_PEER "10.99.3.2"	/* out of the dummy device; nobody there */
#define MiB (1024UL * 1024)
#define FNV0 0xcbf29ce484222325ULL

uint64_t fnv(uint64_t h, const unsigned char *p, size_t n);
struct result {
	uint64_t bytes;
	uint64_t hash;
	uint64_t datagrams;
	unsigned char mac[6];
};

struct receiver {
	pid_t pid;
	int result;
	unsigned char mac[6];	/* zrx0's address, for raw frames */
};

/*
 * Starts a receiver of `type` (SOCK_STREAM: until EOF; SOCK_DGRAM: until
 * `datagrams` datagrams) on ip:port, in namespace zrx unless `local`.
 * Returns once it listens.
 */
int start_receiver(struct receiver *r, int type, const char *ip, int port, bool local,
		   unsigned long datagrams);
/* Waits for the receiver's result. */
int finish_receiver(struct receiver *r, struct result *out);
int connect_to(int type, const char *ip, int port);
/* Reads `n` completion records (blocking, 120 s at most); returns how many. */
int read_completions(int fd, struct zc_completion *recs, int n);
/* system(cmd), saying so in the output if it fails. */
void sh(const char *cmd);
/* Waits up to 60 s for the module's pinned pages to come back to pinned0
 * and its outstanding sends to 0. */
int wait_released(long long pinned0);
/* Runs tools/harness/NAME (ZCOPY_HARNESS is that directory). */
int harness(const char *name);

int test_network_setup(void);
int test_send_bad_inputs(void);
int test_send_tcp_wire(void);
int test_send_huge_pages_over_the_wire(void);
int test_send_tcp_veth(void);
int test_send_local_is_copied(void);
int test_send_udp_dummy_not_copied(void);
int test_send_udp_wire(void);
int test_send_udp_veth(void);
int test_send_unregister_busy_until_complete(void);
int test_send_10000_from_threads_with_eventfd(void);
int test_send_queue_full_is_enobufs(void);
int test_send_batch_bad_inputs(void);
int test_send_batch_partial_acceptance(void);
int test_send_batch_refusal_consumes_nothing(void);
int test_send_batch_10000_from_threads(void);
int test_send_batch_tcp_veth(void);
int test_send_batch_stops_at_short_stream_send(void);
int test_send_nonblocking_socket_does_not_block(void);
int test_send_kill_mid_stream_releases(void);
int test_send_close_mid_stream_releases(void);
int test_xmit_raw_frames(void);
int test_xmit_bad_inputs(void);
int test_samples_send(void);
int test_bench_smoke(void);

/* sendfile.c */
int test_sendfile_setup(void);
int test_sendfile_bad_inputs(void);
int test_sendfile_residency_needs_write_access(void);
int test_sendfile_checks_and_notifies_as_sendfile(void);
int test_sendfile_refuses_pseudo_files(void);
int test_sendfile_from_ramfs(void);
int test_sendfile_sizes_over_veth(void);
int test_sendfile_over_the_wire(void);
int test_sendfile_misses_then_hits(void);
int test_sendfile_pages_held_in_flight(void);
int test_sendfile_truncate_during_stream(void);
int test_sendfile_kill_mid_stream_releases(void);

/* dma.c */
int test_dma_engine_reads_through_iovas(void);
int test_dma_engine_huge_and_read_only(void);
int test_dma_engine_bad_inputs(void);
int test_dma_engine_read_after_unmap_faults_while_pinned(void);
int test_dma_engine_unbind_unmaps_and_absent_is_enodev(void);

/* failnth.c */
int test_fail_nth_sweep_every_ioctl(void);

#endif /* ZCOPY_ITEST_H */
