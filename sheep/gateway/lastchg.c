/* lastchg.c - last-changed versions of EC data fragments: the generation a data fragment that no
 * write changed since belongs to. */
#include "sheep/gateway/gateway_priv.h"

/*
 * An EC range update sends nothing to the data fragments it does not
 * change (docs/architecture.md, "Unchanged fragments"): they keep their
 * version, and every fragment the write does make (the changed data
 * fragments and the parities) records, for each data fragment k, the
 * version at which k last changed as of the new generation (store.h,
 * struct store_lc; deltas from the generation). So a data fragment at
 * version x belongs to generation G when x is what G's record names for
 * it, or when x == G (the write that made G changed it). Fragments
 * without a record (written whole, or by a sheep from before) belong to
 * their own version only, as every fragment did when each write bumped
 * the unchanged ones.
 */

/* The record of generation gen: o's aligned one, else a fragment of st
 * at version gen that has one (every fragment a write makes records the
 * same); NULL when none has. */
static const uint8_t *record_of(const struct gw_obj *o, const struct frag_state *st, uint64_t gen)
{
	if (o->lc_valid && o->lc_gen == gen)
		return o->lc_delta;
	for (int i = 0; st && i < o->width; i++)
		if (st[i].res == SD_RES_SUCCESS && st[i].lc_valid && st[i].real == gen)
			return st[i].lc_delta;
	return NULL;
}

/* The version data fragment k holds in generation gen by record r. */
static uint64_t held_in(const struct gw_obj *o, const uint8_t *r, uint64_t gen, int k)
{
	if (!r || k >= o->d || k >= PEER_LC_MAX || r[k] >= gen)
		return gen;
	return gen - r[k];
}

uint64_t gw_lc_of(const struct gw_obj *o, const struct frag_state *st, uint64_t gen, int k)
{
	if (!o->ec)
		return gen;
	return held_in(o, record_of(o, st, gen), gen, k);
}

uint64_t gw_lc_gen_of(const struct gw_obj *o, int i, uint64_t real)
{
	if (!o->ec || !o->lc_valid || i >= o->d || real == o->lc_gen)
		return real;
	return real == held_in(o, o->lc_delta, o->lc_gen, i) ? o->lc_gen : real;
}

/* How many fragments of st are consistent with generation gen (record r). */
static int consistent(const struct gw_obj *o, const struct frag_state *st, uint64_t gen,
		      const uint8_t *r)
{
	int n = 0;
	for (int j = 0; j < o->width; j++)
		n += st[j].res == SD_RES_SUCCESS && st[j].real == held_in(o, r, gen, j);
	return n;
}

void gw_lc_align(struct gw_obj *o, struct frag_state *st)
{
	o->lc_gen = 0;
	o->lc_valid = false;
	if (!o->ec)
		return;
	uint64_t top_rec = 0;
	for (int i = 0; i < o->width; i++) {
		st[i].version = st[i].real;
		if (st[i].res == SD_RES_SUCCESS && st[i].lc_valid && st[i].real > top_rec)
			top_rec = st[i].real;
	}
	if (!top_rec)
		return; /* no record anywhere: every fragment is at its generation */
	/* The newest generation d fragments are consistent with, trying the
	 * versions held from the newest down. */
	uint64_t gen = 0, below = UINT64_MAX;
	for (;;) {
		uint64_t cand = 0;
		for (int i = 0; i < o->width; i++)
			if (st[i].res == SD_RES_SUCCESS && st[i].real < below && st[i].real > cand)
				cand = st[i].real;
		if (!cand)
			break;
		if (consistent(o, st, cand, record_of(o, st, cand)) >= o->d) {
			gen = cand;
			break;
		}
		below = cand;
	}
	if (!gen)
		gen = top_rec; /* none is readable: the newest a write recorded */
	const uint8_t *r = record_of(o, st, gen);
	if (!r)
		return;
	o->lc_gen = gen;
	o->lc_valid = true;
	memcpy(o->lc_delta, r, sizeof(o->lc_delta));
	for (int k = 0; k < o->d && k < o->width; k++)
		if (st[k].res == SD_RES_SUCCESS && st[k].real != gen &&
		    st[k].real == held_in(o, o->lc_delta, gen, k))
			st[k].version = gen;
}
