/* test_store_fdcache.c - unit tests of the store's open-file cache: files are opened once, never
 * stale after a remove, replace or commit, and the number kept open is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sheep/store/store.h"
#include "sheep/store/store_test.h"
#define STORE_FIXTURE_PREFIX "/tmp/sd-fdcache-test"
#include "tests/unit/store_fixture.h"

static struct store_meta meta_of(uint64_t oid, uint8_t idx, uint32_t frag_size, uint64_t version)
{
	struct store_meta m = {.oid = oid,
			       .idx = idx,
			       .copy_policy = 0x22,
			       .nr_copies = 6,
			       .frag_size = frag_size,
			       .version = version};
	return m;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

static void test_repeated_ops_open_a_fragment_once(void **state)
{
	struct fixture *f = *state;
	uint8_t a[4096], r[4096];
	memset(a, 0x5a, sizeof(a));
	struct store_meta m = meta_of(7, 1, 65536, 1);
	assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
	uint64_t o0 = store_test_fd_opens(f->st), v;
	for (int i = 0; i < 100; i++) {
		a[0] = (uint8_t)i;
		assert_int_equal(
		    store_write(f->st, 7, 1, (uint64_t)i + 1, (uint64_t)i + 2, a, 0, 4096), 0);
		assert_int_equal(store_read(f->st, 7, 1, r, 0, 4096, &v), 0);
		assert_memory_equal(a, r, 4096);
		struct store_meta st;
		assert_int_equal(store_stat(f->st, 7, 1, &st), 0);
		assert_true(st.version == (uint64_t)i + 2);
	}
	/* 300 calls: at most the first one opens the file */
	assert_true(store_test_fd_opens(f->st) - o0 <= 1);
}

static void test_no_stale_file_after_remove_replace_or_commit(void **state)
{
	struct fixture *f = *state;
	uint8_t a[4096], b[4096], c[4096], r[4096];
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	memset(c, 3, sizeof(c));
	uint64_t v;
	struct store_meta m = meta_of(9, 0, 8192, 1);
	assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), 0); /* cached now */
	/* removed, then created again: the new file, not the cached old one */
	assert_int_equal(store_remove(f->st, 9, 0), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), -ENOENT);
	m.version = 5;
	assert_int_equal(store_create(f->st, &m, b, 0, 4096), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), 0);
	assert_true(v == 5);
	assert_memory_equal(b, r, 4096);
	/* replaced (a rename over the name) */
	m.version = 6;
	assert_int_equal(store_replace(f->st, &m, c, 0, 4096), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), 0);
	assert_true(v == 6);
	assert_memory_equal(c, r, 4096);
	/* then written in place through the cache: lands in the new file */
	assert_int_equal(store_write(f->st, 9, 0, 6, 7, a, 4096, 4096), 0);
	/* a prepared whole fragment committed (a rename too) */
	m.version = 8;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 77, 2000, b, 0, 4096),
			 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 4096, 4096, &v), 0);
	assert_memory_equal(a, r, 4096);
	assert_int_equal(store_commit(f->st, 9, 0, 8, 77), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), 0);
	assert_true(v == 8);
	assert_memory_equal(b, r, 4096);
	memset(c, 0, sizeof(c));
	assert_int_equal(store_read(f->st, 9, 0, r, 4096, 4096, &v), 0);
	assert_memory_equal(c, r, 4096); /* the whole new fragment, not the old bytes */
	/* the file unlinked behind the store's back: not served from the cache */
	char path[256];
	assert_int_equal(store_test_frag_path(f->st, 9, 0, path, sizeof(path)), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), -ENOENT);
	m.version = 8;
	assert_int_equal(store_create(f->st, &m, b, 0, 4096), 0);
	/* after a reopen (replay), everything as it was */
	store_close(f->st);
	assert_int_equal(store_open(f->dir, f->nosync, &f->st), 0);
	assert_int_equal(store_read(f->st, 9, 0, r, 0, 4096, &v), 0);
	assert_true(v == 8);
	assert_memory_equal(b, r, 4096);
}

/*
 * What one sheep of six holds of a 4:2 volume: fragment k of object i with
 * k = (i + sheep) % 6, so object i's fragment k and object i ^ 1's
 * fragment k ^ 1 agree in oid ^ idx. The cache's hash used to see only
 * oid ^ idx: those fragments shared a slot and reopened on every call
 * (39 of 64 here). Every one is opened once now.
 */
static void test_fragments_of_a_volume_stay_open(void **state)
{
	struct fixture *f = *state;
	const uint64_t base = 0x0002060900000000ull;
	const int n = 64;
	uint8_t a[4096], r[4096];
	for (int sheep = 0; sheep < 6; sheep += 5) {
		for (int i = 0; i < n; i++) {
			struct store_meta m =
			    meta_of(base + (uint64_t)i, (uint8_t)((i + sheep) % 6), 4096, 1);
			memset(a, i, sizeof(a));
			assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
		}
		uint64_t o0 = store_test_fd_opens(f->st), v;
		for (int round = 0; round < 10; round++) {
			for (int i = 0; i < n; i++) {
				assert_int_equal(store_read(f->st, base + (uint64_t)i,
							    (uint8_t)((i + sheep) % 6), r, 0, 4096,
							    &v),
						 0);
				memset(a, i, sizeof(a));
				assert_memory_equal(a, r, 4096);
			}
		}
		/* 640 reads of 64 fragments: each opened at most once */
		assert_true(store_test_fd_opens(f->st) - o0 <= (uint64_t)n);
		for (int i = 0; i < n; i++)
			assert_int_equal(
			    store_remove(f->st, base + (uint64_t)i, (uint8_t)((i + sheep) % 6)), 0);
	}
}

/* The least recently used descriptor of a full set goes first: five
 * fragments of one set, four ways; the four used most stay open. */
static void test_a_full_set_drops_its_least_recently_used(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(store_test_fd_capacity(f->st), 1024); /* main() raised the limit */
	uint8_t a[4096], r[4096];
	memset(a, 7, sizeof(a));
	uint64_t v;
	/* five oids of one set, found by trying (the hash is private) */
	uint64_t oids[5];
	int found = 0;
	for (uint64_t o = 1; found < 5 && o < 100000; o++) {
		struct store_meta m = meta_of(o, 0, 4096, 1);
		assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
		if (store_test_fd_set(o, 0) == store_test_fd_set(1, 0))
			oids[found++] = o;
		else
			assert_int_equal(store_remove(f->st, o, 0), 0);
	}
	assert_int_equal(found, 5);
	for (int i = 0; i < 4; i++) /* four ways taken */
		assert_int_equal(store_read(f->st, oids[i], 0, r, 0, 4096, &v), 0);
	for (int round = 0; round < 5; round++) /* 1..3 recently used, 0 not */
		for (int i = 1; i < 4; i++)
			assert_int_equal(store_read(f->st, oids[i], 0, r, 0, 4096, &v), 0);
	uint64_t o0 = store_test_fd_opens(f->st);
	assert_int_equal(store_read(f->st, oids[4], 0, r, 0, 4096, &v), 0); /* evicts 0 */
	for (int i = 1; i < 5; i++)
		assert_int_equal(store_read(f->st, oids[i], 0, r, 0, 4096, &v), 0);
	assert_true(store_test_fd_opens(f->st) - o0 == 1);
	assert_int_equal(store_read(f->st, oids[0], 0, r, 0, 4096, &v), 0);
	assert_true(store_test_fd_opens(f->st) - o0 == 2);
	assert_memory_equal(a, r, 4096);
}

static void test_open_files_are_bounded(void **state)
{
	struct fixture *f = *state;
	const int n = 1200; /* over the cache's 256 or 1,024 descriptors */
	uint8_t a[4096], r[4096];
	int fds0 = open_fds();
	for (int i = 0; i < n; i++) {
		struct store_meta m = meta_of(1000 + (uint64_t)i, (uint8_t)(i % 6), 4096, 1);
		memset(a, i & 0xff, sizeof(a));
		assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
	}
	for (int i = 0; i < n; i++) {
		uint64_t v;
		assert_int_equal(
		    store_read(f->st, 1000 + (uint64_t)i, (uint8_t)(i % 6), r, 0, 4096, &v), 0);
		memset(a, i & 0xff, sizeof(a));
		assert_memory_equal(a, r, 4096);
	}
	int fds1 = open_fds();
	assert_true(fds1 - fds0 <= store_test_fd_capacity(f->st));
	assert_true(fds1 - fds0 > 0); /* some are kept open: the cache works */
	for (int i = 0; i < n; i++)
		assert_int_equal(store_remove(f->st, 1000 + (uint64_t)i, (uint8_t)(i % 6)), 0);
	assert_true(open_fds() <= fds0); /* removal closes them */
}

int main(void)
{
	/* As sheep does at start (a store under a limit of 1,024 keeps one
	 * way of each set: 256 descriptors). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
		rl.rlim_cur = 4096;
		if (rl.rlim_max < 4096)
			rl.rlim_max = 4096; /* root may */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_repeated_ops_open_a_fragment_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_no_stale_file_after_remove_replace_or_commit,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_stale_file_after_remove_replace_or_commit,
					    setup_nosync, teardown),
	    cmocka_unit_test_setup_teardown(test_fragments_of_a_volume_stay_open, setup_nosync,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_a_full_set_drops_its_least_recently_used,
					    setup_nosync, teardown),
	    cmocka_unit_test_setup_teardown(test_open_files_are_bounded, setup_nosync, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
