/* corosync_member.c - the corosync driver's member protocol: the same member list on every node (ANNOUNCE/SYNC), the newcomer's buffering, leaving on lost quorum. */
#include "config.h"

#if HAVE_COROSYNC

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/corosync_priv.h"

/*
 * How membership is made the same on every node.
 *
 * CPG knows processes as (nodeid, pid) and delivers confchg events and
 * messages in one agreed order to every process in the group (virtual
 * synchrony). It knows nothing of struct sd_node, and a process that joins
 * sees nothing of what happened before it joined. So:
 *
 *  - A joining process multicasts ANNOUNCE(its sd_node) right after CPG
 *    tells it that it joined. A process is a member of the sheep cluster
 *    from the delivery of its ANNOUNCE on; members are ordered by that
 *    delivery (oldest first). A CPG leave (confchg) removes it.
 *  - Every established member appends the announcer at that point and
 *    keeps a copy of the member list as it stands right after it (the
 *    newcomer's "snapshot"). The leader (oldest established member)
 *    multicasts SYNC(newcomer, snapshot). If the leader dies first, the
 *    next leader sends the SYNCs still owed, in announce order.
 *  - The newcomer buffers every event delivered after its own ANNOUNCE.
 *    When its SYNC arrives it adopts the snapshot, reports its own join,
 *    then replays the buffer, so it reports exactly the sequence every
 *    other member reported after that point.
 *  - A process that joins an empty group (it alone in the confchg member
 *    list) founds the cluster: it is a member at once and needs no SYNC.
 *    A newcomer that waits too long for a SYNC (every established member
 *    died) leaves and joins again after a random pause.
 *
 * Quorum: a node whose corosync loses quorum (votequorum) tells the daemon
 * quorum(false), leaves the group and forgets the member list, so the two
 * sides of a partition never both act as the cluster. When quorum returns it
 * joins again as a newcomer, is told the member list by the quorate side,
 * and reports its own join then quorum(true).
 *
 * Messages are handed to CPG whole: libcpg of corosync >= 3 carries
 * messages larger than its atomic size (CLUSTER_MAX_MSG plus our header is
 * well within what it accepts); larger ones are refused with -EMSGSIZE.
 * Every event is queued inside the libcpg callbacks and handled after
 * cpg_dispatch() returns, so the daemon's callbacks may call broadcast().
 */


/* ---- the member list ---- */

static bool is_self(const struct cluster_ctx *ctx, uint32_t nodeid, uint32_t pid)
{
	return nodeid == ctx->my_nodeid && pid == ctx->my_pid;
}

static int member_find(const struct cluster_ctx *ctx, uint32_t nodeid, uint32_t pid)
{
	for (size_t i = 0; i < ctx->nr; i++)
		if (ctx->members[i].nodeid == nodeid && ctx->members[i].pid == pid)
			return (int)i;
	return -1;
}

static void member_drop_snap(struct cc_member *m)
{
	free(m->snap);
	m->snap = NULL;
	m->nr_snap = 0;
}

void cc_members_clear(struct cluster_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr; i++)
		member_drop_snap(&ctx->members[i]);
	ctx->nr = 0;
	ctx->i_am_leader = false;
}

static void members_remove(struct cluster_ctx *ctx, size_t idx)
{
	member_drop_snap(&ctx->members[idx]);
	memmove(&ctx->members[idx], &ctx->members[idx + 1],
		(ctx->nr - idx - 1) * sizeof(ctx->members[0]));
	memmove(&ctx->nodes[idx], &ctx->nodes[idx + 1], (ctx->nr - idx - 1) * sizeof(ctx->nodes[0]));
	ctx->nr--;
}

static struct cc_sync_entry *members_snapshot(const struct cluster_ctx *ctx)
{
	struct cc_sync_entry *s = calloc(ctx->nr ? ctx->nr : 1, sizeof(*s));
	if (!s)
		return NULL;
	for (size_t i = 0; i < ctx->nr; i++) {
		s[i].nodeid = ctx->members[i].nodeid;
		s[i].pid = ctx->members[i].pid;
		s[i].pending = ctx->members[i].pending;
		s[i].node = ctx->nodes[i];
	}
	return s;
}

static void report_membership(struct cluster_ctx *ctx, const struct sd_node *changed, bool joined)
{
	if (ctx->ev->membership)
		ctx->ev->membership(ctx->arg, ctx->nodes, ctx->nr, changed, joined);
}

void cc_report_quorum(struct cluster_ctx *ctx, bool quorate)
{
	if (quorate && !ctx->told_unquorate)
		return;
	ctx->told_unquorate = !quorate;
	if (ctx->ev->quorum)
		ctx->ev->quorum(ctx->arg, quorate);
}

/* The leader is the oldest member that is not itself waiting for a SYNC. */
static void maybe_send_syncs(struct cluster_ctx *ctx)
{
	size_t i, lead = ctx->nr;

	if (ctx->state != CC_ESTABLISHED || ctx->replaying)
		return;
	for (i = 0; i < ctx->nr; i++)
		if (!ctx->members[i].pending) {
			lead = i;
			break;
		}
	if (lead == ctx->nr || !is_self(ctx, ctx->members[lead].nodeid, ctx->members[lead].pid)) {
		ctx->i_am_leader = false;
		return;
	}
	if (!ctx->i_am_leader) {
		ctx->i_am_leader = true;
		for (i = 0; i < ctx->nr; i++)
			ctx->members[i].sync_sent = false;
	}
	for (i = 0; i < ctx->nr; i++) {
		struct cc_member *m = &ctx->members[i];
		struct cc_sync_hdr sh;

		if (!m->pending || m->sync_sent)
			continue;
		if (!m->snap) {
			sd_err("no snapshot for pending member %u/%u; it will rejoin", m->nodeid, m->pid);
			m->sync_sent = true;
			continue;
		}
		sh.target_nodeid = m->nodeid;
		sh.target_pid = m->pid;
		sh.nr = (uint32_t)m->nr_snap;
		if (cc_send(ctx, CC_MSG_SYNC, &sh, sizeof(sh), m->snap,
			    m->nr_snap * sizeof(*m->snap)) == 0)
			m->sync_sent = true;
		sd_debug("sent SYNC for %u/%u (%zu members)", m->nodeid, m->pid, m->nr_snap);
	}
}

/* ---- handling delivered events (members' view) ---- */

static void established_announce(struct cluster_ctx *ctx, uint32_t nodeid, uint32_t pid,
				 const struct sd_node *node)
{
	struct cc_member *m;

	if (member_find(ctx, nodeid, pid) >= 0)
		return;
	if (ctx->nr >= SD_MAX_NODES) {
		sd_err("cluster is full (%d nodes): ignoring %s:%u", SD_MAX_NODES, node->addr,
		       node->port);
		return;
	}
	m = &ctx->members[ctx->nr];
	memset(m, 0, sizeof(*m));
	m->nodeid = nodeid;
	m->pid = pid;
	m->pending = true;
	ctx->nodes[ctx->nr] = *node;
	ctx->nodes[ctx->nr].addr[sizeof(node->addr) - 1] = '\0';
	ctx->nr++;
	m->snap = members_snapshot(ctx);
	m->nr_snap = ctx->nr;
	if (!m->snap)
		sd_err("out of memory keeping the snapshot of a newcomer");
	sd_info("node %s:%u joined (corosync %u/%u), %zu members", ctx->nodes[ctx->nr - 1].addr,
		node->port, nodeid, pid, ctx->nr);
	report_membership(ctx, &ctx->nodes[ctx->nr - 1], true);
}

static void established_sync(struct cluster_ctx *ctx, uint32_t nodeid, uint32_t pid)
{
	int i = member_find(ctx, nodeid, pid);
	if (i < 0 || !ctx->members[i].pending)
		return;
	ctx->members[i].pending = false;
	ctx->members[i].sync_sent = false;
	member_drop_snap(&ctx->members[i]);
}

static void established_confchg(struct cluster_ctx *ctx, const struct cc_event *e)
{
	const struct cpg_address *left = e->addrs + e->nr_member;
	size_t i, j;

	for (j = 0; j < e->nr_left; j++)
		if (is_self(ctx, left[j].nodeid, left[j].pid)) {
			sd_info("left the corosync group");
			ctx->state = CC_LEFT;
			return;
		}
	/* Remove in our member order, which every node shares. */
	for (i = 0; i < ctx->nr;) {
		uint32_t reason = 0;
		bool gone = false;
		for (j = 0; j < e->nr_left; j++)
			if (left[j].nodeid == ctx->members[i].nodeid && left[j].pid == ctx->members[i].pid) {
				gone = true;
				reason = left[j].reason;
			}
		if (!gone) {
			i++;
			continue;
		}
		struct sd_node n = ctx->nodes[i];
		sd_info("node %s:%u left (corosync %u/%u, reason %u)", n.addr, n.port,
			ctx->members[i].nodeid, ctx->members[i].pid, reason);
		members_remove(ctx, i);
		report_membership(ctx, &n, false);
	}
}

static int parse_msg(const struct cc_event *e, const struct cc_hdr **h, const uint8_t **payload)
{
	if (e->len < sizeof(struct cc_hdr))
		return -EBADMSG;
	*h = (const struct cc_hdr *)(const void *)e->data;
	if ((*h)->magic != CC_MAGIC || (*h)->len != e->len - sizeof(struct cc_hdr))
		return -EBADMSG;
	*payload = e->data + sizeof(struct cc_hdr);
	return 0;
}

/* An event as an established member handles it (live or replayed). */
static void established_event(struct cluster_ctx *ctx, const struct cc_event *e)
{
	const struct cc_hdr *h;
	const uint8_t *p;

	if (e->type == CC_EV_CONFCHG) {
		established_confchg(ctx, e);
		return;
	}
	if (parse_msg(e, &h, &p) < 0) {
		sd_err("dropping a malformed cluster message from %u/%u", e->nodeid, e->pid);
		return;
	}
	switch (h->type) {
	case CC_MSG_ANNOUNCE:
		if (h->len == sizeof(struct sd_node))
			established_announce(ctx, e->nodeid, e->pid, (const struct sd_node *)p);
		break;
	case CC_MSG_SYNC:
		if (h->len >= sizeof(struct cc_sync_hdr)) {
			const struct cc_sync_hdr *sh = (const void *)p;
			established_sync(ctx, sh->target_nodeid, sh->target_pid);
		}
		break;
	case CC_MSG_USER: {
		int i = member_find(ctx, e->nodeid, e->pid);
		if (i < 0) {
			sd_debug("dropping a message from non-member %u/%u", e->nodeid, e->pid);
			break;
		}
		if (ctx->ev->deliver)
			ctx->ev->deliver(ctx->arg, &ctx->nodes[i], p, h->len);
		break;
	}
	default:
		sd_err("unknown cluster message type %u from %u/%u", h->type, e->nodeid, e->pid);
	}
}

/* ---- the newcomer's view ---- */

static int send_announce(struct cluster_ctx *ctx)
{
	return cc_send(ctx, CC_MSG_ANNOUNCE, &ctx->self, sizeof(ctx->self), NULL, 0);
}

static void become_founder(struct cluster_ctx *ctx)
{
	cc_evq_clear(&ctx->buffered);
	cc_members_clear(ctx);
	memset(&ctx->members[0], 0, sizeof(ctx->members[0]));
	ctx->members[0].nodeid = ctx->my_nodeid;
	ctx->members[0].pid = ctx->my_pid;
	ctx->nodes[0] = ctx->self;
	ctx->nr = 1;
	ctx->state = CC_ESTABLISHED;
	cc_arm_timer(ctx, 0);
	sd_notice("founded the cluster in corosync group %.*s", (int)ctx->group.length,
		  ctx->group.value);
	report_membership(ctx, &ctx->nodes[0], true);
	cc_report_quorum(ctx, true);
}

/* Our SYNC: adopt the snapshot, report our join, replay what followed it. */
static void pending_apply_sync(struct cluster_ctx *ctx, const uint8_t *p, uint32_t len)
{
	const struct cc_sync_hdr *sh = (const void *)p;
	const struct cc_sync_entry *ent = (const void *)(p + sizeof(*sh));
	struct cc_event *e;
	int me;

	if (len != sizeof(*sh) + (size_t)sh->nr * sizeof(*ent) || sh->nr == 0 ||
	    sh->nr > SD_MAX_NODES) {
		sd_err("malformed SYNC (%u bytes); waiting for another", len);
		return;
	}
	cc_members_clear(ctx);
	for (uint32_t i = 0; i < sh->nr; i++) {
		memset(&ctx->members[i], 0, sizeof(ctx->members[i]));
		ctx->members[i].nodeid = ent[i].nodeid;
		ctx->members[i].pid = ent[i].pid;
		ctx->members[i].pending = ent[i].pending != 0;
		ctx->nodes[i] = ent[i].node;
		ctx->nodes[i].addr[sizeof(ctx->nodes[i].addr) - 1] = '\0';
	}
	ctx->nr = sh->nr;
	me = member_find(ctx, ctx->my_nodeid, ctx->my_pid);
	if (me < 0) {
		sd_err("SYNC does not list this node; joining again");
		cc_members_clear(ctx);
		return;
	}
	ctx->nodes[me] = ctx->self;
	ctx->state = CC_ESTABLISHED;
	cc_arm_timer(ctx, 0);
	sd_notice("joined the cluster: %zu members, this node is #%d", ctx->nr, me);
	report_membership(ctx, &ctx->nodes[me], true);

	/* Everyone else handled these while we waited; we are still pending
	 * in them, so we never act as leader while replaying. */
	ctx->replaying = true;
	while ((e = cc_evq_pop(&ctx->buffered))) {
		if (ctx->state == CC_ESTABLISHED)
			established_event(ctx, e);
		cc_ev_free(e);
	}
	ctx->replaying = false;
	if (ctx->state != CC_ESTABLISHED)
		return;
	established_sync(ctx, ctx->my_nodeid, ctx->my_pid);
	cc_report_quorum(ctx, true);
}

void cc_start_backoff(struct cluster_ctx *ctx, const char *why)
{
	unsigned ms = 200 + (unsigned)(rand() % 800);

	sd_warn("%s; joining the corosync group again in %u ms", why, ms);
	cc_cpg_close(ctx);
	cc_evq_clear(&ctx->buffered);
	cc_members_clear(ctx);
	ctx->announced = false;
	ctx->state = CC_BACKOFF;
	cc_arm_timer(ctx, ms);
}

void cc_on_timer(struct cluster_ctx *ctx)
{
	if (ctx->state == CC_PENDING || ctx->state == CC_JOINING)
		cc_start_backoff(ctx, "no member told this node the member list in time");
	else if (ctx->state == CC_BACKOFF && cc_cpg_join(ctx) < 0)
		cc_start_backoff(ctx, "cannot join the corosync group");
}

static void pending_event(struct cluster_ctx *ctx, struct cc_event *e, bool *keep)
{
	const struct cc_hdr *h;
	const uint8_t *p;

	if (e->type == CC_EV_CONFCHG) {
		/* Alone in the group: nobody can SYNC us, and nobody else is
		 * a member, so we found the cluster. */
		if (e->nr_member == 1 && is_self(ctx, e->addrs[0].nodeid, e->addrs[0].pid)) {
			become_founder(ctx);
			return;
		}
		if (ctx->announced) {
			cc_evq_push(&ctx->buffered, e);
			*keep = true;
		}
		return;
	}
	if (parse_msg(e, &h, &p) < 0)
		return;
	/* A SYNC for another newcomer: the members are alive and working
	 * through the newcomers in ANNOUNCE order, so wait on. A fixed wait
	 * from our join made 128 sheep started at once give up, leave and
	 * rejoin over and over (each rejoin a confchg for all), and only 4
	 * joined in 120 s. */
	if (h->type == CC_MSG_SYNC)
		cc_arm_timer(ctx, CC_PENDING_TIMEOUT_MS);
	if (h->type == CC_MSG_ANNOUNCE && is_self(ctx, e->nodeid, e->pid)) {
		ctx->announced = true;
		return;
	}
	if (!ctx->announced)
		return; /* the snapshot will account for it */
	if (h->type == CC_MSG_SYNC && h->len >= sizeof(struct cc_sync_hdr)) {
		const struct cc_sync_hdr *sh = (const void *)p;
		if (is_self(ctx, sh->target_nodeid, sh->target_pid)) {
			pending_apply_sync(ctx, p, h->len);
			return;
		}
	}
	cc_evq_push(&ctx->buffered, e);
	*keep = true;
}

static void joining_confchg(struct cluster_ctx *ctx, const struct cc_event *e)
{
	const struct cpg_address *joined = e->addrs + e->nr_member + e->nr_left;
	bool me = false;

	for (size_t j = 0; j < e->nr_joined; j++)
		if (is_self(ctx, joined[j].nodeid, joined[j].pid))
			me = true;
	if (!me)
		return;
	if (e->nr_member == 1) {
		become_founder(ctx);
		return;
	}
	ctx->state = CC_PENDING;
	ctx->announced = false;
	cc_arm_timer(ctx, CC_PENDING_TIMEOUT_MS);
	sd_info("in corosync group with %zu processes; announcing this node", e->nr_member);
	if (send_announce(ctx) < 0)
		cc_start_backoff(ctx, "cannot announce this node");
}

void cc_handle_event(struct cluster_ctx *ctx, struct cc_event *e)
{
	bool keep = false;

	switch (ctx->state) {
	case CC_JOINING:
		if (e->type == CC_EV_CONFCHG)
			joining_confchg(ctx, e);
		break;
	case CC_PENDING:
		pending_event(ctx, e, &keep);
		maybe_send_syncs(ctx);
		break;
	case CC_ESTABLISHED:
		established_event(ctx, e);
		maybe_send_syncs(ctx);
		break;
	default:
		break;
	}
	if (!keep)
		cc_ev_free(e);
}

/* ---- quorum ---- */

static void lose_quorum(struct cluster_ctx *ctx)
{
	sd_warn("corosync lost quorum: this node refuses writes until the partition heals; "
		"leaving the cluster group until then");
	cc_cpg_close(ctx);
	cc_evq_clear(&ctx->buffered);
	cc_members_clear(ctx);
	ctx->announced = false;
	ctx->state = CC_WAIT_QUORUM;
	cc_arm_timer(ctx, 0);
	cc_report_quorum(ctx, false);
}

void cc_check_quorum(struct cluster_ctx *ctx)
{
	bool member = ctx->state == CC_JOINING || ctx->state == CC_PENDING ||
		      ctx->state == CC_ESTABLISHED || ctx->state == CC_BACKOFF;

	if (!ctx->have_quorum_provider)
		return;
	if (!ctx->quorate && member) {
		lose_quorum(ctx);
	} else if (ctx->quorate && ctx->state == CC_WAIT_QUORUM) {
		sd_notice("corosync regained quorum: joining the cluster again");
		if (cc_cpg_join(ctx) < 0)
			cc_start_backoff(ctx, "cannot join the corosync group");
	}
}

/*
 * A node-down event may be applied once votequorum has judged the ring
 * without the departed nodes: a notification for a ring at least as new as
 * the last totem change CPG told of, whose view no longer lists any node
 * that left with reason NODEDOWN. The ring numbers alone are not enough:
 * CPG's totem change for the new ring can reach us after the membership
 * event itself, and the last verdict (for the old ring, quorate) then
 * looked current (test 081: the small side of a partition applied a
 * one-node membership 3 ms before it learned it had lost quorum).
 */
bool cc_nodedown_needs_verdict(const struct cluster_ctx *ctx, const struct cpg_address *left,
			       size_t nr_left)
{
	if (ctx->quorum_seq < ctx->totem_seq)
		return true;
	if (ctx->nr_qview > CC_QVIEW_MAX)
		return false;
	for (size_t j = 0; j < nr_left; j++) {
		if (left[j].reason != CPG_REASON_NODEDOWN)
			continue;
		for (size_t k = 0; k < ctx->nr_qview; k++)
			if (ctx->qview[k] == left[j].nodeid)
				return true;
	}
	return false;
}

/* Ask corosync directly: a partition shows up in CPG before the quorum
 * notification may have been read, and the minority must not report the
 * majority's departure as if it were the cluster. */
void cc_refresh_quorum(struct cluster_ctx *ctx)
{
	int q;
	if (ctx->quorum_open && ctx->have_quorum_provider &&
	    quorum_getquorate(ctx->quorum, &q) == CS_OK)
		ctx->quorate = q != 0;
}

#endif /* HAVE_COROSYNC */
