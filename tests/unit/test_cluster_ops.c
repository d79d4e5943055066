/* test_cluster_ops.c - unit tests of the daemon's cluster operations applied once
 * (sheep/cluster/apply.c, struct cop_done): a second copy of an operation is skipped and answered
 * as the first, the list keeps the last COP_DONE_MAX, and a joiner gets it with the state so that a
 * copy it replays after its snapshot is skipped as the members skipped it. Also the layout version
 * of the state (SNAP_WIRE): a joiner refuses a snapshot of another build, a member ignores its
 * offer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/event.h"
#include "lib/sd_wire.h"
#include "sheep/cluster/group_priv.h"

static struct sd_node node_of(int k)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "10.0.0.%d", k + 1);
	n.port = 7000;
	n.zone = (uint32_t)k;
	n.space = 1ull << 40;
	n.incarnation = 1;
	return n;
}

/* A formatted member (or, joiner, one waiting for its snapshot) with
 * nodes 0-2 at epoch 1, its state files in a directory of its own. */
static struct sheep *new_sheep(int self, bool joiner)
{
	struct sheep *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->cl = calloc(1, sizeof(*s->cl));
	assert_non_null(s->cl);
	pthread_mutex_init(&s->cl->state_lock, NULL);
	pthread_cond_init(&s->cl->state_cond, NULL);
	assert_int_equal(vdi_table_init(&s->cl->vdis), 0);
	s->cl->quorate = true;
	s->self = node_of(self);
	char *dir = strdup("/tmp/test_cluster_ops.XXXXXX");
	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	s->opt.dir = dir;
	char sub[64];
	snprintf(sub, sizeof(sub), "%s/epoch", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	if (!joiner) {
		struct sd_node m[3] = {node_of(0), node_of(1), node_of(2)};
		assert_int_equal(group_epoch_add(s, 1, 0, m, 3, false), 0);
		s->cl->ctime = 1;
		s->cl->epoch = 1;
		s->cl->synced = true;
		s->cl->members = calloc(3, sizeof(struct sd_node));
		assert_non_null(s->cl->members);
		memcpy(s->cl->members, m, sizeof(m));
		s->cl->nr_members = 3;
	}
	return s;
}

static void free_sheep(struct sheep *s)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->opt.dir);
	assert_int_equal(system(cmd), 0);
	free((char *)s->opt.dir);
	sheep_view_put(s->cl->view);
	group_epochs_clear(s);
	while (s->cl->joiners)
		group_remove_joiner(s, &s->cl->joiners->node);
	vdi_table_free(&s->cl->vdis);
	free(s->cl->members);
	free(s->cl);
	free(s);
}

static struct cmsg_vdi new_vdi(const char *name, uint64_t token)
{
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_NEW_VDI;
	m.h.len = sizeof(m);
	m.h.token = token;
	m.copies = 3;
	m.size = 1 << 20;
	snprintf(m.name, sizeof(m.name), "%s", name);
	return m;
}

/* A waiter of this sheep's operation token, as cop.c's. */
static void wait_for(struct sheep *s, struct cop_wait *w, uint64_t token)
{
	memset(w, 0, sizeof(*w));
	w->token = token;
	w->next = s->cl->waits;
	s->cl->waits = w;
}

static void test_a_second_copy_is_applied_once_and_answered_as_the_first(void **state)
{
	(void)state;
	struct sheep *s = new_sheep(0, false);
	struct sd_node a = node_of(1);
	struct cmsg_vdi m = new_vdi("v", 7);
	bool wipe = false;
	group_apply_msg(s, &a, &m, sizeof(m), &wipe);
	assert_int_equal(s->cl->vdis.nr, 1);
	group_apply_msg(s, &a, &m, sizeof(m), &wipe); /* the copy sent again */
	assert_int_equal(s->cl->vdis.nr, 1);
	assert_int_equal(s->cl->seq, 2); /* both are events */
	/* The same message as another operation (a new token) is applied:
	 * without the list, the copy would have answered this. */
	struct cmsg_vdi m2 = new_vdi("v", 8);
	const struct cop_done *d;
	group_apply_msg(s, &a, &m2, sizeof(m2), &wipe);
	assert_non_null(d = cop_done_find(s, &a, 8));
	assert_int_equal(d->result, SD_RES_VDI_EXIST);
	/* Another sender's token 7 is another operation. */
	struct sd_node b = node_of(2);
	struct cmsg_vdi m3 = new_vdi("w", 7);
	group_apply_msg(s, &b, &m3, sizeof(m3), &wipe);
	assert_int_equal(s->cl->vdis.nr, 2);

	/* This sheep's own operation: the first copy lands while nobody
	 * waits (its waiter was told "not sent"); the copy sent again gets
	 * the first one's answer and vid. */
	struct cmsg_vdi m4 = new_vdi("x", 9);
	group_apply_msg(s, &s->self, &m4, sizeof(m4), &wipe);
	assert_non_null(d = cop_done_find(s, &s->self, 9));
	assert_int_equal(d->result, SD_RES_SUCCESS);
	uint32_t vid = d->vid;
	assert_true(vid != 0);
	struct cop_wait w;
	wait_for(s, &w, 9);
	group_apply_msg(s, &s->self, &m4, sizeof(m4), &wipe);
	assert_int_equal(w.done, 1);
	assert_int_equal(w.result, SD_RES_SUCCESS);
	assert_int_equal(w.vid, vid);
	assert_int_equal(s->cl->vdis.nr, 3);
	s->cl->waits = NULL;
	free_sheep(s);
}

static void test_the_list_keeps_the_last_operations(void **state)
{
	(void)state;
	struct sheep *s = new_sheep(0, false);
	struct sd_node a = node_of(1);
	for (uint64_t t = 1; t <= COP_DONE_MAX + 6; t++)
		cop_done_add(s, &a, t, SD_RES_SUCCESS, (uint32_t)t);
	assert_int_equal(s->cl->nr_done, COP_DONE_MAX);
	for (uint64_t t = 1; t <= 6; t++)
		assert_null(cop_done_find(s, &a, t));
	for (uint64_t t = 7; t <= COP_DONE_MAX + 6; t++) {
		const struct cop_done *d = cop_done_find(s, &a, t);
		assert_non_null(d);
		assert_int_equal(d->vid, (uint32_t)t);
	}
	/* A restarted sender (another incarnation) is another sender. */
	a.incarnation++;
	assert_null(cop_done_find(s, &a, COP_DONE_MAX + 6));
	free_sheep(s);
}

/* The member applies operation 7 (the first copy), then node 3 joins and
 * gets its snapshot; the copy sent again comes after the join, so the
 * joiner buffered it and replays it after loading the snapshot: it must
 * skip it, as the member does, or the two would disagree (here: the
 * joiner would answer VDI_EXIST where the member answered SUCCESS, and
 * for a snapshot or a clone would hold a VDI the member does not). */
static void test_a_joiner_skips_the_copies_the_members_skip(void **state)
{
	(void)state;
	struct sheep *s = new_sheep(0, false);
	struct sd_node a = node_of(1);
	bool wipe = false;
	for (int k = 0; k < COP_DONE_MAX + 3; k++) { /* a full list, wrapped */
		char name[16];
		snprintf(name, sizeof(name), "v%d", k);
		struct cmsg_vdi m = new_vdi(name, 100 + (uint64_t)k);
		group_apply_msg(s, &a, &m, sizeof(m), &wipe);
	}
	struct cmsg_vdi first = new_vdi("v", 7);
	group_apply_msg(s, &a, &first, sizeof(first), &wipe);
	struct joiner j = {.node = node_of(3), .join_seq = s->cl->seq};
	size_t len;
	void *snap = group_build_snapshot(s, &j, &len);
	assert_non_null(snap);

	struct sheep *n = new_sheep(3, true);
	/* What it buffered: its own join (event join_seq, in the snapshot),
	 * then the copy sent again. */
	struct pending_event *join = calloc(1, sizeof(*join));
	assert_non_null(join);
	join->sender = node_of(3);
	join->joined = true;
	join->nr_members = 4;
	join->members = calloc(4, sizeof(struct sd_node));
	assert_non_null(join->members);
	for (int k = 0; k < 4; k++)
		join->members[k] = node_of(k);
	group_pending_add(n, join);
	struct pending_event *copy = calloc(1, sizeof(*copy));
	assert_non_null(copy);
	copy->is_msg = 1;
	copy->sender = a;
	copy->msg = malloc(sizeof(first));
	assert_non_null(copy->msg);
	memcpy(copy->msg, &first, sizeof(first));
	copy->len = sizeof(first);
	group_pending_add(n, copy);
	group_apply_snapshot(n, snap, len, &wipe);
	free(snap);
	assert_true(n->cl->synced);
	/* The member skips the copy too. */
	group_apply_msg(s, &a, &first, sizeof(first), &wipe);
	assert_int_equal(n->cl->vdis.nr, s->cl->vdis.nr);
	assert_int_equal(n->cl->seq, s->cl->seq);
	assert_int_equal(n->cl->nr_done, s->cl->nr_done);
	const struct cop_done *dn = cop_done_find(n, &a, 7), *ds = cop_done_find(s, &a, 7);
	assert_non_null(dn);
	assert_non_null(ds);
	assert_int_equal(dn->result, SD_RES_SUCCESS);
	assert_int_equal(dn->vid, ds->vid);
	/* The oldest operation the member forgot, the joiner never had. */
	assert_null(cop_done_find(n, &a, 100));
	assert_non_null(cop_done_find(n, &a, 100 + COP_DONE_MAX));
	free_sheep(n);
	free_sheep(s);
}

/* A formatted member (new_sheep) that created one VDI, "v", for node 1. */
static struct sheep *member_with_a_vdi(void)
{
	struct sheep *s = new_sheep(0, false);
	struct sd_node a = node_of(1);
	bool wipe = false;
	struct cmsg_vdi m = new_vdi("v", 7);
	group_apply_msg(s, &a, &m, sizeof(m), &wipe);
	return s;
}

/* The snapshot member s sends node 3, joining now; h gets its header. */
static char *snapshot_for_node3(struct sheep *s, size_t *len, struct snap_hdr *h)
{
	struct joiner j = {.node = node_of(3), .join_seq = s->cl->seq};
	char *snap = group_build_snapshot(s, &j, len);
	assert_non_null(snap);
	memcpy(h, snap, sizeof(*h));
	return snap;
}

/* Give a fresh joiner (node 3) the snapshot snap with its header
 * replaced by d: it must take nothing of it. The joiner, for more checks
 * (free_joiner). */
static struct sheep *refused_by_a_joiner(char *snap, size_t len, const struct snap_hdr *d)
{
	struct sheep *n = new_sheep(3, true);
	assert_int_equal(sd_loop_create(&n->loop), 0); /* a refusal stops it */
	bool wipe = false;
	memcpy(snap, d, sizeof(*d));
	group_apply_snapshot(n, snap, len, &wipe);
	assert_false(n->cl->synced);
	assert_int_equal(n->cl->nr_done, 0);
	assert_int_equal(n->cl->vdis.nr, 0);
	return n;
}

static void free_joiner(struct sheep *n)
{
	sd_loop_destroy(n->loop);
	free_sheep(n);
}

/* A snapshot whose list of operations is too long for the list, or for
 * the message, is refused whole: the joiner takes nothing of it. */
static void test_a_damaged_list_in_a_snapshot_is_refused(void **state)
{
	(void)state;
	struct sheep *s = member_with_a_vdi();
	size_t len;
	struct snap_hdr h;
	char *snap = snapshot_for_node3(s, &len, &h);
	assert_int_equal(h.nr_done, 1);
	const uint16_t bad[] = {COP_DONE_MAX + 1, 2}; /* over the list; over the message */
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct snap_hdr d = h;
		d.nr_done = bad[k];
		free_joiner(refused_by_a_joiner(snap, len, &d));
	}
	free(snap);
	free_sheep(s);
}

/* A snapshot written by another build (another SNAP_WIRE version, or a
 * build from before the field, whose epochs sit where it is) stops the
 * joiner with exit status 1 and nothing of the snapshot taken; one of its
 * own build (the test hook's version on both sides) is taken. */
static void test_a_snapshot_of_another_build_is_refused(void **state)
{
	(void)state;
	struct sheep *s = member_with_a_vdi();
	size_t len;
	struct snap_hdr h;
	char *snap = snapshot_for_node3(s, &len, &h);
	assert_int_equal(h.wire, SNAP_WIRE_MAGIC | SNAP_WIRE_VERSION);
	const uint32_t other[] = {SNAP_WIRE_MAGIC | (SNAP_WIRE_VERSION + 1), 0, h.epoch};
	for (size_t k = 0; k < sizeof(other) / sizeof(other[0]); k++) {
		struct snap_hdr d = h;
		d.wire = other[k];
		struct sheep *n = refused_by_a_joiner(snap, len, &d);
		assert_int_equal(n->exit_status, 1);
		assert_true(atomic_load(&n->stopping));
		assert_int_equal(n->cl->ctime, 0);
		assert_int_equal(n->cl->nr_epochs, 0);
		free_joiner(n);
	}
	free(snap);
	/* Both sides at version 2 (SHEEP_TEST_WIRE_VER=2): taken. */
	s->opt.test_wire_ver = 2;
	snap = snapshot_for_node3(s, &len, &h);
	struct sheep *n = new_sheep(3, true);
	n->opt.test_wire_ver = 2;
	bool wipe = false;
	group_apply_snapshot(n, snap, len, &wipe);
	assert_int_equal(n->exit_status, 0);
	assert_true(n->cl->synced);
	assert_int_equal(n->cl->ctime, 1);
	assert_int_equal(n->cl->vdis.nr, 1);
	free_sheep(n);
	free(snap);
	free_sheep(s);
}

/* An unformatted member takes a formatted node's offered state, but not
 * one from another build. */
static void test_an_offer_of_another_build_is_ignored(void **state)
{
	(void)state;
	struct sheep *s = member_with_a_vdi();
	struct sd_node a = node_of(1);
	size_t len;
	char *offer = group_build_offer(s, &len);
	assert_non_null(offer);
	for (int k = 0; k < 2; k++) {
		struct sheep *n = new_sheep(3, true);
		n->cl->synced = true; /* a member of a cluster not formatted yet */
		if (k == 0)
			n->opt.test_wire_ver = SNAP_WIRE_VERSION + 1;
		group_apply_offer(n, &a, offer, len);
		assert_int_equal(n->cl->ctime, k == 0 ? 0 : 1);
		assert_int_equal(n->cl->vdis.nr, k == 0 ? 0 : 1);
		free_sheep(n);
	}
	free(offer);
	free_sheep(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_second_copy_is_applied_once_and_answered_as_the_first),
	    cmocka_unit_test(test_the_list_keeps_the_last_operations),
	    cmocka_unit_test(test_a_joiner_skips_the_copies_the_members_skip),
	    cmocka_unit_test(test_a_damaged_list_in_a_snapshot_is_refused),
	    cmocka_unit_test(test_a_snapshot_of_another_build_is_refused),
	    cmocka_unit_test(test_an_offer_of_another_build_is_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
