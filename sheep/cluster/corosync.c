/* corosync.c - the corosync cluster driver: CPG membership and agreed-order messages, votequorum for partition safety. */
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

#define CC_MAGIC 0x53444343u /* "CCDS" */
#define CC_DEFAULT_GROUP "sheepdog"
#define CC_PENDING_TIMEOUT_MS 8000
#define CC_SEND_RETRY_MS 5000
#define CC_QUORUM_WAIT_MS 3000

enum cc_msg_type {
	CC_MSG_ANNOUNCE = 1,
	CC_MSG_SYNC = 2,
	CC_MSG_USER = 3,
};

struct cc_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t __pad;
	uint32_t len; /* payload bytes after this header */
} __attribute__((packed));

struct cc_sync_entry {
	uint32_t nodeid;
	uint32_t pid;
	uint8_t pending;
	uint8_t __pad[3];
	struct sd_node node;
} __attribute__((packed));

struct cc_sync_hdr {
	uint32_t target_nodeid;
	uint32_t target_pid;
	uint32_t nr;
} __attribute__((packed));

enum cc_state {
	CC_INIT,	/* connected, not joined */
	CC_WAIT_QUORUM, /* joined by the daemon, waiting for quorum */
	CC_JOINING,	/* cpg_join done, own confchg not seen yet */
	CC_PENDING,	/* in the CPG group, waiting for our SYNC */
	CC_ESTABLISHED, /* a member */
	CC_BACKOFF,	/* gave up waiting for SYNC; rejoin when the timer fires */
	CC_LEFT,	/* the daemon left */
};

enum cc_ev_type { CC_EV_MSG, CC_EV_CONFCHG };

struct cc_event {
	struct cc_event *next;
	enum cc_ev_type type;
	uint32_t nodeid, pid; /* sender */
	size_t len;
	uint8_t *data;
	size_t nr_member, nr_left, nr_joined;
	struct cpg_address *addrs; /* member list, then left, then joined */
};

struct cc_member {
	uint32_t nodeid;
	uint32_t pid;
	bool pending;	/* announced, its SYNC not delivered yet */
	bool sync_sent; /* this node (as leader) sent its SYNC */
	struct cc_sync_entry *snap; /* list right after its ANNOUNCE (pending only) */
	size_t nr_snap;
};

struct cc_evq {
	struct cc_event *head, *tail;
};

struct cluster_ctx {
	const struct cluster_events *ev;
	void *arg;
	struct sd_node self;
	uint32_t my_nodeid, my_pid;
	struct cpg_name group;

	cpg_handle_t cpg;
	bool cpg_open;
	int cpg_fd;
	quorum_handle_t quorum;
	bool quorum_open;
	int quorum_fd;
	bool have_quorum_provider;
	int epfd;
	int timerfd;

	enum cc_state state;
	bool announced;	  /* PENDING: our ANNOUNCE was delivered */
	bool quorate;	  /* last known corosync quorum state */
	bool told_unquorate; /* the daemon was told quorum(false) */
	bool i_am_leader;
	bool replaying;
	bool in_dispatch;
	bool dead; /* corosync went away */
	uint64_t totem_seq;  /* ring of the last totem change CPG told us of */
	uint64_t quorum_seq; /* ring of the last quorum notification */
	uint64_t hold_since; /* ns: a node-down event waits for the quorum verdict */
	int holdfd;	     /* timerfd: look again at a held event */

	struct cc_evq rx;	/* raw events from libcpg callbacks */
	struct cc_evq buffered; /* PENDING: events after our ANNOUNCE */

	struct cc_member members[SD_MAX_NODES];
	struct sd_node nodes[SD_MAX_NODES];
	size_t nr;
};

/* libcorosync_common has cs_strerror(), but configure links only cpg, cfg
 * and quorum; these are the codes the calls below return. */
static const char *cc_strerror(cs_error_t e)
{
	switch (e) {
	case CS_OK: return "ok";
	case CS_ERR_LIBRARY: return "cannot reach corosync";
	case CS_ERR_TRY_AGAIN: return "corosync is busy (try again)";
	case CS_ERR_NO_MEMORY: return "out of memory";
	case CS_ERR_BAD_HANDLE: return "bad handle";
	case CS_ERR_ACCESS: return "access denied";
	case CS_ERR_NOT_EXIST: return "does not exist";
	case CS_ERR_EXIST: return "already exists";
	case CS_ERR_TOO_BIG: return "message too big";
	case CS_ERR_NOT_SUPPORTED: return "not supported";
	default: return "corosync error";
	}
}

static int cs_to_errno(cs_error_t e)
{
	switch (e) {
	case CS_OK: return 0;
	case CS_ERR_TRY_AGAIN: return -EAGAIN;
	case CS_ERR_NO_MEMORY: return -ENOMEM;
	case CS_ERR_ACCESS: return -EACCES;
	case CS_ERR_TOO_BIG: return -EMSGSIZE;
	case CS_ERR_EXIST: return -EEXIST;
	case CS_ERR_NOT_EXIST: return -ENOENT;
	case CS_ERR_LIBRARY:
	case CS_ERR_BAD_HANDLE: return -ENOTCONN;
	default: return -EIO;
	}
}

/* ---- event queues ---- */

static void evq_push(struct cc_evq *q, struct cc_event *e)
{
	e->next = NULL;
	if (q->tail)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
}

static struct cc_event *evq_pop(struct cc_evq *q)
{
	struct cc_event *e = q->head;
	if (e) {
		q->head = e->next;
		if (!q->head)
			q->tail = NULL;
	}
	return e;
}

static void ev_free(struct cc_event *e)
{
	if (!e)
		return;
	free(e->data);
	free(e->addrs);
	free(e);
}

static void evq_clear(struct cc_evq *q)
{
	struct cc_event *e;
	while ((e = evq_pop(q)))
		ev_free(e);
}

/* ---- libcpg callbacks: copy and queue, nothing else ---- */

static struct cluster_ctx *ctx_of(cpg_handle_t h)
{
	void *c = NULL;
	if (cpg_context_get(h, &c) != CS_OK)
		return NULL;
	return c;
}

static void cpg_deliver_cb(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
			   uint32_t pid, void *msg, size_t len)
{
	struct cluster_ctx *ctx = ctx_of(h);
	struct cc_event *e;

	if (!ctx)
		return;
	e = calloc(1, sizeof(*e));
	if (!e || (len && !(e->data = malloc(len)))) {
		/* Losing a message would break the total order for good. */
		sd_emerg("out of memory queueing a cluster message of %zu bytes", len);
		abort();
	}
	e->type = CC_EV_MSG;
	e->nodeid = nodeid;
	e->pid = pid;
	e->len = len;
	if (len)
		memcpy(e->data, msg, len);
	evq_push(&ctx->rx, e);
}

static void cpg_confchg_cb(cpg_handle_t h, const struct cpg_name *group,
			   const struct cpg_address *member, size_t nr_member,
			   const struct cpg_address *left, size_t nr_left,
			   const struct cpg_address *joined, size_t nr_joined)
{
	struct cluster_ctx *ctx = ctx_of(h);
	struct cc_event *e;
	size_t n = nr_member + nr_left + nr_joined;

	if (!ctx)
		return;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->addrs = calloc(n ? n : 1, sizeof(*e->addrs)))) {
		sd_emerg("out of memory queueing a membership change");
		abort();
	}
	e->type = CC_EV_CONFCHG;
	e->nr_member = nr_member;
	e->nr_left = nr_left;
	e->nr_joined = nr_joined;
	memcpy(e->addrs, member, nr_member * sizeof(*member));
	memcpy(e->addrs + nr_member, left, nr_left * sizeof(*left));
	memcpy(e->addrs + nr_member + nr_left, joined, nr_joined * sizeof(*joined));
	evq_push(&ctx->rx, e);
}

static void cpg_totem_cb(cpg_handle_t h, struct cpg_ring_id ring_id, uint32_t nr,
			 const uint32_t *members)
{
	struct cluster_ctx *ctx = ctx_of(h);
	if (ctx && ring_id.seq > ctx->totem_seq)
		ctx->totem_seq = ring_id.seq;
}

static void quorum_notify_cb(quorum_handle_t h, uint32_t quorate, uint64_t ring_seq,
			     uint32_t nr_view, uint32_t *view)
{
	void *c = NULL;
	struct cluster_ctx *ctx;

	if (quorum_context_get(h, (const void **)&c) != CS_OK || !c)
		return;
	ctx = c;
	ctx->quorate = quorate != 0;
	if (ring_seq > ctx->quorum_seq)
		ctx->quorum_seq = ring_seq;
	sd_debug("corosync quorum: %s (ring %llu, %u nodes)", quorate ? "quorate" : "not quorate",
		 (unsigned long long)ring_seq, nr_view);
}

/* ---- connections ---- */

static int ep_add(struct cluster_ctx *ctx, int fd)
{
	struct epoll_event ee = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -errno;
	return 0;
}

static void ep_del(struct cluster_ctx *ctx, int fd)
{
	if (fd >= 0)
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static const char *cc_no_corosync =
	"cannot connect to corosync: is corosync running? (systemctl start corosync)";

static int cpg_open(struct cluster_ctx *ctx)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cpg_deliver_cb,
		.cpg_confchg_fn = cpg_confchg_cb,
		.cpg_totem_confchg_fn = cpg_totem_cb,
	};
	unsigned int nodeid = 0;
	cs_error_t e;
	int ret;

	e = cpg_model_initialize(&ctx->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, ctx);
	if (e != CS_OK) {
		sd_err("%s (cpg: %s)", cc_no_corosync, cc_strerror(e));
		return -ECONNREFUSED;
	}
	ctx->cpg_open = true;
	e = cpg_local_get(ctx->cpg, &nodeid);
	if (e == CS_OK)
		e = cpg_fd_get(ctx->cpg, &ctx->cpg_fd);
	if (e != CS_OK) {
		sd_err("corosync cpg: %s", cc_strerror(e));
		cpg_finalize(ctx->cpg);
		ctx->cpg_open = false;
		return cs_to_errno(e);
	}
	ctx->my_nodeid = nodeid;
	ret = ep_add(ctx, ctx->cpg_fd);
	if (ret < 0) {
		cpg_finalize(ctx->cpg);
		ctx->cpg_open = false;
		return ret;
	}
	return 0;
}

static void cpg_close(struct cluster_ctx *ctx)
{
	if (!ctx->cpg_open)
		return;
	ep_del(ctx, ctx->cpg_fd);
	cpg_finalize(ctx->cpg);
	ctx->cpg_open = false;
	ctx->cpg_fd = -1;
	evq_clear(&ctx->rx);
}

static int quorum_open(struct cluster_ctx *ctx)
{
	quorum_callbacks_t cb = { .quorum_notify_fn = quorum_notify_cb };
	uint32_t type = 0;
	int q = 0;
	cs_error_t e;

	e = quorum_initialize(&ctx->quorum, &cb, &type);
	if (e != CS_OK) {
		sd_err("%s (quorum: %s)", cc_no_corosync, cc_strerror(e));
		return -ECONNREFUSED;
	}
	ctx->quorum_open = true;
	ctx->have_quorum_provider = type == QUORUM_SET;
	if (!ctx->have_quorum_provider)
		sd_warn("corosync has no quorum provider: partition safety is off "
			"(set quorum { provider: corosync_votequorum } in corosync.conf)");
	quorum_context_set(ctx->quorum, ctx);
	e = quorum_getquorate(ctx->quorum, &q);
	if (e == CS_OK)
		e = quorum_trackstart(ctx->quorum, CS_TRACK_CHANGES);
	if (e == CS_OK)
		e = quorum_fd_get(ctx->quorum, &ctx->quorum_fd);
	if (e != CS_OK) {
		sd_err("corosync quorum: %s", cc_strerror(e));
		quorum_finalize(ctx->quorum);
		ctx->quorum_open = false;
		return cs_to_errno(e);
	}
	ctx->quorate = q != 0;
	return ep_add(ctx, ctx->quorum_fd);
}

static void arm_timer(struct cluster_ctx *ctx, unsigned ms)
{
	struct itimerspec its = { 0 };
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (ms == 0)
		its.it_value.tv_nsec = 0;
	timerfd_settime(ctx->timerfd, 0, &its, NULL);
}

/* ---- sending ---- */

/* Multicast header + payload in agreed order; waits out flow control. */
static int cc_send(struct cluster_ctx *ctx, uint16_t type, const void *p1, size_t l1,
		   const void *p2, size_t l2)
{
	struct cc_hdr h = { .magic = CC_MAGIC, .type = type, .len = (uint32_t)(l1 + l2) };
	struct iovec iov[3] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)p1, .iov_len = l1 },
		{ .iov_base = (void *)p2, .iov_len = l2 },
	};
	unsigned waited = 0;
	cs_error_t e;

	if (!ctx->cpg_open)
		return -ENOTCONN;
	for (;;) {
		e = cpg_mcast_joined(ctx->cpg, CPG_TYPE_AGREED, iov, 3);
		if (e != CS_ERR_TRY_AGAIN || waited >= CC_SEND_RETRY_MS)
			break;
		usleep(1000);
		waited++;
	}
	if (e != CS_OK) {
		sd_err("corosync multicast of %zu bytes failed: %s", l1 + l2, cc_strerror(e));
		return cs_to_errno(e);
	}
	return 0;
}

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

static void members_clear(struct cluster_ctx *ctx)
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

static void report_quorum(struct cluster_ctx *ctx, bool quorate)
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
	evq_clear(&ctx->buffered);
	members_clear(ctx);
	memset(&ctx->members[0], 0, sizeof(ctx->members[0]));
	ctx->members[0].nodeid = ctx->my_nodeid;
	ctx->members[0].pid = ctx->my_pid;
	ctx->nodes[0] = ctx->self;
	ctx->nr = 1;
	ctx->state = CC_ESTABLISHED;
	arm_timer(ctx, 0);
	sd_notice("founded the cluster in corosync group %.*s", (int)ctx->group.length,
		  ctx->group.value);
	report_membership(ctx, &ctx->nodes[0], true);
	report_quorum(ctx, true);
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
	members_clear(ctx);
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
		members_clear(ctx);
		return;
	}
	ctx->nodes[me] = ctx->self;
	ctx->state = CC_ESTABLISHED;
	arm_timer(ctx, 0);
	sd_notice("joined the cluster: %zu members, this node is #%d", ctx->nr, me);
	report_membership(ctx, &ctx->nodes[me], true);

	/* Everyone else handled these while we waited; we are still pending
	 * in them, so we never act as leader while replaying. */
	ctx->replaying = true;
	while ((e = evq_pop(&ctx->buffered))) {
		if (ctx->state == CC_ESTABLISHED)
			established_event(ctx, e);
		ev_free(e);
	}
	ctx->replaying = false;
	if (ctx->state != CC_ESTABLISHED)
		return;
	established_sync(ctx, ctx->my_nodeid, ctx->my_pid);
	report_quorum(ctx, true);
}

static void start_backoff(struct cluster_ctx *ctx, const char *why)
{
	unsigned ms = 200 + (unsigned)(rand() % 800);

	sd_warn("%s; joining the corosync group again in %u ms", why, ms);
	cpg_close(ctx);
	evq_clear(&ctx->buffered);
	members_clear(ctx);
	ctx->announced = false;
	ctx->state = CC_BACKOFF;
	arm_timer(ctx, ms);
}

static int cc_cpg_join(struct cluster_ctx *ctx);

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
			evq_push(&ctx->buffered, e);
			*keep = true;
		}
		return;
	}
	if (parse_msg(e, &h, &p) < 0)
		return;
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
	evq_push(&ctx->buffered, e);
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
	arm_timer(ctx, CC_PENDING_TIMEOUT_MS);
	sd_info("in corosync group with %zu processes; announcing this node", e->nr_member);
	if (send_announce(ctx) < 0)
		start_backoff(ctx, "cannot announce this node");
}

static void handle_event(struct cluster_ctx *ctx, struct cc_event *e)
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
		ev_free(e);
}

/* ---- quorum ---- */

static void lose_quorum(struct cluster_ctx *ctx)
{
	sd_warn("corosync lost quorum: this node refuses writes until the partition heals; "
		"leaving the cluster group until then");
	cpg_close(ctx);
	evq_clear(&ctx->buffered);
	members_clear(ctx);
	ctx->announced = false;
	ctx->state = CC_WAIT_QUORUM;
	arm_timer(ctx, 0);
	report_quorum(ctx, false);
}

static void check_quorum(struct cluster_ctx *ctx)
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
			start_backoff(ctx, "cannot join the corosync group");
	}
}

/* Ask corosync directly: a partition shows up in CPG before the quorum
 * notification may have been read, and the minority must not report the
 * majority's departure as if it were the cluster. */
static void refresh_quorum(struct cluster_ctx *ctx)
{
	int q;
	if (ctx->quorum_open && ctx->have_quorum_provider &&
	    quorum_getquorate(ctx->quorum, &q) == CS_OK)
		ctx->quorate = q != 0;
}

/* ---- driver entry points ---- */

static int cc_cpg_join(struct cluster_ctx *ctx)
{
	cs_error_t e;
	int ret, tries = 0;

	if (!ctx->cpg_open) {
		ret = cpg_open(ctx);
		if (ret < 0)
			return ret;
	}
	do {
		e = cpg_join(ctx->cpg, &ctx->group);
		if (e == CS_ERR_TRY_AGAIN)
			usleep(10000);
	} while (e == CS_ERR_TRY_AGAIN && ++tries < 500);
	if (e != CS_OK) {
		sd_err("cannot join corosync group %.*s: %s", (int)ctx->group.length,
		       ctx->group.value, cc_strerror(e));
		return cs_to_errno(e);
	}
	ctx->state = CC_JOINING;
	arm_timer(ctx, CC_PENDING_TIMEOUT_MS);
	return 0;
}

static int parse_options(struct cluster_ctx *ctx, const char *options)
{
	char buf[256];
	char *save = NULL, *tok;

	if (options && *options) {
		if (strlen(options) >= sizeof(buf)) {
			sd_err("corosync options too long: %s", options);
			return -EINVAL;
		}
		strcpy(buf, options);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!strncmp(tok, "group=", 6) && tok[6] && strlen(tok + 6) < CPG_MAX_NAME_LENGTH) {
				ctx->group.length = (uint32_t)strlen(tok + 6);
				memcpy(ctx->group.value, tok + 6, ctx->group.length);
				continue;
			}
			sd_err("unknown corosync option '%s' (known: group=NAME, at most %d characters)",
			       tok, CPG_MAX_NAME_LENGTH - 1);
			return -EINVAL;
		}
	}
	if (ctx->group.length == 0) {
		ctx->group.length = (uint32_t)strlen(CC_DEFAULT_GROUP);
		memcpy(ctx->group.value, CC_DEFAULT_GROUP, ctx->group.length);
	}
	return 0;
}

static void cc_destroy(struct cluster_ctx *ctx)
{
	if (!ctx)
		return;
	cpg_close(ctx);
	if (ctx->quorum_open)
		quorum_finalize(ctx->quorum);
	evq_clear(&ctx->buffered);
	members_clear(ctx);
	if (ctx->timerfd >= 0)
		close(ctx->timerfd);
	if (ctx->holdfd >= 0)
		close(ctx->holdfd);
	if (ctx->epfd >= 0)
		close(ctx->epfd);
	free(ctx);
}

static int cc_init(struct cluster_ctx **out, const char *options, const struct sd_node *self,
		   const struct cluster_events *ev, void *arg)
{
	struct cluster_ctx *ctx;
	int ret;

	*out = NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->ev = ev;
	ctx->arg = arg;
	ctx->self = *self;
	ctx->my_pid = (uint32_t)getpid();
	ctx->cpg_fd = ctx->quorum_fd = -1;
	ctx->timerfd = -1;
	ctx->holdfd = -1;
	ctx->state = CC_INIT;
	ret = parse_options(ctx, options);
	if (ret < 0)
		goto fail;
	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	ctx->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ctx->holdfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ctx->epfd < 0 || ctx->timerfd < 0 || ctx->holdfd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = ep_add(ctx, ctx->timerfd);
	if (ret == 0)
		ret = ep_add(ctx, ctx->holdfd);
	if (ret < 0)
		goto fail;
	ret = cpg_open(ctx);
	if (ret < 0)
		goto fail;
	ret = quorum_open(ctx);
	if (ret < 0)
		goto fail;
	srand((unsigned)(ctx->my_pid ^ ctx->my_nodeid ^ (unsigned)time(NULL)));
	sd_info("corosync driver: node id %u, pid %u, group %.*s, %s", ctx->my_nodeid, ctx->my_pid,
		(int)ctx->group.length, ctx->group.value,
		ctx->have_quorum_provider ? (ctx->quorate ? "quorate" : "not quorate")
					  : "no quorum provider");
	*out = ctx;
	return 0;
fail:
	cc_destroy(ctx);
	return ret;
}

static int cc_join(struct cluster_ctx *ctx)
{
	if (ctx->state != CC_INIT && ctx->state != CC_LEFT)
		return -EALREADY;
	if (ctx->have_quorum_provider && !ctx->quorate) {
		sd_warn("corosync has no quorum yet: waiting for quorum before joining "
			"(corosync-quorumtool -s shows why)");
		ctx->state = CC_WAIT_QUORUM;
		report_quorum(ctx, false);
		return 0;
	}
	return cc_cpg_join(ctx);
}

static int cc_leave(struct cluster_ctx *ctx)
{
	cs_error_t e;

	if (ctx->cpg_open && (ctx->state == CC_JOINING || ctx->state == CC_PENDING ||
			      ctx->state == CC_ESTABLISHED)) {
		e = cpg_leave(ctx->cpg, &ctx->group);
		if (e != CS_OK)
			sd_warn("cpg_leave: %s", cc_strerror(e));
	}
	/* Our departure is final for us; what others see comes from corosync. */
	cpg_close(ctx);
	evq_clear(&ctx->buffered);
	members_clear(ctx);
	arm_timer(ctx, 0);
	ctx->state = CC_LEFT;
	return 0;
}

static int cc_broadcast(struct cluster_ctx *ctx, const void *msg, size_t len)
{
	if (len > CLUSTER_MAX_MSG) {
		sd_err("cluster message of %zu bytes is larger than the %u byte limit", len,
		       CLUSTER_MAX_MSG);
		return -EMSGSIZE;
	}
	if (ctx->state != CC_ESTABLISHED) {
		if (ctx->state == CC_WAIT_QUORUM)
			sd_err("cannot send a cluster message: corosync has no quorum");
		return -ENOTCONN;
	}
	return cc_send(ctx, CC_MSG_USER, msg, len, NULL, 0);
}

static int cc_get_fd(struct cluster_ctx *ctx)
{
	return ctx->epfd;
}

/*
 * A host that drops out of the ring shows up in CPG (reason NODEDOWN) a
 * moment before votequorum's verdict on the new ring reaches us. Reporting
 * the departure first would let the small side of a partition act, however
 * briefly, as a smaller cluster; so such an event waits until the quorum
 * notification for that ring (or for CC_QUORUM_WAIT_MS, then we ask).
 */
static bool must_wait_for_quorum(struct cluster_ctx *ctx, const struct cc_event *e)
{
	const struct cpg_address *left = e->addrs + e->nr_member;
	bool nodedown = false;
	uint64_t now;

	if (!ctx->have_quorum_provider || e->type != CC_EV_CONFCHG)
		return false;
	for (size_t j = 0; j < e->nr_left; j++)
		nodedown |= left[j].reason == CPG_REASON_NODEDOWN;
	if (!nodedown || ctx->quorum_seq >= ctx->totem_seq) {
		ctx->hold_since = 0;
		return false;
	}
	now = sd_now_ns();
	if (!ctx->hold_since) {
		ctx->hold_since = now;
		sd_debug("node down in ring %llu: waiting for the quorum verdict",
			 (unsigned long long)ctx->totem_seq);
	}
	if (now - ctx->hold_since > (uint64_t)CC_QUORUM_WAIT_MS * 1000000u) {
		sd_warn("no quorum notification for ring %llu after %d ms; asking corosync",
			(unsigned long long)ctx->totem_seq, CC_QUORUM_WAIT_MS);
		ctx->hold_since = 0;
		ctx->quorum_seq = ctx->totem_seq;
		refresh_quorum(ctx);
		check_quorum(ctx);
		return !ctx->cpg_open;
	}
	struct itimerspec its = { .it_value = { .tv_sec = 0, .tv_nsec = 100000000L } };
	timerfd_settime(ctx->holdfd, 0, &its, NULL);
	return true;
}

static int dispatch_quorum(struct cluster_ctx *ctx)
{
	cs_error_t e = quorum_dispatch(ctx->quorum, CS_DISPATCH_ALL);
	if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
		sd_err("lost the connection to corosync (quorum: %s): %s", cc_strerror(e),
		       cc_no_corosync);
		return -ENOTCONN;
	}
	return 0;
}

static int cc_dispatch(struct cluster_ctx *ctx)
{
	struct epoll_event evs[8];
	bool q_ready = false, c_ready = false, t_ready = false, h_ready = false;
	struct cc_event *e;
	int n, ret = 0;

	if (ctx->dead)
		return -ENOTCONN;
	n = epoll_wait(ctx->epfd, evs, 8, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.fd == ctx->quorum_fd)
			q_ready = true;
		else if (evs[i].data.fd == ctx->cpg_fd)
			c_ready = true;
		else if (evs[i].data.fd == ctx->timerfd)
			t_ready = true;
		else if (evs[i].data.fd == ctx->holdfd)
			h_ready = true;
	}
	if (q_ready && dispatch_quorum(ctx) < 0)
		goto dead;
	check_quorum(ctx);

	if (c_ready && ctx->cpg_open) {
		cs_error_t ce = cpg_dispatch(ctx->cpg, CS_DISPATCH_ALL);
		if (ce != CS_OK && ce != CS_ERR_TRY_AGAIN) {
			sd_err("lost the connection to corosync (cpg: %s): %s", cc_strerror(ce),
			       cc_no_corosync);
			goto dead;
		}
	}
	if (h_ready) {
		uint64_t x;
		if (read(ctx->holdfd, &x, sizeof(x)) < 0)
			sd_debug("hold timer: %s", strerror(errno));
	}
	while (ctx->cpg_open && (e = ctx->rx.head)) {
		if (must_wait_for_quorum(ctx, e))
			break;
		evq_pop(&ctx->rx);
		handle_event(ctx, e);
	}

	if (t_ready) {
		uint64_t x;
		if (read(ctx->timerfd, &x, sizeof(x)) == (ssize_t)sizeof(x)) {
			if (ctx->state == CC_PENDING || ctx->state == CC_JOINING)
				start_backoff(ctx, "no member told this node the member list in time");
			else if (ctx->state == CC_BACKOFF && cc_cpg_join(ctx) < 0)
				start_backoff(ctx, "cannot join the corosync group");
		}
	}
	return ret;
dead:
	ctx->dead = true;
	cpg_close(ctx);
	if (ctx->quorum_open) {
		ep_del(ctx, ctx->quorum_fd);
		quorum_finalize(ctx->quorum);
		ctx->quorum_open = false;
	}
	members_clear(ctx);
	ctx->state = CC_LEFT;
	report_quorum(ctx, false);
	return -ENOTCONN;
}

const struct cluster_driver cluster_corosync_driver = {
	.name = "corosync",
	.init = cc_init,
	.join = cc_join,
	.leave = cc_leave,
	.broadcast = cc_broadcast,
	.get_fd = cc_get_fd,
	.dispatch = cc_dispatch,
	.destroy = cc_destroy,
};

#endif /* HAVE_COROSYNC */
