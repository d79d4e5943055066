/* test_store_wal.c - unit tests of the store's write-ahead log: group commit, crashes at each step of a batch and of a checkpoint, replay of thousands of records, damaged logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store.h"
#include "sheep/store/store_test.h"
#define STORE_FIXTURE_PREFIX "/tmp/sd-wal-test"
#include "tests/unit/store_fixture.h"

#define FRAG (64 * 1024)
#define NR_FRAGS 16
#define NR_THREADS 8

/* The 4 KiB written at block (v % 16) of fragment k at version v. */
static void pattern(uint8_t *buf, uint64_t v, int k)
{
	uint64_t s = (v * 1000003 + (uint64_t)k) | 1;
	for (int i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(rng_next(&s) >> 24);
}

/* Write version v of fragment k over v - 1: pattern(v) at block v % 16. */
static int write_version(struct store *st, int k, uint64_t v)
{
	uint8_t buf[4096];
	pattern(buf, v, k);
	return store_write(st, 500 + (uint64_t)k, 0, v - 1, v, buf, (uint32_t)(v % 16) * 4096,
			   4096);
}

static void create_frags(struct fixture *f)
{
	for (int k = 0; k < NR_FRAGS; k++) {
		struct store_meta m = {.oid = 500 + (uint64_t)k, .copy_policy = 0x22,
				       .nr_copies = 6, .frag_size = FRAG, .version = 0};
		assert_int_equal(store_create(f->st, &m, NULL, 0, 0), 0);
	}
}

/*
 * Check every fragment: its version v says which writes it holds (version
 * u wrote block u % 16 with pattern(u)); each block holds the pattern of
 * the last version <= v that wrote it, or zeros. acked[k] is the highest
 * version acknowledged: v must be at least that.
 */
static void check_frag(struct fixture *f, int k, uint64_t acked)
{
	uint8_t *r = malloc(FRAG), want[4096];
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, 500 + (uint64_t)k, 0, r, 0, FRAG, &v), 0);
	assert_true(v >= acked);
	for (int b = 0; b < 16; b++) {
		uint64_t u = v;
		while (u > 0 && u % 16 != (uint64_t)b)
			u--;
		if (u == 0)
			memset(want, 0, sizeof(want));
		else
			pattern(want, u, k);
		assert_memory_equal(r + b * 4096, want, 4096);
	}
	assert_int_equal(store_verify(f->st, 500 + (uint64_t)k, 0), 0);
	free(r);
}

static void check_frags(struct fixture *f, const uint64_t *acked)
{
	for (int k = 0; k < NR_FRAGS; k++)
		check_frag(f, k, acked ? acked[k] : 0);
}

struct writer {
	struct store *st;
	int t;
	int rounds;
	uint64_t acked[NR_FRAGS];
	int failed;
};

/* Thread t owns fragments k with k % NR_THREADS == t; each round writes
 * the next version of each. Stops at the first error (a simulated crash). */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (uint64_t v = 1; v <= (uint64_t)w->rounds; v++) {
		for (int k = w->t; k < NR_FRAGS; k += NR_THREADS) {
			int r = write_version(w->st, k, v);
			if (r) {
				w->failed = r;
				return NULL;
			}
			w->acked[k] = v;
		}
	}
	return NULL;
}

static void run_writers(struct fixture *f, int rounds, struct writer *w, uint64_t *acked)
{
	pthread_t th[NR_THREADS];
	for (int t = 0; t < NR_THREADS; t++) {
		w[t] = (struct writer){.st = f->st, .t = t, .rounds = rounds};
		pthread_create(&th[t], NULL, writer_main, &w[t]);
	}
	for (int t = 0; t < NR_THREADS; t++)
		pthread_join(th[t], NULL);
	for (int k = 0; k < NR_FRAGS; k++)
		acked[k] = w[k % NR_THREADS].acked[k];
}

static void test_group_commit_shares_syncs_between_writers(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	struct writer w[NR_THREADS];
	uint64_t acked[NR_FRAGS];
	run_writers(f, 40, w, acked);
	for (int t = 0; t < NR_THREADS; t++)
		assert_int_equal(w[t].failed, 0);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	uint64_t recs = b.records - a.records, syncs = b.syncs - a.syncs;
	print_message("# %llu records, %llu batches, %llu syncs, largest batch %llu\n",
		      (unsigned long long)recs, (unsigned long long)(b.batches - a.batches),
		      (unsigned long long)syncs, (unsigned long long)b.max_batch);
	assert_true(recs == 40 * NR_FRAGS);
	assert_true(syncs < recs);       /* writers shared syncs */
	assert_true(b.max_batch >= 2);
	check_frags(f, acked);
	reopen(f);
	check_frags(f, acked);
}

/*
 * A durable write that finds the log writer idle is written and synced
 * by its own thread (no hand-off to the writer and back): one thread
 * writing alone leads every batch, each write is synced when it returns,
 * and every one survives a reopen.
 */
static void test_a_lone_write_is_synced_by_its_caller(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	uint64_t acked[NR_FRAGS] = {0};
	const int n = 3 * NR_FRAGS;
	for (int i = 0; i < n; i++) {
		int k = i % NR_FRAGS;
		assert_int_equal(write_version(f->st, k, acked[k] + 1), 0);
		acked[k]++;
		assert_int_equal(store_get_stats(f->st, &b), 0);
		assert_true(b.led - a.led == (uint64_t)i + 1);    /* its own batch */
		assert_true(b.syncs - a.syncs >= (uint64_t)i + 1); /* synced before it returned */
	}
	assert_true(b.records - a.records == (uint64_t)n);
	check_frags(f, acked);
	reopen(f);
	check_frags(f, acked);
}

struct ckpt_arg {
	struct store *st;
	int n, failed;
};

static void *ckpt_main(void *arg)
{
	struct ckpt_arg *a = arg;
	for (int i = 0; i < a->n; i++) {
		if (store_test_checkpoint(a->st))
			a->failed++;
		usleep(2000);
	}
	return NULL;
}

/* Checkpoints asked for while one thread leads batch after batch: the
 * writer runs each between two led batches (never during one), and every
 * write is there, before and after a reopen. */
static void test_checkpoints_while_callers_lead(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	struct ckpt_arg ca = {.st = f->st, .n = 20};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, ckpt_main, &ca), 0);
	uint64_t acked[NR_FRAGS] = {0};
	for (int i = 0; i < 40 * NR_FRAGS; i++) {
		int k = i % NR_FRAGS;
		assert_int_equal(write_version(f->st, k, acked[k] + 1), 0);
		acked[k]++;
	}
	pthread_join(th, NULL);
	assert_int_equal(ca.failed, 0);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	print_message("# %llu led batches, %llu checkpoints\n",
		      (unsigned long long)(b.led - a.led),
		      (unsigned long long)(b.checkpoints - a.checkpoints));
	assert_true(b.checkpoints - a.checkpoints >= 20);
	assert_true(b.led > a.led);
	check_frags(f, acked);
	reopen(f);
	check_frags(f, acked);
}

static void test_torn_batch_keeps_acknowledged_writes(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	struct writer w[NR_THREADS];
	uint64_t acked[NR_FRAGS];
	store_test_set_crash(f->st, STORE_CRASH_TORN_INTENT);
	run_writers(f, 60, w, acked);
	int failed = 0;
	for (int t = 0; t < NR_THREADS; t++)
		failed += w[t].failed == -ECANCELED;
	assert_true(failed >= 1);
	reopen(f);
	check_frags(f, acked);
	struct store_stats s;
	assert_int_equal(store_get_stats(f->st, &s), 0);
	assert_true(s.replayed > 0);
	/* and the store goes on */
	uint8_t buf[4096] = {1};
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, 500, 0, buf, 0, 4096, &v), 0);
	pattern(buf, v + 1, 0);
	assert_int_equal(store_write(f->st, 500, 0, v, v + 1, buf, (uint32_t)((v + 1) % 16) * 4096,
				     4096), 0);
	acked[0] = v + 1;
	reopen(f);
	check_frags(f, acked);
}

static void test_unsynced_batch_is_replayed_whole_or_not_at_all(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	struct writer w[NR_THREADS];
	uint64_t acked[NR_FRAGS];
	store_test_set_crash(f->st, STORE_CRASH_WAL_UNSYNCED);
	run_writers(f, 60, w, acked);
	reopen(f);
	check_frags(f, acked);
}

/* One writer stops at where (its record durable, applied not at all or in
 * part) while the others go on; after reopen the log completes it. */
static void crash_between_record_and_apply(struct fixture *f, enum store_crash where)
{
	create_frags(f);
	struct writer w[NR_THREADS];
	uint64_t acked[NR_FRAGS];
	store_test_set_crash(f->st, where);
	run_writers(f, 40, w, acked);
	int failed = 0;
	for (int t = 0; t < NR_THREADS; t++)
		failed += w[t].failed == -ECANCELED;
	assert_int_equal(failed, 1);
	reopen(f);
	check_frags(f, acked);
}

static void test_crash_after_record_before_apply_is_replayed(void **state)
{
	crash_between_record_and_apply(*state, STORE_CRASH_AFTER_INTENT);
}

static void test_crash_mid_apply_is_completed(void **state)
{
	crash_between_record_and_apply(*state, STORE_CRASH_MID_APPLY);
}

/* Prepared writes and applied ones, then a checkpoint that crashes at
 * where: after reopen both kinds are there and the pending ones commit. */
static void crash_checkpoint(struct fixture *f, enum store_crash where)
{
	create_frags(f);
	uint8_t buf[4096];
	uint64_t acked[NR_FRAGS] = {0};
	for (int k = 0; k < NR_FRAGS; k++) {
		pattern(buf, 1, k);
		assert_int_equal(store_write(f->st, 500 + (uint64_t)k, 0, 0, 1, buf, 4096, 4096), 0);
		acked[k] = 1;
	}
	for (int k = 0; k < NR_FRAGS; k += 2) {
		struct store_meta m = {.oid = 500 + (uint64_t)k, .copy_policy = 0x22,
				       .nr_copies = 6, .frag_size = FRAG, .version = 2};
		pattern(buf, 2, k);
		assert_int_equal(store_prepare(f->st, &m, false, 1, 77 + (uint64_t)k, 2000, buf,
					       2 * 4096, 4096), 0);
	}
	store_test_set_crash(f->st, where);
	assert_int_equal(store_test_checkpoint(f->st), -ECANCELED);
	reopen(f);
	check_frags(f, acked);
	for (int k = 0; k < NR_FRAGS; k += 2) {
		struct store_pending pd;
		assert_int_equal(store_pending(f->st, 500 + (uint64_t)k, 0, &pd), 0);
		assert_int_equal(pd.write_id, 77 + (uint64_t)k);
		assert_int_equal(store_commit(f->st, 500 + (uint64_t)k, 0, 2, 77 + (uint64_t)k), 0);
		acked[k] = 2;
	}
	reopen(f);
	check_frags(f, acked);
	/* a clean checkpoint keeps pending writes too */
	struct store_meta m = {.oid = 501, .copy_policy = 0x22, .nr_copies = 6,
			       .frag_size = FRAG, .version = 2};
	pattern(buf, 2, 1);
	assert_int_equal(store_prepare(f->st, &m, false, 1, 5, 2000, buf, 2 * 4096, 4096), 0);
	assert_int_equal(store_test_checkpoint(f->st), 0);
	assert_int_equal(store_test_checkpoint(f->st), 0);
	reopen(f);
	assert_int_equal(store_commit(f->st, 501, 0, 2, 5), 0);
	acked[1] = 2;
	check_frags(f, acked);
}

static void test_crash_during_checkpoint_after_sync(void **state)
{
	crash_checkpoint(*state, STORE_CRASH_CKPT_SYNCED);
}

static void test_crash_during_checkpoint_mid_new_file(void **state)
{
	crash_checkpoint(*state, STORE_CRASH_CKPT_TORN);
}

/* A child writes n records one at a time (each its own batch) then dies. */
static void write_then_die(struct fixture *f, int n)
{
	store_close(f->st);
	f->st = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		if (store_open(f->dir, f->nosync, &st))
			_exit(2);
		for (int i = 0; i < n; i++)
			if (write_version(st, i % NR_FRAGS, (uint64_t)(i / NR_FRAGS) + 1))
				_exit(3);
		kill(getpid(), SIGKILL);
	}
	int wst;
	waitpid(pid, &wst, 0);
	assert_true(WIFSIGNALED(wst));
}

static void test_replay_of_thousands_of_records_after_kill_9(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	const int n = 4000;
	write_then_die(f, n);
	assert_int_equal(store_open(f->dir, f->nosync, &f->st), 0);
	struct store_stats s;
	assert_int_equal(store_get_stats(f->st, &s), 0);
	print_message("# replayed %llu records\n", (unsigned long long)s.replayed);
	assert_true(s.replayed >= (uint64_t)n);
	assert_true(s.dropped == 0);
	uint64_t acked[NR_FRAGS];
	for (int k = 0; k < NR_FRAGS; k++)
		acked[k] = n / NR_FRAGS;
	check_frags(f, acked);
}

/* Offset of the payload of the record of lsn in the current log file. */
static uint64_t record_offset(const uint8_t *p, size_t size, uint64_t lsn)
{
	for (size_t o = 0; o + 40 <= size; o += 8) {
		uint32_t magic, len;
		uint64_t l;
		memcpy(&magic, p + o, 4);
		memcpy(&l, p + o + 16, 8);
		memcpy(&len, p + o + 28, 4);
		if (magic == 0x31525753u && l == lsn)
			return o;
		(void)len;
	}
	return 0;
}

/* The child's log is the current file right after it died; read it before
 * any open replays and checkpoints it. */
static void damaged_log_case(struct fixture *f, bool middle)
{
	create_frags(f);
	const int n = 200;
	write_then_die(f, n);
	/* The child's open began one file (checkpoint) and wrote the records
	 * there: it is the bigger one. */
	char path[2][300];
	struct stat sb[2];
	for (int i = 0; i < 2; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/wal.%d", f->dir, i);
		assert_int_equal(stat(path[i], &sb[i]), 0);
	}
	int cur = sb[0].st_size > sb[1].st_size ? 0 : 1;
	int fd = open(path[cur], O_RDWR);
	assert_true(fd >= 0);
	uint8_t *p = malloc((size_t)sb[cur].st_size);
	assert_int_equal(pread(fd, p, (size_t)sb[cur].st_size, 0), sb[cur].st_size);
	uint64_t lsn = middle ? n / 2 : n; /* records 1..n after the mark */
	uint64_t o = record_offset(p, (size_t)sb[cur].st_size, lsn);
	assert_true(o > 0);
	uint8_t b = p[o + 40 + 200] ^ 0x5a; /* inside the payload */
	assert_int_equal(pwrite(fd, &b, 1, (off_t)(o + 40 + 200)), 1);
	close(fd);
	free(p);
	assert_int_equal(store_open(f->dir, f->nosync, &f->st), 0);
	struct store_stats s;
	assert_int_equal(store_get_stats(f->st, &s), 0);
	uint8_t *r = malloc(FRAG);
	if (!middle) {
		/* The last record is dropped; its fragment, which had it
		 * applied, is taken out (rebuilt by recovery); every other
		 * fragment holds everything before it. */
		assert_true(s.dropped == 1);
		assert_true(s.replayed == (uint64_t)n); /* mark + n - 1 */
		int hit = (n - 1) % NR_FRAGS;
		assert_int_equal(store_read(f->st, 500 + (uint64_t)hit, 0, r, 0, FRAG, NULL), -ENOENT);
		for (int k = 0; k < NR_FRAGS; k++) {
			if (k == hit)
				continue;
			int last_i = -1;
			for (int i = 0; i < n - 1; i++)
				if (i % NR_FRAGS == k)
					last_i = i;
			check_frag(f, k, (uint64_t)(last_i / NR_FRAGS) + 1);
		}
	} else {
		/* Acknowledged records follow the damage: every fragment
		 * changed since the checkpoint is gone (recovery rebuilds
		 * it), none reads wrong. */
		assert_true(s.dropped >= (uint64_t)(n / 2));
		for (int k = 0; k < NR_FRAGS; k++)
			assert_int_equal(store_read(f->st, 500 + (uint64_t)k, 0, r, 0, FRAG, NULL),
					 -ENOENT);
	}
	free(r);
}

static void test_flipped_byte_in_the_log_tail_drops_that_record_and_its_fragment(void **state)
{
	damaged_log_case(*state, false);
}

static void test_flipped_byte_in_the_log_middle_removes_what_it_could_have_touched(void **state)
{
	damaged_log_case(*state, true);
}

/* A peer write as the daemon runs it: announced on arrival, claimed by
 * the thread that runs it, then a durable write (or none: unclaim). */
struct announced {
	struct store *st;
	int k;
	bool write;
	uint64_t wait_ms; /* before writing (or giving up) */
	bool hinted;      /* give the coordinator's hint below on arrival */
	uint32_t hint;
	int *turn, order; /* hinted: arrive after the one before (turn == order) */
	int result;
	uint64_t took_ns;
};

static void *announced_main(void *arg)
{
	struct announced *a = arg;
	uint8_t buf[4096];
	pattern(buf, 1, a->k);
	if (a->hinted) { /* arrives later, announced then, as conn.c does */
		while (a->turn && __atomic_load_n(a->turn, __ATOMIC_ACQUIRE) != a->order)
			usleep(1000);
		if (a->wait_ms)
			usleep((useconds_t)a->wait_ms * 1000);
		store_wal_expect(a->st, 1);
		store_wal_hint(a->st, a->hint);
	}
	store_wal_claim(a->st);
	if (a->turn)
		__atomic_add_fetch(a->turn, 1, __ATOMIC_ACQ_REL);
	if (a->wait_ms && !a->hinted)
		usleep((useconds_t)a->wait_ms * 1000);
	uint64_t t0 = sd_now_ns();
	a->result = a->write ? store_write(a->st, 500 + (uint64_t)a->k, 0, 0, 1, buf, 4096, 4096)
			     : 0;
	store_wal_unclaim(a->st);
	a->took_ns = sd_now_ns() - t0;
	return NULL;
}

static void run_announced(struct fixture *f, struct announced *a, int n)
{
	pthread_t th[NR_FRAGS];
	int early = 0; /* announced now; the hinted ones announce on arrival */
	for (int i = 0; i < n; i++)
		early += !a[i].hinted;
	store_wal_expect(f->st, early);
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, announced_main, &a[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* The data of announced writes 0..n-1 (keys 500 + k, version 1) reads back. */
static void expect_announced_data(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		uint8_t r[4096], want[4096];
		uint64_t v;
		pattern(want, 1, i);
		assert_int_equal(store_read(f->st, 500 + (uint64_t)i, 0, r, 4096, 4096, &v), 0);
		assert_int_equal(v, 1);
		assert_memory_equal(r, want, 4096);
	}
}

/* One write k arriving with hint, alone: how long its write took. */
static uint64_t one_hinted_write(struct fixture *f, int k, uint32_t hint)
{
	struct announced a = {.st = f->st, .k = k, .write = true, .hinted = true, .hint = hint};
	run_announced(f, &a, 1);
	assert_int_equal(a.result, 0);
	return a.took_ns;
}

static void test_announced_writes_share_one_sync(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	/* A budget no test machine reaches: only the announcements end it. */
	store_test_gather_ns(f->st, 20ull * 1000000000ull);
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	struct announced w[NR_THREADS];
	for (int i = 0; i < NR_THREADS; i++) /* they arrive over 0-70 ms */
		w[i] = (struct announced){.st = f->st, .k = i, .write = true,
					  .wait_ms = (uint64_t)i * 10};
	run_announced(f, w, NR_THREADS);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	for (int i = 0; i < NR_THREADS; i++)
		assert_int_equal(w[i].result, 0);
	print_message("# %d announced writes: %llu sync(s), largest batch %llu\n", NR_THREADS,
		      (unsigned long long)(b.syncs - a.syncs), (unsigned long long)b.max_batch);
	assert_int_equal(b.syncs - a.syncs, 1);
	assert_int_equal(b.records - a.records, NR_THREADS);
	assert_true(b.max_batch >= NR_THREADS);
	expect_announced_data(f, NR_THREADS);
}

static void test_an_announced_request_that_writes_nothing_releases_the_sync(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	store_test_gather_ns(f->st, 20ull * 1000000000ull);
	/* One writes at once; the other gives up after 500 ms without a record
	 * (a refused write): the sync goes then, not after the 20 s budget. */
	struct announced w[2] = {{.st = f->st, .k = 0, .write = true},
				 {.st = f->st, .k = 1, .write = false, .wait_ms = 500}};
	run_announced(f, w, 2);
	assert_int_equal(w[0].result, 0);
	print_message("# the write waited %.0f ms\n", (double)w[0].took_ns / 1e6);
	assert_true(w[0].took_ns >= 250ull * 1000000);
	assert_true(w[0].took_ns < 10ull * 1000000000ull);
	/* Nothing is announced any more: a lone write does not wait. */
	struct announced one = {.st = f->st, .k = 2, .write = true};
	run_announced(f, &one, 1);
	assert_int_equal(one.result, 0);
	assert_true(one.took_ns < 10ull * 1000000000ull);
}

/* The hint of coordinator tag saying `coming` more writes follow. */
static uint32_t hint_of(uint32_t tag, uint32_t coming)
{
	return tag << 24 | coming;
}

/*
 * Writes of one coordinator reaching this store 10 ms apart (as prepares
 * do on two busy cores, far apart compared with a sync), each saying
 * how many of that coordinator's writes are still on their way: they
 * share one sync, the last one (coming 0) ending the hold. Without the
 * rule each would sync alone (nothing is announced while the writer
 * decides).
 */
static void test_hinted_writes_share_one_sync(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	/* Budgets no test machine reaches: only the hints end the hold, and
	 * the last record's announcement the wait for it. */
	store_test_hold_ns(f->st, 20ull * 1000000000ull);
	store_test_gather_ns(f->st, 20ull * 1000000000ull);
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	struct announced w[NR_THREADS];
	int turn = 0;
	for (int i = 0; i < NR_THREADS; i++) /* in order, 10 ms after the one before */
		w[i] = (struct announced){.st = f->st, .k = i, .write = true,
					  .wait_ms = i ? 10 : 0, .hinted = true,
					  .hint = hint_of(7, (uint32_t)(NR_THREADS - 1 - i)),
					  .turn = &turn, .order = i};
	run_announced(f, w, NR_THREADS);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	for (int i = 0; i < NR_THREADS; i++)
		assert_int_equal(w[i].result, 0);
	print_message("# %d hinted writes 10 ms apart: %llu sync(s), largest batch %llu, "
		      "%llu hold(s)\n", NR_THREADS, (unsigned long long)(b.syncs - a.syncs),
		      (unsigned long long)b.max_batch, (unsigned long long)(b.holds - a.holds));
	assert_int_equal(b.syncs - a.syncs, 1);
	assert_int_equal(b.records - a.records, NR_THREADS);
	assert_true(b.max_batch >= NR_THREADS);
	assert_true(w[0].took_ns >= 50ull * 1000000); /* it waited for the others */
	assert_true(w[0].took_ns < 10ull * 1000000000ull);
	expect_announced_data(f, NR_THREADS);
}

/*
 * What bounds a hold: a lone write whose coordinator has nothing behind
 * it (QD1) never waits; a hint of writes that never come (they went to
 * other sheep) holds one batch for at most the budget; two coordinators
 * count apart, the hold lasting while either says more are coming.
 */
static void test_hints_never_hold_a_lone_write_and_a_stale_one_is_bounded(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	store_test_hold_ns(f->st, 20ull * 1000000000ull);
	store_test_gather_ns(f->st, 20ull * 1000000000ull);
	uint64_t took = one_hinted_write(f, 0, hint_of(3, 0));
	print_message("# a lone write (hint 0) took %.1f ms\n", (double)took / 1e6);
	assert_true(took < 10ull * 1000000000ull);

	/* Coordinator 5 says 3 more are coming, and none ever come. */
	store_test_hold_ns(f->st, 300ull * 1000000);
	took = one_hinted_write(f, 1, hint_of(5, 3));
	print_message("# a write held for 3 that never came took %.0f ms\n", (double)took / 1e6);
	assert_true(took >= 250ull * 1000000);
	assert_true(took < 10ull * 1000000000ull);

	/* Coordinator 9 says one more is coming; then a write of 5, which
	 * says nothing is behind it, is held all the same until 9's arrives
	 * 100 ms later saying 0: both share one sync. */
	store_test_hold_ns(f->st, 20ull * 1000000000ull);
	store_wal_hint(f->st, hint_of(9, 1));
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	int turn = 0;
	struct announced two[2] = {
		{.st = f->st, .k = 2, .write = true, .hinted = true, .hint = hint_of(5, 0),
		 .turn = &turn, .order = 0},
		{.st = f->st, .k = 3, .write = true, .hinted = true, .wait_ms = 100,
		 .hint = hint_of(9, 0), .turn = &turn, .order = 1}};
	run_announced(f, two, 2);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	assert_int_equal(two[0].result, 0);
	assert_int_equal(two[1].result, 0);
	print_message("# two coordinators: %llu sync(s), the first write took %.0f ms\n",
		      (unsigned long long)(b.syncs - a.syncs), (double)two[0].took_ns / 1e6);
	assert_int_equal(b.syncs - a.syncs, 1);
	assert_true(two[0].took_ns >= 80ull * 1000000);
	assert_true(two[0].took_ns < 10ull * 1000000000ull);
}

/* The hint of coordinator tag with writes in flight, offering ms of
 * patience (STORE_HINT_PATIENCE units, rounded down). */
static uint32_t patient_hint_of(uint32_t tag, uint32_t ms)
{
	uint32_t units = ms * 1000000u / STORE_HINT_PATIENCE_UNIT_NS;
	assert_true(units <= STORE_HINT_PATIENCE_MAX);
	return tag << 24 | units << STORE_HINT_PATIENCE_SHIFT;
}

/*
 * A coordinator with a queue of writes in flight offers patience (its
 * hints say nothing of which records come next, as at QD32): a record is
 * held for that long, never by its own caller's sync, and the records
 * arriving meanwhile share its sync. The hold is bounded by the least
 * patience offered and by the store's cap; a coordinator offering none
 * (a lone write) ends it for its own records.
 */
static void test_patient_writes_share_a_sync_for_as_long_as_offered(void **state)
{
	struct fixture *f = *state;
	create_frags(f);
	store_test_busy_ns(f->st, 20ull * 1000000000ull); /* only the patience bounds it */
	/* One write offering 15 ms, nothing after it: held about that long. */
	uint64_t took = one_hinted_write(f, 0, patient_hint_of(4, 15));
	print_message("# a write offering 15 ms of patience took %.1f ms\n", (double)took / 1e6);
	assert_true(took >= 12ull * 1000000);
	assert_true(took < 10ull * 1000000000ull);

	/* Four writes of one coordinator offering 15 ms, arriving 1 ms apart:
	 * one sync for all. */
	struct store_stats a, b;
	assert_int_equal(store_get_stats(f->st, &a), 0);
	struct announced w[4];
	int turn = 0;
	for (int i = 0; i < 4; i++)
		w[i] = (struct announced){.st = f->st,
					  .k = 1 + i,
					  .write = true,
					  .wait_ms = i ? 1 : 0,
					  .hinted = true,
					  .hint = patient_hint_of(4, 15),
					  .turn = &turn,
					  .order = i};
	run_announced(f, w, 4);
	assert_int_equal(store_get_stats(f->st, &b), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(w[i].result, 0);
	print_message("# 4 patient writes 1 ms apart: %llu sync(s), %llu hold(s), %llu led\n",
		      (unsigned long long)(b.syncs - a.syncs),
		      (unsigned long long)(b.holds - a.holds), (unsigned long long)(b.led - a.led));
	assert_int_equal(b.syncs - a.syncs, 1);
	assert_int_equal(b.led - a.led, 0);
	expect_announced_data(f, 5);

	/* The store's cap bounds what a coordinator offers. */
	store_test_busy_ns(f->st, 1000000);
	took = one_hinted_write(f, 5, patient_hint_of(4, 15));
	print_message("# with a 1 ms cap it took %.1f ms\n", (double)took / 1e6);
	assert_true(took < 12ull * 1000000);

	/* The coordinator's queue drained: its next hint offers nothing, and
	 * its lone write is synced at once by its caller. */
	store_test_busy_ns(f->st, 20ull * 1000000000ull);
	assert_int_equal(store_get_stats(f->st, &a), 0);
	took = one_hinted_write(f, 6, hint_of(4, 0));
	assert_int_equal(store_get_stats(f->st, &b), 0);
	print_message("# then a lone write took %.1f ms (led %llu)\n", (double)took / 1e6,
		      (unsigned long long)(b.led - a.led));
	assert_int_equal(b.led - a.led, 1);
}

int main(void)
{
	sd_log_set_level(SD_LOG_CRIT); /* the damage tests log errors on purpose */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_commit_shares_syncs_between_writers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_lone_write_is_synced_by_its_caller, setup,
						teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoints_while_callers_lead, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_announced_writes_share_one_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(
		test_an_announced_request_that_writes_nothing_releases_the_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hinted_writes_share_one_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_hints_never_hold_a_lone_write_and_a_stale_one_is_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_patient_writes_share_a_sync_for_as_long_as_offered,
					    setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_batch_keeps_acknowledged_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unsynced_batch_is_replayed_whole_or_not_at_all,
						setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crash_after_record_before_apply_is_replayed, setup,
					    teardown),
		cmocka_unit_test_setup_teardown(test_crash_mid_apply_is_completed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_checkpoint_after_sync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_checkpoint_mid_new_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_replay_of_thousands_of_records_after_kill_9,
						setup_nosync, teardown),
		cmocka_unit_test_setup_teardown(
			test_flipped_byte_in_the_log_tail_drops_that_record_and_its_fragment, setup_nosync,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_flipped_byte_in_the_log_middle_removes_what_it_could_have_touched,
			setup_nosync, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
