/* commitq.c - the coordinator's asynchronous commits of early-acknowledged EC writes: queued at the acknowledgement, ridden on its next writes to their holders, or sent in batches by one thread. */
/*
 * An early-ack write (twophase.c) is acknowledged once its prepares are
 * durable; its commits then go through this queue. A commit waits up to
 * GW_CQ_RIDE_MS for the coordinator's next write to its holder, any
 * object, and travels inside it (whdr.nr_commits, peer.h; taken by
 * layout.c's ride_attach); one thread per sheep sends what found no ride
 * in time, everything queued then, in one fan-out (calls to different
 * holders in parallel). A commit is only an optimisation of the steady
 * state: a prepared write is already durable and decided, the next write
 * of the coordinator to the same object carries the commit on its prepare
 * (prev_write_id), and a reader that meets the pending write commits it
 * itself (gw_settle), so a commit lost with its coordinator loses nothing.
 */
#include <pthread.h>

#include "sheep/gateway/gateway_priv.h"

#define GW_CQ_MAX 4096   /* queued commits; beyond that a write commits inline */
#define GW_CQ_BATCH 256  /* commits per fan-out (<= SD_PEER_COMMIT_BATCH_MAX) */
#define GW_CQ_RIDE_MS 10 /* how long a commit waits to ride on a write to its holder */

struct gw_cq_ent {
	struct sd_node node;
	uint64_t oid, version, wid;
	uint64_t at; /* sd_now_ns() when queued */
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
	/* How long the oldest commit waits for a write to its holder to ride
	 * on (gw_commitq_take) before the thread sends a batch; 0: at once
	 * (SHEEP_TEST_NO_RIDE, and under the delay hook). */
	uint64_t ride_ns;
	int queued; /* n + nflight, for a look without the lock (gw_commitq_any) */
	/* The batch the thread is sending (its own buffer): until it is
	 * answered, a write to one of its holders carries these commits
	 * too, as a prepare meeting one of them still pending would have to
	 * take the long way (an already applied one costs a lookup). */
	const struct gw_cq_ent *flight;
	int nflight;
};

/* Under mu: n (or the batch in flight) changed. */
static void set_n(struct gw_commitq *q, int n)
{
	q->n = n;
	__atomic_store_n(&q->queued, n + q->nflight, __ATOMIC_RELAXED);
}

/* An entry as the wire carries it (a batch's payload, a ride). */
static struct peer_commit_ent wire_ent(const struct gw_cq_ent *e)
{
	return (struct peer_commit_ent){.oid = e->oid, .new_version = e->version,
					.write_id = e->wid, .idx = e->idx};
}

/* Under mu: move the queued entries that match (at most max, in order)
 * to out, keeping the others in order; the test hook's entry always
 * stays (the thread dies on it). node NULL: any node; oid 0: any object. */
static int take_locked(struct gw_commitq *q, const struct sd_node *node, uint32_t epoch,
		       uint64_t oid, struct gw_cq_ent *out, int max)
{
	int got = 0, keep = 0;
	for (int i = 0; i < q->n; i++) {
		struct gw_cq_ent *e = &q->ent[i];
		if (got < max && !e->die && (!node || (e->epoch == epoch && sd_node_eq(&e->node, node))) &&
		    (!oid || e->oid == oid)) {
			out[got++] = *e;
			continue;
		}
		if (keep != i)
			q->ent[keep] = *e;
		keep++;
	}
	set_n(q, keep);
	return got;
}

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
			pl[np++] = wire_ent(&b[j]);
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
		/* The oldest (the queue is in order) has not waited its time
		 * for a ride yet: sleep until it has. Writes queued meanwhile
		 * do not wake this thread (gw_commitq_add); rides may empty
		 * the queue, which the loop then sees. */
		uint64_t now = sd_now_ns();
		if (q->ride_ns && !q->stop && q->ent[0].at + q->ride_ns > now) {
			struct timespec ts;
			sd_realtime_in(q->ent[0].at + q->ride_ns - now, &ts);
			pthread_cond_timedwait(&q->cond, &q->mu, &ts);
			continue;
		}
		int n = SD_MIN(q->n, GW_CQ_BATCH);
		if (b)
			memcpy(b, q->ent, (size_t)n * sizeof(*b));
		memmove(q->ent, q->ent + n, (size_t)(q->n - n) * sizeof(*q->ent));
		q->flight = b;
		q->nflight = b ? n : 0;
		set_n(q, q->n - n);
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
		q->flight = NULL;
		q->nflight = 0;
		set_n(q, q->n);
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
					     .at = sd_now_ns(), .epoch = o->v->epoch,
					     .idx = calls[i].req.obj.ec_index};
	}
	if (ne && die)
		e[0].die = true;
	if (q) {
		pthread_mutex_lock(&q->mu);
		if (q->started && q->n + ne <= GW_CQ_MAX) {
			/* A thread waiting for the oldest's time needs no wake
			 * for younger ones. */
			bool wake = !q->n || !q->ride_ns;
			memcpy(q->ent + q->n, e, (size_t)ne * sizeof(*e));
			set_n(q, q->n + ne);
			if (wake)
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
	const char *r = getenv("SHEEP_TEST_RIDE_MS"); /* for measuring */
	uint64_t ride_ms = r ? strtoull(r, NULL, 10) : GW_CQ_RIDE_MS;
	if (q->delay_ms || getenv("SHEEP_TEST_NO_RIDE"))
		ride_ms = 0;
	q->ride_ns = ride_ms * 1000000ull;
	s->gw->commitq = q;
	if (pthread_create(&q->thr, NULL, cq_main, q) == 0)
		q->started = true;
	return 0;
}

/* Anything queued to ride (a quick look, without the lock)? */
bool gw_commitq_any(struct sheep *s)
{
	struct gw_commitq *q = s->gw ? s->gw->commitq : NULL;
	return q && q->ride_ns && __atomic_load_n(&q->queued, __ATOMIC_RELAXED) > 0;
}

/*
 * Take the queued commits for node n of epoch (at most max, oldest
 * first) to ride on a write about to leave for n: out receives them, the
 * queue forgets them. The test hook's entry stays (the thread dies on it).
 */
int gw_commitq_take(struct sheep *s, const struct sd_node *n, uint32_t epoch,
		    struct peer_commit_ent *out, int max)
{
	struct gw_commitq *q = s->gw ? s->gw->commitq : NULL;
	struct gw_cq_ent e[SD_PEER_RIDE_MAX];
	if (!q || !q->ride_ns)
		return 0;
	int got = 0;
	max = SD_MIN(max, SD_PEER_RIDE_MAX);
	pthread_mutex_lock(&q->mu);
	for (int i = 0; i < q->nflight && got < max; i++) /* copies: still sent */
		if (!q->flight[i].die && q->flight[i].epoch == epoch &&
		    sd_node_eq(&q->flight[i].node, n))
			e[got++] = q->flight[i];
	got += take_locked(q, n, epoch, 0, e + got, max - got);
	pthread_mutex_unlock(&q->mu);
	for (int i = 0; i < got; i++)
		out[i] = wire_ent(&e[i]);
	return got;
}

/* The write id of the commit queued for fragment (oid, idx) at node n,
 * or 0: a read there commits it first (SD_PEER_FLAG_COMMIT_PREV). */
uint64_t gw_commitq_queued(struct sheep *s, const struct sd_node *n, uint64_t oid, uint8_t idx)
{
	struct gw_commitq *q = s->gw ? s->gw->commitq : NULL;
	uint64_t wid = 0;
	if (!gw_commitq_any(s))
		return 0;
	pthread_mutex_lock(&q->mu);
	for (int i = 0; i < q->nflight; i++)
		if (q->flight[i].oid == oid && q->flight[i].idx == idx &&
		    sd_node_eq(&q->flight[i].node, n))
			wid = q->flight[i].wid;
	for (int i = 0; i < q->n; i++)
		if (q->ent[i].oid == oid && q->ent[i].idx == idx && sd_node_eq(&q->ent[i].node, n))
			wid = q->ent[i].wid;
	pthread_mutex_unlock(&q->mu);
	return wid;
}

/* Send the commits queued for object oid now: a probe of it is about to
 * ask every holder what is pending there, and should not meet them. */
void gw_commitq_flush(struct sheep *s, uint64_t oid)
{
	struct gw_commitq *q = s->gw ? s->gw->commitq : NULL;
	struct gw_cq_ent e[SD_PEER_RIDE_MAX]; /* a few writes' worth: one object's */
	if (!gw_commitq_any(s))
		return;
	pthread_mutex_lock(&q->mu);
	int got = take_locked(q, NULL, 0, oid, e, SD_PEER_RIDE_MAX);
	pthread_mutex_unlock(&q->mu);
	if (got)
		send_batch(s, e, got);
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
