/* test_capacity.c - unit tests of the capacity rule (sheep/capacity.c): -s caps what a sheep
 * offers, the filesystem's free space caps what it can still take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sheep/store/capacity.h"

#define GiB (1ull << 30)

static void test_no_size_offers_the_filesystem(void **state)
{
	(void)state;
	uint64_t size, free_bytes;
	sheep_capacity_of(0, 100 * GiB, 60 * GiB, 5 * GiB, &size, &free_bytes);
	assert_int_equal(size, 100 * GiB);
	/* 95 GiB would be left of the filesystem's size, but only 60 are free. */
	assert_int_equal(free_bytes, 60 * GiB);
}

static void test_size_caps_capacity_and_free(void **state)
{
	(void)state;
	uint64_t size, free_bytes;
	sheep_capacity_of(10 * GiB, 100 * GiB, 60 * GiB, 3 * GiB, &size, &free_bytes);
	assert_int_equal(size, 10 * GiB);
	assert_int_equal(free_bytes, 7 * GiB);
}

static void test_shared_filesystem_limits_free_below_size(void **state)
{
	(void)state;
	uint64_t size, free_bytes;
	/* Others filled the disk: 1 GiB left although -s promises 8 more. */
	sheep_capacity_of(10 * GiB, 100 * GiB, 1 * GiB, 2 * GiB, &size, &free_bytes);
	assert_int_equal(size, 10 * GiB);
	assert_int_equal(free_bytes, 1 * GiB);
}

static void test_over_full_sheep_has_nothing_free(void **state)
{
	(void)state;
	uint64_t size, free_bytes;
	sheep_capacity_of(4 * GiB, 100 * GiB, 50 * GiB, 5 * GiB, &size, &free_bytes);
	assert_int_equal(size, 4 * GiB);
	assert_int_equal(free_bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_size_offers_the_filesystem),
	    cmocka_unit_test(test_size_caps_capacity_and_free),
	    cmocka_unit_test(test_shared_filesystem_limits_free_below_size),
	    cmocka_unit_test(test_over_full_sheep_has_nothing_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
