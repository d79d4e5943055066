/* crc.c - crc32c via ISA-L's crc32_iscsi, wrapped to the standard convention. */
#include <isa-l/crc.h>
#include <limits.h>

#include "lib/crc.h"

uint32_t sd_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	/* crc32_iscsi takes an int length and neither pre- nor post-inverts. */
	crc = ~crc;
	while (len > 0) {
		int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;
		crc = crc32_iscsi((unsigned char *)p, n, crc);
		p += n;
		len -= (size_t)n;
	}
	return ~crc;
}
