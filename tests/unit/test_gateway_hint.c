/* test_gateway_hint.c - the group-commit hint of a write coordinator, counted per node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sheep/gateway/gateway_priv.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

#define MiB (1u << 20)

struct rig {
	struct sheep s;
	struct gw_state g;
	struct sd_node n[6];
	struct gw_obj o;
};

/* A 4:2 object of 4 MiB (1 MiB fragments) on six nodes, or (copies > 0)
 * a replicated one on the first `copies`. */
static void rig_init(struct rig *r, int copies)
{
	memset(r, 0, sizeof(*r));
	r->s.gw = &r->g;
	for (int i = 0; i < 6; i++) {
		snprintf(r->n[i].addr, sizeof(r->n[i].addr), "127.0.0.1");
		r->n[i].port = (uint16_t)(7000 + i);
	}
	struct gw_obj *o = &r->o;
	o->s = &r->s;
	o->obj_size = 4 * MiB;
	if (copies) {
		o->pol = (struct ec_policy){.copies = (uint8_t)copies};
		o->ec = false;
		o->d = 1;
		o->width = copies;
	} else {
		o->pol = (struct ec_policy){.d = 4, .p = 2, .copies = 6};
		o->ec = true;
		o->d = 4;
		o->p = 2;
		o->width = 6;
	}
	for (int i = 0; i < o->width; i++)
		o->loc[i] = o->holder[i] = &r->n[i];
}

static void expect_targets(struct gw_obj *o, uint32_t off, uint32_t len, bool whole,
			   const char *want)
{
	bool to[GW_MAX_WIDTH];
	int n = gw_durable_targets(o, off, len, whole, to), count = 0;
	char got[GW_MAX_WIDTH + 1];
	for (int i = 0; i < o->width; i++) {
		got[i] = to[i] ? '1' : '0';
		count += to[i];
	}
	got[o->width] = 0;
	assert_string_equal(got, want);
	assert_int_equal(n, count);
}

static void test_a_range_update_is_durable_only_on_its_data_and_the_parities(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	expect_targets(&r.o, 0, 4096, false, "100011");
	expect_targets(&r.o, MiB + 512, 4096, false, "010011");
	expect_targets(&r.o, 3 * MiB, MiB, false, "000111");
	/* across two data fragments: both */
	expect_targets(&r.o, MiB - 2048, 4096, false, "110011");
	/* a range past the object's end (no write takes it) counts everywhere */
	expect_targets(&r.o, 4 * MiB, 4096, false, "111111");
	/* a whole object (or a new one) is written everywhere */
	expect_targets(&r.o, 0, 4 * MiB, true, "111111");
	rig_init(&r, 3);
	expect_targets(&r.o, 4096, 4096, false, "111");
}

static void test_the_hint_counts_a_write_only_for_its_durable_targets(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	gw_coming_begin(&r.o, MiB, 4096, false); /* data fragment 1 */
	int want[6] = {0, 1, 0, 0, 1, 1};
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), want[i]);
	/* a nested write of the same thread (a settle's bump) adds nothing */
	gw_coming_begin(&r.o, 0, 4 * MiB, true);
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), want[i]);
	gw_coming_end();
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), 0);
	/* ending twice (fan-out, then the write's end) takes nothing more */
	gw_coming_end();
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), 0);
}

/* Peer writes to the rig's first n nodes, not sent yet. */
static void writes_to(struct rig *r, struct peer_call *c, int n)
{
	memset(c, 0, (size_t)n * sizeof(*c));
	for (int i = 0; i < n; i++) {
		c[i].node = &r->n[i];
		c[i].req.opcode = SD_OP_PEER_WRITE;
	}
}

/* A data prepare sent ahead of the parity prepares (PEER_WH_OLD) ends the
 * write's count on its node only: the parities' holders still see it
 * coming until the rest go out. */
static void test_a_prepare_sent_ahead_ends_only_its_nodes_count(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	gw_coming_begin(&r.o, 2 * MiB, 4096, false); /* data fragment 2 */
	struct peer_call c[6];
	writes_to(&r, c, 6);
	gw_set_hints(&r.o, &c[2], 1, true);
	int want[6] = {0, 0, 0, 0, 1, 1};
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), want[i]);
	/* its hint counts the others' writes coming to it: none */
	assert_int_equal(c[2].whdr.hint & STORE_HINT_COMING, 0);
	/* the rest of the fan-out: everything ends */
	c[2].sent = true;
	gw_set_hints(&r.o, c, 6, false);
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), 0);
	gw_coming_end();
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), 0);
}

struct other {
	struct rig *r;
	pthread_barrier_t *b;
};

static void *other_write(void *arg)
{
	struct other *w = arg;
	gw_coming_begin(&w->r->o, 3 * MiB, 4096, false); /* data fragment 3 */
	pthread_barrier_wait(w->b);			 /* counted */
	pthread_barrier_wait(w->b);			 /* checked */
	gw_coming_end();
	return NULL;
}

static void test_writes_of_two_threads_add_up_per_node(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, 2);
	struct other w = {&r, &b};
	pthread_t t;
	gw_coming_begin(&r.o, 0, 4096, false); /* data fragment 0 */
	assert_int_equal(pthread_create(&t, NULL, other_write, &w), 0);
	pthread_barrier_wait(&b);
	int want[6] = {1, 0, 0, 1, 2, 2};
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), want[i]);
	pthread_barrier_wait(&b);
	pthread_join(t, NULL);
	int left[6] = {1, 0, 0, 0, 1, 1};
	for (int i = 0; i < 6; i++)
		assert_int_equal(gw_coming_for(&r.s, &r.n[i]), left[i]);
	gw_coming_end();
	pthread_barrier_destroy(&b);
}

/* The patience a hint offers, in ms (STORE_HINT_PATIENCE). */
static double patience_ms(uint32_t hint)
{
	return (double)((hint >> STORE_HINT_PATIENCE_SHIFT) & STORE_HINT_PATIENCE_MAX) *
	       STORE_HINT_PATIENCE_UNIT_NS / 1e6;
}

/* A coordinator with two or more other writes in flight offers the
 * holders a quarter of its writes' usual time to hold their syncs for; a
 * lone write (QD1) or one with a single other offers none; the offer
 * saturates rather than spill into the tag. */
static void test_a_coordinator_with_writes_in_flight_offers_patience(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r, 0);
	struct peer_call c[6];
	r.g.write_ns = 12000000;				 /* writes take 12 ms here */
	for (r.g.writing = 1; r.g.writing <= 2; r.g.writing++) { /* alone, or one other */
		writes_to(&r, c, 6);
		gw_set_hints(&r.o, c, 6, false);
		for (int i = 0; i < 6; i++)
			assert_true(patience_ms(c[i].whdr.hint) == 0);
	}
	r.g.writing = 5; /* a client's queue */
	writes_to(&r, c, 6);
	gw_set_hints(&r.o, c, 6, false);
	for (int i = 0; i < 6; i++) {
		assert_true(patience_ms(c[i].whdr.hint) > 2.9 &&
			    patience_ms(c[i].whdr.hint) <= 3.0);
		assert_int_equal(c[i].whdr.hint & STORE_HINT_COMING, 0);
	}
	uint32_t tag = c[0].whdr.hint >> 24;
	r.g.write_ns = 10ull * 1000000000ull; /* 10 s writes: the most a hint can say */
	writes_to(&r, c, 1);
	gw_set_hints(&r.o, c, 1, false);
	assert_int_equal((c[0].whdr.hint >> STORE_HINT_PATIENCE_SHIFT) & 0xff,
			 STORE_HINT_PATIENCE_MAX);
	assert_int_equal(c[0].whdr.hint >> 24, tag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_range_update_is_durable_only_on_its_data_and_the_parities),
	    cmocka_unit_test(test_the_hint_counts_a_write_only_for_its_durable_targets),
	    cmocka_unit_test(test_writes_of_two_threads_add_up_per_node),
	    cmocka_unit_test(test_a_prepare_sent_ahead_ends_only_its_nodes_count),
	    cmocka_unit_test(test_a_coordinator_with_writes_in_flight_offers_patience),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
