/* A drop flood as a new user would write it: UDP datagrams sent with
 * sendmmsg(2) in batches of 64, for a fixed time, not pinned to a CPU.
 *
 * Usage: flood_mmsg SECONDS DST [PORT]. Prints the number of datagrams sent.
 * bench/run.py compiles it with the machine's C compiler and runs it inside a
 * private namespace: to a closed port (NO_SOCKET) or across a veth pair into
 * an nft drop rule (NETFILTER_DROP).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: flood_mmsg SECONDS DST [PORT]\n");
		return 2;
	}
	double seconds = atof(argv[1]);
	struct sockaddr_in dst = { .sin_family = AF_INET,
				   .sin_port = htons(argc > 3 ? atoi(argv[3]) : 9) };
	if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
		fprintf(stderr, "flood_mmsg: bad address %s\n", argv[2]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0); /* unconnected: no ICMP errors back */
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	static char payload[] = "droptrace-bench";
	struct iovec iov = { .iov_base = payload, .iov_len = sizeof(payload) - 1 };
	struct mmsghdr msgs[BATCH];

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_name = &dst;
		msgs[i].msg_hdr.msg_namelen = sizeof(dst);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	unsigned long long sent = 0;
	double deadline = now() + seconds;
	while (now() < deadline) {
		for (int i = 0; i < 16; i++) {
			int n = sendmmsg(fd, msgs, BATCH, 0);
			if (n > 0)
				sent += n;
		}
	}
	printf("%llu\n", sent);
	return 0;
}
