/* cop.c - cluster-wide operations from a worker: broadcast a message, wait until this node has applied it. */
#include "lib/testhook.h"
#include "sheep/cluster/group_priv.h"

/* ---- cluster-op waiters ---- */

void group_complete_wait(struct sheep *s, uint64_t token, int result, uint32_t vid)
{
	for (struct cop_wait *w = s->cl->waits; w; w = w->next)
		if (w->token == token) {
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
	if (h.type == CMSG_SNAPSHOT)
		sd_test_pause(s->opt.test_pause_file, "snap-sent", s->self.port, 0);
	if (ret) {
		sd_err("cluster broadcast failed: %s", strerror(-ret));
		if (b->token) {
			pthread_mutex_lock(&s->cl->state_lock);
			group_complete_wait(s, b->token, SD_RES_SYSTEM_ERROR, 0);
			pthread_mutex_unlock(&s->cl->state_lock);
		}
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
	h->token = 0; /* no waiter */
	h->len = (uint32_t)len;
	return group_post_broadcast(s, msg, len, 0) ? SD_RES_NO_MEM : SD_RES_SUCCESS;
}

int group_cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid)
{
	struct cmsg_hdr *h = msg;
	struct cop_wait w = {0};
	pthread_mutex_lock(&s->cl->state_lock);
	if (!s->cl->synced) {
		pthread_mutex_unlock(&s->cl->state_lock);
		return SD_RES_WAIT_FOR_JOIN;
	}
	w.token = ++s->cl->next_token;
	w.next = s->cl->waits;
	s->cl->waits = &w;
	pthread_mutex_unlock(&s->cl->state_lock);
	h->token = w.token;
	h->len = (uint32_t)len;
	int ret = group_post_broadcast(s, msg, len, w.token);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += COP_TIMEOUT_S;
	pthread_mutex_lock(&s->cl->state_lock);
	if (ret) {
		w.done = 1;
		w.result = SD_RES_NO_MEM;
	}
	while (!w.done && !atomic_load(&s->stopping))
		if (pthread_cond_timedwait(&s->cl->state_cond, &s->cl->state_lock, &ts))
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
