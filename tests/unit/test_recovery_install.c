/* test_recovery_install.c - unit tests of recovery_execute's install step when the local fragment
 * moves while a job runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "lib/log.h"
#include "recovery/recovery.h"

#define FS    4096u
#define SELF  0u
#define OTHER 1u

/* One 3-copy fragment on this node and its copy on another; what happens
 * to the local one while the job reads the copy is the test's to choose. */
struct fake {
	uint64_t local_version;
	uint8_t local[FS];
	uint64_t other_version;
	uint8_t other[FS];
	int64_t move_local_to; /* >= 0: the local fragment becomes this version during the read */
	int installs;
};

static int f_read(void *arg, uint32_t node, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		  uint32_t len, uint64_t *version, struct recovery_lc *lc)
{
	struct fake *f = arg;
	memset(lc, 0, sizeof(*lc));
	if (node != OTHER)
		return -ECONNREFUSED;
	memcpy(buf, f->other + off, len);
	*version = f->other_version;
	if (f->move_local_to >= 0) {
		f->local_version = (uint64_t)f->move_local_to;
		memset(f->local, 0x16, FS);
		f->move_local_to = -1;
	}
	return 0;
}

static int f_verify(void *arg, uint64_t oid, uint8_t idx, uint64_t *version)
{
	struct fake *f = arg;
	*version = f->local_version;
	return 0;
}

/* As sheep's io_install: replace only while still at have_version. */
static int f_install(void *arg, const struct recovery_job *job, const void *buf)
{
	struct fake *f = arg;
	if (f->local_version != job->have_version)
		return -ESTALE;
	memcpy(f->local, buf, FS);
	f->local_version = job->put_version;
	f->installs++;
	return 0;
}

static int f_decode(void *arg, uint8_t cp, uint32_t fs, const uint8_t *src_idx,
		    const void *const *src, uint8_t want, void *out)
{
	return -EINVAL; /* 3 copies: never decoded */
}

static void run_job(struct fake *f, struct recovery_job *job)
{
	struct recovery_io io = {
	    .arg = f, .read = f_read, .verify = f_verify, .install = f_install, .decode = f_decode};
	struct recovery_src src = {.node = OTHER, .idx = 0};
	*job = (struct recovery_job){.oid = 0x0001f87100000003ULL,
				     .version = 120,
				     .have_version = 117,
				     .frag_size = FS,
				     .idx = 0,
				     .copy_policy = 0,
				     .nr_copies = 3,
				     .kind = RECOVERY_REUSE,
				     .nr_src = 1,
				     .src = &src};
	assert_int_equal(recovery_execute(&io, job), 0);
}

/* The thrash case: the repair verified the local fragment at 117, copied
 * 120, and meanwhile the local fragment rolled back to 116 (a dropped
 * early-acknowledged write). It is still behind: 120 goes in. Before the
 * fix the install's -ESTALE read as "a newer write got there first" and
 * the fragment stayed at 116 with recovery done. */
static void test_fragment_rolled_back_meanwhile_gets_the_copy(void **state)
{
	struct fake f = {.local_version = 117, .other_version = 120, .move_local_to = 116};
	memset(f.local, 0x17, FS);
	memset(f.other, 0x20, FS);
	struct recovery_job job;
	run_job(&f, &job);
	assert_int_equal(job.how, RECOVERY_HOW_COPIED);
	assert_int_equal(f.local_version, 120);
	assert_memory_equal(f.local, f.other, FS);
	assert_int_equal(f.installs, 1);
}

/* A local write that lands meanwhile at a newer version than the copy is
 * kept: recovery never puts older data over it. */
static void test_newer_local_write_meanwhile_is_kept(void **state)
{
	struct fake f = {.local_version = 117, .other_version = 120, .move_local_to = 121};
	memset(f.local, 0x17, FS);
	memset(f.other, 0x20, FS);
	struct recovery_job job;
	run_job(&f, &job);
	assert_int_equal(f.local_version, 121);
	uint8_t want[FS];
	memset(want, 0x16, FS);
	assert_memory_equal(f.local, want, FS);
	assert_int_equal(f.installs, 0);
}

/* Nothing moved: the copy replaces the stale fragment at once. */
static void test_stale_fragment_is_replaced(void **state)
{
	struct fake f = {.local_version = 117, .other_version = 120, .move_local_to = -1};
	memset(f.local, 0x17, FS);
	memset(f.other, 0x20, FS);
	struct recovery_job job;
	run_job(&f, &job);
	assert_int_equal(f.local_version, 120);
	assert_memory_equal(f.local, f.other, FS);
	assert_int_equal(f.installs, 1);
}

int main(void)
{
	sd_log_set_level(SD_LOG_ERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fragment_rolled_back_meanwhile_gets_the_copy),
	    cmocka_unit_test(test_newer_local_write_meanwhile_is_kept),
	    cmocka_unit_test(test_stale_fragment_is_replaced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
