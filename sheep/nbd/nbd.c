/* nbd.c - NBD export: listener, connection threads and the fixed-newstyle handshake. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "sheep/nbd/nbd_priv.h"
#include "sheep/nbd/nbd_proto.h"

#define NBD_NAME_MAX 4096 /* the protocol's bound on strings */

/* ---- option replies ---------------------------------------------------- */

static int opt_reply(struct nbd_conn *c, uint32_t opt, uint32_t type, const void *data,
		     uint32_t len)
{
	struct nbd_opt_reply r = {
		.magic = htobe64(NBD_REP_MAGIC),
		.option = htobe32(opt),
		.type = htobe32(type),
		.length = htobe32(len),
	};
	struct iovec iov[2] = {{&r, sizeof(r)}, {(void *)data, len}};
	return sd_writev_full(c->fd, iov, len ? 2 : 1);
}

/* An error reply with a message for the user; the message is logged too. */
static int opt_error(struct nbd_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	if (type == NBD_REP_ERR_UNSUP)
		sd_debug("nbd %s: option %" PRIu32 " refused: %s", c->peer, opt, msg);
	else
		sd_info("nbd %s: option %" PRIu32 " refused: %s", c->peer, opt, msg);
	return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static uint16_t transmission_flags(const struct nbd_export_info *info)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
	if (info->readonly)
		/* No writes, no cache: every connection sees the same bytes. */
		f |= NBD_FLAG_READ_ONLY | NBD_FLAG_CAN_MULTI_CONN;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
	return f;
}

static int send_info(struct nbd_conn *c, uint32_t opt, const struct nbd_export_info *info)
{
	uint8_t ex[12], bs[14];
	uint16_t t16;
	uint32_t t32;
	uint64_t t64;

	t16 = htobe16(NBD_INFO_EXPORT);
	memcpy(ex, &t16, 2);
	t64 = htobe64(info->size);
	memcpy(ex + 2, &t64, 8);
	t16 = htobe16(transmission_flags(info));
	memcpy(ex + 10, &t16, 2);
	if (opt_reply(c, opt, NBD_REP_INFO, ex, sizeof(ex)) < 0)
		return -1;

	/* Any alignment works; 4 KiB is where we are efficient; requests are
	 * bounded so one cannot pin unbounded memory. */
	t16 = htobe16(NBD_INFO_BLOCK_SIZE);
	memcpy(bs, &t16, 2);
	t32 = htobe32(1);
	memcpy(bs + 2, &t32, 4);
	t32 = htobe32(4096);
	memcpy(bs + 6, &t32, 4);
	t32 = htobe32(NBD_MAX_REQUEST);
	memcpy(bs + 10, &t32, 4);
	return opt_reply(c, opt, NBD_REP_INFO, bs, sizeof(bs));
}

static uint32_t open_error_type(int ret)
{
	switch (ret) {
	case -EBUSY:
	case -EPERM:
	case -EROFS:
		return NBD_REP_ERR_POLICY;
	case -EINVAL:
		return NBD_REP_ERR_INVALID;
	default:
		return NBD_REP_ERR_UNKNOWN;
	}
}

static int list_one(void *arg, const char *name)
{
	struct nbd_conn *c = arg;
	size_t n = strlen(name);
	if (n > NBD_NAME_MAX)
		return 0;
	char buf[4 + NBD_NAME_MAX];
	uint32_t be = htobe32((uint32_t)n);
	memcpy(buf, &be, 4);
	memcpy(buf + 4, name, n);
	return opt_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, (uint32_t)(4 + n)) < 0 ? -EIO : 0;
}

/* ---- meta contexts ----------------------------------------------------- */

static bool meta_offered(const struct nbd_conn *c)
{
	return c->srv->ops->block_status != NULL;
}

/* Does query q (qlen bytes) select base:allocation? A LIST also takes the
 * namespace alone ("base:"). */
static bool meta_matches(const char *q, uint32_t qlen, bool list)
{
	size_t n = strlen(NBD_META_BASE_ALLOCATION);
	if (qlen == n && !memcmp(q, NBD_META_BASE_ALLOCATION, n))
		return true;
	return list && qlen == 5 && !memcmp(q, "base:", 5);
}

/*
 * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: export name length,
 * name, query count, queries (length, string). The whole option is checked
 * before any reply, so a malformed one gets a single error. SET needs
 * structured replies first and replaces the previous selection; LIST with
 * no query lists every context.
 */
static int opt_meta_context(struct nbd_conn *c, uint32_t opt, const char *data, uint32_t len)
{
	bool list = opt == NBD_OPT_LIST_META_CONTEXT;
	uint32_t nlen, nq, pos;

	if (!list && !c->structured)
		return opt_error(c, opt, NBD_REP_ERR_INVALID,
				 "SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first");
	if (len < 8)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
	memcpy(&nlen, data, 4);
	nlen = be32toh(nlen);
	if (nlen > len - 8 || nlen > NBD_NAME_MAX || memchr(data + 4, 0, nlen))
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
	memcpy(&nq, data + 4 + nlen, 4);
	nq = be32toh(nq);
	bool match = list && nq == 0 && meta_offered(c);
	pos = 8 + nlen;
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t ql;
		if (len - pos < 4)
			return opt_error(c, opt, NBD_REP_ERR_INVALID, "truncated query list");
		memcpy(&ql, data + pos, 4);
		ql = be32toh(ql);
		pos += 4;
		if (ql > len - pos || ql > NBD_NAME_MAX)
			return opt_error(c, opt, NBD_REP_ERR_INVALID, "bad query length");
		if (meta_offered(c) && meta_matches(data + pos, ql, list))
			match = true;
		pos += ql;
	}
	if (pos != len)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "trailing bytes after the queries");
	if (!list) {
		free(c->meta_export);
		c->meta_export = match ? strndup(data + 4, nlen) : NULL;
		c->meta_alloc = match && c->meta_export;
		match = c->meta_alloc;
	}
	if (match) {
		size_t n = strlen(NBD_META_BASE_ALLOCATION);
		char buf[4 + 32];
		uint32_t id = htobe32(NBD_META_ID_ALLOC);
		memcpy(buf, &id, 4);
		memcpy(buf + 4, NBD_META_BASE_ALLOCATION, n);
		if (opt_reply(c, opt, NBD_REP_META_CONTEXT, buf, (uint32_t)(4 + n)) < 0)
			return -1;
	}
	return opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* A context selected for another export name does not apply to this one. */
static void meta_attach(struct nbd_conn *c, const char *name)
{
	if (c->meta_alloc && strcmp(c->meta_export, name) != 0) {
		sd_debug("nbd %s: meta context was set for '%s', not '%s': dropped", c->peer,
			 c->meta_export, name);
		c->meta_alloc = false;
	}
}

/* ---- handshake --------------------------------------------------------- */

enum hs_result { HS_CLOSE, HS_GO };

/*
 * NBD_OPT_INFO / NBD_OPT_GO: name length, name, info request count, info
 * requests. GO success leaves the export open in c.
 */
static int opt_info_go(struct nbd_conn *c, uint32_t opt, const char *data, uint32_t len,
		       bool *go)
{
	uint32_t nlen;
	uint16_t nreq;
	char name[NBD_NAME_MAX + 1];
	char msg[512] = "";

	*go = false;
	if (len < 6)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
	memcpy(&nlen, data, 4);
	nlen = be32toh(nlen);
	if (nlen > len - 6 || nlen > NBD_NAME_MAX)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "bad export name length");
	memcpy(&nreq, data + 4 + nlen, 2);
	nreq = be16toh(nreq);
	if ((uint64_t)len != 6 + (uint64_t)nlen + 2 * (uint64_t)nreq)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "bad information request list");
	memcpy(name, data + 4, nlen);
	name[nlen] = '\0';
	if (strlen(name) != nlen)
		return opt_error(c, opt, NBD_REP_ERR_INVALID, "export name contains NUL");

	struct nbd_export *e = NULL;
	struct nbd_export_info info = {0};
	int ret = c->srv->ops->open(c->srv->arg, name, opt == NBD_OPT_INFO, c->owner, &e, &info,
				    msg, sizeof(msg));
	if (ret < 0) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "export '%s': %s", name, strerror(-ret));
		return opt_error(c, opt, open_error_type(ret), msg);
	}
	if (send_info(c, opt, &info) < 0 || opt_reply(c, opt, NBD_REP_ACK, NULL, 0) < 0) {
		c->srv->ops->close(e);
		return -1;
	}
	if (opt == NBD_OPT_INFO) {
		c->srv->ops->close(e);
		return 0;
	}
	sd_info("nbd %s: attached '%s' (%" PRIu64 " bytes%s%s)", c->peer, name, info.size,
		info.readonly ? ", read-only" : "", c->structured ? ", structured replies" : "");
	meta_attach(c, name);
	c->exp = e;
	c->info = info;
	*go = true;
	return 0;
}

/* NBD_OPT_EXPORT_NAME: no error reply exists, so failure closes. */
static enum hs_result opt_export_name(struct nbd_conn *c, const char *data, uint32_t len,
				      bool no_zeroes)
{
	char name[NBD_NAME_MAX + 1];
	char msg[512] = "";
	if (len > NBD_NAME_MAX || memchr(data, 0, len)) {
		sd_info("nbd %s: bad export name, closing", c->peer);
		return HS_CLOSE;
	}
	memcpy(name, data, len);
	name[len] = '\0';
	int ret = c->srv->ops->open(c->srv->arg, name, false, c->owner, &c->exp, &c->info, msg,
				    sizeof(msg));
	if (ret < 0) {
		sd_info("nbd %s: export '%s' refused, closing (NBD_OPT_EXPORT_NAME cannot carry "
			"an error): %s",
			c->peer, name, msg[0] ? msg : strerror(-ret));
		c->exp = NULL;
		return HS_CLOSE;
	}
	uint8_t buf[8 + 2 + 124] = {0};
	uint64_t sz = htobe64(c->info.size);
	uint16_t fl = htobe16(transmission_flags(&c->info));
	memcpy(buf, &sz, 8);
	memcpy(buf + 8, &fl, 2);
	if (sd_write_full(c->fd, buf, no_zeroes ? 10 : sizeof(buf)) < 0)
		return HS_CLOSE;
	sd_info("nbd %s: attached '%s' (%" PRIu64 " bytes%s)", c->peer, name, c->info.size,
		c->info.readonly ? ", read-only" : "");
	meta_attach(c, name);
	return HS_GO;
}

/*
 * The fixed-newstyle NBD handshake. Guarantees: a client that sends
 * unknown flags, a malformed or oversize option, or a bad export name gets
 * an error reply or a clean close (HS_CLOSE), never a crash; HS_GO only
 * after an export was opened (EXPORT_NAME or GO) and its size and flags
 * were sent.
 */
static enum hs_result handshake(struct nbd_conn *c)
{
	uint8_t hello[18];
	uint64_t m = htobe64(NBD_INIT_MAGIC);
	uint16_t hf = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	uint32_t cflags;
	char *data = NULL;
	enum hs_result res = HS_CLOSE;

	memcpy(hello, &m, 8);
	m = htobe64(NBD_OPTS_MAGIC);
	memcpy(hello + 8, &m, 8);
	memcpy(hello + 16, &hf, 2);
	if (sd_write_full(c->fd, hello, sizeof(hello)) < 0 ||
	    sd_read_full(c->fd, &cflags, 4) < 0)
		return HS_CLOSE;
	cflags = be32toh(cflags);
	if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
		sd_info("nbd %s: unknown client flags %#" PRIx32 ", closing", c->peer, cflags);
		return HS_CLOSE;
	}
	bool no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

	for (int n = 0; n < NBD_MAX_OPTIONS; n++) {
		struct nbd_opt_hdr oh;
		if (sd_read_full(c->fd, &oh, sizeof(oh)) < 0)
			goto out;
		uint32_t opt = be32toh(oh.option), len = be32toh(oh.length);
		if (be64toh(oh.magic) != NBD_OPTS_MAGIC) {
			sd_info("nbd %s: bad option magic, closing", c->peer);
			goto out;
		}
		if (len > NBD_MAX_OPT_LEN) {
			sd_info("nbd %s: option %" PRIu32 " of %" PRIu32 " bytes, closing", c->peer,
				opt, len);
			goto out;
		}
		free(data);
		data = malloc(len ? len : 1);
		if (!data || sd_read_full(c->fd, data, len) < 0)
			goto out;

		int ret = 0;
		bool go = false;
		bool stopping = atomic_load(&c->srv->stopping);
		if (stopping && opt != NBD_OPT_ABORT && opt != NBD_OPT_EXPORT_NAME) {
			ret = opt_error(c, opt, NBD_REP_ERR_SHUTDOWN, "server shutting down");
			continue;
		}
		switch (opt) {
		case NBD_OPT_EXPORT_NAME:
			res = stopping ? HS_CLOSE : opt_export_name(c, data, len, no_zeroes);
			goto out;
		case NBD_OPT_ABORT:
			opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			goto out;
		case NBD_OPT_LIST:
			if (len != 0) {
				ret = opt_error(c, opt, NBD_REP_ERR_INVALID, "LIST takes no data");
				break;
			}
			if (!c->srv->ops->list) {
				ret = opt_error(c, opt, NBD_REP_ERR_UNSUP, "listing not supported");
				break;
			}
			ret = c->srv->ops->list(c->srv->arg, list_one, c);
			if (ret == -EIO)
				goto out; /* the socket failed */
			ret = ret < 0 ? opt_error(c, opt, NBD_REP_ERR_UNSUP, "cannot list exports")
				      : opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			ret = opt_info_go(c, opt, data, len, &go);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			if (len != 0) {
				ret = opt_error(c, opt, NBD_REP_ERR_INVALID,
						"STRUCTURED_REPLY takes no data");
				break;
			}
			c->structured = true;
			ret = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			ret = opt_meta_context(c, opt, data, len);
			break;
		default:
			ret = opt_error(c, opt, NBD_REP_ERR_UNSUP, "option not supported");
			break;
		}
		if (ret < 0)
			goto out;
		if (go) {
			res = HS_GO;
			goto out;
		}
	}
	sd_info("nbd %s: more than %d options, closing", c->peer, NBD_MAX_OPTIONS);
out:
	free(data);
	return res;
}

/* ---- connections and listener ------------------------------------------ */

static void conn_free(struct nbd_conn *c)
{
	nbd_replies_drop(c);
	free(c->meta_export);
	pthread_mutex_destroy(&c->qlock);
	pthread_cond_destroy(&c->qroom);
	pthread_mutex_destroy(&c->wlock);
	free(c);
}

static void *conn_main(void *arg)
{
	struct nbd_conn *c = arg;
	struct nbd_server *srv = c->srv;

	pthread_setname_np(pthread_self(), "nbd-conn");
	sd_set_timeout(c->fd, NBD_HANDSHAKE_TIMEOUT_MS);
	if (handshake(c) == HS_GO) {
		sd_set_timeout(c->fd, 0);
		nbd_transmission(c);
		srv->ops->close(c->exp); /* releases the write lock */
		c->exp = NULL;
	}

	/* Leave the list before closing, so nbd_server_stop() never shuts
	 * down a descriptor number that has been reused. */
	pthread_mutex_lock(&srv->lock);
	for (struct nbd_conn **pp = &srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	srv->nr_conns--;
	close(c->fd);
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	conn_free(c);
	return NULL;
}

static void accept_one(struct nbd_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;

	struct nbd_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	sd_set_nodelay(fd);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	pthread_mutex_init(&c->qlock, NULL);
	pthread_cond_init(&c->qroom, NULL);
	pthread_mutex_init(&c->wlock, NULL);

	pthread_mutex_lock(&srv->lock);
	if (srv->nr_conns >= NBD_MAX_CONNECTIONS || atomic_load(&srv->stopping)) {
		pthread_mutex_unlock(&srv->lock);
		sd_warn("nbd: refusing %s: %d connections already", c->peer, NBD_MAX_CONNECTIONS);
		close(fd);
		conn_free(c);
		return;
	}
	c->owner = ++srv->next_owner;
	c->next = srv->conns;
	srv->conns = c;
	srv->nr_conns++;
	pthread_mutex_unlock(&srv->lock);

	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int ret = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (ret != 0) {
		sd_err("nbd: cannot start a thread for %s: %s", c->peer, strerror(ret));
		pthread_mutex_lock(&srv->lock);
		for (struct nbd_conn **pp = &srv->conns; *pp; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		srv->nr_conns--;
		pthread_mutex_unlock(&srv->lock);
		close(fd);
		conn_free(c);
	}
}

static void *listener_main(void *arg)
{
	struct nbd_server *srv = arg;
	pthread_setname_np(pthread_self(), "nbd-listen");
	struct pollfd pf[2] = {{.fd = srv->lfd, .events = POLLIN}, {.fd = srv->wake[0], .events = POLLIN}};

	for (;;) {
		int n = poll(pf, 2, -1);
		if (n < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (n > 0 && (pf[0].revents & POLLIN))
			accept_one(srv);
	}
	return NULL;
}

int nbd_server_start(const struct nbd_backend *ops, void *arg, const char *bind_addr, int port,
		     struct nbd_server **out)
{
	struct nbd_server *srv;
	int ret;

	*out = NULL;
	if (port < 0 || port > 65535)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->ops = ops;
	srv->arg = arg;
	srv->wake[0] = srv->wake[1] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	nbd_pool_init(&srv->pool);

	srv->lfd = sd_listen(bind_addr, (uint16_t)port, 128);
	if (srv->lfd < 0) {
		ret = srv->lfd;
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(srv->lfd, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	if (pipe2(srv->wake, O_CLOEXEC) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = pthread_create(&srv->listener, NULL, listener_main, srv);
	if (ret != 0) {
		ret = -ret;
		goto fail;
	}
	srv->listening = true;
	sd_notice("nbd: serving on %s:%d", bind_addr && *bind_addr ? bind_addr : "*", srv->port);
	*out = srv;
	return 0;
fail:
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->wake[0] >= 0) {
		close(srv->wake[0]);
		close(srv->wake[1]);
	}
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	nbd_pool_stop(&srv->pool);
	free(srv);
	return ret;
}

int nbd_server_port(const struct nbd_server *srv)
{
	return srv->port;
}

void nbd_server_stop(struct nbd_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	atomic_store(&srv->stopping, true);
	pthread_mutex_unlock(&srv->lock);
	if (srv->listening) {
		char b = 1;
		if (write(srv->wake[1], &b, 1) < 0)
			sd_warn("nbd: cannot wake the listener: %m");
		pthread_join(srv->listener, NULL);
	}
	close(srv->lfd);

	/* Wake every reader; each drains its in-flight requests, releases its
	 * lock and leaves the list. */
	pthread_mutex_lock(&srv->lock);
	for (struct nbd_conn *c = srv->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (srv->nr_conns > 0)
		pthread_cond_wait(&srv->cond, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	nbd_pool_stop(&srv->pool);

	close(srv->wake[0]);
	close(srv->wake[1]);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	free(srv);
}
