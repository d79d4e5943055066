/* codec.c - Reed-Solomon codec: codec cache, argument checks, decode-table cache, backend dispatch.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "ec/backend.h"
#include "ec/ec.h"

/* Decoding tables for one erasure pattern: the d present fragments (as a
 * bitmask; columns in ascending index order) and the wanted fragments in the
 * caller's order. Reference counted: the cache holds one reference, each
 * decode in flight another, so an entry evicted while in use is freed by
 * its last user. */
struct ec_dec_entry {
	atomic_uint refs;
	uint32_t have_mask;
	int nr_want;
	uint8_t want[EC_MAX_WIDTH];
	uint64_t last_use;
	uint8_t *coef; /* nr_want x d */
	uint8_t *tbls; /* backend tables for coef */
};

struct ec_codec {
	uint8_t d, p;
	enum ec_backend be;
	const struct ec_backend_ops *ops;
	uint8_t gen[EC_MAX_WIDTH * EC_MAX_DATA]; /* (d+p) x d generator matrix */
	uint8_t *enc_tbls;			 /* tables for the p parity rows */
	pthread_mutex_t lock;			 /* guards clock and slots */
	uint64_t clock;
	struct ec_dec_entry *slots[EC_DECODE_CACHE];
};

/* The process-wide codec table (see ec_codec_get() in ec.h for why it is
 * global): one slot per (d, p, backend), filled once, freed by
 * ec_codec_cleanup(). Readers load a slot without the lock. */
#define EC_NR_D 4
static pthread_mutex_t ec_codecs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ec_codec *_Atomic ec_codecs[EC_NR_D][EC_MAX_PARITY][EC_NR_BACKENDS];

/* ISA-L's kernels take an int length; longer buffers go in pieces. */
#define EC_PIECE (1 << 30)

static const struct ec_backend_ops *ec_ops_of(enum ec_backend be)
{
	switch (be) {
	case EC_BACKEND_ISAL:
		return &ec_isal_ops;
#ifdef HAVE_JERASURE
	case EC_BACKEND_JERASURE:
		return &ec_jerasure_ops;
#endif
	case EC_BACKEND_GFNI:
		return ec_gfni_ops.init() == 0 ? &ec_gfni_ops : NULL;
	default:
		return NULL;
	}
}

const char *ec_backend_name(enum ec_backend be)
{
	switch (be) {
	case EC_BACKEND_ISAL:
		return "isal";
	case EC_BACKEND_JERASURE:
		return "jerasure";
	case EC_BACKEND_GFNI:
		return "gfni";
	default:
		return "?";
	}
}

int ec_backend_parse(const char *s, enum ec_backend *out)
{
	if (!s || !out)
		return -EINVAL;
	if (strcmp(s, "isal") == 0)
		*out = EC_BACKEND_ISAL;
	else if (strcmp(s, "jerasure") == 0)
		*out = EC_BACKEND_JERASURE;
	else if (strcmp(s, "gfni") == 0)
		*out = EC_BACKEND_GFNI;
	else
		return -EINVAL;
	return 0;
}

bool ec_backend_available(enum ec_backend be)
{
	return ec_ops_of(be) != NULL;
}

static int ec_d_slot(uint8_t d)
{
	switch (d) {
	case 2:
		return 0;
	case 4:
		return 1;
	case 8:
		return 2;
	case 16:
		return 3;
	default:
		return -1;
	}
}

static void ec_entry_put(struct ec_dec_entry *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1)
		free(e);
}

static void ec_codec_free(struct ec_codec *c)
{
	for (int i = 0; i < EC_DECODE_CACHE; i++)
		ec_entry_put(c->slots[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->enc_tbls);
	free(c);
}

static int ec_codec_new(uint8_t d, uint8_t p, enum ec_backend be, struct ec_codec **out)
{
	const struct ec_backend_ops *ops = ec_ops_of(be);
	struct ec_codec *c;
	size_t tsz;
	int rc;

	if (!ops)
		return -ENOTSUP;
	rc = ops->init();
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	c->p = p;
	c->be = be;
	c->ops = ops;
	/* The one generator matrix for both backends: identity on top, Cauchy
	 * rows 1/(i ^ j) below, as ISA-L builds it. */
	gf_gen_cauchy1_matrix(c->gen, d + p, d);
	tsz = ops->tables_size(d, p);
	if (tsz) {
		c->enc_tbls = malloc(tsz);
		if (!c->enc_tbls) {
			free(c);
			return -ENOMEM;
		}
	}
	ops->prepare(d, p, c->gen + d * d, c->enc_tbls);
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

int ec_codec_get(uint8_t d, uint8_t p, enum ec_backend be, const struct ec_codec **out)
{
	int ds = ec_d_slot(d);
	struct ec_codec *c;
	int rc = 0;

	if (!out || ds < 0 || p < 1 || p > EC_MAX_PARITY || (unsigned)be >= EC_NR_BACKENDS)
		return -EINVAL;
	if (!ec_ops_of(be))
		return -ENOTSUP;
	c = atomic_load_explicit(&ec_codecs[ds][p - 1][be], memory_order_acquire);
	if (!c) {
		pthread_mutex_lock(&ec_codecs_lock);
		c = atomic_load_explicit(&ec_codecs[ds][p - 1][be], memory_order_relaxed);
		if (!c) {
			rc = ec_codec_new(d, p, be, &c);
			if (rc == 0)
				atomic_store_explicit(&ec_codecs[ds][p - 1][be], c,
						      memory_order_release);
		}
		pthread_mutex_unlock(&ec_codecs_lock);
		if (rc < 0)
			return rc;
	}
	*out = c;
	return 0;
}

void ec_codec_cleanup(void)
{
	pthread_mutex_lock(&ec_codecs_lock);
	for (int i = 0; i < EC_NR_D; i++)
		for (int j = 0; j < EC_MAX_PARITY; j++)
			for (int b = 0; b < EC_NR_BACKENDS; b++) {
				struct ec_codec *c = atomic_exchange(&ec_codecs[i][j][b], NULL);
				if (c)
					ec_codec_free(c);
			}
	pthread_mutex_unlock(&ec_codecs_lock);
}

void ec_codec_info(const struct ec_codec *c, uint8_t *d, uint8_t *p, enum ec_backend *be)
{
	if (d)
		*d = c ? c->d : 0;
	if (p)
		*p = c ? c->p : 0;
	if (be)
		*be = c ? c->be : EC_BACKEND_ISAL;
}

static bool ec_ptrs_ok(const void *const *v, int n)
{
	if (!v)
		return false;
	for (int i = 0; i < n; i++)
		if (!v[i])
			return false;
	return true;
}

/* Run apply() over len bytes in pieces the kernels accept. */
static void ec_apply(const struct ec_codec *c, size_t len, int rows, const uint8_t *coef,
		     const uint8_t *tbls, uint8_t *const *src, uint8_t *const *out)
{
	uint8_t *s[EC_MAX_DATA], *o[EC_MAX_WIDTH];
	size_t done = 0;

	if (len <= EC_PIECE) {
		c->ops->apply((int)len, c->d, rows, coef, tbls, src, out);
		return;
	}
	while (done < len) {
		size_t n = len - done < EC_PIECE ? len - done : EC_PIECE;
		for (int i = 0; i < c->d; i++)
			s[i] = src[i] + done;
		for (int i = 0; i < rows; i++)
			o[i] = out[i] + done;
		c->ops->apply((int)n, c->d, rows, coef, tbls, s, o);
		done += n;
	}
}

int ec_encode(const struct ec_codec *c, size_t len, uint8_t *const *data, uint8_t *const *parity)
{
	if (!c || !ec_ptrs_ok((const void *const *)data, c->d) ||
	    !ec_ptrs_ok((const void *const *)parity, c->p))
		return -EINVAL;
	if (len == 0)
		return 0;
	ec_apply(c, len, c->p, c->gen + c->d * c->d, c->enc_tbls, data, parity);
	return 0;
}

int ec_update(const struct ec_codec *c, size_t len, int data_idx, const uint8_t *delta,
	      uint8_t *const *parity)
{
	uint8_t *o[EC_MAX_PARITY];
	size_t done = 0;

	if (!c || data_idx < 0 || data_idx >= c->d || !delta ||
	    !ec_ptrs_ok((const void *const *)parity, c->p))
		return -EINVAL;
	while (done < len) {
		size_t n = len - done < EC_PIECE ? len - done : EC_PIECE;
		for (int i = 0; i < c->p; i++)
			o[i] = parity[i] + done;
		c->ops->update((int)n, c->d, c->p, data_idx, c->gen + c->d * c->d, c->enc_tbls,
			       delta + done, o);
		done += n;
	}
	return 0;
}

/* Build the decoding rows for one pattern: with B the generator rows of the
 * present fragments (ascending), the data is B^-1 * present, so fragment w
 * is gen[w] * B^-1 * present. */
static struct ec_dec_entry *ec_entry_build(const struct ec_codec *c, uint32_t have_mask,
					   int nr_want, const int *want_idx)
{
	const struct ec_backend_ops *ops = c->ops;
	uint8_t b[EC_MAX_DATA * EC_MAX_DATA], inv[EC_MAX_DATA * EC_MAX_DATA];
	size_t csz = (size_t)nr_want * c->d, tsz = ops->tables_size(c->d, nr_want);
	struct ec_dec_entry *e;
	int d = c->d, r = 0;

	for (int i = 0; i < d + c->p; i++)
		if (have_mask & (1u << i))
			memcpy(b + d * r++, c->gen + d * i, (size_t)d);
	if (ops->invert(b, inv, d) != 0)
		return NULL; /* cannot happen: every square Cauchy submatrix is invertible */
	e = calloc(1, sizeof(*e) + csz + tsz);
	if (!e)
		return NULL;
	e->coef = (uint8_t *)(e + 1);
	e->tbls = tsz ? e->coef + csz : NULL;
	e->have_mask = have_mask;
	e->nr_want = nr_want;
	for (int w = 0; w < nr_want; w++) {
		const uint8_t *g = c->gen + d * want_idx[w];
		e->want[w] = (uint8_t)want_idx[w];
		for (int j = 0; j < d; j++) {
			uint8_t s = 0;
			for (int k = 0; k < d; k++)
				s ^= ops->mul(g[k], inv[k * d + j]);
			e->coef[w * d + j] = s;
		}
	}
	ops->prepare(d, nr_want, e->coef, e->tbls);
	atomic_init(&e->refs, 1);
	return e;
}

static bool ec_entry_match(const struct ec_dec_entry *e, uint32_t have_mask, int nr_want,
			   const int *want_idx)
{
	if (!e || e->have_mask != have_mask || e->nr_want != nr_want)
		return false;
	for (int w = 0; w < nr_want; w++)
		if (e->want[w] != want_idx[w])
			return false;
	return true;
}

/* Under c->lock: find the pattern, take a reference. */
static struct ec_dec_entry *ec_cache_find(struct ec_codec *c, uint32_t have_mask, int nr_want,
					  const int *want_idx)
{
	for (int i = 0; i < EC_DECODE_CACHE; i++) {
		struct ec_dec_entry *e = c->slots[i];
		if (ec_entry_match(e, have_mask, nr_want, want_idx)) {
			e->last_use = ++c->clock;
			atomic_fetch_add(&e->refs, 1);
			return e;
		}
	}
	return NULL;
}

/* The entry for a pattern, with a reference the caller drops with
 * ec_entry_put(). Tables are built outside the lock; if two threads race
 * on one pattern the first insert wins. */
static struct ec_dec_entry *ec_cache_get(struct ec_codec *c, uint32_t have_mask, int nr_want,
					 const int *want_idx)
{
	struct ec_dec_entry *e, *n;
	int victim = 0;

	pthread_mutex_lock(&c->lock);
	e = ec_cache_find(c, have_mask, nr_want, want_idx);
	pthread_mutex_unlock(&c->lock);
	if (e)
		return e;

	n = ec_entry_build(c, have_mask, nr_want, want_idx);
	if (!n)
		return NULL;

	pthread_mutex_lock(&c->lock);
	e = ec_cache_find(c, have_mask, nr_want, want_idx);
	if (!e) {
		for (int i = 0; i < EC_DECODE_CACHE; i++) {
			if (!c->slots[i]) {
				victim = i;
				break;
			}
			if (c->slots[i]->last_use < c->slots[victim]->last_use)
				victim = i;
		}
		ec_entry_put(c->slots[victim]);
		n->last_use = ++c->clock;
		atomic_fetch_add(&n->refs, 1); /* one for the cache, one for us */
		c->slots[victim] = n;
		e = n;
		n = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (n)
		ec_entry_put(n);
	return e;
}

int ec_decode(const struct ec_codec *c, size_t len, const int *have_idx, const uint8_t *const *have,
	      int nr_want, const int *want_idx, uint8_t *const *want)
{
	uint8_t *src[EC_MAX_DATA];
	struct ec_dec_entry *e;
	uint32_t mask = 0;
	int width;

	if (!c || !have_idx || !ec_ptrs_ok((const void *const *)have, c->d) || !want_idx)
		return -EINVAL;
	width = c->d + c->p;
	if (nr_want < 1 || nr_want > width || !ec_ptrs_ok((const void *const *)want, nr_want))
		return -EINVAL;
	for (int i = 0; i < c->d; i++) {
		if (have_idx[i] < 0 || have_idx[i] >= width || (mask & (1u << have_idx[i])))
			return -EINVAL;
		mask |= 1u << have_idx[i];
	}
	for (int w = 0; w < nr_want; w++)
		if (want_idx[w] < 0 || want_idx[w] >= width)
			return -EINVAL;
	/* Columns of the decoding matrix follow ascending fragment index. */
	for (int i = 0; i < c->d; i++)
		src[__builtin_popcount(mask & ((1u << have_idx[i]) - 1))] = (uint8_t *)have[i];
	if (len == 0)
		return 0;

	e = ec_cache_get((struct ec_codec *)c, mask, nr_want, want_idx);
	if (!e)
		return -ENOMEM;
	ec_apply(c, len, nr_want, e->coef, e->tbls, src, want);
	ec_entry_put(e);
	return 0;
}
