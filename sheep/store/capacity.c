/* capacity.c - a sheep's capacity and free space from -s/--size, its own bytes and its filesystem.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement/placement.h"
#include "sheep/store/capacity.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

void sheep_capacity_of(uint64_t limit, uint64_t fs_size, uint64_t fs_avail, uint64_t own_used,
		       uint64_t *size, uint64_t *free_bytes)
{
	uint64_t cap = limit ? limit : fs_size;
	uint64_t left = cap > own_used ? cap - own_used : 0;
	*size = cap;
	*free_bytes = left < fs_avail ? left : fs_avail;
}

int sheep_capacity(struct sheep *s, uint64_t *size, uint64_t *free_bytes)
{
	if (!s->store) {
		*size = 0;
		*free_bytes = 0;
		return 0;
	}
	uint64_t fs_size = 0, own = 0;
	int ret = store_space(s->store, &fs_size, &own);
	if (ret)
		return ret;
	uint64_t avail = 0;
	if ((ret = store_avail(s->store, &avail)))
		return ret;
	sheep_capacity_of(s->opt.size, fs_size, avail, own, size, free_bytes);
	return 0;
}

void sheep_capacity_show_vnodes(const struct sheep_view *v, struct sd_node *nodes, size_t nr)
{
	uint16_t *derived = NULL;
	if (!v->ring) {
		/* Before the format the view has no ring (cluster/chain.c):
		 * show the vnodes the format's ring will give. */
		struct placement_node *pn = calloc(v->nr_data ? v->nr_data : 1, sizeof(*pn));
		derived = calloc(v->nr_data ? v->nr_data : 1, sizeof(*derived));
		for (size_t j = 0; pn && derived && j < v->nr_data; j++) {
			snprintf(pn[j].id, sizeof(pn[j].id), "%s:%u", v->data[j].addr,
				 v->data[j].port);
			pn[j].zone = v->data[j].zone;
			pn[j].weight = v->data[j].space;
			pn[j].vnodes = v->data[j].fixed_vnodes ? v->data[j].nr_vnodes : 0;
		}
		if (!pn || !derived || placement_derive_vnodes(pn, v->nr_data, derived)) {
			free(derived);
			derived = NULL;
		}
		free(pn);
		if (!derived)
			return;
	}
	for (size_t i = 0; i < nr; i++) {
		if (nodes[i].fixed_vnodes || nodes[i].gateway)
			continue;
		for (size_t j = 0; j < v->nr_data; j++) {
			if (strcmp(v->data[j].addr, nodes[i].addr) ||
			    v->data[j].port != nodes[i].port)
				continue;
			/* sheep/ring.c hands placement's ring out as struct ring. */
			int n = derived
				    ? derived[j]
				    : placement_vnodes(
					  (const struct placement_ring *)(const void *)v->ring, j);
			if (n > 0 && n <= UINT16_MAX)
				nodes[i].nr_vnodes = (uint16_t)n;
			break;
		}
	}
	free(derived);
}
