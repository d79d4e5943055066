/* conn.c - client and peer connections: accept, request framing, dispatch, replies. */
#include <errno.h>
#include <pthread.h>
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
#define CONN_MAX_INFLIGHT	64
#define CONN_MAX_INFLIGHT_BYTES (256u << 20)

struct outbuf {
	struct sd_rsp rsp;
	void *data;
	uint32_t len;
	size_t done; /* bytes of header+data already written */
	bool close_after;
	struct outbuf *next;
};

/*
 * A connection belongs to the loop thread, except what a worker touches
 * when it sends its reply itself (request_work): refs, inflight and
 * inflight_bytes (atomics), paused (atomic: the loop stores it, then
 * rereads inflight; a worker lowers inflight, then reads paused, so one of
 * them sees the other) and, under wmu, fd as a writer's and the queue of
 * replies. The loop closes fd under wmu, so a worker never writes to a
 * closed (or reused) descriptor.
 */
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
	pthread_mutex_t wmu;
	struct outbuf *out_head, *out_tail;
	bool locks_taken;
	/* Served in place by a thread of its own, off the loop (see
	 * conn_serve_in_place); written by the loop only. */
	bool in_place;
	struct conn *prev, *next; /* s->conns while open */
};

static void conn_get(struct conn *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

static void conn_put(struct conn *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_mutex_destroy(&c->wmu);
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
	pthread_mutex_lock(&c->wmu);
	close(c->fd);
	c->fd = -1;
	pthread_mutex_unlock(&c->wmu);
	if (c->locks_taken)
		group_release_owner(s, (1ull << 62) | c->id);
	conn_put(c);
}

static bool conn_full(struct conn *c)
{
	return __atomic_load_n(&c->inflight, __ATOMIC_SEQ_CST) >= CONN_MAX_INFLIGHT ||
	       __atomic_load_n(&c->inflight_bytes, __ATOMIC_SEQ_CST) >= CONN_MAX_INFLIGHT_BYTES;
}

static void conn_update_events(struct conn *c)
{
	if (c->dead || c->in_place)
		return;
	uint32_t ev = 0;
	bool full = conn_full(c);
	if (full) {
		__atomic_store_n(&c->paused, true, __ATOMIC_SEQ_CST);
		full = conn_full(c); /* a worker's decrement since: it saw no pause */
	}
	__atomic_store_n(&c->paused, full, __ATOMIC_SEQ_CST);
	if (!full)
		ev |= EPOLLIN;
	pthread_mutex_lock(&c->wmu);
	if (c->out_head)
		ev |= EPOLLOUT;
	pthread_mutex_unlock(&c->wmu);
	sd_loop_mod(c->s->loop, c->fd, ev | EPOLLRDHUP);
}

enum flush_res { FLUSH_OK, FLUSH_ERROR, FLUSH_CLOSE };

/* Write what can be written now, under wmu; the caller closes the
 * connection on FLUSH_ERROR (a write error) or FLUSH_CLOSE (a reply that
 * ends it was sent). */
static enum flush_res conn_flush_locked(struct conn *c)
{
	while (c->out_head && c->fd >= 0) {
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
				return FLUSH_OK;
			return FLUSH_ERROR;
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
		if (close_after)
			return FLUSH_CLOSE;
	}
	return FLUSH_OK;
}

/* On the loop: write what can be written now; false when the connection
 * died. */
static bool conn_flush(struct conn *c)
{
	if (c->dead)
		return false;
	pthread_mutex_lock(&c->wmu);
	enum flush_res f = conn_flush_locked(c);
	pthread_mutex_unlock(&c->wmu);
	if (f == FLUSH_OK)
		return true;
	conn_close(c, f == FLUSH_ERROR ? "write error" : "closed after reply");
	return false;
}

static struct outbuf *outbuf_new(const struct sd_rsp *rsp, void *data, uint32_t len,
				 bool close_after)
{
	struct outbuf *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->rsp = *rsp;
	o->rsp.data_length = len;
	o->data = data;
	o->len = len;
	o->close_after = close_after;
	return o;
}

/* Under wmu. */
static void outbuf_append(struct conn *c, struct outbuf *o)
{
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
}

static void conn_queue_reply(struct conn *c, const struct sd_rsp *rsp, void *data, uint32_t len,
			     bool close_after)
{
	struct outbuf *o = outbuf_new(rsp, data, len, close_after);
	if (!o) {
		free(data);
		conn_close(c, "out of memory");
		return;
	}
	pthread_mutex_lock(&c->wmu);
	outbuf_append(c, o);
	pthread_mutex_unlock(&c->wmu);
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
	return hdr->data_length == peer_write_skip(&wh, hdr->data_length) &&
	       (wh.flags & PEER_WH_LAZY) != 0;
}

/* A peer write that arrived: pass its coordinator's hint to the log and,
 * with announce (a request handed to a pool), announce the durable record
 * it will log, so the log writer waits for it. True when announced. */
static bool conn_note_write(struct sheep *s, const struct sd_req *hdr, const void *payload,
			    bool announce)
{
	if (hdr->opcode != SD_OP_PEER_WRITE || !s->store)
		return false;
	uint32_t hint = 0;
	bool announced = !conn_lazy_bump(hdr, payload, &hint) && announce;
	if (announced)
		store_wal_expect(s->store, 1);
	/* After the announcement: a hint saying nothing more is coming must
	 * not let the writer sync before this record joins. */
	store_wal_hint(s->store, hint);
	return announced;
}

/* r's reply is sent or queued: it no longer counts against the
 * connection's backpressure (a worker's decrement, then its read of
 * paused; see struct conn). */
static void conn_request_gone(struct conn *c, const struct request *r)
{
	__atomic_sub_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&c->inflight_bytes, r->hdr.data_length, __ATOMIC_SEQ_CST);
}

/* The reply's payload, taken out of r (r->data freed unless it is that). */
static void *reply_take(struct request *r)
{
	void *reply = r->rdata;
	if (r->data != reply)
		free(r->data);
	if (!r->rlen) {
		free(reply);
		reply = NULL;
	}
	r->data = r->rdata = NULL;
	return reply;
}

/*
 * On the worker that ran r: send its reply now rather than through the
 * loop (a wake of the loop and a pass through it per request). Only when
 * no earlier reply is queued; else, or for what the socket does not take
 * now, the reply is queued for the loop to send. Replies that change the
 * connection (a lock taken, a close after) go through the loop. Returns
 * false when r is finished and freed here; true when the loop still has
 * to run request_done: to send the reply itself, or (r->replied) to watch
 * for room to send the rest or to resume reading a paused connection.
 */
static bool reply_direct(struct request *r)
{
	struct conn *c = r->conn;
	if (r->close_after || r->rsp.opcode == SD_OP_LOCK_VDI)
		return true;
	void *reply = reply_take(r);
	struct outbuf *o = outbuf_new(&r->rsp, reply, r->rlen, false);
	bool wake = false;
	pthread_mutex_lock(&c->wmu);
	if (o) {
		bool empty = !c->out_head;
		outbuf_append(c, o);
		/* A write error leaves it queued: the loop sees the socket
		 * fail too, and closes it. */
		if (empty)
			conn_flush_locked(c);
		wake = empty && c->out_head; /* else the loop already watches for room */
	} else {
		free(reply);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR); /* out of memory: the loop closes it */
	}
	pthread_mutex_unlock(&c->wmu);
	conn_request_gone(c, r);
	if (wake || __atomic_load_n(&c->paused, __ATOMIC_SEQ_CST)) {
		r->replied = true;
		return true;
	}
	conn_put(c);
	free(r);
	return false;
}

/* Run r on this thread: the operation, then its metrics. */
static void request_run(struct request *r)
{
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

static bool request_work(struct sd_work *w)
{
	struct request *r = (struct request *)w;
	request_run(r);
	return reply_direct(r);
}

static void request_done(struct sd_work *w)
{
	struct request *r = (struct request *)w;
	struct conn *c = r->conn;
	if (r->replied) {
		/* sent (or queued) by its worker: watch for room, or resume */
		conn_update_events(c);
		conn_put(c);
		free(r);
		return;
	}
	conn_request_gone(c, r);
	if (r->rsp.opcode == SD_OP_LOCK_VDI && r->rsp.result == SD_RES_SUCCESS)
		c->locks_taken = true;
	void *reply = reply_take(r);
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

/* A request of c (hdr, payload of plen bytes, taken), for a pool or for
 * c's own thread; NULL when out of memory. */
static struct request *request_new(struct conn *c, const struct sd_req *hdr, char *payload,
				   uint32_t plen)
{
	struct request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->s = c->s;
	r->conn = c;
	r->owner = (1ull << 62) | c->id;
	r->hdr = *hdr;
	r->data = payload;
	r->data_cap = plen;
	r->work.fn = request_work;
	r->work.done = request_done;
	return r;
}

/*
 * Peer connections served in place. A sheep's peer client (peer/client.c)
 * sends one request at a time on a connection and waits for its reply.
 * Through the loop, each such request costs two thread switches on this
 * side before any work: the loop's wake on the socket, then the pool
 * worker's. A thread of the connection's own, blocked in recv on it, is
 * woken by the kernel directly. So the first peer or forwarded request
 * (OPS_PEER, OPS_FORWARD) that arrives on an idle connection (nothing in
 * flight, no reply queued) takes the connection off the loop: a thread
 * runs it and every following request of those kinds in arrival order,
 * sending each reply itself. A request of another kind it leaves unread,
 * and the connection goes back to the loop, which reads it as before; at
 * end of file the loop closes the connection. At most CONN_MAX_THREADS
 * such threads at once; past that, requests go to the pools as before.
 *
 * While c->in_place the loop does not watch c->fd and no worker holds a
 * request of c, so the thread is c's only reader and writer; the loop
 * only shuts the socket down at exit (conn_shutdown_all), which ends the
 * thread's recv. The thread hands c back with sd_loop_call.
 */
#define CONN_MAX_THREADS  128
#define CONN_THREAD_STACK (1u << 20) /* as the pools' (lib/work.c) */

static void on_conn_event(int fd, uint32_t events, void *arg);

static bool in_place_kind(const struct sd_req *hdr)
{
	if (ops_check_header(hdr) != SD_RES_SUCCESS)
		return false;
	enum ops_kind k = ops_lookup(hdr->opcode)->kind;
	return k == OPS_PEER || k == OPS_FORWARD;
}

/* On the loop: c's thread has ended; it left the next request unread
 * (back), or the peer closed the connection or it failed (!back). */
static void in_place_done(struct conn *c, bool back)
{
	c->in_place = false;
	if (back && !c->dead &&
	    sd_loop_add(c->s->loop, c->fd, EPOLLIN | EPOLLRDHUP, on_conn_event, c))
		back = false;
	if (!back)
		conn_close(c, "eof (served in place)");
	conn_put(c);
}

static void in_place_back(void *arg)
{
	in_place_done(arg, true);
}

static void in_place_end(void *arg)
{
	in_place_done(arg, false);
}

/* A first reply of r before its final one, on the blocking socket of the
 * connection r's thread serves. */
static bool in_place_interim(void *arg, const struct sd_rsp *rsp, const void *data, uint32_t len)
{
	struct request *r = arg;
	struct iovec iov[2] = {{(void *)rsp, sizeof(*rsp)}, {(void *)data, len}};
	return sd_writev_full(r->conn->fd, iov, len ? 2 : 1) == 0;
}

/* Run r and send its reply on the blocking socket; false on a send error. */
static bool in_place_serve(struct request *r)
{
	struct conn *c = r->conn;
	conn_note_write(c->s, &r->hdr, r->data, false);
	r->interim = in_place_interim;
	request_run(r);
	void *reply = reply_take(r);
	r->rsp.data_length = r->rlen;
	struct iovec iov[2] = {{&r->rsp, sizeof(r->rsp)}, {reply, r->rlen}};
	int ret = sd_writev_full(c->fd, iov, r->rlen ? 2 : 1);
	free(reply);
	free(r);
	return ret == 0;
}

/* The next request of c if it is one to serve here; NULL when the
 * connection ended (*back false) or goes back to the loop (*back true). */
static struct request *in_place_next(struct conn *c, bool *back)
{
	struct sd_req hdr;
	*back = false;
	ssize_t n;
	do
		n = recv(c->fd, &hdr, sizeof(hdr), MSG_PEEK | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return NULL;
	if (n < (ssize_t)sizeof(hdr)) {
		/* part of a header, then end of file or an error: the loop
		 * says which, as for any connection */
		*back = true;
		return NULL;
	}
	if (!in_place_kind(&hdr) || hdr.data_length > SD_MAX_PAYLOAD) {
		*back = true; /* the loop replies to it, as to any request */
		return NULL;
	}
	if (sd_read_full(c->fd, &hdr, sizeof(hdr)))
		return NULL;
	/* A read's data_length is the room for its reply: no payload. */
	uint32_t plen = (hdr.flags & SD_FLAG_CMD_WRITE) ? hdr.data_length : 0;
	char *payload = plen ? malloc(plen) : NULL;
	if ((plen && !payload) || (payload && sd_read_full(c->fd, payload, plen))) {
		free(payload);
		return NULL;
	}
	struct request *r = request_new(c, &hdr, payload, plen);
	if (!r)
		free(payload);
	return r;
}

/* A thread serving in place has ended (or never started). */
static void conn_thread_gone(struct sheep *s)
{
	pthread_mutex_lock(&s->conn_mu);
	if (--s->conn_threads == 0)
		pthread_cond_broadcast(&s->conn_cond);
	pthread_mutex_unlock(&s->conn_mu);
}

static void *in_place_main(void *arg)
{
	struct request *r = arg;
	struct conn *c = r->conn;
	struct sheep *s = c->s;
	pthread_setname_np(pthread_self(), "sd_conn");
	bool back = false;
	if (sd_set_nonblock(c->fd, 0)) {
		free(r->data);
		free(r);
		r = NULL;
	}
	while (r && in_place_serve(r))
		r = in_place_next(c, &back);
	if (back && sd_set_nonblock(c->fd, 1))
		back = false;
	if (sd_loop_call(s->loop, back ? in_place_back : in_place_end, c))
		sd_err("connection %llu: cannot hand it back to the loop: leaked",
		       (unsigned long long)c->id);
	conn_thread_gone(s);
	return NULL;
}

/* On the loop, for r just read from c: start a thread serving c in place
 * with r first, when r is a peer or forwarded request and c is idle.
 * False: dispatch r to a pool. */
static bool conn_serve_in_place(struct conn *c, struct request *r)
{
	struct sheep *s = c->s;
	if (!in_place_kind(&r->hdr) || s->opt.test_no_in_place ||
	    __atomic_load_n(&c->inflight, __ATOMIC_SEQ_CST) || atomic_load(&s->stopping))
		return false;
	pthread_mutex_lock(&c->wmu);
	bool queued = c->out_head != NULL;
	pthread_mutex_unlock(&c->wmu);
	if (queued)
		return false;
	pthread_mutex_lock(&s->conn_mu);
	bool room = s->conn_threads < CONN_MAX_THREADS;
	if (room)
		s->conn_threads++;
	pthread_mutex_unlock(&s->conn_mu);
	if (!room)
		return false;
	conn_get(c); /* the thread's, dropped by in_place_done */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CONN_THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int ret = pthread_create(&t, &attr, in_place_main, r);
	pthread_attr_destroy(&attr);
	if (ret == 0) {
		/* Still on the loop, which reads c no more from here. */
		sd_loop_del(s->loop, c->fd);
		c->in_place = true;
		return true;
	}
	conn_put(c);
	conn_thread_gone(s);
	return false;
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
	struct request *r = request_new(c, &hdr, payload, payload ? hdr.data_length : 0);
	if (!r) {
		free(payload);
		reply_error(c, &hdr, SD_RES_NO_MEM, false);
		return;
	}
	if (conn_serve_in_place(c, r))
		return;
	conn_get(c);
	__atomic_add_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&c->inflight_bytes, hdr.data_length, __ATOMIC_SEQ_CST);
	enum ops_kind kind = ops_lookup(hdr.opcode)->kind; /* known: checked above */
	r->wal_announced = conn_note_write(s, &hdr, payload, true);
	struct sd_wq *wq = kind == OPS_PEER	 ? s->peer_wq
			   : kind == OPS_FORWARD ? s->fwd_wq
						 : s->gw_wq;
	sd_wq_queue(wq, &r->work);
	conn_update_events(c);
}

static void conn_read(struct conn *c)
{
	for (int rounds = 0; rounds < 64 && !c->dead && !c->paused && !c->in_place; rounds++) {
		ssize_t n;
		if (!c->in_payload) {
			n = recv(c->fd, (char *)&c->hdr + c->hdr_got, sizeof(c->hdr) - c->hdr_got,
				 MSG_DONTWAIT);
		} else {
			n = recv(c->fd, c->payload + c->pay_got, c->hdr.data_length - c->pay_got,
				 MSG_DONTWAIT);
		}
		if (n == 0) {
			conn_close(c,
				   c->hdr_got || c->in_payload ? "peer closed mid-request" : "eof");
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
					(unsigned long long)c->id, c->hdr.data_length,
					SD_MAX_PAYLOAD);
				reply_error(c, &c->hdr, SD_RES_INVALID_PARMS, true);
				if (!c->dead) {
					/* Stop reading; the close follows the reply. */
					__atomic_store_n(&c->paused, true, __ATOMIC_SEQ_CST);
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
	conn_get(c);
	if (events & EPOLLOUT)
		if (conn_flush(c))
			conn_update_events(c);
	if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && !c->paused)
		conn_read(c);
	/* In place since this read, c is its thread's: it sees the hangup. */
	if (!c->dead && !c->in_place && (events & (EPOLLHUP | EPOLLERR)))
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
		pthread_mutex_init(&c->wmu, NULL);
		if (sd_loop_add(s->loop, fd, EPOLLIN | EPOLLRDHUP, on_conn_event, c)) {
			close(fd);
			pthread_mutex_destroy(&c->wmu);
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

void conn_init(struct sheep *s)
{
	pthread_mutex_init(&s->conn_mu, NULL);
	pthread_cond_init(&s->conn_cond, NULL);
}

/* After conn_shutdown_all, once nothing a thread serving in place may
 * wait on is left waiting (group_stop): wait for every such thread. */
void conn_join_all(struct sheep *s)
{
	pthread_mutex_lock(&s->conn_mu);
	while (s->conn_threads > 0)
		pthread_cond_wait(&s->conn_cond, &s->conn_mu);
	pthread_mutex_unlock(&s->conn_mu);
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
