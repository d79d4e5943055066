/* test_cluster_chain.c - unit tests of the daemon's chained rings (sheep/cluster/chain.c): step by step equals replay, positional stability, anchors, and a joiner holding only its snapshot's records builds the same rings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/sd_wire.h"
#include "sheep/cluster/group_priv.h"

#define WIDTH 6
#define NOIDS 1000

static struct sd_node node_of(int k)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "10.0.%d.%d", k / 250, k % 250 + 1);
	n.port = 7000;
	n.zone = (uint32_t)k;
	n.space = 1ull << 40;
	n.incarnation = 1;
	return n;
}

/* A daemon struct with only the cluster state these tests use. */
static struct sheep *new_sheep(void)
{
	struct sheep *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->cl = calloc(1, sizeof(*s->cl));
	assert_non_null(s->cl);
	return s;
}

static void free_sheep(struct sheep *s)
{
	group_epochs_clear(s);
	free(s->cl);
	free(s);
}

/* The members of each epoch: nodes with in[k] set. */
static void add_epoch(struct sheep *s, uint32_t e, const bool *in, int max)
{
	struct sd_node *m = calloc((size_t)max, sizeof(*m));
	assert_non_null(m);
	size_t nr = 0;
	for (int k = 0; k < max; k++)
		if (in[k])
			m[nr++] = node_of(k);
	assert_int_equal(group_epoch_add(s, e, 0, m, nr, false), 0);
	free(m);
}

/* Holder (as "addr") of position i of object oid, or "" for a hole. */
static const char *holder(const struct sheep_ring *r, uint64_t oid, int i)
{
	int out[WIDTH];
	assert_int_equal(ring_locate(r->ring, oid, WIDTH, out), WIDTH);
	return out[i] >= 0 ? r->data[out[i]].addr : "";
}

static void assert_same_rings(const struct sheep_ring *a, const struct sheep_ring *b)
{
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->anchor, b->anchor);
	for (uint64_t oid = 1; oid <= NOIDS; oid++)
		for (int i = 0; i < WIDTH; i++)
			assert_string_equal(holder(a, oid * 0x9e3779b97f4a7c15ull, i),
					    holder(b, oid * 0x9e3779b97f4a7c15ull, i));
}

/* 8 nodes, then 40 joins and leaves of one node at a time: each step built
 * from the previous view equals the replay from the anchor; within a span a
 * leave moves only the leaver's positions and a join only what the joiner
 * takes; epoch 33 starts a new chain. */
static void test_steps_equal_replay_and_keep_positions(void **state)
{
	(void)state;
	struct sheep *s = new_sheep();
	bool in[16] = {false};
	for (int k = 0; k < 8; k++)
		in[k] = true;
	uint32_t e = 1;
	add_epoch(s, e, in, 16);
	struct sheep_view prev = {0};
	assert_int_equal(group_chain_ring(s, NULL, e, true, NULL, 0, &prev.cur), 0);
	for (e = 2; e <= 41; e++) {
		int k = (int)((e * 7) % 16);
		in[k] = !in[k];
		add_epoch(s, e, in, 16);
		struct sheep_ring *step = NULL, *replay = NULL;
		assert_int_equal(group_chain_ring(s, &prev, e, true, NULL, 0, &step), 0);
		assert_int_equal(group_chain_ring(s, NULL, e, true, NULL, 0, &replay), 0);
		assert_same_rings(step, replay);
		assert_int_equal(step->anchor, e <= 32 ? 1 : 33);
		if (step->anchor == prev.cur->anchor) {
			struct sd_node changed = node_of(k);
			const char *who = changed.addr;
			for (uint64_t oid = 1; oid <= NOIDS; oid++)
				for (int i = 0; i < WIDTH; i++) {
					const char *a = holder(prev.cur, oid, i),
						   *b = holder(step, oid, i);
					if (!strcmp(a, b))
						continue;
					if (in[k]) /* a join: only the joiner takes */
						assert_string_equal(b, who);
					else /* a leave: only the leaver's move */
						assert_string_equal(a, who);
				}
		}
		group_ring_put(replay);
		group_ring_put(prev.cur);
		prev.cur = step;
	}
	group_ring_put(prev.cur);
	free_sheep(s);
}

/* Members unchanged for 40 epochs (a cluster restarted again and again):
 * formatted with SD_CLUSTER_FLAG_JOIN_ANCHORS, the ring of epoch 33 (the
 * second span's anchor) is the ring of epoch 32, so nothing moves; a
 * cluster formatted without it keeps its one-shot anchor, which places
 * differently (what moved most fragments every 32 epochs). */
static void test_span_anchor_of_unchanged_members_moves_nothing(void **state)
{
	(void)state;
	for (int flag = 0; flag < 2; flag++) {
		struct sheep *s = new_sheep();
		s->cl->fmt_flags = flag ? SD_CLUSTER_FLAG_JOIN_ANCHORS : 0;
		bool in[8];
		for (int k = 0; k < 8; k++)
			in[k] = true;
		for (uint32_t e = 1; e <= 40; e++)
			add_epoch(s, e, in, 8);
		struct sheep_ring *r32 = NULL, *r33 = NULL, *r40 = NULL;
		assert_int_equal(group_chain_ring(s, NULL, 32, true, NULL, 0, &r32), 0);
		assert_int_equal(group_chain_ring(s, NULL, 33, true, NULL, 0, &r33), 0);
		assert_int_equal(group_chain_ring(s, NULL, 40, true, NULL, 0, &r40), 0);
		assert_int_equal(r32->anchor, 1);
		assert_int_equal(r33->anchor, 33);
		int moved = 0;
		for (uint64_t oid = 1; oid <= NOIDS; oid++)
			for (int i = 0; i < WIDTH; i++) {
				moved += strcmp(holder(r32, oid, i), holder(r33, oid, i)) != 0;
				assert_string_equal(holder(r33, oid, i), holder(r40, oid, i));
			}
		if (flag)
			assert_int_equal(moved, 0);
		else
			assert_true(moved > NOIDS * WIDTH / 2);
		group_ring_put(r32);
		group_ring_put(r33);
		group_ring_put(r40);
		free_sheep(s);
	}
}

/* 300-node epochs (28 KiB records): the snapshot carries only the newest
 * 8. A joiner holding just those builds the same current ring and keeps
 * exactly the same earlier rings as a member with the whole log. */
static void test_joiner_with_snapshot_window_agrees(void **state)
{
	(void)state;
	enum { MAX = 320 };
	struct sheep *full = new_sheep(), *joiner = new_sheep();
	assert_non_null(full);
	assert_non_null(joiner);
	bool in[MAX] = {false};
	for (int k = 0; k < 300; k++)
		in[k] = true;
	uint32_t cur = 20;
	for (uint32_t e = 1; e <= cur; e++) {
		if (e > 1) {
			int k = (int)((e * 37) % MAX);
			in[k] = !in[k];
		}
		add_epoch(full, e, in, MAX);
	}
	/* What group_build_snapshot sends: the newest records within budget. */
	size_t bytes = 0, first = full->cl->nr_epochs;
	while (first > 0) {
		const struct epoch_rec *er = &full->cl->epochs[first - 1];
		size_t b = sizeof(struct sd_epoch_rec) + er->nr_nodes * sizeof(struct sd_node);
		if (bytes + b > SNAP_EPOCH_BUDGET)
			break;
		bytes += b;
		first--;
	}
	assert_true(first > 0);
	for (size_t i = first; i < full->cl->nr_epochs; i++)
		assert_int_equal(group_epoch_add(joiner, full->cl->epochs[i].epoch, 0,
						 full->cl->epochs[i].nodes, full->cl->epochs[i].nr_nodes,
						 false),
				 0);
	struct sheep_ring *a = NULL, *b = NULL;
	assert_int_equal(group_chain_ring(full, NULL, cur, true, NULL, 0, &a), 0);
	assert_int_equal(group_chain_ring(joiner, NULL, cur, true, NULL, 0, &b), 0);
	assert_true(a->anchor < cur); /* chained, not rebuilt */
	assert_same_rings(a, b);
	group_ring_put(a);
	group_ring_put(b);
	int kept = 0, dropped = 0;
	for (uint32_t x = cur - SHEEP_VIEW_HIST; x < cur; x++) {
		a = group_hist_ring(full, NULL, x, cur);
		b = group_hist_ring(joiner, NULL, x, cur);
		assert_true(!a == !b);
		if (a) {
			assert_same_rings(a, b);
			kept++;
		} else {
			dropped++;
		}
		group_ring_put(a);
		group_ring_put(b);
	}
	assert_true(kept > 0);
	assert_true(dropped > 0);
	/* A member whose log lacks a record its chain needs says so. */
	struct sheep_ring *r = NULL;
	assert_int_equal(
	    group_chain_ring(joiner, NULL, full->cl->epochs[first].epoch, true, NULL, 0, &r), -ENOENT);
	free_sheep(full);
	free_sheep(joiner);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_steps_equal_replay_and_keep_positions),
	    cmocka_unit_test(test_span_anchor_of_unchanged_members_moves_nothing),
	    cmocka_unit_test(test_joiner_with_snapshot_window_agrees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
