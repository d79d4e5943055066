/* test_recovery.c - unit tests of recovery/ on a fake in-memory cluster (recovery_sim.h): node
 * loss, joins, replanning, priority, throttle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "ec/ec.h"
#include "lib/crc.h"
#include "lib/fnv.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "recovery/recovery.h"

#include "recovery_sim.h"

/* ---- tests ----------------------------------------------------------- */

static void test_kill_one_node_restores_full_redundancy_then_survives_two_more(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 40, 1);
	assert_int_equal(assert_full_redundancy(c), 0);

	c->node[3].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	assert_true(p.rebuilt > 0); /* EC fragments of the dead node */
	assert_true(p.copied > 0);  /* replicas of the dead node */
	for (int i = 0; i < 8; i++)
		if (nr.r[i]) {
			struct recovery_progress q;
			recovery_progress(nr.r[i], &q);
			assert_int_equal(q.state, RECOVERY_DONE);
		}
	assert_int_equal(assert_full_redundancy(c), 0);

	/* Two more failures, no recovery: everything still reads back. */
	c->node[0].alive = 0;
	c->node[6].alive = 0;
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* Count (object, position) pairs whose holder differs between two placements. */
static size_t moved_positions(struct fcluster *c, uint32_t (*before)[EC_MAX_WIDTH])
{
	size_t moved = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, h);
		for (int i = 0; i < c->objs[k].nc; i++)
			moved += h[i] != before[k][i];
	}
	return moved;
}

static void test_join_moves_only_what_placement_moves(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 60, 2);
	uint32_t(*before)[EC_MAX_WIDTH] = calloc(c->nr_objs, sizeof(*before));
	for (size_t k = 0; k < c->nr_objs; k++)
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, before[k]);

	/* Two fresh nodes join, new zones. */
	c->nr = 10;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	c->node[9] = (struct fnode){.alive = 1, .zone = 9};
	size_t moved = moved_positions(c, before);
	assert_true(moved > 0);

	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	/* Exactly the moved positions were fetched; the rest was reused. */
	assert_int_equal(p.copied + p.rebuilt, moved);
	assert_int_equal(p.reused, p.total - moved);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* The old holders may now drop what moved, and nothing else. */
	size_t droppable = 0;
	for (int i = 0; i < 8; i++) {
		for (size_t k = 0; k < c->node[i].nr; k++) {
			struct ffrag *f = c->node[i].frags[k];
			struct recovery_frag rf = {.oid = f->oid,
						   .version = f->version,
						   .node = (uint32_t)i,
						   .idx = f->idx,
						   .copy_policy = f->cp,
						   .nr_copies = f->nc,
						   .frag_size = FS};
			uint32_t h[EC_MAX_WIDTH];
			fake_locate(c, f->oid, f->nc, h);
			bool can = recovery_can_drop(nr.r[i], &rf);
			assert_true(can == (h[f->idx] != (uint32_t)i));
			droppable += can;
		}
	}
	assert_int_equal(droppable, moved);
	free(before);
	free_all(&nr);
	cluster_free(c);
}

static void test_replan_mid_recovery_keeps_finished_work(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 30, 3);

	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	struct recovery_progress p0;
	sum_progress(c, &nr, &p0);
	size_t half = (size_t)p0.total / 2 + 20;
	run_all(c, &nr, half);
	struct recovery_progress p1;
	sum_progress(c, &nr, &p1);
	assert_true(p1.done > 0 && p1.done < p1.total);

	/* A second node fails mid-recovery: replan on the survivors. */
	c->node[5].alive = 0;
	uint64_t calls_before = c->exec_calls;
	plan_all(c, &nr, 3);
	struct recovery_progress p2;
	sum_progress(c, &nr, &p2);
	/* What the survivors had finished and still must hold stays done: at
	 * least the done jobs of nodes that survived, minus those whose
	 * position moved again. */
	uint64_t kept_done = 0;
	for (int i = 0; i < 8; i++)
		if (c->node[i].alive && nr.r[i]) {
			struct recovery_progress q;
			recovery_progress(nr.r[i], &q);
			kept_done += q.done;
		}
	assert_true(kept_done > 0);
	run_all(c, &nr, 0);
	struct recovery_progress p3;
	sum_progress(c, &nr, &p3);
	assert_int_equal(p3.failed, 0);
	assert_int_equal(p3.done, p3.total);
	/* Finished work was not redone: the jobs run after the replan are at
	 * most the ones not already done. */
	assert_true(c->exec_calls - calls_before <= p2.total - p2.done);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* A node that loses fragments it already holds (a failed or unplugged
 * disk: store_md.c) replans at the same epoch. Without
 * recovery_forget_done() the engine carried "done" over from the last
 * plan and the lost fragments stayed lost (test 140 found it); with it
 * they are fetched or rebuilt again. */
static void test_forget_done_refetches_fragments_lost_locally(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 30, 15, 7);
	c->node[1].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* Node 3 loses every other fragment it holds. */
	struct fnode *n3 = &c->node[3];
	size_t kept = 0, lost = 0;
	for (size_t k = 0; k < n3->nr; k++) {
		if (k % 2) {
			free(n3->frags[k]);
			lost++;
		} else {
			n3->frags[kept++] = n3->frags[k];
		}
	}
	n3->nr = kept;
	assert_true(lost > 0);
	recovery_forget_done(nr.r[3]);
	plan_all(c, &nr, 2); /* the same epoch: only node 3's plan changes */
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[3], &p);
	assert_int_equal(p.failed, 0);
	assert_true(p.copied + p.rebuilt >= lost);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

/* Work finished under one epoch is not reported again as this epoch's
 * copies or rebuilds: after the next membership change (recovery disabled,
 * as an admin does for maintenance) nothing counts as moved, and the
 * fragments moved before count as reused. A replan within the same epoch
 * keeps how each item was done. */
static void test_moves_of_an_earlier_epoch_are_not_counted_again(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 20, 5);
	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p1;
	sum_progress(c, &nr, &p1);
	assert_int_equal(p1.done, p1.total);
	uint64_t moved = p1.copied + p1.rebuilt;
	assert_true(moved > 0);

	/* Same epoch, planned again: the moves stay counted. */
	plan_all(c, &nr, 2);
	struct recovery_progress p2;
	sum_progress(c, &nr, &p2);
	assert_int_equal(p2.copied + p2.rebuilt, moved);

	/* Next epoch with recovery disabled: nothing may run, nothing counts
	 * as moved. */
	c->node[6].alive = 0;
	for (int i = 0; i < c->nr; i++)
		if (nr.r[i])
			recovery_set_enabled(nr.r[i], false);
	uint64_t calls = c->exec_calls;
	plan_all(c, &nr, 3);
	assert_int_equal(run_all(c, &nr, 0), 0);
	assert_int_equal(c->exec_calls, calls);
	struct recovery_progress p3;
	sum_progress(c, &nr, &p3);
	assert_int_equal(p3.copied, 0);
	assert_int_equal(p3.rebuilt, 0);
	assert_int_equal(p3.reused, p3.done);
	assert_true(p3.done > 0); /* fragments moved at epoch 2, still placed */
	free_all(&nr);
	cluster_free(c);
}

static void test_priority_object_is_recovered_first(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 0, 4);
	/* A fresh node joins: it must fetch many fragments. */
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	plan_all(c, &nr, 2);
	/* Pick the last object the new node must hold. */
	uint64_t last = 0;
	uint8_t last_idx = 0;
	int count = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, 6, h);
		for (int i = 0; i < 6; i++)
			if (h[i] == 8) {
				last = c->objs[k].oid;
				last_idx = (uint8_t)i;
				count++;
			}
	}
	assert_true(count > 2);
	assert_true(recovery_pending(nr.r[8], last, last_idx));
	assert_int_equal(recovery_prioritize(nr.r[8], last), 0);
	struct recovery_job *job;
	assert_int_equal(recovery_take(nr.r[8], 0, &job, NULL), 0);
	assert_true(job->oid == last);
	assert_int_equal(job->idx, last_idx);
	assert_int_equal(recovery_execute(&nr.rio[8], job), 0);
	recovery_finish(nr.r[8], job, 0);
	assert_false(recovery_pending(nr.r[8], last, last_idx));
	struct ffrag *f = node_find(&c->node[8], last, last_idx);
	assert_non_null(f);
	for (size_t k = 0; k < c->nr_objs; k++)
		if (c->objs[k].oid == last)
			assert_memory_equal(f->data, c->objs[k].frag[last_idx], FS);
	/* Nothing pending for it any more. */
	assert_int_equal(recovery_prioritize(nr.r[8], last), -ENOENT);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_throttle_bounds_jobs_in_flight_and_spaces_them(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 60, 0, 5);
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	plan_all(c, &nr, 2);
	struct recovery *r = nr.r[8];
	struct recovery_throttle t = {.max = 2, .interval_ms = 10};
	assert_int_equal(recovery_set_throttle(r, &t), 0);
	struct recovery_job *a, *b, *x;
	uint64_t wait;
	assert_int_equal(recovery_take(r, 100, &a, &wait), 0);
	assert_int_equal(recovery_take(r, 100, &b, &wait), 0);
	assert_int_equal(recovery_take(r, 100, &x, &wait), -EAGAIN);
	struct recovery_progress p;
	recovery_progress(r, &p);
	assert_int_equal(p.in_flight, 2);
	recovery_execute(&nr.rio[8], a);
	recovery_finish(r, a, 100);
	/* The freed slot pauses for the interval. */
	assert_int_equal(recovery_take(r, 105, &x, &wait), -EAGAIN);
	assert_int_equal(wait, 5);
	assert_int_equal(recovery_take(r, 110, &x, &wait), 0);
	recovery_execute(&nr.rio[8], b);
	recovery_finish(r, b, 110);
	recovery_execute(&nr.rio[8], x);
	recovery_finish(r, x, 110);
	struct recovery_throttle g;
	recovery_get_throttle(r, &g);
	assert_int_equal(g.max, 2);
	assert_int_equal(g.interval_ms, 10);
	t.max = 0;
	assert_int_equal(recovery_set_throttle(r, &t), -EINVAL);

	/* Disabled: nothing is handed out, the state says so. */
	recovery_set_enabled(r, false);
	assert_int_equal(recovery_take(r, 1000, &x, &wait), -EAGAIN);
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_DISABLED);
	recovery_set_enabled(r, true);
	t = (struct recovery_throttle){.max = 4, .interval_ms = 0};
	recovery_set_throttle(r, &t);
	run_all(c, &nr, 0);
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_DONE);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_throttle_parse_accepts_max_and_interval(void **state)
{
	(void)state;
	struct recovery_throttle t = {.max = 4, .interval_ms = 0};
	assert_int_equal(recovery_throttle_parse("max=8,interval=100", &t), 0);
	assert_int_equal(t.max, 8);
	assert_int_equal(t.interval_ms, 100);
	assert_int_equal(recovery_throttle_parse("interval=5", &t), 0);
	assert_int_equal(t.max, 8);
	assert_int_equal(t.interval_ms, 5);
	assert_int_equal(recovery_throttle_parse("max=0", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("max=x", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("speed=3", &t), -EINVAL);
	assert_int_equal(recovery_throttle_parse("", &t), -EINVAL);
	assert_int_equal(t.max, 8); /* unchanged on error */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill_one_node_restores_full_redundancy_then_survives_two_more),
	    cmocka_unit_test(test_join_moves_only_what_placement_moves),
	    cmocka_unit_test(test_replan_mid_recovery_keeps_finished_work),
	    cmocka_unit_test(test_moves_of_an_earlier_epoch_are_not_counted_again),
	    cmocka_unit_test(test_priority_object_is_recovered_first),
	    cmocka_unit_test(test_throttle_bounds_jobs_in_flight_and_spaces_them),
	    cmocka_unit_test(test_throttle_parse_accepts_max_and_interval),
	    cmocka_unit_test(test_forget_done_refetches_fragments_lost_locally),
	};
	sd_log_set_level(SD_LOG_WARNING);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ec_codec_cleanup();
	return rc;
}
