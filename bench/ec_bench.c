/* ec_bench.c - codec benchmark: encode, decode, parity-delta update per policy and backend, hot and
 * cold, vs memcpy. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <isa-l/erasure_code.h>

#include "ec/ec.h"

static const char usage_text[] =
    "Usage: ec_bench [--quick] [--csv] [--runs N] [--cold-mib N] [--policy LIST]\n"
    "                [--backend isal|jerasure|all] [--obj-kib N] [-h]\n"
    "\n"
    "Measure the ec/ codec on 4 MiB objects (--obj-kib) and print a table in GB/s (10^9 bytes\n"
    "per second), each figure the median of N runs, with its ratio to memcpy of\n"
    "the same bytes in the same working set.\n"
    "\n"
    "Working sets: hot = one object, over and over (cache-resident); cold =\n"
    "objects spread over --cold-mib MiB of data (default 256), so every run\n"
    "reads from memory.\n"
    "\n"
    "Operations, per policy and backend:\n"
    "  encode         d data fragments -> p parity (4 MiB of object per op)\n"
    "  encode direct  ISA-L's ec_encode_data() called directly on the same\n"
    "                 buffers with tables built here: the library's ceiling\n"
    "  decode 1       rebuild data fragment 0 from d others (4 MiB per op)\n"
    "  decode p       rebuild data fragments 0..p-1 from d others\n"
    "  update 4K/64K  parity-delta update of a 4 KiB / 64 KiB range of one\n"
    "                 data fragment (bytes of the range per op)\n"
    "  memcpy         memcpy of the same number of bytes: the ceiling\n"
    "\n"
    "Options:\n"
    "  --quick        smoke run: 3 runs, 32 MiB cold set, shorter samples\n"
    "  --csv          one CSV line per measurement instead of the table\n"
    "  --runs N       runs per figure (default 5)\n"
    "  --cold-mib N   cold working set in MiB of object data (default 256)\n"
    "  --policy LIST  comma-separated d:p (default 2:1,4:2,8:3,8:4,16:4,16:15)\n"
    "  --backend B    isal, jerasure or all (default all built)\n"
    "  --obj-kib N    object size in KiB (default 4096); e.g. 256 shows the\n"
    "                 kernels with the hot object in L2\n"
    "  -h, --help     this text\n";

enum op {
	OP_ENCODE_DIRECT,
	OP_ENCODE,
	OP_DECODE_1,
	OP_DECODE_P,
	OP_UPDATE_4K,
	OP_UPDATE_64K,
	OP_MEMCPY_OBJ,
	OP_MEMCPY_64K,
	OP_MEMCPY_4K,
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
    "encode direct", "encode",	   "decode 1",	 "decode p",  "update 4K",
    "update 64K",    "memcpy obj", "memcpy 64K", "memcpy 4K",
};

struct pos {
	uint32_t obj, idx, off;
};

struct bench {
	int runs;
	uint32_t obj_size;
	size_t cold_bytes;
	double min_sample_s;
	bool csv;
	/* current policy */
	int d, p;
	uint32_t F;
	size_t stride; /* bytes per object: (d+p)*F */
	int nobj;
	uint8_t *arena;	   /* nobj objects: d data fragments then p parity */
	uint8_t *copy_dst; /* memcpy target, as big as the arena's data */
	uint8_t *delta;	   /* 64 KiB of delta */
	uint8_t *direct_tbls;
	const struct ec_codec *codec;
	struct pos *pos; /* cold update positions */
	int npos;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t *frag(struct bench *b, int obj, int i)
{
	return b->arena + (size_t)obj * b->stride + (size_t)i * b->F;
}

static size_t op_bytes(const struct bench *b, enum op op)
{
	switch (op) {
	case OP_UPDATE_4K:
	case OP_MEMCPY_4K:
		return 4096;
	case OP_UPDATE_64K:
	case OP_MEMCPY_64K:
		return 65536;
	default:
		return b->obj_size;
	}
}

static bool op_is_ranged(enum op op)
{
	return op == OP_UPDATE_4K || op == OP_UPDATE_64K || op == OP_MEMCPY_4K ||
	       op == OP_MEMCPY_64K;
}

/* One operation on object obj; k numbers the call within a sample (used to
 * move update ranges around). Returns 0 or -errno. */
static int do_op(struct bench *b, enum op op, bool cold, int obj, int k)
{
	uint8_t *data[EC_MAX_DATA], *parity[EC_MAX_PARITY], *want[EC_MAX_PARITY];
	const uint8_t *have[EC_MAX_DATA];
	int have_idx[EC_MAX_DATA], want_idx[EC_MAX_PARITY];
	int d = b->d, p = b->p, lost;
	size_t len = op_bytes(b, op);
	struct pos ps;

	for (int i = 0; i < d; i++)
		data[i] = frag(b, obj, i);
	for (int i = 0; i < p; i++)
		parity[i] = frag(b, obj, d + i);

	if (op_is_ranged(op)) {
		if (cold) {
			ps = b->pos[k % b->npos];
		} else {
			ps.obj = 0;
			ps.idx = (uint32_t)(k % d);
			ps.off = (uint32_t)(((size_t)k * len) % b->F);
		}
		ps.off -= ps.off % (uint32_t)len; /* whole ranges inside the fragment */
		if (op == OP_MEMCPY_4K || op == OP_MEMCPY_64K) {
			memcpy(frag(b, (int)ps.obj, (int)ps.idx) + ps.off, b->delta, len);
			return 0;
		}
		for (int i = 0; i < p; i++)
			parity[i] = frag(b, (int)ps.obj, d + i) + ps.off;
		return ec_update(b->codec, len, (int)ps.idx, b->delta, parity);
	}

	switch (op) {
	case OP_ENCODE_DIRECT:
		ec_encode_data((int)b->F, d, p, b->direct_tbls, data, parity);
		return 0;
	case OP_ENCODE:
		return ec_encode(b->codec, b->F, data, parity);
	case OP_DECODE_1:
	case OP_DECODE_P:
		lost = op == OP_DECODE_1 ? 1 : p;
		if (lost > d)
			lost = d;
		/* data fragments 0..lost-1 are gone: read the rest, write them back in place */
		for (int i = 0; i < d; i++) {
			have_idx[i] = lost + i;
			have[i] = frag(b, obj, lost + i);
		}
		for (int i = 0; i < lost; i++) {
			want_idx[i] = i;
			want[i] = frag(b, obj, i);
		}
		return ec_decode(b->codec, b->F, have_idx, have, lost, want_idx, want);
	case OP_MEMCPY_OBJ:
		memcpy(cold ? b->copy_dst + (size_t)obj * b->obj_size : b->copy_dst, data[0],
		       b->obj_size);
		return 0;
	default:
		return -EINVAL;
	}
}

/* Ops per sample: cold walks the whole set once; hot repeats one object
 * until a sample lasts min_sample_s. */
static long sample_iters(struct bench *b, enum op op, bool cold)
{
	bool ranged = op_is_ranged(op);
	long n = 1;

	if (cold)
		return ranged ? b->npos : b->nobj;
	for (;;) {
		double t = now_s();
		for (long i = 0; i < n; i++)
			do_op(b, op, false, 0, (int)i);
		t = now_s() - t;
		if (t >= b->min_sample_s / 4 || n > (1L << 24))
			return (long)(n * (b->min_sample_s / (t > 1e-9 ? t : 1e-9))) + 1;
		n *= 4;
	}
}

static int cmp_double(const void *a, const void *c)
{
	double x = *(const double *)a, y = *(const double *)c;
	return x < y ? -1 : x > y;
}

static double sample(struct bench *b, enum op op, bool cold, long iters)
{
	double t = now_s();

	for (long i = 0; i < iters; i++)
		if (do_op(b, op, cold, cold ? (int)(i % b->nobj) : 0, (int)i) < 0)
			return -1;
	t = now_s() - t;
	return (double)op_bytes(b, op) * (double)iters / t / 1e9;
}

/* Median GB/s over b->runs samples of each of ops[0..n-1] (-1 on error).
 * The ops' samples alternate, so that when two are compared (library vs
 * direct ISA-L) the box's noise hits both alike; one untimed sample each
 * first warms caches and page tables. */
static void measure_n(struct bench *b, const enum op *ops, int n, bool cold, double *out)
{
	double gbps[4][64];
	long iters[4];
	int runs = b->runs < 64 ? b->runs : 64;

	for (int k = 0; k < n; k++) {
		out[k] = -1;
		if (op_is_ranged(ops[k]) && op_bytes(b, ops[k]) > b->F)
			return; /* range larger than a fragment (tiny --obj-kib) */
		iters[k] = sample_iters(b, ops[k], cold);
		if (cold && sample(b, ops[k], cold, iters[k]) < 0)
			return;
	}
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < n; k++) {
			gbps[k][r] = sample(b, ops[k], cold, iters[k]);
			if (gbps[k][r] < 0)
				return;
		}
	for (int k = 0; k < n; k++) {
		qsort(gbps[k], (size_t)runs, sizeof(gbps[k][0]), cmp_double);
		out[k] = gbps[k][runs / 2];
	}
}

static double measure(struct bench *b, enum op op, bool cold)
{
	double v;

	measure_n(b, &op, 1, cold, &v);
	return v;
}

static void *big_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, n, MADV_HUGEPAGE);
	return p;
}

static int setup_policy(struct bench *b, int d, int p)
{
	uint8_t gen[EC_MAX_WIDTH * EC_MAX_DATA];

	b->d = d;
	b->p = p;
	b->F = b->obj_size / (uint32_t)d;
	b->stride = (size_t)(d + p) * b->F;
	b->nobj = (int)(b->cold_bytes / b->obj_size);
	if (b->nobj < 2)
		b->nobj = 2;
	b->arena = big_alloc(b->stride * (size_t)b->nobj);
	if (!b->arena)
		return -ENOMEM;
	for (size_t i = 0; i < b->stride * (size_t)b->nobj; i += 8)
		*(uint64_t *)(b->arena + i) = rnd();
	b->direct_tbls = malloc((size_t)32 * d * p);
	if (!b->direct_tbls)
		return -ENOMEM;
	gf_gen_cauchy1_matrix(gen, d + p, d);
	ec_init_tables(d, p, gen + d * d, b->direct_tbls);
	for (int i = 0; i < b->npos; i++) {
		b->pos[i].obj = (uint32_t)(rnd() % (uint64_t)b->nobj);
		b->pos[i].idx = (uint32_t)(rnd() % (uint64_t)d);
		b->pos[i].off = (uint32_t)(rnd() % b->F);
	}
	return 0;
}

static void teardown_policy(struct bench *b)
{
	munmap(b->arena, b->stride * (size_t)b->nobj);
	b->arena = NULL;
	free(b->direct_tbls);
	b->direct_tbls = NULL;
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c) {
			c += 2;
			c[strcspn(c, "\n")] = '\0';
			snprintf(buf, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

static void fmt_cell(char *buf, size_t len, double v, double ref)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2f (%.2f)", v, ref > 0 ? v / ref : 0.0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, 'q'},
	    {"csv", no_argument, NULL, 'c'},
	    {"runs", required_argument, NULL, 'r'},
	    {"cold-mib", required_argument, NULL, 'm'},
	    {"policy", required_argument, NULL, 'P'},
	    {"backend", required_argument, NULL, 'b'},
	    {"obj-kib", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {.runs = 5,
			  .obj_size = 4u << 20,
			  .cold_bytes = 256u << 20,
			  .min_sample_s = 0.02,
			  .npos = 4096};
	const char *policies = "2:1,4:2,8:3,8:4,16:4,16:15";
	bool use_be[EC_NR_BACKENDS] = {true, true, true};
	bool quick = false;
	char cpu[128];
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'c':
			b.csv = true;
			break;
		case 'r':
			b.runs = atoi(optarg);
			if (b.runs < 1 || b.runs > 64) {
				fprintf(stderr, "ec_bench: --runs takes 1..64\n");
				return 64;
			}
			break;
		case 'm': {
			long m = atol(optarg);
			if (m < 8 || m > 65536) {
				fprintf(stderr, "ec_bench: --cold-mib takes 8..65536\n");
				return 64;
			}
			b.cold_bytes = (size_t)m << 20;
			break;
		}
		case 'o': {
			long k = atol(optarg);
			if (k < 64 || k > (1 << 20) || (k & (k - 1))) {
				fprintf(stderr,
					"ec_bench: --obj-kib takes a power of two, 64..1048576\n");
				return 64;
			}
			b.obj_size = (uint32_t)k << 10;
			break;
		}
		case 'P':
			policies = optarg;
			break;
		case 'b': {
			enum ec_backend be;
			if (strcmp(optarg, "all") == 0)
				break;
			if (ec_backend_parse(optarg, &be) < 0) {
				fprintf(stderr, "ec_bench: unknown backend %s\n", optarg);
				return 64;
			}
			for (int i = 0; i < EC_NR_BACKENDS; i++)
				use_be[i] = i == (int)be;
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 64;
		}
	}
	if (quick) {
		b.runs = b.runs < 3 ? b.runs : 3;
		b.cold_bytes = 32u << 20;
		b.min_sample_s = 0.003;
	}
	for (int i = 0; i < EC_NR_BACKENDS; i++)
		if (use_be[i] && !ec_backend_available((enum ec_backend)i)) {
			fprintf(stderr, "ec_bench: backend %s not built, skipped\n",
				ec_backend_name((enum ec_backend)i));
			use_be[i] = false;
		}

	b.pos = calloc((size_t)b.npos, sizeof(*b.pos));
	b.delta = malloc(65536);
	b.copy_dst = big_alloc(b.cold_bytes + b.obj_size);
	if (!b.pos || !b.delta || !b.copy_dst) {
		fprintf(stderr, "ec_bench: out of memory\n");
		return 2;
	}
	for (int i = 0; i < 65536; i++)
		b.delta[i] = (uint8_t)rnd();
	memset(b.copy_dst, 1, b.cold_bytes + b.obj_size);

	cpu_model(cpu, sizeof(cpu));
	if (b.csv) {
		printf("cpu,policy,set,op,backend,bytes_per_op,gbps,memcpy_gbps,ratio\n");
	} else {
		printf("ec_bench: %s; %u KiB objects; cold set %zu MiB; median of %d runs\n", cpu,
		       b.obj_size >> 10, b.cold_bytes >> 20, b.runs);
		printf("GB/s (ratio to memcpy of the same bytes, same working set)\n\n");
		printf("| policy | op |");
		for (int s = 0; s < 2; s++)
			for (int be = 0; be < EC_NR_BACKENDS; be++)
				if (use_be[be])
					printf(" %s %s |", s ? "cold" : "hot",
					       ec_backend_name((enum ec_backend)be));
		printf("\n|---|---|");
		for (int i = 0; i < 2 * EC_NR_BACKENDS; i++)
			if (use_be[i % EC_NR_BACKENDS])
				printf("---|");
		printf("\n");
	}

	char *list = strdup(policies), *save = NULL;
	double direct_ratio[2][16];
	char direct_pol[16][8];
	int npol = 0;
	for (char *tok = strtok_r(list, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		struct ec_policy pol;
		double res[NR_OPS][2][EC_NR_BACKENDS];
		char name[8];

		if (ec_policy_parse(tok, &pol) < 0 || !ec_policy_is_ec(&pol)) {
			fprintf(stderr, "ec_bench: bad policy %s\n%s", tok, ec_policy_usage());
			rc = 64;
			break;
		}
		ec_policy_format(&pol, name, sizeof(name));
		rc = setup_policy(&b, pol.d, pol.p);
		if (rc < 0) {
			fprintf(stderr, "ec_bench: %s\n", ec_strerror(rc));
			rc = 2;
			break;
		}
		for (int op = 0; op < NR_OPS; op++)
			for (int s = 0; s < 2; s++)
				for (int be = 0; be < EC_NR_BACKENDS; be++)
					res[op][s][be] = -1;
		for (int s = 0; s < 2; s++) {
			bool cold = s == 1;
			for (int op = OP_MEMCPY_OBJ; op <= OP_MEMCPY_4K; op++) {
				double v = measure(&b, (enum op)op, cold);
				for (int be = 0; be < EC_NR_BACKENDS; be++)
					res[op][s][be] = v;
			}
			for (int be = 0; be < EC_NR_BACKENDS; be++) {
				if (!use_be[be])
					continue;
				if (ec_codec_get(pol.d, pol.p, (enum ec_backend)be, &b.codec) < 0) {
					rc = 2;
					break;
				}
				if (be == EC_BACKEND_ISAL) {
					enum op pair[2] = {OP_ENCODE_DIRECT, OP_ENCODE};
					double v[2];
					measure_n(&b, pair, 2, cold, v);
					res[OP_ENCODE_DIRECT][s][be] = v[0];
					res[OP_ENCODE][s][be] = v[1];
				} else {
					res[OP_ENCODE][s][be] = measure(&b, OP_ENCODE, cold);
				}
				for (int op = OP_DECODE_1; op <= OP_UPDATE_64K; op++)
					res[op][s][be] = measure(&b, (enum op)op, cold);
			}
		}
		for (int op = 0; op < NR_OPS; op++) {
			char cells[2][EC_NR_BACKENDS][32];
			double ref;
			bool any = false;
			for (int s = 0; s < 2; s++)
				for (int be = 0; be < EC_NR_BACKENDS; be++) {
					ref = op >= OP_MEMCPY_OBJ ? res[op][s][be]
					      : op_bytes(&b, (enum op)op) == 4096
						  ? res[OP_MEMCPY_4K][s][be]
					      : op_bytes(&b, (enum op)op) == 65536
						  ? res[OP_MEMCPY_64K][s][be]
						  : res[OP_MEMCPY_OBJ][s][be];
					fmt_cell(cells[s][be], sizeof(cells[s][be]), res[op][s][be],
						 ref);
					if (res[op][s][be] >= 0) {
						any = true;
						if (b.csv && (op < OP_MEMCPY_OBJ || be == 0))
							printf("\"%s\",%s,%s,%s,%s,%zu,%.3f,%.3f,%."
							       "3f\n",
							       cpu, name, s ? "cold" : "hot",
							       op_names[op],
							       op >= OP_MEMCPY_OBJ ? "memcpy"
							       : op == OP_ENCODE_DIRECT
								   ? "isal-direct"
								   : ec_backend_name(
									 (enum ec_backend)be),
							       op_bytes(&b, (enum op)op),
							       res[op][s][be], ref,
							       res[op][s][be] / ref);
					}
				}
			if (!b.csv && any) {
				printf("| %s | %s |", name, op_names[op]);
				for (int s = 0; s < 2; s++) {
					bool first = true;
					for (int be = 0; be < EC_NR_BACKENDS; be++) {
						if (!use_be[be])
							continue;
						/* memcpy has one figure per working set */
						printf(" %s |", op < OP_MEMCPY_OBJ || first
								    ? cells[s][be]
								    : "");
						first = false;
					}
				}
				printf("\n");
			}
		}
		fflush(stdout);
		if (npol < 16 && res[OP_ENCODE_DIRECT][0][0] > 0) {
			snprintf(direct_pol[npol], sizeof(direct_pol[npol]), "%s", name);
			direct_ratio[0][npol] = res[OP_ENCODE][0][0] / res[OP_ENCODE_DIRECT][0][0];
			direct_ratio[1][npol] = res[OP_ENCODE][1][0] / res[OP_ENCODE_DIRECT][1][0];
			npol++;
		}
		teardown_policy(&b);
	}
	if (!b.csv && npol) {
		printf("\nlibrary isal encode / direct ec_encode_data (hot, cold):");
		for (int i = 0; i < npol; i++)
			printf(" %s %.2f %.2f;", direct_pol[i], direct_ratio[0][i],
			       direct_ratio[1][i]);
		printf("\n");
	}
	free(list);
	free(b.pos);
	free(b.delta);
	munmap(b.copy_dst, b.cold_bytes + b.obj_size);
	ec_codec_cleanup();
	return rc;
}
