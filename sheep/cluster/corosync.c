/* corosync.c - the corosync cluster driver: CPG membership and agreed-order messages, votequorum for partition safety. Entry points and dispatch; the member protocol is in corosync_member.c, the libcpg transport in corosync_cpg.c. */
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
	cc_cpg_close(ctx);
	if (ctx->quorum_open)
		quorum_finalize(ctx->quorum);
	cc_evq_clear(&ctx->buffered);
	cc_members_clear(ctx);
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
	ret = cc_ep_add(ctx, ctx->timerfd);
	if (ret == 0)
		ret = cc_ep_add(ctx, ctx->holdfd);
	if (ret < 0)
		goto fail;
	ret = cc_cpg_open(ctx);
	if (ret < 0)
		goto fail;
	ret = cc_quorum_open(ctx);
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
		cc_report_quorum(ctx, false);
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
	cc_cpg_close(ctx);
	cc_evq_clear(&ctx->buffered);
	cc_members_clear(ctx);
	cc_arm_timer(ctx, 0);
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
		/* The caller sends it again every 200 ms (cluster/cop.c): say
		 * so once per 5 s, not per try. Loop thread only. */
		static uint64_t said_ns;
		if (ctx->state == CC_WAIT_QUORUM && sd_once_per(&said_ns, 5000000000ull))
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
	if (!nodedown || !cc_nodedown_needs_verdict(ctx, left, e->nr_left)) {
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
		ctx->nr_qview = 0; /* asked instead: the view is unknown */
		cc_refresh_quorum(ctx);
		cc_check_quorum(ctx);
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
	cc_check_quorum(ctx);

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
		cc_evq_pop(&ctx->rx);
		cc_handle_event(ctx, e);
	}

	if (t_ready) {
		uint64_t x;
		if (read(ctx->timerfd, &x, sizeof(x)) == (ssize_t)sizeof(x))
			cc_on_timer(ctx);
	}
	return ret;
dead:
	ctx->dead = true;
	cc_cpg_close(ctx);
	if (ctx->quorum_open) {
		cc_ep_del(ctx, ctx->quorum_fd);
		quorum_finalize(ctx->quorum);
		ctx->quorum_open = false;
	}
	cc_members_clear(ctx);
	ctx->state = CC_LEFT;
	cc_report_quorum(ctx, false);
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

