/* http.c - the tiny HTTP/1.0 server behind sheep --http: one thread, one request per connection,
 * GET and HEAD only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "sheep/http/http.h"
#include "sheep/sheep.h"

#define HTTP_REQ_MAX	   8192
#define HTTP_IO_TIMEOUT_MS 5000

struct sheep_http {
	struct sheep *s;
	int lfd;
	int port;
	int stop_pipe[2];
	pthread_t thread;
};

/* Listen on addr:port (addr NULL: every address); the fd or -errno. */
static int http_listen(const char *addr, int port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int r = getaddrinfo(addr, ps, &hints, &res);
	if (r)
		return -EADDRNOTAVAIL;
	int fd = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (s < 0) {
			fd = -errno;
			continue;
		}
		int one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 16) == 0) {
			fd = s;
			break;
		}
		fd = -errno;
		close(s);
	}
	freeaddrinfo(res);
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, int code, const char *reason, const char *type, const char *body,
		    size_t len, bool head)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
			 "Connection: close\r\n\r\n",
			 code, reason, type, len);
	send_all(fd, hdr, (size_t)n);
	if (!head)
		send_all(fd, body, len);
}

/* Read the request head (up to the blank line) within one deadline for
 * the whole head, so a client trickling bytes cannot hold the one server
 * thread. Returns its length, or -1 for a client that is too slow, too
 * long or gone. */
static int read_head(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	uint64_t deadline = sd_now_ns() + (uint64_t)HTTP_IO_TIMEOUT_MS * 1000000;
	while (got < cap - 1) {
		uint64_t now = sd_now_ns();
		if (now >= deadline)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) <= 0)
			return -1;
		ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return (int)got;
	}
	return -1;
}

/* Serve one connection: parse "METHOD PATH VERSION", route, answer. */
static void serve(struct sheep_http *h, int fd)
{
	char req[HTTP_REQ_MAX];
	if (read_head(fd, req, sizeof(req)) < 0) {
		static const char msg[] = "bad or incomplete request\n";
		respond(fd, 400, "Bad Request", "text/plain", msg, sizeof(msg) - 1, false);
		return;
	}
	char method[8], path[256];
	if (sscanf(req, "%7s %255s", method, path) != 2) {
		static const char msg[] = "bad request line\n";
		respond(fd, 400, "Bad Request", "text/plain", msg, sizeof(msg) - 1, false);
		return;
	}
	bool head = !strcmp(method, "HEAD");
	if (!head && strcmp(method, "GET")) {
		static const char msg[] = "only GET and HEAD: this server is read-only\n";
		respond(fd, 405, "Method Not Allowed", "text/plain", msg, sizeof(msg) - 1, false);
		return;
	}
	path[strcspn(path, "?#")] = '\0';
	if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
		respond(fd, 200, "OK", "text/html; charset=utf-8", sheep_dashboard_html,
			strlen(sheep_dashboard_html), head);
		return;
	}
	char *body = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);
	if (!f) {
		static const char msg[] = "out of memory\n";
		respond(fd, 500, "Internal Server Error", "text/plain", msg, sizeof(msg) - 1, head);
		return;
	}
	const char *type = NULL;
	if (!strcmp(path, "/metrics")) {
		sheep_http_metrics(h->s, f);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (!strcmp(path, "/api/status")) {
		sheep_http_status(h->s, h->port, f);
		type = "application/json";
	}
	fclose(f);
	if (type)
		respond(fd, 200, "OK", type, body, len, head);
	else {
		static const char msg[] = "not found: try /, /metrics or /api/status\n";
		respond(fd, 404, "Not Found", "text/plain", msg, sizeof(msg) - 1, head);
	}
	free(body);
}

static void *http_main(void *arg)
{
	struct sheep_http *h = arg;
	pthread_setname_np(pthread_self(), "sd_http");
	for (;;) {
		struct pollfd p[2] = {{.fd = h->lfd, .events = POLLIN},
				      {.fd = h->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			sd_err("http: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = HTTP_IO_TIMEOUT_MS / 1000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve(h, fd);
		close(fd);
	}
	return NULL;
}

int sheep_http_start(struct sheep *s, const char *bind_addr, int port)
{
	int lfd = http_listen(bind_addr, port);
	if (lfd < 0) {
		sd_warn("http: cannot listen on port %d: %s; this sheep runs without HTTP "
			"(no /metrics, no dashboard)",
			port, strerror(-lfd));
		fprintf(stderr,
			"sheep: warning: http port %d: %s; running without HTTP (metrics, "
			"dashboard)\n",
			port, strerror(-lfd));
		return 0;
	}
	struct sheep_http *h = calloc(1, sizeof(*h));
	if (!h) {
		close(lfd);
		return -ENOMEM;
	}
	h->s = s;
	h->lfd = lfd;
	h->port = port;
	if (pipe2(h->stop_pipe, O_CLOEXEC) < 0) {
		int err = -errno;
		close(lfd);
		free(h);
		return err;
	}
	int r = pthread_create(&h->thread, NULL, http_main, h);
	if (r) {
		close(lfd);
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
		free(h);
		return -r;
	}
	s->http = h;
	sd_notice("http: serving /, /metrics and /api/status on port %d", port);
	return 0;
}

void sheep_http_stop(struct sheep *s)
{
	struct sheep_http *h = s->http;
	if (!h)
		return;
	if (write(h->stop_pipe[1], "x", 1) < 0)
		sd_warn("http: cannot wake the server thread: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	close(h->lfd);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	free(h);
	s->http = NULL;
}
