/* plan.c - recovery planning: from the new placement and what nodes hold, the fragments this node
 * must hold and where to get them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/oid.h"
#include "recovery/engine_priv.h"

/* A plan under construction; swapped into struct recovery when complete. */
struct plan_out {
	struct rec_item *items;
	size_t nr_items, cap_items;
	struct recovery_src *srcs;
	size_t nr_srcs, cap_srcs;
	struct rec_obj *objs;
	size_t nr_objs, cap_objs;
	uint32_t *holders;
	size_t nr_holders, cap_holders;
	uint64_t degraded, lost;
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}
#define GROW(arr, nr, cap, add) grow((void **)&(arr), &(cap), (nr) + (add), sizeof(*(arr)))

static void plan_out_free(struct plan_out *po)
{
	free(po->items);
	free(po->srcs);
	free(po->objs);
	free(po->holders);
	memset(po, 0, sizeof(*po));
}

/* Sort: oid, then newest version first, then idx, then node. */
static int frag_cmp(const void *a, const void *b)
{
	const struct recovery_frag *x = a, *y = b;
	if (x->oid != y->oid)
		return x->oid < y->oid ? -1 : 1;
	if (x->version != y->version)
		return x->version > y->version ? -1 : 1;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool is_member(const uint32_t *sorted, size_t n, uint32_t node)
{
	return bsearch(&node, sorted, n, sizeof(node), u32_cmp) != NULL;
}

static int add_src(struct plan_out *po, uint32_t node, uint8_t idx)
{
	if (GROW(po->srcs, po->nr_srcs, po->cap_srcs, 1))
		return -ENOMEM;
	struct recovery_src *s = &po->srcs[po->nr_srcs++];
	memset(s, 0, sizeof(*s));
	s->node = node;
	s->idx = idx;
	return 0;
}

/*
 * The version recovery settles on: the newest version of which enough
 * distinct fragments exist to read the object back (d for EC, one copy for
 * replication). Fragments of a newer version that is not complete are
 * leftovers of a write that never reached its acknowledgement rule; they are
 * neither used nor deleted here.
 */
static bool pick_version(const struct recovery_frag *f, size_t n, int d, int nc, uint64_t *out)
{
	size_t a = 0;
	while (a < n) {
		uint64_t v = f[a].version;
		uint32_t seen = 0;
		size_t b = a;
		for (; b < n && f[b].version == v; b++)
			if (f[b].idx < nc && f[b].idx < 32)
				seen |= 1u << f[b].idx;
		if (__builtin_popcount(seen) >= d) {
			*out = v;
			return true;
		}
		a = b;
	}
	return false;
}

/* ---- last-changed versions (recovery.h, struct recovery_lc) ---- */

/* The record of generation gen among f[0..n): a fragment at gen has it. */
static const struct recovery_lc *record_of(const struct recovery_frag *f, size_t n, uint64_t gen)
{
	for (size_t k = 0; k < n; k++)
		if (f[k].real == gen && f[k].lc.valid)
			return &f[k].lc;
	return NULL;
}

/* The version data fragment idx holds in generation gen by record rec. */
static uint64_t held_in(const struct recovery_lc *rec, uint64_t gen, int idx, int d)
{
	if (!rec || idx >= d || idx >= RECOVERY_LC_MAX || rec->delta[idx] >= gen)
		return gen;
	return gen - rec->delta[idx];
}

/* Distinct positions of f[0..n) consistent with generation gen. */
static int consistent(const struct recovery_frag *f, size_t n, uint64_t gen, int d, int nc)
{
	const struct recovery_lc *rec = record_of(f, n, gen);
	uint32_t seen = 0;
	for (size_t k = 0; k < n; k++)
		if (f[k].idx < nc && f[k].idx < 32 && f[k].real == held_in(rec, gen, f[k].idx, d))
			seen |= 1u << f[k].idx;
	return __builtin_popcount(seen);
}

/*
 * An EC object's fragments f[0..n) (sorted, newest first): give every
 * data fragment that belongs to the newest generation d positions are
 * consistent with (or, when none is, the newest one a write recorded)
 * that generation as its version, keeping its own in real; then sort
 * them again. As the gateway reads them (sheep/gateway/lastchg.c).
 */
static void align_object(struct recovery_frag *f, size_t n, int d, int nc)
{
	uint64_t top_rec = 0;
	for (size_t k = 0; k < n; k++)
		if (f[k].lc.valid && f[k].real > top_rec)
			top_rec = f[k].real;
	if (!top_rec)
		return;
	uint64_t gen = 0;
	for (size_t a = 0; a < n && !gen;) {
		if (consistent(f, n, f[a].real, d, nc) >= d)
			gen = f[a].real;
		uint64_t v = f[a].real;
		while (a < n && f[a].real == v)
			a++;
	}
	if (!gen)
		gen = top_rec;
	const struct recovery_lc *rec = record_of(f, n, gen);
	if (!rec)
		return;
	for (size_t k = 0; k < n; k++)
		if (f[k].real != gen && f[k].real == held_in(rec, gen, f[k].idx, d))
			f[k].version = gen;
	qsort(f, n, sizeof(*f), frag_cmp);
}

/* Plan one object; f[0..n) are its fragments held by members, sorted. */
static int plan_one(struct plan_out *po, const struct recovery_epoch *ep, struct recovery_frag *f,
		    size_t n)
{
	uint64_t oid = f[0].oid;
	uint8_t cp = f[0].copy_policy, nc = f[0].nr_copies;
	uint32_t fs = f[0].frag_size;
	int d = recovery_policy_data(cp);

	if (GROW(po->objs, po->nr_objs, po->cap_objs, 1))
		return -ENOMEM;
	struct rec_obj *o = &po->objs[po->nr_objs++];
	memset(o, 0, sizeof(*o));
	o->oid = oid;
	o->n = nc;
	if (nc == 0 || nc > 31 || d > nc || fs == 0) {
		sd_err("object %016" PRIx64 ": bad policy %#x/%u, left alone", oid, cp, nc);
		o->flags |= OBJ_BADLOC;
		return 0;
	}
	if (cp && nc <= 31)
		align_object(f, n, d, nc);
	if (!pick_version(f, n, d, nc, &o->version)) {
		/* Often a write in flight (its new version on fewer than d
		 * fragments, the old one no longer on d) or a member that did
		 * not answer the gather: the daemon re-plans and reports an
		 * object still short after that (sheep/rebuild). */
		sd_debug("object %016" PRIx64 ": fewer than %d consistent fragments in this plan",
			 oid, d);
		o->flags |= OBJ_LOST;
		po->lost++;
		return 0;
	}
	if (GROW(po->holders, po->nr_holders, po->cap_holders, nc))
		return -ENOMEM;
	uint32_t *h = &po->holders[po->nr_holders];
	int rc = ep->locate(ep->locate_arg, oid, nc, h);
	if (rc) {
		sd_err("object %016" PRIx64 ": placement failed (%d), left alone", oid, rc);
		o->flags |= OBJ_BADLOC;
		return 0;
	}
	o->hold_off = (uint32_t)po->nr_holders;
	po->nr_holders += nc;

	for (int i = 0; i < nc; i++)
		if (h[i] == RECOVERY_NO_NODE)
			o->flags |= OBJ_DEGRADED;
	if (o->flags & OBJ_DEGRADED)
		po->degraded++;

	uint64_t target = o->version, biggest = 0;
	for (size_t k = 0; k < n; k++)
		if (f[k].version == target && f[k].disk_bytes > biggest)
			biggest = f[k].disk_bytes;
	if (!biggest || biggest > fs)
		biggest = fs;

	for (int i = 0; i < nc; i++) {
		if (h[i] != ep->self)
			continue;
		const struct recovery_frag *local = NULL;
		for (size_t k = 0; k < n && !local; k++)
			if (f[k].node == ep->self && f[k].idx == i)
				local = &f[k]; /* newest first */
		if (GROW(po->items, po->nr_items, po->cap_items, 1))
			return -ENOMEM;
		struct rec_item *it = &po->items[po->nr_items++];
		memset(it, 0, sizeof(*it));
		it->oid = oid;
		it->idx = (uint8_t)i;
		it->version = target;
		it->frag_size = fs;
		it->copy_policy = cp;
		it->nr_copies = nc;
		it->have_version = local ? local->real : RECOVERY_ABSENT;
		const struct recovery_lc *rec = cp ? record_of(f, n, target) : NULL;
		if (rec)
			it->lc = *rec;
		it->src_off = (uint32_t)po->nr_srcs;
		if (local && local->version == target) {
			it->kind = RECOVERY_REUSE;
		} else {
			it->kind = RECOVERY_COPY;
			it->est_bytes = local ? 0 : biggest;
		}

		/* Sources in the order to try: the same fragment (any copy for
		 * replication) here, then elsewhere; then for EC the other
		 * fragments here, then elsewhere. */
		bool any_copy = false;
		for (int pass = 0; pass < (cp ? 4 : 2); pass++) {
			bool want_copy = pass < 2, want_self = (pass % 2) == 0;
			for (size_t k = 0; k < n; k++) {
				const struct recovery_frag *s = &f[k];
				if (s->version != target || s->idx >= nc)
					continue;
				if ((s->node == ep->self) != want_self)
					continue;
				if (s->node == ep->self && s->idx == i)
					continue; /* what we verify or replace */
				bool copy_src = cp == 0 || s->idx == i;
				if (copy_src != want_copy)
					continue;
				if (add_src(po, s->node, s->idx))
					return -ENOMEM;
				any_copy |= copy_src;
			}
		}
		it->nr_src = (uint32_t)(po->nr_srcs - it->src_off);
		if (it->kind != RECOVERY_REUSE && !any_copy)
			it->kind = RECOVERY_REBUILD;
	}
	return 0;
}

/* Build a plan for frags (any order) into po. */
static int build_plan(struct plan_out *po, const struct recovery_epoch *ep,
		      const struct recovery_frag *frags, size_t nr)
{
	uint32_t *members = malloc((ep->nr_members ? ep->nr_members : 1) * sizeof(*members));
	struct recovery_frag *f = malloc((nr ? nr : 1) * sizeof(*f));
	int rc = 0;
	if (!members || !f) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(members, ep->members, ep->nr_members * sizeof(*members));
	qsort(members, ep->nr_members, sizeof(*members), u32_cmp);
	size_t n = 0;
	for (size_t k = 0; k < nr; k++)
		if (is_member(members, ep->nr_members, frags[k].node)) {
			f[n] = frags[k];
			f[n++].real = frags[k].version;
		}
	qsort(f, n, sizeof(*f), frag_cmp);
	for (size_t a = 0; a < n && !rc;) {
		size_t b = a + 1;
		while (b < n && f[b].oid == f[a].oid)
			b++;
		rc = plan_one(po, ep, f + a, b - a);
		a = b;
	}
out:
	free(members);
	free(f);
	return rc;
}

static bool epoch_ok(const struct recovery_epoch *ep)
{
	return ep && ep->locate && (ep->members || !ep->nr_members);
}

static int push_order(struct recovery *r, uint32_t i)
{
	if (GROW(r->order, r->nr_order, r->cap_order, 1))
		return -ENOMEM;
	r->order[r->nr_order++] = i;
	return 0;
}

int rec_push_urgent(struct recovery *r, uint32_t i)
{
	if (r->urgent_head > 0 && r->urgent_head == r->nr_urgent)
		r->urgent_head = r->nr_urgent = 0;
	if (GROW(r->urgent, r->nr_urgent, r->cap_urgent, 1))
		return -ENOMEM;
	r->urgent[r->nr_urgent++] = i;
	return 0;
}

int rec_push_order(struct recovery *r, uint32_t i)
{
	return push_order(r, i);
}

/* Carry an item's progress over from the previous plan. A fragment copied
 * or rebuilt under an earlier epoch is, for this one, already in place: it
 * counts as reused, so copied/rebuilt report only what this epoch moved. */
static void merge_item(const struct rec_item *old, struct rec_item *it, bool same_epoch,
		       bool forget_done)
{
	it->busy = old->busy;
	it->generation = old->generation;
	if (old->state == ITEM_DONE && old->version == it->version && !forget_done) {
		it->state = ITEM_DONE;
		it->how = same_epoch ? old->how : RECOVERY_HOW_REUSED;
		it->est_bytes = 0;
	} else if (old->state == ITEM_INFLIGHT && old->version == it->version) {
		it->state = ITEM_INFLIGHT;
		it->how = old->how;
	}
}

void recovery_forget_done(struct recovery *r)
{
	if (r)
		r->forget_done = true;
}

int recovery_plan(struct recovery *r, const struct recovery_epoch *ep,
		  const struct recovery_frag *frags, size_t nr)
{
	if (!r || !epoch_ok(ep) || (nr && !frags))
		return -EINVAL;
	struct plan_out po = {0};
	int rc = build_plan(&po, ep, frags, nr);
	if (rc) {
		plan_out_free(&po);
		return rc;
	}

	/* Index the new items and merge in what the old plan finished. */
	struct rec_map nmap = {0};
	uint64_t need = 0;
	for (size_t k = 0; k < po.nr_items; k++) {
		struct rec_item *it = &po.items[k];
		long o = rec_map_get(&r->item_map, it->oid, it->idx);
		if (o >= 0)
			merge_item(&r->items[o], it, r->epoch == ep->epoch, r->forget_done);
		if (it->state != ITEM_DONE)
			need += it->est_bytes;
		if (rec_map_put(&nmap, it->oid, it->idx, (uint32_t)k)) {
			rec_map_free(&nmap);
			plan_out_free(&po);
			return -ENOMEM;
		}
	}

	free(r->items);
	free(r->srcs);
	free(r->objs);
	free(r->holders);
	rec_map_free(&r->item_map);
	r->items = po.items;
	r->nr_items = po.nr_items;
	r->cap_items = po.cap_items;
	r->srcs = po.srcs;
	r->nr_srcs = po.nr_srcs;
	r->cap_srcs = po.cap_srcs;
	r->objs = po.objs;
	r->nr_objs = po.nr_objs;
	r->cap_objs = po.cap_objs;
	r->holders = po.holders;
	r->nr_holders = po.nr_holders;
	r->cap_holders = po.cap_holders;
	r->item_map = nmap;
	rec_map_clear(&r->obj_map);
	for (size_t k = 0; k < r->nr_objs; k++)
		if (rec_map_put(&r->obj_map, r->objs[k].oid, REC_NO_IDX, (uint32_t)k))
			return -ENOMEM;

	r->epoch = ep->epoch;
	r->forget_done = false;
	r->self = ep->self;
	r->planned = true;
	r->nr_objects = po.nr_objs;
	r->nr_degraded = po.degraded;
	r->nr_lost = po.lost;
	r->need_bytes = need;
	r->free_bytes = ep->free_bytes;

	/* Start order: VDI (inode) objects first, clients need them to open
	 * anything; then data objects in oid order. */
	r->nr_order = r->order_cursor = 0;
	r->nr_urgent = r->urgent_head = 0;
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < r->nr_items; k++)
			if (is_vdi_obj(r->items[k].oid) == (pass == 0) &&
			    r->items[k].state == ITEM_PENDING)
				if (push_order(r, (uint32_t)k))
					return -ENOMEM;

	r->refused = false;
	r->refusal[0] = '\0';
	uint64_t avail =
	    ep->free_bytes > ep->reserve_bytes ? ep->free_bytes - ep->reserve_bytes : 0;
	if (need > avail) {
		r->refused = true;
		snprintf(r->refusal, sizeof(r->refusal),
			 "recovery of epoch %" PRIu32 " refused: it needs %" PRIu64
			 " MiB on this node but only %" PRIu64 " MiB are free (%" PRIu64
			 " MiB kept in reserve); nothing was changed. Add space or nodes, then run"
			 " 'dog cluster recover force'",
			 ep->epoch, (need + (1 << 20) - 1) >> 20, ep->free_bytes >> 20,
			 ep->reserve_bytes >> 20);
		sd_err("%s", r->refusal);
		return -ENOSPC;
	}
	sd_info("recovery plan for epoch %" PRIu32 ": %zu fragments to hold, %" PRIu64
		" objects, %" PRIu64 " degraded, %" PRIu64 " lost, %" PRIu64 " MiB to fetch",
		ep->epoch, r->nr_items, r->nr_objects, r->nr_degraded, r->nr_lost, need >> 20);
	return 0;
}

int recovery_plan_object(struct recovery *r, const struct recovery_epoch *ep,
			 const struct recovery_frag *frags, size_t nr)
{
	if (!r || !epoch_ok(ep) || !nr || !frags)
		return -EINVAL;
	if (!r->planned || ep->epoch != r->epoch || ep->self != r->self)
		return -ESTALE;
	for (size_t k = 1; k < nr; k++)
		if (frags[k].oid != frags[0].oid)
			return -EINVAL;
	struct plan_out po = {0};
	int rc = build_plan(&po, ep, frags, nr);
	if (rc)
		goto out;
	if (po.nr_objs != 1) {
		rc = -ENODATA; /* no fragment held by a member */
		goto out;
	}
	struct rec_obj *no = &po.objs[0];
	if (no->flags & (OBJ_LOST | OBJ_BADLOC)) {
		rc = -ENODATA;
		goto out;
	}
	if (!po.nr_items) {
		rc = -ENOENT;
		goto out;
	}

	/* The object's record: refresh or add. */
	if (GROW(r->holders, r->nr_holders, r->cap_holders, no->n) ||
	    GROW(r->srcs, r->nr_srcs, r->cap_srcs, po.nr_srcs) ||
	    GROW(r->objs, r->nr_objs, r->cap_objs, 1) ||
	    GROW(r->items, r->nr_items, r->cap_items, po.nr_items)) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(r->holders + r->nr_holders, po.holders + no->hold_off, no->n * sizeof(uint32_t));
	no->hold_off = (uint32_t)r->nr_holders;
	r->nr_holders += no->n;
	long oi = rec_map_get(&r->obj_map, no->oid, REC_NO_IDX);
	if (oi >= 0) {
		r->objs[oi] = *no;
	} else {
		r->objs[r->nr_objs] = *no;
		if ((rc = rec_map_put(&r->obj_map, no->oid, REC_NO_IDX, (uint32_t)r->nr_objs)))
			goto out;
		r->nr_objs++;
		r->nr_objects++;
	}

	uint32_t src_base = (uint32_t)r->nr_srcs;
	if (po.nr_srcs) /* r->srcs is NULL while no object has a source */
		memcpy(r->srcs + r->nr_srcs, po.srcs, po.nr_srcs * sizeof(*po.srcs));
	r->nr_srcs += po.nr_srcs;
	for (size_t k = 0; k < po.nr_items; k++) {
		struct rec_item *it = &po.items[k];
		it->src_off += src_base;
		long i = rec_map_get(&r->item_map, it->oid, it->idx);
		if (i >= 0) {
			/* Re-check even if done: that is the point of a repair. */
			struct rec_item *old = &r->items[i];
			it->busy = old->busy;
			it->generation = old->generation;
			if (old->state == ITEM_INFLIGHT && old->version == it->version)
				it->state = ITEM_INFLIGHT;
			*old = *it;
		} else {
			i = (long)r->nr_items;
			r->items[r->nr_items++] = *it;
			if ((rc = rec_map_put(&r->item_map, it->oid, it->idx, (uint32_t)i)))
				goto out;
		}
		if (r->items[i].state == ITEM_PENDING && (rc = rec_push_urgent(r, (uint32_t)i)))
			goto out;
	}
	sd_info("object %016" PRIx64 ": %zu fragment(s) queued for check/repair", no->oid,
		po.nr_items);
out:
	plan_out_free(&po);
	return rc;
}
