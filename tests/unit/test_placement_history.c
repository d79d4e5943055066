/* test_placement_history.c - chained rings (placement_build_next): exact positional stability, movement and balance across joins and leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <cmocka.h>

#include "lib/fnv.h"
#include "placement/placement.h"

/* Under ASan/UBSan the pair-by-pair stability checks run over ten times
 * fewer objects (they are exact on every pair either way); the balance
 * checks always use BAL_OIDS, so their figures are the same in both. */
#if defined(__SANITIZE_ADDRESS__)
#define SCALE 10
#else
#define SCALE 1
#endif
#define NR_OIDS (1000000 / SCALE)
#define BAL_OIDS 250000

static uint64_t oid_of(uint64_t k)
{
	return ((k % 977) + 1) << 32 | (k / 977);
}

static void set_node(struct placement_node *n, int id, uint32_t zone, uint64_t weight)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "10.1.%d.%d:7000", id / 250, id % 250);
	n->zone = zone;
	n->weight = weight;
}

static int find_id(const struct placement_node *nodes, int nr, const char *id)
{
	for (int i = 0; i < nr; i++)
		if (!strcmp(nodes[i].id, id))
			return i;
	return -1;
}

/* y is kept from a: same id and zone, weight on both sides. */
static bool ref_kept(const struct placement_node *a, int na, const struct placement_node *y)
{
	int k = find_id(a, na, y->id);
	return k >= 0 && a[k].zone == y->zone && a[k].weight && y->weight;
}

/*
 * Compare two consecutive rings on every (oid, position) pair and assert
 * the header's guarantee: a position keeps its node (by id) unless that
 * node is gone from b or the new holder is a node a does not have.
 * Also zones distinct in b. Returns the fraction of pairs that moved.
 */
static double check_step(const struct placement_ring *ra, const struct placement_node *a, int na,
			 const struct placement_ring *rb, const struct placement_node *b, int nb,
			 int n, uint64_t oids)
{
	uint64_t moved = 0;
	for (uint64_t k = 0; k < oids; k++) {
		int x[PLACEMENT_MAX_WIDTH], y[PLACEMENT_MAX_WIDTH];
		assert_true(placement_locate_slots(ra, oid_of(k), n, x) >= 0);
		assert_true(placement_locate_slots(rb, oid_of(k), n, y) >= 0);
		for (int i = 0; i < n; i++) {
			if (y[i] >= 0)
				for (int j = i + 1; j < n; j++)
					if (y[j] >= 0)
						assert_int_not_equal(b[y[i]].zone, b[y[j]].zone);
			const char *ida = x[i] >= 0 ? a[x[i]].id : "";
			const char *idb = y[i] >= 0 ? b[y[i]].id : "";
			if (!strcmp(ida, idb))
				continue;
			moved++;
			int stay = x[i] >= 0 ? find_id(b, nb, ida) : -1;
			bool stayed = stay >= 0 && ref_kept(a, na, &b[stay]);
			bool joiner = y[i] >= 0 && !ref_kept(a, na, &b[y[i]]);
			if (stayed && !joiner) {
				printf("# oid %#llx position %d moved from %s to %s\n",
				       (unsigned long long)oid_of(k), i, ida, idb);
				fail();
			}
		}
	}
	return (double)moved / (double)(oids * (uint64_t)n);
}

static void test_leave_moves_only_the_leavers_positions(void **state)
{
	(void)state;
	static const int sizes[] = {7, 8, 12, 16, 64};
	struct placement_node a[64];
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int nr = sizes[s];
		for (int i = 0; i < nr; i++)
			set_node(&a[i], i, (uint32_t)i, 100ull << 30);
		struct placement_ring *ra, *rb;
		assert_int_equal(placement_build(a, (size_t)nr, &ra), 0);
		/* the leaver is in the middle: indexes shift in b */
		struct placement_node b[64];
		int gone = nr / 2;
		memcpy(b, a, sizeof(a[0]) * (size_t)gone);
		memcpy(b + gone, a + gone + 1, sizeof(a[0]) * (size_t)(nr - gone - 1));
		assert_int_equal(placement_build_next(ra, b, (size_t)nr - 1, &rb), 0);
		assert_int_equal(placement_depth(rb), 1);
		double moved = check_step(ra, a, nr, rb, b, nr - 1, 6, NR_OIDS / 4);
		double share = 1.0 / nr;
		printf("# leave %2d -> %2d: moved %.4f, capacity share %.4f, ratio %.3f\n", nr,
		       nr - 1, moved, share, moved / share);
		assert_true(moved <= 1.2 * share);
		placement_free(ra);
		placement_free(rb);
	}
}

static void test_join_moves_only_positions_the_joiner_takes(void **state)
{
	(void)state;
	static const int sizes[] = {6, 8, 12, 16, 64};
	struct placement_node a[65];
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int nr = sizes[s];
		for (int i = 0; i <= nr; i++)
			set_node(&a[i], i, (uint32_t)i, 100ull << 30);
		struct placement_ring *ra, *rb;
		assert_int_equal(placement_build(a, (size_t)nr, &ra), 0);
		assert_int_equal(placement_build_next(ra, a, (size_t)nr + 1, &rb), 0);
		double moved = check_step(ra, a, nr, rb, a, nr + 1, 6, NR_OIDS / 4);
		double share = 1.0 / (nr + 1);
		printf("# join  %2d -> %2d: moved %.4f, capacity share %.4f, ratio %.3f\n", nr,
		       nr + 1, moved, share, moved / share);
		assert_true(moved <= 1.2 * share);
		placement_free(ra);
		placement_free(rb);
	}
}

/*
 * What a node can hold at most: a zone holds at most one position of each
 * object, so zones heavier than 1/n of the weight are capped at one
 * position per object and the others share the rest in proportion to
 * weight (water-filling); inside a zone, nodes share by weight. Returns
 * node i's expected positions per object.
 */
static void ideal_shares(const struct placement_node *nodes, int nr, int n, double *share)
{
	double zw[64] = {0};
	uint32_t zid[64];
	int nz = 0, zof[64];
	for (int i = 0; i < nr; i++) {
		int z = 0;
		while (z < nz && zid[z] != nodes[i].zone)
			z++;
		if (z == nz)
			zid[nz++] = nodes[i].zone;
		zof[i] = z;
		zw[z] += (double)nodes[i].weight;
	}
	double lo = 0, hi = 0;
	for (int z = 0; z < nz; z++)
		if (zw[z] > 0 && 1 / zw[z] > hi)
			hi = 1 / zw[z]; /* every zone capped */
	if (nz <= n)
		lo = hi;
	for (int it = 0; it < 200 && nz > n; it++) { /* c with sum min(1, c*zw) = n */
		double c = (lo + hi) / 2, sum = 0;
		for (int z = 0; z < nz; z++)
			sum += fmin(1, c * zw[z]);
		if (sum < n)
			lo = c;
		else
			hi = c;
	}
	for (int i = 0; i < nr; i++)
		share[i] = fmin(1, lo * zw[zof[i]]) * (double)nodes[i].weight / zw[zof[i]];
}

/* Worst relative deviation of a node's positions per object from its ideal share. */
static double worst_balance(const struct placement_ring *r, const struct placement_node *nodes,
			    int nr, int n, uint64_t oids)
{
	uint64_t *cnt = calloc((size_t)nr, sizeof(*cnt));
	double share[64];
	ideal_shares(nodes, nr, n, share);
	for (uint64_t k = 0; k < oids; k++) {
		int out[PLACEMENT_MAX_WIDTH];
		int m = placement_locate(r, oid_of(k), n, out);
		for (int i = 0; i < m; i++)
			cnt[out[i]]++;
	}
	double worst = 0;
	for (int i = 0; i < nr; i++) {
		if (!nodes[i].weight)
			continue;
		double dev = fabs((double)cnt[i] / (double)oids / share[i] - 1);
		if (dev > worst)
			worst = dev;
	}
	free(cnt);
	return worst;
}

/*
 * A cluster's life: 24 steps of joins and leaves (one or two at a time),
 * from 16 nodes. Every step is checked pair by pair against the guarantee
 * and for distinct zones. zones: 0 = one zone per node, else node k goes
 * to zone k*7 % zones. Returns the final ring and members.
 */
static struct placement_ring *live_a_life(int zones, bool unequal, struct placement_node *cur,
					  int *nr_out)
{
	struct placement_node next[64];
	int nr = 16, next_id = 16;
	for (int i = 0; i < nr; i++)
		set_node(&cur[i], i, (uint32_t)(zones ? i * 7 % zones : i),
			 (uint64_t)(unequal ? 50 + 50 * (i % 3) : 100) << 30);
	struct placement_ring *r;
	assert_int_equal(placement_build(cur, (size_t)nr, &r), 0);
	uint64_t seed = 12345;
	for (int step = 0; step < 24; step++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		int nn = nr;
		memcpy(next, cur, sizeof(cur[0]) * (size_t)nr);
		int kind = (int)((seed >> 33) % 4); /* 0,1 leave; 2 join; 3 join two */
		if (kind < 2 && nr > 10) {
			int gone = (int)((seed >> 40) % (uint64_t)nr);
			memmove(&next[gone], &next[gone + 1], sizeof(next[0]) * (size_t)(nr - gone - 1));
			nn--;
		} else {
			int joins = kind == 3 ? 2 : 1;
			for (int j = 0; j < joins && nn < 64; j++, next_id++)
				set_node(&next[nn++], next_id,
					 (uint32_t)(zones ? next_id * 7 % zones : next_id),
					 (uint64_t)(unequal ? 50 + 50 * (next_id % 3) : 100) << 30);
		}
		struct placement_ring *rn;
		assert_int_equal(placement_build_next(r, next, (size_t)nn, &rn), 0);
		check_step(r, cur, nr, rn, next, nn, 6, NR_OIDS / 40);
		placement_free(r); /* the chain must survive its predecessor */
		r = rn;
		memcpy(cur, next, sizeof(next[0]) * (size_t)nn);
		nr = nn;
	}
	assert_int_equal(placement_depth(r), 24);
	*nr_out = nr;
	return r;
}

static void test_long_chain_keeps_positions_and_balance(void **state)
{
	(void)state;
	struct placement_node cur[64];
	int nr;
	struct placement_ring *r = live_a_life(0, false, cur, &nr);
	double dev6 = worst_balance(r, cur, nr, 6, BAL_OIDS);
	placement_free(r);
	r = live_a_life(0, true, cur, &nr);
	double dev3 = worst_balance(r, cur, nr, 3, BAL_OIDS);
	double dev1 = worst_balance(r, cur, nr, 1, BAL_OIDS);
	placement_free(r);
	printf("# after 24 steps: equal weights width 6 %.3f; unequal width 3 %.3f, 1 copy %.3f\n",
	       dev6, dev3, dev1);
	assert_true(dev6 < 0.10);
	assert_true(dev3 < 0.10);
	assert_true(dev1 < 0.10);
}

/* Zones of 1 to 3 nodes and unequal weights: the guarantee holds at every
 * step; the balance is compared with a fresh anchor of the same members
 * (neither reaches weight share here: 6 of 12 zones per object). */
static void test_long_chain_with_uneven_zones_keeps_positions(void **state)
{
	(void)state;
	struct placement_node cur[64];
	int nr;
	struct placement_ring *r = live_a_life(12, true, cur, &nr);
	struct placement_ring *fresh;
	assert_int_equal(placement_build(cur, (size_t)nr, &fresh), 0);
	double chain = worst_balance(r, cur, nr, 6, BAL_OIDS);
	double anchor = worst_balance(fresh, cur, nr, 6, BAL_OIDS);
	printf("# uneven zones after 24 steps: chain %.3f, fresh anchor %.3f from ideal\n", chain,
	       anchor);
	assert_true(chain < anchor + 0.05);
	placement_free(fresh);
	placement_free(r);
}

/* A zone change is a leave and a join; a gateway that gets weight joins;
 * with fewer zones than positions, holes fill when a zone arrives and
 * nothing else moves. */
static void test_zone_change_gateway_and_holes(void **state)
{
	(void)state;
	struct placement_node a[8], b[8];
	for (int i = 0; i < 8; i++)
		set_node(&a[i], i, (uint32_t)(i % 4), 100ull << 30); /* 4 zones */
	a[7].weight = 0;                                            /* a gateway */
	memcpy(b, a, sizeof(a));
	b[2].zone = 9;            /* moves to a new zone: 5 zones */
	b[7].weight = 100ull << 30; /* the gateway gets a disk */
	struct placement_ring *ra, *rb;
	assert_int_equal(placement_build(a, 8, &ra), 0);
	assert_int_equal(placement_build_next(ra, b, 8, &rb), 0);
	assert_int_equal(placement_nr_zones(ra), 4);
	assert_int_equal(placement_nr_zones(rb), 5);
	check_step(ra, a, 8, rb, b, 8, 6, 20000);
	for (uint64_t k = 0; k < 20000; k++) {
		int x[6];
		assert_int_equal(placement_locate_slots(rb, oid_of(k), 6, x), 5);
	}
	placement_free(ra);
	placement_free(rb);
}

static void test_build_next_rejects_bad_input(void **state)
{
	(void)state;
	struct placement_node a[4];
	for (int i = 0; i < 4; i++)
		set_node(&a[i], i, (uint32_t)i, 1ull << 30);
	struct placement_ring *ra, *rb = NULL;
	assert_int_equal(placement_build(a, 4, &ra), 0);
	int before[6], after[6];
	assert_int_equal(placement_locate_slots(ra, 42, 4, before), 4);
	strcpy(a[1].id, a[0].id);
	assert_int_equal(placement_build_next(ra, a, 4, &rb), -EINVAL);
	assert_null(rb);
	memset(a[1].id, 'x', sizeof(a[1].id)); /* unterminated */
	assert_int_equal(placement_build_next(ra, a, 4, &rb), -EINVAL);
	assert_int_equal(placement_build_next(ra, NULL, 4, &rb), -EINVAL);
	assert_int_equal(placement_build_next(ra, a, 4, NULL), -EINVAL);
	assert_int_equal(placement_locate_slots(ra, 42, 4, after), 4);
	assert_memory_equal(before, after, sizeof(before[0]) * 4);
	assert_int_equal(placement_depth(ra), 0);
	/* NULL prev is a plain build */
	set_node(&a[1], 1, 1, 1ull << 30);
	assert_int_equal(placement_build_next(NULL, a, 4, &rb), 0);
	assert_int_equal(placement_depth(rb), 0);
	assert_int_equal(placement_locate_slots(rb, 42, 4, after), 4);
	assert_memory_equal(before, after, sizeof(before[0]) * 4);
	placement_free(rb);
	placement_free(ra);
	placement_free(NULL);
}

/*
 * The slow obvious chain: the header's three rules written out with ids
 * and linear searches, on top of the library's anchor answer (the anchor
 * has its own reference in test_placement.c). Same hashes by definition.
 */
static uint64_t ref_mix(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

static double ref_unit(uint64_t h)
{
	return ((double)(h >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t ref_id_hash(const char *id)
{
	return ref_mix(fnv_64a_buf(id, strlen(id), FNV1A_64_INIT));
}

/* relative weight: fixed vnodes, or 128 * w / mean w of the weighted */
static double ref_rel(const struct placement_node *nodes, int nr, int i)
{
	if (!nodes[i].weight)
		return 0;
	if (nodes[i].vnodes)
		return nodes[i].vnodes;
	long double sum = 0;
	int cnt = 0;
	for (int k = 0; k < nr; k++)
		if (nodes[k].weight) {
			sum += (long double)nodes[k].weight;
			cnt++;
		}
	return (double)(128 * (long double)nodes[i].weight * cnt / sum);
}

/* slots: in = indexes into a (prev answer), out = indexes into b */
static void ref_step(const struct placement_node *a, int na, const struct placement_node *b,
		     int nb, int depth, uint64_t oid, int n, int *slots)
{
	uint64_t oid_h = ref_mix(fnv_64a_u64(oid, FNV1A_64_INIT));
	for (int i = 0; i < n; i++) { /* 1. holes for leavers */
		int k = slots[i] >= 0 ? find_id(b, nb, a[slots[i]].id) : -1;
		slots[i] = k >= 0 && ref_kept(a, na, &b[k]) ? k : -1;
	}
	/* 2. joiners by id order, totals of kept nodes and earlier joiners */
	bool done[64] = {false};
	for (;;) {
		int y = -1;
		for (int k = 0; k < nb; k++)
			if (b[k].weight && !ref_kept(a, na, &b[k]) && !done[k] &&
			    (y < 0 || strcmp(b[k].id, b[y].id) < 0))
				y = k;
		if (y < 0)
			break;
		double total = 0, zone_total = 0, w = ref_rel(b, nb, y);
		for (int k = 0; k < nb; k++)
			if (b[k].weight && (ref_kept(a, na, &b[k]) || done[k])) {
				total += ref_rel(b, nb, k);
				if (b[k].zone == b[y].zone)
					zone_total += ref_rel(b, nb, k);
			}
		done[y] = true;
		if (total <= 0)
			break;
		uint64_t h = ref_mix(oid_h ^ ref_id_hash(b[y].id) ^ 0x6a6f696e6a6f696eULL);
		int mate = -1;
		for (int i = n - 1; i >= 0; i--)
			if (slots[i] >= 0 && b[slots[i]].zone == b[y].zone)
				mate = i;
		if (mate >= 0) {
			if (ref_unit(h) < w / (total + w))
				slots[mate] = y;
			continue;
		}
		double before = fmin(1, n * zone_total / total);
		double after = fmin(1, n * (zone_total + w) / (total + w));
		double g = before >= 1 ? 0 : fmax(0, fmin(1, (after - before) / (1 - before)));
		if (ref_unit(h) < g)
			slots[ref_mix(h) % (uint64_t)n] = y;
	}
	/* 3. holes, in order, from the refill table: 64 slots per weighted
	 * node shared by weight (largest remainder, ties to the smaller id),
	 * laid out in id order; hashed picks, then a scan */
	int ord[64], nw = 0;
	double sum = 0;
	for (int k = 0; k < nb; k++)
		if (b[k].weight) {
			sum += ref_rel(b, nb, k);
			int at = nw++;
			while (at > 0 && strcmp(b[ord[at - 1]].id, b[k].id) > 0) {
				ord[at] = ord[at - 1];
				at--;
			}
			ord[at] = k;
		}
	if (!nw)
		return;
	uint32_t cnt[64], table[64 * 64 + 64], given = 0, slots_want = (uint32_t)nw * 64;
	double rem[64];
	for (int k = 0; k < nw; k++) {
		double want = (double)slots_want * ref_rel(b, nb, ord[k]) / sum;
		cnt[k] = (uint32_t)want ? (uint32_t)want : 1;
		rem[k] = want - cnt[k];
		given += cnt[k];
	}
	for (; given < slots_want; given++) {
		int best = 0;
		for (int k = 1; k < nw; k++)
			if (rem[k] > rem[best])
				best = k;
		cnt[best]++;
		rem[best] -= 1;
	}
	uint32_t t = 0;
	for (int k = 0; k < nw; k++)
		for (uint32_t c = 0; c < cnt[k]; c++)
			table[t++] = (uint32_t)ord[k];
	for (int i = 0; i < n; i++) {
		if (slots[i] >= 0)
			continue;
		uint64_t h = oid_h + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL +
			     (uint64_t)depth * 0xd1b54a32d192ed03ULL;
		uint32_t at = 0;
		for (int tries = 0; tries < 32 + (int)t && slots[i] < 0; tries++) {
			if (tries < 32) {
				h = ref_mix(h);
				at = (uint32_t)(h % t);
			} else {
				at = (at + 1) % t;
			}
			bool used = false;
			for (int j = 0; j < n; j++)
				used |= slots[j] >= 0 && b[slots[j]].zone == b[table[at]].zone;
			if (!used)
				slots[i] = (int)table[at];
		}
	}
}

static void test_chain_matches_slow_reference(void **state)
{
	(void)state;
	/* three steps: leave + join in one; two joins in one zone; a leave */
	struct placement_node m0[12], m1[12], m2[13], m3[12];
	for (int i = 0; i < 12; i++)
		set_node(&m0[i], i, (uint32_t)(i % 7), (uint64_t)(1 + i % 4) << 30);
	memcpy(m1, m0, sizeof(m0));
	set_node(&m1[3], 40, 3, 3ull << 30);
	memcpy(m2, m1, sizeof(m1));
	set_node(&m2[12], 41, 5, 2ull << 30);
	set_node(&m2[0], 42, 5, 1ull << 30);
	memcpy(m3, m2 + 1, sizeof(m3));
	const struct placement_node *ms[4] = {m0, m1, m2, m3};
	const int nrs[4] = {12, 12, 13, 12};
	struct placement_ring *r[4];
	assert_int_equal(placement_build(m0, 12, &r[0]), 0);
	for (int s = 1; s < 4; s++)
		assert_int_equal(placement_build_next(r[s - 1], ms[s], (size_t)nrs[s], &r[s]), 0);
	for (int n = 1; n <= 8; n++)
		for (uint64_t k = 0; k < 4000 / SCALE; k++) {
			int want[PLACEMENT_MAX_WIDTH], got[PLACEMENT_MAX_WIDTH];
			placement_locate_slots(r[0], oid_of(k), n, want);
			for (int s = 1; s < 4; s++) {
				ref_step(ms[s - 1], nrs[s - 1], ms[s], nrs[s], s, oid_of(k), n, want);
				placement_locate_slots(r[s], oid_of(k), n, got);
				assert_memory_equal(want, got, sizeof(want[0]) * (size_t)n);
			}
		}
	for (int s = 0; s < 4; s++)
		placement_free(r[s]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leave_moves_only_the_leavers_positions),
		cmocka_unit_test(test_join_moves_only_positions_the_joiner_takes),
		cmocka_unit_test(test_long_chain_keeps_positions_and_balance),
		cmocka_unit_test(test_long_chain_with_uneven_zones_keeps_positions),
		cmocka_unit_test(test_zone_change_gateway_and_holes),
		cmocka_unit_test(test_build_next_rejects_bad_input),
		cmocka_unit_test(test_chain_matches_slow_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
