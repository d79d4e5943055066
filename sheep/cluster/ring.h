/* ring.h - the daemon's door to object placement (placement/ behind the daemon's own names). */
#ifndef SHEEP_RING_H
#define SHEEP_RING_H

#include <stddef.h>
#include <stdint.h>

/*
 * The same shape as placement/placement.h, which this forwards to.
 * ring_locate() fills out[i] with the index in nodes[] of the holder of
 * fragment or copy i, on distinct zones. It returns n and marks positions
 * without a home (fewer zones than fragments) with -1, keeping the others
 * in place.
 */
struct ring_node {
	char id[80];     /* "addr:port" */
	uint32_t zone;
	uint64_t weight; /* capacity */
	uint16_t vnodes;
};

struct ring;

int ring_build(const struct ring_node *nodes, size_t nr, struct ring **out);
/* The ring that follows prev (placement_build_next): positions of staying
 * nodes never move. prev == NULL is ring_build. prev may be freed after. */
int ring_build_next(const struct ring *prev, const struct ring_node *nodes, size_t nr,
		    struct ring **out);
void ring_free(struct ring *r);
int ring_locate(const struct ring *r, uint64_t oid, int n, int *out);
/* "placement", for the log. */
const char *ring_impl(void);

#endif
