/* test_gateway_lc.c - last-changed versions: which generation each data fragment of an EC object
 * belongs to (sheep/gateway/lastchg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sheep/gateway/gateway_priv.h"

/* A 4:2 object: fragments 0-3 data, 4-5 parity. */
static void obj_init(struct gw_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->ec = true;
	o->d = 4;
	o->p = 2;
	o->width = 6;
}

/* Fragment i at its own version real, with a record (rec non-NULL: the
 * deltas of data fragments 0-3 from real). */
static void frag(struct frag_state *st, int i, uint64_t real, const uint8_t *rec)
{
	memset(&st[i], 0, sizeof(st[i]));
	st[i].res = SD_RES_SUCCESS;
	st[i].version = st[i].real = real;
	if (rec) {
		st[i].lc_valid = 1;
		memcpy(st[i].lc_delta, rec, 4);
	}
}

/* Writes 10 (whole), 11 (fragment 0), 12 (fragment 2), 13 (fragment 0):
 * data fragments at 13, 10, 12, 10; parities at 13, recording it. */
static void after_writes(struct frag_state *st)
{
	const uint8_t rec13[4] = {0, 3, 1, 3};
	frag(st, 0, 13, rec13);
	frag(st, 1, 10, NULL);
	frag(st, 2, 12, (const uint8_t[4]){1, 2, 0, 2});
	frag(st, 3, 10, NULL);
	frag(st, 4, 13, rec13);
	frag(st, 5, 13, rec13);
}

static void test_align_unchanged_join_newest(void **state)
{
	(void)state;
	struct gw_obj o;
	struct frag_state st[GW_MAX_WIDTH];
	obj_init(&o);
	after_writes(st);
	gw_lc_align(&o, st);
	for (int i = 0; i < 6; i++)
		assert_int_equal(st[i].version, 13);
	assert_int_equal(st[1].real, 10);
	assert_int_equal(st[2].real, 12);
	uint64_t vmax;
	assert_int_equal(gw_choose_version(st, 6, 4, &vmax), 13);
	assert_int_equal(vmax, 13);
	/* Where each is in generation 13, and which replies belong to it. */
	assert_int_equal(gw_lc_of(&o, st, 13, 0), 13);
	assert_int_equal(gw_lc_of(&o, st, 13, 1), 10);
	assert_int_equal(gw_lc_of(&o, st, 13, 2), 12);
	assert_int_equal(gw_lc_of(&o, st, 13, 4), 13);
	assert_int_equal(gw_lc_gen_of(&o, 2, 12), 13);
	assert_int_equal(gw_lc_gen_of(&o, 2, 11), 11); /* behind: its own */
	assert_int_equal(gw_lc_gen_of(&o, 4, 12), 12); /* a parity has no record entry */
}

/* A data fragment behind its last change (its holder missed write 12)
 * does not belong: the generation is read without it. */
static void test_align_stale_fragment_left_out(void **state)
{
	(void)state;
	struct gw_obj o;
	struct frag_state st[GW_MAX_WIDTH];
	obj_init(&o);
	after_writes(st);
	frag(st, 2, 10, NULL);
	gw_lc_align(&o, st);
	assert_int_equal(st[2].version, 10);
	assert_int_equal(gw_choose_version(st, 6, 4, NULL), 13); /* 0, 1, 3, 4, 5 */
	/* Two parities gone too: 13 has three, no generation has four. */
	st[4].res = st[5].res = SD_RES_NETWORK_ERROR;
	gw_lc_align(&o, st);
	assert_int_equal(gw_choose_version(st, 6, 4, NULL), 0);
}

/* No record anywhere (a store from before, or whole writes): every
 * fragment is at its own generation, as before records. */
static void test_align_without_records(void **state)
{
	(void)state;
	struct gw_obj o;
	struct frag_state st[GW_MAX_WIDTH];
	obj_init(&o);
	for (int i = 0; i < 6; i++)
		frag(st, i, i == 1 ? 6 : 7, NULL);
	gw_lc_align(&o, st);
	assert_false(o.lc_valid);
	assert_int_equal(st[1].version, 6);
	assert_int_equal(gw_choose_version(st, 6, 4, NULL), 7);
	assert_int_equal(gw_lc_of(&o, st, 7, 1), 7);
}

/* Write 14 (fragment 3) applied on fragment 3 and one parity only, the
 * other parity still at 13: 14 is consistent on 0, 1, 2, 3 and 4 (the
 * unchanged ones by its record) and is the generation, though 13 still
 * has d (0, 1, 2, 5). With fragment 0 stale as well, 14 keeps four; with
 * fragment 1 gone too, no generation has d, and the states are aligned
 * to the newest recorded one (for the settle to look at). */
static void test_align_newest_readable(void **state)
{
	(void)state;
	struct gw_obj o;
	struct frag_state st[GW_MAX_WIDTH];
	obj_init(&o);
	after_writes(st);
	const uint8_t rec14[4] = {1, 4, 2, 0};
	frag(st, 3, 14, rec14);
	frag(st, 4, 14, rec14);
	gw_lc_align(&o, st);
	assert_int_equal(o.lc_gen, 14);
	assert_int_equal(gw_choose_version(st, 6, 4, NULL), 14);
	assert_int_equal(st[5].version, 13);
	frag(st, 0, 12, NULL);
	gw_lc_align(&o, st);
	assert_int_equal(gw_choose_version(st, 6, 4, NULL), 14);
	assert_int_equal(st[0].version, 12);
	st[1].res = SD_RES_NETWORK_ERROR;
	gw_lc_align(&o, st);
	uint64_t vmax;
	assert_int_equal(gw_choose_version(st, 6, 4, &vmax), 0);
	assert_int_equal(vmax, 14);
	assert_int_equal(o.lc_gen, 14);
}

/* Replicated objects are never aligned. */
static void test_align_copies_untouched(void **state)
{
	(void)state;
	struct gw_obj o;
	struct frag_state st[GW_MAX_WIDTH];
	memset(&o, 0, sizeof(o));
	o.d = 1;
	o.width = 3;
	const uint8_t rec[4] = {3, 3, 3, 3};
	frag(st, 0, 9, rec);
	frag(st, 1, 6, NULL);
	frag(st, 2, 9, NULL);
	gw_lc_align(&o, st);
	assert_int_equal(st[1].version, 6);
	assert_int_equal(gw_lc_of(&o, st, 9, 0), 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_align_unchanged_join_newest),
	    cmocka_unit_test(test_align_stale_fragment_left_out),
	    cmocka_unit_test(test_align_without_records),
	    cmocka_unit_test(test_align_newest_readable),
	    cmocka_unit_test(test_align_copies_untouched),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
