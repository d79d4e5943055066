/* store_fixture.h - the store unit tests' shared fixture: a store in a fresh temp directory (synced or not), reopened and removed; a small PRNG. */
#ifndef SD_TEST_STORE_FIXTURE_H
#define SD_TEST_STORE_FIXTURE_H

/* Include after cmocka.h, <ftw.h>, <stdio.h>, <stdlib.h> and sheep/store/store.h;
 * define STORE_FIXTURE_PREFIX ("/tmp/sd-NAME-test") first. */

struct fixture {
	char dir[64];
	struct store *st;
	bool nosync;
};

static inline uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static inline int fixture_rm_one(const char *path, const struct stat *sb, int flag,
				 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline int fixture_setup(void **state, bool nosync)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), STORE_FIXTURE_PREFIX "-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->nosync = nosync;
	if (store_open(f->dir, nosync, &f->st))
		return -1;
	*state = f;
	return 0;
}

static inline int setup(void **state)
{
	return fixture_setup(state, false);
}

static inline int setup_nosync(void **state)
{
	return fixture_setup(state, true);
}

static inline int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->st);
	nftw(f->dir, fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static inline void reopen(struct fixture *f)
{
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->dir, f->nosync, &f->st), 0);
}

#endif
