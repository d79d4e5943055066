/* backend.h - private to ec/: the operations a codec backend (ISA-L, Jerasure) provides. */
#ifndef SD_EC_BACKEND_H
#define SD_EC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/*
 * A backend applies a matrix of GF(2^8) coefficients (rows x k, row-major)
 * to k source buffers, giving rows outputs: out[r] = sum_j coef[r][j]*src[j].
 * Encoding uses the parity rows of the generator matrix, decoding the rows
 * of (generator x inverse of the present rows). "prepare" turns
 * coefficients into whatever the kernels want (ISA-L: 32 bytes of tables
 * per coefficient; Jerasure: nothing, tables_size 0). All lengths here fit
 * in an int: codec.c cuts longer buffers into pieces.
 */
struct ec_backend_ops {
	const char *name;
	/* Once per process before anything else; 0 or -errno. */
	int (*init)(void);
	uint8_t (*mul)(uint8_t a, uint8_t b);
	/* inv = m^-1 (n x n); m is not changed. 0, or -1 if singular. */
	int (*invert)(const uint8_t *m, uint8_t *inv, int n);
	size_t (*tables_size)(int k, int rows);
	void (*prepare)(int k, int rows, const uint8_t *coef, uint8_t *tbls);
	/* out[r] = sum_j coef[r][j] * src[j] */
	void (*apply)(int len, int k, int rows, const uint8_t *coef, const uint8_t *tbls,
		      uint8_t *const *src, uint8_t *const *out);
	/* out[r] ^= coef[r][vec_i] * src */
	void (*update)(int len, int k, int rows, int vec_i, const uint8_t *coef,
		       const uint8_t *tbls, const uint8_t *src, uint8_t *const *out);
};

extern const struct ec_backend_ops ec_isal_ops;
extern const struct ec_backend_ops ec_gfni_ops;
#ifdef HAVE_JERASURE
extern const struct ec_backend_ops ec_jerasure_ops;
#endif

#endif
