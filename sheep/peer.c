/* peer.c - serving peer requests from the local store, and the client side: connection pool and fan-out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "sheep/peer.h"
#include "sheep/recovery_sheep.h"
#include "sheep/sheep.h"
#include "sheep/store.h"

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
	return 0;
}

void peer_pool_fini(struct sheep *s)
{
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

int sheep_errno_to_res(int err)
{
	switch (err) {
	case 0:
		return SD_RES_SUCCESS;
	case -ENOENT:
		return SD_RES_NO_OBJ;
	case -EIO:
		return SD_RES_EIO;
	case -ESTALE:
		return SD_RES_AGAIN;
	case -EINVAL:
	case -ERANGE:
		return SD_RES_INVALID_PARMS;
	case -ENOSPC:
		return SD_RES_NO_SPACE;
	case -ENOMEM:
		return SD_RES_NO_MEM;
	case -EEXIST:
		return SD_RES_VDI_EXIST;
	default:
		return SD_RES_EIO;
	}
}

static int check_epoch(struct sheep *s, const struct sd_req *req)
{
	if (req->flags & SD_PEER_FLAG_ANY_EPOCH)
		return SD_RES_SUCCESS;
	pthread_mutex_lock(&s->state_lock);
	uint32_t e = s->epoch;
	bool synced = s->synced;
	pthread_mutex_unlock(&s->state_lock);
	if (!synced)
		return SD_RES_NEW_NODE_VER;
	if (req->epoch < e)
		return SD_RES_OLD_NODE_VER;
	if (req->epoch > e)
		return SD_RES_NEW_NODE_VER;
	return SD_RES_SUCCESS;
}

/*
 * A version-checked update sent under the epoch just before or after ours:
 * a write in flight while the epoch moves (this node or the writer not yet
 * caught up). Refusing it would cut the write (some fragments at the new
 * version, the rest at the old one, possibly fewer than d at either);
 * applying it is safe because expect_version still admits only the
 * generation the writer read, and readers and recovery take the highest
 * version of each position, wherever it is. For the same reason such a
 * write is not told to wait for recovery (recovery keeps a fragment
 * written locally meanwhile).
 */
static bool is_checked_update(const struct sd_req *req, const void *data)
{
	if (req->opcode != SD_OP_PEER_WRITE || !data ||
	    req->data_length < sizeof(struct peer_write_hdr) ||
	    (req->flags & SD_PEER_FLAG_PREPARE))
		return false;
	struct peer_write_hdr wh;
	memcpy(&wh, data, sizeof(wh));
	return wh.mode == PEER_WRITE_UPDATE && wh.expect_version != STORE_ANY_VERSION;
}

static bool adjacent_epoch(struct sheep *s, const struct sd_req *req)
{
	pthread_mutex_lock(&s->state_lock);
	bool ok = s->synced && (req->epoch + 1 == s->epoch || req->epoch == s->epoch + 1);
	pthread_mutex_unlock(&s->state_lock);
	return ok;
}

struct list_ctx {
	struct peer_frag *out;
	size_t cap, n;
};

static int list_one(const struct store_meta *m, void *arg)
{
	struct list_ctx *lc = arg;
	if (lc->n >= lc->cap)
		return -ENOSPC;
	struct peer_frag *f = &lc->out[lc->n++];
	memset(f, 0, sizeof(*f));
	f->oid = m->oid;
	f->idx = m->idx;
	f->copy_policy = m->copy_policy;
	f->nr_copies = m->nr_copies;
	f->frag_size = m->frag_size;
	f->version = m->version;
	f->disk_bytes = m->disk_bytes;
	return 0;
}

static int serve_write(struct sheep *s, const struct sd_req *req, const void *data,
		       uint64_t *version)
{
	if (!data || req->data_length < sizeof(struct peer_write_hdr))
		return SD_RES_INVALID_PARMS;
	struct peer_write_hdr wh;
	memcpy(&wh, data, sizeof(wh));
	const char *buf = (const char *)data + sizeof(wh);
	uint32_t len = req->data_length - (uint32_t)sizeof(wh);
	uint64_t oid = req->obj.oid;
	uint8_t idx = req->obj.ec_index;
	uint32_t off = req->obj.offset;
	struct store_meta meta = {.oid = oid,
				  .idx = idx,
				  .copy_policy = wh.copy_policy,
				  .nr_copies = wh.nr_copies,
				  .frag_size = wh.frag_size,
				  .version = wh.new_version};
	if (wh.frag_size == 0 && wh.mode != PEER_WRITE_UPDATE)
		return SD_RES_INVALID_PARMS;
	int ret;
	if (req->flags & SD_PEER_FLAG_PREPARE) {
		if (wh.write_id == 0 || wh.mode > PEER_WRITE_UPSERT)
			return SD_RES_INVALID_PARMS;
		/* Range updates are prepared against the version they expect;
		 * every other mode writes a whole new fragment. */
		bool whole = wh.mode != PEER_WRITE_UPDATE;
		ret = store_prepare(s->store, &meta, whole, wh.expect_version, wh.write_id,
				    SD_PEER_PEND_GRACE_MS, buf, off, len);
		if (ret == -EBUSY)
			return SD_RES_AGAIN;
		return sheep_errno_to_res(ret);
	}
	switch (wh.mode) {
	case PEER_WRITE_UPDATE:
		ret = store_write(s->store, oid, idx, wh.expect_version, wh.new_version, buf, off,
				  len);
		break;
	case PEER_WRITE_CREATE:
		ret = store_create(s->store, &meta, buf, off, len);
		break;
	case PEER_WRITE_REPLACE:
		/* One rename: a crash leaves the old fragment or the new one,
		 * never neither (remove-then-create could lose it). */
		ret = store_replace(s->store, &meta, buf, off, len);
		break;
	case PEER_WRITE_UPSERT:
		/* Two upserts of a new fragment can race: the loser's create
		 * finds it present and writes into it instead. */
		for (int tries = 0; tries < 3; tries++) {
			ret = store_write(s->store, oid, idx, STORE_ANY_VERSION, wh.new_version, buf,
					  off, len);
			if (ret != -ENOENT)
				break;
			ret = store_create(s->store, &meta, buf, off, len);
			if (ret != -EEXIST)
				break;
		}
		break;
	default:
		return SD_RES_INVALID_PARMS;
	}
	if (ret == 0)
		*version = wh.new_version;
	return sheep_errno_to_res(ret);
}

/* PEER_COMMIT: apply or drop a prepared write. */
static int serve_commit(struct sheep *s, const struct sd_req *req, const void *data)
{
	if (!data || req->data_length < sizeof(struct peer_commit))
		return SD_RES_INVALID_PARMS;
	struct peer_commit pc;
	memcpy(&pc, data, sizeof(pc));
	int ret = pc.abort ? store_abort(s->store, req->obj.oid, req->obj.ec_index, pc.write_id)
			   : store_commit(s->store, req->obj.oid, req->obj.ec_index, pc.new_version,
					  pc.write_id);
	return sheep_errno_to_res(ret);
}

/* PEER_GEN: what generation the fragment is at and what is pending on it. */
static int serve_gen(struct sheep *s, const struct sd_req *req, void *rbuf, uint32_t *rlen,
		     uint64_t *version)
{
	if (!rbuf || req->data_length < sizeof(struct peer_gen))
		return SD_RES_INVALID_PARMS;
	struct peer_gen g = {0};
	struct store_meta m;
	struct store_pending p;
	int ret = store_stat(s->store, req->obj.oid, req->obj.ec_index, &m);
	if (ret && ret != -ENOENT)
		return sheep_errno_to_res(ret);
	if (ret == 0) {
		g.has_frag = 1;
		g.version = *version = m.version;
		g.write_id = m.write_id;
	}
	if (store_pending(s->store, req->obj.oid, req->obj.ec_index, &p) == 0) {
		g.has_pend = 1;
		g.pend_version = p.new_version;
		g.pend_id = p.write_id;
		g.pend_age_ms = p.age_ms;
	}
	memcpy(rbuf, &g, sizeof(g));
	*rlen = sizeof(g);
	return g.has_frag || g.has_pend ? SD_RES_SUCCESS : SD_RES_NO_OBJ;
}

/* PEER_COPY (peer.h): a local copy of one fragment under a new object id. */
static int serve_copy(struct sheep *s, const struct sd_req *req, const void *data)
{
	uint64_t want, got = 0;
	if (!data || req->data_length != sizeof(want) || req->obj.oid == req->obj.cow_oid)
		return SD_RES_INVALID_PARMS;
	memcpy(&want, data, sizeof(want));
	struct store_meta m;
	int ret = store_stat(s->store, req->obj.cow_oid, req->obj.ec_index, &m);
	if (ret)
		return sheep_errno_to_res(ret);
	if (m.version != want)
		return SD_RES_EIO;
	void *buf = malloc(m.frag_size ? m.frag_size : 1);
	if (!buf)
		return SD_RES_NO_MEM;
	ret = store_read(s->store, req->obj.cow_oid, req->obj.ec_index, buf, 0, m.frag_size, &got);
	if (!ret && got != want)
		ret = -EIO;
	if (!ret) {
		struct store_meta d = m;
		d.oid = req->obj.oid;
		d.version = 1;
		d.write_id = 0;
		ret = store_replace(s->store, &d, buf, 0, m.frag_size);
	}
	free(buf);
	return sheep_errno_to_res(ret);
}

void peer_serve(struct sheep *s, const struct sd_req *req, const void *data, struct sd_rsp *rsp,
		void *rbuf, uint32_t *rlen)
{
	*rlen = 0;
	int res = req->opcode == SD_OP_PEER_COMMIT ? SD_RES_SUCCESS : check_epoch(s, req);
	uint64_t version = 0;
	bool update = is_checked_update(req, data);
	if ((res == SD_RES_OLD_NODE_VER || res == SD_RES_NEW_NODE_VER) && update &&
	    adjacent_epoch(s, req))
		res = SD_RES_SUCCESS;
	if (res != SD_RES_SUCCESS)
		goto out;
	if (!s->store) {
		res = SD_RES_NO_STORE;
		goto out;
	}
	int ret;
	/* recovery hook (sheep/recovery_ops.c): a gateway touching a fragment
	 * this node is still recovering is told to retry (it goes first); a
	 * checksum mismatch queues a repair of the fragment. */
	if ((req->opcode == SD_OP_PEER_READ || req->opcode == SD_OP_PEER_WRITE ||
	     req->opcode == SD_OP_PEER_GEN) &&
	    !(req->flags & SD_PEER_FLAG_ANY_EPOCH) && !update &&
	    sheep_recovery_busy(s, req->obj.oid, req->obj.ec_index)) {
		res = SD_RES_AGAIN;
		goto out;
	}
	switch (req->opcode) {
	case SD_OP_PEER_READ:
		ret = store_read(s->store, req->obj.oid, req->obj.ec_index, rbuf, req->obj.offset,
				 req->data_length, &version);
		if (ret == -EIO)
			sheep_recovery_report_bad(s, req->obj.oid, req->obj.ec_index);
		res = sheep_errno_to_res(ret);
		if (ret == 0)
			*rlen = req->data_length;
		break;
	case SD_OP_PEER_WRITE:
		res = serve_write(s, req, data, &version);
		break;
	case SD_OP_PEER_REMOVE:
		res = sheep_errno_to_res(store_remove(s->store, req->obj.oid, req->obj.ec_index));
		break;
	case SD_OP_PEER_COMMIT:
		res = serve_commit(s, req, data);
		break;
	case SD_OP_PEER_COPY:
		res = serve_copy(s, req, data);
		break;
	case SD_OP_PEER_GEN:
		res = serve_gen(s, req, rbuf, rlen, &version);
		break;
	case SD_OP_PEER_STAT: {
		struct store_meta m;
		if (req->data_length < sizeof(struct peer_frag)) {
			res = SD_RES_INVALID_PARMS;
			break;
		}
		ret = store_stat(s->store, req->obj.oid, req->obj.ec_index, &m);
		res = sheep_errno_to_res(ret);
		if (ret == 0) {
			struct list_ctx lc = {.out = rbuf, .cap = 1};
			list_one(&m, &lc);
			version = m.version;
			*rlen = sizeof(struct peer_frag);
		}
		break;
	}
	case SD_OP_PEER_LIST: {
		struct list_ctx lc = {.out = rbuf, .cap = req->data_length / sizeof(struct peer_frag)};
		ret = store_for_each(s->store, list_one, &lc);
		res = ret == -ENOSPC ? SD_RES_NO_SPACE : sheep_errno_to_res(ret);
		if (ret == 0)
			*rlen = (uint32_t)(lc.n * sizeof(struct peer_frag));
		break;
	}
	default:
		res = SD_RES_NO_SUPPORT;
	}
out:
	rsp->result = res;
	rsp->obj.offset = version;
	rsp->data_length = *rlen;
}

static bool is_self(struct sheep *s, const struct sd_node *n)
{
	return sd_node_eq(n, &s->self);
}

static void send_call(struct sheep *s, struct peer_call *c)
{
	c->fd = -1;
	c->req.proto_ver = SD_SHEEP_PROTO_VER;
	uint32_t plen = c->wlen + (c->has_whdr ? (uint32_t)sizeof(c->whdr) : 0);
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
	struct iovec iov[3];
	int n = 0;
	iov[n++] = (struct iovec){&c->req, sizeof(c->req)};
	if (c->req.flags & SD_FLAG_CMD_WRITE) {
		if (c->has_whdr)
			iov[n++] = (struct iovec){&c->whdr, sizeof(c->whdr)};
		if (c->wlen)
			iov[n++] = (struct iovec){(void *)c->wbuf, c->wlen};
	}
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
		n = 0;
		iov[n++] = (struct iovec){&c->req, sizeof(c->req)};
		if (c->req.flags & SD_FLAG_CMD_WRITE) {
			if (c->has_whdr)
				iov[n++] = (struct iovec){&c->whdr, sizeof(c->whdr)};
			if (c->wlen)
				iov[n++] = (struct iovec){(void *)c->wbuf, c->wlen};
		}
		if (sd_writev_full(fd, iov, n)) {
			close(fd);
			c->result = SD_RES_NETWORK_ERROR;
			return;
		}
	}
	c->fd = fd;
}

static void recv_call(struct sheep *s, struct peer_call *c)
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
	c->rlen = rsp.data_length;
	pool_put(s, c->node, c->fd);
	c->fd = -1;
}

static void serve_local(struct sheep *s, struct peer_call *c)
{
	c->req.proto_ver = SD_SHEEP_PROTO_VER;
	void *payload = NULL;
	if (c->has_whdr || c->wlen) {
		uint32_t hl = c->has_whdr ? (uint32_t)sizeof(c->whdr) : 0;
		c->req.data_length = c->wlen + hl;
		payload = malloc(c->req.data_length);
		if (!payload) {
			c->result = SD_RES_NO_MEM;
			return;
		}
		memcpy(payload, &c->whdr, hl);
		if (c->wlen)
			memcpy((char *)payload + hl, c->wbuf, c->wlen);
	} else {
		c->req.data_length = c->rcap;
	}
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	uint32_t rlen = 0;
	peer_serve(s, &c->req, payload, &rsp, c->rbuf, &rlen);
	free(payload);
	c->result = (int)rsp.result;
	c->version = rsp.obj.offset;
	c->rlen = rlen;
}

void peer_fanout(struct sheep *s, struct peer_call *calls, int n)
{
	for (int i = 0; i < n; i++) {
		calls[i].fd = -1;
		calls[i].result = SD_RES_NETWORK_ERROR;
		calls[i].rlen = 0;
		calls[i].version = 0;
		if (!calls[i].node)
			continue;
		if (!is_self(s, calls[i].node))
			send_call(s, &calls[i]);
	}
	for (int i = 0; i < n; i++)
		if (calls[i].node && is_self(s, calls[i].node))
			serve_local(s, &calls[i]);
	for (int i = 0; i < n; i++)
		if (calls[i].node && !is_self(s, calls[i].node))
			recv_call(s, &calls[i]);
}
