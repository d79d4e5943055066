/* test_dog_json.c - unit tests of dog's JSON writer (json.c) and the JSON forms of its listings
 * (format_json.c): exact text, escaping, nesting, empty containers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dog/dog.h"

/* Run writer calls on j into a string (caller frees). */
#define CAPTURE(out, calls)                                                                        \
	do {                                                                                       \
		size_t _n;                                                                         \
		FILE *f = open_memstream(&(out), &_n);                                             \
		assert_non_null(f);                                                                \
		struct dog_json j;                                                                 \
		dog_json_init(&j, f);                                                              \
		calls;                                                                             \
		fclose(f);                                                                         \
	} while (0)

static void test_json_nesting_commas_and_indent(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, {
		dog_json_obj_begin(&j, NULL);
		dog_json_u64(&j, "a", 18446744073709551615ull);
		dog_json_arr_begin(&j, "b");
		dog_json_i64(&j, NULL, -1);
		dog_json_bool(&j, NULL, true);
		dog_json_null(&j, NULL);
		dog_json_arr_end(&j);
		dog_json_obj_begin(&j, "c");
		dog_json_double(&j, "p", 12.25);
		dog_json_obj_end(&j);
		dog_json_obj_end(&j);
	});
	assert_string_equal(s, "{\n"
			       "  \"a\": 18446744073709551615,\n"
			       "  \"b\": [\n"
			       "    -1,\n"
			       "    true,\n"
			       "    null\n"
			       "  ],\n"
			       "  \"c\": {\n"
			       "    \"p\": 12.2\n"
			       "  }\n"
			       "}\n");
	free(s);
}

static void test_json_empty_containers(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, {
		dog_json_obj_begin(&j, NULL);
		dog_json_arr_begin(&j, "vdis");
		dog_json_arr_end(&j);
		dog_json_obj_begin(&j, "o");
		dog_json_obj_end(&j);
		dog_json_obj_end(&j);
	});
	assert_string_equal(s, "{\n  \"vdis\": [],\n  \"o\": {}\n}\n");
	free(s);
}

static void test_json_strings_escaped(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, {
		dog_json_obj_begin(&j, NULL);
		dog_json_str(&j, "k\"", "q\" b\\ n\n t\t c\x01 d\x7f \xc3\xa9");
		dog_json_str(&j, "nul", NULL);
		dog_json_strn(&j, "n", "abcdef", 3);
		dog_json_double(&j, "inf", 1.0 / 0.0);
		dog_json_obj_end(&j);
	});
	assert_string_equal(
	    s, "{\n  \"k\\\"\": \"q\\\" b\\\\ n\\n t\\t c\\u0001 d\\u007f \xc3\xa9\",\n"
	       "  \"nul\": \"\",\n  \"n\": \"abc\",\n  \"inf\": null\n}\n");
	free(s);
}

static void test_json_vdi_row_and_node(void **state)
{
	(void)state;
	struct dog_vdi_row r = {
	    .type = 's',
	    .name = "v",
	    .snap_id = 2,
	    .size = 1ull << 30,
	    .used = 4 << 20,
	    .shared = 8 << 20,
	    .ctime = 1767261600,
	    .vid = 0x7c2b25,
	    .nr_copies = 6,
	    .copy_policy = 0x22,
	    .tag = "t1",
	    .block_size_shift = 22,
	};
	char *s;
	CAPTURE(s, dog_json_vdi_row(&j, &r));
	assert_string_equal(s,
			    "{\n  \"name\": \"v\",\n  \"type\": \"snapshot\",\n  \"snap_id\": 2,\n"
			    "  \"tag\": \"t1\",\n  \"vdi_id\": 8137509,\n  \"size\": 1073741824,\n"
			    "  \"used\": 4194304,\n  \"shared\": 8388608,\n"
			    "  \"ctime\": 1767261600,\n  \"policy\": \"4:2\",\n"
			    "  \"copy_policy\": 34,\n  \"nr_copies\": 6,\n"
			    "  \"block_size_shift\": 22\n}\n");
	free(s);
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	memset(n.addr, 'x', sizeof(n.addr)); /* no NUL: the writer must stop at 64 */
	n.port = 7000;
	n.zone = 3;
	n.nr_vnodes = 128;
	CAPTURE(s, dog_json_node(&j, 1, &n));
	char want_host[80];
	snprintf(want_host, sizeof(want_host), "\"host\": \"%.64s\"", n.addr);
	assert_non_null(strstr(s, want_host));
	assert_non_null(strstr(s, "\"zone\": 3,"));
	assert_non_null(strstr(s, "\"vnodes\": 128,"));
	free(s);
}

static void test_json_node_info_total(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, {
		dog_json_obj_begin(&j, NULL);
		dog_json_node_info(&j, -1, 1000, 250);
		dog_json_obj_end(&j);
	});
	assert_string_equal(s, "{\n  \"total\": {\n    \"size\": 1000,\n    \"used\": 250,\n"
			       "    \"avail\": 750,\n    \"use_percent\": 25\n  }\n}\n");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_nesting_commas_and_indent),
	    cmocka_unit_test(test_json_empty_containers),
	    cmocka_unit_test(test_json_strings_escaped),
	    cmocka_unit_test(test_json_vdi_row_and_node),
	    cmocka_unit_test(test_json_node_info_total),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
