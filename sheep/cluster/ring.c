/* ring.c - object placement for the daemon: forwards to placement/ (anchor and chained rings). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sheep/cluster/ring.h"

#include "placement/placement.h"

const char *ring_impl(void)
{
	return "placement";
}

int ring_build(const struct ring_node *nodes, size_t nr, struct ring **out)
{
	return ring_build_next(NULL, nodes, nr, out);
}

int ring_build_next(const struct ring *prev, const struct ring_node *nodes, size_t nr,
		    struct ring **out)
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
	int ret = placement_build_next((const struct placement_ring *)prev, pn, nr, &pr);
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
