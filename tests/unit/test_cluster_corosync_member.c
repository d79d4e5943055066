/* test_cluster_corosync_member.c - the corosync driver's member protocol (corosync_member.c) on a
 * simulated agreed-order bus with a virtual clock: newcomers wait while the leader sends member
 * lists to the newcomers ahead of them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#if HAVE_COROSYNC
#include "sheep/cluster/corosync_priv.h"

/*
 * corosync_member.c is the protocol; its transport (corosync_cpg.c: libcpg,
 * the timerfd) is replaced here by a bus that delivers every message to
 * every process in the group in one order (what CPG's agreed order gives)
 * and a virtual clock. A message can be held on the bus until a due time:
 * that is how a leader busy sending member lists (SYNC) to 127 newcomers
 * one after the other looks to the last of them. Everything is
 * deterministic: no threads, no real time.
 */

#define NR_PROC	    4
#define SYNC_GAP_MS 6000 /* each SYNC reaches the bus this long after the previous one */
#define STEP_MS	    100

struct wire_msg {
	struct wire_msg *next;
	int from;
	uint64_t due_ms;
	size_t len;
	uint8_t *data;
};

struct proc {
	struct cluster_ctx *ctx;
	bool in_group;	      /* CPG would deliver to it */
	uint64_t deadline_ms; /* the protocol timer (0: disarmed) */
	unsigned closes;      /* cc_cpg_close: it gave up and left the group */
	unsigned joins;	      /* cc_cpg_join: it came back after a backoff */
	size_t nr_seen;	      /* the last member list it reported */
	uint16_t seen[NR_PROC];
};

static struct proc procs[NR_PROC];
static struct wire_msg *wire_head, *wire_tail;
static uint64_t vnow_ms, last_sync_due_ms;

static int proc_of(const struct cluster_ctx *ctx)
{
	for (int i = 0; i < NR_PROC; i++)
		if (procs[i].ctx == ctx)
			return i;
	fail_msg("unknown ctx");
	return -1;
}

/* ---- the fake transport that corosync_member.c calls (the event queues are corosync_evq.c's) ----
 */

void cc_arm_timer(struct cluster_ctx *ctx, unsigned ms)
{
	procs[proc_of(ctx)].deadline_ms = ms ? vnow_ms + ms : 0;
}

int cc_send(struct cluster_ctx *ctx, uint16_t type, const void *p1, size_t l1, const void *p2,
	    size_t l2)
{
	struct wire_msg *m = calloc(1, sizeof(*m));
	struct cc_hdr h = {.magic = CC_MAGIC, .type = type, .len = (uint32_t)(l1 + l2)};
	assert_non_null(m);
	m->from = proc_of(ctx);
	m->len = sizeof(h) + l1 + l2;
	m->data = malloc(m->len);
	assert_non_null(m->data);
	memcpy(m->data, &h, sizeof(h));
	if (l1)
		memcpy(m->data + sizeof(h), p1, l1);
	if (l2)
		memcpy(m->data + sizeof(h) + l1, p2, l2);
	m->due_ms = vnow_ms;
	if (type == CC_MSG_SYNC) {
		uint64_t after = last_sync_due_ms > vnow_ms ? last_sync_due_ms : vnow_ms;
		m->due_ms = last_sync_due_ms = after + SYNC_GAP_MS;
	}
	if (wire_tail)
		wire_tail->next = m;
	else
		wire_head = m;
	wire_tail = m;
	return 0;
}

void cc_cpg_close(struct cluster_ctx *ctx)
{
	struct proc *p = &procs[proc_of(ctx)];
	p->in_group = false;
	p->closes++;
}

/* Forward: a process joining the group is a confchg for all in it. */
static void group_join(int i);

int cc_cpg_join(struct cluster_ctx *ctx)
{
	int i = proc_of(ctx);
	procs[i].joins++;
	group_join(i);
	return 0;
}

/* ---- the simulated group ---- */

static void on_membership(void *arg, const struct sd_node *m, size_t nr,
			  const struct sd_node *changed, bool joined)
{
	struct proc *p = arg;
	p->nr_seen = nr;
	for (size_t k = 0; k < nr && k < NR_PROC; k++)
		p->seen[k] = m[k].port;
}

static const struct cluster_events events = {.membership = on_membership};

static struct cc_event *confchg(const int *members, size_t nr_member, const int *joined,
				size_t nr_joined)
{
	struct cc_event *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->type = CC_EV_CONFCHG;
	e->nr_member = nr_member;
	e->nr_joined = nr_joined;
	e->addrs = calloc(nr_member + nr_joined, sizeof(*e->addrs));
	assert_non_null(e->addrs);
	for (size_t k = 0; k < nr_member; k++) {
		e->addrs[k].nodeid = procs[members[k]].ctx->my_nodeid;
		e->addrs[k].pid = procs[members[k]].ctx->my_pid;
	}
	for (size_t k = 0; k < nr_joined; k++) {
		e->addrs[nr_member + k].nodeid = procs[joined[k]].ctx->my_nodeid;
		e->addrs[nr_member + k].pid = procs[joined[k]].ctx->my_pid;
	}
	return e;
}

/* Processes i (nr of them) enter the CPG group together: one confchg,
 * delivered to everyone in the group afterwards, in the bus order. */
static void group_join_many(const int *who, size_t nr)
{
	int members[NR_PROC];
	size_t n = 0;
	for (size_t k = 0; k < nr; k++) {
		procs[who[k]].in_group = true;
		procs[who[k]].ctx->state = CC_JOINING;
	}
	for (int i = 0; i < NR_PROC; i++)
		if (procs[i].in_group)
			members[n++] = i;
	for (int i = 0; i < NR_PROC; i++)
		if (procs[i].in_group)
			cc_handle_event(procs[i].ctx, confchg(members, n, who, nr));
}

static void group_join(int i)
{
	group_join_many(&i, 1);
}

/* Deliver every message due by now, in bus order (a held message holds
 * back everything sent after it, as agreed order does). */
static void deliver_due(void)
{
	while (wire_head && wire_head->due_ms <= vnow_ms) {
		struct wire_msg *m = wire_head;
		wire_head = m->next;
		if (!wire_head)
			wire_tail = NULL;
		for (int i = 0; i < NR_PROC; i++) {
			if (!procs[i].in_group)
				continue;
			struct cc_event *e = calloc(1, sizeof(*e));
			assert_non_null(e);
			e->type = CC_EV_MSG;
			e->nodeid = procs[m->from].ctx->my_nodeid;
			e->pid = procs[m->from].ctx->my_pid;
			e->len = m->len;
			e->data = malloc(m->len);
			assert_non_null(e->data);
			memcpy(e->data, m->data, m->len);
			cc_handle_event(procs[i].ctx, e);
		}
		free(m->data);
		free(m);
	}
}

/* Run the virtual clock until ms, delivering and firing timers. */
static void run_until(uint64_t ms)
{
	while (vnow_ms < ms) {
		vnow_ms += STEP_MS;
		deliver_due();
		for (int i = 0; i < NR_PROC; i++)
			if (procs[i].deadline_ms && vnow_ms >= procs[i].deadline_ms) {
				procs[i].deadline_ms = 0;
				cc_on_timer(procs[i].ctx);
			}
	}
}

static int setup(void **state)
{
	memset(procs, 0, sizeof(procs));
	wire_head = wire_tail = NULL;
	vnow_ms = last_sync_due_ms = 0;
	for (int i = 0; i < NR_PROC; i++) {
		struct cluster_ctx *c = calloc(1, sizeof(*c));
		assert_non_null(c);
		c->ev = &events;
		c->arg = &procs[i];
		c->my_nodeid = 1;
		c->my_pid = 1000 + (uint32_t)i;
		snprintf(c->self.addr, sizeof(c->self.addr), "127.0.0.1");
		c->self.port = (uint16_t)(7000 + i);
		c->state = CC_INIT;
		procs[i].ctx = c;
	}
	return 0;
}

static int teardown(void **state)
{
	while (wire_head) {
		struct wire_msg *m = wire_head;
		wire_head = m->next;
		free(m->data);
		free(m);
	}
	wire_tail = NULL;
	for (int i = 0; i < NR_PROC; i++) {
		cc_evq_clear(&procs[i].ctx->buffered);
		cc_members_clear(procs[i].ctx);
		free(procs[i].ctx);
	}
	return 0;
}

/*
 * The race of 128 sheep started at once: three newcomers join a founder
 * together; the founder sends their member lists (SYNC) one after the
 * other, each SYNC_GAP_MS apart, so the last newcomer's arrives 18 s after
 * it joined, far beyond CC_PENDING_TIMEOUT_MS (8 s). Each SYNC for another
 * newcomer shows the members are alive and working through the queue:
 * the newcomer waits on, and all four agree without anyone leaving. Before
 * the fix the timer ran from the join alone: the last two newcomers gave
 * up at 8 s, left (a confchg for all) and came back, over and over ("joining
 * again" 1,683 times at 128 sheep).
 */
static void test_newcomer_waits_while_syncs_go_to_newcomers_ahead(void **state)
{
	static const int newcomers[] = {1, 2, 3};
	assert_true((uint64_t)SYNC_GAP_MS * 3 > CC_PENDING_TIMEOUT_MS + SYNC_GAP_MS);

	group_join(0);
	assert_int_equal(procs[0].ctx->state, CC_ESTABLISHED); /* alone: founder */
	group_join_many(newcomers, 3);
	for (int i = 1; i < NR_PROC; i++)
		assert_int_equal(procs[i].ctx->state, CC_PENDING);

	run_until((uint64_t)SYNC_GAP_MS * 3 + 2000);

	for (int i = 0; i < NR_PROC; i++) {
		assert_int_equal(procs[i].closes, 0); /* nobody gave up and left */
		assert_int_equal(procs[i].joins, 0);
		assert_int_equal(procs[i].ctx->state, CC_ESTABLISHED);
		assert_int_equal(procs[i].ctx->nr, NR_PROC);
		assert_int_equal(procs[i].nr_seen, NR_PROC);
		for (int k = 0; k < NR_PROC; k++) {
			assert_int_equal(procs[i].seen[k], 7000 + k); /* one order everywhere */
			assert_false(procs[i].ctx->members[k].pending);
		}
	}
}

/* The wait is not unbounded: a newcomer that sees no SYNC at all (the
 * members are gone or stuck) still gives up after CC_PENDING_TIMEOUT_MS
 * and joins again after its backoff. */
static void test_newcomer_without_any_sync_gives_up_after_the_timeout(void **state)
{
	group_join(0);
	group_join(1);
	assert_int_equal(procs[1].ctx->state, CC_PENDING);
	/* The founder vanishes from the bus without a confchg (stuck). */
	procs[0].in_group = false;
	run_until(CC_PENDING_TIMEOUT_MS - STEP_MS);
	assert_int_equal(procs[1].closes, 0);
	run_until(CC_PENDING_TIMEOUT_MS + STEP_MS);
	assert_int_equal(procs[1].closes, 1);
	assert_int_equal(procs[1].ctx->state, CC_BACKOFF);
	run_until(CC_PENDING_TIMEOUT_MS + 1200); /* backoff is 200-999 ms */
	assert_int_equal(procs[1].joins, 1);
	/* Alone in the group now: it founds a cluster of its own. */
	assert_int_equal(procs[1].ctx->state, CC_ESTABLISHED);
}

/*
 * Test 081's race: host 2 of a two-host ring drops out. The CPG event
 * (reason NODEDOWN) reached host 1 before CPG's totem change for the new
 * ring, so the ring numbers still matched the last verdict (ring 30:
 * quorate, nodes 1 and 2) and host 1 applied a one-node membership 3 ms
 * before votequorum told it (ring 34: not quorate) that it had lost quorum.
 * The event must wait while the last view still lists the departed node.
 */
static void test_nodedown_waits_for_a_verdict_without_the_departed_node(void **state)
{
	(void)state;
	struct cluster_ctx *ctx = calloc(1, sizeof(*ctx));
	assert_non_null(ctx);
	ctx->totem_seq = 30, ctx->quorum_seq = 30; /* the totem change for 34 not seen yet */
	ctx->qview[0] = 1, ctx->qview[1] = 2, ctx->nr_qview = 2;
	struct cpg_address left = {.nodeid = 2, .pid = 100, .reason = CPG_REASON_NODEDOWN};
	assert_true(cc_nodedown_needs_verdict(ctx, &left, 1));

	ctx->quorum_seq = 34, ctx->nr_qview = 1; /* ring 34's verdict: node 1 alone */
	assert_false(cc_nodedown_needs_verdict(ctx, &left, 1));

	ctx->totem_seq = 38; /* a newer totem change than the verdict: wait for it */
	assert_true(cc_nodedown_needs_verdict(ctx, &left, 1));

	/* A process that left (its node still up) needs no verdict. */
	ctx->totem_seq = 34, ctx->nr_qview = 2;
	left.reason = CPG_REASON_PROCDOWN;
	assert_false(cc_nodedown_needs_verdict(ctx, &left, 1));
	free(ctx);
}

/* 256 sheep started together: corosync told 13 of them CS_ERR_TRY_AGAIN
 * at cpg initialize and they exited. A busy corosync is waited for,
 * 10 ms steps for the first second, then 100 ms, for CC_BUSY_RETRY_MS;
 * any other answer (not running, refused) stops at once. */
static void test_busy_corosync_is_waited_for(void **state)
{
	(void)state;
	assert_int_equal(cc_busy_step_ms(CS_ERR_TRY_AGAIN, 0), 10);
	assert_int_equal(cc_busy_step_ms(CS_ERR_TRY_AGAIN, 990), 10);
	assert_int_equal(cc_busy_step_ms(CS_ERR_TRY_AGAIN, 1000), 100);
	assert_int_equal(cc_busy_step_ms(CS_ERR_TRY_AGAIN, CC_BUSY_RETRY_MS - 1), 100);
	assert_int_equal(cc_busy_step_ms(CS_ERR_TRY_AGAIN, CC_BUSY_RETRY_MS), 0);
	assert_int_equal(cc_busy_step_ms(CS_OK, 0), 0);
	assert_int_equal(cc_busy_step_ms(CS_ERR_LIBRARY, 0), 0);
	assert_int_equal(cc_busy_step_ms(CS_ERR_ACCESS, 0), 0);
	/* the sum of the steps: about CC_BUSY_RETRY_MS, in 1,590 tries */
	unsigned waited = 0, tries = 0, step;
	while ((step = cc_busy_step_ms(CS_ERR_TRY_AGAIN, waited)) != 0) {
		waited += step;
		tries++;
	}
	assert_int_equal(waited, CC_BUSY_RETRY_MS);
	assert_int_equal(tries, 100 + (CC_BUSY_RETRY_MS - 1000) / 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nodedown_waits_for_a_verdict_without_the_departed_node),
	    cmocka_unit_test(test_busy_corosync_is_waited_for),
	    cmocka_unit_test_setup_teardown(test_newcomer_waits_while_syncs_go_to_newcomers_ahead,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_newcomer_without_any_sync_gives_up_after_the_timeout, setup, teardown),
	};
	sd_log_open(getenv("SD_TEST_LOG"), SD_LOG_INFO, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !HAVE_COROSYNC */

static void test_built_without_corosync(void **state)
{
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_built_without_corosync)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
