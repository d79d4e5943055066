/* backend_jerasure.c - the Jerasure/gf-complete codec backend (w=8, polynomial 0x11D). */
#include "config.h"

#ifdef HAVE_JERASURE
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <string.h>

#include <jerasure.h>
#include <jerasure/galois.h>

#include "ec/backend.h"

/* gf-complete's default w=8 field is GF(2^8) mod x^8+x^4+x^3+x^2+1 (0x11D),
 * the same as ISA-L. Its lazy initialisation is not thread-safe, so it is
 * done once here, before any codec exists. */
static pthread_once_t jer_once = PTHREAD_ONCE_INIT;
static int jer_init_rc;

static void jer_init_once(void)
{
	jer_init_rc = galois_init_default_field(8) == 0 ? 0 : -ENOMEM;
}

static int jer_init(void)
{
	pthread_once(&jer_once, jer_init_once);
	return jer_init_rc;
}

static uint8_t jer_mul(uint8_t a, uint8_t b)
{
	return (uint8_t)galois_single_multiply(a, b, 8);
}

static int jer_invert(const uint8_t *m, uint8_t *inv, int n)
{
	int tmp[16 * 16], out[16 * 16];

	for (int i = 0; i < n * n; i++)
		tmp[i] = m[i];
	if (jerasure_invert_matrix(tmp, out, n, 8) != 0)
		return -1;
	for (int i = 0; i < n * n; i++)
		inv[i] = (uint8_t)out[i];
	return 0;
}

static size_t jer_tables_size(int k, int rows)
{
	(void)k;
	(void)rows;
	return 0;
}

static void jer_prepare(int k, int rows, const uint8_t *coef, uint8_t *tbls)
{
	(void)k;
	(void)rows;
	(void)coef;
	(void)tbls;
}

#define JER_BOUNCE 4096

/* dst (+)= coef * src, working around two limits of gf-complete's region
 * multiply: it asserts (aborts) unless src and dst have the same alignment
 * mod 16, and when dst is not 16-aligned and the region ends before the
 * next 16-byte boundary it writes past the end (up to that boundary). So
 * the unaligned head of dst is done byte by byte, and a src of a different
 * alignment goes through a small aligned stack buffer. */
static void jer_mad(const uint8_t *src, int coef, int len, uint8_t *dst, int add)
{
	alignas(16) uint8_t bounce[JER_BOUNCE];
	int head = (int)((16 - ((uintptr_t)dst & 15)) & 15);

	if (head > len)
		head = len;
	for (int i = 0; i < head; i++) {
		uint8_t v = (uint8_t)galois_single_multiply(src[i], coef, 8);
		dst[i] = add ? dst[i] ^ v : v;
	}
	src += head;
	dst += head;
	len -= head;
	if (len == 0)
		return;
	if (((uintptr_t)src & 15) == 0) {
		galois_w08_region_multiply((char *)src, coef, len, (char *)dst, add);
		return;
	}
	while (len > 0) {
		int n = len < JER_BOUNCE ? len : JER_BOUNCE;

		memcpy(bounce, src, (size_t)n);
		galois_w08_region_multiply((char *)bounce, coef, n, (char *)dst, add);
		src += n;
		dst += n;
		len -= n;
	}
}

static void jer_apply(int len, int k, int rows, const uint8_t *coef, const uint8_t *tbls,
		      uint8_t *const *src, uint8_t *const *out)
{
	(void)tbls;
	for (int r = 0; r < rows; r++)
		for (int j = 0; j < k; j++)
			jer_mad(src[j], coef[r * k + j], len, out[r], j > 0);
}

static void jer_update(int len, int k, int rows, int vec_i, const uint8_t *coef,
		       const uint8_t *tbls, const uint8_t *src, uint8_t *const *out)
{
	(void)tbls;
	for (int r = 0; r < rows; r++)
		jer_mad(src, coef[r * k + vec_i], len, out[r], 1);
}

const struct ec_backend_ops ec_jerasure_ops = {
    .name = "jerasure",
    .init = jer_init,
    .mul = jer_mul,
    .invert = jer_invert,
    .tables_size = jer_tables_size,
    .prepare = jer_prepare,
    .apply = jer_apply,
    .update = jer_update,
};
#else
typedef int ec_no_jerasure;
#endif
