/* fuzz_nbd.c - fuzz target: the bytes an NBD client sends (handshake, options, then transmission
 * requests) to the export's protocol engine over an in-memory volume. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/log.h"
#include "sheep/nbd/nbd.h"
#include "tests/fuzz/fuzz.h"

#define VOL_SIZE (1u << 20)

/* One volume, "vol" (writable) and "vol:ro", kept in memory. */
struct nbd_export {
	bool ro;
};

static char vol[VOL_SIZE];
static pthread_mutex_t vol_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nbd_export ex_rw = {false}, ex_ro = {true};
static int port;

static int mem_open(void *arg, const char *name, bool probe, uint64_t owner,
		    struct nbd_export **out, struct nbd_export_info *info, char *msg, size_t msglen)
{
	if (strcmp(name, "vol") && strcmp(name, "vol:ro") && strcmp(name, "")) {
		snprintf(msg, msglen, "no export '%s'", name);
		return -ENOENT;
	}
	*out = strcmp(name, "vol:ro") ? &ex_rw : &ex_ro;
	info->size = VOL_SIZE;
	info->readonly = (*out)->ro;
	return 0;
}

static void mem_close(struct nbd_export *e)
{
}

/* The engine checks ranges against the size; these check again. */
static int in_range(uint32_t len, uint64_t off)
{
	return off <= VOL_SIZE && len <= VOL_SIZE - off ? 0 : -EINVAL;
}

static int mem_read(struct nbd_export *e, void *buf, uint32_t len, uint64_t off)
{
	if (in_range(len, off))
		abort(); /* the engine let an out-of-range request through */
	pthread_mutex_lock(&vol_mu);
	memcpy(buf, vol + off, len);
	pthread_mutex_unlock(&vol_mu);
	return 0;
}

static int mem_write(struct nbd_export *e, const void *buf, uint32_t len, uint64_t off)
{
	if (in_range(len, off) || e->ro)
		abort();
	pthread_mutex_lock(&vol_mu);
	memcpy(vol + off, buf, len);
	pthread_mutex_unlock(&vol_mu);
	return 0;
}

static int mem_zero(struct nbd_export *e, uint32_t len, uint64_t off, bool may_free)
{
	if (in_range(len, off) || e->ro)
		abort();
	pthread_mutex_lock(&vol_mu);
	memset(vol + off, 0, len);
	pthread_mutex_unlock(&vol_mu);
	return 0;
}

static int mem_trim(struct nbd_export *e, uint32_t len, uint64_t off)
{
	return mem_zero(e, len, off, true);
}

static int mem_block_status(struct nbd_export *e, uint32_t len, uint64_t off,
			    struct nbd_extent *ext, uint32_t max, uint32_t *n)
{
	if (in_range(len, off) || !max)
		abort();
	/* Two extents when the range allows: data, then a hole. */
	uint32_t first = len > 4096 ? len / 2 : len;
	ext[0] = (struct nbd_extent){.length = first, .flags = 0};
	*n = 1;
	if (first < len && max > 1) {
		ext[1] = (struct nbd_extent){.length = len - first, .flags = 3};
		*n = 2;
	}
	return 0;
}

static int mem_list(void *arg, int (*cb)(void *cbarg, const char *name), void *cbarg)
{
	int r = cb(cbarg, "vol");
	return r ? r : cb(cbarg, "vol:ro");
}

static const struct nbd_backend mem_backend = {
    .open = mem_open,
    .close = mem_close,
    .read = mem_read,
    .write = mem_write,
    .zero = mem_zero,
    .trim = mem_trim,
    .block_status = mem_block_status,
    .list = mem_list,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct nbd_server *srv;
	sd_log_open(NULL, SD_LOG_ERR, "fuzz_nbd");
	if (nbd_server_start(&mem_backend, NULL, "127.0.0.1", 0, &srv))
		abort();
	port = nbd_server_port(srv);
	return 0; /* the server lives as long as the process */
}

/* A connection to the engine. libFuzzer's -timeout arms a periodic SIGALRM,
 * and a blocking connect() it interrupts fails with EINTR (seen in CI under
 * load): such a connect is abandoned and made again on a new socket. */
static int connect_server(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			abort();
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		int e = errno;
		close(fd);
		if (e != EINTR) {
			fprintf(stderr, "fuzz_nbd: connect: %s\n", strerror(e));
			abort();
		}
	}
}

/* Input: everything the client sends, in one go; then the client half-closes
 * and reads whatever the server answers until it closes the connection. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!port)
		LLVMFuzzerInitialize(NULL, NULL);
	int fd = connect_server();
	struct timeval tv = {.tv_sec = 20};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Send and drain in turns, so neither side blocks on a full buffer. */
	size_t sent = 0;
	char buf[65536];
	while (sent < size) {
		ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break; /* the server closed: the rest is never read */
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
			break;
	}
	shutdown(fd, SHUT_WR);
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 || (n < 0 && errno == EINTR))
		;
	close(fd);
	return 0;
}
