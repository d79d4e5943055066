/* sole.c - which copies and EC data fragments this holder may serve alone: one is current when
 * written or confirmed in this epoch, for a bounded lease, and not since told it missed a write. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"

#define PEER_SOLE_SLOTS 65536 /* direct-mapped; losing a mark costs one probing read */

struct sole_ent {
	uint64_t oid;
	uint64_t version;
	uint64_t since_ns; /* the copy was current no later than this */
	uint32_t epoch;
	uint8_t idx;
	uint8_t used; /* a mark */
	uint8_t cand; /* a candidate (since_ns is its token) */
};

struct peer_sole {
	pthread_mutex_t mu;
	/* The last unmark of any copy here: a mark dated before it may come
	 * from a probe that ran before the write that made it stale. */
	uint64_t floor_ns;
	struct sole_ent ent[PEER_SOLE_SLOTS];
};

static struct sole_ent *slot(struct peer_sole *t, uint64_t oid, uint8_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 56)) * 0x9e3779b97f4a7c15ull;
	return &t->ent[h >> (64 - 16)];
}

int peer_sole_init(struct sheep *s)
{
	s->sole = calloc(1, sizeof(*s->sole));
	if (!s->sole)
		return -ENOMEM;
	pthread_mutex_init(&s->sole->mu, NULL);
	return 0;
}

void peer_sole_fini(struct sheep *s)
{
	if (!s->sole)
		return;
	pthread_mutex_destroy(&s->sole->mu);
	free(s->sole);
	s->sole = NULL;
}

void peer_sole_mark(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version, uint32_t epoch,
		    uint64_t since_ns)
{
	struct peer_sole *t = s->sole;
	if (!t || !version)
		return;
	pthread_mutex_lock(&t->mu);
	if (since_ns > t->floor_ns) {
		struct sole_ent *e = slot(t, oid, idx);
		*e = (struct sole_ent){.oid = oid,
				       .version = version,
				       .since_ns = since_ns,
				       .epoch = epoch,
				       .idx = idx,
				       .used = 1};
	}
	pthread_mutex_unlock(&t->mu);
}

uint64_t peer_sole_candidate(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version,
			     uint32_t epoch)
{
	struct peer_sole *t = s->sole;
	if (!t || !version)
		return 0;
	pthread_mutex_lock(&t->mu);
	uint64_t now = sd_now_ns();
	if (now <= t->floor_ns)
		now = t->floor_ns + 1;
	*slot(t, oid, idx) = (struct sole_ent){
	    .oid = oid, .version = version, .since_ns = now, .epoch = epoch, .idx = idx, .cand = 1};
	pthread_mutex_unlock(&t->mu);
	return now;
}

void peer_sole_confirm(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t token)
{
	struct peer_sole *t = s->sole;
	if (!t || !token)
		return;
	pthread_mutex_lock(&t->mu);
	struct sole_ent *e = slot(t, oid, idx);
	if (e->cand && e->oid == oid && e->idx == idx && e->since_ns == token &&
	    token > t->floor_ns) {
		e->cand = 0;
		e->used = 1;
	}
	pthread_mutex_unlock(&t->mu);
}

void peer_sole_unmark(struct sheep *s, uint64_t oid, uint8_t idx)
{
	struct peer_sole *t = s->sole;
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	uint64_t now = sd_now_ns();
	if (now > t->floor_ns)
		t->floor_ns = now;
	struct sole_ent *e = slot(t, oid, idx);
	if ((e->used || e->cand) && e->oid == oid && e->idx == idx)
		e->used = e->cand = 0;
	pthread_mutex_unlock(&t->mu);
}

void peer_sole_forget(struct sheep *s, uint64_t oid, uint8_t idx)
{
	struct peer_sole *t = s->sole;
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	struct sole_ent *e = slot(t, oid, idx);
	if ((e->used || e->cand) && e->oid == oid && e->idx == idx)
		e->used = e->cand = 0;
	pthread_mutex_unlock(&t->mu);
}

bool peer_sole_ok(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version, uint32_t epoch)
{
	struct peer_sole *t = s->sole;
	if (!t)
		return false;
	if (s->opt.test_sole_always)
		return true; /* test: the rule off */
	uint64_t now = sd_now_ns();
	pthread_mutex_lock(&t->mu);
	struct sole_ent *e = slot(t, oid, idx);
	bool ok = e->used && e->oid == oid && e->idx == idx && e->version == version &&
		  e->epoch == epoch && e->since_ns > t->floor_ns &&
		  now - e->since_ns < (uint64_t)PEER_SOLE_LEASE_MS * 1000000ull;
	pthread_mutex_unlock(&t->mu);
	return ok;
}
