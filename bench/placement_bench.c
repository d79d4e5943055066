/* placement_bench.c - placement lookups per second (anchor and chained rings) and data movement on
 * join and leave. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "placement/placement.h"

#define RUNS  7
#define WIDTH 6

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void make_node(struct placement_node *n, int i)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "10.%d.%d.%d:7000", i / 65536, (i / 256) % 256, i % 256);
	n->zone = (uint32_t)i;
	n->weight = 100ull << 30;
}

static void must(int ret)
{
	if (ret) {
		fprintf(stderr, "placement_bench: build failed: %s\n", strerror(-ret));
		exit(1);
	}
}

static uint64_t oid_of(uint64_t k)
{
	return ((k % 977 + 1) << 32) | (k / 977);
}

/* Median ns per WIDTH-wide lookup over oids[] (or generated oids). */
static double lookup_ns(const struct placement_ring *r, const uint64_t *oids, int nr_oids,
			int lookups)
{
	double t[RUNS];
	volatile int sink = 0;
	for (int run = 0; run < RUNS; run++) {
		uint64_t t0 = sd_now_ns();
		for (int k = 0; k < lookups; k++) {
			int out[PLACEMENT_MAX_WIDTH];
			placement_locate(r, oids ? oids[k % nr_oids] : oid_of((uint64_t)k), WIDTH,
					 out);
			sink += out[0];
		}
		t[run] = (double)(sd_now_ns() - t0) / lookups;
	}
	(void)sink;
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	return t[RUNS / 2];
}

/*
 * A chain of `depth` steps from nr nodes: odd steps remove the oldest
 * member, even steps add a new one. nodes[] gets the final members.
 */
static struct placement_ring *chain_of(int nr, int depth, struct placement_node *nodes, int *nr_out)
{
	int base = 0, cnt = nr, next = nr;
	for (int i = 0; i < nr; i++)
		make_node(&nodes[i], i);
	struct placement_ring *r = NULL;
	must(placement_build(nodes, (size_t)nr, &r));
	for (int d = 0; d < depth; d++) {
		if (d % 2 == 0) {
			base++;
			cnt--;
		} else {
			make_node(&nodes[base + cnt], next++);
			cnt++;
		}
		struct placement_ring *n = NULL;
		must(placement_build_next(r, nodes + base, (size_t)cnt, &n));
		placement_free(r);
		r = n;
	}
	memmove(nodes, nodes + base, sizeof(*nodes) * (size_t)cnt);
	*nr_out = cnt;
	return r;
}

static double moved_fraction(const struct placement_ring *ra, const struct placement_node *a,
			     const struct placement_ring *rb, const struct placement_node *b,
			     int oids)
{
	long changed = 0, total = 0;
	for (int k = 0; k < oids; k++) {
		int x[PLACEMENT_MAX_WIDTH], y[PLACEMENT_MAX_WIDTH];
		placement_locate_slots(ra, oid_of((uint64_t)k), WIDTH, x);
		placement_locate_slots(rb, oid_of((uint64_t)k), WIDTH, y);
		for (int i = 0; i < WIDTH; i++) {
			total++;
			const char *ia = x[i] >= 0 ? a[x[i]].id : "";
			const char *ib = y[i] >= 0 ? b[y[i]].id : "";
			changed += strcmp(ia, ib) != 0;
		}
	}
	return (double)changed / (double)total;
}

/* One join or leave at nr nodes, rebuilt from scratch and chained. */
static void movement_row(int nr, int join, int oids)
{
	struct placement_node *a = calloc((size_t)nr + 1, sizeof(*a));
	for (int i = 0; i <= nr; i++)
		make_node(&a[i], i);
	int nb = join ? nr + 1 : nr - 1;
	const struct placement_node *b = join ? a : a + 1; /* a leave drops node 0 */
	struct placement_ring *ra = NULL, *rb = NULL, *rc = NULL;
	must(placement_build(a, (size_t)nr, &ra));
	must(placement_build(b, (size_t)nb, &rb));
	must(placement_build_next(ra, b, (size_t)nb, &rc));
	double share = join ? 1.0 / (nr + 1) : 1.0 / nr;
	double mr = moved_fraction(ra, a, rb, b, oids);
	double mc = moved_fraction(ra, a, rc, b, oids);
	char label[32];
	snprintf(label, sizeof(label), "%s %d->%d", join ? "join" : "leave", nr, nb);
	printf("%-14s %9.4f %9.4f %6.2f %9.4f %6.2f\n", label, share, mr, mr / share, mc,
	       mc / share);
	placement_free(ra);
	placement_free(rb);
	placement_free(rc);
	free(a);
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	if (argc > 1 && !quick) {
		printf("usage: placement_bench [--quick]\n"
		       "Lookups per second for width %d among 6, 64 and 1000 nodes (median of %d\n"
		       "runs), for anchor rings and chained rings of several depths, and the\n"
		       "share of (object, position) pairs moved by one join or leave, rebuilt\n"
		       "from scratch (placement_build) and chained (placement_build_next).\n",
		       WIDTH, RUNS);
		return !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ? 0 : 64;
	}
	int lookups = quick ? 20000 : 200000;
	static struct placement_node nodes[1100];
	printf("Lookups, width %d (4:2), one zone per node, median of %d runs\n", WIDTH, RUNS);
	printf("%6s %6s %10s %12s\n", "nodes", "depth", "ns/lookup", "lookups/s");
	static const int sizes[] = {6, 64, 1000};
	static const int depths[] = {0, 1, 8, 32};
	for (int s = 0; s < 3; s++)
		for (int d = 0; d < 4; d++) {
			if (sizes[s] == 6 && depths[d] > 1)
				continue;
			int nr;
			struct placement_ring *r = chain_of(sizes[s], depths[d], nodes, &nr);
			double ns = lookup_ns(r, NULL, 0, lookups);
			printf("%6d %6d %10.0f %12.0f\n", sizes[s], depths[d], ns, 1e9 / ns);
			placement_free(r);
		}

	/* The slow path: objects that had a fragment on the node that left
	 * (one hole each, refilled by rendezvous over all members). */
	for (int s = 1; s < 3; s++) {
		int nr = sizes[s];
		for (int i = 0; i < nr; i++)
			make_node(&nodes[i], i);
		struct placement_ring *ra = NULL, *rb = NULL;
		must(placement_build(nodes, (size_t)nr, &ra));
		must(placement_build_next(ra, nodes + 1, (size_t)nr - 1, &rb));
		uint64_t *hit = calloc(2000, sizeof(*hit));
		int nh = 0;
		for (uint64_t k = 0; nh < 2000; k++) {
			int out[PLACEMENT_MAX_WIDTH];
			placement_locate(ra, oid_of(k), WIDTH, out);
			for (int i = 0; i < WIDTH; i++)
				if (out[i] == 0) {
					hit[nh++] = oid_of(k);
					break;
				}
		}
		printf("%6d %6s %10.0f %12.0f  (objects that lost a fragment)\n", nr, "1",
		       lookup_ns(rb, hit, nh, lookups / 10),
		       1e9 / lookup_ns(rb, hit, nh, lookups / 10));
		free(hit);
		placement_free(ra);
		placement_free(rb);
	}

	printf("\nMovement on one join or leave, width %d, equal weights, one zone per node:\n"
	       "share of (object, position) pairs whose node changed\n",
	       WIDTH);
	printf("%-14s %9s %9s %6s %9s %6s\n", "change", "capacity", "rebuilt", "ratio", "chained",
	       "ratio");
	static const int msizes[] = {8, 12, 16, 64};
	int oids = quick ? 20000 : 200000;
	for (int s = 0; s < 4; s++) {
		movement_row(msizes[s], 0, oids);
		movement_row(msizes[s], 1, oids);
	}
	return 0;
}
