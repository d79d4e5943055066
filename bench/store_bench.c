/* store_bench.c - local object store benchmark: small random and large sequential writes and reads,
 * synced and not. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "sheep/store/store.h"

static const char usage_text[] =
    "Usage: store_bench [--dir DIR] [--runs N] [-h]\n"
    "\n"
    "Measure sheep/store/store.c on the filesystem holding DIR (default /tmp), each\n"
    "figure the median of N runs (default 3):\n"
    "  4k write     random 4 KiB writes into 4 MiB fragments (journal + apply)\n"
    "  4k read      random 4 KiB reads (checksum verified)\n"
    "  4m create    whole 4 MiB fragments created (temp file + rename)\n"
    "  1m write     1 MiB writes over existing fragments\n"
    "  4m read      whole-fragment reads\n"
    "for sync (fdatasync before return) and nosync (sheep -n). Prints ops/s and\n"
    "MB/s (10^6 bytes/s).\n";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

enum op { OP_W4K, OP_R4K, OP_C4M, OP_W1M, OP_R4M, NR_OPS };
static const char *const op_names[] = {"4k write", "4k read", "4m create", "1m write", "4m read"};
static const uint32_t op_bytes[] = {4096, 4096, 4u << 20, 1u << 20, 4u << 20};

/* One run: ops per second for each operation. */
static int run_once(const char *base, bool nosync, double rate[NR_OPS])
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/sd-store-bench-XXXXXX", base);
	if (!mkdtemp(dir))
		return -errno;
	struct store *st;
	int r = store_open(dir, nosync, &st);
	if (r)
		return r;
	const uint32_t fs = 4u << 20;
	const int nfrag = 16;
	uint8_t *buf = malloc(fs);
	for (uint32_t i = 0; i < fs; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	uint64_t seed = 88172645463325252ull;
	int n[NR_OPS] = {nosync ? 4000 : 300, 4000, nfrag, nosync ? 64 : 32, nfrag * 2};
	double t;

	t = now_s();
	for (int i = 0; i < nfrag && !r; i++) {
		struct store_meta m = {.oid = 1000 + (uint64_t)i, .frag_size = fs, .version = 1};
		r = store_create(st, &m, buf, 0, fs);
	}
	rate[OP_C4M] = n[OP_C4M] / (now_s() - t);
	t = now_s();
	for (int i = 0; i < n[OP_W4K] && !r; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		uint32_t off = (uint32_t)(seed % (fs / 4096)) * 4096;
		r = store_write(st, 1000 + seed % nfrag, 0, STORE_ANY_VERSION, 2, buf + off, off,
				4096);
	}
	rate[OP_W4K] = n[OP_W4K] / (now_s() - t);
	t = now_s();
	for (int i = 0; i < n[OP_R4K] && !r; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		uint32_t off = (uint32_t)(seed % (fs / 4096)) * 4096;
		r = store_read(st, 1000 + seed % nfrag, 0, buf, off, 4096, NULL);
	}
	rate[OP_R4K] = n[OP_R4K] / (now_s() - t);
	t = now_s();
	for (int i = 0; i < n[OP_W1M] && !r; i++)
		r = store_write(st, 1000 + (uint64_t)(i % nfrag), 0, STORE_ANY_VERSION, 3, buf,
				(uint32_t)(i % 4) << 20, 1u << 20);
	rate[OP_W1M] = n[OP_W1M] / (now_s() - t);
	t = now_s();
	for (int i = 0; i < n[OP_R4M] && !r; i++)
		r = store_read(st, 1000 + (uint64_t)(i % nfrag), 0, buf, 0, fs, NULL);
	rate[OP_R4M] = n[OP_R4M] / (now_s() - t);

	store_close(st);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp";
	int runs = 3;
	static const struct option lo[] = {
	    {"dir", 1, 0, 'd'}, {"runs", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "d:r:h", lo, NULL)) != -1) {
		switch (o) {
		case 'd':
			dir = optarg;
			break;
		case 'r':
			runs = atoi(optarg);
			if (runs < 1 || runs > 99) {
				fprintf(stderr, "store_bench: --runs wants 1..99\n");
				return 64;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 64;
		}
	}
	printf("%-10s %8s %12s %10s %12s %10s\n", "op", "size", "sync ops/s", "sync MB/s",
	       "nosync ops/s", "nosync MB/s");
	double med[2][NR_OPS];
	for (int s = 0; s < 2; s++) {
		double all[NR_OPS][99];
		for (int i = 0; i < runs; i++) {
			double rate[NR_OPS];
			int r = run_once(dir, s == 1, rate);
			if (r) {
				fprintf(stderr, "store_bench: %s\n", strerror(-r));
				return 1;
			}
			for (int k = 0; k < NR_OPS; k++)
				all[k][i] = rate[k];
		}
		for (int k = 0; k < NR_OPS; k++) {
			qsort(all[k], (size_t)runs, sizeof(double), cmp_double);
			med[s][k] = all[k][runs / 2];
		}
	}
	for (int k = 0; k < NR_OPS; k++) {
		char sz[16];
		snprintf(sz, sizeof(sz), "%u KiB", op_bytes[k] / 1024);
		printf("%-10s %8s %12.0f %10.1f %12.0f %10.1f\n", op_names[k], sz, med[0][k],
		       med[0][k] * op_bytes[k] / 1e6, med[1][k], med[1][k] * op_bytes[k] / 1e6);
	}
	return 0;
}
