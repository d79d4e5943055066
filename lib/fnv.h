/* fnv.h - FNV-1a 64-bit hashing, used for VDI ids and placement. */
#ifndef SD_FNV_H
#define SD_FNV_H

#include <stdint.h>
#include <stddef.h>

#define FNV1A_64_INIT 0xcbf29ce484222325ULL
#define FNV_64_PRIME  0x100000001b3ULL

/* Continue an FNV-1a-64 hash over len bytes; start with FNV1A_64_INIT. */
static inline uint64_t fnv_64a_buf(const void *buf, size_t len, uint64_t hval)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i < len; i++) {
		hval ^= (uint64_t)p[i];
		hval *= FNV_64_PRIME;
	}
	return hval;
}

/* Hash a u64 by its 8 little-endian bytes. */
static inline uint64_t fnv_64a_u64(uint64_t v, uint64_t hval)
{
	return fnv_64a_buf(&v, sizeof(v), hval);
}

/* The VDI id of a name: FNV-1a-64 of the name's bytes, low 24 bits, 0 -> 1.
 * Collisions are resolved by the caller probing upward in the in-use bitmap. */
uint32_t sd_vid_of_name(const char *name);

#endif
