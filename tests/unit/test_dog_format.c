/* test_dog_format.c - unit tests of dog's output formats (REFERENCE.md) and its result-code
 * mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dog/dog.h"

#define T_2026 1767261600ull /* 2026-01-01 10:00:00 UTC */

/* Run a printer into a string (caller frees). */
#define CAPTURE(out, call)                                                                         \
	do {                                                                                       \
		size_t _n;                                                                         \
		FILE *f = open_memstream(&(out), &_n);                                             \
		assert_non_null(f);                                                                \
		call;                                                                              \
		fclose(f);                                                                         \
	} while (0)

static int set_utc(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static struct sd_node node(const char *addr, uint16_t port, uint16_t vnodes, uint32_t zone)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "%s", addr);
	n.port = port;
	n.nr_vnodes = vnodes;
	n.zone = zone;
	return n;
}

static void test_vdi_list_header_matches_sheepdog(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, dog_print_vdi_header(f, false));
	assert_string_equal(s,
			    "  Name        Id    Size    Used  Shared    Creation time   VDI id  "
			    "Copies  Tag   Block Size Shift\n");
	free(s);
	CAPTURE(s, dog_print_vdi_header(f, true));
	assert_string_equal(s, "");
	free(s);
}

static void test_vdi_list_row_ec_policy_and_sizes(void **state)
{
	(void)state;
	struct dog_vdi_row r = {
	    .type = ' ',
	    .name = "test",
	    .snap_id = 0,
	    .size = 4ull << 30,
	    .used = 20ull << 20,
	    .shared = 0,
	    .ctime = T_2026,
	    .vid = 0x7c2b25,
	    .nr_copies = 6,
	    .copy_policy = 0x22,
	    .tag = "",
	    .block_size_shift = 22,
	};
	char *s;
	CAPTURE(s, dog_print_vdi_row(f, &r, false));
	assert_string_equal(s,
			    "  test         0  4.0 GB   20 MB  0.0 MB 2026-01-01 10:00   7c2b25  "
			    "  4:2                22\n");
	free(s);
}

static void test_vdi_list_row_replicated_snapshot(void **state)
{
	(void)state;
	struct dog_vdi_row r = {
	    .type = 's',
	    .name = "longervdiname",
	    .snap_id = 2,
	    .size = 20ull << 30,
	    .used = 1ull << 30,
	    .shared = 12ull << 20,
	    .ctime = T_2026,
	    .vid = 0xab,
	    .nr_copies = 3,
	    .copy_policy = 0,
	    .tag = "tag1",
	    .block_size_shift = 23,
	};
	char *s;
	CAPTURE(s, dog_print_vdi_row(f, &r, false));
	assert_string_equal(
	    s, "s longervdiname     2   20 GB  1.0 GB   12 MB 2026-01-01 10:00       ab"
	       "      3          tag1  23\n");
	free(s);
}

static void test_vdi_list_raw_row_bytes_epoch_escaped_name(void **state)
{
	(void)state;
	struct dog_vdi_row r = {
	    .type = ' ',
	    .name = "my disk",
	    .snap_id = 0,
	    .size = 4ull << 30,
	    .used = 8ull << 20,
	    .shared = 0,
	    .ctime = T_2026,
	    .vid = 0x7c2b25,
	    .nr_copies = 11,
	    .copy_policy = 0x43,
	    .tag = "",
	    .block_size_shift = 22,
	};
	char *s;
	CAPTURE(s, dog_print_vdi_row(f, &r, true));
	assert_string_equal(s, "= my\\ disk 0 4294967296 8388608 0 1767261600 7c2b25 8:3  22\n");
	free(s);
}

static void test_node_list_rows(void **state)
{
	(void)state;
	struct sd_node n = node("127.0.0.1", 7000, 128, 0);
	char *s;
	CAPTURE(s, dog_print_node_header(f, false); dog_print_node_row(f, 0, &n, false));
	assert_string_equal(s, "  Id   Host:Port         V-Nodes       Zone\n"
			       "   0   127.0.0.1:7000      \t128          0\n");
	free(s);
	n = node("127.0.0.1", 7005, 64, 5);
	CAPTURE(s, dog_print_node_header(f, true); dog_print_node_row(f, 5, &n, true));
	assert_string_equal(s, "5 127.0.0.1:7005 64 5\n");
	free(s);
	n = node("::1", 7000, 8, 1);
	CAPTURE(s, dog_print_node_row(f, 1, &n, true));
	assert_string_equal(s, "1 [::1]:7000 8 1\n");
	free(s);
}

static void test_node_info_rows_total_and_vdi_size(void **state)
{
	(void)state;
	char *s;
	CAPTURE(s, dog_print_node_info_header(f, false);
		dog_print_node_info_row(f, 1, 20ull << 30, 5ull << 30, false);
		dog_print_node_info_row(f, -1, 20ull << 30, 5ull << 30, false);
		dog_print_total_vdi_size(f, 100ull << 30, false));
	assert_string_equal(s, "Id\tSize\tUsed\tAvail\tUse%\n"
			       " 1\t20 GB\t5.0 GB\t15 GB\t 25%\n"
			       "Total\t20 GB\t5.0 GB\t15 GB\t 25%\n"
			       "\nTotal virtual image size\t100 GB\n");
	free(s);
	CAPTURE(s, dog_print_node_info_row(f, 0, 0, 0, true));
	assert_string_equal(s, "0 0 0 0 0%\n");
	free(s);
}

static void test_cluster_info_status_ctime_and_epochs(void **state)
{
	(void)state;
	struct sd_cluster_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.recovery_enabled = 1;
	struct sd_node nodes[2] = {node("127.0.0.1", 7000, 128, 0),
				   node("127.0.0.1", 7001, 128, 1)};
	struct sd_epoch_rec e = {.epoch = 2, .nr_nodes = 2, .time = T_2026};
	char *s;
	CAPTURE(s, dog_print_cluster_status(f, SD_RES_SUCCESS, &ci, false);
		dog_print_cluster_ctime(f, T_2026, false); dog_print_epoch_header(f, false);
		dog_print_epoch(f, &e, nodes, false));
	assert_string_equal(
	    s, "Cluster status: running, auto-recovery enabled\n"
	       "\n"
	       "Cluster created at Thu Jan  1 10:00:00 2026\n"
	       "\n"
	       "Epoch Time           Version [Host:Port:V-Nodes,,,]\n"
	       "2026-01-01 10:00:00      2 [127.0.0.1:7000:128, 127.0.0.1:7001:128]\n");
	free(s);
	ci.recovery_enabled = 0;
	CAPTURE(s, dog_print_cluster_status(f, SD_RES_SUCCESS, &ci, false));
	assert_string_equal(s, "Cluster status: running, auto-recovery disabled\n");
	free(s);
	CAPTURE(s, dog_print_cluster_status(f, SD_RES_WAIT_FOR_FORMAT, &ci, false));
	assert_string_equal(s, "Cluster status: Waiting for cluster to be formatted\n");
	free(s);
}

static void test_policy_text_from_wire_fields(void **state)
{
	(void)state;
	char b[16];
	dog_policy_str(0, 3, b, sizeof(b));
	assert_string_equal(b, "3");
	dog_policy_str(0x22, 6, b, sizeof(b));
	assert_string_equal(b, "4:2");
	dog_policy_str(0x8f, 31, b, sizeof(b));
	assert_string_equal(b, "16:15");
	dog_policy_str(0x22, 5, b, sizeof(b)); /* nr_copies disagrees with d+p */
	assert_string_equal(b, "?");
}

static void test_inode_time_accepts_both_encodings(void **state)
{
	(void)state;
	assert_true(dog_inode_seconds(T_2026) == T_2026);
	assert_true(dog_inode_seconds((T_2026 << 32) | 123456789u) == T_2026);
}

static void test_sizes_human_and_raw(void **state)
{
	(void)state;
	char b[32];
	dog_size_str(0, false, b, sizeof(b));
	assert_string_equal(b, "0.0 MB");
	dog_size_str(4ull << 30, false, b, sizeof(b));
	assert_string_equal(b, "4.0 GB");
	dog_size_str(20ull << 20, false, b, sizeof(b));
	assert_string_equal(b, "20 MB");
	dog_size_str(12345, true, b, sizeof(b));
	assert_string_equal(b, "12345");
}

static void test_result_codes_map_to_exit_codes_and_hints(void **state)
{
	(void)state;
	assert_int_equal(dog_exit_of_result(SD_RES_SUCCESS), DOG_EXIT_SUCCESS);
	assert_int_equal(dog_exit_of_result(SD_RES_VDI_EXIST), DOG_EXIT_EXISTS);
	assert_int_equal(dog_exit_of_result(SD_RES_NO_VDI), DOG_EXIT_MISSING);
	assert_int_equal(dog_exit_of_result(SD_RES_NO_SPACE), DOG_EXIT_FULL);
	assert_int_equal(dog_exit_of_result(SD_RES_EIO), DOG_EXIT_SYSFAIL);
	assert_int_equal(dog_exit_of_result(SD_RES_INVALID_PARMS), DOG_EXIT_FAILURE);
	assert_string_equal(dog_result_hint(SD_RES_WAIT_FOR_FORMAT),
			    "cluster is not formatted: run dog cluster format");
	assert_string_equal(dog_result_hint(SD_RES_NOT_FORMATTED),
			    "cluster is not formatted: run dog cluster format");
	assert_null(dog_result_hint(SD_RES_SUCCESS));
}

static void test_tree_draws_chains_branches_and_roots(void **state)
{
	/* a: s1 -> s2 -> live; s2 also has clones c1 and c2 (listed out of
	 * order); b alone; x's parent is not listed, so x is a root. */
	struct dog_tree_node n[] = {
	    {0x12, 0x11, "[2]"},   {0x10, 0, "a [1]"},    {0x21, 0x12, "c2 (you are here)"},
	    {0x11, 0x10, "[1b]"},  {0x13, 0x12, "(you are here)"},
	    {0x20, 0x12, "c1 (you are here)"}, {0x30, 0, "b (you are here)"},
	    {0x40, 0x99, "x (you are here)"},
	};
	char *out;
	CAPTURE(out, dog_print_tree(f, n, sizeof(n) / sizeof(n[0])));
	assert_string_equal(out, "a [1]---[1b]---[2]-+-(you are here)\n"
				 "                   |-c1 (you are here)\n"
				 "                   `-c2 (you are here)\n"
				 "b (you are here)\n"
				 "x (you are here)\n");
	free(out);
}

static void test_inode_helpers_snapshot_clone_and_objects(void **state)
{
	struct sd_inode_hdr h;
	memset(&h, 0, sizeof(h));
	h.vdi_size = (5ull << 22) + 1;
	assert_int_equal(sd_inode_nr_objs(&h), 6);
	h.block_size_shift = 20;
	assert_int_equal(sd_inode_nr_objs(&h), 21);
	h.block_size_shift = 40;
	assert_int_equal(sd_inode_nr_objs(&h), 0);
	h.snap_id = 1;
	h.parent_vdi_id = 7;
	assert_true(sd_inode_is_clone(&h));
	assert_false(sd_inode_is_snapshot(&h));
	h.snap_id = 2; /* the working VDI after a snapshot: not a clone */
	assert_false(sd_inode_is_clone(&h));
	h.snap_ctime = 1;
	assert_true(sd_inode_is_snapshot(&h));
	assert_false(sd_inode_is_clone(&h));
	uint32_t id;
	assert_true(dog_snap_is_id("12", &id));
	assert_int_equal(id, 12);
	assert_false(dog_snap_is_id("0", &id));
	assert_false(dog_snap_is_id("v1", &id));
	assert_false(dog_snap_is_id("99999999999", &id));
	assert_false(dog_snap_is_id("", &id));
}

static void test_vdi_nr_objs_rounds_up_and_defaults_shift(void **state)
{
	(void)state;
	struct sd_inode *ino = calloc(1, sizeof(*ino));
	assert_non_null(ino);
	ino->vdi_size = (4ull << 20) + 1;
	assert_int_equal(dog_inode_shift(ino), 22);
	assert_int_equal(dog_vdi_nr_objs(ino), 2);
	ino->block_size_shift = 20;
	assert_int_equal(dog_vdi_nr_objs(ino), 5);
	ino->vdi_size = 0;
	assert_int_equal(dog_vdi_nr_objs(ino), 0);
	free(ino);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vdi_list_header_matches_sheepdog),
	    cmocka_unit_test(test_tree_draws_chains_branches_and_roots),
	    cmocka_unit_test(test_inode_helpers_snapshot_clone_and_objects),
	    cmocka_unit_test(test_vdi_list_row_ec_policy_and_sizes),
	    cmocka_unit_test(test_vdi_list_row_replicated_snapshot),
	    cmocka_unit_test(test_vdi_list_raw_row_bytes_epoch_escaped_name),
	    cmocka_unit_test(test_node_list_rows),
	    cmocka_unit_test(test_node_info_rows_total_and_vdi_size),
	    cmocka_unit_test(test_cluster_info_status_ctime_and_epochs),
	    cmocka_unit_test(test_policy_text_from_wire_fields),
	    cmocka_unit_test(test_inode_time_accepts_both_encodings),
	    cmocka_unit_test(test_sizes_human_and_raw),
	    cmocka_unit_test(test_result_codes_map_to_exit_codes_and_hints),
	    cmocka_unit_test(test_vdi_nr_objs_rounds_up_and_defaults_shift),
	};
	return cmocka_run_group_tests(tests, set_utc, NULL);
}
