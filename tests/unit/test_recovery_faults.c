/* test_recovery_faults.c - unit tests of recovery/ on a fake in-memory cluster (recovery_sim.h)
 * when things go wrong: stale returning nodes, a full disk, a source dying, too few zones, corrupt
 * and lost fragments, a job with no source. */
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

static void node_remove(struct fnode *n, uint64_t oid, uint8_t idx)
{
	for (size_t k = 0; k < n->nr; k++)
		if (n->frags[k]->oid == oid && n->frags[k]->idx == idx) {
			free(n->frags[k]);
			n->frags[k] = n->frags[--n->nr];
			return;
		}
}

static void test_returning_node_reuses_valid_data_and_refetches_stale(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 20, 6);
	/* Node 4 goes away with its store; the others recover. */
	c->node[4].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	assert_int_equal(assert_full_redundancy(c), 0);

	/* While it is away, a few objects are rewritten (new version). */
	uint64_t seed = 99;
	for (size_t k = 0; k < c->nr_objs; k += 7) {
		struct fobj *o = &c->objs[k];
		o->version = 2;
		obj_make(o, &seed);
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, o->oid, o->nc, h);
		for (int i = 0; i < o->nc; i++)
			node_put(&c->node[h[i]], o->oid, (uint8_t)i, o->cp, o->nc, 2, o->frag[i]);
	}
	/* It comes back with its old data, one fragment of it now corrupt. */
	c->node[4].alive = 1;
	size_t old_held = c->node[4].nr;
	assert_true(old_held > 2);
	struct ffrag *bad = NULL;
	for (size_t k = 0; k < c->node[4].nr && !bad; k++)
		if (c->node[4].frags[k]->version == 1 &&
		    c->objs[(c->node[4].frags[k]->oid & 0xffffffff)].version == 1)
			bad = c->node[4].frags[k];
	assert_non_null(bad);
	bad->data[7] ^= 0xff; /* crc no longer matches */

	free_all(&nr);
	plan_all(c, &nr, 3);
	c->exec_calls = 0;
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[4], &p);
	assert_int_equal(p.failed, 0);
	/* Unchanged fragments were verified and kept, not fetched again. */
	assert_true(p.reused > 0);
	assert_true(p.copied + p.rebuilt >= 1); /* the stale and the corrupt ones */
	size_t stale = 0;
	for (size_t k = 0; k < c->nr_objs; k++) {
		uint32_t h[EC_MAX_WIDTH];
		fake_locate(c, c->objs[k].oid, c->objs[k].nc, h);
		for (int i = 0; i < c->objs[k].nc; i++)
			if (h[i] == 4 && c->objs[k].version == 2)
				stale++;
	}
	assert_int_equal(p.copied + p.rebuilt, stale + 1);
	assert_int_equal(p.reused, p.total - stale - 1);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_recovery_that_would_fill_the_disk_is_refused(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	write_objects(c, 60, 0, 7);
	c->nr = 9;
	c->node[8] = (struct fnode){.alive = 1, .zone = 8};
	size_t n;
	struct recovery_frag *fr = gather(c, &n);
	struct fnodes_rec nr = {0};
	struct recovery *r;
	assert_int_equal(recovery_new(NULL, &r), 0);
	struct recovery_epoch ep;
	epoch_of(c, &nr, 8, 2, &ep);
	ep.free_bytes = 3 * FS; /* far less than the share it must take */
	ep.reserve_bytes = FS;
	assert_int_equal(recovery_plan(r, &ep, fr, n), -ENOSPC);
	assert_non_null(strstr(recovery_refusal(r), "refused"));
	assert_non_null(strstr(recovery_refusal(r), "free"));
	struct recovery_progress p;
	recovery_progress(r, &p);
	assert_int_equal(p.state, RECOVERY_REFUSED);
	assert_true(p.need_bytes > 2 * FS);
	struct recovery_job *job;
	assert_int_equal(recovery_take(r, 0, &job, NULL), -ENOSPC);
	assert_int_equal(c->node[8].nr, 0); /* nothing written */

	/* With room, the same plan goes ahead. */
	ep.free_bytes = 1ULL << 30;
	assert_int_equal(recovery_plan(r, &ep, fr, n), 0);
	assert_string_equal(recovery_refusal(r), "");
	assert_int_equal(recovery_take(r, 0, &job, NULL), 0);
	recovery_finish(r, job, 0);
	recovery_free(r);
	free(fr);
	cluster_free(c);
}

static void test_source_dying_mid_recovery_falls_back_to_others(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 40, 40, 8);
	c->node[1].alive = 0;
	plan_all(c, &nr, 2);
	/* Node 6 dies before anyone noticed: plans still list it as a source. */
	c->node[6].alive = 0;
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	/* Jobs whose only copy was on 6 fail (replicas with 2 of 3 gone... no:
	 * 3 copies, 2 lost, 1 left) or rebuild from the 4 left; none corrupt. */
	/* Membership catches up: replan and finish. */
	plan_all(c, &nr, 3);
	run_all(c, &nr, 0);
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	assert_int_equal(assert_full_redundancy(c), 0);
	assert_all_readable(c);
	free_all(&nr);
	cluster_free(c);
}

static void test_too_few_zones_gives_best_redundancy_then_completes_on_join(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(6);
	struct fnodes_rec nr = {0};
	write_objects(c, 30, 0, 9);
	c->node[2].alive = 0;
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.done, p.total);
	/* Every node reports every object degraded: one position, no home. */
	recovery_progress(nr.r[0], &p);
	assert_int_equal(p.degraded, 30);
	assert_int_equal(p.state, RECOVERY_DONE);
	assert_int_equal(assert_full_redundancy(c), 30);
	/* A fragment whose position has no home is never dropped. */
	size_t homeless_checked = 0;
	for (int i = 0; i < 6; i++) {
		if (!c->node[i].alive)
			continue;
		for (size_t k = 0; k < c->node[i].nr; k++) {
			struct ffrag *f = c->node[i].frags[k];
			uint32_t h[EC_MAX_WIDTH];
			fake_locate(c, f->oid, f->nc, h);
			if (h[f->idx] != RECOVERY_NO_NODE)
				continue;
			struct recovery_frag rf = {.oid = f->oid,
						   .version = f->version,
						   .node = (uint32_t)i,
						   .idx = f->idx,
						   .copy_policy = f->cp,
						   .nr_copies = f->nc};
			assert_false(recovery_can_drop(nr.r[i], &rf));
			homeless_checked++;
		}
	}
	assert_true(homeless_checked > 0);
	assert_all_readable(c);

	/* A node joins: full redundancy again. */
	c->nr = 7;
	c->node[6] = (struct fnode){.alive = 1, .zone = 6};
	plan_all(c, &nr, 3);
	run_all(c, &nr, 0);
	sum_progress(c, &nr, &p);
	assert_int_equal(p.failed, 0);
	assert_int_equal(p.degraded, 0);
	assert_int_equal(assert_full_redundancy(c), 0);
	free_all(&nr);
	cluster_free(c);
}

static void test_corrupt_fragment_is_rebuilt_by_plan_object(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 10, 0, 10);
	plan_all(c, &nr, 1);
	run_all(c, &nr, 0); /* all verified, all reused */
	struct fobj *o = &c->objs[3];
	uint32_t h[EC_MAX_WIDTH];
	fake_locate(c, o->oid, o->nc, h);
	uint32_t victim = h[1];
	struct ffrag *f = node_find(&c->node[victim], o->oid, 1);
	f->data[100] ^= 0x5a;

	size_t n;
	struct recovery_frag *all = gather(c, &n), *mine = calloc(n, sizeof(*mine));
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (all[k].oid == o->oid)
			mine[m++] = all[k];
	struct recovery_epoch ep;
	epoch_of(c, &nr, victim, 1, &ep);
	assert_int_equal(recovery_plan_object(nr.r[victim], &ep, mine, m), 0);
	assert_true(recovery_pending(nr.r[victim], o->oid, 1));
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[victim], &p);
	assert_int_equal(p.failed, 0);
	assert_true(p.rebuilt + p.copied >= 1);
	f = node_find(&c->node[victim], o->oid, 1);
	assert_int_equal(f->crc, sd_crc32c(0, f->data, FS));
	assert_memory_equal(f->data, o->frag[1], FS);
	/* A node that holds no position of it has nothing to do. */
	uint32_t other = RECOVERY_NO_NODE;
	for (uint32_t i = 0; i < 8 && other == RECOVERY_NO_NODE; i++) {
		int holds = 0;
		for (int k = 0; k < o->nc; k++)
			holds |= h[k] == i;
		if (!holds)
			other = i;
	}
	epoch_of(c, &nr, other, 1, &ep);
	assert_int_equal(recovery_plan_object(nr.r[other], &ep, mine, m), -ENOENT);
	free(all);
	free(mine);
	free_all(&nr);
	cluster_free(c);
}

static void test_lost_object_is_reported_and_never_dropped(void **state)
{
	(void)state;
	struct fcluster *c = cluster_new(8);
	struct fnodes_rec nr = {0};
	write_objects(c, 5, 0, 11);
	/* Object 0 loses 3 of 6 fragments: below d = 4. */
	struct fobj *o = &c->objs[0];
	uint32_t h[EC_MAX_WIDTH];
	fake_locate(c, o->oid, o->nc, h);
	for (int i = 0; i < 3; i++)
		node_remove(&c->node[h[i]], o->oid, (uint8_t)i);
	plan_all(c, &nr, 2);
	run_all(c, &nr, 0);
	struct recovery_progress p;
	recovery_progress(nr.r[h[4]], &p);
	assert_int_equal(p.lost, 1);
	/* The daemon names it (one err line per object, issue 14). */
	uint64_t lost[4] = {0};
	assert_int_equal(recovery_lost_oids(nr.r[h[4]], lost, 4), 1);
	assert_int_equal(lost[0], o->oid);
	assert_int_equal(recovery_lost_oids(nr.r[h[4]], NULL, 0), 1);
	struct recovery_frag rf = {.oid = o->oid,
				   .version = 1,
				   .node = h[4],
				   .idx = 4,
				   .copy_policy = o->cp,
				   .nr_copies = o->nc};
	assert_false(recovery_can_drop(nr.r[h[4]], &rf));
	free_all(&nr);
	cluster_free(c);
}

/* Every holder of a one-copy object is this node. */
static int locate_self(void *arg, uint64_t oid, int n, uint32_t *out)
{
	for (int i = 0; i < n; i++)
		out[i] = 0;
	return 0;
}

/* A one-node cluster with one copy: the only job keeps the local fragment
 * and has no source at all. Taking it copied zero sources from a source
 * table that was never allocated (memcpy from NULL + 0: UBSan's "applying
 * zero offset to null pointer", found by fuzz_client). */
static void test_job_without_sources_is_taken(void **state)
{
	(void)state;
	struct recovery_frag f = {.oid = 0x0000000100000001ull,
				  .version = 3,
				  .disk_bytes = FS,
				  .frag_size = FS,
				  .node = 0,
				  .idx = 0,
				  .nr_copies = 1};
	uint32_t members[1] = {0};
	struct recovery_epoch ep = {.epoch = 2,
				    .self = 0,
				    .members = members,
				    .nr_members = 1,
				    .locate = locate_self,
				    .free_bytes = 1ull << 30};
	struct recovery *r;
	assert_int_equal(recovery_new(NULL, &r), 0);
	assert_int_equal(recovery_plan(r, &ep, &f, 1), 0);
	struct recovery_job *job;
	assert_int_equal(recovery_take(r, 0, &job, NULL), 0);
	assert_int_equal(job->kind, RECOVERY_REUSE);
	assert_int_equal(job->nr_src, 0);
	assert_true(job->oid == f.oid && job->version == 3);
	recovery_finish(r, job, 0);
	recovery_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_returning_node_reuses_valid_data_and_refetches_stale),
	    cmocka_unit_test(test_recovery_that_would_fill_the_disk_is_refused),
	    cmocka_unit_test(test_source_dying_mid_recovery_falls_back_to_others),
	    cmocka_unit_test(test_too_few_zones_gives_best_redundancy_then_completes_on_join),
	    cmocka_unit_test(test_corrupt_fragment_is_rebuilt_by_plan_object),
	    cmocka_unit_test(test_lost_object_is_reported_and_never_dropped),
	    cmocka_unit_test(test_job_without_sources_is_taken),
	};
	sd_log_set_level(SD_LOG_WARNING);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	ec_codec_cleanup();
	return rc;
}
