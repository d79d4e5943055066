/* test_store_md.c - unit tests of a store over several disks (store_md.c): spread, plug, unplug, bad input, a removed disk, a changed disk list at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <cmocka.h>

#include "sheep/store/store.h"

#define FS 8192u
#define NOBJ 240

struct md_fx {
	char root[64];
	char meta[96];
	char disk[5][96];
	struct store *st;
};

static int count_frags(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strlen(de->d_name) == 19 && de->d_name[16] == '_';
	closedir(d);
	return n;
}

static void rm_rf(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void pattern(uint8_t *buf, uint64_t oid)
{
	for (uint32_t i = 0; i < FS; i++)
		buf[i] = (uint8_t)(oid * 131 + i * 7);
}

static void open_with(struct md_fx *f, int nr)
{
	const char *disks[5];
	for (int i = 0; i < nr; i++)
		disks[i] = f->disk[i];
	struct store_config cfg = {.dir = f->meta, .nosync = true, .disks = disks, .nr_disks = nr};
	assert_int_equal(store_open_config(&cfg, &f->st), 0);
}

static int setup(void **state)
{
	struct md_fx *f = calloc(1, sizeof(*f));
	snprintf(f->root, sizeof(f->root), "/tmp/sd-md-test.XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->meta, sizeof(f->meta), "%s/meta", f->root);
	for (int i = 0; i < 5; i++)
		snprintf(f->disk[i], sizeof(f->disk[i]), "%s/d%d", f->root, i);
	open_with(f, 3);
	uint8_t buf[FS];
	for (uint64_t k = 0; k < NOBJ; k++) {
		pattern(buf, k);
		struct store_meta m = {.oid = 0x1234500000000ULL | k, .idx = (uint8_t)(k % 3),
				       .nr_copies = 3, .frag_size = FS, .version = 1};
		assert_int_equal(store_create(f->st, &m, buf, 0, FS), 0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct md_fx *f = *state;
	store_close(f->st);
	rm_rf(f->root);
	free(f);
	return 0;
}

static void assert_all_read(struct md_fx *f)
{
	uint8_t want[FS], got[FS];
	for (uint64_t k = 0; k < NOBJ; k++) {
		pattern(want, k);
		assert_int_equal(store_read(f->st, 0x1234500000000ULL | k, (uint8_t)(k % 3), got, 0,
					    FS, NULL),
				 0);
		assert_memory_equal(want, got, FS);
	}
}

static int total(struct md_fx *f)
{
	int n = 0;
	for (int i = 0; i < 5; i++)
		n += count_frags(f->disk[i]);
	return n;
}

static void test_fragments_spread_over_every_disk(void **state)
{
	struct md_fx *f = *state;
	for (int i = 0; i < 3; i++)
		assert_true(count_frags(f->disk[i]) > NOBJ / 6);
	assert_int_equal(total(f), NOBJ);
	char obj[128];
	snprintf(obj, sizeof(obj), "%s/obj", f->meta);
	assert_int_equal(count_frags(obj), 0);
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 3);
	assert_string_equal(d[1].path, f->disk[1]);
	assert_int_equal((int)d[1].nr_frags, count_frags(f->disk[1]));
	assert_all_read(f);
}

static void test_plug_moves_onto_the_new_disk_only(void **state)
{
	struct md_fx *f = *state;
	int before[3];
	for (int i = 0; i < 3; i++)
		before[i] = count_frags(f->disk[i]);
	const char *p[] = {f->disk[3]};
	uint64_t moved = 0;
	assert_int_equal(store_md_plug(f->st, p, 1, &moved), 0);
	assert_true(moved > 0);
	assert_int_equal((int)moved, count_frags(f->disk[3]));
	for (int i = 0; i < 3; i++)
		assert_true(count_frags(f->disk[i]) <= before[i]);
	assert_int_equal(total(f), NOBJ);
	assert_all_read(f);
	/* writes after the plug land where the ring says and read back */
	uint8_t buf[FS];
	memset(buf, 0x5a, FS);
	assert_int_equal(store_write(f->st, 0x1234500000000ULL, 0, STORE_ANY_VERSION, 2, buf, 0, FS),
			 0);
	uint8_t got[FS];
	assert_int_equal(store_read(f->st, 0x1234500000000ULL, 0, got, 0, FS, NULL), 0);
	assert_memory_equal(buf, got, FS);
}

/* A disk on another filesystem (tmpfs): fragments are copied, synced and
 * removed from the old disk, sparse, and read back; unplugging it copies
 * them back. */
static void test_plug_and_unplug_across_filesystems_copy(void **state)
{
	struct md_fx *f = *state;
	char shm[64];
	snprintf(shm, sizeof(shm), "/dev/shm/sd-md-test.%d", (int)getpid());
	rm_rf(shm);
	const char *p[] = {shm};
	uint64_t moved = 0;
	assert_int_equal(store_md_plug(f->st, p, 1, &moved), 0);
	assert_true(moved > 0);
	assert_int_equal((int)moved, count_frags(shm));
	assert_int_equal(total(f) + count_frags(shm), NOBJ);
	assert_all_read(f);
	/* its weight is its filesystem's free space when plugged */
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 4);
	struct statvfs v;
	assert_int_equal(statvfs(shm, &v), 0);
	uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
	assert_true(d[3].space > avail / 2 && d[3].space < avail * 2 + (64u << 20));
	assert_int_equal(store_md_unplug(f->st, p, 1, &moved), 0);
	assert_int_equal(count_frags(shm), 0);
	assert_int_equal(total(f), NOBJ);
	assert_all_read(f);
	rm_rf(shm);
}

static void test_unplug_empties_the_disk(void **state)
{
	struct md_fx *f = *state;
	const char *p[] = {f->disk[1]};
	assert_int_equal(store_md_unplug(f->st, p, 1, NULL), 0);
	assert_int_equal(count_frags(f->disk[1]), 0);
	assert_int_equal(total(f), NOBJ);
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 2);
	assert_all_read(f);
}

static void test_bad_lists_change_nothing(void **state)
{
	struct md_fx *f = *state;
	int before[3];
	for (int i = 0; i < 3; i++)
		before[i] = count_frags(f->disk[i]);
	const char *dup[] = {f->disk[0]};
	assert_int_equal(store_md_plug(f->st, dup, 1, NULL), -EEXIST);
	const char *twice[] = {f->disk[4], f->disk[4]};
	assert_int_equal(store_md_plug(f->st, twice, 2, NULL), -EEXIST);
	const char *unknown[] = {f->disk[4]};
	assert_int_equal(store_md_unplug(f->st, unknown, 1, NULL), -ENOENT);
	const char *all[] = {f->disk[0], f->disk[1], f->disk[2]};
	assert_int_equal(store_md_unplug(f->st, all, 3, NULL), -EBUSY);
	assert_int_equal(store_md_plug(f->st, NULL, 0, NULL), -EINVAL);
	struct stat sb;
	assert_int_not_equal(stat(f->disk[4], &sb), 0); /* no directory made */
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(count_frags(f->disk[i]), before[i]);
	assert_all_read(f);
}

static void test_removed_disk_is_taken_out(void **state)
{
	struct md_fx *f = *state;
	int lost = count_frags(f->disk[2]);
	rm_rf(f->disk[2]);
	assert_int_equal(store_md_check(f->st), 1);
	assert_int_equal(store_md_check(f->st), 0);
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 2);
	int listed = 0;
	struct store_meta m;
	for (uint64_t k = 0; k < NOBJ; k++)
		listed += store_stat(f->st, 0x1234500000000ULL | k, (uint8_t)(k % 3), &m) == 0;
	assert_int_equal(listed, NOBJ - lost);
	/* a lost fragment can be created again (recovery's install) */
	uint64_t k;
	for (k = 0; k < NOBJ; k++)
		if (store_stat(f->st, 0x1234500000000ULL | k, (uint8_t)(k % 3), &m) == -ENOENT)
			break;
	assert_true(k < NOBJ);
	uint8_t buf[FS];
	pattern(buf, k);
	struct store_meta nm = {.oid = 0x1234500000000ULL | k, .idx = (uint8_t)(k % 3),
				.nr_copies = 3, .frag_size = FS, .version = 1};
	assert_int_equal(store_create(f->st, &nm, buf, 0, FS), 0);
	/* the last disks are never all taken out */
	rm_rf(f->disk[0]);
	rm_rf(f->disk[1]);
	assert_int_equal(store_md_check(f->st), -EBUSY);
}

static void test_changed_disk_list_at_open_moves_fragments(void **state)
{
	struct md_fx *f = *state;
	store_close(f->st);
	f->st = NULL;
	/* start again with disks 0, 1, 2, 3 (3 new): fragments move at open */
	open_with(f, 4);
	assert_true(count_frags(f->disk[3]) > 0);
	assert_int_equal(total(f), NOBJ);
	assert_all_read(f);
	store_close(f->st);
	f->st = NULL;
	/* and back to 0, 1: what was on 2 and 3 is not found (gone with them) */
	open_with(f, 2);
	struct store_md_disk d[8];
	assert_int_equal(store_md_info(f->st, d, 8), 2);
	assert_int_equal(count_frags(f->disk[0]) + count_frags(f->disk[1]),
			 NOBJ - count_frags(f->disk[2]) - count_frags(f->disk[3]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fragments_spread_over_every_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plug_moves_onto_the_new_disk_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unplug_empties_the_disk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plug_and_unplug_across_filesystems_copy, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_lists_change_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_disk_is_taken_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changed_disk_list_at_open_moves_fragments, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
