/* history.c - chained rings: placement that follows the previous epoch's answer, so only leavers'
 * and joiners' positions change. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "placement/placement_int.h"

#define JOIN_SALT	    0x6a6f696e6a6f696eULL /* "joinjoin" */
#define POS_SALT	    0x9e3779b97f4a7c15ULL
#define DEPTH_SALT	    0xd1b54a32d192ed03ULL
#define PICK_SLOTS_PER_NODE 64
#define PICK_MAX_SLOTS	    (1u << 22)
#define PICK_TRIES	    32

/* A uniform double in (0, 1) from the top 53 bits of h. */
static double unit(uint64_t h)
{
	return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

struct remainder {
	double rem;
	size_t pos;
};

/* Largest remainder first, ties to the earlier (smaller id). */
static int cmp_remainder(const void *a, const void *b)
{
	const struct remainder *x = a, *y = b;
	if (x->rem != y->rem)
		return x->rem > y->rem ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* A node of the new ring is kept when prev had it with the same id and
 * zone and both give it weight; anything else is a leave and/or a join. */
static int32_t find_kept(const struct placement_ring *prev, size_t i,
			 const struct placement_ring *r, size_t *hint)
{
	for (size_t c = 0; c < r->nr; c++) {
		size_t k = (*hint + c) % r->nr;
		if (!strcmp(prev->nodes[i].id, r->nodes[k].id)) {
			*hint = k + 1;
			if (prev->nodes[i].zone != r->nodes[k].zone || !prev->rel[i] || !r->rel[k])
				return -1;
			return (int32_t)k;
		}
	}
	return -1;
}

/*
 * The refill table: PICK_SLOTS_PER_NODE slots per weighted node (capped),
 * shared out by weight with largest remainders, in id order so that the
 * caller's node order does not matter. Every weighted node gets a slot.
 */
static int build_pick_table(struct placement_ring *r)
{
	size_t weighted = 0;
	double sum = 0;
	for (size_t i = 0; i < r->nr; i++)
		if (r->rel[i] > 0) {
			weighted++;
			sum += r->rel[i];
		}
	if (!weighted)
		return 0;
	uint32_t *ord = malloc(weighted * sizeof(*ord));
	uint32_t *cnt = calloc(weighted, sizeof(*cnt));
	struct remainder *rem = calloc(weighted, sizeof(*rem));
	if (!ord || !cnt || !rem) {
		free(ord), free(cnt), free(rem);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < r->nr; i++)
		if (r->rel[r->by_id[i]] > 0)
			ord[k++] = r->by_id[i];
	size_t slots = weighted * PICK_SLOTS_PER_NODE;
	if (slots > PICK_MAX_SLOTS)
		slots = PICK_MAX_SLOTS;
	if (slots < weighted)
		slots = weighted;
	size_t given = 0;
	for (size_t i = 0; i < weighted; i++) {
		double want = (double)slots * r->rel[ord[i]] / sum;
		cnt[i] = (uint32_t)want;
		if (!cnt[i])
			cnt[i] = 1;
		rem[i].rem = want - (double)cnt[i];
		rem[i].pos = i;
		given += cnt[i];
	}
	if (given < slots) {
		/* The shortfall is under the number of positive remainders:
		 * each of the largest gets one more slot. */
		qsort(rem, weighted, sizeof(*rem), cmp_remainder);
		for (size_t i = 0; given < slots && i < weighted; i++, given++)
			cnt[rem[i].pos]++;
	}
	r->pick = malloc(given * sizeof(*r->pick));
	if (!r->pick) {
		free(ord), free(cnt), free(rem);
		return -ENOMEM;
	}
	k = 0;
	for (size_t i = 0; i < weighted; i++)
		for (uint32_t c = 0; c < cnt[i]; c++)
			r->pick[k++] = ord[i];
	r->nr_pick = (uint32_t)given;
	free(ord), free(cnt), free(rem);
	return 0;
}

int placement_build_next(const struct placement_ring *prev, const struct placement_node *nodes,
			 size_t nr, struct placement_ring **out)
{
	if (!prev)
		return placement_build(nodes, nr, out);
	if (!out)
		return -EINVAL;
	struct placement_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int ret = placement_init_members(r, nodes, nr);
	if (ret)
		goto fail;
	ret = -ENOMEM;
	r->depth = prev->depth + 1;
	r->chain = calloc((size_t)r->depth, sizeof(*r->chain));
	r->map_prev = calloc(prev->nr ? prev->nr : 1, sizeof(*r->map_prev));
	bool *kept = calloc(nr ? nr : 1, sizeof(*kept));
	r->joiners = calloc(nr ? nr : 1, sizeof(*r->joiners));
	if (!r->chain || !r->map_prev || !kept || !r->joiners) {
		free(kept);
		goto fail;
	}
	for (int d = 0; d < prev->depth; d++)
		r->chain[d] = prev->chain[d];
	r->chain[prev->depth] = (struct placement_ring *)prev;

	size_t hint = 0;
	for (size_t i = 0; i < prev->nr; i++) {
		r->map_prev[i] = find_kept(prev, i, r, &hint);
		if (r->map_prev[i] >= 0)
			kept[r->map_prev[i]] = true;
	}
	for (size_t i = 0; i < nr; i++) { /* in id order */
		uint32_t k = r->by_id[i];
		if (!kept[k] && r->rel[k] > 0)
			r->joiners[r->nr_joiners++].node = k;
	}
	free(kept);

	/* Totals seen by each joiner: the kept nodes plus the joiners before
	 * it, so joiners of one step act as if they came one after another. */
	double total = 0;
	double *zone_total = calloc(nr ? nr : 1, sizeof(*zone_total));
	if (!zone_total)
		goto fail;
	for (size_t i = 0; i < prev->nr; i++)
		if (r->map_prev[i] >= 0) {
			total += r->rel[r->map_prev[i]];
			zone_total[r->zone[r->map_prev[i]]] += r->rel[r->map_prev[i]];
		}
	for (size_t j = 0; j < r->nr_joiners; j++) {
		struct placement_joiner *jn = &r->joiners[j];
		jn->weight = r->rel[jn->node];
		jn->total = total;
		jn->zone_total = zone_total[r->zone[jn->node]];
		total += jn->weight;
		zone_total[r->zone[jn->node]] += jn->weight;
	}
	free(zone_total);

	ret = build_pick_table(r);
	if (ret)
		goto fail;
	__atomic_add_fetch(&((struct placement_ring *)prev)->refs, 1, __ATOMIC_ACQ_REL);
	r->prev = (struct placement_ring *)prev;
	*out = r;
	return 0;
fail:
	placement_release(r);
	return ret;
}

void placement_free(struct placement_ring *r)
{
	while (r && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		struct placement_ring *prev = r->prev;
		placement_release(r);
		r = prev;
	}
}

/* Chance that joiner jn takes a position of an object whose positions
 * hold no node of its zone. The zone should go from holding n*Vz/V of the
 * objects to n*Vz'/V' (each capped at all of them); the gain comes from
 * objects it was absent from. Its holders elsewhere give up w/V' of what
 * they hold (take_mate), so the joiner ends with n*w/V' in all. */
static double take_free_odds(const struct placement_joiner *jn, int n)
{
	double before = n * jn->zone_total / jn->total;
	double after = n * (jn->zone_total + jn->weight) / (jn->total + jn->weight);
	if (before > 1)
		before = 1;
	if (after > 1)
		after = 1;
	if (before >= 1)
		return 0;
	double g = (after - before) / (1 - before);
	return g < 0 ? 0 : g > 1 ? 1 : g;
}

static bool zone_in_use(const struct placement_ring *r, const int *slots, int n, uint32_t node)
{
	for (int k = 0; k < n; k++)
		if (slots[k] >= 0 && r->zone[slots[k]] == r->zone[node])
			return true;
	return false;
}

/* Holes, in position order, get a node of a zone not in use: hashed picks
 * from the refill table (odds w / sum of w over the free zones' nodes);
 * after PICK_TRIES misses, the first free slot after the last pick. */
static void refill(const struct placement_ring *r, uint64_t oid_h, int n, int *slots)
{
	int filled = 0;
	for (int i = 0; i < n; i++)
		filled += slots[i] >= 0;
	for (int i = 0; i < n && filled < r->nr_zones; i++) {
		if (slots[i] >= 0)
			continue;
		/* salted by depth: steps draw independently of each other */
		uint64_t h = oid_h + (uint64_t)(i + 1) * POS_SALT + (uint64_t)r->depth * DEPTH_SALT;
		uint32_t s = 0;
		int who = -1;
		for (int t = 0; t < PICK_TRIES && who < 0; t++) {
			h = placement_mix64(h);
			s = (uint32_t)(h % r->nr_pick);
			if (!zone_in_use(r, slots, n, r->pick[s]))
				who = (int)r->pick[s];
		}
		for (uint32_t c = 1; c < r->nr_pick && who < 0; c++) {
			uint32_t x = r->pick[(s + c) % r->nr_pick];
			if (!zone_in_use(r, slots, n, x))
				who = (int)x;
		}
		if (who < 0)
			break;
		slots[i] = who;
		filled++;
	}
}

/* One step of the chain: carry prev's answer over, let joiners take
 * positions, refill the holes of leavers. Only holes and the positions a
 * joiner takes change. */
static void apply_step(const struct placement_ring *r, uint64_t oid_h, int n, int *slots)
{
	for (int i = 0; i < n; i++)
		slots[i] = slots[i] >= 0 ? r->map_prev[slots[i]] : -1;
	for (size_t j = 0; j < r->nr_joiners; j++) {
		const struct placement_joiner *jn = &r->joiners[j];
		if (jn->total <= 0)
			break; /* nothing was kept: refill places everyone */
		uint32_t z = r->zone[jn->node];
		int mate = -1;
		for (int i = 0; i < n && mate < 0; i++)
			if (slots[i] >= 0 && r->zone[slots[i]] == z)
				mate = i;
		uint64_t h = placement_mix64(oid_h ^ r->node_hash[jn->node] ^ JOIN_SALT);
		double u = unit(h);
		if (mate >= 0) {
			if (u < jn->weight / (jn->total + jn->weight))
				slots[mate] = (int)jn->node;
		} else if (u < take_free_odds(jn, n)) {
			slots[placement_mix64(h) % (uint64_t)n] = (int)jn->node;
		}
	}
	refill(r, oid_h, n, slots);
}

int placement_locate_slots(const struct placement_ring *r, uint64_t oid, int n, int *out)
{
	if (!r || !out || n < 1 || n > PLACEMENT_MAX_WIDTH)
		return -EINVAL;
	if (!r->depth)
		return placement_anchor_slots(r, oid, n, out);
	int slots[PLACEMENT_MAX_WIDTH];
	placement_anchor_slots(r->chain[0], oid, n, slots);
	uint64_t oid_h = placement_oid_hash(oid);
	for (int d = 1; d <= r->depth; d++)
		apply_step(d < r->depth ? r->chain[d] : r, oid_h, n, slots);
	int m = 0;
	for (int i = 0; i < n; i++) {
		out[i] = slots[i];
		m += slots[i] >= 0;
	}
	return m;
}

int placement_locate(const struct placement_ring *r, uint64_t oid, int n, int *out)
{
	int slots[PLACEMENT_MAX_WIDTH];
	int m = placement_locate_slots(r, oid, n, slots);
	if (m < 0)
		return m;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (slots[i] >= 0)
			out[k++] = slots[i];
	return m;
}

size_t placement_nr_nodes(const struct placement_ring *r)
{
	return r->nr;
}

int placement_nr_zones(const struct placement_ring *r)
{
	return r->nr_zones;
}

int placement_vnodes(const struct placement_ring *r, size_t i)
{
	return i < r->nr ? r->vnodes[i] : 0;
}

int placement_depth(const struct placement_ring *r)
{
	return r->depth;
}
