/* test_placement.c - placement/: determinism, distinct zones, balance and movement on join and leave. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <cmocka.h>

#include "lib/fnv.h"
#include "placement/placement.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Balance always runs over 1M objects (the figure). Under
 * ASan/UBSan the movement comparisons use ten times fewer objects. */
#define BAL_OIDS 1000000
#if defined(__SANITIZE_ADDRESS__)
#define NR_OIDS 100000
#else
#define NR_OIDS 1000000
#endif

static void make_nodes(struct placement_node *nodes, int nr, int zones, const uint64_t *weights)
{
	memset(nodes, 0, sizeof(*nodes) * (size_t)nr);
	for (int i = 0; i < nr; i++) {
		snprintf(nodes[i].id, sizeof(nodes[i].id), "10.0.%d.%d:7000", i / 250, i % 250);
		nodes[i].zone = (uint32_t)(zones ? i % zones : i);
		nodes[i].weight = weights ? weights[i] : (100ull << 30);
	}
}

static uint64_t oid_of(uint64_t k)
{
	return ((k % 977) + 1) << 32 | (k / 977);
}

static void test_locate_is_deterministic_and_zone_distinct(void **state)
{
	(void)state;
	struct placement_node nodes[24];
	make_nodes(nodes, 24, 8, NULL); /* 3 nodes per zone */
	struct placement_ring *a, *b;
	assert_int_equal(placement_build(nodes, 24, &a), 0);
	assert_int_equal(placement_build(nodes, 24, &b), 0);
	assert_int_equal(placement_nr_zones(a), 8);
	for (uint64_t k = 0; k < 20000; k++) {
		int x[8], y[8];
		assert_int_equal(placement_locate(a, oid_of(k), 6, x), 6);
		assert_int_equal(placement_locate(b, oid_of(k), 6, y), 6);
		assert_memory_equal(x, y, sizeof(x[0]) * 6);
		for (int i = 0; i < 6; i++)
			for (int j = i + 1; j < 6; j++)
				assert_int_not_equal(nodes[x[i]].zone, nodes[x[j]].zone);
	}
	/* A known answer pins the hashing across machines and builds: a change
	 * here moves data in every existing cluster. */
	int z[6];
	assert_int_equal(placement_locate(a, 0x7c2b2500000000ULL, 6, z), 6);
	static const int want[6] = {20, 21, 22, 23, 10, 17};
	assert_memory_equal(z, want, sizeof(want));
	placement_free(a);
	placement_free(b);
}

static void test_fewer_zones_than_width_returns_what_exists(void **state)
{
	(void)state;
	struct placement_node nodes[8];
	make_nodes(nodes, 8, 4, NULL);
	struct placement_ring *r;
	assert_int_equal(placement_build(nodes, 8, &r), 0);
	int out[6], slots[6];
	for (uint64_t k = 0; k < 1000; k++) {
		assert_int_equal(placement_locate(r, oid_of(k), 6, out), 4);
		assert_int_equal(placement_locate_slots(r, oid_of(k), 6, slots), 4);
		int holes = 0;
		for (int i = 0; i < 6; i++)
			holes += slots[i] < 0;
		assert_int_equal(holes, 2);
	}
	placement_free(r);
}

static void test_gateways_and_bad_input(void **state)
{
	(void)state;
	struct placement_node nodes[4];
	make_nodes(nodes, 4, 0, NULL);
	nodes[2].weight = 0;
	struct placement_ring *r;
	assert_int_equal(placement_build(nodes, 4, &r), 0);
	int out[4];
	for (uint64_t k = 0; k < 1000; k++) {
		int m = placement_locate(r, oid_of(k), 4, out);
		assert_int_equal(m, 3);
		for (int i = 0; i < m; i++)
			assert_int_not_equal(out[i], 2);
	}
	assert_int_equal(placement_locate(r, 1, 0, out), -EINVAL);
	assert_int_equal(placement_locate(r, 1, PLACEMENT_MAX_WIDTH + 1, out), -EINVAL);
	placement_free(r);
	/* duplicate ids are refused */
	strcpy(nodes[1].id, nodes[0].id);
	assert_int_equal(placement_build(nodes, 4, &r), -EINVAL);
	/* empty ring locates nothing */
	assert_int_equal(placement_build(NULL, 0, &r), 0);
	assert_int_equal(placement_locate(r, 1, 3, out), 0);
	placement_free(r);
}

/* Each node's share of positions vs its weight share, n positions. */
static double worst_balance(const struct placement_node *nodes, int nr, int n)
{
	struct placement_ring *r;
	assert_int_equal(placement_build(nodes, (size_t)nr, &r), 0);
	uint64_t *cnt = calloc((size_t)nr, sizeof(*cnt));
	uint64_t total = 0;
	long double wsum = 0;
	for (int i = 0; i < nr; i++)
		wsum += (long double)nodes[i].weight;
	for (uint64_t k = 0; k < BAL_OIDS; k++) {
		int out[PLACEMENT_MAX_WIDTH];
		int m = placement_locate(r, oid_of(k), n, out);
		for (int i = 0; i < m; i++)
			cnt[out[i]]++;
		total += (uint64_t)m;
	}
	double worst = 0;
	for (int i = 0; i < nr; i++) {
		double want = (double)((long double)nodes[i].weight / wsum);
		double got = (double)cnt[i] / (double)total;
		double dev = got / want - 1;
		if (dev < 0)
			dev = -dev;
		if (dev > worst)
			worst = dev;
	}
	free(cnt);
	placement_free(r);
	return worst;
}

static void test_balance_within_ten_percent_of_weight(void **state)
{
	(void)state;
	static struct placement_node nodes[64];
	uint64_t w[64];
	static const int sizes[] = {6, 16, 64};
	for (size_t s = 0; s < 3; s++) {
		int nr = sizes[s];
		/* One zone per node; width 3 for 6 nodes (a wide stripe over few
		 * zones forces equal shares whatever the weights), 6 otherwise. */
		int n = nr == 6 ? 3 : 6;
		make_nodes(nodes, nr, 0, NULL);
		double eq = worst_balance(nodes, nr, n);
		for (int i = 0; i < nr; i++)
			w[i] = (uint64_t)(50 + 50 * (i % 3)) << 30; /* 50, 100, 150 GiB */
		make_nodes(nodes, nr, 0, w);
		double uneq = worst_balance(nodes, nr, 1);
		/* Several copies of unequal nodes: width 2 on 6 nodes, 3 above
		 * (distinct zones cap what a heavy node can take: see README). */
		int wn = nr == 6 ? 2 : 3;
		double uneqn = worst_balance(nodes, nr, wn);
		printf("# %d nodes: worst deviation equal (width %d) %.3f, unequal 1 copy %.3f, "
		       "width %d %.3f\n", nr, n, eq, uneq, wn, uneqn);
		assert_true(eq < 0.10);
		assert_true(uneq < 0.10);
		assert_true(uneqn < 0.10);
	}
}

/* Fraction of (oid, position) pairs whose node changed between two rings
 * (compared by node id), and how many of those were not on `gone`. */
static void movement(const struct placement_node *a, int na, const struct placement_node *b, int nb,
		     int n, const char *gone, double *moved, double *collateral)
{
	struct placement_ring *ra, *rb;
	assert_int_equal(placement_build(a, (size_t)na, &ra), 0);
	assert_int_equal(placement_build(b, (size_t)nb, &rb), 0);
	uint64_t changed = 0, other = 0, total = 0;
	for (uint64_t k = 0; k < NR_OIDS / 4; k++) {
		int x[PLACEMENT_MAX_WIDTH], y[PLACEMENT_MAX_WIDTH];
		placement_locate_slots(ra, oid_of(k), n, x);
		placement_locate_slots(rb, oid_of(k), n, y);
		for (int i = 0; i < n; i++) {
			const char *ida = x[i] >= 0 ? a[x[i]].id : "";
			const char *idb = y[i] >= 0 ? b[y[i]].id : "";
			total++;
			if (strcmp(ida, idb)) {
				changed++;
				if (!gone || strcmp(ida, gone))
					other++;
			}
		}
	}
	*moved = (double)changed / (double)total;
	*collateral = (double)other / (double)total;
	placement_free(ra);
	placement_free(rb);
}

/*
 * Rebuilding from scratch (placement_build on the new member list): the
 * fraction of (oid, position) pairs that change node stays within 1.2x
 * the capacity share that changed once the width is at most half the
 * zones (12 nodes and up for 4:2); denser clusters (8 nodes, width 6)
 * pay more and are bounded at 1.5x. The exact property, and 1.2x at every
 * size, come with placement_build_next (test_placement_history.c); no
 * function of the member list alone can have it (see placement.h).
 */
static void test_movement_on_join_and_leave_is_close_to_capacity_change(void **state)
{
	(void)state;
	static struct placement_node all[65];
	static const int sizes[] = {8, 12, 16, 64};
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		int nr = sizes[s];
		double bound = nr >= 12 ? 1.2 : 1.5;
		make_nodes(all, nr + 1, 0, NULL);
		double moved, coll;
		movement(all, nr, all, nr - 1, 6, all[nr - 1].id, &moved, &coll);
		double share = 1.0 / nr;
		printf("# leave %2d -> %2d: moved %.4f of pairs, capacity share %.4f, ratio %.2f; "
		       "on staying nodes %.4f\n",
		       nr, nr - 1, moved, share, moved / share, coll);
		assert_true(moved <= bound * share);
		movement(all, nr, all, nr + 1, 6, NULL, &moved, &coll);
		share = 1.0 / (nr + 1);
		printf("# join  %2d -> %2d: moved %.4f of pairs, capacity share %.4f, ratio %.2f\n",
		       nr, nr + 1, moved, share, moved / share);
		assert_true(moved <= bound * share);
	}
}

/* With zones to spare, positions held by staying nodes rarely move. */
static void test_leave_moves_few_positions_of_staying_nodes(void **state)
{
	(void)state;
	static struct placement_node all[24];
	make_nodes(all, 24, 0, NULL);
	double moved, coll;
	movement(all, 24, all, 23, 6, all[23].id, &moved, &coll);
	printf("# leave 24 -> 23: moved %.4f, on staying nodes %.4f (%.1f%% of moves)\n", moved,
	       coll, 100 * coll / moved);
	assert_true(coll <= 0.15 * moved);
}

/*
 * The slow obvious anchor: every point in one sorted array, the primary of
 * a position found by a linear scan, settlement nearest first, losers
 * walking point by point to the first free zone. Written from the header's
 * description; it shares only lib/fnv.h with placement.c.
 */
struct ref_point {
	uint64_t h;
	int node;
};

static uint64_t ref_mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

static int ref_cmp(const void *a, const void *b)
{
	const struct ref_point *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->node - y->node;
}

static struct ref_point *ref_points(const struct placement_node *nodes, int nr, size_t *np)
{
	long double sum = 0;
	int weighted = 0;
	for (int i = 0; i < nr; i++)
		if (nodes[i].weight) {
			sum += (long double)nodes[i].weight;
			weighted++;
		}
	size_t cap = 1 << 20, k = 0;
	struct ref_point *p = malloc(cap * sizeof(*p));
	for (int i = 0; i < nr; i++) {
		if (!nodes[i].weight)
			continue;
		long v = nodes[i].vnodes ? nodes[i].vnodes
					 : lroundl(128 * (long double)nodes[i].weight * weighted / sum);
		if (v < 1)
			v = 1;
		uint64_t base = fnv_64a_buf(nodes[i].id, strlen(nodes[i].id), FNV1A_64_INIT);
		for (long j = 0; j < v * 16; j++) {
			assert_true(k < cap);
			p[k].h = ref_mix(fnv_64a_u64((uint64_t)j, base));
			p[k++].node = i;
		}
	}
	qsort(p, k, sizeof(*p), ref_cmp);
	*np = k;
	return p;
}

static int ref_locate_slots(const struct placement_node *nodes, const struct ref_point *p,
			    size_t np, uint64_t oid, int n, int *out)
{
	size_t at[PLACEMENT_MAX_WIDTH];
	uint64_t dist[PLACEMENT_MAX_WIDTH];
	int order[PLACEMENT_MAX_WIDTH], m = 0;
	uint64_t base = ref_mix(fnv_64a_u64(oid, FNV1A_64_INIT));
	for (int i = 0; i < n; i++) {
		uint64_t start = ref_mix(base + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
		at[i] = 0; /* wraps to the first point when none is >= start */
		for (size_t k = 0; k < np; k++)
			if (p[k].h >= start) {
				at[i] = k;
				break;
			}
		dist[i] = p[at[i]].h - start;
		order[i] = i;
		out[i] = -1;
	}
	for (int i = 1; i < n; i++) /* insertion sort by (dist, position) */
		for (int j = i; j > 0 && (dist[order[j]] < dist[order[j - 1]] ||
					  (dist[order[j]] == dist[order[j - 1]] && order[j] < order[j - 1]));
		     j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	bool lost[PLACEMENT_MAX_WIDTH] = {false};
	for (int k = 0; k < n; k++) {
		int i = order[k], node = p[at[i]].node;
		bool taken = false;
		for (int j = 0; j < n; j++)
			taken |= out[j] >= 0 && nodes[out[j]].zone == nodes[node].zone;
		if (taken)
			lost[i] = true;
		else
			out[i] = node, m++;
	}
	for (int k = 0; k < n; k++) {
		int i = order[k];
		if (!lost[i])
			continue;
		for (size_t step = 0; step < np; step++) {
			int node = p[(at[i] + step) % np].node;
			bool taken = false;
			for (int j = 0; j < n; j++)
				taken |= out[j] >= 0 && nodes[out[j]].zone == nodes[node].zone;
			if (!taken) {
				out[i] = node, m++;
				break;
			}
		}
	}
	return m;
}

/* Unequal zones (3, 2, 1, 1 nodes, one empty of weight), weights from
 * capacity mixed with fixed vnodes, widths 1 to 8. */
static void test_anchor_matches_slow_reference(void **state)
{
	(void)state;
	struct placement_node nodes[8];
	static const uint32_t zone[8] = {7, 7, 7, 3, 3, 11, 5, 9};
	static const uint64_t gib[8] = {40, 80, 120, 60, 60, 100, 30, 0};
	make_nodes(nodes, 8, 0, NULL);
	for (int i = 0; i < 8; i++) {
		nodes[i].zone = zone[i];
		nodes[i].weight = gib[i] << 30;
	}
	nodes[6].vnodes = 40; /* fixed, like sheep -V */
	struct placement_ring *r;
	assert_int_equal(placement_build(nodes, 8, &r), 0);
	assert_int_equal(placement_nr_zones(r), 4);
	size_t np;
	struct ref_point *p = ref_points(nodes, 8, &np);
	for (int n = 1; n <= 8; n++)
		for (uint64_t k = 0; k < 600; k++) {
			int want[PLACEMENT_MAX_WIDTH], got[PLACEMENT_MAX_WIDTH];
			int mw = ref_locate_slots(nodes, p, np, oid_of(k * 7919), n, want);
			int mg = placement_locate_slots(r, oid_of(k * 7919), n, got);
			assert_int_equal(mw, mg);
			assert_memory_equal(want, got, sizeof(want[0]) * (size_t)n);
		}
	free(p);
	placement_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locate_is_deterministic_and_zone_distinct),
		cmocka_unit_test(test_fewer_zones_than_width_returns_what_exists),
		cmocka_unit_test(test_gateways_and_bad_input),
		cmocka_unit_test(test_balance_within_ten_percent_of_weight),
		cmocka_unit_test(test_movement_on_join_and_leave_is_close_to_capacity_change),
		cmocka_unit_test(test_leave_moves_few_positions_of_staying_nodes),
		cmocka_unit_test(test_anchor_matches_slow_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
