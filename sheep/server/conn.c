/* conn.c - client and peer connections: accept, non-blocking request framing, dispatch to workers, replies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/store/store.h"
#include "sheep/metrics/metrics.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"
#include "sheep/server/server.h"
#include "sheep/cluster/cluster.h"

/* Backpressure: stop reading a connection while it has this many requests
 * or payload bytes in flight. */
#define CONN_MAX_INFLIGHT 64
#define CONN_MAX_INFLIGHT_BYTES (256u << 20)

struct outbuf {
	struct sd_rsp rsp;
	void *data;
	uint32_t len;
	size_t done; /* bytes of header+data already written */
	bool close_after;
	struct outbuf *next;
};

struct conn {
	struct sheep *s;
	int fd;
	uint64_t id;
	int refs;
	bool dead;
	bool paused;
	/* reading */
	struct sd_req hdr;
	size_t hdr_got;
	char *payload;
	uint32_t pay_got;
	bool in_payload;
	int inflight;
	uint64_t inflight_bytes;
	/* writing */
	struct outbuf *out_head, *out_tail;
	bool want_out;
	bool locks_taken;
	struct conn *prev, *next; /* s->conns while open */
};

static void conn_put(struct conn *c)
{
	if (--c->refs > 0)
		return;
	struct outbuf *o = c->out_head;
	while (o) {
		struct outbuf *n = o->next;
		free(o->data);
		free(o);
		o = n;
	}
	free(c->payload);
	free(c);
}

static void conn_close(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	struct sheep *s = c->s;
	sd_debug("connection %llu closed: %s", (unsigned long long)c->id, why);
	c->dead = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	sd_loop_del(s->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	if (c->locks_taken)
		group_release_owner(s, (1ull << 62) | c->id);
	conn_put(c);
}

static void conn_update_events(struct conn *c)
{
	if (c->dead)
		return;
	uint32_t ev = 0;
	bool full = c->inflight >= CONN_MAX_INFLIGHT || c->inflight_bytes >= CONN_MAX_INFLIGHT_BYTES;
	c->paused = full;
	if (!full)
		ev |= EPOLLIN;
	if (c->out_head)
		ev |= EPOLLOUT;
	sd_loop_mod(c->s->loop, c->fd, ev | EPOLLRDHUP);
}

/* Write what can be written now; false when the connection died. */
static bool conn_flush(struct conn *c)
{
	while (c->out_head && !c->dead) {
		struct outbuf *o = c->out_head;
		struct iovec iov[2];
		int n = 0;
		size_t hl = sizeof(o->rsp);
		if (o->done < hl)
			iov[n++] = (struct iovec){(char *)&o->rsp + o->done, hl - o->done};
		if (o->len) {
			size_t dd = o->done > hl ? o->done - hl : 0;
			iov[n++] = (struct iovec){(char *)o->data + dd, o->len - dd};
		}
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			conn_close(c, "write error");
			return false;
		}
		o->done += (size_t)w;
		if (o->done < hl + o->len)
			continue;
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		bool close_after = o->close_after;
		free(o->data);
		free(o);
		if (close_after) {
			conn_close(c, "closed after reply");
			return false;
		}
	}
	return true;
}

static void conn_queue_reply(struct conn *c, const struct sd_rsp *rsp, void *data, uint32_t len,
			     bool close_after)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	if (!o) {
		free(data);
		conn_close(c, "out of memory");
		return;
	}
	o->rsp = *rsp;
	o->rsp.data_length = len;
	o->data = data;
	o->len = len;
	o->close_after = close_after;
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	if (conn_flush(c))
		conn_update_events(c);
}

static void reply_error(struct conn *c, const struct sd_req *hdr, int res, bool close_after)
{
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	rsp.proto_ver = hdr->proto_ver;
	rsp.opcode = hdr->opcode;
	rsp.id = hdr->id;
	rsp.epoch = group_epoch(c->s);
	rsp.result = (uint32_t)res;
	conn_queue_reply(c, &rsp, NULL, 0, close_after);
}

/* A client's object read or write that succeeded: its bytes by the VDI's policy. */
static void count_policy_bytes(struct request *r)
{
	uint8_t op = r->hdr.opcode;
	bool rd = op == SD_OP_READ_OBJ;
	if (!r->s->metrics || r->rsp.result != SD_RES_SUCCESS ||
	    (!rd && op != SD_OP_WRITE_OBJ && op != SD_OP_CREATE_AND_WRITE_OBJ))
		return;
	struct vdi_entry e;
	if (group_vdi_find(r->s, oid_to_vid(r->hdr.obj.oid), &e))
		return;
	sheep_metrics_sd_policy(r->s->metrics, rd ? SM_READ : SM_WRITE,
				sheep_metrics_policy(e.copy_policy, e.nr_copies),
				rd ? r->rlen : r->hdr.data_length);
}

/* A version-only prepare of a fragment its write does not change
 * (PEER_WH_LAZY): its record is not waited on, so the log writer must
 * not hold a sync for it. Every peer write also passes its coordinator's
 * group-commit hint to the log as it arrives (store_wal_hint). */
static bool conn_lazy_bump(const struct sd_req *hdr, const void *payload, uint32_t *hint)
{
	struct peer_write_hdr wh;
	if (!payload || hdr->data_length < sizeof(wh))
		return false;
	memcpy(&wh, payload, sizeof(wh));
	*hint = wh.hint;
	return hdr->data_length == sizeof(wh) && (wh.flags & PEER_WH_LAZY) != 0;
}

static void request_work(struct sd_work *w)
{
	struct request *r = (struct request *)w;
	uint64_t t0 = sd_now_ns();
	if (r->wal_announced)
		store_wal_claim(r->s->store);
	ops_exec(r->s, r);
	if (r->wal_announced)
		store_wal_unclaim(r->s->store);
	sheep_metrics_request(r->s->metrics, r->hdr.opcode, r->rsp.result,
			      (r->hdr.flags & SD_FLAG_CMD_WRITE) ? r->hdr.data_length : 0, r->rlen,
			      sd_now_ns() - t0);
	count_policy_bytes(r);
}

static void request_done(struct sd_work *w)
{
	struct request *r = (struct request *)w;
	struct conn *c = r->conn;
	c->inflight--;
	c->inflight_bytes -= r->hdr.data_length;
	if (r->rsp.opcode == SD_OP_LOCK_VDI && r->rsp.result == SD_RES_SUCCESS)
		c->locks_taken = true;
	void *reply = r->rdata;
	if (r->data != reply)
		free(r->data);
	if (!r->rlen) {
		free(reply);
		reply = NULL;
	}
	if (!c->dead) {
		conn_queue_reply(c, &r->rsp, reply, r->rlen, r->close_after);
		if (!c->dead)
			conn_update_events(c);
	} else {
		free(reply);
	}
	if (r->close_after &&
	    (r->rsp.opcode == SD_OP_SHUTDOWN || r->rsp.opcode == SD_OP_KILL_NODE)) {
		atomic_store(&r->s->stopping, true);
		sd_loop_stop(r->s->loop);
	}
	conn_put(c);
	free(r);
}

/* A whole request has arrived: validate and hand it to a worker. */
static void conn_dispatch(struct conn *c)
{
	struct sheep *s = c->s;
	struct sd_req hdr = c->hdr;
	char *payload = c->payload;
	c->payload = NULL;
	c->hdr_got = 0;
	c->pay_got = 0;
	c->in_payload = false;
	int res = ops_check_header(&hdr);
	if (res != SD_RES_SUCCESS) {
		free(payload);
		reply_error(c, &hdr, res, false);
		return;
	}
	struct request *r = calloc(1, sizeof(*r));
	if (!r) {
		free(payload);
		reply_error(c, &hdr, SD_RES_NO_MEM, false);
		return;
	}
	r->s = s;
	r->conn = c;
	r->owner = (1ull << 62) | c->id;
	r->hdr = hdr;
	r->data = payload;
	r->data_cap = payload ? hdr.data_length : 0;
	r->work.fn = request_work;
	r->work.done = request_done;
	c->refs++;
	c->inflight++;
	c->inflight_bytes += hdr.data_length;
	enum ops_kind kind = ops_lookup(hdr.opcode)->kind; /* known: checked above */
	uint32_t hint = 0;
	if (hdr.opcode == SD_OP_PEER_WRITE && s->store && !conn_lazy_bump(&hdr, payload, &hint)) {
		/* it will log a durable record: the log writer waits for it */
		r->wal_announced = true;
		store_wal_expect(s->store, 1);
	}
	/* After the announcement: a hint saying nothing more is coming must
	 * not let the writer sync before this record joins. */
	if (hdr.opcode == SD_OP_PEER_WRITE && s->store)
		store_wal_hint(s->store, hint);
	struct sd_wq *wq = kind == OPS_PEER ? s->peer_wq : kind == OPS_FORWARD ? s->fwd_wq : s->gw_wq;
	sd_wq_queue(wq, &r->work);
	conn_update_events(c);
}

static void conn_read(struct conn *c)
{
	for (int rounds = 0; rounds < 64 && !c->dead && !c->paused; rounds++) {
		ssize_t n;
		if (!c->in_payload) {
			n = recv(c->fd, (char *)&c->hdr + c->hdr_got, sizeof(c->hdr) - c->hdr_got,
				 MSG_DONTWAIT);
		} else {
			n = recv(c->fd, c->payload + c->pay_got, c->hdr.data_length - c->pay_got,
				 MSG_DONTWAIT);
		}
		if (n == 0) {
			conn_close(c, c->hdr_got || c->in_payload ? "peer closed mid-request" : "eof");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c, "read error");
			return;
		}
		if (!c->in_payload) {
			c->hdr_got += (size_t)n;
			if (c->hdr_got < sizeof(c->hdr))
				continue;
			/* Bound the payload before allocating anything for it. */
			if (c->hdr.data_length > SD_MAX_PAYLOAD) {
				sd_warn("connection %llu: data_length %u exceeds %u: closing",
					(unsigned long long)c->id, c->hdr.data_length, SD_MAX_PAYLOAD);
				reply_error(c, &c->hdr, SD_RES_INVALID_PARMS, true);
				if (!c->dead) {
					/* Stop reading; the close follows the reply. */
					c->paused = true;
					shutdown(c->fd, SHUT_RD);
				}
				return;
			}
			if ((c->hdr.flags & SD_FLAG_CMD_WRITE) && c->hdr.data_length) {
				c->payload = malloc(c->hdr.data_length);
				if (!c->payload) {
					conn_close(c, "out of memory for payload");
					return;
				}
				c->in_payload = true;
				c->pay_got = 0;
				continue;
			}
			conn_dispatch(c);
		} else {
			c->pay_got += (uint32_t)n;
			if (c->pay_got == c->hdr.data_length)
				conn_dispatch(c);
		}
	}
}

static void on_conn_event(int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	c->refs++;
	if (events & EPOLLOUT)
		if (conn_flush(c))
			conn_update_events(c);
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && !c->paused)
		conn_read(c);
	if (!c->dead && (events & (EPOLLHUP | EPOLLERR)))
		conn_close(c, "hangup");
	conn_put(c);
}

static void on_accept(int lfd, uint32_t events, void *arg)
{
	struct sheep *s = arg;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				sd_warn("accept: %s", strerror(errno));
			return;
		}
		sd_set_nodelay(fd);
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->id = ++s->next_conn_id;
		c->refs = 1;
		if (sd_loop_add(s->loop, fd, EPOLLIN | EPOLLRDHUP, on_conn_event, c)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
	}
}

int conn_listen(struct sheep *s)
{
	int fd = sd_listen(s->opt.bind_addr, s->opt.port, 1024);
	if (fd < 0) {
		sd_err("cannot listen on %s:%u: %s", s->opt.bind_addr ? s->opt.bind_addr : "*",
		       s->opt.port, strerror(-fd));
		return fd;
	}
	sd_set_nonblock(fd, 1);
	s->listen_fd = fd;
	return sd_loop_add(s->loop, fd, EPOLLIN, on_accept, s);
}

void conn_shutdown_all(struct sheep *s)
{
	if (s->listen_fd >= 0) {
		sd_loop_del(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
	}
	for (struct conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
}
