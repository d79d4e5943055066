/* placement.h - which nodes hold each object: capacity-weighted consistent hashing with zones and
 * stable positions. */
#ifndef PLACEMENT_H
#define PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

/*
 * A ring is built from the member list of one epoch and answers, for an
 * object id, the ordered list of nodes holding its fragments (EC) or copies:
 * position i holds fragment or copy i. Pure code: no I/O, no global state;
 * a built ring is read-only and may be shared by any number of threads.
 *
 * Two ways to build one:
 *
 * placement_build(nodes): the anchor, a function of the member list alone.
 *   Each node owns 16 ring points per vnode on a 64-bit hash ring (FNV-1a
 *   of its id and the point number, mixed), with 128 vnodes for a node of
 *   average weight or a fixed count (sheep -V). Position i walks the ring
 *   from hash(oid, i) to its primary, the first point met; positions settle
 *   nearest-primary first, each keeping its primary unless a nearer
 *   position took that zone; losers walk on to the first node of a free
 *   zone. Movement on a change is close to the capacity that changed
 *   (1.04-1.19x from 12 nodes up, width 6) but not exact: a few positions
 *   of staying nodes move with it.
 *
 * placement_build_next(prev, nodes): the next epoch's ring, derived from
 *   the previous epoch's ring. Its answer is prev's answer with three
 *   changes, made per object in this order:
 *     1. positions whose holder left (or lost its weight, or changed zone)
 *        become holes;
 *     2. each joiner (sorted by id) may take one position: the one of its
 *        zone's holder if its zone is present, with odds w/(V+w), else a
 *        position chosen by hash, with the odds that bring its zone to its
 *        share; w is its weight, V that of the nodes kept and earlier
 *        joiners;
 *     3. holes are refilled, in position order, from nodes of zones no
 *        other position uses, with odds in proportion to weight: hashed
 *        picks (FNV-1a, mixed, salted by depth) from a table of 64 slots
 *        per node shared out by weight in id order.
 *   The chain keeps a reference to prev (prev may be freed right away) and
 *   a lookup replays it from the anchor: about 25 ns per step on top of
 *   the anchor lookup (bench/placement_bench). Memory per step: the member
 *   list and the refill table (~400 bytes per member). Every member of a
 *   cluster must build the same chain from the same anchor (the epoch log).
 *
 * Guarantees:
 *  - Deterministic: same inputs (and, for a chain, same sequence of member
 *    lists) give the same answer in any process on any machine: FNV-1a and
 *    integer mixing only, no pointers, no randomness. Indexes returned are
 *    into the nodes[] given to the build; node order does not matter
 *    except for those indexes.
 *  - The nodes returned are in pairwise distinct zones; weight-0 nodes
 *    (gateways) are never returned.
 *  - Positional stability (placement_build_next, exact): for every object
 *    and position i, if prev put node X (by id) at i and X is in nodes[]
 *    with the same zone and weight > 0, the new ring puts X at i unless a
 *    node that is not in prev (a joiner) takes position i. Hence a leave
 *    moves only the leaver's positions, a join moves only the positions
 *    the joiner takes, and positions held by nobody (fewer zones than
 *    positions) are filled when a zone becomes free, with no other move.
 *    tests/unit/test_placement_history.c checks this on every (oid,
 *    position) pair of its runs.
 *  - No function of the member list alone can give the exact property: an
 *    exhaustive search finds none for 3 positions over 5 one-node zones.
 *    That is why the exact form needs prev.
 *  - Movement: a join moves about n*w/V of the (object, position) pairs and
 *    a leave exactly the leaver's share; both within 1.2x the capacity
 *    share that changed (tests: 6-64 nodes, width 6).
 *  - Balance: each node's share of positions is within 10% of its weight
 *    share (anchor: 6, 16, 64 nodes, equal and unequal weights, 1M
 *    objects; chains: after series of joins and leaves).
 *  - A weight change of a kept node does not move anything by itself; it
 *    changes the odds of later joins and refills.
 *  - Bad input (NULL, duplicate or empty or unterminated id, n out of range)
 *    gets -EINVAL and builds nothing; too many points or nodes -E2BIG.
 */

struct placement_node {
	char id[80];	 /* "addr:port", unique, NUL-terminated */
	uint32_t zone;	 /* failure domain */
	uint64_t weight; /* capacity in bytes; 0 = gateway, holds nothing */
	uint16_t vnodes; /* fixed vnodes (sheep -V); 0 = from weight, 128 for an average node */
};

struct placement_ring;

#define PLACEMENT_MAX_WIDTH 32
#define PLACEMENT_MAX_NODES 65536

/* Build an anchor ring from nr nodes (copied). 0, -EINVAL, -E2BIG or
 * -ENOMEM. A ring with no weighted node is valid and locates nothing. */
int placement_build(const struct placement_node *nodes, size_t nr, struct placement_ring **out);

/* Build the ring that follows prev (see above) from the new member list.
 * prev == NULL is placement_build. Same errors; prev is not changed. */
int placement_build_next(const struct placement_ring *prev, const struct placement_node *nodes,
			 size_t nr, struct placement_ring **out);

/* Drop a ring. Rings built on it stay valid. NULL is fine. */
void placement_free(struct placement_ring *r);

/*
 * The holders of object oid: out[i] (i < returned count) is the index, in
 * the nodes[] given to the build, of the holder of fragment or copy i.
 * Returns min(n, zones holding weight), or -EINVAL (n < 1 or n >
 * PLACEMENT_MAX_WIDTH). With fewer zones than n the filled positions come
 * first, in order; placement_locate_slots keeps holes in place instead.
 */
int placement_locate(const struct placement_ring *r, uint64_t oid, int n, int *out);

/* Positional even with fewer zones than n: out[i] = holder of position i,
 * or -1 when that position has no node. Returns how many have a node. */
int placement_locate_slots(const struct placement_ring *r, uint64_t oid, int n, int *out);

size_t placement_nr_nodes(const struct placement_ring *r);
/* Distinct zones that hold weight. */
int placement_nr_zones(const struct placement_ring *r);
/* Vnodes node i got (0 for a gateway). */
int placement_vnodes(const struct placement_ring *r, size_t i);
/* The vnodes placement_build would give each of nodes[] (out[nr]), without
 * building the ring (no points: O(nr log nr)). 0 or -errno. */
int placement_derive_vnodes(const struct placement_node *nodes, size_t nr, uint16_t *out);
/* Steps from the anchor: 0 for placement_build, prev's + 1 for a chain. */
int placement_depth(const struct placement_ring *r);

#endif
