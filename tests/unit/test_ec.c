/* test_ec.c - unit tests of ec/: policies, layout, and the codec against a plain GF(2^8) reference.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <cmocka.h>

#include "ec/ec.h"

/* ---- a slow, obvious GF(2^8) reference (polynomial 0x11D) ------------ */

static uint8_t ref_mul_slow(uint8_t a, uint8_t b)
{
	uint8_t r = 0;

	while (b) {
		if (b & 1)
			r ^= a;
		a = (uint8_t)((a & 0x80) ? (a << 1) ^ 0x1d : a << 1);
		b >>= 1;
	}
	return r;
}

static uint8_t ref_mul_tab[256][256];

static void ref_init(void)
{
	for (int a = 0; a < 256; a++)
		for (int b = 0; b < 256; b++)
			ref_mul_tab[a][b] = ref_mul_slow((uint8_t)a, (uint8_t)b);
}

static uint8_t ref_mul(uint8_t a, uint8_t b)
{
	return ref_mul_tab[a][b];
}

static uint8_t ref_inv(uint8_t a)
{
	for (int b = 1; b < 256; b++)
		if (ref_mul(a, (uint8_t)b) == 1)
			return (uint8_t)b;
	return 0;
}

/* Row i of the generator: identity for i < d, Cauchy 1/(i ^ j) below. */
static uint8_t ref_gen(int d, int i, int j)
{
	if (i < d)
		return i == j;
	return ref_inv((uint8_t)(i ^ j));
}

/* Fragment idx computed from the data fragments. */
static void ref_fragment(int d, int idx, size_t len, uint8_t *const *data, uint8_t *out)
{
	for (size_t x = 0; x < len; x++) {
		uint8_t s = 0;
		for (int j = 0; j < d; j++)
			s ^= ref_mul(ref_gen(d, idx, j), data[j][x]);
		out[x] = s;
	}
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

/* d+p fragments of len bytes each, data random, parity encoded by the
 * reference, plus scratch outputs. */
struct frags {
	int d, p;
	size_t len;
	uint8_t *f[EC_MAX_WIDTH];   /* the truth */
	uint8_t *out[EC_MAX_WIDTH]; /* for the codec to write */
};

static void frags_init(struct frags *s, int d, int p, size_t len)
{
	s->d = d;
	s->p = p;
	s->len = len;
	for (int i = 0; i < d + p; i++) {
		s->f[i] = malloc(len + 64);
		s->out[i] = malloc(len + 64);
		assert_non_null(s->f[i]);
		assert_non_null(s->out[i]);
	}
	for (int i = 0; i < d; i++)
		fill_random(s->f[i], len);
	for (int i = d; i < d + p; i++)
		ref_fragment(d, i, len, s->f, s->f[i]);
}

static void frags_free(struct frags *s)
{
	for (int i = 0; i < s->d + s->p; i++) {
		free(s->f[i]);
		free(s->out[i]);
	}
}

static const uint8_t all_d[] = {2, 4, 8, 16};

/* Loop over the backends this build and CPU have. */
#define for_each_backend(b)                                                                        \
	for (int b = 0; b < EC_NR_BACKENDS; b++)                                                   \
		if (ec_backend_available((enum ec_backend)b))

/* Decode the lost set `lost` (bitmask) from d of the others (chosen by
 * ec_choose_sources, passed in shuffled order when `shuffle`) and compare
 * with the truth. */
static void check_decode(const struct ec_codec *c, struct frags *s, uint32_t lost, bool shuffle)
{
	int d = s->d, width = s->d + s->p;
	uint32_t present = ((1u << width) - 1) & ~lost;
	int have_idx[EC_MAX_DATA], want_idx[EC_MAX_WIDTH], nr_want = 0;
	const uint8_t *have[EC_MAX_DATA];

	assert_int_equal(ec_choose_sources((uint8_t)d, (uint8_t)s->p, present, have_idx), d);
	if (shuffle)
		for (int i = d - 1; i > 0; i--) {
			int j = (int)(rnd() % (uint32_t)(i + 1)), t = have_idx[i];
			have_idx[i] = have_idx[j];
			have_idx[j] = t;
		}
	for (int i = 0; i < d; i++)
		have[i] = s->f[have_idx[i]];
	for (int i = 0; i < width; i++)
		if (lost & (1u << i)) {
			want_idx[nr_want] = i;
			memset(s->out[nr_want], 0xa5, s->len);
			nr_want++;
		}
	assert_int_equal(ec_decode(c, s->len, have_idx, have, nr_want, want_idx, s->out), 0);
	for (int w = 0; w < nr_want; w++)
		assert_memory_equal(s->out[w], s->f[want_idx[w]], s->len);
}

/* ---- policy ----------------------------------------------------------- */

static void test_policy_parse_accepts_every_allowed_policy_and_round_trips(void **state)
{
	(void)state;
	char s[16], back[16];
	struct ec_policy pol, w;

	for (int n = 1; n <= 31; n++) {
		snprintf(s, sizeof(s), "%d", n);
		assert_int_equal(ec_policy_parse(s, &pol), 0);
		assert_int_equal(pol.d, 0);
		assert_int_equal(pol.p, 0);
		assert_int_equal(pol.copies, n);
		assert_false(ec_policy_is_ec(&pol));
		assert_int_equal(ec_policy_width(&pol), n);
		ec_policy_format(&pol, back, sizeof(back));
		assert_string_equal(back, s);
		assert_int_equal(ec_policy_byte(&pol), 0);
		assert_int_equal(ec_policy_from_wire(0, (uint8_t)n, &w), 0);
		assert_memory_equal(&w, &pol, sizeof(pol));
	}
	for (unsigned i = 0; i < sizeof(all_d); i++)
		for (int p = 1; p <= 15; p++) {
			int d = all_d[i];
			snprintf(s, sizeof(s), "%d:%d", d, p);
			assert_int_equal(ec_policy_parse(s, &pol), 0);
			assert_int_equal(pol.d, d);
			assert_int_equal(pol.p, p);
			assert_int_equal(pol.copies, d + p);
			assert_true(ec_policy_is_ec(&pol));
			assert_int_equal(ec_policy_width(&pol), d + p);
			ec_policy_format(&pol, back, sizeof(back));
			assert_string_equal(back, s);
			uint8_t b = ec_policy_byte(&pol);
			assert_int_equal(b, ((d / 2) << 4) | p);
			assert_int_equal(ec_policy_from_wire(b, (uint8_t)(d + p), &w), 0);
			assert_memory_equal(&w, &pol, sizeof(pol));
		}
}

static void test_policy_byte_matches_reference_examples(void **state)
{
	(void)state;
	struct ec_policy pol;

	assert_int_equal(ec_policy_parse("4:2", &pol), 0);
	assert_int_equal(ec_policy_byte(&pol), 0x22);
	assert_int_equal(ec_policy_parse("16:15", &pol), 0);
	assert_int_equal(ec_policy_byte(&pol), 0x8f);
	assert_int_equal(ec_policy_parse("4:5", &pol), 0); /* p may exceed d */
	assert_int_equal(pol.copies, 9);
	assert_int_equal(ec_policy_parse("2:1", &pol), 0);
	assert_int_equal(ec_policy_byte(&pol), 0x11);
}

static void test_policy_parse_rejects_bad_strings_and_leaves_output(void **state)
{
	(void)state;
	static const char *bad[] = {
	    "",	   "0",	   "32",  "100", "99999999999", "16:16", "3:2",	    "6:1",  "32:1",
	    "4:0", "4:16", "0:2", "4:",	 ":2",		"4:2:1", " 4:2",    "4:2 ", "-1",
	    "+3",  "4:-2", "4,2", "a",	 "3x",		"4:2a",	 "2:99999", "1:1",  ":",
	};
	struct ec_policy pol = {.d = 7, .p = 7, .copies = 7};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ec_policy_parse(bad[i], &pol), -EINVAL);
		assert_int_equal(pol.d, 7);
		assert_int_equal(pol.copies, 7);
	}
	assert_int_equal(ec_policy_parse(NULL, &pol), -EINVAL);
	assert_int_equal(ec_policy_parse("3", NULL), -EINVAL);
}

static void test_policy_usage_is_the_reference_text(void **state)
{
	(void)state;
	assert_string_equal(ec_policy_usage(), "To create replicated vdi, set -c x\n"
					       "  x(1 to 31)   - number of replicated copies\n"
					       "To create erasure coded vdi, set -c x:y\n"
					       "  x(2,4,8,16)  - number of data strips\n"
					       "  y(1 to 15)   - number of parity strips\n");
}

static void test_policy_from_wire_rejects_inconsistent_pairs(void **state)
{
	(void)state;
	struct ec_policy pol = {.d = 9, .p = 9, .copies = 9};

	assert_int_equal(ec_policy_from_wire(0x22, 5, &pol), -EINVAL);	/* 4:2 needs 6 */
	assert_int_equal(ec_policy_from_wire(0x30, 7, &pol), -EINVAL);	/* d = 6 */
	assert_int_equal(ec_policy_from_wire(0x20, 4, &pol), -EINVAL);	/* p = 0 */
	assert_int_equal(ec_policy_from_wire(0x90, 19, &pol), -EINVAL); /* d = 18 */
	assert_int_equal(ec_policy_from_wire(0x05, 5, &pol), -EINVAL);	/* d = 0, p = 5 */
	assert_int_equal(ec_policy_from_wire(0, 0, &pol), -EINVAL);
	assert_int_equal(ec_policy_from_wire(0, 32, &pol), -EINVAL);
	assert_int_equal(pol.d, 9);
	assert_int_equal(ec_policy_from_wire(0x22, 6, NULL), -EINVAL);
	assert_int_equal(ec_policy_from_wire(0x8f, 31, &pol), 0);
	assert_int_equal(pol.d, 16);
	assert_int_equal(pol.p, 15);
}

static void test_policy_validate_and_format_reject_invalid_structs(void **state)
{
	(void)state;
	char buf[8];
	struct ec_policy bad[] = {
	    {0, 0, 0}, {0, 0, 32}, {0, 1, 1}, {4, 2, 5}, {3, 1, 4}, {16, 16, 32}, {2, 0, 2},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ec_policy_validate(&bad[i]), -EINVAL);
		ec_policy_format(&bad[i], buf, sizeof(buf));
		assert_string_equal(buf, "?");
		assert_int_equal(ec_policy_byte(&bad[i]), 0);
		assert_int_equal(ec_frag_size(&bad[i], 1u << 22), 0);
	}
	struct ec_policy ok = {16, 15, 31};
	ec_policy_format(&ok, buf, 3); /* truncated, still terminated */
	assert_string_equal(buf, "16");
}

/* ---- layout ----------------------------------------------------------- */

static void test_frag_size_is_object_over_d(void **state)
{
	(void)state;
	struct ec_policy rep = {0, 0, 3}, pol = {4, 2, 6};

	for (int shift = 20; shift <= 31; shift++) {
		uint32_t s = 1u << shift;
		assert_true(ec_obj_size_valid(s));
		assert_int_equal(ec_frag_size(&rep, s), s);
		for (unsigned i = 0; i < sizeof(all_d); i++) {
			pol.d = all_d[i];
			pol.copies = (uint8_t)(pol.d + pol.p);
			assert_int_equal(ec_frag_size(&pol, s), s / pol.d);
		}
	}
	/* sizes that do not match the layout */
	assert_false(ec_obj_size_valid(0));
	assert_false(ec_obj_size_valid(1u << 19));
	assert_false(ec_obj_size_valid((1u << 22) + 4096));
	assert_int_equal(ec_frag_size(&pol, (1u << 22) + 4096), 0);
	assert_int_equal(ec_frag_size(&pol, 1u << 19), 0);
}

/* Brute force: object byte x lives in fragment x/F at x%F. */
static void check_map(const struct ec_policy *pol, uint32_t S, uint32_t off, uint32_t len)
{
	struct ec_extent ext[EC_MAX_DATA];
	uint32_t F = ec_frag_size(pol, S), pos = off;
	int n = ec_map_range(pol, S, off, len, ext, EC_MAX_DATA);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(ext[i].obj_off, pos);
		assert_true(ext[i].len > 0);
		if (pol->d) {
			assert_int_equal(ext[i].idx, pos / F);
			assert_int_equal(ext[i].frag_off, pos % F);
			assert_true(ext[i].frag_off + ext[i].len <= F);
		} else {
			assert_int_equal(ext[i].idx, 0);
			assert_int_equal(ext[i].frag_off, pos);
		}
		if (i > 0)
			assert_int_equal(ext[i].idx, ext[i - 1].idx + 1);
		pos += ext[i].len;
	}
	assert_int_equal(pos, off + len);
	if (pol->d && len)
		assert_int_equal(n, (off + len - 1) / F - off / F + 1);
}

static void test_map_range_matches_brute_force_layout(void **state)
{
	(void)state;
	struct ec_policy rep = {0, 0, 3};

	for (unsigned i = 0; i < sizeof(all_d); i++) {
		struct ec_policy pol = {all_d[i], 2, (uint8_t)(all_d[i] + 2)};
		for (int shift = 20; shift <= 31; shift += 11) {
			uint32_t S = 1u << shift, F = S / pol.d;
			check_map(&pol, S, 0, S);
			check_map(&pol, S, 0, 0);
			check_map(&pol, S, F - 1, 2);
			check_map(&pol, S, F, F);
			check_map(&pol, S, S - 1, 1);
			check_map(&rep, S, 12345, S - 12345);
			for (int k = 0; k < 200; k++) {
				uint32_t off = rnd() % S, len = rnd() % (S - off + 1);
				check_map(&pol, S, off, len);
			}
		}
	}
}

static void test_map_range_rejects_bad_ranges_and_leaves_output(void **state)
{
	(void)state;
	struct ec_policy pol = {4, 2, 6}, bad = {3, 2, 5};
	struct ec_extent ext[4], zero[4];
	uint32_t S = 1u << 22, F = S / 4;

	memset(ext, 0, sizeof(ext));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(ec_map_range(&pol, S, S, 1, ext, 4), -EINVAL);
	assert_int_equal(ec_map_range(&pol, S, S - 1, 2, ext, 4), -EINVAL);
	assert_int_equal(ec_map_range(&pol, S, 0xffffffffu, 2, ext, 4), -EINVAL); /* wraps */
	assert_int_equal(ec_map_range(&pol, S + 1, 0, 1, ext, 4), -EINVAL);
	assert_int_equal(ec_map_range(&bad, S, 0, 1, ext, 4), -EINVAL);
	assert_int_equal(ec_map_range(&pol, S, F - 1, F + 2, ext, 2), -EINVAL); /* needs 3 */
	assert_int_equal(ec_map_range(&pol, S, 0, 1, NULL, 4), -EINVAL);
	assert_memory_equal(ext, zero, sizeof(ext));
	assert_int_equal(ec_map_range(&pol, S, F - 1, F + 2, ext, 3), 3);
	assert_int_equal(ec_map_range(&pol, S, S, 0, ext, 4), 0);
}

static void test_frag_ptrs_point_into_contiguous_object(void **state)
{
	(void)state;
	struct ec_policy pol = {8, 3, 11}, rep = {0, 0, 2};
	uint8_t *data[EC_MAX_DATA];
	static uint8_t obj[1];
	uint32_t S = 1u << 20;

	assert_int_equal(ec_frag_ptrs(&pol, obj, S, data), 8);
	for (int i = 0; i < 8; i++)
		assert_ptr_equal(data[i], obj + (size_t)i * (S / 8));
	assert_int_equal(ec_frag_ptrs(&rep, obj, S, data), -EINVAL);
	assert_int_equal(ec_frag_ptrs(&pol, obj, S - 8, data), -EINVAL);
}

static void test_choose_sources_prefers_data_and_refuses_too_few(void **state)
{
	(void)state;
	int idx[EC_MAX_DATA];

	assert_int_equal(ec_choose_sources(4, 2, 0x3f, idx), 4);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[3], 3);
	assert_int_equal(ec_choose_sources(4, 2, 0x3f & ~0x5u, idx), 4);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 3);
	assert_int_equal(idx[2], 4);
	assert_int_equal(idx[3], 5);
	assert_int_equal(ec_choose_sources(4, 2, 0x3f & ~0x7u, idx), -ENODATA); /* 3 lost */
	assert_int_equal(ec_choose_sources(4, 2, 0xffc0u | 0x7, idx),
			 -ENODATA); /* bits past d+p ignored */
	assert_int_equal(ec_choose_sources(3, 2, 0x1f, idx), -EINVAL);
	assert_int_equal(ec_choose_sources(4, 0, 0x1f, idx), -EINVAL);
}

/* ---- codec ------------------------------------------------------------ */

static void test_codec_get_caches_per_policy_and_backend(void **state)
{
	(void)state;
	const struct ec_codec *a, *b, *c;
	uint8_t d, p;
	enum ec_backend be;

	assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_ISAL, &a), 0);
	assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_ISAL, &b), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(ec_codec_get(4, 3, EC_BACKEND_ISAL, &c), 0);
	assert_ptr_not_equal(a, c);
	ec_codec_info(c, &d, &p, &be);
	assert_int_equal(d, 4);
	assert_int_equal(p, 3);
	assert_int_equal(be, EC_BACKEND_ISAL);
	if (ec_backend_available(EC_BACKEND_JERASURE)) {
		assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_JERASURE, &c), 0);
		assert_ptr_not_equal(a, c);
	} else {
		assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_JERASURE, &c), -ENOTSUP);
	}
	assert_int_equal(ec_codec_get(3, 2, EC_BACKEND_ISAL, &c), -EINVAL);
	assert_int_equal(ec_codec_get(4, 0, EC_BACKEND_ISAL, &c), -EINVAL);
	assert_int_equal(ec_codec_get(16, 16, EC_BACKEND_ISAL, &c), -EINVAL);
	assert_int_equal(ec_codec_get(4, 2, (enum ec_backend)7, &c), -EINVAL);
	if (!ec_backend_available(EC_BACKEND_GFNI))
		assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_GFNI, &c), -ENOTSUP);
	assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_ISAL, NULL), -EINVAL);
	ec_codec_cleanup();
	assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_ISAL, &a), 0); /* usable again */
	ec_codec_cleanup();
}

static void test_backend_names_parse(void **state)
{
	(void)state;
	enum ec_backend be;

	assert_int_equal(ec_backend_parse("isal", &be), 0);
	assert_int_equal(be, EC_BACKEND_ISAL);
	assert_int_equal(ec_backend_parse("jerasure", &be), 0);
	assert_int_equal(be, EC_BACKEND_JERASURE);
	assert_int_equal(ec_backend_parse("gfni", &be), 0);
	assert_int_equal(be, EC_BACKEND_GFNI);
	assert_int_equal(ec_backend_parse("ISAL", &be), -EINVAL);
	assert_int_equal(ec_backend_parse("", &be), -EINVAL);
	assert_string_equal(ec_backend_name(EC_BACKEND_JERASURE), "jerasure");
	assert_true(ec_backend_available(EC_BACKEND_ISAL));
}

/* Every allowed d:p, every backend: parity equals the reference; decoding
 * the p lowest data fragments (or all of them when p > d) from the rest
 * gives them back. Odd length to hit the kernels' tails. */
static void test_round_trip_every_policy_matches_reference(void **state)
{
	(void)state;
	for (unsigned i = 0; i < sizeof(all_d); i++)
		for (int p = 1; p <= EC_MAX_PARITY; p++) {
			struct frags s;
			int d = all_d[i];
			frags_init(&s, d, p, 1000 + 3 * (size_t)p);
			for_each_backend(b)
			{
				const struct ec_codec *c;
				assert_int_equal(
				    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c),
				    0);
				for (int j = 0; j < p; j++)
					memset(s.out[j], 0x5a, s.len);
				assert_int_equal(ec_encode(c, s.len, s.f, s.out), 0);
				for (int j = 0; j < p; j++)
					assert_memory_equal(s.out[j], s.f[d + j], s.len);
				uint32_t lost = (1u << (p < d ? p : d)) - 1;
				check_decode(c, &s, lost, false);
				check_decode(c, &s, ((1u << p) - 1) << d,
					     false); /* all parity lost */
			}
			frags_free(&s);
		}
	ec_codec_cleanup();
}

/* For d+p <= 8, every set of 1..p lost fragments. */
static void test_decode_every_erasure_pattern_up_to_p_losses(void **state)
{
	(void)state;
	for (int d = 2; d <= 4; d += 2)
		for (int p = 1; d + p <= 8; p++) {
			struct frags s;
			int width = d + p, patterns = 0;
			frags_init(&s, d, p, 333);
			for_each_backend(b)
			{
				const struct ec_codec *c;
				assert_int_equal(
				    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c),
				    0);
				for (uint32_t lost = 1; lost < (1u << width); lost++) {
					if (__builtin_popcount(lost) > p)
						continue;
					check_decode(c, &s, lost, (lost & 1) != 0);
					patterns++;
				}
			}
			assert_true(patterns > 0);
			frags_free(&s);
		}
	ec_codec_cleanup();
}

/* For d+p > 8, random sets of 1..p lost fragments. */
static void test_decode_random_erasure_patterns_wide_policies(void **state)
{
	(void)state;
	for (unsigned i = 0; i < sizeof(all_d); i++)
		for (int p = 1; p <= EC_MAX_PARITY; p++) {
			int d = all_d[i], width = d + p;
			struct frags s;
			if (width <= 8)
				continue;
			frags_init(&s, d, p, 129);
			for_each_backend(b)
			{
				const struct ec_codec *c;
				assert_int_equal(
				    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c),
				    0);
				for (int k = 0; k < 12; k++) {
					int nlost = 1 + (int)(rnd() % (uint32_t)p);
					uint32_t lost = 0;
					while (__builtin_popcount(lost) < nlost)
						lost |= 1u << (rnd() % (uint32_t)width);
					check_decode(c, &s, lost, true);
				}
			}
			frags_free(&s);
		}
	ec_codec_cleanup();
}

/* Decode [off, off+n) of every fragment from the same range of d others,
 * including ranges whose offsets differ in alignment between buffers. */
static void test_subrange_decode_rebuilds_only_that_range(void **state)
{
	(void)state;
	static const struct {
		int d, p;
	} pol[] = {{4, 2}, {8, 3}, {16, 4}, {2, 5}};
	static const size_t ranges[][2] = {{0, 1},    {1, 63},	   {17, 4096},
					   {4095, 1}, {100, 3000}, {0, 8192}};

	for (unsigned i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		struct frags s;
		int d = pol[i].d, p = pol[i].p;
		frags_init(&s, d, p, 8192);
		for_each_backend(b)
		{
			const struct ec_codec *c;
			assert_int_equal(
			    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c), 0);
			for (unsigned r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
				size_t off = ranges[r][0], n = ranges[r][1];
				int have_idx[EC_MAX_DATA], want_idx[EC_MAX_PARITY], nr_want = 0;
				const uint8_t *have[EC_MAX_DATA];
				uint8_t *want[EC_MAX_PARITY];
				/* lose data 0 and the last parity (or only data 0 if p == 1) */
				for (int k = 0; k < p && k < 2; k++)
					want_idx[nr_want++] = k == 0 ? 0 : d + p - 1;
				uint32_t lost = 0;
				for (int k = 0; k < nr_want; k++)
					lost |= 1u << want_idx[k];
				assert_int_equal(ec_choose_sources((uint8_t)d, (uint8_t)p,
								   ((1u << (d + p)) - 1) & ~lost,
								   have_idx),
						 d);
				for (int k = 0; k < d; k++)
					have[k] = s.f[have_idx[k]] + off;
				for (int k = 0; k < nr_want; k++) {
					/* misalign outputs relative to the inputs */
					want[k] = s.out[k] + (r & 1);
					memset(s.out[k], 0x77, s.len + 64);
				}
				assert_int_equal(
				    ec_decode(c, n, have_idx, have, nr_want, want_idx, want), 0);
				for (int k = 0; k < nr_want; k++) {
					assert_memory_equal(want[k], s.f[want_idx[k]] + off, n);
					/* nothing written past the range */
					assert_int_equal(want[k][n], 0x77);
				}
			}
		}
		frags_free(&s);
	}
	ec_codec_cleanup();
}

/* Fragments of 256 KiB and more take the backends' streaming paths
 * (aligned outputs) as well as the plain ones (misaligned). */
static void test_large_fragments_match_reference(void **state)
{
	(void)state;
	size_t len = (256u << 10) + 100;
	int d = 4, p = 3;
	uint8_t *f[7], *out[3], *mis[3];

	for (int i = 0; i < d + p; i++)
		f[i] = aligned_alloc(64, (len + 127) & ~(size_t)63);
	for (int i = 0; i < p; i++) {
		out[i] = aligned_alloc(64, (len + 127) & ~(size_t)63);
		mis[i] = out[i] + 1;
	}
	for (int i = 0; i < d; i++)
		fill_random(f[i], len);
	for (int i = d; i < d + p; i++)
		ref_fragment(d, i, len, f, f[i]);
	for_each_backend(b)
	{
		const struct ec_codec *c;
		int have_idx[4] = {1, 3, 4, 6}, want_idx[3] = {0, 2, 5};
		const uint8_t *have[4] = {f[1], f[3], f[4], f[6]};

		assert_int_equal(ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c), 0);
		assert_int_equal(ec_encode(c, len, f, out), 0);
		for (int j = 0; j < p; j++)
			assert_memory_equal(out[j], f[d + j], len);
		assert_int_equal(ec_encode(c, len, f, mis), 0);
		for (int j = 0; j < p; j++)
			assert_memory_equal(mis[j], f[d + j], len);
		assert_int_equal(ec_decode(c, len, have_idx, have, 3, want_idx, out), 0);
		for (int j = 0; j < 3; j++)
			assert_memory_equal(out[j], f[want_idx[j]], len);
	}
	for (int i = 0; i < d + p; i++)
		free(f[i]);
	for (int i = 0; i < p; i++)
		free(out[i]);
	ec_codec_cleanup();
}

/* Rewrite a range of one data fragment; updating parity by delta gives
 * exactly the parity of a full re-encode. */
static void test_delta_update_equals_full_reencode(void **state)
{
	(void)state;
	static const struct {
		int d, p;
	} pol[] = {{2, 1}, {4, 2}, {8, 3}, {8, 4}, {16, 4}, {16, 15}, {4, 5}};
	static const size_t ranges[][2] = {{0, 2048}, {5, 1},	   {33, 63},
					   {64, 64},  {1000, 999}, {1, 2046}};

	for (unsigned i = 0; i < sizeof(pol) / sizeof(pol[0]); i++) {
		int d = pol[i].d, p = pol[i].p;
		struct frags s;
		frags_init(&s, d, p, 2048);
		uint8_t *delta = malloc(s.len), *fresh[EC_MAX_PARITY];
		for (int j = 0; j < p; j++)
			fresh[j] = malloc(s.len);
		for_each_backend(b)
		{
			const struct ec_codec *c;
			assert_int_equal(
			    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &c), 0);
			for (unsigned r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
				size_t off = ranges[r][0], n = ranges[r][1];
				int idx = (int)(rnd() % (uint32_t)d);
				uint8_t *par[EC_MAX_PARITY];
				for (size_t x = 0; x < n; x++) {
					uint8_t nv = (uint8_t)rnd();
					delta[x] = s.f[idx][off + x] ^ nv;
					s.f[idx][off + x] = nv;
				}
				for (int j = 0; j < p; j++)
					par[j] = s.f[d + j] + off;
				assert_int_equal(ec_update(c, n, idx, delta, par), 0);
				assert_int_equal(ec_encode(c, s.len, s.f, fresh), 0);
				for (int j = 0; j < p; j++) {
					assert_memory_equal(s.f[d + j], fresh[j], s.len);
					/* and against the reference, over the whole fragment */
					ref_fragment(d, d + j, s.len, s.f, s.out[0]);
					assert_memory_equal(s.out[0], fresh[j], s.len);
				}
			}
		}
		for (int j = 0; j < p; j++)
			free(fresh[j]);
		free(delta);
		frags_free(&s);
	}
	ec_codec_cleanup();
}

/* Every backend gives ISA-L's bytes, and fragments written with one
 * decode with any other. */
static void test_all_backends_are_byte_identical(void **state)
{
	(void)state;
	if (!ec_backend_available(EC_BACKEND_JERASURE) && !ec_backend_available(EC_BACKEND_GFNI))
		skip();
	for (unsigned i = 0; i < sizeof(all_d); i++)
		for (int p = 1; p <= EC_MAX_PARITY; p += 2) {
			int d = all_d[i];
			const struct ec_codec *ci, *cj;
			struct frags s;
			uint8_t *pi[EC_MAX_PARITY], *pj[EC_MAX_PARITY];
			frags_init(&s, d, p, 4096 + 5);
			for (int j = 0; j < p; j++) {
				pi[j] = malloc(s.len);
				pj[j] = malloc(s.len);
			}
			assert_int_equal(ec_codec_get((uint8_t)d, (uint8_t)p, EC_BACKEND_ISAL, &ci),
					 0);
			assert_int_equal(ec_encode(ci, s.len, s.f, pi), 0);
			/* isal's parity into the fragment set */
			for (int j = 0; j < p; j++)
				memcpy(s.f[d + j], pi[j], s.len);
			for_each_backend(b)
			{
				if (b == EC_BACKEND_ISAL)
					continue;
				assert_int_equal(
				    ec_codec_get((uint8_t)d, (uint8_t)p, (enum ec_backend)b, &cj),
				    0);
				assert_int_equal(ec_encode(cj, s.len, s.f, pj), 0);
				for (int j = 0; j < p; j++)
					assert_memory_equal(pi[j], pj[j], s.len);
				uint32_t lost = (1u << (p < d ? p : d)) - 1;
				check_decode(cj, &s, lost, true);
			}
			for (int j = 0; j < p; j++) {
				free(pi[j]);
				free(pj[j]);
			}
			frags_free(&s);
		}
	ec_codec_cleanup();
}

/* Bad calls return an error and write nothing. */
static void test_bad_codec_calls_return_errors_and_write_nothing(void **state)
{
	(void)state;
	const struct ec_codec *c;
	struct frags s;
	uint8_t *const nullp[EC_MAX_WIDTH] = {0};
	uint8_t saved[64];

	frags_init(&s, 4, 2, 64);
	assert_int_equal(ec_codec_get(4, 2, EC_BACKEND_ISAL, &c), 0);
	memset(s.out[0], 0x3c, 64);
	memcpy(saved, s.out[0], 64);
	const uint8_t *have[4] = {s.f[0], s.f[1], s.f[2], s.f[3]};
	int dup[4] = {0, 1, 2, 2};   /* only 3 distinct: more than p lost */
	int range[4] = {0, 1, 2, 6}; /* index past d+p */
	int neg[4] = {-1, 1, 2, 3};
	int ok[4] = {1, 2, 3, 4};
	int want0[1] = {0}, want_bad[1] = {6}, want_neg[1] = {-2};

	assert_int_equal(ec_decode(c, 64, dup, have, 1, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, range, have, 1, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, neg, have, 1, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, have, 0, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, have, 7, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, have, 1, want_bad, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, have, 1, want_neg, s.out), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, have, 1, want0, nullp), -EINVAL);
	assert_int_equal(ec_decode(c, 64, ok, NULL, 1, want0, s.out), -EINVAL);
	assert_int_equal(ec_decode(NULL, 64, ok, have, 1, want0, s.out), -EINVAL);
	assert_memory_equal(s.out[0], saved, 64);

	assert_int_equal(ec_encode(c, 64, nullp, s.out), -EINVAL);
	assert_int_equal(ec_encode(c, 64, s.f, nullp), -EINVAL);
	assert_int_equal(ec_encode(NULL, 64, s.f, s.out), -EINVAL);
	assert_memory_equal(s.out[0], saved, 64);

	assert_int_equal(ec_update(c, 64, 4, s.f[0], s.out), -EINVAL); /* parity index */
	assert_int_equal(ec_update(c, 64, -1, s.f[0], s.out), -EINVAL);
	assert_int_equal(ec_update(c, 64, 0, NULL, s.out), -EINVAL);
	assert_int_equal(ec_update(c, 64, 0, s.f[0], nullp), -EINVAL);
	assert_memory_equal(s.out[0], saved, 64);

	/* zero length is a valid no-op */
	assert_int_equal(ec_encode(c, 0, s.f, s.out), 0);
	assert_int_equal(ec_decode(c, 0, ok, have, 1, want0, s.out), 0);
	assert_int_equal(ec_update(c, 0, 0, s.f[0], s.out), 0);
	assert_memory_equal(s.out[0], saved, 64);

	assert_string_equal(ec_strerror(-ENODATA),
			    "fewer than d fragments available (more than p lost)");
	assert_string_equal(ec_strerror(-ENOTSUP), "erasure-code backend not built in");
	assert_string_equal(ec_strerror(-12345), "unknown error");
	frags_free(&s);
	ec_codec_cleanup();
}

/* Many threads, more erasure patterns than the cache holds: every decode is
 * still right (evicted entries in use stay alive until released). */
struct worker {
	const struct ec_codec *c;
	struct frags *s;
	int seed, failures;
};

static void *decode_worker(void *arg)
{
	struct worker *w = arg;
	struct frags *s = w->s;
	int d = s->d, width = s->d + s->p;
	uint8_t *out = malloc(s->len);
	uint32_t x = (uint32_t)w->seed * 2654435761u + 1;

	for (int k = 0; k < 400; k++) {
		int have_idx[EC_MAX_DATA], want;
		const uint8_t *have[EC_MAX_DATA];
		uint32_t lost, present;
		x = x * 1103515245u + 12345u;
		want = (int)((x >> 8) % (uint32_t)width);
		x = x * 1103515245u + 12345u;
		lost = (1u << want) | (1u << ((x >> 8) % (uint32_t)width));
		x = x * 1103515245u + 12345u;
		lost |= 1u << ((x >> 8) % (uint32_t)width);
		present = ((1u << width) - 1) & ~lost;
		if (ec_choose_sources((uint8_t)d, (uint8_t)s->p, present, have_idx) != d) {
			w->failures++;
			continue;
		}
		for (int i = 0; i < d; i++)
			have[i] = s->f[have_idx[i]];
		if (ec_decode(w->c, s->len, have_idx, have, 1, &want, &out) != 0 ||
		    memcmp(out, s->f[want], s->len) != 0)
			w->failures++;
	}
	free(out);
	return NULL;
}

static void test_decode_cache_bounded_and_thread_safe(void **state)
{
	(void)state;
	enum { NT = 4 };
	pthread_t t[NT];
	struct worker w[NT];
	struct frags s;

	frags_init(&s, 8, 4, 256);
	for_each_backend(b)
	{
		const struct ec_codec *c;
		assert_int_equal(ec_codec_get(8, 4, (enum ec_backend)b, &c), 0);
		for (int i = 0; i < NT; i++) {
			w[i] = (struct worker){.c = c, .s = &s, .seed = i + 10 * b};
			assert_int_equal(pthread_create(&t[i], NULL, decode_worker, &w[i]), 0);
		}
		for (int i = 0; i < NT; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].failures, 0);
		}
	}
	frags_free(&s);
	ec_codec_cleanup();
}

int main(void)
{
	ref_init();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_policy_parse_accepts_every_allowed_policy_and_round_trips),
	    cmocka_unit_test(test_policy_byte_matches_reference_examples),
	    cmocka_unit_test(test_policy_parse_rejects_bad_strings_and_leaves_output),
	    cmocka_unit_test(test_policy_usage_is_the_reference_text),
	    cmocka_unit_test(test_policy_from_wire_rejects_inconsistent_pairs),
	    cmocka_unit_test(test_policy_validate_and_format_reject_invalid_structs),
	    cmocka_unit_test(test_frag_size_is_object_over_d),
	    cmocka_unit_test(test_map_range_matches_brute_force_layout),
	    cmocka_unit_test(test_map_range_rejects_bad_ranges_and_leaves_output),
	    cmocka_unit_test(test_frag_ptrs_point_into_contiguous_object),
	    cmocka_unit_test(test_choose_sources_prefers_data_and_refuses_too_few),
	    cmocka_unit_test(test_codec_get_caches_per_policy_and_backend),
	    cmocka_unit_test(test_backend_names_parse),
	    cmocka_unit_test(test_round_trip_every_policy_matches_reference),
	    cmocka_unit_test(test_decode_every_erasure_pattern_up_to_p_losses),
	    cmocka_unit_test(test_decode_random_erasure_patterns_wide_policies),
	    cmocka_unit_test(test_subrange_decode_rebuilds_only_that_range),
	    cmocka_unit_test(test_large_fragments_match_reference),
	    cmocka_unit_test(test_delta_update_equals_full_reencode),
	    cmocka_unit_test(test_all_backends_are_byte_identical),
	    cmocka_unit_test(test_bad_codec_calls_return_errors_and_write_nothing),
	    cmocka_unit_test(test_decode_cache_bounded_and_thread_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
