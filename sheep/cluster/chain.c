/* chain.c - each epoch's ring chained from the previous epoch's (placement_build_next), from the epoch log, the same on every member; the view of each epoch built from those rings. */
#include "lib/sd_wire.h"
#include "sheep/cluster/group_priv.h"

/*
 * The ring of epoch x is a chain: an anchor ring (placement_build) of the
 * epoch anchor(x), then one placement_build_next step per later epoch up
 * to x, each from that epoch's record in the epoch log. A step keeps every
 * position of a staying node, so a join moves only what the joiner takes
 * and a leave only the leaver's positions.
 *
 * anchor(x) is a function of the log records alone, so every member
 * computes it the same way:
 *   - chains restart every CHAIN_SPAN epochs (anchors 1, 33, 65, ...),
 *     which bounds a lookup's replay (about 25 ns a step); such an anchor
 *     is built as epoch 1 is, its members joining one at a time, so that
 *     members unchanged since the format keep their ring (group_chain_ring);
 *   - within a span the chain starts no earlier than the records it uses
 *     fit in CHAIN_BYTES (sd_epoch_rec and nodes, as logged): walking back
 *     from x, the record that would pass CHAIN_BYTES is not taken and the
 *     anchor is the epoch after it. Deciding this needs that record, so
 *     the ring of x needs the records need(x)..x, need(x) = anchor(x) - 1
 *     when the walk stopped on bytes, else anchor(x).
 *   - an epoch with no data holder has no ring; the next one is an anchor;
 *   - an epoch whose record differs from the one before only by a member's
 *     vnodes (dog node vnodes set, epoch_reweighted) is an anchor: a
 *     chain step keeps every staying node's positions, so the new weights
 *     would move nothing; the anchor ring places by them (deciding this
 *     needs the record before, so need = anchor - 1).
 *
 * What every member has: a member that was there since the format has the
 * whole log; a joiner (or a restarted node, which rejoins) gets from the
 * snapshot the newest records that fit SNAP_EPOCH_BUDGET (apply.c), then
 * logs every later epoch. need(x)..x is at most CHAIN_BYTES plus one record
 * (96 KiB at SD_MAX_NODES), under SNAP_EPOCH_BUDGET: every member can build
 * the current epoch's ring, and every later one. Rings of earlier epochs
 * (the view's history, for fragments not moved yet) are kept only when
 * need(x)..current fits SNAP_EPOCH_BUDGET: exactly the ones a joiner can
 * build, so a joiner and the older members hold the same history. A member
 * that lacks a record this rule says it has (a damaged log on disk) builds
 * the anchor ring of the current epoch alone and says so in its log: the
 * one case where members may disagree, until the next span.
 */

#define CHAIN_SPAN  32u
#define CHAIN_BYTES (64u << 10)
/* Span anchors of up to this many members are built as joins one at a
 * time (a lookup then replays up to CHAIN_JOIN_MAX + CHAIN_SPAN steps). */
#define CHAIN_JOIN_MAX 128u

static size_t rec_bytes(const struct epoch_rec *r)
{
	return sizeof(struct sd_epoch_rec) + r->nr_nodes * sizeof(struct sd_node);
}

/* Index of epoch x in s->cl->epochs (sorted), or -1. */
static long epoch_index(const struct sheep *s, uint32_t x)
{
	size_t lo = 0, hi = s->cl->nr_epochs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->cl->epochs[mid].epoch < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->cl->nr_epochs && s->cl->epochs[lo].epoch == x ? (long)lo : -1;
}

static bool same_proc(const struct sd_node *a, const struct sd_node *b)
{
	return a->port == b->port && a->incarnation == b->incarnation && !strcmp(a->addr, b->addr);
}

/* Epoch cur differs from prev by a member's vnodes alone (the same
 * processes): dog node vnodes set. */
static bool epoch_reweighted(const struct epoch_rec *prev, const struct epoch_rec *cur)
{
	if (prev->nr_nodes != cur->nr_nodes)
		return false;
	bool changed = false;
	for (uint32_t i = 0; i < cur->nr_nodes; i++) {
		const struct sd_node *c = &cur->nodes[i], *p = NULL;
		for (uint32_t k = 0; k < prev->nr_nodes && !p; k++)
			if (same_proc(c, &prev->nodes[k]))
				p = &prev->nodes[k];
		if (!p)
			return false; /* a membership change, chained as such */
		if (c->nr_vnodes != p->nr_vnodes || c->fixed_vnodes != p->fixed_vnodes)
			changed = true;
	}
	return changed;
}

/* anchor(x) and need(x) (see above); *span (span may be NULL) says the
 * anchor is the first epoch of x's span (not one the bytes or a reweight
 * made). -ENOENT when the log lacks a record the rule needs. */
static int chain_anchor(const struct sheep *s, uint32_t x, uint32_t *anchor, uint32_t *need,
			bool *span)
{
	bool first = false;
	if (!span)
		span = &first;
	*span = false;
	if (!x)
		return -ENOENT;
	uint32_t base = x - (x - 1) % CHAIN_SPAN;
	long i = epoch_index(s, x);
	if (i < 0)
		return -ENOENT;
	size_t bytes = rec_bytes(&s->cl->epochs[i]);
	uint32_t a = x;
	while (a > base) {
		if (i == 0 || s->cl->epochs[i - 1].epoch != a - 1)
			return -ENOENT;
		if (epoch_reweighted(&s->cl->epochs[i - 1], &s->cl->epochs[i])) {
			/* vnodes set on a member: a chain step would move
			 * nothing, so the ring starts afresh here */
			*anchor = a;
			*need = a - 1;
			return 0;
		}
		i--;
		bytes += rec_bytes(&s->cl->epochs[i]);
		if (bytes > CHAIN_BYTES) {
			*anchor = a;
			*need = a - 1;
			return 0;
		}
		a--;
	}
	*anchor = *need = a;
	*span = true;
	return 0;
}

/* Whether the records from..to are all in the log and fit SNAP_EPOCH_BUDGET
 * (what a joiner receives). */
static bool chain_in_window(const struct sheep *s, uint32_t from, uint32_t to)
{
	long i = epoch_index(s, from);
	if (i < 0)
		return false;
	size_t bytes = 0;
	for (uint32_t y = from; y <= to; y++, i++) {
		if ((size_t)i >= s->cl->nr_epochs || s->cl->epochs[i].epoch != y)
			return false;
		bytes += rec_bytes(&s->cl->epochs[i]);
		if (bytes > SNAP_EPOCH_BUDGET)
			return false;
	}
	return true;
}

/* What a chain of rings is made of: its anchor, the format's vnodes and
 * the records anchor..x. A ring is reused only when this matches, so a node
 * whose log was replaced (a snapshot after a partition) rebuilds. */
static uint64_t chain_key(const struct sheep *s, uint32_t anchor, uint32_t x)
{
	uint64_t h = fnv_64a_u64(((uint64_t)anchor << 32) | s->cl->fmt_vnodes, FNV1A_64_INIT);
	for (uint32_t y = anchor; y <= x; y++) {
		long i = epoch_index(s, y);
		if (i < 0)
			return 0;
		h = fnv_64a_u64(y, h);
		h = fnv_64a_buf(s->cl->epochs[i].nodes, s->cl->epochs[i].nr_nodes * sizeof(struct sd_node),
				h);
	}
	return h;
}

/* The ring of epoch y in view v if it is the one of this chain. */
static struct sheep_ring *chain_find(const struct sheep *s, struct sheep_view *v, uint32_t anchor,
				     uint32_t y)
{
	struct sheep_ring *c = group_find_ring(v, y);
	return c && c->ring && c->anchor == anchor && c->key == chain_key(s, anchor, y) ? c : NULL;
}

static struct sheep_ring *new_sheep_ring(uint32_t epoch, size_t nr)
{
	struct sheep_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->data = calloc(nr ? nr : 1, sizeof(struct sd_node));
	if (!r->data) {
		free(r);
		return NULL;
	}
	r->refs = 1;
	r->epoch = epoch;
	return r;
}

/*
 * The ring of epoch x: chained from anchor(x) when chained, else the anchor
 * ring of x alone. nodes/nr are x's members (NULL: x's log record). Starts
 * from the newest ring of the same chain that old holds, else replays the
 * log from the anchor. *out has a NULL ring when x has no data holder.
 * 0, -ENOENT (the log lacks a record the chain needs) or -ENOMEM.
 */
int group_chain_ring(struct sheep *s, struct sheep_view *old, uint32_t x, bool chained,
		     const struct sd_node *nodes, size_t nr, struct sheep_ring **out)
{
	uint32_t anchor = x, need = x;
	bool span = false;
	if (chained && chain_anchor(s, x, &anchor, &need, &span))
		return -ENOENT;
	if (!nodes) {
		long i = epoch_index(s, x);
		if (i < 0)
			return -ENOENT;
		nodes = s->cl->epochs[i].nodes;
		nr = s->cl->epochs[i].nr_nodes;
	}
	const struct ring *prev = NULL;
	uint32_t from = anchor;
	for (uint32_t y = x; chained && y-- > anchor;) {
		struct sheep_ring *c = chain_find(s, old, anchor, y);
		if (c) {
			prev = c->ring;
			from = y + 1;
			break;
		}
	}
	struct ring *own = NULL; /* the last step built here, freed after the next */
	struct sheep_ring *r = NULL;
	int ret = 0;
	for (uint32_t y = from; y <= x; y++) {
		const struct sd_node *yn = nodes;
		size_t ynr = nr;
		if (y < x) {
			const struct epoch_rec *er = &s->cl->epochs[epoch_index(s, y)];
			yn = er->nodes;
			ynr = er->nr_nodes;
		}
		struct sheep_ring *step = new_sheep_ring(y, ynr);
		if (!step) {
			ret = -ENOMEM;
			break;
		}
		/* Epoch 1 is the format's: its members as if they had joined
		 * one by one (a member back after a leave retakes its share).
		 * The first epoch of every later span is built alike (clusters
		 * formatted with SD_CLUSTER_FLAG_JOIN_ANCHORS, up to
		 * CHAIN_JOIN_MAX members): with the members unchanged since
		 * the format it is the same ring, so the restart of the chain
		 * moves nothing (the one-shot ring of the same members places
		 * most fragments elsewhere). */
		bool joins = y == 1 || (y == anchor && span && ynr <= CHAIN_JOIN_MAX &&
					(s->cl->fmt_flags & SD_CLUSTER_FLAG_JOIN_ANCHORS));
		if (!prev && chained && joins)
			ret = group_build_ring_joins(s, yn, ynr, step->data, &step->nr_data,
						     &step->ring);
		else
			ret = group_build_ring(s, prev, yn, ynr, step->data, &step->nr_data,
					       &step->ring);
		if (ret) {
			free(step->data);
			free(step);
			break;
		}
		if (own)
			ring_free(own);
		own = step->ring;
		prev = step->ring; /* NULL after an epoch without data: next is an anchor */
		if (y == x) {
			r = step;
			own = NULL;
		} else {
			step->ring = NULL;
			free(step->data);
			free(step);
		}
	}
	if (own)
		ring_free(own);
	if (ret)
		return ret;
	r->anchor = anchor;
	r->key = chained ? chain_key(s, anchor, x) : 0;
	*out = r;
	return 0;
}

/* The ring of an earlier epoch x for a view at epoch cur, as every member
 * has it (see above): reused from old when the same, NULL when x is out of
 * the window or has no data holder. */
struct sheep_ring *group_hist_ring(struct sheep *s, struct sheep_view *old, uint32_t x,
				   uint32_t cur)
{
	uint32_t anchor, need;
	if (chain_anchor(s, x, &anchor, &need, NULL) || !chain_in_window(s, need, cur))
		return NULL;
	struct sheep_ring *r = chain_find(s, old, anchor, x);
	if (r) {
		__atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
		return r;
	}
	r = NULL;
	if (group_chain_ring(s, old, x, true, NULL, 0, &r))
		return NULL;
	if (!r->ring) {
		group_ring_put(r);
		return NULL;
	}
	return r;
}

/* A fingerprint of a ring: the holders (addr:port) of 6 positions of 256
 * fixed object ids. Members log it per epoch so tests can check that every
 * member, joiners and restarted ones included, places alike. */
uint64_t group_ring_digest(const struct sheep_ring *r)
{
	uint64_t h = FNV1A_64_INIT;
	if (!r || !r->ring)
		return 0;
	for (uint64_t k = 0; k < 256; k++) {
		int out[6];
		if (ring_locate(r->ring, fnv_64a_u64(k, FNV1A_64_INIT), 6, out) < 0)
			return 0;
		for (int i = 0; i < 6; i++) {
			const struct sd_node *n =
			    out[i] >= 0 && (size_t)out[i] < r->nr_data ? &r->data[out[i]] : NULL;
			h = fnv_64a_buf(n ? n->addr : "-", n ? strlen(n->addr) : 1, h);
			h = fnv_64a_u64(n ? n->port : 0, h);
		}
	}
	return h;
}

/*
 * Before the format nothing is placed (the gateway and recovery need a
 * formatted cluster), so the view holds the data members but no ring: a
 * ring of N members is 2048 points a member, and every member rebuilding
 * it at every join made the start of N sheep cost O(N^2 log N) per member
 * (0.3 s a build at 128 members on the shared box). The format's view
 * builds epoch 1's ring; `dog node list` derives vnodes without one
 * (store/capacity.c).
 */
static int unformatted_ring(struct sheep *s, const struct sd_node *nodes, size_t nr,
			    struct sheep_ring **out)
{
	struct sheep_ring *r = new_sheep_ring(0, nr);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++)
		if (!nodes[i].gateway && nodes[i].space > 0)
			r->data[r->nr_data++] = nodes[i];
	qsort(r->data, r->nr_data, sizeof(struct sd_node), sheep_node_cmp);
	*out = r;
	return 0;
}

/* Build and publish the view of the current members and epoch (locked).
 * Its ring and those of earlier epochs are chained as chain.c says. */
void group_rebuild_view(struct sheep *s)
{
	struct sheep_view *v = calloc(1, sizeof(*v));
	if (!v)
		goto fail;
	v->refs = 1;
	v->epoch = s->cl->epoch;
	v->self_data_idx = -1;
	v->nodes = calloc(s->cl->nr_members ? s->cl->nr_members : 1, sizeof(struct sd_node));
	if (!v->nodes)
		goto fail;
	if (s->cl->nr_members) /* none yet: a state loaded before any membership event */
		memcpy(v->nodes, s->cl->members, s->cl->nr_members * sizeof(struct sd_node));
	v->nr_nodes = s->cl->nr_members;
	qsort(v->nodes, v->nr_nodes, sizeof(struct sd_node), sheep_node_cmp);
	/*
	 * Before the format there is no epoch 0 record: the members' own ring.
	 * A restarted cluster waiting for the nodes of its newest epoch keeps
	 * that epoch while its members come and go (apply.c): their ring is
	 * not that epoch's, so it is built unchained (key 0) and never reused
	 * as a step of the chain; the rings of that epoch and of the next one
	 * come from the log. Chaining it made the first epoch after the wait
	 * place data where the members of the last running epoch had not put
	 * it, and its history point at the wrong holders: old data was read
	 * after a whole-cluster stop (021).
	 */
	bool chained = s->cl->epoch != 0 && !s->cl->waiting;
	int ret = s->cl->epoch ? group_chain_ring(s, s->cl->view, s->cl->epoch, chained, v->nodes,
						  v->nr_nodes, &v->cur)
			       : unformatted_ring(s, v->nodes, v->nr_nodes, &v->cur);
	if (ret == -ENOENT) {
		sd_err("epoch %u: the epoch log lacks records its chained ring needs; using the "
		       "ring of the members alone (other members may place differently until "
		       "the next anchor)", s->cl->epoch);
		ret = group_chain_ring(s, s->cl->view, s->cl->epoch, false, v->nodes, v->nr_nodes, &v->cur);
	}
	if (ret == -ENOMEM)
		goto fail;
	if (ret) {
		sd_err("cannot build the placement ring for epoch %u: %s", s->cl->epoch, strerror(-ret));
		v->cur = calloc(1, sizeof(*v->cur));
		if (!v->cur || !(v->cur->data = calloc(1, sizeof(struct sd_node))))
			goto fail;
		v->cur->refs = 1;
		v->cur->epoch = s->cl->epoch;
	}
	v->data = v->cur->data;
	v->nr_data = v->cur->nr_data;
	v->ring = v->cur->ring;
	uint32_t zones[SD_MAX_NODES];
	for (size_t i = 0; i < v->nr_data; i++) {
		if (sd_node_eq(&v->data[i], &s->self))
			v->self_data_idx = (int)i;
		bool seen = false;
		for (uint32_t z = 0; z < v->nr_zones; z++)
			seen |= zones[z] == v->data[i].zone;
		if (!seen && v->nr_zones < SD_MAX_NODES)
			zones[v->nr_zones++] = v->data[i].zone;
	}
	/* Rings of the previous epochs, newest first: where fragments are
	 * until recovery moves them. Reused from the old view when the same,
	 * else built from the epoch log (a joiner or a restarted node has no
	 * old view). */
	for (size_t k = s->cl->nr_epochs; k > 0 && v->nr_hist < SHEEP_VIEW_HIST; k--) {
		const struct epoch_rec *er = &s->cl->epochs[k - 1];
		if (er->epoch >= s->cl->epoch)
			continue;
		struct sheep_ring *r = group_hist_ring(s, s->cl->view, er->epoch, s->cl->epoch);
		if (r)
			v->hist[v->nr_hist++] = r;
	}
	char hist[SHEEP_VIEW_HIST * 28 + 1] = "";
	for (int i = 0, o = 0; i < v->nr_hist; i++)
		o += snprintf(hist + o, sizeof(hist) - (size_t)o, " %u:%016llx", v->hist[i]->epoch,
			      (unsigned long long)group_ring_digest(v->hist[i]));
	/* Before the format (epoch 0) and while a restarted cluster waits,
	 * views of changing members share one epoch number: no digest then
	 * (tests/func/109 checks one digest per epoch on every member). */
	if (!s->cl->epoch || s->cl->waiting)
		sd_info("placement: view of %zu members at epoch %u (%s), earlier%s", v->nr_nodes,
			v->epoch, s->cl->epoch ? "waiting for the last epoch's nodes" : "not formatted",
			v->nr_hist ? hist : " none");
	else
		sd_info("placement: view of epoch %u, ring %u:%016llx (chained from epoch %u), "
			"earlier%s",
			v->epoch, v->epoch, (unsigned long long)group_ring_digest(v->cur),
			v->cur->anchor, v->nr_hist ? hist : " none");
	sheep_view_put(s->cl->view);
	s->cl->view = v;
	pthread_cond_broadcast(&s->cl->state_cond);
	/* The converter's leader is the view's first member: a new view
	 * may make this sheep the one to drive a conversion under way. */
	if (s->convert_kick)
		s->convert_kick(s);
	return;
fail:
	sd_emerg("out of memory building the view of epoch %u", s->cl->epoch);
	if (v) {
		v->refs = 1;
		sheep_view_put(v);
	}
}
