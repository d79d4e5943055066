/* placement_int.h - the ring's layout, shared by the anchor ring (placement.c) and the history
 * chain (history.c). */
#ifndef PLACEMENT_INT_H
#define PLACEMENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "placement/placement.h"

struct placement_point {
	uint64_t h;
	uint32_t node;
};

/*
 * Every ring has its members, their compact zone numbers and relative
 * weights. An anchor ring (depth 0, from placement_build) also has the
 * hash ring of points; a chained ring (from placement_build_next) instead
 * has a reference to the previous ring and the changes since it.
 * Rings are immutable once built; refs is the only field that changes.
 */
struct placement_ring {
	int refs; /* placement_free drops one; atomic */
	size_t nr;
	struct placement_node *nodes;
	uint16_t *vnodes;    /* per node, as the anchor ring uses them */
	double *rel;	     /* per node: relative weight (vnodes, unrounded); 0 = holds nothing */
	uint32_t *zone;	     /* per node: compact zone number 0..nr-1 */
	uint64_t *node_hash; /* per node: mixed FNV-1a of its id */
	uint32_t *by_id;     /* node indexes in id order */
	int nr_zones;	     /* zones holding weight */

	/* anchor ring only */
	size_t nr_points;
	struct placement_point *points; /* sorted by h, then node */
	uint32_t *bucket;		/* bucket[b] = first point whose top bits are >= b */
	int bucket_bits;
	uint32_t **zone_points; /* per zone, indexes of its points, ascending */
	uint32_t *zone_nr_points;

	/* chained ring only */
	int depth;		       /* 0 for an anchor */
	struct placement_ring *prev;   /* holds a reference */
	struct placement_ring **chain; /* chain[0] = anchor ... chain[depth-1] = prev */
	int32_t *map_prev;	       /* prev's node index -> ours, or -1 (departed) */
	size_t nr_joiners;
	struct placement_joiner *joiners;
	/* Refill table: node x fills about nr_pick * rel[x] / sum(rel) slots
	 * (at least one), in id order; a hash picks a slot. */
	uint32_t *pick;
	uint32_t nr_pick;
};

/* One node that joined at this step, with the odds worked out at build. */
struct placement_joiner {
	uint32_t node;	   /* index in this ring */
	double weight;	   /* its relative weight */
	double total;	   /* weight of the kept nodes and earlier joiners */
	double zone_total; /* the same, in its zone */
};

uint64_t placement_mix64(uint64_t h);
uint64_t placement_oid_hash(uint64_t oid);
/* The members part of a ring (nodes, vnodes, rel, zone, node_hash,
 * by_id, nr_zones): shared by both kinds. r->refs is set to 1. */
int placement_init_members(struct placement_ring *r, const struct placement_node *nodes, size_t nr);
/* Stateless answer of an anchor ring, holes as -1; returns filled count. */
int placement_anchor_slots(const struct placement_ring *r, uint64_t oid, int n, int *out);
void placement_release(struct placement_ring *r);

#endif
