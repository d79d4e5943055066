/* fuzz_dog.c - fuzz target: dog's commands run against a fake sheep in-process whose every reply
 * (header and payload) comes from the input, so dog's reply decoding meets arbitrary bytes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_REPLY (4u << 20) /* a reply's data_length is cut to this */

/* The replies of the current input, handed out in order under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *in_data;
static size_t in_size;
static uint16_t fake_port;
static bool init_done;
/* Seed recording (mkseeds_dog.sh): FUZZ_DOG_RECORD=PORT forwards every
 * request to the real sheep at 127.0.0.1:PORT and appends its replies to
 * the file FUZZ_DOG_RECORD_OUT, which then holds a valid input. */
static uint16_t record_port;
static FILE *record_out;

/*
 * Every name dog resolves (-a, and each node address a reply lists) is the
 * fake sheep: no lookup leaves the process and no real sheep is reached.
 * These replace the C library's for this program only. Once the input's
 * replies are used up, names do not resolve, so dog fails fast.
 */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	pthread_mutex_lock(&mu);
	bool more = in_size >= sizeof(struct sd_rsp) || record_port;
	pthread_mutex_unlock(&mu);
	if (!more || !fake_port)
		return EAI_NONAME;
	struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_in));
	if (!ai)
		return EAI_MEMORY;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)(ai + 1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(fake_port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ai->ai_family = AF_INET;
	ai->ai_socktype = SOCK_STREAM;
	ai->ai_addr = (struct sockaddr *)sin;
	ai->ai_addrlen = sizeof(*sin);
	*res = ai;
	return 0;
}

void freeaddrinfo(struct addrinfo *ai)
{
	while (ai) {
		struct addrinfo *next = ai->ai_next;
		free(ai);
		ai = next;
	}
}

static bool recv_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * The next reply: a struct sd_rsp from the input, a 32-bit count N, then N
 * payload bytes; the payload is data_length bytes (at most FUZZ_MAX_REPLY):
 * those N (cut to what the input has), zeros after, so a 2 MiB VDI bitmap
 * takes a few input bytes. NULL when the input is used up.
 */
static uint8_t *next_reply(size_t *len)
{
	pthread_mutex_lock(&mu);
	uint8_t *out = NULL;
	if (in_size >= sizeof(struct sd_rsp)) {
		struct sd_rsp rsp;
		uint32_t n = 0;
		memcpy(&rsp, in_data, sizeof(rsp));
		in_data += sizeof(rsp);
		in_size -= sizeof(rsp);
		if (in_size >= sizeof(n)) {
			memcpy(&n, in_data, sizeof(n));
			in_data += sizeof(n);
			in_size -= sizeof(n);
		}
		if (rsp.data_length > FUZZ_MAX_REPLY)
			rsp.data_length = FUZZ_MAX_REPLY;
		size_t take = n < in_size ? n : in_size;
		if (take > rsp.data_length)
			take = rsp.data_length;
		out = calloc(1, sizeof(rsp) + rsp.data_length);
		if (out) {
			memcpy(out, &rsp, sizeof(rsp));
			memcpy(out + sizeof(rsp), in_data, take);
			*len = sizeof(rsp) + rsp.data_length;
		}
		n = n < in_size ? n : (uint32_t)in_size;
		in_data += n;
		in_size -= n;
	}
	pthread_mutex_unlock(&mu);
	return out;
}

/* Record mode: the real sheep's reply to req (and its payload), appended
 * to the seed file. */
static uint8_t *forward(int up, const struct sd_req *req, const void *payload, size_t *len)
{
	struct sd_rsp rsp;
	if (sd_write_full(up, req, sizeof(*req)) ||
	    ((req->flags & SD_FLAG_CMD_WRITE) && req->data_length &&
	     sd_write_full(up, payload, req->data_length)) ||
	    !recv_full(up, &rsp, sizeof(rsp)))
		return NULL;
	uint8_t *out = malloc(sizeof(rsp) + rsp.data_length);
	if (!out)
		return NULL;
	memcpy(out, &rsp, sizeof(rsp));
	if (!recv_full(up, out + sizeof(rsp), rsp.data_length)) {
		free(out);
		return NULL;
	}
	*len = sizeof(rsp) + rsp.data_length;
	/* As next_reply reads it: the payload without its trailing zeros. */
	uint32_t n = rsp.data_length;
	while (n && !out[sizeof(rsp) + n - 1])
		n--;
	pthread_mutex_lock(&mu);
	fwrite(out, 1, sizeof(rsp), record_out);
	fwrite(&n, 1, sizeof(n), record_out);
	fwrite(out + sizeof(rsp), 1, n, record_out);
	fflush(record_out);
	pthread_mutex_unlock(&mu);
	return out;
}

static int connect_upstream(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(record_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up >= 0 && connect(up, (struct sockaddr *)&sin, sizeof(sin))) {
		close(up);
		up = -1;
	}
	return up;
}

/* One connection of dog's: a reply for each request, until either side
 * stops. */
static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sd_req req;
	uint8_t sink[16384];
	int up = record_port ? connect_upstream() : -1;
	uint8_t *payload = NULL;
	while ((!record_port || up >= 0) && recv_full(fd, &req, sizeof(req))) {
		if (record_port) {
			size_t len;
			uint32_t dl = (req.flags & SD_FLAG_CMD_WRITE) ? req.data_length : 0;
			free(payload);
			payload = malloc(dl ? dl : 1);
			if (!payload || !recv_full(fd, payload, dl))
				break;
			uint8_t *r = forward(up, &req, payload, &len);
			if (!r || sd_write_full(fd, r, len)) {
				free(r);
				break;
			}
			free(r);
			continue;
		}
		if (req.flags & SD_FLAG_CMD_WRITE) {
			uint32_t left = req.data_length;
			bool ok = true;
			while (left && ok) {
				uint32_t n = left < sizeof(sink) ? left : (uint32_t)sizeof(sink);
				ok = recv_full(fd, sink, n);
				left -= n;
			}
			if (!ok)
				break;
		}
		size_t len;
		uint8_t *r = next_reply(&len);
		if (!r)
			break;
		bool sent = sd_write_full(fd, r, len) == 0;
		free(r);
		if (!sent)
			break;
	}
	free(payload);
	if (up >= 0)
		close(up);
	close(fd);
	return NULL;
}

static void *accept_loop(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, serve_conn, (void *)(intptr_t)fd))
			close(fd);
		pthread_attr_destroy(&a);
	}
	return NULL;
}

/* The fake sheep listens on an ephemeral loopback port; dog's output goes
 * to /dev/null unless FUZZ_LOG is set. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl))
		abort();
	fake_port = ntohs(sin.sin_port);
	pthread_t t;
	if (pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)lfd))
		abort();
	const char *rec = getenv("FUZZ_DOG_RECORD");
	if (rec) {
		record_port = (uint16_t)atoi(rec);
		const char *out = getenv("FUZZ_DOG_RECORD_OUT");
		if (!out || !(record_out = fopen(out, "ab")))
			abort();
	}
	if (!getenv("FUZZ_LOG") && !rec) {
		FILE *null = fopen("/dev/null", "w");
		if (!null || dup2(fileno(null), STDOUT_FILENO) < 0)
			abort(); /* vdi read writes fd 1 itself */
		stderr = null;	 /* dog's messages; sanitizer reports write to fd 2 */
	}
	init_done = true;
	return 0;
}

/* The commands whose replies are decoded: group, name, positional args. */
static const struct {
	const char *group, *name;
	int argc;
	const char *argv[4];
} cmds[] = {
    {"node", "list", 0, {NULL}},
    {"node", "info", 0, {NULL}},
    {"node", "stat", 0, {NULL}},
    {"node", "recovery", 0, {NULL}},
    {"node", "recovery", 1, {"get-throttle"}},
    {"node", "log", 2, {"level", "get"}},
    {"node", "md", 1, {"info"}},
    {"node", "vnodes", 1, {"get"}},
    {"vdi", "list", 0, {NULL}},
    {"vdi", "list", 1, {"v"}},
    {"vdi", "tree", 0, {NULL}},
    {"vdi", "object", 2, {"location", "v"}},
    {"vdi", "object", 3, {"location", "v", "1"}},
    {"vdi", "track", 1, {"v"}},
    {"vdi", "getattr", 2, {"v", "key"}},
    {"vdi", "lock", 1, {"list"}},
    {"vdi", "read", 3, {"v", "0", "8192"}},
    {"vdi", "check", 1, {"v"}},
    {"cluster", "info", 0, {NULL}},
    {"cluster", "scrub", 1, {"status"}},
    {"cluster", "check", 0, {NULL}},
};

static const struct dog_cmd *find_cmd(const char *group, const char *name)
{
	const struct dog_cmd *t = !strcmp(group, "node")  ? dog_node_cmds
				  : !strcmp(group, "vdi") ? dog_vdi_cmds
							  : dog_cluster_cmds;
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	abort();
}

/*
 * Input: a command byte (an entry of cmds), a flags byte (bit 0 -r, bit 1
 * --json, bit 2 -s 1 where the command takes it), then the replies the
 * fake sheep sends, in the order dog asks (see next_reply).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!init_done)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 2)
		return 0;
	size_t k = data[0] % (sizeof(cmds) / sizeof(cmds[0]));
	uint8_t flags = data[1];
	pthread_mutex_lock(&mu);
	in_data = data + 2;
	in_size = size - 2;
	pthread_mutex_unlock(&mu);
	char *argv[4];
	for (int i = 0; i < cmds[k].argc; i++)
		argv[i] = (char *)cmds[k].argv[i];
	const struct dog_cmd *c = find_cmd(cmds[k].group, cmds[k].name);
	struct dog d = {
	    .prog = "dog",
	    .addr = "127.0.0.1",
	    .port = 7000,
	    .raw = flags & 1,
	    .json = (flags & 2) && c->opts && strchr(c->opts, 'f'),
	    .snap = (flags & 4) && c->opts && strchr(c->opts, 's') ? "1" : NULL,
	    .block_size_shift = -1,
	    .obj_index = -1,
	    .argc = cmds[k].argc,
	    .argv = argv,
	};
	c->run(&d);
	fflush(stdout);
	pthread_mutex_lock(&mu);
	in_size = 0; /* replies still asked for get none */
	pthread_mutex_unlock(&mu);
	return 0;
}
