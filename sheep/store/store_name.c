/* store_name.c - fragment file names (<oid:16 hex>_<idx:2 hex>), made and parsed; shared by store.c
 * and store_md.c. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sheep/store/store_priv.h"

void store_frag_name(uint64_t oid, uint8_t idx, char *buf)
{
	snprintf(buf, STORE_NAME_LEN, "%016" PRIx64 "_%02x", oid, idx);
}

/* Parse a fragment file name; false for anything else (temp files, journal). */
bool store_parse_name(const char *s, uint64_t *oid, uint8_t *idx)
{
	if (strlen(s) != 19 || s[16] != '_')
		return false;
	uint64_t o = 0;
	unsigned x = 0;
	for (int i = 0; i < 19; i++) {
		int c = s[i], v;
		if (i == 16)
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return false;
		if (i < 16)
			o = o << 4 | (uint64_t)v;
		else
			x = x << 4 | (unsigned)v;
	}
	*oid = o;
	*idx = (uint8_t)x;
	return true;
}
