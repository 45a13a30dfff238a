// SPDX-License-Identifier: GPL-2.0
/*
 * The shortest complete use of zcopy, in C: register a buffer, send it
 * zero-copy over TCP, wait for its completion record, unregister.
 *
 *   zcopy_send ADDRESS PORT [BYTES]
 *
 * The buffer holds byte i = (i * 7 + (i >> 8)) & 0xff, so a receiver can
 * check what arrived.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/zcopy.h>

int main(int argc, char **argv)
{
	size_t len = argc > 3 ? strtoul(argv[3], NULL, 0) : 1 << 20, i;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct zc_register reg = { 0 };
	struct zc_unregister unreg = { 0 };
	struct zc_send send = { 0 };
	struct zc_completion done;
	unsigned char *buf;
	int zc, sock;

	if (argc < 3 || !len || inet_pton(AF_INET, argv[1], &peer.sin_addr) != 1) {
		fprintf(stderr, "usage: %s ADDRESS PORT [BYTES]\n", argv[0]);
		return 2;
	}
	peer.sin_port = htons(atoi(argv[2]));
	buf = malloc(len);
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + (i >> 8));

	zc = open("/dev/zcopy", O_RDWR | O_CLOEXEC);
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (zc < 0 || sock < 0 || connect(sock, (struct sockaddr *)&peer, sizeof(peer))) {
		perror("open /dev/zcopy, or connect");
		return 1;
	}

	/* Pin the buffer once; every send from it is by reference. */
	reg.addr = (unsigned long)buf;
	reg.len = len;
	reg.flags = ZC_REGISTER_READONLY;
	if (ioctl(zc, ZC_IOC_REGISTER, &reg)) {
		perror("ZC_IOC_REGISTER");
		return 1;
	}

	/* A blocking send of the whole buffer; `sent` says what was taken. */
	send.fd = sock;
	send.region = reg.id;
	send.len = len;
	send.tag = 42;
	if (ioctl(zc, ZC_IOC_SEND, &send)) {
		perror("ZC_IOC_SEND");
		return 1;
	}

	/* The buffer may be reused once its record arrives. */
	if (read(zc, &done, sizeof(done)) != sizeof(done)) {
		perror("read completion");
		return 1;
	}
	printf("sent %llu bytes; completion: tag %llu, %llu bytes, %s\n",
	       (unsigned long long)send.sent, (unsigned long long)done.tag,
	       (unsigned long long)done.bytes,
	       done.flags & ZC_COMPLETION_COPIED ? "copied by the stack" : "sent by reference");

	unreg.id = reg.id;
	if (ioctl(zc, ZC_IOC_UNREGISTER, &unreg)) {
		perror("ZC_IOC_UNREGISTER");
		return 1;
	}
	close(sock);
	close(zc);
	free(buf);
	return done.tag == 42 && done.bytes == send.sent && send.sent == len ? 0 : 1;
}
