/* cluster_local_fixture.h - the local driver's unit tests' shared fixture: a fresh temp directory
 * holding the shared log ("path=DIR/shared"), removed after each test. */
#ifndef SD_TEST_CLUSTER_LOCAL_FIXTURE_H
#define SD_TEST_CLUSTER_LOCAL_FIXTURE_H

/* Include after cmocka.h, <ftw.h>, <stdio.h> and <stdlib.h>. */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

struct fixture {
	char dir[64];
	char opts[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sd-cluster-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->opts, sizeof(f->opts), "path=%s/shared", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

#endif
