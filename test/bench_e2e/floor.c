/*
 * The floor of bench-e2e's CPU figures: a client that does nothing with a watch
 * but receive it.  It opens one pods watch on benchsrv (the same events, in the
 * same encoding, as the controller's watch gets), waits in epoll_wait and reads
 * each time the socket is readable, as any event-loop client must.  Whatever
 * CPU it spends per event is the cost of being woken and handed the bytes on
 * this machine, which no client can go below without taking several events per
 * wake-up.
 *
 * Usage: floor PORT [json]   prints "READY" once the watch is open; on a line
 * "stats" on stdin prints "stats {wakeups, reads, bytes}"; ends at end of input.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

int main(int argc, char **argv)
{
	static char buf[16384];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev[2];
	unsigned long long wakeups = 0, reads = 0, bytes = 0;
	char req[512];
	int fd, ep, one = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: floor PORT [json]\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("floor: connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(req, sizeof(req),
		 "GET /api/v1/pods?watch=1&allowWatchBookmarks=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		 "Accept: %s\r\n\r\n",
		 argc > 2 && strcmp(argv[2], "json") == 0 ? "application/json"
							  : "application/vnd.kubernetes.protobuf, application/json");
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		perror("floor: write");
		return 1;
	}
	ep = epoll_create1(0);
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.fd = fd };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev[0]);
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.fd = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev[0]);
	printf("READY\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, ev, 2, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("floor: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == 0) {
				char line[64];

				if (!fgets(line, sizeof(line), stdin))
					return 0;
				printf("stats {\"wakeups\": %llu, \"reads\": %llu, \"bytes\": %llu}\n", wakeups, reads,
				       bytes);
				fflush(stdout);
				continue;
			}
			wakeups++;
			/* Read until the socket is empty, as libcurl does (one read, then a
			 * zero-timeout poll to see whether more is pending). */
			for (;;) {
				ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

				reads++;
				if (r > 0) {
					bytes += (unsigned long long)r;
					continue;
				}
				if (r == 0) {
					fprintf(stderr, "floor: the server ended the watch\n");
					return 1;
				}
				if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
					perror("floor: recv");
					return 1;
				}
				break;
			}
		}
	}
}
