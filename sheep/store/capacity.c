/* capacity.c - a sheep's capacity and free space from -s/--size, its own bytes and its filesystem.
 */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

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
	struct statvfs v;
	if (statvfs(store_dir(s->store), &v))
		return -errno;
	sheep_capacity_of(s->opt.size, fs_size, (uint64_t)v.f_bavail * v.f_frsize, own, size,
			  free_bytes);
	return 0;
}

void sheep_capacity_show_vnodes(const struct sheep_view *v, struct sd_node *nodes, size_t nr)
{
	if (!v->ring)
		return;
	for (size_t i = 0; i < nr; i++) {
		if (nodes[i].fixed_vnodes || nodes[i].gateway)
			continue;
		for (size_t j = 0; j < v->nr_data; j++) {
			if (strcmp(v->data[j].addr, nodes[i].addr) ||
			    v->data[j].port != nodes[i].port)
				continue;
			/* sheep/ring.c hands placement's ring out as struct ring. */
			int n = placement_vnodes(
			    (const struct placement_ring *)(const void *)v->ring, j);
			if (n > 0 && n <= UINT16_MAX)
				nodes[i].nr_vnodes = (uint16_t)n;
			break;
		}
	}
}
