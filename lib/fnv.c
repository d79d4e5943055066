/* fnv.c - VDI id from name (FNV-1a-64, as in Sheepdog 1.0). */
#include <string.h>

#include "lib/fnv.h"
#include "lib/sd_proto.h"

uint32_t sd_vid_of_name(const char *name)
{
	uint64_t h = fnv_64a_buf(name, strlen(name), FNV1A_64_INIT);
	uint32_t vid = (uint32_t)(h & (SD_NR_VDIS - 1));
	return vid ? vid : 1;
}
