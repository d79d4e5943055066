/* ec.h - redundancy policies, fragment layout and the Reed-Solomon codec (ISA-L, Jerasure). */
#ifndef SD_EC_H
#define SD_EC_H

/*
 * Three parts, each usable alone:
 *
 *  1. Policy: "3" (N full copies, 1..31) or "d:p" (d data + p parity
 *     fragments, d in {2,4,8,16}, p in 1..15; 4:5 is valid, 16:16 is not),
 *     and the Sheepdog 1.0 wire form (copy_policy byte + nr_copies).
 *
 *  2. Layout: an object of S bytes (S = 2^20..2^31) under d:p is cut into d
 *     contiguous data fragments of F = S/d bytes (fragment i holds object
 *     bytes [i*F, (i+1)*F)) plus p parity fragments of F bytes. A byte range
 *     of the object maps to in-fragment ranges with ec_map_range().
 *
 *  3. Codec: systematic Reed-Solomon over GF(2^8), polynomial 0x11D, with the
 *     Cauchy generator matrix of ISA-L's gf_gen_cauchy1_matrix(): rows 0..d-1
 *     are the identity, row d+j (parity j) is [1/((d+j) ^ i)]_i. Every square
 *     submatrix of a Cauchy matrix is invertible, so any d of the d+p
 *     fragments rebuild the others, for every allowed d:p.
 *     Backends: ISA-L (default, SIMD kernels) and Jerasure/gf-complete (w=8,
 *     same matrix, same polynomial): they produce byte-identical fragments,
 *     so data written with one decodes with the other.
 *
 * Errors: every function that can fail returns 0 (or a count) or a negative
 * errno: -EINVAL bad argument (policy, index, size or range), -ENOTSUP
 * backend not built, -ENOMEM, -ENODATA fewer than d fragments available.
 * ec_strerror() turns them into text. On error nothing is written to any
 * output buffer. Nothing here does I/O, so there is nothing to lose on a
 * crash: the codec is a pure function of its inputs.
 *
 * Buffers: the codec works in place on caller buffers and never copies
 * them (one exception: the Jerasure backend bounces through a small stack
 * buffer when a source and its destination differ in alignment mod 16,
 * which gf-complete cannot handle). Output buffers must not overlap inputs.
 * No alignment is required.
 *
 * Threads: every function is safe to call concurrently. The codec cache is
 * the one piece of process-wide state in this module (see ec_codec_get()).
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EC_MAX_COPIES 31			    /* replication: 1..31 copies */
#define EC_MAX_DATA   16			    /* d in {2,4,8,16} */
#define EC_MAX_PARITY 15			    /* p in 1..15 */
#define EC_MAX_WIDTH  (EC_MAX_DATA + EC_MAX_PARITY) /* most fragments of one object */

#define EC_MIN_OBJ_SHIFT 20 /* object sizes 2^20 .. 2^31 bytes */
#define EC_MAX_OBJ_SHIFT 31

/* ---- policy ---------------------------------------------------------- */

/* Replication: d = 0, p = 0, copies = N (1..31).
 * Erasure code: d in {2,4,8,16}, p in 1..15, copies = d + p. */
struct ec_policy {
	uint8_t d;
	uint8_t p;
	uint8_t copies;
};

/* 0 if pol is one of the forms above, else -EINVAL. */
int ec_policy_validate(const struct ec_policy *pol);

/* Parse "3" or "4:2" (decimal digits only, no sign, no spaces). Returns 0 or
 * -EINVAL; *out is written only on success. On -EINVAL print
 * "Invalid parameter <s>\n" followed by ec_policy_usage(). */
int ec_policy_parse(const char *s, struct ec_policy *out);

/* "3" or "4:2" into buf (always NUL-terminated when len > 0); "?" for an
 * invalid policy. 8 bytes are always enough. */
void ec_policy_format(const struct ec_policy *pol, char *buf, size_t len);

/* The five lines of dog's answer to a bad policy, after "Invalid parameter X",
 * each newline-terminated. */
const char *ec_policy_usage(void);

/* Sheepdog copy_policy byte: 0 for replication, ((d/2)<<4)|p for d:p
 * (4:2 -> 0x22, 16:15 -> 0x8f). 0 for an invalid policy. */
uint8_t ec_policy_byte(const struct ec_policy *pol);

/* Inverse of ec_policy_byte(): copy_policy 0 means nr_copies full copies
 * (1..31); otherwise nr_copies must equal d+p. -EINVAL if inconsistent. */
int ec_policy_from_wire(uint8_t copy_policy, uint8_t nr_copies, struct ec_policy *out);

static inline bool ec_policy_is_ec(const struct ec_policy *pol)
{
	return pol->d != 0;
}

/* Number of fragments (EC: d+p) or copies (replication) of one object. */
static inline int ec_policy_width(const struct ec_policy *pol)
{
	return pol->d ? pol->d + pol->p : pol->copies;
}

/* ---- layout ---------------------------------------------------------- */

/* True if obj_size is a power of two in 2^20..2^31. */
bool ec_obj_size_valid(uint32_t obj_size);

/* Bytes in each fragment: obj_size/d for EC, obj_size for replication.
 * 0 if the policy or the object size is invalid. */
uint32_t ec_frag_size(const struct ec_policy *pol, uint32_t obj_size);

/* One piece of an object byte range: object bytes [obj_off, obj_off+len)
 * live in data fragment idx at [frag_off, frag_off+len). */
struct ec_extent {
	uint8_t idx;
	uint32_t frag_off;
	uint32_t len;
	uint32_t obj_off;
};

/* Map object byte range [off, off+len) to per-data-fragment extents, in
 * object order (so in fragment order). At most d extents (1 for
 * replication: fragment 0 is the whole object). Returns the count (0 for
 * len 0) or -EINVAL for a bad policy or object size, a range past the end
 * of the object, or max_out too small (then out is untouched). */
int ec_map_range(const struct ec_policy *pol, uint32_t obj_size, uint32_t off, uint32_t len,
		 struct ec_extent *out, int max_out);

/* Point data[0..d-1] at the data fragments of a contiguous object buffer of
 * obj_size bytes (fragment i = obj + i*F): encoding a whole object needs no
 * copy. Returns d, or -EINVAL for replication or a bad size. */
int ec_frag_ptrs(const struct ec_policy *pol, uint8_t *obj, uint32_t obj_size, uint8_t **data);

/* Choose d fragments to decode from among those whose bit is set in
 * present_mask (bit i = fragment i, i < d+p): the lowest indexes, so data
 * fragments first. Writes d indexes, ascending, to have_idx; returns d, or
 * -ENODATA if fewer than d are present (more than p lost), -EINVAL for a
 * bad d:p. */
int ec_choose_sources(uint8_t d, uint8_t p, uint32_t present_mask, int *have_idx);

/* ---- codec ----------------------------------------------------------- */

/* ISAL: ISA-L's kernels, the default. JERASURE: Jerasure + gf-complete
 * (optional at configure). GFNI: this module's own AVX-512 + GFNI kernels,
 * available only on CPUs that have them. All three give the same bytes. */
enum ec_backend { EC_BACKEND_ISAL = 0, EC_BACKEND_JERASURE = 1, EC_BACKEND_GFNI = 2 };
#define EC_NR_BACKENDS 3

/* "isal" / "jerasure" / "gfni". */
const char *ec_backend_name(enum ec_backend be);
/* Parse "isal", "jerasure" or "gfni"; 0 or -EINVAL. */
int ec_backend_parse(const char *s, enum ec_backend *out);
/* True if the backend was built in (Jerasure is optional at configure) and
 * runs on this CPU (GFNI needs AVX-512BW and GFNI). */
bool ec_backend_available(enum ec_backend be);

struct ec_codec;

/* The codec for d:p on backend be, in *out. Codecs are cached per
 * (d, p, backend) in a process-wide table guarded by a mutex: building one
 * costs a matrix and 32*d*p bytes of ISA-L tables, and every object of
 * every VDI of the same policy shares it, so passing a cache down through
 * every caller would buy nothing. The table is bounded by construction
 * (4 values of d x 15 of p x 3 backends). A codec stays valid until
 * ec_codec_cleanup(). Returns 0, -EINVAL (bad d:p), -ENOTSUP (backend not
 * built or not supported by this CPU) or -ENOMEM. */
int ec_codec_get(uint8_t d, uint8_t p, enum ec_backend be, const struct ec_codec **out);

/* Free every cached codec. Only when no thread uses a codec any more
 * (at exit, or between tests). */
void ec_codec_cleanup(void);

/* Encode: data[0..d-1] -> parity[0..p-1], each len bytes. Any sub-range
 * works (the same offset in every fragment). 0 or -EINVAL. */
int ec_encode(const struct ec_codec *c, size_t len, uint8_t *const *data, uint8_t *const *parity);

/* Decode: from exactly d present fragments (their indexes 0..d+p-1 in
 * have_idx, distinct, any order; buffers in have) rebuild nr_want fragments
 * (indexes want_idx, 1..d+p of them, data or parity) into want. All buffers
 * len bytes, any sub-range (the same offset in every fragment). The
 * decoding tables are cached per erasure pattern (have set, want list) in
 * a bounded per-codec cache (EC_DECODE_CACHE entries, least recently used
 * evicted). Returns 0 or -EINVAL (bad or repeated index, nr_want out of
 * range: e.g. a duplicate in have_idx means fewer than d fragments). */
int ec_decode(const struct ec_codec *c, size_t len, const int *have_idx, const uint8_t *const *have,
	      int nr_want, const int *want_idx, uint8_t *const *want);
#define EC_DECODE_CACHE 64

/* Parity-delta update: delta = old XOR new of a range of data fragment
 * data_idx (0..d-1); for each parity j, parity[j] ^= coef(j, data_idx) *
 * delta over that same range. Cost is proportional to len, not to the
 * object. 0 or -EINVAL. */
int ec_update(const struct ec_codec *c, size_t len, int data_idx, const uint8_t *delta,
	      uint8_t *const *parity);

/* The policy of a codec (d, p) and its backend. */
void ec_codec_info(const struct ec_codec *c, uint8_t *d, uint8_t *p, enum ec_backend *be);

/* Text for a negative errno returned by this module. */
const char *ec_strerror(int err);

#endif
