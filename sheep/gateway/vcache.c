/* vcache.c - the write coordinator's cache of object versions: lets a write skip the generation probe round. */
/*
 * Writes to an object are funnelled through one coordinator per epoch, so
 * after a write that reached every fragment the coordinator knows the
 * object's state: every fragment at that version, nothing pending. The
 * next write then skips the probe round. Every later step still checks
 * the version on each holder (expect_version, the version of every read),
 * so a stale entry (a remove through another gateway, a holder that lost
 * its fragment) only makes that write fail and be redone with a probe.
 */
#include <stdlib.h>

#include "sheep/gateway/gateway_priv.h"

#define GW_VCACHE_BITS 12
#define GW_VCACHE_SLOTS (1u << GW_VCACHE_BITS)

struct gw_vcache_ent {
	uint64_t oid;
	uint64_t version; /* 0: empty */
	uint64_t early_wid; /* the early-ack write that made it, maybe not yet committed */
	uint32_t epoch;
	bool lc_valid; /* its record of last-changed versions (lastchg.c) */
	uint8_t lc_delta[PEER_LC_MAX];
};

/* Slot of oid in a table of 2^bits entries. */
static size_t oid_slot(uint64_t oid, int bits)
{
	return (size_t)((oid * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

static struct gw_vcache_ent *slot(struct sheep *s, uint64_t oid)
{
	return &s->gw->vcache[oid_slot(oid, GW_VCACHE_BITS)];
}

/*
 * Objects this coordinator found with a placed holder's fragment behind
 * (write.c): the first sighting leaves the fragment to recovery (asked by
 * gw_hint_stale), which rebuilds it unless writes keep moving the object
 * ("versions moved"); a write that still finds it behind a grace period
 * later rewrites the object whole under its lock, at most once per
 * backoff (a holder that keeps failing its writes costs one whole
 * rewrite per backoff, not one per write). A slot lost to another object
 * only restarts the grace.
 */
#define GW_BEHIND_BITS 10
#define GW_BEHIND_SLOTS (1u << GW_BEHIND_BITS)

struct gw_behind_ent {
	uint64_t oid;
	uint64_t seen_ns;    /* first seen behind (0: empty) */
	uint64_t rewrite_ns; /* last whole rewrite for it */
};

static struct gw_behind_ent *behind_slot(struct sheep *s, uint64_t oid)
{
	return &s->gw->behind[oid_slot(oid, GW_BEHIND_BITS)];
}

uint64_t gw_vcache_get(struct gw_obj *o, uint64_t *early_wid, bool *lc_valid, uint8_t *delta)
{
	uint64_t v = 0;
	*early_wid = 0;
	if (lc_valid)
		*lc_valid = false;
	if (!o->s->gw->vcache)
		return 0;
	pthread_mutex_lock(&o->s->gw->vcache_mu);
	struct gw_vcache_ent *e = slot(o->s, o->oid);
	if (e->oid == o->oid && e->epoch == o->v->epoch) {
		v = e->version;
		*early_wid = e->early_wid;
		if (lc_valid && delta && e->lc_valid) {
			*lc_valid = true;
			memcpy(delta, e->lc_delta, PEER_LC_MAX);
		}
	}
	pthread_mutex_unlock(&o->s->gw->vcache_mu);
	return v;
}

void gw_vcache_put(struct gw_obj *o, uint64_t version, uint64_t early_wid, bool lc_valid,
		   const uint8_t *delta)
{
	if (!o->s->gw->vcache)
		return;
	pthread_mutex_lock(&o->s->gw->vcache_mu);
	struct gw_vcache_ent *e = slot(o->s, o->oid);
	if (version) {
		/* A write that reached every fragment: nothing is behind. */
		struct gw_behind_ent *b = o->s->gw->behind ? behind_slot(o->s, o->oid) : NULL;
		if (b && b->oid == o->oid)
			b->seen_ns = 0; /* the backoff (rewrite_ns) stays */
		*e = (struct gw_vcache_ent){.oid = o->oid, .version = version,
					    .early_wid = early_wid, .epoch = o->v->epoch,
					    .lc_valid = lc_valid && delta};
		if (e->lc_valid)
			memcpy(e->lc_delta, delta, PEER_LC_MAX);
	}
	else if (e->oid == o->oid)
		e->version = 0;
	pthread_mutex_unlock(&o->s->gw->vcache_mu);
}

bool gw_behind_rewrite_due(struct gw_obj *o)
{
	if (!o->s->gw->behind)
		return false;
	uint64_t now = sd_now_ns();
	bool due = false;
	pthread_mutex_lock(&o->s->gw->vcache_mu);
	struct gw_behind_ent *e = behind_slot(o->s, o->oid);
	if (e->oid != o->oid) {
		*e = (struct gw_behind_ent){.oid = o->oid, .seen_ns = now};
	} else if (!e->seen_ns) {
		e->seen_ns = now;
	} else if (now - e->seen_ns >= (uint64_t)GW_BEHIND_GRACE_MS * 1000000ull &&
		   (!e->rewrite_ns ||
		    now - e->rewrite_ns >= (uint64_t)GW_BEHIND_BACKOFF_MS * 1000000ull)) {
		e->rewrite_ns = now;
		due = true;
	}
	pthread_mutex_unlock(&o->s->gw->vcache_mu);
	return due;
}

void gw_vcache_init(struct sheep *s)
{
	pthread_mutex_init(&s->gw->vcache_mu, NULL);
	s->gw->vcache = calloc(GW_VCACHE_SLOTS, sizeof(*s->gw->vcache)); /* NULL: no cache */
	s->gw->behind = calloc(GW_BEHIND_SLOTS, sizeof(*s->gw->behind)); /* NULL: no rewrites */
}

void gw_vcache_fini(struct sheep *s)
{
	free(s->gw->vcache);
	s->gw->vcache = NULL;
	free(s->gw->behind);
	s->gw->behind = NULL;
}
