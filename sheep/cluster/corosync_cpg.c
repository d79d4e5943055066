/* corosync_cpg.c - the corosync driver's transport: libcpg and votequorum connections, their callbacks (copy and queue), agreed-order send, joining the CPG group. */
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

/* libcorosync_common has cs_strerror(), but configure links only cpg, cfg
 * and quorum; these are the codes the calls below return. */
const char *cc_strerror(cs_error_t e)
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

int cc_errno(cs_error_t e)
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
	cc_evq_push(&ctx->rx, e);
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
	cc_evq_push(&ctx->rx, e);
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
	if (ring_seq >= ctx->quorum_seq) {
		ctx->quorum_seq = ring_seq;
		ctx->nr_qview = nr_view;
		if (nr_view && nr_view <= CC_QVIEW_MAX)
			memcpy(ctx->qview, view, nr_view * sizeof(*view));
	}
	sd_debug("corosync quorum: %s (ring %llu, %u nodes)", quorate ? "quorate" : "not quorate",
		 (unsigned long long)ring_seq, nr_view);
}

/* ---- connections ---- */

int cc_ep_add(struct cluster_ctx *ctx, int fd)
{
	struct epoll_event ee = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -errno;
	return 0;
}

void cc_ep_del(struct cluster_ctx *ctx, int fd)
{
	if (fd >= 0)
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, fd, NULL);
}

const char *cc_no_corosync =
	"cannot connect to corosync: is corosync running? (systemctl start corosync)";

/* Sleep before the next try of what (said once; cc_busy_step_ms in
 * corosync_priv.h says how long), or false to stop. */
static bool busy_wait(cs_error_t e, unsigned *waited_ms, const char *what)
{
	unsigned step = cc_busy_step_ms(e, *waited_ms);
	if (!step)
		return false;
	if (*waited_ms == 0)
		sd_info("corosync is busy (%s): trying again for up to %u s", what,
			CC_BUSY_RETRY_MS / 1000);
	usleep(step * 1000u);
	*waited_ms += step;
	return true;
}

int cc_cpg_open(struct cluster_ctx *ctx)
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
	unsigned waited = 0;

	do
		e = cpg_model_initialize(&ctx->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, ctx);
	while (busy_wait(e, &waited, "cpg initialize"));
	if (e != CS_OK) {
		sd_err("%s (cpg: %s)", cc_no_corosync, cc_strerror(e));
		return -ECONNREFUSED;
	}
	ctx->cpg_open = true;
	waited = 0;
	do
		e = cpg_local_get(ctx->cpg, &nodeid);
	while (busy_wait(e, &waited, "cpg local node id"));
	if (e == CS_OK)
		e = cpg_fd_get(ctx->cpg, &ctx->cpg_fd);
	if (e != CS_OK) {
		sd_err("corosync cpg: %s", cc_strerror(e));
		cpg_finalize(ctx->cpg);
		ctx->cpg_open = false;
		return cc_errno(e);
	}
	ctx->my_nodeid = nodeid;
	ret = cc_ep_add(ctx, ctx->cpg_fd);
	if (ret < 0) {
		cpg_finalize(ctx->cpg);
		ctx->cpg_open = false;
		return ret;
	}
	return 0;
}

void cc_cpg_close(struct cluster_ctx *ctx)
{
	if (!ctx->cpg_open)
		return;
	cc_ep_del(ctx, ctx->cpg_fd);
	cpg_finalize(ctx->cpg);
	ctx->cpg_open = false;
	ctx->cpg_fd = -1;
	cc_evq_clear(&ctx->rx);
}

int cc_quorum_open(struct cluster_ctx *ctx)
{
	quorum_callbacks_t cb = { .quorum_notify_fn = quorum_notify_cb };
	uint32_t type = 0;
	int q = 0;
	cs_error_t e;
	unsigned waited = 0;

	do
		e = quorum_initialize(&ctx->quorum, &cb, &type);
	while (busy_wait(e, &waited, "quorum initialize"));
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
	waited = 0;
	do
		e = quorum_getquorate(ctx->quorum, &q);
	while (busy_wait(e, &waited, "quorum state"));
	if (e == CS_OK)
		e = quorum_trackstart(ctx->quorum, CS_TRACK_CHANGES);
	if (e == CS_OK)
		e = quorum_fd_get(ctx->quorum, &ctx->quorum_fd);
	if (e != CS_OK) {
		sd_err("corosync quorum: %s", cc_strerror(e));
		quorum_finalize(ctx->quorum);
		ctx->quorum_open = false;
		return cc_errno(e);
	}
	ctx->quorate = q != 0;
	return cc_ep_add(ctx, ctx->quorum_fd);
}

void cc_arm_timer(struct cluster_ctx *ctx, unsigned ms)
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
int cc_send(struct cluster_ctx *ctx, uint16_t type, const void *p1, size_t l1,
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
		return cc_errno(e);
	}
	return 0;
}

int cc_cpg_join(struct cluster_ctx *ctx)
{
	cs_error_t e;
	int ret;
	unsigned waited = 0;

	if (!ctx->cpg_open) {
		ret = cc_cpg_open(ctx);
		if (ret < 0)
			return ret;
	}
	do
		e = cpg_join(ctx->cpg, &ctx->group);
	while (busy_wait(e, &waited, "cpg join"));
	if (e != CS_OK) {
		sd_err("cannot join corosync group %.*s: %s", (int)ctx->group.length,
		       ctx->group.value, cc_strerror(e));
		return cc_errno(e);
	}
	ctx->state = CC_JOINING;
	cc_arm_timer(ctx, CC_PENDING_TIMEOUT_MS);
	return 0;
}

#endif /* HAVE_COROSYNC */
