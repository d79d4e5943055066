/* test_scrub.c - unit tests of the scrub's option parser (sheep/scrub/scrub.c): --scrub off,
 * rate=, pause=, and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sheep/scrub/scrub.h"

static void test_rate_and_pause_parsed(void **state)
{
	(void)state;
	struct sheep_scrub_opts o = {0};
	assert_int_equal(sheep_scrub_parse("rate=32M,pause=2", &o), 0);
	assert_false(o.off);
	assert_int_equal(o.rate, 32ull << 20);
	assert_int_equal(o.pause, 2);
	assert_true(o.pause_set);
}

static void test_either_part_alone_keeps_the_other_default(void **state)
{
	(void)state;
	struct sheep_scrub_opts o = {0};
	assert_int_equal(sheep_scrub_parse("pause=0", &o), 0);
	assert_int_equal(o.rate, 0); /* 0: the default rate */
	assert_true(o.pause_set);
	assert_int_equal(o.pause, 0);
	struct sheep_scrub_opts r = {0};
	assert_int_equal(sheep_scrub_parse("rate=100K", &r), 0);
	assert_int_equal(r.rate, 100ull << 10);
	assert_false(r.pause_set);
}

static void test_off(void **state)
{
	(void)state;
	struct sheep_scrub_opts o = {0};
	assert_int_equal(sheep_scrub_parse("off", &o), 0);
	assert_true(o.off);
}

static void test_bad_specs_refused(void **state)
{
	(void)state;
	const char *bad[] = {"",
			     "rate=",
			     "rate=0",
			     "rate=-1",
			     "rate=abc",
			     "pause=",
			     "pause=-3",
			     "pause=1x",
			     "pause=99999999",
			     "speed=4M",
			     "rate=4M,,",
			     "offf",
			     "rate=4M,pause=1,rate="};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sheep_scrub_opts o = {0};
		if (sheep_scrub_parse(bad[i], &o) != -22)
			fail_msg("'%s' was accepted", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rate_and_pause_parsed),
	    cmocka_unit_test(test_either_part_alone_keeps_the_other_default),
	    cmocka_unit_test(test_off),
	    cmocka_unit_test(test_bad_specs_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
