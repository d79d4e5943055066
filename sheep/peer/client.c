/* client.c - the client side of the peer protocol: connection pool and fan-out (a call to this node is served in place). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

#define PEER_CONNECT_MS 2000
#define PEER_IO_MS 30000
#define PEER_IDLE_PER_NODE 16

struct pooled_fd {
	char addr[64];
	uint16_t port;
	uint64_t inc;
	int fd;
	struct pooled_fd *next;
};

struct peer_pool {
	pthread_mutex_t mu;
	struct pooled_fd *idle;
};

int peer_pool_init(struct sheep *s)
{
	s->peers = calloc(1, sizeof(*s->peers));
	if (!s->peers)
		return -ENOMEM;
	pthread_mutex_init(&s->peers->mu, NULL);
	return peer_sole_init(s);
}

void peer_pool_fini(struct sheep *s)
{
	peer_sole_fini(s);
	if (!s->peers)
		return;
	struct pooled_fd *p = s->peers->idle;
	while (p) {
		struct pooled_fd *n = p->next;
		close(p->fd);
		free(p);
		p = n;
	}
	pthread_mutex_destroy(&s->peers->mu);
	free(s->peers);
	s->peers = NULL;
}

/* Take an idle connection to n, or open one. */
static int pool_take_idle(struct peer_pool *pp, const struct sd_node *n)
{
	int fd = -1;
	pthread_mutex_lock(&pp->mu);
	for (struct pooled_fd **q = &pp->idle; *q; q = &(*q)->next) {
		struct pooled_fd *p = *q;
		if (p->port == n->port && p->inc == n->incarnation && !strcmp(p->addr, n->addr)) {
			*q = p->next;
			fd = p->fd;
			free(p);
			break;
		}
	}
	pthread_mutex_unlock(&pp->mu);
	return fd;
}

static int pool_get(struct sheep *s, const struct sd_node *n)
{
	int fd;
	while ((fd = pool_take_idle(s->peers, n)) >= 0) {
		/* Drop a connection the peer closed while it was idle. */
		char c;
		ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return fd;
		close(fd);
	}
	fd = sd_connect(n->addr, n->port, PEER_CONNECT_MS);
	if (fd < 0)
		return fd;
	sd_set_timeout(fd, PEER_IO_MS);
	return fd;
}

static void pool_put(struct sheep *s, const struct sd_node *n, int fd)
{
	struct peer_pool *pp = s->peers;
	struct pooled_fd *p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", n->addr);
	p->port = n->port;
	p->inc = n->incarnation;
	p->fd = fd;
	pthread_mutex_lock(&pp->mu);
	int count = 0;
	for (struct pooled_fd *q = pp->idle; q; q = q->next)
		if (q->port == n->port && !strcmp(q->addr, n->addr))
			count++;
	if (count >= PEER_IDLE_PER_NODE) {
		pthread_mutex_unlock(&pp->mu);
		close(fd);
		free(p);
		return;
	}
	p->next = pp->idle;
	pp->idle = p;
	pthread_mutex_unlock(&pp->mu);
}

static bool is_self(struct sheep *s, const struct sd_node *n)
{
	return sd_node_eq(n, &s->self);
}

/* Bytes of the commits riding on c (whdr.nr_commits, zeroed without any). */
static uint32_t ride_len(struct peer_call *c)
{
	if (!c->has_whdr)
		return 0;
	if (!c->ride)
		c->whdr.nr_commits = 0;
	return c->whdr.nr_commits * (uint32_t)sizeof(*c->ride);
}

/* The request of c as iovecs (at most 4): header, write header, riding
 * commits (rl bytes), data. */
static int call_iov(struct peer_call *c, struct iovec *iov, uint32_t rl)
{
	int n = 0;
	iov[n++] = (struct iovec){&c->req, sizeof(c->req)};
	if (c->req.flags & SD_FLAG_CMD_WRITE) {
		if (c->has_whdr)
			iov[n++] = (struct iovec){&c->whdr, sizeof(c->whdr)};
		if (rl)
			iov[n++] = (struct iovec){(void *)c->ride, rl};
		if (c->wlen)
			iov[n++] = (struct iovec){(void *)c->wbuf, c->wlen};
	}
	return n;
}

static void send_call(struct sheep *s, struct peer_call *c)
{
	c->fd = -1;
	c->req.proto_ver = SD_SHEEP_PROTO_VER;
	uint32_t rl = ride_len(c);
	uint32_t plen = c->wlen + rl + (c->has_whdr ? (uint32_t)sizeof(c->whdr) : 0);
	if (c->has_whdr || c->wlen) {
		c->req.flags |= SD_FLAG_CMD_WRITE;
		c->req.data_length = plen;
	} else {
		c->req.data_length = c->rcap;
	}
	int fd = pool_get(s, c->node);
	if (fd < 0) {
		c->result = SD_RES_NETWORK_ERROR;
		return;
	}
	struct iovec iov[4];
	int n = call_iov(c, iov, rl);
	int ret = sd_writev_full(fd, iov, n);
	if (ret) {
		/* A pooled connection may have been closed by a restarted peer:
		 * retry once on a fresh one. */
		close(fd);
		fd = sd_connect(c->node->addr, c->node->port, PEER_CONNECT_MS);
		if (fd < 0) {
			c->result = SD_RES_NETWORK_ERROR;
			return;
		}
		sd_set_timeout(fd, PEER_IO_MS);
		n = call_iov(c, iov, rl);
		if (sd_writev_full(fd, iov, n)) {
			close(fd);
			c->result = SD_RES_NETWORK_ERROR;
			return;
		}
	}
	c->fd = fd;
}

/* PEER_RSP_LC: the deltas in bytes 32..47 of the reply (peer.h). */
static void peer_rsp_lc(const struct sd_rsp *rsp, struct peer_call *c)
{
	if ((c->rsp_flags & PEER_RSP_LC) && !(c->rsp_flags & PEER_RSP_NOT_SOLE)) {
		memcpy(c->lc_delta, (const uint8_t *)rsp + 32, sizeof(c->lc_delta));
		c->token = 0;
	} else {
		c->rsp_flags &= (uint8_t)~PEER_RSP_LC;
	}
}

/* Read one reply of c; with first, an interim one leaves c->fd open. */
static void recv_reply(struct sheep *s, struct peer_call *c, bool first)
{
	if (c->fd < 0)
		return;
	struct sd_rsp rsp;
	int ret = sd_read_full(c->fd, &rsp, sizeof(rsp));
	if (ret == 0 && rsp.data_length > c->rcap)
		ret = -EMSGSIZE;
	if (ret == 0 && rsp.data_length)
		ret = sd_read_full(c->fd, c->rbuf, rsp.data_length);
	if (ret) {
		sd_debug("peer %s:%u: %s", c->node->addr, c->node->port, strerror(-ret));
		close(c->fd);
		c->fd = -1;
		c->result = SD_RES_NETWORK_ERROR;
		return;
	}
	c->result = (int)rsp.result;
	c->version = rsp.obj.offset;
	c->rsp_flags = rsp.obj.reserved[0];
	c->token = rsp.obj.peer_token;
	peer_rsp_lc(&rsp, c);
	c->rlen = rsp.data_length;
	if (first && (c->rsp_flags & PEER_RSP_INTERIM) && c->result == SD_RES_SUCCESS) {
		c->sent = true;
		return;
	}
	c->rsp_flags &= (uint8_t)~PEER_RSP_INTERIM;
	pool_put(s, c->node, c->fd);
	c->fd = -1;
}

static void recv_call(struct sheep *s, struct peer_call *c)
{
	c->sent = false;
	recv_reply(s, c, false);
}

static void call_reset(struct peer_call *c)
{
	c->fd = -1;
	c->result = SD_RES_NETWORK_ERROR;
	c->rlen = 0;
	c->version = 0;
	c->rsp_flags = 0;
	c->token = 0;
	c->sent = false;
}

int peer_call_first(struct sheep *s, struct peer_call *c)
{
	call_reset(c);
	if (!c->node)
		return 0;
	if (is_self(s, c->node)) {
		c->result = SD_RES_NO_SUPPORT; /* served here: no second reply */
		return 0;
	}
	send_call(s, c);
	recv_reply(s, c, true);
	return c->sent;
}

static void serve_local(struct sheep *s, struct peer_call *c)
{
	c->req.proto_ver = SD_SHEEP_PROTO_VER;
	void *payload = NULL;
	if (c->has_whdr || c->wlen) {
		uint32_t rl = ride_len(c);
		uint32_t hl = c->has_whdr ? (uint32_t)sizeof(c->whdr) : 0;
		c->req.data_length = c->wlen + hl + rl;
		payload = malloc(c->req.data_length);
		if (!payload) {
			c->result = SD_RES_NO_MEM;
			return;
		}
		memcpy(payload, &c->whdr, hl);
		if (rl)
			memcpy((char *)payload + hl, c->ride, rl);
		if (c->wlen)
			memcpy((char *)payload + hl + rl, c->wbuf, c->wlen);
	} else {
		c->req.data_length = c->rcap;
	}
	/* The group-commit hint, as conn.c passes a remote one on arrival. */
	if (c->req.opcode == SD_OP_PEER_WRITE && c->has_whdr)
		store_wal_hint(s->store, c->whdr.hint);
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	uint32_t rlen = 0;
	peer_serve(s, &c->req, payload, &rsp, c->rbuf, &rlen);
	free(payload);
	c->result = (int)rsp.result;
	c->version = rsp.obj.offset;
	c->rsp_flags = rsp.obj.reserved[0];
	c->token = rsp.obj.peer_token;
	peer_rsp_lc(&rsp, c);
	c->rlen = rlen;
}

void peer_fanout(struct sheep *s, struct peer_call *calls, int n)
{
	for (int i = 0; i < n; i++) {
		/* A call peer_call_first sent: only its final reply is due. */
		if (calls[i].sent && calls[i].fd >= 0)
			continue;
		call_reset(&calls[i]);
		if (!calls[i].node)
			continue;
		if (!is_self(s, calls[i].node))
			send_call(s, &calls[i]);
	}
	for (int i = 0; i < n; i++)
		if (calls[i].node && !calls[i].sent && is_self(s, calls[i].node))
			serve_local(s, &calls[i]);
	for (int i = 0; i < n; i++)
		if (calls[i].node && (calls[i].sent || !is_self(s, calls[i].node)))
			recv_call(s, &calls[i]);
}
