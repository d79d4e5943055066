/* backend_gfni.c - codec backend on AVX-512 + GFNI: one affine instruction per coefficient and 64
 * bytes. */
#include <errno.h>
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "ec/backend.h"

/*
 * Multiplying a byte by a constant c in GF(2^8) is linear over GF(2), so it
 * is an 8x8 bit matrix, which vgf2p8affineqb applies to 64 bytes at once
 * (whatever the field polynomial: the matrix is built here for 0x11D). The
 * "tables" of this backend are one such 64-bit matrix per coefficient. It
 * gives the same bytes as ISA-L for the same coefficients (the unit tests
 * check it) and is used only where the CPU has AVX-512BW and GFNI.
 *
 * Outputs are computed in groups of up to 8 so each source is read once
 * per group. Large outputs that are 64-byte aligned are written with
 * non-temporal stores: a freshly encoded fragment goes to the network or
 * disk next, not back through this core's cache, and skipping the
 * read-for-ownership saves a third of the memory traffic of an encode.
 */

#define GFNI_NT_MIN (256u << 10) /* streaming stores from this output size up */
#define GFNI_TARGET __attribute__((target("avx512f,avx512bw,gfni,bmi2")))

static int gfni_init(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("gfni")
		   ? 0
		   : -ENOTSUP;
}

static uint8_t gfni_mul(uint8_t a, uint8_t b)
{
	return gf_mul(a, b);
}

static int gfni_invert(const uint8_t *m, uint8_t *inv, int n)
{
	uint8_t tmp[16 * 16];

	memcpy(tmp, m, (size_t)n * n);
	return gf_invert_matrix(tmp, inv, n) == 0 ? 0 : -1;
}

static size_t gfni_tables_size(int k, int rows)
{
	return (size_t)8 * k * rows;
}

/* Row i of the matrix (bit j set when bit i of c*x^j is set) goes in byte
 * 7-i of the qword, as vgf2p8affineqb wants. */
static uint64_t gfni_matrix(uint8_t c)
{
	uint64_t m = 0;

	for (int i = 0; i < 8; i++) {
		uint8_t row = 0;
		for (int j = 0; j < 8; j++)
			if ((gf_mul(c, (uint8_t)(1u << j)) >> i) & 1)
				row |= (uint8_t)(1u << j);
		m |= (uint64_t)row << (8 * (7 - i));
	}
	return m;
}

static void gfni_prepare(int k, int rows, const uint8_t *coef, uint8_t *tbls)
{
	for (int i = 0; i < k * rows; i++) {
		uint64_t m = gfni_matrix(coef[i]);
		memcpy(tbls + 8 * i, &m, 8);
	}
}

/* Tables may sit at any byte offset (decode tables follow their
 * coefficients), so matrices are loaded with memcpy. */
static inline __attribute__((always_inline)) uint64_t gfni_ld(const uint8_t *tbls, int i)
{
	uint64_t v;

	memcpy(&v, tbls + 8 * (size_t)i, 8);
	return v;
}

#define GFNI_MUL(s, t, i)                                                                          \
	_mm512_gf2p8affine_epi64_epi8((s), _mm512_set1_epi64((long long)gfni_ld((t), (i))), 0)

/* out[0..NR-1] = sum_j mat[r*k+j] * src[j], NR a compile-time constant so
 * the accumulators stay in registers. */
static inline __attribute__((always_inline)) GFNI_TARGET void
gfni_dot_group(const int NR, int len, int k, const uint8_t *mat, uint8_t *const *src,
	       uint8_t *const *out, bool nt)
{
	__m512i acc[8];
	int x = 0;

	for (; x + 64 <= len; x += 64) {
		for (int r = 0; r < NR; r++)
			acc[r] = _mm512_setzero_si512();
		for (int j = 0; j < k; j++) {
			__m512i s = _mm512_loadu_si512(src[j] + x);
			for (int r = 0; r < NR; r++)
				acc[r] = _mm512_xor_si512(acc[r], GFNI_MUL(s, mat, r * k + j));
		}
		if (nt)
			for (int r = 0; r < NR; r++)
				_mm512_stream_si512((void *)(out[r] + x), acc[r]);
		else
			for (int r = 0; r < NR; r++)
				_mm512_storeu_si512(out[r] + x, acc[r]);
	}
	if (x < len) {
		__mmask64 m = _bzhi_u64(~0ULL, (unsigned)(len - x));
		for (int r = 0; r < NR; r++)
			acc[r] = _mm512_setzero_si512();
		for (int j = 0; j < k; j++) {
			__m512i s = _mm512_maskz_loadu_epi8(m, src[j] + x);
			for (int r = 0; r < NR; r++)
				acc[r] = _mm512_xor_si512(acc[r], GFNI_MUL(s, mat, r * k + j));
		}
		for (int r = 0; r < NR; r++)
			_mm512_mask_storeu_epi8(out[r] + x, m, acc[r]);
	}
}

GFNI_TARGET static void gfni_apply(int len, int k, int rows, const uint8_t *coef,
				   const uint8_t *tbls, uint8_t *const *src, uint8_t *const *out)
{
	const uint8_t *mat = tbls;
	bool nt = (unsigned)len >= GFNI_NT_MIN;

	(void)coef;
	for (int r = 0; r < rows; r++)
		if ((uintptr_t)out[r] & 63)
			nt = false;
	while (rows > 0) {
		int n = rows < 8 ? rows : 8;
		switch (n) {
		case 8:
			gfni_dot_group(8, len, k, mat, src, out, nt);
			break;
		case 7:
			gfni_dot_group(7, len, k, mat, src, out, nt);
			break;
		case 6:
			gfni_dot_group(6, len, k, mat, src, out, nt);
			break;
		case 5:
			gfni_dot_group(5, len, k, mat, src, out, nt);
			break;
		case 4:
			gfni_dot_group(4, len, k, mat, src, out, nt);
			break;
		case 3:
			gfni_dot_group(3, len, k, mat, src, out, nt);
			break;
		case 2:
			gfni_dot_group(2, len, k, mat, src, out, nt);
			break;
		default:
			gfni_dot_group(1, len, k, mat, src, out, nt);
			break;
		}
		rows -= n;
		mat += 8 * n * k;
		out += n;
	}
	if (nt)
		_mm_sfence(); /* streaming stores visible before we return */
}

GFNI_TARGET static void gfni_update(int len, int k, int rows, int vec_i, const uint8_t *coef,
				    const uint8_t *tbls, const uint8_t *src, uint8_t *const *out)
{
	const uint8_t *mat = tbls;
	int x = 0;

	(void)coef;
	for (; x + 64 <= len; x += 64) {
		__m512i s = _mm512_loadu_si512(src + x);
		for (int r = 0; r < rows; r++) {
			__m512i o = _mm512_loadu_si512(out[r] + x);
			o = _mm512_xor_si512(o, GFNI_MUL(s, mat, r * k + vec_i));
			_mm512_storeu_si512(out[r] + x, o);
		}
	}
	if (x < len) {
		__mmask64 m = _bzhi_u64(~0ULL, (unsigned)(len - x));
		__m512i s = _mm512_maskz_loadu_epi8(m, src + x);
		for (int r = 0; r < rows; r++) {
			__m512i o = _mm512_maskz_loadu_epi8(m, out[r] + x);
			o = _mm512_xor_si512(o, GFNI_MUL(s, mat, r * k + vec_i));
			_mm512_mask_storeu_epi8(out[r] + x, m, o);
		}
	}
}

const struct ec_backend_ops ec_gfni_ops = {
    .name = "gfni",
    .init = gfni_init,
    .mul = gfni_mul,
    .invert = gfni_invert,
    .tables_size = gfni_tables_size,
    .prepare = gfni_prepare,
    .apply = gfni_apply,
    .update = gfni_update,
};
