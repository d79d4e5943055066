/* nbd_io.c - NBD transmission phase: read requests, serve them on the worker pool all connections share, send simple or structured replies. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "sheep/nbd/nbd_priv.h"
#include "sheep/nbd/nbd_proto.h"

/* The NBD error for a backend -errno: the protocol knows a few values. */
static uint32_t nbd_errno(int ret)
{
	switch (-ret) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
		return NBD_EINVAL;
	case ENOSPC:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

/* One reply waiting to be sent: its header and small pieces copied into
 * hdr, then data (owned: freed once sent). */
struct nbd_reply {
	struct nbd_reply *next;
	void *data;
	uint32_t hlen, dlen;
	uint8_t hdr[];
};

#define NBD_REPLY_BATCH 64 /* replies per writev */

/* Write a list of replies, many per writev; frees them. -errno on the
 * first failure (the rest are freed unsent); fd < 0: only free them. */
static int write_replies(int fd, struct nbd_reply *r)
{
	int ret = fd < 0 ? -EPIPE : 0;
	while (r) {
		struct iovec iov[2 * NBD_REPLY_BATCH];
		struct nbd_reply *batch = r;
		int n = 0, k = 0;
		for (; r && k < NBD_REPLY_BATCH; r = r->next, k++) {
			iov[n++] = (struct iovec){r->hdr, r->hlen};
			if (r->dlen)
				iov[n++] = (struct iovec){r->data, r->dlen};
		}
		if (ret == 0)
			ret = sd_writev_full(fd, iov, n);
		while (batch != r) {
			struct nbd_reply *next = batch->next;
			free(batch->data);
			free(batch);
			batch = next;
		}
	}
	return ret;
}

/*
 * Send one reply: iov[0..n) in order; when owned, the last piece is a
 * malloc'd buffer that is freed once sent (or dropped). The reply is
 * queued; the thread that finds nobody sending sends every queued reply
 * (its own and those queued meanwhile) before it returns, so replies go
 * out in few writes and no worker sleeps on another's send. A failure
 * marks the connection dead and wakes the reader, which then winds down.
 * Guarantee: a reply queued here is written (or dropped, dead) before the
 * sender's own job counts as done, so the connection outlives it.
 */
static void send_locked(struct nbd_conn *c, struct iovec *iov, int n, bool owned)
{
	size_t hlen = 0;
	int nh = owned ? n - 1 : n;
	for (int i = 0; i < nh; i++)
		hlen += iov[i].iov_len;
	struct nbd_reply *r = malloc(sizeof(*r) + hlen);
	if (!r) {
		if (owned)
			free(iov[n - 1].iov_base);
		pthread_mutex_lock(&c->wlock);
		if (!c->dead) {
			c->dead = true; /* a reply lost: the client cannot go on */
			shutdown(c->fd, SHUT_RDWR);
		}
		pthread_mutex_unlock(&c->wlock);
		return;
	}
	r->next = NULL;
	r->hlen = (uint32_t)hlen;
	r->data = owned ? iov[n - 1].iov_base : NULL;
	r->dlen = owned ? (uint32_t)iov[n - 1].iov_len : 0;
	for (int i = 0, o = 0; i < nh; o += (int)iov[i].iov_len, i++)
		memcpy(r->hdr + o, iov[i].iov_base, iov[i].iov_len);
	pthread_mutex_lock(&c->wlock);
	if (c->rtail)
		c->rtail->next = r;
	else
		c->rhead = r;
	c->rtail = r;
	if (c->sending) {
		pthread_mutex_unlock(&c->wlock);
		return;
	}
	c->sending = true;
	while (c->rhead) {
		struct nbd_reply *list = c->rhead;
		c->rhead = c->rtail = NULL;
		int fd = c->dead ? -1 : c->fd;
		pthread_mutex_unlock(&c->wlock);
		int ret = write_replies(fd, list);
		pthread_mutex_lock(&c->wlock);
		if (ret < 0 && !c->dead) {
			c->dead = true;
			shutdown(c->fd, SHUT_RDWR);
		}
	}
	c->sending = false;
	pthread_mutex_unlock(&c->wlock);
}

void nbd_replies_drop(struct nbd_conn *c)
{
	while (c->rhead) {
		struct nbd_reply *next = c->rhead->next;
		free(c->rhead->data);
		free(c->rhead);
		c->rhead = next;
	}
	c->rtail = NULL;
}

/* One simple reply (and data for a successful READ; owned: data is
 * malloc'd and freed once sent). */
static void send_simple(struct nbd_conn *c, uint64_t handle, uint32_t error, void *data,
			uint32_t len, bool owned)
{
	struct nbd_simple_reply r = {
		.magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
		.error = htobe32(error),
		.handle = handle, /* opaque: echoed byte for byte */
	};
	struct iovec iov[2] = {{&r, sizeof(r)}, {data, len}};
	bool with = error == 0 && data && len;
	if (owned && !with)
		free(data);
	send_locked(c, iov, with ? 2 : 1, owned && with);
}

/* One structured reply chunk, the last of its request: header, then the
 * payload given as up to two pieces (owned: p2 is malloc'd and freed once
 * sent). */
static void send_chunk(struct nbd_conn *c, uint64_t handle, uint16_t type, const void *p1,
		       uint32_t l1, void *p2, uint32_t l2, bool owned)
{
	struct nbd_structured_reply r = {
		.magic = htobe32(NBD_STRUCTURED_REPLY_MAGIC),
		.flags = htobe16(NBD_REPLY_FLAG_DONE),
		.type = htobe16(type),
		.handle = handle,
		.length = htobe32(l1 + l2),
	};
	struct iovec iov[3];
	int n = 0;
	iov[n++] = (struct iovec){&r, sizeof(r)};
	if (l1)
		iov[n++] = (struct iovec){(void *)p1, l1};
	if (l2)
		iov[n++] = (struct iovec){p2, l2};
	if (owned && !l2)
		free(p2);
	send_locked(c, iov, n, owned && l2);
}

/* An error, as a structured ERROR chunk (with a message) when the client
 * negotiated structured replies, else as a simple reply. */
static void send_error(struct nbd_conn *c, uint64_t handle, uint32_t error, const char *msg)
{
	if (!c->structured) {
		send_simple(c, handle, error, NULL, 0, false);
		return;
	}
	uint8_t hdr[6];
	uint32_t e = htobe32(error);
	size_t n = msg ? strlen(msg) : 0;
	uint16_t ml = htobe16((uint16_t)(n > 4096 ? 4096 : n));
	memcpy(hdr, &e, 4);
	memcpy(hdr + 4, &ml, 2);
	send_chunk(c, handle, NBD_REPLY_TYPE_ERROR, hdr, sizeof(hdr), (void *)msg, be16toh(ml),
		   false);
}

/* The reply to a request that succeeded; data/len: the READ bytes or the
 * BLOCK_STATUS payload, malloc'd (or NULL): freed here or once sent. */
static void send_success(struct nbd_conn *c, const struct nbd_job *j, void *data, uint32_t len)
{
	if (!c->structured) {
		send_simple(c, j->handle, 0, data, j->type == NBD_CMD_READ ? len : 0, true);
		return;
	}
	if (j->type == NBD_CMD_READ && len > 0) {
		uint64_t off = htobe64(j->offset);
		send_chunk(c, j->handle, NBD_REPLY_TYPE_OFFSET_DATA, &off, 8, data, len, true);
	} else if (j->type == NBD_CMD_READ) {
		free(data);
		send_chunk(c, j->handle, NBD_REPLY_TYPE_NONE, NULL, 0, NULL, 0, false);
	} else if (j->type == NBD_CMD_BLOCK_STATUS) {
		/* its payload is small: copied into the reply */
		send_chunk(c, j->handle, NBD_REPLY_TYPE_BLOCK_STATUS, data, len, NULL, 0, false);
		free(data);
	} else {
		free(data);
		send_simple(c, j->handle, 0, NULL, 0, false);
	}
}

/*
 * NBD_CMD_BLOCK_STATUS for base:allocation: the backend's extents, merged
 * where their flags agree, clipped to the request, as the chunk payload
 * (context id, then length/flags pairs). With REQ_ONE, one extent.
 */
static int block_status(struct nbd_conn *c, const struct nbd_job *j, void **out, uint32_t *olen)
{
	uint32_t max = NBD_MAX_EXTENTS, n = 0;
	struct nbd_extent *ext = calloc(max, sizeof(*ext));
	if (!ext)
		return -ENOMEM;
	int ret = c->srv->ops->block_status(c->exp, j->length, j->offset, ext, max, &n);
	if (ret == 0 && n == 0)
		ret = -EIO;
	if (ret < 0) {
		free(ext);
		return ret;
	}
	uint32_t *p = malloc(4 + (size_t)n * 8);
	if (!p) {
		free(ext);
		return -ENOMEM;
	}
	p[0] = htobe32(NBD_META_ID_ALLOC);
	uint32_t out_n = 0;
	uint64_t left = j->length;
	for (uint32_t i = 0; i < n && left > 0; i++) {
		uint64_t l = SD_MIN(ext[i].length, left);
		if (l == 0)
			continue;
		if (out_n > 0 && be32toh(p[2 * out_n]) == ext[i].flags &&
		    be32toh(p[2 * out_n - 1]) + l <= UINT32_MAX) {
			p[2 * out_n - 1] = htobe32((uint32_t)(be32toh(p[2 * out_n - 1]) + l));
		} else {
			p[1 + 2 * out_n] = htobe32((uint32_t)l);
			p[2 + 2 * out_n] = htobe32(ext[i].flags);
			out_n++;
		}
		left -= l;
		if (out_n == 1 && (j->flags & NBD_CMD_FLAG_REQ_ONE))
			break;
	}
	free(ext);
	if (out_n == 0) {
		free(p);
		return -EIO;
	}
	*out = p;
	*olen = 4 + out_n * 8;
	return 0;
}

static int run_job(struct nbd_conn *c, struct nbd_job *j, void **rdata, uint32_t *rlen)
{
	const struct nbd_backend *ops = c->srv->ops;

	switch (j->type) {
	case NBD_CMD_READ: {
		void *buf = malloc(j->length ? j->length : 1);
		if (!buf)
			return -ENOMEM;
		int ret = ops->read(c->exp, buf, j->length, j->offset);
		if (ret < 0) {
			free(buf);
			return ret;
		}
		*rdata = buf;
		*rlen = j->length;
		return 0;
	}
	case NBD_CMD_WRITE:
		return ops->write(c->exp, j->data, j->length, j->offset);
	case NBD_CMD_FLUSH:
		/* Every acknowledged write is already durable (see nbd.h). */
		return 0;
	case NBD_CMD_TRIM:
		return ops->trim(c->exp, j->length, j->offset);
	case NBD_CMD_WRITE_ZEROES:
		return ops->zero(c->exp, j->length, j->offset, !(j->flags & NBD_CMD_FLAG_NO_HOLE));
	case NBD_CMD_BLOCK_STATUS:
		return block_status(c, j, rdata, rlen);
	default:
		return -EINVAL;
	}
}

/* Run one job of connection c, reply, and give its room back. The job's
 * reader may free c as soon as qlock is released with inflight at 0, so
 * c is not touched after that. */
static void serve_job(struct nbd_job *j)
{
	struct nbd_conn *c = j->conn;
	void *rdata = NULL;
	uint32_t rlen = 0;
	int ret = run_job(c, j, &rdata, &rlen);
	if (ret < 0) {
		sd_debug("nbd %s: cmd %u off %" PRIu64 " len %" PRIu32 ": %s", c->peer, j->type,
			 j->offset, j->length, strerror(-ret));
		free(rdata);
		send_error(c, j->handle, nbd_errno(ret), strerror(-ret));
	} else {
		send_success(c, j, rdata, rlen); /* takes rdata */
	}
	uint32_t bytes = j->bytes;
	free(j->data);
	free(j);

	pthread_mutex_lock(&c->qlock);
	c->inflight--;
	c->inflight_bytes -= bytes;
	pthread_cond_broadcast(&c->qroom);
	pthread_mutex_unlock(&c->qlock);
}

static void *worker_main(void *arg)
{
	struct nbd_pool *p = arg;

	pthread_setname_np(pthread_self(), "nbd-worker");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		struct nbd_job *j = p->head;
		if (!j)
			break; /* stopping and drained */
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		serve_job(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

void nbd_pool_init(struct nbd_pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
}

/* Called once no connection is left: the queue is empty by then. */
void nbd_pool_stop(struct nbd_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	int n = p->nr_workers;
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < n; i++)
		pthread_join(p->workers[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
}

/* Queue a job of c on the server's pool, after waiting for c's room;
 * start a worker if none is idle and the pool is not full. -EAGAIN (job
 * not queued) when the pool has no thread and none can start. */
static int enqueue(struct nbd_conn *c, struct nbd_job *j)
{
	struct nbd_pool *p = &c->srv->pool;
	size_t bytes = j->bytes;

	pthread_mutex_lock(&c->qlock);
	while (c->inflight >= NBD_MAX_INFLIGHT ||
	       (c->inflight > 0 && c->inflight_bytes + bytes > NBD_MAX_INFLIGHT_BYTES))
		pthread_cond_wait(&c->qroom, &c->qlock);
	c->inflight++;
	c->inflight_bytes += bytes;
	pthread_mutex_unlock(&c->qlock);

	j->conn = c;
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	/* Idle workers that have not picked up a job yet still count as idle:
	 * compare with the jobs nobody has taken. */
	if (p->queued + 1 > p->idle && p->nr_workers < NBD_POOL_WORKERS) {
		if (pthread_create(&p->workers[p->nr_workers], NULL, worker_main, p) == 0)
			p->nr_workers++;
		else if (p->nr_workers == 0)
			sd_err("nbd %s: cannot start a worker", c->peer);
	}
	bool ok = p->nr_workers > 0;
	if (ok) {
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->queued++;
	}
	pthread_mutex_unlock(&p->lock);
	if (ok) {
		/* after the unlock, as sd_wq_queue: the pool outlives its jobs */
		pthread_cond_signal(&p->cond);
		return 0;
	}
	pthread_mutex_lock(&c->qlock);
	c->inflight--;
	c->inflight_bytes -= bytes;
	pthread_mutex_unlock(&c->qlock);
	free(j->data);
	free(j);
	return -EAGAIN;
}

/* Check a request against the export; 0 or the NBD error to reply with. */
static uint32_t check_request(const struct nbd_conn *c, const struct nbd_request *rq)
{
	uint64_t size = c->info.size;
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	bool writes = false;

	switch (rq->type) {
	case NBD_CMD_READ:
	case NBD_CMD_FLUSH:
		break;
	case NBD_CMD_BLOCK_STATUS:
		if (!c->meta_alloc || rq->length == 0)
			return NBD_EINVAL;
		allowed |= NBD_CMD_FLAG_REQ_ONE;
		break;
	case NBD_CMD_WRITE:
	case NBD_CMD_TRIM:
		writes = true;
		break;
	case NBD_CMD_WRITE_ZEROES:
		writes = true;
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		break;
	default:
		return NBD_EINVAL;
	}
	if (rq->flags & ~allowed)
		return NBD_EINVAL;
	if (writes && c->info.readonly)
		return NBD_EPERM;
	if ((rq->type == NBD_CMD_READ || rq->type == NBD_CMD_WRITE) &&
	    rq->length > NBD_MAX_REQUEST)
		return NBD_EINVAL;
	if (rq->type != NBD_CMD_FLUSH && (rq->offset > size || rq->length > size - rq->offset))
		return (rq->type == NBD_CMD_WRITE || rq->type == NBD_CMD_WRITE_ZEROES)
			       ? NBD_ENOSPC
			       : NBD_EINVAL;
	return 0;
}

/* Why check_request() refused rq, for a structured error's message. */
static const char *refusal(const struct nbd_conn *c, const struct nbd_request *rq, uint32_t err)
{
	if (err == NBD_EPERM)
		return "the export is read-only";
	if (err == NBD_ENOSPC)
		return "write past the end of the export";
	if (rq->type == NBD_CMD_BLOCK_STATUS && !c->meta_alloc)
		return "no meta context selected (NBD_OPT_SET_META_CONTEXT base:allocation)";
	return "bad request: unknown command or flags, or range outside the export";
}

/* Wait until every request of c has been answered (or failed to be). */
static void wind_down(struct nbd_conn *c)
{
	pthread_mutex_lock(&c->qlock);
	while (c->inflight > 0)
		pthread_cond_wait(&c->qroom, &c->qlock);
	pthread_mutex_unlock(&c->qlock);
}

/* The request stream, read in chunks: a client with many requests in
 * flight sends them back to back, and one read takes several. */
struct nbd_rbuf {
	size_t pos, len;
	char buf[16384];
};

/* n bytes of the stream into dst (as sd_read_full: -ECONNRESET at EOF);
 * a payload larger than the buffer is read straight into dst. */
static int rbuf_read(int fd, struct nbd_rbuf *b, void *dst, size_t n)
{
	char *d = dst;
	for (;;) {
		size_t k = SD_MIN(b->len - b->pos, n);
		memcpy(d, b->buf + b->pos, k);
		b->pos += k;
		d += k;
		n -= k;
		if (n == 0)
			return 0;
		if (n >= sizeof(b->buf))
			return sd_read_full(fd, d, n);
		ssize_t r = read(fd, b->buf, sizeof(b->buf));
		if (r < 0 && errno == EINTR)
			r = 0, b->pos = b->len = 0;
		else if (r < 0)
			return -errno;
		else if (r == 0)
			return -ECONNRESET;
		b->pos = 0;
		b->len = (size_t)r;
	}
}

void nbd_transmission(struct nbd_conn *c)
{
	struct nbd_request rq;
	const char *why = "client closed the connection";
	struct nbd_rbuf *rb = malloc(sizeof(*rb));
	if (!rb) {
		sd_err("nbd %s: out of memory", c->peer);
		return;
	}
	rb->pos = rb->len = 0;

	for (;;) {
		int ret = rbuf_read(c->fd, rb, &rq, sizeof(rq));
		if (ret < 0) {
			if (ret != -ECONNRESET)
				why = "read error";
			break;
		}
		rq.magic = be32toh(rq.magic);
		rq.flags = be16toh(rq.flags);
		rq.type = be16toh(rq.type);
		rq.offset = be64toh(rq.offset);
		rq.length = be32toh(rq.length);
		/* rq.handle stays as sent */
		if (rq.magic != NBD_REQUEST_MAGIC) {
			why = "bad request magic";
			break;
		}
		if (rq.type == NBD_CMD_DISC) {
			why = "client disconnected (NBD_CMD_DISC)";
			break;
		}

		uint32_t err = check_request(c, &rq);
		char *data = NULL;
		if (rq.type == NBD_CMD_WRITE) {
			if (rq.length > NBD_MAX_REQUEST) {
				/* Cannot skip that much safely: say why, then close. */
				send_error(c, rq.handle, NBD_EINVAL, "write longer than the maximum block size");
				why = "oversize write";
				break;
			}
			data = malloc(rq.length ? rq.length : 1);
			if (!data) {
				why = "out of memory";
				break;
			}
			/* The whole payload first: a write is never applied
			 * from a partial one. */
			if (rbuf_read(c->fd, rb, data, rq.length) < 0) {
				free(data);
				why = "client vanished in the middle of a write";
				break;
			}
		}
		if (err) {
			free(data);
			sd_debug("nbd %s: rejecting cmd %u off %" PRIu64 " len %" PRIu32 ": error %u",
				 c->peer, rq.type, rq.offset, rq.length, err);
			send_error(c, rq.handle, err, refusal(c, &rq, err));
			continue;
		}

		struct nbd_job *j = malloc(sizeof(*j));
		if (!j) {
			free(data);
			why = "out of memory";
			break;
		}
		*j = (struct nbd_job){.type = rq.type,
				      .flags = rq.flags,
				      .handle = rq.handle,
				      .offset = rq.offset,
				      .length = rq.length,
				      .bytes = (rq.type == NBD_CMD_READ || rq.type == NBD_CMD_WRITE)
						       ? rq.length
						       : 0,
				      .data = data};
		if (enqueue(c, j) < 0) {
			why = "no worker thread";
			break;
		}
	}
	sd_info("nbd %s: %s", c->peer, why);
	free(rb);
	wind_down(c);
}
