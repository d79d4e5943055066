/* test_store.c - unit tests of the local object store: data, sparseness, checksums, versions, crash recovery, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store.h"
#include "sheep/store/store_test.h"
#define STORE_FIXTURE_PREFIX "/tmp/sd-store-test"
#include "tests/unit/store_fixture.h"

#define MiB (1u << 20)

static void fill_random(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rng_next(&s) >> 24);
}

static struct store_meta meta_of(uint64_t oid, uint8_t idx, uint32_t frag_size, uint64_t version)
{
	struct store_meta m = {.oid = oid, .idx = idx, .copy_policy = 0x22, .nr_copies = 6,
			       .frag_size = frag_size, .version = version};
	return m;
}

static void flip_byte_at(struct fixture *f, uint64_t oid, uint8_t idx, uint64_t file_off)
{
	char path[256];
	assert_int_equal(store_test_frag_path(f->st, oid, idx, path, sizeof(path)), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b = 0;
	assert_true(pread(fd, &b, 1, (off_t)file_off) >= 0);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)file_off), 1);
	close(fd);
}

static void test_round_trip_whole_and_partial_reads(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 4 * MiB;
	uint8_t *w = malloc(fs), *r = malloc(fs);
	fill_random(w, fs, 1);
	struct store_meta m = meta_of(0x7c2b2500000001ULL, 3, fs, 42);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 3, r, 0, fs, &v), 0);
	assert_true(v == 42);
	assert_memory_equal(w, r, fs);
	/* unaligned ranges, within one block and across many */
	const uint32_t offs[] = {1, 4095, 4096, 4097, 12345, fs - 1, fs - 5000};
	const uint32_t lens[] = {1, 2, 4096, 9000, 100000, 1, 5000};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		memset(r, 0xee, lens[i]);
		assert_int_equal(store_read(f->st, m.oid, 3, r, offs[i], lens[i], NULL), 0);
		assert_memory_equal(w + offs[i], r, lens[i]);
	}
	struct store_meta st;
	assert_int_equal(store_stat(f->st, m.oid, 3, &st), 0);
	assert_true(st.oid == m.oid && st.idx == 3 && st.copy_policy == 0x22 &&
		    st.nr_copies == 6 && st.frag_size == fs && st.version == 42);
	assert_true(st.disk_bytes >= fs);
	assert_int_equal(store_verify(f->st, m.oid, 3), 0);
	/* survives a reopen */
	reopen(f);
	memset(r, 0, fs);
	assert_int_equal(store_read(f->st, m.oid, 3, r, 0, fs, &v), 0);
	assert_memory_equal(w, r, fs);
	free(w);
	free(r);
}

/*
 * The largest folio, in pages, holding any of the first len bytes of the
 * file at path in the page cache (mapped and faulted in here): a compound
 * page's head and its tails in /proc/kpageflags. -1 when this process
 * cannot see page frames (not root).
 */
static int largest_folio_pages(const char *path, size_t len)
{
	int fd = open(path, O_RDONLY);
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
	assert_true(fd >= 0);
	if (pm < 0 || kf < 0) {
		close(fd);
		return -1;
	}
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	volatile uint8_t *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	int best = 0, run = 0;
	for (size_t i = 0; i < len / pg; i++) {
		(void)m[i * pg]; /* map the cached page */
		uint64_t e = 0, fl = 0;
		uintptr_t va = (uintptr_t)m + i * pg;
		assert_int_equal(pread(pm, &e, 8, (off_t)(va / pg * 8)), 8);
		uint64_t pfn = e & ((1ull << 55) - 1);
		if (!(e >> 63) || !pfn) {
			best = -1; /* no frame numbers without CAP_SYS_ADMIN */
			break;
		}
		assert_int_equal(pread(kf, &fl, 8, (off_t)(pfn * 8)), 8);
		bool tail = fl & (1ull << 16); /* KPF_COMPOUND_TAIL */
		run = tail ? run + 1 : 1;      /* a head or a small folio starts a run */
		if (run > best)
			best = run;
	}
	munmap((void *)m, len);
	close(kf);
	close(pm);
	close(fd);
	return best;
}

/*
 * A large write leaves the fragment in small page-cache folios: on Linux
 * 6.16+ ext4 makes folios of up to 2 MiB for one large write, and every
 * later small write into such a folio walks its 512 block buffers, which
 * cost 4 KiB random writes 13 % of all CPU time after a sequential fill
 * (store_pwrite_full writes 64 KiB at a time). On kernels without large
 * folios every folio is one page and this holds trivially.
 */
static void test_large_writes_leave_small_folios(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 4 * MiB;
	uint8_t *w = malloc(fs), *r = malloc(fs);
	fill_random(w, fs, 7);
	struct store_meta m = meta_of(0x7c2b2500000007ULL, 1, fs, 1);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	fill_random(w, fs, 8);
	assert_int_equal(store_write(f->st, m.oid, 1, 1, 2, w, 0, fs), 0);
	assert_int_equal(store_test_checkpoint(f->st), 0); /* applied to the file */
	char path[256];
	assert_int_equal(store_test_frag_path(f->st, m.oid, 1, path, sizeof(path)), 0);
	int pages = largest_folio_pages(path, fs);
	assert_true(pages != -1); /* the unit tests run as root */
	assert_in_range(pages, 1, 16);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 1, r, 0, fs, &v), 0);
	assert_true(v == 2);
	assert_memory_equal(w, r, fs);
	free(w);
	free(r);
}

static void test_unwritten_ranges_read_zero_and_take_no_space(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 1u << 31; /* the largest fragment: a 2 GiB object, copies */
	uint8_t w[5000], r[9000], zeros[9000] = {0};
	fill_random(w, sizeof(w), 2);
	struct store_meta m = meta_of(7, 0, fs, 1);
	assert_int_equal(store_create(f->st, &m, w, fs - 5000, 5000), 0);
	assert_int_equal(store_read(f->st, 7, 0, r, fs - 5000, 5000, NULL), 0);
	assert_memory_equal(w, r, 5000);
	assert_int_equal(store_read(f->st, 7, 0, r, fs - 9000, 4000, NULL), 0);
	assert_memory_equal(zeros, r, 4000);
	assert_int_equal(store_read(f->st, 7, 0, r, 123456789, 9000, NULL), 0);
	assert_memory_equal(zeros, r, 9000);
	struct store_meta st;
	assert_int_equal(store_stat(f->st, 7, 0, &st), 0);
	assert_true(st.disk_bytes <= 64 * 1024); /* header + a table page + 2 blocks */
	assert_int_equal(store_verify(f->st, 7, 0), 0);

	/* A create whose buffer is all zeros allocates no data blocks. */
	uint8_t *z = calloc(1, 4 * MiB);
	m = meta_of(8, 1, 4 * MiB, 1);
	assert_int_equal(store_create(f->st, &m, z, 0, 4 * MiB), 0);
	assert_int_equal(store_stat(f->st, 8, 1, &st), 0);
	assert_true(st.disk_bytes <= 8192);
	/* Writing zeros over data gives the space back. */
	uint8_t *d = malloc(MiB);
	fill_random(d, MiB, 3);
	assert_int_equal(store_write(f->st, 8, 1, STORE_ANY_VERSION, 2, d, MiB, MiB), 0);
	assert_int_equal(store_stat(f->st, 8, 1, &st), 0);
	assert_true(st.disk_bytes >= MiB);
	assert_int_equal(store_write(f->st, 8, 1, 2, 3, z, MiB, MiB), 0);
	assert_int_equal(store_stat(f->st, 8, 1, &st), 0);
	assert_true(st.disk_bytes <= 16384);
	assert_int_equal(store_read(f->st, 8, 1, d, MiB - 100, MiB, NULL), 0);
	assert_memory_equal(d, z, MiB);
	assert_int_equal(store_verify(f->st, 8, 1), 0);
	free(z);
	free(d);
}

static void test_partial_writes_match_a_plain_model(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = MiB + 1000; /* not a multiple of the block size */
	uint8_t *model = calloc(1, fs), *r = malloc(fs), *w = malloc(fs);
	uint64_t s = 99;
	struct store_meta m = meta_of(11, 2, fs, 0);
	assert_int_equal(store_create(f->st, &m, NULL, 0, 0), 0);
	for (int i = 0; i < 300; i++) {
		uint32_t off = (uint32_t)(rng_next(&s) % fs);
		uint32_t max = fs - off;
		uint32_t len = (uint32_t)(rng_next(&s) % (i % 10 == 0 ? max : SD_MIN(max, 20000u))) + 1;
		if (len > max)
			len = max;
		if (i % 7 == 0)
			memset(w, 0, len); /* zeros too: punched holes must read back right */
		else
			fill_random(w, len, rng_next(&s));
		assert_int_equal(store_write(f->st, 11, 2, (uint64_t)i, (uint64_t)i + 1, w, off, len),
				 0);
		memcpy(model + off, w, len);
		uint32_t ro = (uint32_t)(rng_next(&s) % fs), rl = SD_MIN(fs - ro, 30000u);
		assert_int_equal(store_read(f->st, 11, 2, r, ro, rl, NULL), 0);
		assert_memory_equal(model + ro, r, rl);
	}
	uint64_t v;
	assert_int_equal(store_read(f->st, 11, 2, r, 0, fs, &v), 0);
	assert_true(v == 300);
	assert_memory_equal(model, r, fs);
	assert_int_equal(store_verify(f->st, 11, 2), 0);
	free(model);
	free(r);
	free(w);
}

static void test_flipped_byte_on_disk_reads_as_eio(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 64 * 1024;
	uint8_t w[64 * 1024], r[64 * 1024];
	fill_random(w, sizeof(w), 5);
	struct store_meta m = meta_of(21, 0, fs, 1);
	assert_int_equal(store_create(f->st, &m, w, 0, 32 * 1024), 0); /* blocks 8.. unwritten */
	flip_byte_at(f, 21, 0, store_test_file_offset(fs, 3 * 4096 + 17));
	assert_int_equal(store_read(f->st, 21, 0, r, 3 * 4096 + 100, 10, NULL), -EIO);
	assert_int_equal(store_read(f->st, 21, 0, r, 0, fs, NULL), -EIO);
	/* blocks not touched by the damage still read fine */
	assert_int_equal(store_read(f->st, 21, 0, r, 0, 3 * 4096, NULL), 0);
	assert_memory_equal(w, r, 3 * 4096);
	assert_int_equal(store_read(f->st, 21, 0, r, 4 * 4096, 4096, NULL), 0);
	assert_memory_equal(w + 4 * 4096, r, 4096);
	assert_int_equal(store_verify(f->st, 21, 0), -EIO);
	/* a write that must read the damaged block (partial) refuses too */
	assert_int_equal(store_write(f->st, 21, 0, STORE_ANY_VERSION, 2, w, 3 * 4096 + 1, 5), -EIO);
	/* a whole-block rewrite repairs it */
	assert_int_equal(store_write(f->st, 21, 0, STORE_ANY_VERSION, 2, w + 3 * 4096, 3 * 4096,
				     4096),
			 0);
	assert_int_equal(store_verify(f->st, 21, 0), 0);

	/* damage in a never-written block (a hole) is caught too */
	flip_byte_at(f, 21, 0, store_test_file_offset(fs, 10 * 4096 + 5));
	assert_int_equal(store_read(f->st, 21, 0, r, 10 * 4096, 1, NULL), -EIO);
	assert_int_equal(store_verify(f->st, 21, 0), -EIO);

	/* and in the header */
	struct store_meta st;
	m = meta_of(22, 0, fs, 1);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	flip_byte_at(f, 22, 0, 33); /* inside the version field */
	assert_int_equal(store_read(f->st, 22, 0, r, 0, 10, NULL), -EIO);
	assert_int_equal(store_stat(f->st, 22, 0, &st), -EIO);
}

static void test_stale_expected_version_writes_nothing(void **state)
{
	struct fixture *f = *state;
	uint8_t a[8192], b[8192], r[8192];
	fill_random(a, sizeof(a), 6);
	fill_random(b, sizeof(b), 7);
	struct store_meta m = meta_of(31, 4, 8192, 5);
	assert_int_equal(store_create(f->st, &m, a, 0, 8192), 0);
	assert_int_equal(store_write(f->st, 31, 4, 4, 9, b, 0, 8192), -ESTALE);
	uint64_t v;
	assert_int_equal(store_read(f->st, 31, 4, r, 0, 8192, &v), 0);
	assert_true(v == 5);
	assert_memory_equal(a, r, 8192);
	assert_int_equal(store_write(f->st, 31, 4, 5, 6, b, 100, 50), 0);
	/* a version bump alone changes no data */
	assert_int_equal(store_write(f->st, 31, 4, 6, 7, NULL, 0, 0), 0);
	assert_int_equal(store_read(f->st, 31, 4, r, 0, 8192, &v), 0);
	assert_true(v == 7);
	memcpy(a + 100, b, 50);
	assert_memory_equal(a, r, 8192);
	reopen(f);
	assert_int_equal(store_read(f->st, 31, 4, r, 0, 8192, &v), 0);
	assert_true(v == 7);
}

/* Write new content (spanning data and zero runs) with a crash at where, recover, read. */
static void crash_and_recover(struct fixture *f, enum store_crash where, bool expect_new)
{
	const uint32_t fs = 256 * 1024;
	uint8_t *old = malloc(fs), *neu = malloc(fs), *r = malloc(fs);
	fill_random(old, fs, 8);
	fill_random(neu, fs, 9);
	memset(neu + 40000, 0, 50000); /* a run of zero blocks in the middle */
	struct store_meta m = meta_of(41, 1, fs, 10);
	assert_int_equal(store_create(f->st, &m, old, 0, fs), 0);
	store_test_set_crash(f->st, where);
	assert_int_equal(store_write(f->st, 41, 1, 10, 11, neu + 1000, 1000, fs - 3000),
			 -ECANCELED);
	reopen(f);
	uint64_t v;
	assert_int_equal(store_read(f->st, 41, 1, r, 0, fs, &v), 0);
	if (expect_new) {
		memcpy(old + 1000, neu + 1000, fs - 3000);
		assert_true(v == 11);
	} else {
		assert_true(v == 10);
	}
	assert_memory_equal(old, r, fs);
	assert_int_equal(store_verify(f->st, 41, 1), 0);
	/* the journal is empty now: a second reopen changes nothing */
	reopen(f);
	assert_int_equal(store_read(f->st, 41, 1, r, 0, fs, &v), 0);
	assert_memory_equal(old, r, fs);
	free(old);
	free(neu);
	free(r);
}

static void test_intent_left_before_apply_is_replayed_at_open(void **state)
{
	crash_and_recover(*state, STORE_CRASH_AFTER_INTENT, true);
}

static void test_write_torn_mid_apply_is_completed_at_open(void **state)
{
	crash_and_recover(*state, STORE_CRASH_MID_APPLY, true);
}

static void test_torn_intent_record_is_ignored_at_open(void **state)
{
	crash_and_recover(*state, STORE_CRASH_TORN_INTENT, false);
}

static void test_intent_of_a_recreated_fragment_is_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t a[4096], b[4096], c[4096], r[4096];
	fill_random(a, 4096, 10);
	fill_random(b, 4096, 11);
	fill_random(c, 4096, 12);
	struct store_meta m = meta_of(51, 0, 4096, 1);
	assert_int_equal(store_create(f->st, &m, a, 0, 4096), 0);
	store_test_set_crash(f->st, STORE_CRASH_AFTER_INTENT);
	assert_int_equal(store_write(f->st, 51, 0, 1, 2, b, 0, 4096), -ECANCELED);
	assert_int_equal(store_remove(f->st, 51, 0), 0);
	m.version = 7;
	assert_int_equal(store_create(f->st, &m, c, 0, 4096), 0);
	reopen(f);
	uint64_t v;
	assert_int_equal(store_read(f->st, 51, 0, r, 0, 4096, &v), 0);
	assert_true(v == 7);
	assert_memory_equal(c, r, 4096);
}

static int count_cb(const struct store_meta *m, void *arg)
{
	uint64_t *acc = arg;
	acc[0]++;
	acc[1] += m->disk_bytes;
	acc[2] ^= m->oid * 31 + m->idx;
	return 0;
}

static void test_interrupted_create_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	uint8_t a[8192], r[8192];
	fill_random(a, sizeof(a), 13);
	struct store_meta m = meta_of(61, 5, 8192, 1);
	store_test_set_crash(f->st, STORE_CRASH_BEFORE_RENAME);
	assert_int_equal(store_create(f->st, &m, a, 0, 8192), -ECANCELED);
	struct store_meta st;
	assert_int_equal(store_stat(f->st, 61, 5, &st), -ENOENT);
	assert_int_equal(store_read(f->st, 61, 5, r, 0, 10, NULL), -ENOENT);
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s/obj/.tmp.%016x_%02x", f->dir, 61, 5);
	struct stat sb;
	assert_int_equal(stat(tmp, &sb), 0); /* the half-made file is there ... */
	uint64_t acc[3] = {0};
	assert_int_equal(store_for_each(f->st, count_cb, acc), 0);
	assert_true(acc[0] == 0); /* ... and not a fragment */
	reopen(f);
	assert_int_equal(stat(tmp, &sb), -1); /* cleaned at open */
	assert_int_equal(store_stat(f->st, 61, 5, &st), -ENOENT);
	assert_int_equal(store_create(f->st, &m, a, 0, 8192), 0);
	assert_int_equal(store_read(f->st, 61, 5, r, 0, 8192, NULL), 0);
	assert_memory_equal(a, r, 8192);
	assert_int_equal(store_create(f->st, &m, a, 0, 8192), -EEXIST);
}

static void test_replace_swaps_a_whole_fragment_atomically(void **state)
{
	struct fixture *f = *state;
	uint8_t a[8192], b[8192], r[8192];
	fill_random(a, sizeof(a), 16);
	fill_random(b, sizeof(b), 17);
	struct store_meta m = meta_of(65, 2, 8192, 4);
	assert_int_equal(store_replace(f->st, &m, a, 0, 8192), 0); /* absent: a create */
	uint64_t v, used0, used1;
	assert_int_equal(store_space(f->st, NULL, &used0), 0);
	/* interrupted before the rename: the old fragment is whole */
	m.version = 9;
	store_test_set_crash(f->st, STORE_CRASH_BEFORE_RENAME);
	assert_int_equal(store_replace(f->st, &m, b, 0, 4096), -ECANCELED);
	reopen(f);
	assert_int_equal(store_read(f->st, 65, 2, r, 0, 8192, &v), 0);
	assert_true(v == 4);
	assert_memory_equal(a, r, 8192);
	assert_int_equal(store_replace(f->st, &m, b, 0, 4096), 0);
	assert_int_equal(store_read(f->st, 65, 2, r, 0, 8192, &v), 0);
	assert_true(v == 9);
	assert_memory_equal(b, r, 4096);
	memset(a, 0, 4096);
	assert_memory_equal(a, r + 4096, 4096); /* the rest is zeros, not the old data */
	assert_int_equal(store_space(f->st, NULL, &used1), 0);
	assert_true(used1 < used0); /* 4 KiB of data instead of 8 */
	m.frag_size = 0;
	assert_int_equal(store_replace(f->st, &m, b, 0, 0), -EINVAL);
	assert_int_equal(store_read(f->st, 65, 2, r, 0, 4096, &v), 0);
	assert_memory_equal(b, r, 4096);
}

static void test_prepared_write_changes_nothing_until_commit(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 64 * 1024;
	uint8_t *w = malloc(fs), *p = malloc(8192), *r = malloc(fs);
	fill_random(w, fs, 11);
	fill_random(p, 8192, 12);
	struct store_meta m = meta_of(301, 2, fs, 7);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);

	/* A range write prepared against version 7 as version 8: the fragment
	 * still reads old, the pending record says what will come. */
	m.version = 8;
	assert_int_equal(store_prepare(f->st, &m, false, 7, 0xabc, 2000, p, 5000, 8192), 0);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 2, r, 0, fs, &v), 0);
	assert_int_equal(v, 7);
	assert_memory_equal(r, w, fs);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, m.oid, 2, &pd), 0);
	assert_int_equal(pd.new_version, 8);
	assert_int_equal(pd.write_id, 0xabc);
	assert_int_equal(pd.expect_version, 7);

	/* It survives a restart, and commits after it. */
	reopen(f);
	assert_int_equal(store_pending(f->st, m.oid, 2, &pd), 0);
	assert_int_equal(store_commit(f->st, m.oid, 2, 8, 0xabc), 0);
	memcpy(w + 5000, p, 8192);
	assert_int_equal(store_read(f->st, m.oid, 2, r, 0, fs, &v), 0);
	assert_int_equal(v, 8);
	assert_memory_equal(r, w, fs);
	struct store_meta st;
	assert_int_equal(store_stat(f->st, m.oid, 2, &st), 0);
	assert_int_equal(st.write_id, 0xabc);
	assert_int_equal(store_pending(f->st, m.oid, 2, &pd), -ENOENT);
	/* A second commit of the same write is a no-op success; another
	 * write's commit finds nothing. */
	assert_int_equal(store_commit(f->st, m.oid, 2, 8, 0xabc), 0);
	assert_int_equal(store_commit(f->st, m.oid, 2, 9, 0xdef), -ENOENT);
	assert_int_equal(store_read(f->st, m.oid, 2, r, 0, fs, &v), 0);
	assert_memory_equal(r, w, fs);
	free(w);
	free(p);
	free(r);
}

/*
 * Last-changed versions (store_lc): a prepared range write's record is
 * kept with it (also across a restart), becomes the fragment's on commit
 * and is read back by stat and read; a write without one clears it; a
 * fragment created with one keeps it; one from before (never given one)
 * has none.
 */
static void test_last_changed_record_follows_the_version(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 64 * 1024;
	uint8_t *w = malloc(fs), *p = malloc(4096), *r = malloc(fs);
	fill_random(w, fs, 21);
	fill_random(p, 4096, 22);
	struct store_meta m = meta_of(401, 4, fs, 7), st;
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_false(st.lc.valid);

	m.version = 9;
	m.lc = (struct store_lc){.valid = 1, .delta = {2, 0, 5, 9}};
	assert_int_equal(store_prepare_ex(f->st, &m, false, 7, 0x77, 2000, STORE_PREP_EARLY, p,
					  4096, 4096),
			 0);
	struct store_pending pd;
	reopen(f);
	assert_int_equal(store_pending(f->st, m.oid, 4, &pd), 0);
	assert_true(pd.lc.valid);
	assert_memory_equal(pd.lc.delta, m.lc.delta, STORE_LC_MAX);
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_false(st.lc.valid); /* not the fragment's until committed */

	assert_int_equal(store_commit(f->st, m.oid, 4, 9, 0x77), 0);
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_int_equal(st.version, 9);
	assert_true(st.lc.valid);
	assert_memory_equal(st.lc.delta, m.lc.delta, STORE_LC_MAX);
	struct store_lc lc;
	uint64_t v = 0;
	assert_int_equal(store_read_lc(f->st, m.oid, 4, r, 0, fs, &v, &lc), 0);
	assert_int_equal(v, 9);
	assert_true(lc.valid);
	assert_int_equal(lc.delta[3], 9);
	reopen(f); /* the applied header keeps it */
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_true(st.lc.valid);
	assert_int_equal(st.lc.delta[2], 5);

	/* A write that brings none clears it; one that brings one sets it. */
	assert_int_equal(store_write(f->st, m.oid, 4, 9, 10, p, 0, 4096), 0);
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_false(st.lc.valid);
	const struct store_lc two = {.valid = 1, .delta = {1, 1, 0, 0}};
	assert_int_equal(store_write_lc(f->st, m.oid, 4, 10, 11, &two, p, 0, 4096), 0);
	reopen(f);
	assert_int_equal(store_stat(f->st, m.oid, 4, &st), 0);
	assert_true(st.lc.valid);
	assert_memory_equal(st.lc.delta, two.delta, STORE_LC_MAX);

	/* Created with one (recovery installing a parity). */
	struct store_meta c = meta_of(402, 5, fs, 3);
	c.lc = two;
	assert_int_equal(store_create(f->st, &c, w, 0, fs), 0);
	assert_int_equal(store_stat(f->st, c.oid, 5, &st), 0);
	assert_true(st.lc.valid);
	assert_int_equal(st.lc.delta[0], 1);
	free(w);
	free(p);
	free(r);
}

static void test_prepare_checks_version_and_slot(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 16 * 1024;
	uint8_t *w = malloc(fs), *r = malloc(fs);
	fill_random(w, fs, 21);
	struct store_meta m = meta_of(302, 0, fs, 3);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	m.version = 4;
	/* Wrong base version, missing fragment, range past the end. */
	assert_int_equal(store_prepare(f->st, &m, false, 2, 1, 2000, w, 0, 4096), -ESTALE);
	struct store_meta other = meta_of(303, 0, fs, 4);
	assert_int_equal(store_prepare(f->st, &other, false, 3, 1, 2000, w, 0, 4096), -ENOENT);
	assert_int_equal(store_prepare(f->st, &m, false, 3, 1, 2000, w, fs - 10, 4096), -EINVAL);
	/* A young pending write of another id holds the slot; an old one is
	 * replaced; the same id may prepare again. */
	assert_int_equal(store_prepare(f->st, &m, false, 3, 1, 2000, w, 0, 4096), 0);
	assert_int_equal(store_prepare(f->st, &m, false, 3, 2, 60000, w, 0, 4096), -EBUSY);
	assert_int_equal(store_prepare(f->st, &m, false, 3, 1, 2000, w, 0, 4096), 0);
	assert_int_equal(store_prepare(f->st, &m, false, 3, 2, 0, w + 4096, 0, 4096), 0);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, m.oid, 0, &pd), 0);
	assert_int_equal(pd.write_id, 2);
	/* The fragment moved on before the commit: it can never apply. */
	assert_int_equal(store_write(f->st, m.oid, 0, 3, 5, w, 0, 16), 0);
	assert_int_equal(store_commit(f->st, m.oid, 0, 4, 2), -ESTALE);
	assert_int_equal(store_pending(f->st, m.oid, 0, &pd), -ENOENT);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 0, r, 0, fs, &v), 0);
	assert_int_equal(v, 5);
	assert_memory_equal(r, w, fs);
	/* Abort drops only the named write. */
	m.version = 6;
	assert_int_equal(store_prepare(f->st, &m, false, 5, 7, 2000, w, 0, 4096), 0);
	assert_int_equal(store_abort(f->st, m.oid, 0, 8), -ENOENT);
	assert_int_equal(store_abort(f->st, m.oid, 0, 7), 0);
	assert_int_equal(store_pending(f->st, m.oid, 0, &pd), -ENOENT);
	free(w);
	free(r);
}

/* An early-ack prepared write (it may be acknowledged) is never replaced
 * by another write's prepare, however old; it keeps its flag across a
 * restart (replay) and ends only by commit or abort. */
static void test_early_prepare_is_never_replaced(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 16 * 1024;
	uint8_t *w = malloc(fs), *r = malloc(fs);
	fill_random(w, fs, 23);
	struct store_meta m = meta_of(305, 1, fs, 3);
	assert_int_equal(store_create(f->st, &m, w, 0, fs), 0);
	m.version = 4;
	assert_int_equal(store_prepare_ex(f->st, &m, false, 3, 11, 2000, STORE_PREP_EARLY,
					  w + 4096, 0, 4096), 0);
	/* Grace 0 would replace an ordinary pending write at once. */
	assert_int_equal(store_prepare(f->st, &m, false, 3, 12, 0, w, 0, 4096), -EBUSY);
	reopen(f);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, m.oid, 1, &pd), 0);
	assert_int_equal(pd.write_id, 11);
	assert_int_equal(pd.flags & STORE_PREP_EARLY, STORE_PREP_EARLY);
	assert_int_equal(store_prepare(f->st, &m, false, 3, 12, 0, w, 0, 4096), -EBUSY);
	assert_int_equal(store_commit(f->st, m.oid, 1, 4, 11), 0);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 1, r, 0, 4096, &v), 0);
	assert_int_equal(v, 4);
	assert_memory_equal(r, w + 4096, 4096);
	/* An ordinary prepare carries no flag. */
	m.version = 5;
	assert_int_equal(store_prepare(f->st, &m, false, 4, 13, 2000, w, 0, 4096), 0);
	assert_int_equal(store_pending(f->st, m.oid, 1, &pd), 0);
	assert_int_equal(pd.flags, 0);
	free(w);
	free(r);
}

static void test_prepared_whole_fragment_replaces_on_commit(void **state)
{
	struct fixture *f = *state;
	const uint32_t fs = 32 * 1024;
	uint8_t *a = malloc(fs), *b = malloc(fs), *r = malloc(fs);
	fill_random(a, fs, 31);
	fill_random(b, fs, 32);
	struct store_meta m = meta_of(304, 5, fs, 10);
	assert_int_equal(store_create(f->st, &m, a, 0, fs), 0);
	m.version = 11;
	assert_int_equal(store_prepare(f->st, &m, true, STORE_ANY_VERSION, 99, 2000, b, 0, fs), 0);
	uint64_t v = 0;
	assert_int_equal(store_read(f->st, m.oid, 5, r, 0, fs, &v), 0);
	assert_int_equal(v, 10);
	assert_memory_equal(r, a, fs);
	assert_int_equal(store_commit(f->st, m.oid, 5, 11, 99), 0);
	assert_int_equal(store_read(f->st, m.oid, 5, r, 0, fs, &v), 0);
	assert_int_equal(v, 11);
	assert_memory_equal(r, b, fs);
	/* A whole write also creates a fragment that was not there; removing
	 * a fragment drops its pending write. */
	struct store_meta n = meta_of(305, 1, fs, 1);
	assert_int_equal(store_prepare(f->st, &n, true, STORE_ANY_VERSION, 5, 2000, a, 0, fs), 0);
	assert_int_equal(store_read(f->st, n.oid, 1, r, 0, fs, &v), -ENOENT);
	assert_int_equal(store_commit(f->st, n.oid, 1, 1, 5), 0);
	assert_int_equal(store_read(f->st, n.oid, 1, r, 0, fs, &v), 0);
	assert_memory_equal(r, a, fs);
	n.version = 2;
	assert_int_equal(store_prepare(f->st, &n, true, STORE_ANY_VERSION, 6, 2000, b, 0, fs), 0);
	assert_int_equal(store_remove(f->st, n.oid, 1), 0);
	struct store_pending pd;
	assert_int_equal(store_pending(f->st, n.oid, 1, &pd), -ENOENT);
	free(a);
	free(b);
	free(r);
}

static void test_bad_ranges_are_einval_and_change_nothing(void **state)
{
	struct fixture *f = *state;
	uint8_t a[8192], r[8192];
	fill_random(a, sizeof(a), 14);
	struct store_meta m = meta_of(71, 0, 8192, 3);
	assert_int_equal(store_create(f->st, &m, a, 0, 8192), 0);
	assert_int_equal(store_read(f->st, 71, 0, r, 8000, 193, NULL), -EINVAL);
	assert_int_equal(store_read(f->st, 71, 0, r, UINT32_MAX, 2, NULL), -EINVAL);
	assert_int_equal(store_read(f->st, 71, 0, r, 8192, 1, NULL), -EINVAL);
	assert_int_equal(store_read(f->st, 71, 0, NULL, 0, 1, NULL), -EINVAL);
	assert_int_equal(store_read(f->st, 71, 0, r, 8192, 0, NULL), 0);
	assert_int_equal(store_write(f->st, 71, 0, 3, 4, r, 4096, 4097), -EINVAL);
	assert_int_equal(store_write(f->st, 71, 0, 3, 4, r, UINT32_MAX - 1, 4), -EINVAL);
	assert_int_equal(store_write(f->st, 71, 0, 3, 4, NULL, 0, 10), -EINVAL);
	uint64_t v;
	assert_int_equal(store_read(f->st, 71, 0, r, 0, 8192, &v), 0);
	assert_true(v == 3);
	assert_memory_equal(a, r, 8192);
	struct store_meta bad = meta_of(72, 0, 0, 1);
	assert_int_equal(store_create(f->st, &bad, NULL, 0, 0), -EINVAL);
	bad.frag_size = (1u << 31) + 4096;
	assert_int_equal(store_create(f->st, &bad, NULL, 0, 0), -EINVAL);
	bad.frag_size = 4096;
	assert_int_equal(store_create(f->st, &bad, a, 4000, 97), -EINVAL);
	assert_int_equal(store_create(f->st, &bad, NULL, 0, 1), -EINVAL);
	assert_int_equal(store_stat(f->st, 72, 0, &bad), -ENOENT);
	assert_int_equal(store_write(f->st, 73, 0, STORE_ANY_VERSION, 1, a, 0, 1), -ENOENT);
	assert_int_equal(store_read(f->st, 73, 0, r, 0, 1, NULL), -ENOENT);
	assert_int_equal(store_verify(f->st, 73, 0), -ENOENT);
	assert_int_equal(store_remove(f->st, 73, 0), -ENOENT);
	assert_int_equal(store_open("", false, &f->st), -EINVAL);
}

static void test_for_each_lists_fragments_and_space_adds_up(void **state)
{
	struct fixture *f = *state;
	uint8_t *a = malloc(MiB);
	fill_random(a, MiB, 15);
	uint64_t x = 0;
	for (int i = 0; i < 5; i++) {
		struct store_meta m = meta_of(0x100 + (uint64_t)i, (uint8_t)(i * 3), MiB, 1);
		assert_int_equal(store_create(f->st, &m, a, 0, (uint32_t)(i + 1) * 100000), 0);
		x ^= m.oid * 31 + m.idx;
	}
	/* junk in obj/ is not a fragment */
	char junk[256];
	snprintf(junk, sizeof(junk), "%s/obj/README", f->dir);
	FILE *fp = fopen(junk, "w");
	fputs("x", fp);
	fclose(fp);
	uint64_t acc[3] = {0}, total = 0, used = 0;
	assert_int_equal(store_for_each(f->st, count_cb, acc), 0);
	assert_true(acc[0] == 5);
	assert_true(acc[2] == x);
	assert_int_equal(store_space(f->st, &total, &used), 0);
	assert_true(total > 0 && used == acc[1]);
	assert_true(used >= 1500000 && used < 2000000);
	/* A version-only prepare and its commit (the bump of an unchanged
	 * fragment, which skips the space check) change no space; a range
	 * write into a hole adds a block: both stay counted exactly. */
	struct store_meta bm = meta_of(0x101, 3, MiB, 2);
	assert_int_equal(store_prepare(f->st, &bm, false, 1, 99, 2000, a, 0, 0), 0);
	assert_int_equal(store_commit(f->st, 0x101, 3, 2, 99), 0);
	uint64_t accb[3] = {0}, usedb = 0;
	assert_int_equal(store_for_each(f->st, count_cb, accb), 0);
	assert_int_equal(store_space(f->st, NULL, &usedb), 0);
	assert_true(usedb == accb[1] && usedb == used);
	assert_int_equal(store_write(f->st, 0x101, 3, 2, 3, a, 900000, 4096), 0);
	memset(accb, 0, sizeof(accb));
	assert_int_equal(store_for_each(f->st, count_cb, accb), 0);
	assert_int_equal(store_space(f->st, NULL, &used), 0);
	assert_true(used == accb[1] && used > usedb);
	assert_int_equal(store_remove(f->st, 0x100, 0), 0);
	uint64_t used2 = 0;
	assert_int_equal(store_space(f->st, NULL, &used2), 0);
	assert_true(used2 < used);
	reopen(f); /* the sum at open agrees */
	uint64_t used3 = 0, acc2[3] = {0};
	assert_int_equal(store_space(f->st, NULL, &used3), 0);
	assert_int_equal(store_for_each(f->st, count_cb, acc2), 0);
	assert_true(acc2[0] == 4 && used3 == acc2[1] && used3 == used2);
	assert_string_equal(store_dir(f->st), f->dir);
	free(a);
}

/* Threads write interleaved 100-byte chunks of the same fragments: a lost
 * update (two unserialised read-modify-writes of one block) shows up as a
 * mismatch with the model. */
#define NR_THREADS 4
#define CHUNK 100
#define TFRAG (64 * 1024)
struct thread_arg {
	struct store *st;
	uint8_t *model[3];
	int t;
};

static void *writer(void *p)
{
	struct thread_arg *a = p;
	uint64_t s = 1000 + (uint64_t)a->t;
	uint8_t w[CHUNK];
	for (int i = 0; i < 300; i++) {
		int k = (int)(rng_next(&s) % 3);
		uint32_t c = (uint32_t)(rng_next(&s) % (TFRAG / CHUNK / NR_THREADS)) * NR_THREADS +
			     (uint32_t)a->t;
		fill_random(w, CHUNK, rng_next(&s));
		if (store_write(a->st, 80 + (uint64_t)k, 0, STORE_ANY_VERSION, (uint64_t)i, w,
				c * CHUNK, CHUNK))
			return (void *)1;
		memcpy(a->model[k] + c * CHUNK, w, CHUNK);
	}
	return NULL;
}

/* Compare-and-swap increments through expect_version. */
static void *incrementer(void *p)
{
	struct thread_arg *a = p;
	for (int done = 0; done < 100;) {
		uint64_t v, cnt;
		if (store_read(a->st, 90, 0, &cnt, 0, 8, &v))
			return (void *)1;
		cnt++;
		int r = store_write(a->st, 90, 0, v, v + 1, &cnt, 0, 8);
		if (r == 0)
			done++;
		else if (r != -ESTALE)
			return (void *)1;
	}
	return NULL;
}

static void test_concurrent_writers_lose_no_update(void **state)
{
	struct fixture *f = *state;
	struct thread_arg args[NR_THREADS];
	pthread_t th[NR_THREADS];
	uint8_t *model[3], *r = malloc(TFRAG);
	for (int k = 0; k < 3; k++) {
		model[k] = calloc(1, TFRAG);
		struct store_meta m = meta_of(80 + (uint64_t)k, 0, TFRAG, 0);
		assert_int_equal(store_create(f->st, &m, NULL, 0, 0), 0);
	}
	for (int t = 0; t < NR_THREADS; t++) {
		args[t] = (struct thread_arg){.st = f->st, .t = t};
		memcpy(args[t].model, model, sizeof(model));
		pthread_create(&th[t], NULL, writer, &args[t]);
	}
	for (int t = 0; t < NR_THREADS; t++) {
		void *ret;
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	for (int k = 0; k < 3; k++) {
		assert_int_equal(store_read(f->st, 80 + (uint64_t)k, 0, r, 0, TFRAG, NULL), 0);
		assert_memory_equal(model[k], r, TFRAG);
		assert_int_equal(store_verify(f->st, 80 + (uint64_t)k, 0), 0);
		free(model[k]);
	}

	uint64_t zero = 0, cnt, v;
	struct store_meta m = meta_of(90, 0, 4096, 0);
	assert_int_equal(store_create(f->st, &m, &zero, 0, 8), 0);
	for (int t = 0; t < NR_THREADS; t++) {
		args[t] = (struct thread_arg){.st = f->st, .t = t};
		pthread_create(&th[t], NULL, incrementer, &args[t]);
	}
	for (int t = 0; t < NR_THREADS; t++) {
		void *ret;
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	assert_int_equal(store_read(f->st, 90, 0, &cnt, 0, 8, &v), 0);
	assert_true(cnt == NR_THREADS * 100);
	assert_true(v == NR_THREADS * 100);
	free(r);
}

/* Content of the kill -9 test's written range at a given version. */
static void pattern(uint8_t *buf, size_t len, uint64_t version, int k)
{
	fill_random(buf, len, version * 1000003 + (uint64_t)k);
}

#define KFRAG (64 * 1024)
#define KOFF 1000u
#define KLEN (KFRAG - 3000u)

/* Writes versions 1, 2, ... of every fragment until killed; says on ready_fd
 * when version 1 is complete, so the kill lands among later writes however
 * slowly the child starts (a loaded machine, a sanitizer build). */
static void killed_writer(const char *dir, int nfrags, int ready_fd)
{
	struct store *st;
	uint8_t *w = malloc(KLEN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (store_open(dir, true, &st))
		_exit(2);
	for (uint64_t v = 1;; v++) {
		for (int k = 0; k < nfrags; k++) {
			pattern(w, KLEN, v, k);
			if (store_write(st, 200 + (uint64_t)k, 0, STORE_ANY_VERSION, v, w, KOFF, KLEN))
				_exit(3);
		}
		if (v == 1 && write(ready_fd, "r", 1) != 1)
			_exit(4);
	}
}

static void test_kill_9_during_writes_leaves_each_fragment_old_or_new(void **state)
{
	struct fixture *f = *state;
	const int nfrags = 4;
	uint8_t *r = malloc(KFRAG), *want = malloc(KLEN), *zeros = calloc(1, KFRAG);
	for (int k = 0; k < nfrags; k++) {
		struct store_meta m = meta_of(200 + (uint64_t)k, 0, KFRAG, 0);
		assert_int_equal(store_create(f->st, &m, NULL, 0, 0), 0);
	}
	store_close(f->st);
	f->st = NULL;
	uint64_t s = (uint64_t)time(NULL);
	uint64_t max_v = 0;
	for (int round = 0; round < 20; round++) {
		int ready[2];
		assert_int_equal(pipe(ready), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			killed_writer(f->dir, nfrags, ready[1]);
		close(ready[1]);
		char c;
		assert_int_equal(read(ready[0], &c, 1), 1);
		close(ready[0]);
		usleep(10000 + (useconds_t)(rng_next(&s) % 40000));
		kill(pid, SIGKILL);
		int wst;
		waitpid(pid, &wst, 0);
		assert_true(WIFSIGNALED(wst));
		assert_int_equal(store_open(f->dir, true, &f->st), 0);
		for (int k = 0; k < nfrags; k++) {
			uint64_t v;
			assert_int_equal(store_read(f->st, 200 + (uint64_t)k, 0, r, 0, KFRAG, &v), 0);
			assert_memory_equal(r, zeros, KOFF);
			assert_memory_equal(r + KOFF + KLEN, zeros, KFRAG - KOFF - KLEN);
			if (v == 0) {
				assert_memory_equal(r + KOFF, zeros, KLEN);
			} else {
				pattern(want, KLEN, v, k);
				assert_memory_equal(r + KOFF, want, KLEN);
			}
			assert_int_equal(store_verify(f->st, 200 + (uint64_t)k, 0), 0);
			max_v = SD_MAX(max_v, v);
		}
		store_close(f->st);
		f->st = NULL;
	}
	print_message("# 20 kill -9 rounds, up to version %llu: every fragment old or new\n",
		      (unsigned long long)max_v);
	assert_true(max_v > 1);
	assert_int_equal(store_open(f->dir, f->nosync, &f->st), 0);
	free(r);
	free(want);
	free(zeros);
}

int main(void)
{
	sd_log_set_level(SD_LOG_CRIT); /* the corruption tests log errors on purpose */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_whole_and_partial_reads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unwritten_ranges_read_zero_and_take_no_space,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_writes_leave_small_folios, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_partial_writes_match_a_plain_model,
						setup_nosync, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_on_disk_reads_as_eio, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stale_expected_version_writes_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intent_left_before_apply_is_replayed_at_open,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_torn_mid_apply_is_completed_at_open,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_intent_record_is_ignored_at_open, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intent_of_a_recreated_fragment_is_dropped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_create_leaves_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_replace_swaps_a_whole_fragment_atomically,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepared_write_changes_nothing_until_commit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_checks_version_and_slot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_early_prepare_is_never_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_changed_record_follows_the_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prepared_whole_fragment_replaces_on_commit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ranges_are_einval_and_change_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_for_each_lists_fragments_and_space_adds_up,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers_lose_no_update,
						setup_nosync, teardown),
		cmocka_unit_test_setup_teardown(test_kill_9_during_writes_leaves_each_fragment_old_or_new,
						setup_nosync, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
