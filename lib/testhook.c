/* testhook.c - sd_test_pause: hold a thread at a named point until a functional test lets it go. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/testhook.h"

/* The first line of path names point (and what, when it names an object). */
static bool names(const char *path, const char *point, uint64_t what)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	/* "point OID": only a thread there for that object (hex). */
	char *sp = strchr(buf, ' ');
	if (sp) {
		*sp++ = 0;
		char *end;
		unsigned long long oid = strtoull(sp, &end, 16);
		if (end == sp || oid != what)
			return false;
	}
	return !strcmp(buf, point);
}

bool sd_test_pause_armed(const char *path, const char *point, uint64_t what)
{
	return path && names(path, point, what);
}

void sd_test_pause(const char *path, const char *point, uint16_t port, uint64_t what)
{
	if (!path || !names(path, point, what))
		return;
	char at[PATH_MAX];
	snprintf(at, sizeof(at), "%s.%s", path, point);
	if (rename(path, at))
		return;
	char by[PATH_MAX];
	snprintf(by, sizeof(by), "%s.by", path);
	FILE *f;
	if ((f = fopen(by, "w"))) {
		fprintf(f, "%u\n", (unsigned)port);
		fclose(f);
	}
	sd_info("test hook: %016llx: paused at %s", (unsigned long long)what, point);
	for (int i = 0; i < 6000 && access(at, F_OK) == 0; i++)
		usleep(10000);
	sd_info("test hook: %016llx: going on from %s", (unsigned long long)what, point);
}
