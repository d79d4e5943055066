/* ring.c - object placement for the daemon: forwards to placement/ when present, else rendezvous hashing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fnv.h"
#include "sheep/cluster/ring.h"

#if __has_include("placement/placement.h")
#include "placement/placement.h"

const char *ring_impl(void)
{
	return "placement";
}

int ring_build(const struct ring_node *nodes, size_t nr, struct ring **out)
{
	struct placement_node *pn = calloc(nr ? nr : 1, sizeof(*pn));
	if (!pn)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		memcpy(pn[i].id, nodes[i].id, sizeof(pn[i].id));
		pn[i].zone = nodes[i].zone;
		pn[i].weight = nodes[i].weight;
		pn[i].vnodes = nodes[i].vnodes;
	}
	struct placement_ring *pr = NULL;
	int ret = placement_build(pn, nr, &pr);
	free(pn);
	if (ret)
		return ret;
	*out = (struct ring *)pr;
	return 0;
}

void ring_free(struct ring *r)
{
	placement_free((struct placement_ring *)r);
}

int ring_locate(const struct ring *r, uint64_t oid, int n, int *out)
{
	/* Positional: a fragment index keeps its node even when another
	 * position has no home (fewer zones than fragments); such holes are -1
	 * and every caller skips them. */
	int m = placement_locate_slots((const struct placement_ring *)r, oid, n, out);
	return m < 0 ? m : n;
}

#else

/*
 * Fallback while placement/ is not in the tree: per-position weighted
 * rendezvous hashing. Position i goes to the node of highest score
 * -weight/ln(u(oid, i, node)) among zones not used by positions < i, so a
 * leaving node moves mostly the positions it held.
 */
struct ring {
	size_t nr;
	struct ring_node *n;
	uint64_t *h;
};

const char *ring_impl(void)
{
	return "fallback";
}

int ring_build(const struct ring_node *nodes, size_t nr, struct ring **out)
{
	struct ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->nr = nr;
	r->n = calloc(nr ? nr : 1, sizeof(*nodes));
	r->h = calloc(nr ? nr : 1, sizeof(uint64_t));
	if (!r->n || !r->h) {
		ring_free(r);
		return -ENOMEM;
	}
	memcpy(r->n, nodes, nr * sizeof(*nodes));
	for (size_t i = 0; i < nr; i++)
		r->h[i] = fnv_64a_buf(nodes[i].id, strnlen(nodes[i].id, sizeof(nodes[i].id)),
				      FNV1A_64_INIT);
	*out = r;
	return 0;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->n);
	free(r->h);
	free(r);
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

int ring_locate(const struct ring *r, uint64_t oid, int n, int *out)
{
	int found = 0;
	for (int pos = 0; pos < n; pos++) {
		double best = -1;
		int bi = -1;
		for (size_t i = 0; i < r->nr; i++) {
			int used = 0;
			for (int k = 0; k < found && !used; k++)
				used = r->n[out[k]].zone == r->n[i].zone;
			if (used)
				continue;
			uint64_t h = mix64(fnv_64a_u64(oid, fnv_64a_u64((uint64_t)pos, r->h[i])));
			double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;
			double w = r->n[i].weight ? (double)r->n[i].weight : 1.0;
			double sc = -w / log(u);
			if (sc > best) {
				best = sc;
				bi = (int)i;
			}
		}
		if (bi < 0)
			break;
		out[found++] = bi;
	}
	return found;
}

#endif
