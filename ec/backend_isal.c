/* backend_isal.c - the ISA-L codec backend: SIMD table-driven GF(2^8) dot products. */
#include <string.h>

#include <isa-l/erasure_code.h>

#include "ec/backend.h"

static int isal_init(void)
{
	return 0;
}

static uint8_t isal_mul(uint8_t a, uint8_t b)
{
	return gf_mul(a, b);
}

static int isal_invert(const uint8_t *m, uint8_t *inv, int n)
{
	uint8_t tmp[16 * 16];

	memcpy(tmp, m, (size_t)n * n); /* gf_invert_matrix() destroys its input */
	return gf_invert_matrix(tmp, inv, n) == 0 ? 0 : -1;
}

static size_t isal_tables_size(int k, int rows)
{
	return (size_t)32 * k * rows;
}

static void isal_prepare(int k, int rows, const uint8_t *coef, uint8_t *tbls)
{
	ec_init_tables(k, rows, (unsigned char *)coef, tbls);
}

static void isal_apply(int len, int k, int rows, const uint8_t *coef, const uint8_t *tbls,
		       uint8_t *const *src, uint8_t *const *out)
{
	(void)coef;
	ec_encode_data(len, k, rows, (unsigned char *)tbls, (unsigned char **)src,
		       (unsigned char **)out);
}

static void isal_update(int len, int k, int rows, int vec_i, const uint8_t *coef,
			const uint8_t *tbls, const uint8_t *src, uint8_t *const *out)
{
	(void)coef;
	ec_encode_data_update(len, k, rows, vec_i, (unsigned char *)tbls, (unsigned char *)src,
			      (unsigned char **)out);
}

const struct ec_backend_ops ec_isal_ops = {
    .name = "isal",
    .init = isal_init,
    .mul = isal_mul,
    .invert = isal_invert,
    .tables_size = isal_tables_size,
    .prepare = isal_prepare,
    .apply = isal_apply,
    .update = isal_update,
};
