/* placement_bench.c - placement lookups per second and data movement on join and leave. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "placement/placement.h"

#define RUNS 7

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void make_nodes(struct placement_node *nodes, int nr)
{
	memset(nodes, 0, sizeof(*nodes) * (size_t)nr);
	for (int i = 0; i < nr; i++) {
		snprintf(nodes[i].id, sizeof(nodes[i].id), "10.%d.%d.%d:7000", i / 65536,
			 (i / 256) % 256, i % 256);
		nodes[i].zone = (uint32_t)i;
		nodes[i].weight = 100ull << 30;
	}
}

/* Median ns per 6-wide lookup among nr nodes. */
static double lookup_ns(int nr, int width, int lookups)
{
	struct placement_node *nodes = calloc((size_t)nr, sizeof(*nodes));
	make_nodes(nodes, nr);
	struct placement_ring *r;
	if (placement_build(nodes, (size_t)nr, &r)) {
		fprintf(stderr, "placement_build failed\n");
		exit(1);
	}
	double t[RUNS];
	volatile int sink = 0;
	for (int run = 0; run < RUNS; run++) {
		uint64_t t0 = sd_now_ns();
		for (int k = 0; k < lookups; k++) {
			int out[PLACEMENT_MAX_WIDTH];
			placement_locate(r, ((uint64_t)(k % 1000 + 1) << 32) | (uint64_t)k, width, out);
			sink += out[0];
		}
		t[run] = (double)(sd_now_ns() - t0) / lookups;
	}
	(void)sink;
	qsort(t, RUNS, sizeof(t[0]), cmp_double);
	placement_free(r);
	free(nodes);
	return t[RUNS / 2];
}

static double moved_fraction(const struct placement_node *a, int na, const struct placement_node *b,
			     int nb, int width, int oids)
{
	struct placement_ring *ra, *rb;
	placement_build(a, (size_t)na, &ra);
	placement_build(b, (size_t)nb, &rb);
	long changed = 0, total = 0;
	for (int k = 0; k < oids; k++) {
		uint64_t oid = ((uint64_t)(k % 977 + 1) << 32) | (uint64_t)(k / 977);
		int x[PLACEMENT_MAX_WIDTH], y[PLACEMENT_MAX_WIDTH];
		placement_locate_slots(ra, oid, width, x);
		placement_locate_slots(rb, oid, width, y);
		for (int i = 0; i < width; i++) {
			total++;
			const char *ia = x[i] >= 0 ? a[x[i]].id : "";
			const char *ib = y[i] >= 0 ? b[y[i]].id : "";
			changed += strcmp(ia, ib) != 0;
		}
	}
	placement_free(ra);
	placement_free(rb);
	return (double)changed / (double)total;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && !strcmp(argv[1], "--quick");
	if (argc > 1 && !quick) {
		printf("usage: placement_bench [--quick]\n"
		       "Lookups per second for width 6 among 6, 64 and 1000 nodes (median of %d runs)\n"
		       "and the share of (object, position) pairs moved by one join or leave.\n",
		       RUNS);
		return !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ? 0 : 64;
	}
	int lookups = quick ? 20000 : 200000;
	printf("Lookups, width 6 (4:2), median of %d runs\n", RUNS);
	printf("%8s %12s %14s\n", "nodes", "ns/lookup", "lookups/s");
	static const int sizes[] = {6, 64, 1000};
	for (int s = 0; s < 3; s++) {
		double ns = lookup_ns(sizes[s], 6, lookups);
		printf("%8d %12.0f %14.0f\n", sizes[s], ns, 1e9 / ns);
	}
	printf("\nMovement on one join or leave, width 6, equal weights, one zone per node\n");
	printf("%-16s %10s %10s %7s\n", "change", "moved", "capacity", "ratio");
	static const int msizes[] = {8, 12, 16, 64};
	int oids = quick ? 20000 : 200000;
	struct placement_node *nodes = calloc(65, sizeof(*nodes));
	make_nodes(nodes, 65);
	for (int s = 0; s < 4; s++) {
		int nr = msizes[s];
		char label[32];
		double m = moved_fraction(nodes, nr, nodes, nr - 1, 6, oids);
		snprintf(label, sizeof(label), "leave %d->%d", nr, nr - 1);
		printf("%-16s %10.4f %10.4f %7.2f\n", label, m, 1.0 / nr, m * nr);
		m = moved_fraction(nodes, nr, nodes, nr + 1, 6, oids);
		snprintf(label, sizeof(label), "join %d->%d", nr, nr + 1);
		printf("%-16s %10.4f %10.4f %7.2f\n", label, m, 1.0 / (nr + 1), m * (nr + 1));
	}
	free(nodes);
	return 0;
}
