/* version.c - sd_version(): the string the build wrote into $(O)/gen/sd_version.h. */
#include "lib/version.h"
#include "sd_version.h"

const char *sd_version(void)
{
	return SD_VERSION;
}
