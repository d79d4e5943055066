/* test_store_install.c - unit tests of whole-fragment writes through the log: bytes written once
 * (temp file + WAL_INSTALL record), a crash at each step, replay over older records of the
 * fragment, a lost rename. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "sheep/store/store.h"
#include "sheep/store/store_test.h"
#define STORE_FIXTURE_PREFIX "/tmp/sd-install-test"
#include "tests/unit/store_fixture.h"

#define FRAG (256 * 1024)
#define OID  700

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(rng_next(&s) >> 24);
}

static struct store_meta meta_v(uint64_t version)
{
	return (struct store_meta){.oid = OID,
				   .idx = 1,
				   .copy_policy = 0x22,
				   .nr_copies = 6,
				   .frag_size = FRAG,
				   .version = version};
}

/* The fragment holds exactly want at version v and verifies. */
static void expect_frag(struct fixture *f, const uint8_t *want, uint64_t v)
{
	uint8_t *r = malloc(FRAG);
	uint64_t got = 0;
	assert_int_equal(store_read(f->st, OID, 1, r, 0, FRAG, &got), 0);
	assert_true(got == v);
	assert_memory_equal(r, want, FRAG);
	assert_int_equal(store_verify(f->st, OID, 1), 0);
	free(r);
}

/* Leave the store as a crash would, with its log not yet checkpointed:
 * everything after reopen comes from replaying it. */
static void crash_keeping_log(struct fixture *f)
{
	store_test_set_crash(f->st, STORE_CRASH_CKPT_SYNCED);
	assert_int_equal(store_test_checkpoint(f->st), -ECANCELED);
}

static void test_whole_fragment_bytes_are_not_logged(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG);
	fill(a, FRAG, 1);
	struct store_stats s0, s1;
	assert_int_equal(store_get_stats(f->st, &s0), 0);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	m.version = 2;
	assert_int_equal(store_replace(f->st, &m, a, 0, FRAG), 0);
	assert_int_equal(store_get_stats(f->st, &s1), 0);
	assert_true(s1.records - s0.records == 2);
	assert_true(s1.log_bytes - s0.log_bytes < 1024); /* two records, no 256 KiB */
	expect_frag(f, a, 2);
	crash_keeping_log(f);
	reopen(f);
	expect_frag(f, a, 2);
	free(a);
}

/* Crash after the temp file is complete and before the record: old data. */
static void test_crash_before_install_record_keeps_old_fragment(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG);
	fill(a, FRAG, 2);
	fill(b, FRAG, 3);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	enum store_crash at[] = {STORE_CRASH_BEFORE_RENAME, STORE_CRASH_TORN_INTENT,
				 STORE_CRASH_WAL_UNSYNCED};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		m.version = 10 + i;
		store_test_set_crash(f->st, at[i]);
		int r = store_replace(f->st, &m, b, 0, FRAG);
		reopen(f);
		if (r == 0) /* WAL_UNSYNCED: the batch was written whole, then synced at close */
			expect_frag(f, b, m.version);
		else
			expect_frag(f, a, 1);
	}
	free(a);
	free(b);
}

/* Crash with the record durable and the rename not done (or lost): replay
 * renames the synced temp file. */
static void test_crash_after_install_record_is_renamed_at_replay(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG);
	fill(a, FRAG, 4);
	fill(b, FRAG, 5);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	m.version = 2;
	store_test_set_crash(f->st, STORE_CRASH_INSTALL_LOGGED);
	assert_int_equal(store_replace(f->st, &m, b, 0, FRAG), -ECANCELED);
	reopen(f);
	expect_frag(f, b, 2);
	/* and a new fragment the same way */
	struct store_meta n = meta_v(7);
	n.idx = 2;
	store_test_set_crash(f->st, STORE_CRASH_INSTALL_LOGGED);
	assert_int_equal(store_create(f->st, &n, a, 0, FRAG), -ECANCELED);
	reopen(f);
	uint8_t *r = malloc(FRAG);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, OID, 2, r, 0, FRAG, &v), 0);
	assert_true(v == 7);
	assert_memory_equal(r, a, FRAG);
	free(r);
	free(a);
	free(b);
}

/*
 * Range writes of the fragment, then a whole replacement, then a range
 * write over it, all in the log: replay must not apply the older range
 * writes over the new file (the install supersedes them), and must apply
 * the later one. With lost_rename the new file is put back at its temp
 * name and the old one in place, as a power cut can leave them.
 */
static void replay_over_older_records(struct fixture *f, bool lost_rename)
{
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG), blk[4096];
	fill(a, FRAG, 6);
	fill(b, FRAG, 7);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	assert_int_equal(store_test_checkpoint(f->st), 0);
	for (uint64_t v = 2; v <= 5; v++) {
		fill(blk, sizeof(blk), 100 + v);
		assert_int_equal(
		    store_write(f->st, OID, 1, v - 1, v, blk, (uint32_t)v * 4096, 4096), 0);
	}
	char path[256], tmp[300], old[300];
	assert_int_equal(store_test_frag_path(f->st, OID, 1, path, sizeof(path)), 0);
	const char *base = strrchr(path, '/') + 1;
	snprintf(tmp, sizeof(tmp), "%.*s.tmp.%s", (int)(base - path), path, base);
	snprintf(old, sizeof(old), "%s/old-copy", f->dir);
	if (lost_rename) {
		assert_int_equal(store_test_checkpoint(f->st), 0); /* old file on disk as is */
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "cp -p '%s' '%s'", path, old);
		assert_int_equal(system(cmd), 0);
	}
	m.version = 9;
	assert_int_equal(store_replace(f->st, &m, b, 0, FRAG), 0);
	fill(blk, sizeof(blk), 200);
	assert_int_equal(store_write(f->st, OID, 1, 9, 10, blk, 3 * 4096, 4096), 0);
	memcpy(b + 3 * 4096, blk, 4096);
	crash_keeping_log(f);
	if (lost_rename) {
		assert_int_equal(rename(path, tmp), 0);
		assert_int_equal(rename(old, path), 0);
	}
	reopen(f);
	expect_frag(f, b, 10);
	struct stat sb;
	assert_int_equal(stat(tmp, &sb), -1);
	reopen(f); /* and once more, from the checkpointed state */
	expect_frag(f, b, 10);
	free(a);
	free(b);
}

static void test_install_supersedes_older_records_of_its_fragment(void **state)
{
	replay_over_older_records(*state, false);
}

static void test_lost_rename_is_redone_at_replay(void **state)
{
	replay_over_older_records(*state, true);
}

/* A removal before the install, and a pending whole write committed
 * after it: replay keeps the order. */
static void test_install_after_remove_and_before_commit(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG);
	fill(a, FRAG, 8);
	fill(b, FRAG, 9);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	assert_int_equal(store_remove(f->st, OID, 1), 0);
	m.version = 2;
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	m.version = 3;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 33, 2000, b, 0, FRAG),
			 0);
	assert_int_equal(store_commit(f->st, OID, 1, 3, 33), 0);
	crash_keeping_log(f);
	reopen(f);
	expect_frag(f, b, 3);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, OID, 1, &pd), -ENOENT);
	free(a);
	free(b);
}

/* Count the files of pending whole writes (DIR/obj/.pw.*). */
static int pw_files(struct fixture *f)
{
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "exit $(ls -a '%s/obj' | grep -c '^\\.pw\\.')", f->dir);
	int st = system(cmd);
	return WEXITSTATUS(st);
}

/* A pending whole write keeps its bytes in its own synced file: not in
 * the log, not re-logged by checkpoints; it survives restarts, commits by
 * a rename (also when the crash came between its record and the rename),
 * and an abort removes its file. */
static void test_pending_whole_write_is_written_once(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG);
	fill(a, FRAG, 10);
	fill(b, FRAG, 11);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	struct store_stats s1;
	m.version = 2;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 41, 2000, b, 0, FRAG),
			 0);
	assert_int_equal(pw_files(f), 1);
	expect_frag(f, a, 1); /* nothing changed yet */
	assert_int_equal(store_test_checkpoint(f->st), 0);
	crash_keeping_log(f);
	reopen(f);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, OID, 1, &pd), 0);
	assert_true(pd.write_id == 41 && pd.flags == 0);
	assert_int_equal(pw_files(f), 1);
	assert_int_equal(store_commit(f->st, OID, 1, 2, 41), 0);
	assert_int_equal(store_get_stats(f->st, &s1), 0);
	assert_true(s1.log_bytes < FRAG / 4); /* prepare, commit, marks: no fragment bytes */
	expect_frag(f, b, 2);
	assert_int_equal(pw_files(f), 0);
	crash_keeping_log(f);
	reopen(f);
	expect_frag(f, b, 2);
	/* commit interrupted after its record: replay renames */
	m.version = 3;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 42, 2000, a, 0, FRAG),
			 0);
	store_test_set_crash(f->st, STORE_CRASH_INSTALL_LOGGED);
	assert_int_equal(store_commit(f->st, OID, 1, 3, 42), -ECANCELED);
	reopen(f);
	expect_frag(f, a, 3);
	assert_int_equal(store_pending(f->st, OID, 1, &pd), -ENOENT);
	assert_int_equal(pw_files(f), 0);
	/* an abort drops the file; a prepare whose record tore leaves none */
	m.version = 4;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 43, 2000, b, 0, FRAG),
			 0);
	assert_int_equal(store_abort(f->st, OID, 1, 43), 0);
	assert_int_equal(pw_files(f), 0);
	store_test_set_crash(f->st, STORE_CRASH_TORN_INTENT);
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 44, 2000, b, 0, FRAG),
			 -ECANCELED);
	reopen(f);
	assert_int_equal(store_pending(f->st, OID, 1, &pd), -ENOENT);
	assert_int_equal(pw_files(f), 0);
	expect_frag(f, a, 3);
	free(a);
	free(b);
}

/* A range write that covers the whole fragment (a 4 MiB write of a
 * replicated object) is installed as a new file too: no fragment bytes in
 * the log, a crash after its record renames it at replay, one before
 * leaves the old version, and a stale expected version changes nothing.
 * Before, such overwrites went through the log (3-copy sequential
 * overwrites at 74-95 MiB/s against 120-139 now, README). */
static void test_whole_overwrite_is_installed(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG), *b = malloc(FRAG), *c = malloc(FRAG);
	fill(a, FRAG, 60);
	fill(b, FRAG, 61);
	fill(c, FRAG, 62);
	struct store_meta m = meta_v(1);
	assert_int_equal(store_create(f->st, &m, a, 0, FRAG), 0);
	struct store_stats s0, s1;
	assert_int_equal(store_get_stats(f->st, &s0), 0);
	assert_int_equal(store_write(f->st, OID, 1, 1, 2, b, 0, FRAG), 0);
	assert_int_equal(store_get_stats(f->st, &s1), 0);
	assert_true(s1.records - s0.records == 1);
	assert_true(s1.log_bytes - s0.log_bytes < 1024);
	expect_frag(f, b, 2);
	crash_keeping_log(f);
	reopen(f);
	expect_frag(f, b, 2);
	/* a stale expected version: refused, nothing changed */
	assert_int_equal(store_write(f->st, OID, 1, 1, 3, c, 0, FRAG), -ESTALE);
	expect_frag(f, b, 2);
	/* crash with the record durable, before the rename */
	store_test_set_crash(f->st, STORE_CRASH_INSTALL_LOGGED);
	assert_int_equal(store_write(f->st, OID, 1, 2, 3, c, 0, FRAG), -ECANCELED);
	reopen(f);
	expect_frag(f, c, 3);
	/* crash before the record: the old version stays */
	store_test_set_crash(f->st, STORE_CRASH_BEFORE_RENAME);
	assert_int_equal(store_write(f->st, OID, 1, 3, 4, a, 0, FRAG), -ECANCELED);
	reopen(f);
	expect_frag(f, c, 3);
	/* a block write after it applies over the installed file */
	uint8_t blk[4096];
	fill(blk, sizeof(blk), 63);
	assert_int_equal(store_write(f->st, OID, 1, 3, 4, blk, 2 * 4096, 4096), 0);
	memcpy(c + 2 * 4096, blk, 4096);
	crash_keeping_log(f);
	reopen(f);
	expect_frag(f, c, 4);
	free(a);
	free(b);
	free(c);
}

static void test_pending_whole_write_logs_no_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(FRAG);
	fill(a, FRAG, 12);
	struct store_meta m = meta_v(5);
	struct store_stats s0, s1;
	assert_int_equal(store_get_stats(f->st, &s0), 0);
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 51, 2000, a, 0, FRAG),
			 0);
	assert_int_equal(store_commit(f->st, OID, 1, 5, 51), 0);
	assert_int_equal(store_test_checkpoint(f->st), 0);
	assert_int_equal(store_get_stats(f->st, &s1), 0);
	assert_true(s1.log_bytes - s0.log_bytes < 2048);
	expect_frag(f, a, 5);
	free(a);
}

int main(void)
{
	sd_log_set_level(SD_LOG_CRIT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_whole_fragment_bytes_are_not_logged, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_crash_before_install_record_keeps_old_fragment,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_after_install_record_is_renamed_at_replay,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_install_supersedes_older_records_of_its_fragment,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost_rename_is_redone_at_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_install_after_remove_and_before_commit, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_whole_overwrite_is_installed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_whole_write_is_written_once, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pending_whole_write_logs_no_bytes, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
