/* cop.c - cluster-wide operations from a worker: broadcast a message, wait until this node has applied it. */
#include <inttypes.h>

#include "lib/testhook.h"
#include "lib/work.h"
#include "sheep/cluster/group_priv.h"

/* A broadcast the driver could not send now (-ENOTCONN: no ZooKeeper
 * server answers, as during an election), as its waiter is told. */
#define COP_NOT_SENT SD_RES_NETWORK_ERROR
/* How often a message not sent is tried again. */
#define COP_RESEND_MS 200

/* ---- cluster-op waiters ---- */

void group_complete_wait(struct sheep *s, uint64_t token, int result, uint32_t vid)
{
	/* The first answer stands: a waiter told "not sent" sends a copy
	 * again, whose answer it then gets (the first copy's, apply.c). */
	for (struct cop_wait *w = s->cl->waits; w; w = w->next)
		if (w->token == token && !w->done) {
			w->done = 1;
			w->result = result;
			w->vid = vid;
			pthread_cond_broadcast(&s->cl->state_cond);
			return;
		}
}

struct bcast {
	struct sheep *s;
	size_t len;
	uint64_t token;
	char msg[];
};

static int cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid, bool keep_token);

uint64_t cop_new_token(struct sheep *s)
{
	return __atomic_add_fetch(&s->cl->next_token, 1, __ATOMIC_RELAXED);
}

/* A message nobody waits for (the unlocks of a closed connection's locks,
 * group_release_owner), which the driver could not send: a worker sends
 * it again, as a cluster operation, until the driver can (within
 * group_cluster_op's time). Dropping it left the VDI locked for good. */
struct resend {
	struct sd_work work;
	struct sheep *s;
	size_t len;
	char msg[];
};

static bool resend_work(struct sd_work *w)
{
	struct resend *r = (struct resend *)w;
	struct cmsg_hdr h = {0};
	memcpy(&h, r->msg, SD_MIN(r->len, sizeof(h)));
	int ret = cluster_op(r->s, r->msg, r->len, NULL, true);
	/* "Not sent" may mean sent with its answer lost (ZooKeeper: a create
	 * cut off by a dropped connection): the first copy released the
	 * lock, this one finds nothing to release. */
	if (ret == SD_RES_VDI_NOT_LOCKED && h.type == CMSG_UNLOCK_VDI)
		sd_debug("cluster message %u: an earlier copy of it was applied", h.type);
	else if (ret != SD_RES_SUCCESS)
		sd_warn("cluster message %u sent again: %s", h.type, sd_strerror(ret));
	free(r);
	return false;
}

/* Loop thread: hand b's message to a worker to send again; false when it
 * cannot be (stopping, no pool, out of memory). */
static bool resend_later(struct bcast *b)
{
	struct sheep *s = b->s;
	if (!s->gw_wq || atomic_load(&s->stopping))
		return false;
	struct resend *r = calloc(1, sizeof(*r) + b->len);
	if (!r)
		return false;
	r->s = s;
	r->len = b->len;
	memcpy(r->msg, b->msg, b->len);
	r->work.fn = resend_work;
	sd_wq_queue(s->gw_wq, &r->work);
	return true;
}

void group_do_broadcast(void *arg)
{
	struct bcast *b = arg;
	struct sheep *s = b->s;
	struct cmsg_hdr h = {0};
	memcpy(&h, b->msg, SD_MIN(b->len, sizeof(h)));
	/* Test hook (lib/testhook.h): hold the loop before or after sending a
	 * joiner its state snapshot (test 026). */
	if (h.type == CMSG_SNAPSHOT)
		sd_test_pause(s->opt.test_pause_file, "snap-send", s->self.port, 0);
	int ret = s->cl->cctx ? s->cl->driver->broadcast(s->cl->cctx, b->msg, b->len) : -ENOTCONN;
	if (!ret && h.token > s->cl->test_echoed && s->opt.test_cmsg_echo > 0) {
		s->opt.test_cmsg_echo--;
		s->cl->test_echoed = h.token; /* a copy sent again goes through */
		sd_notice("test hook: cluster message %u (operation %" PRIu64 ") sent, reported not sent",
			  h.type, h.token);
		ret = -ENOTCONN;
	}
	if (h.type == CMSG_SNAPSHOT)
		sd_test_pause(s->opt.test_pause_file, "snap-sent", s->self.port, 0);
	if (ret == -ENOTCONN) {
		/* Sent again: by its waiter (group_cluster_op), else by a worker. */
		static uint64_t said_ns; /* loop thread only: once per 5 s, not per try */
		if (sd_once_per(&said_ns, 5000000000ull))
			sd_warn("cluster message %u not sent now (%s): sent again when the driver can",
				h.type, strerror(-ret));
		if (!b->token && resend_later(b)) {
			free(b);
			return;
		}
	} else if (ret) {
		sd_err("cluster broadcast failed: %s", strerror(-ret));
	}
	if (ret && b->token) {
		pthread_mutex_lock(&s->cl->state_lock);
		group_complete_wait(s, b->token, ret == -ENOTCONN ? COP_NOT_SENT : SD_RES_SYSTEM_ERROR,
				    0);
		pthread_mutex_unlock(&s->cl->state_lock);
	}
	free(b);
}

/* Queue a broadcast on the loop thread. */
int group_post_broadcast(struct sheep *s, const void *msg, size_t len, uint64_t token)
{
	struct bcast *b = malloc(sizeof(*b) + len);
	if (!b)
		return -ENOMEM;
	b->s = s;
	b->len = len;
	b->token = token;
	memcpy(b->msg, msg, len);
	int ret = sd_loop_call(s->loop, group_do_broadcast, b);
	if (ret)
		free(b);
	return ret;
}

int group_cluster_post(struct sheep *s, void *msg, size_t len)
{
	struct cmsg_hdr *h = msg;
	h->token = cop_new_token(s); /* nobody waits for it; a copy sent again is the same operation */
	h->len = (uint32_t)len;
	return group_post_broadcast(s, msg, len, 0) ? SD_RES_NO_MEM : SD_RES_SUCCESS;
}

/* One try of group_cluster_op: broadcast, wait until applied or until
 * *deadline (CLOCK_REALTIME). */
static int cop_once(struct sheep *s, void *msg, size_t len, uint32_t *vid,
		    const struct timespec *deadline)
{
	struct cmsg_hdr *h = msg;
	struct cop_wait w = {0};
	pthread_mutex_lock(&s->cl->state_lock);
	if (!s->cl->synced) {
		pthread_mutex_unlock(&s->cl->state_lock);
		return SD_RES_WAIT_FOR_JOIN;
	}
	w.token = h->token;
	w.next = s->cl->waits;
	s->cl->waits = &w;
	pthread_mutex_unlock(&s->cl->state_lock);
	h->len = (uint32_t)len;
	int ret = group_post_broadcast(s, msg, len, w.token);
	pthread_mutex_lock(&s->cl->state_lock);
	if (ret) {
		w.done = 1;
		w.result = SD_RES_NO_MEM;
	}
	while (!w.done && !atomic_load(&s->stopping))
		if (pthread_cond_timedwait(&s->cl->state_cond, &s->cl->state_lock, deadline))
			break;
	for (struct cop_wait **pp = &s->cl->waits; *pp; pp = &(*pp)->next)
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	pthread_mutex_unlock(&s->cl->state_lock);
	if (!w.done) {
		sd_err("cluster operation %u was not delivered in %d s", h->type, COP_TIMEOUT_S);
		return atomic_load(&s->stopping) ? SD_RES_SHUTDOWN : SD_RES_SYSTEM_ERROR;
	}
	if (vid)
		*vid = w.vid;
	return w.result;
}

/*
 * Broadcast msg and wait until this node has applied it (COP_TIMEOUT_S at
 * most). A message the driver cannot send at the moment (a ZooKeeper
 * election, an ensemble briefly gone) is sent again every COP_RESEND_MS
 * within that time: an unlock given up there left its VDI locked for
 * every later writer (tests/func/083).
 */
int group_cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid)
{
	return cluster_op(s, msg, len, vid, false);
}

/* keep_token: msg is a copy of a message sent before (resend_work): the
 * same operation, so the same token (apply.c skips a second copy). */
static int cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid, bool keep_token)
{
	struct cmsg_hdr *h = msg;
	if (!keep_token || !h->token)
		h->token = cop_new_token(s); /* one for every copy this sends */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += COP_TIMEOUT_S;
	for (;;) {
		int ret = cop_once(s, msg, len, vid, &deadline);
		if (ret != COP_NOT_SENT)
			return ret;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (atomic_load(&s->stopping) || now.tv_sec >= deadline.tv_sec) {
			sd_err("cluster operation %u: the cluster driver could not send it in %d s",
			       h->type, COP_TIMEOUT_S);
			return atomic_load(&s->stopping) ? SD_RES_SHUTDOWN : SD_RES_SYSTEM_ERROR;
		}
		usleep(COP_RESEND_MS * 1000);
	}
}
