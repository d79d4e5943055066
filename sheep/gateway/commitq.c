/* commitq.c - the coordinator's asynchronous commits of early-acknowledged EC writes: queued at the acknowledgement, sent in batches by one thread. */
/*
 * An early-ack write (twophase.c) is acknowledged once its prepares are
 * durable; its commits then go through this queue. One thread per sheep
 * takes every commit queued while its previous batch was in flight and
 * sends them in one fan-out (calls to different holders in parallel). A
 * commit is only an optimisation of the steady state: a prepared write is
 * already durable and decided, the next write of the coordinator to the
 * same object carries the commit on its prepare (prev_write_id), and a
 * reader that meets the pending write commits it itself (gw_settle), so
 * a commit lost with its coordinator loses nothing.
 */
#include <pthread.h>

#include "sheep/gateway/gateway_priv.h"

#define GW_CQ_MAX 4096   /* queued commits; beyond that a write commits inline */
#define GW_CQ_BATCH 256  /* commits per fan-out (<= SD_PEER_COMMIT_BATCH_MAX) */

struct gw_cq_ent {
	struct sd_node node;
	uint64_t oid, version, wid;
	uint32_t epoch;
	uint8_t idx;
	bool die; /* test hook: die instead of sending this (after the ack went out) */
};

struct gw_commitq {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* work queued, or stop */
	struct gw_cq_ent *ent;
	int n;
	bool stop, started;
	pthread_t thr;
	struct sheep *s;
	/* Test hook SHEEP_TEST_COMMIT_DELAY_MS: hold each batch this long, so
	 * tests meet acknowledged writes whose commits have not arrived. */
	unsigned delay_ms;
};

/* Send commits b[0..n): one PEER_COMMIT_BATCH per holder, all holders in
 * parallel. */
static void send_batch(struct sheep *s, struct gw_cq_ent *b, int n)
{
	struct peer_call *calls = calloc((size_t)n, sizeof(*calls));
	struct peer_commit_ent *pl = calloc((size_t)n, sizeof(*pl));
	int *to = calloc((size_t)n, sizeof(*to));
	int nc = 0, np = 0;
	if (!calls || !pl || !to)
		goto out; /* the pending writes stay decided; readers commit them */
	for (int i = 0; i < n; i++)
		to[i] = -1;
	for (int i = 0; i < n; i++) {
		if (to[i] >= 0)
			continue;
		/* Every entry for the node of entry i, in one payload. */
		struct peer_call *c = &calls[nc];
		int first = np;
		for (int j = i; j < n; j++) {
			if (to[j] >= 0 || !sd_node_eq(&b[j].node, &b[i].node))
				continue;
			to[j] = nc;
			pl[np++] = (struct peer_commit_ent){.oid = b[j].oid, .new_version = b[j].version,
							    .write_id = b[j].wid, .idx = b[j].idx};
		}
		c->node = &b[i].node;
		c->req.opcode = SD_OP_PEER_COMMIT_BATCH;
		c->req.epoch = b[i].epoch;
		c->wbuf = &pl[first];
		c->wlen = (uint32_t)((np - first) * sizeof(*pl));
		nc++;
	}
	peer_fanout(s, calls, nc);
	for (int k = 0; k < nc; k++)
		if (calls[k].result != SD_RES_SUCCESS)
			sd_debug("async commits to %s:%u: %s", calls[k].node->addr,
				 calls[k].node->port, sd_strerror(calls[k].result));
out:
	free(to);
	free(pl);
	free(calls);
}

/* The queue's thread: takes up to GW_CQ_BATCH queued commits at a time
 * (everything that queued while the previous batch was in flight) and
 * sends them; at stop it drains the queue before it returns. */
static void *cq_main(void *arg)
{
	struct gw_commitq *q = arg;
	pthread_setname_np(pthread_self(), "sd_commit");
	struct gw_cq_ent *b = malloc(GW_CQ_BATCH * sizeof(*b));
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->n && !q->stop)
			pthread_cond_wait(&q->cond, &q->mu);
		if (!q->n && q->stop)
			break;
		int n = SD_MIN(q->n, GW_CQ_BATCH);
		if (b)
			memcpy(b, q->ent, (size_t)n * sizeof(*b));
		memmove(q->ent, q->ent + n, (size_t)(q->n - n) * sizeof(*q->ent));
		q->n -= n;
		pthread_mutex_unlock(&q->mu);
		for (int i = 0; b && i < n; i++) {
			if (!b[i].die)
				continue;
			/* Test hook (SHEEP_TEST_CRASH_FILE "after-ack"): the
			 * write was acknowledged; give the reply time to leave,
			 * then die with its commits unsent. */
			usleep(500000);
			sd_err("test hook: %016llx: dying after the acknowledgement, before the "
			       "commits", (unsigned long long)b[i].oid);
			kill(getpid(), SIGKILL);
		}
		if (q->delay_ms)
			usleep(q->delay_ms * 1000u);
		if (b)
			send_batch(q->s, b, n);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	free(b);
	return NULL;
}

/*
 * Queue the commits of early-ack write wid: one per call of calls[0..n)
 * that prepared it. When the queue is full (or has no thread), the
 * commits are sent inline: never dropped silently.
 */
void gw_commitq_add(struct gw_obj *o, const struct peer_call *calls, int n, uint64_t wid,
		    bool die)
{
	struct gw_commitq *q = o->s->gw->commitq;
	struct gw_cq_ent e[GW_MAX_WIDTH];
	int ne = 0;
	for (int i = 0; i < n && ne < GW_MAX_WIDTH; i++) {
		if (!calls[i].node || calls[i].result != SD_RES_SUCCESS)
			continue;
		e[ne++] = (struct gw_cq_ent){.node = *calls[i].node, .oid = o->oid,
					     .version = calls[i].whdr.new_version, .wid = wid,
					     .epoch = o->v->epoch, .idx = calls[i].req.obj.ec_index};
	}
	if (ne && die)
		e[0].die = true;
	if (q) {
		pthread_mutex_lock(&q->mu);
		if (q->started && q->n + ne <= GW_CQ_MAX) {
			memcpy(q->ent + q->n, e, (size_t)ne * sizeof(*e));
			q->n += ne;
			pthread_cond_signal(&q->cond);
			pthread_mutex_unlock(&q->mu);
			return;
		}
		pthread_mutex_unlock(&q->mu);
	}
	send_batch(o->s, e, ne);
}

int gw_commitq_init(struct sheep *s)
{
	struct gw_commitq *q = calloc(1, sizeof(*q));
	if (!q || !(q->ent = calloc(GW_CQ_MAX, sizeof(*q->ent)))) {
		free(q);
		return -ENOMEM;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->s = s;
	const char *d = getenv("SHEEP_TEST_COMMIT_DELAY_MS");
	q->delay_ms = d ? (unsigned)strtoul(d, NULL, 10) : 0;
	s->gw->commitq = q;
	if (pthread_create(&q->thr, NULL, cq_main, q) == 0)
		q->started = true;
	return 0;
}

/* Send what is queued, stop the thread. */
void gw_commitq_fini(struct sheep *s)
{
	struct gw_commitq *q = s->gw->commitq;
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mu);
	if (q->started)
		pthread_join(q->thr, NULL);
	s->gw->commitq = NULL;
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
	free(q->ent);
	free(q);
}
