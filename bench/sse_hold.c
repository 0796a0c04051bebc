/*
 * sse_hold.c - open many idle Server-Sent-Events connections and keep them,
 * for the memory figure of make bench and the background clients of make
 * soak.
 *
 *   sse_hold PORT TOKENS_FILE N [SECONDS]
 *
 * Opens N connections to 127.0.0.1:PORT, each `GET /api/events?access_token=`
 * with the tokens of TOKENS_FILE (one per line) taken round-robin, waits for
 * every response head, prints `OPEN <ok> FAILED <bad>` and then keeps the
 * connections (reading and discarding heartbeats and events) until SECONDS
 * have passed (0 = until SIGTERM).  At the end it
 * prints `CLOSED_BY_SERVER <n> BYTES <n>`: a soak counts a server that drops
 * its clients as a failure.  Raises its own RLIMIT_NOFILE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 500          /* connects in flight at once */
#define HEAD_TIMEOUT_S 60

struct sconn {
	int fd;
	int state;          /* 0 connecting, 1 sent, 2 open, 3 failed/closed */
	size_t sent;
	char *req;
	size_t req_len;
	char head[16];
	size_t head_len;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char **read_tokens(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char line[4096], **v = NULL;
	size_t cap = 0;

	*n = 0;
	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				abort();
		}
		v[(*n)++] = strdup(line);
	}
	fclose(f);
	return v;
}

static int start_connect(struct sconn *c, const struct sockaddr_in *sa, int ep, int idx)
{
	struct epoll_event ev = {0};

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
	ev.data.u32 = (uint32_t)idx;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {0};
	struct rlimit rl;
	struct epoll_event evs[1024];
	struct sconn *cs;
	char **toks, buf[65536];
	size_t ntok;
	long n, ok = 0, bad = 0, started = 0, pending = 0, closed_by_server = 0;
	long long bytes = 0;
	double seconds = 0, t_end, deadline;
	int ep;

	if (argc < 4) {
		fprintf(stderr, "usage: sse_hold PORT TOKENS_FILE N [SECONDS]\n");
		return 2;
	}
	n = atol(argv[3]);
	if (argc > 4)
		seconds = atof(argv[4]);
	toks = read_tokens(argv[2], &ntok);
	if (toks == NULL || ntok == 0 || n <= 0) {
		fprintf(stderr, "sse_hold: no tokens in %s or bad N\n", argv[2]);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = (rlim_t)n + 64;

		if (rl.rlim_cur < want) {
			rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cs = calloc((size_t)n, sizeof(*cs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (cs == NULL || ep < 0)
		return 1;
	for (long i = 0; i < n; i++) {
		const char *t = toks[i % (long)ntok];
		int len = snprintf(NULL, 0, "GET /api/events?access_token=%s HTTP/1.1\r\n"
				   "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n", t);

		cs[i].fd = -1;
		cs[i].req = malloc((size_t)len + 1);
		snprintf(cs[i].req, (size_t)len + 1, "GET /api/events?access_token=%s HTTP/1.1\r\n"
			 "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n", t);
		cs[i].req_len = (size_t)len;
	}

	/* Phase 1: open all, BATCH in flight, until every head arrived. */
	deadline = mono() + HEAD_TIMEOUT_S;
	while ((ok + bad < n) && mono() < deadline && !stop) {
		int k;

		while (pending < BATCH && started < n) {
			if (start_connect(&cs[started], &sa, ep, (int)started) != 0) {
				cs[started].state = 3;
				bad++;
			} else {
				pending++;
			}
			started++;
		}
		k = epoll_wait(ep, evs, 1024, 200);
		for (int j = 0; j < k; j++) {
			struct sconn *c = &cs[evs[j].data.u32];

			if (c->state == 0 || c->state == 1) {
				if ((evs[j].events & EPOLLOUT) && c->sent < c->req_len) {
					ssize_t w = write(c->fd, c->req + c->sent, c->req_len - c->sent);

					if (w > 0)
						c->sent += (size_t)w;
					c->state = 1;
					if (c->sent == c->req_len) {
						struct epoll_event ev = {0};

						ev.events = EPOLLIN | EPOLLRDHUP;
						ev.data.u32 = evs[j].data.u32;
						epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					}
				}
				if (evs[j].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
					ssize_t r = read(c->fd, buf, sizeof(buf));

					if (r <= 0) {
						c->state = 3;
						bad++;
						pending--;
						close(c->fd);
						c->fd = -1;
						continue;
					}
					bytes += r;
					if (c->head_len < sizeof(c->head)) {
						size_t m = (size_t)r < sizeof(c->head) - c->head_len ?
							   (size_t)r : sizeof(c->head) - c->head_len;

						memcpy(c->head + c->head_len, buf, m);
						c->head_len += m;
					}
					if (c->head_len >= 12) {
						pending--;
						if (memcmp(c->head + 9, "200", 3) == 0) {
							c->state = 2;
							ok++;
						} else {
							c->state = 3;
							bad++;
							close(c->fd);
							c->fd = -1;
						}
					}
				}
			} else if (c->state == 2) {
				ssize_t r = read(c->fd, buf, sizeof(buf));

				if (r > 0)
					bytes += r;
			}
		}
	}
	printf("OPEN %ld FAILED %ld\n", ok, n - ok);
	fflush(stdout);

	/* Phase 2: hold. */
	t_end = seconds > 0 ? mono() + seconds : 0;
	while (!stop && (seconds <= 0 || mono() < t_end)) {
		int k = epoll_wait(ep, evs, 1024, 500);

		for (int j = 0; j < k; j++) {
			struct sconn *c = &cs[evs[j].data.u32];
			ssize_t r;

			if (c->fd < 0)
				continue;
			r = read(c->fd, buf, sizeof(buf));
			if (r > 0) {
				bytes += r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				if (c->state == 2)
					closed_by_server++;
				c->state = 3;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
			}
		}
	}
	printf("CLOSED_BY_SERVER %ld BYTES %lld\n", closed_by_server, bytes);
	fflush(stdout);
	for (long i = 0; i < n; i++) {
		if (cs[i].fd >= 0)
			close(cs[i].fd);
		free(cs[i].req);
	}
	for (size_t i = 0; i < ntok; i++)
		free(toks[i]);
	free(toks);
	free(cs);
	close(ep);
	return 0;
}
