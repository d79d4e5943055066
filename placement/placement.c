/* placement.c - the vnode ring and the zone-distinct, position-stable walk behind placement.h. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fnv.h"
#include "placement/placement_int.h"

/* Ring points per vnode. A vnode is the user-visible unit of weight
 * (sheep -V); each is spread over several ring points so that an average
 * node's share deviates by about 1/sqrt(128*16) ~ 2% instead of ~9%. */
#define POINTS_PER_VNODE 16
#define DEFAULT_VNODES	 128
#define MAX_POINTS	 (1u << 23)

/* splitmix64's finalizer: FNV-1a alone mixes its last bytes poorly. */
uint64_t placement_mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

uint64_t placement_oid_hash(uint64_t oid)
{
	return placement_mix64(fnv_64a_u64(oid, FNV1A_64_INIT));
}

static int cmp_point(const void *a, const void *b)
{
	const struct placement_point *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

/* Free this ring's own arrays (not prev). */
void placement_release(struct placement_ring *r)
{
	free(r->nodes);
	free(r->vnodes);
	free(r->rel);
	free(r->zone);
	free(r->node_hash);
	free(r->points);
	free(r->bucket);
	if (r->zone_points)
		for (size_t z = 0; z < r->nr; z++)
			free(r->zone_points[z]);
	free(r->zone_points);
	free(r->zone_nr_points);
	free(r->chain);
	free(r->map_prev);
	free(r->joiners);
	free(r->pick);
	free(r->by_id);
	free(r);
}

/* Vnodes per node: fixed when given, else 128 * weight / mean weight.
 * rel keeps the unrounded value: the chain's odds use it. */
static void assign_vnodes(struct placement_ring *r)
{
	long double sum = 0;
	size_t weighted = 0;
	for (size_t i = 0; i < r->nr; i++)
		if (r->nodes[i].weight) {
			sum += (long double)r->nodes[i].weight;
			weighted++;
		}
	for (size_t i = 0; i < r->nr; i++) {
		const struct placement_node *n = &r->nodes[i];
		if (!n->weight) {
			r->vnodes[i] = 0;
			r->rel[i] = 0;
		} else if (n->vnodes) {
			r->vnodes[i] = n->vnodes;
			r->rel[i] = n->vnodes;
		} else {
			long double v =
			    DEFAULT_VNODES * (long double)n->weight * (long double)weighted / sum;
			long v_int = lroundl(v);
			r->vnodes[i] = (uint16_t)(v_int < 1 ? 1 : v_int > 65535 ? 65535 : v_int);
			r->rel[i] = (double)v;
		}
	}
}

static int number_zones(struct placement_ring *r)
{
	uint32_t *seen = calloc(r->nr ? r->nr : 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	int nz = 0;
	for (size_t i = 0; i < r->nr; i++) {
		int z = -1;
		for (int k = 0; k < nz && z < 0; k++)
			if (seen[k] == r->nodes[i].zone)
				z = k;
		if (z < 0) {
			z = nz;
			seen[nz++] = r->nodes[i].zone;
		}
		r->zone[i] = (uint32_t)z;
	}
	/* Count only zones with weight. */
	r->nr_zones = 0;
	for (int z = 0; z < nz; z++)
		for (size_t i = 0; i < r->nr; i++)
			if (r->zone[i] == (uint32_t)z && r->vnodes[i]) {
				r->nr_zones++;
				break;
			}
	free(seen);
	return 0;
}

struct id_ref {
	const char *id;
	uint32_t idx;
};

static int cmp_id_ref(const void *a, const void *b)
{
	const struct id_ref *x = a, *y = b;
	return strcmp(x->id, y->id);
}

/* Ids must be NUL-terminated, non-empty and unique. by_id (nr entries)
 * gets the node indexes in id order. */
static int check_nodes(const struct placement_node *nodes, size_t nr, uint32_t *by_id)
{
	if (nr && !nodes)
		return -EINVAL;
	if (nr > PLACEMENT_MAX_NODES)
		return -E2BIG;
	for (size_t i = 0; i < nr; i++)
		if (!memchr(nodes[i].id, '\0', sizeof(nodes[i].id)) || !nodes[i].id[0])
			return -EINVAL;
	struct id_ref *refs = calloc(nr ? nr : 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		refs[i].id = nodes[i].id;
		refs[i].idx = (uint32_t)i;
	}
	qsort(refs, nr, sizeof(*refs), cmp_id_ref);
	int ret = 0;
	for (size_t i = 0; i < nr; i++) {
		if (i && !strcmp(refs[i - 1].id, refs[i].id))
			ret = -EINVAL;
		by_id[i] = refs[i].idx;
	}
	free(refs);
	return ret;
}

int placement_init_members(struct placement_ring *r, const struct placement_node *nodes, size_t nr)
{
	size_t cnt = nr ? nr : 1;
	r->by_id = calloc(cnt, sizeof(*r->by_id));
	if (!r->by_id)
		return -ENOMEM;
	int ret = check_nodes(nodes, nr, r->by_id);
	if (ret)
		return ret;
	r->refs = 1;
	r->nr = nr;
	r->nodes = calloc(cnt, sizeof(*r->nodes));
	r->vnodes = calloc(cnt, sizeof(*r->vnodes));
	r->rel = calloc(cnt, sizeof(*r->rel));
	r->zone = calloc(cnt, sizeof(*r->zone));
	r->node_hash = calloc(cnt, sizeof(*r->node_hash));
	if (!r->nodes || !r->vnodes || !r->rel || !r->zone || !r->node_hash)
		return -ENOMEM;
	if (nr) /* memcpy from NULL is undefined even for 0 bytes */
		memcpy(r->nodes, nodes, nr * sizeof(*nodes));
	for (size_t i = 0; i < nr; i++)
		r->node_hash[i] = placement_mix64(
		    fnv_64a_buf(r->nodes[i].id, strlen(r->nodes[i].id), FNV1A_64_INIT));
	assign_vnodes(r);
	return number_zones(r);
}

static int index_ring(struct placement_ring *r)
{
	r->bucket_bits = 1;
	while (r->bucket_bits < 20 && ((size_t)1 << r->bucket_bits) < r->nr_points / 4)
		r->bucket_bits++;
	size_t nb = (size_t)1 << r->bucket_bits;
	r->bucket = calloc(nb + 1, sizeof(*r->bucket));
	r->zone_points = calloc(r->nr ? r->nr : 1, sizeof(*r->zone_points));
	r->zone_nr_points = calloc(r->nr ? r->nr : 1, sizeof(*r->zone_nr_points));
	if (!r->bucket || !r->zone_points || !r->zone_nr_points)
		return -ENOMEM;
	size_t p = 0;
	for (size_t b = 0; b <= nb; b++) {
		while (p < r->nr_points && b < nb && (r->points[p].h >> (64 - r->bucket_bits)) < b)
			p++;
		r->bucket[b] = (uint32_t)(b < nb ? p : r->nr_points);
	}
	for (size_t k = 0; k < r->nr_points; k++)
		r->zone_nr_points[r->zone[r->points[k].node]]++;
	for (size_t z = 0; z < r->nr; z++) {
		r->zone_points[z] =
		    malloc((r->zone_nr_points[z] ? r->zone_nr_points[z] : 1) * sizeof(uint32_t));
		if (!r->zone_points[z])
			return -ENOMEM;
		r->zone_nr_points[z] = 0;
	}
	for (size_t k = 0; k < r->nr_points; k++) {
		uint32_t z = r->zone[r->points[k].node];
		r->zone_points[z][r->zone_nr_points[z]++] = (uint32_t)k;
	}
	return 0;
}

int placement_derive_vnodes(const struct placement_node *nodes, size_t nr, uint16_t *out)
{
	if (!out)
		return -EINVAL;
	struct placement_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int ret = placement_init_members(r, nodes, nr);
	if (!ret)
		memcpy(out, r->vnodes, nr * sizeof(*out));
	placement_release(r);
	return ret;
}

int placement_build(const struct placement_node *nodes, size_t nr, struct placement_ring **out)
{
	if (!out)
		return -EINVAL;
	struct placement_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int ret = placement_init_members(r, nodes, nr);
	if (ret)
		goto fail;
	size_t total = 0;
	for (size_t i = 0; i < nr; i++)
		total += (size_t)r->vnodes[i] * POINTS_PER_VNODE;
	ret = -E2BIG;
	if (total > MAX_POINTS)
		goto fail;
	ret = -ENOMEM;
	r->points = calloc(total ? total : 1, sizeof(*r->points));
	if (!r->points)
		goto fail;
	size_t k = 0;
	for (size_t i = 0; i < nr; i++) {
		uint64_t base = fnv_64a_buf(r->nodes[i].id, strlen(r->nodes[i].id), FNV1A_64_INIT);
		/* Point j depends only on (id, j): a vnode count change by one adds
		 * or removes only that vnode's points. */
		for (uint32_t j = 0; j < (uint32_t)r->vnodes[i] * POINTS_PER_VNODE; j++) {
			r->points[k].h = placement_mix64(fnv_64a_u64(j, base));
			r->points[k].node = (uint32_t)i;
			k++;
		}
	}
	r->nr_points = total;
	qsort(r->points, total, sizeof(*r->points), cmp_point);
	if (index_ring(r))
		goto fail;
	*out = r;
	return 0;
fail:
	placement_release(r);
	return ret;
}

/* First point with h >= key (wrapping to 0). */
static size_t lower_bound(const struct placement_ring *r, uint64_t key)
{
	size_t b = (size_t)(key >> (64 - r->bucket_bits));
	size_t lo = r->bucket[b], hi = r->bucket[b + 1];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->points[mid].h < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == r->nr_points ? 0 : lo;
}

/* The first point at or after p (cyclically) of a zone not in used[]. */
static size_t next_free_point(const struct placement_ring *r, size_t p, const uint32_t *used, int m)
{
	if (r->nr_zones - m > 8) {
		/* Most zones free: a short walk. */
		for (;; p = p + 1 == r->nr_points ? 0 : p + 1) {
			uint32_t z = r->zone[r->points[p].node];
			int taken = 0;
			for (int j = 0; j < m && !taken; j++)
				taken = used[j] == z;
			if (!taken)
				return p;
		}
	}
	/* Few zones free: the nearest next point of each free zone. */
	size_t best = SIZE_MAX, best_dist = SIZE_MAX;
	for (size_t z = 0; z < r->nr; z++) {
		uint32_t cnt = r->zone_nr_points[z];
		if (!cnt)
			continue;
		int taken = 0;
		for (int j = 0; j < m && !taken; j++)
			taken = used[j] == (uint32_t)z;
		if (taken)
			continue;
		const uint32_t *zp = r->zone_points[z];
		uint32_t lo = 0, hi = cnt;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (zp[mid] < p)
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t q = lo == cnt ? zp[0] : zp[lo];
		size_t dist = q >= p ? q - p : q + r->nr_points - p;
		if (dist < best_dist) {
			best_dist = dist;
			best = q;
		}
	}
	return best;
}

/*
 * Two rounds. First every position i walks the ring from its own start,
 * hash(oid, i), to its primary: the first point met, at ring distance d_i.
 * Positions then settle in order of distance (nearest first): a position
 * keeps its primary when no nearer position took that zone. Positions that
 * lost walk on from their primary to the first node of a free zone.
 * Why distance: when a node leaves, the position that held it finds its new
 * primary further along, so in a clash it is usually the one that yields;
 * positions that kept their primaries do not notice the leave.
 */
struct pos_state {
	size_t point; /* index of the point reached */
	uint64_t dist;
	int idx;
};

static int cmp_pos(const void *a, const void *b)
{
	const struct pos_state *x = a, *y = b;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->idx - y->idx;
}

static bool zone_taken(const uint32_t *used, int m, uint32_t z)
{
	for (int j = 0; j < m; j++)
		if (used[j] == z)
			return true;
	return false;
}

int placement_anchor_slots(const struct placement_ring *r, uint64_t oid, int n, int *out)
{
	for (int i = 0; i < n; i++)
		out[i] = -1;
	if (!r->nr_points)
		return 0;
	struct pos_state ps[PLACEMENT_MAX_WIDTH];
	uint64_t base = placement_oid_hash(oid);
	for (int i = 0; i < n; i++) {
		uint64_t start = placement_mix64(base + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
		ps[i].point = lower_bound(r, start);
		ps[i].dist = r->points[ps[i].point].h - start; /* wraps correctly */
		ps[i].idx = i;
	}
	qsort(ps, (size_t)n, sizeof(ps[0]), cmp_pos);

	uint32_t used[PLACEMENT_MAX_WIDTH];
	int m = 0;
	bool lost[PLACEMENT_MAX_WIDTH] = {false};
	for (int k = 0; k < n; k++) {
		uint32_t node = r->points[ps[k].point].node;
		if (zone_taken(used, m, r->zone[node])) {
			lost[k] = true;
			continue;
		}
		used[m++] = r->zone[node];
		out[ps[k].idx] = (int)node;
	}
	for (int k = 0; k < n && m < r->nr_zones; k++) {
		if (!lost[k])
			continue;
		size_t p = next_free_point(r, ps[k].point, used, m);
		if (p == SIZE_MAX)
			break;
		uint32_t node = r->points[p].node;
		used[m++] = r->zone[node];
		out[ps[k].idx] = (int)node;
	}
	return m;
}
