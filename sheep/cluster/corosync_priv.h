/* corosync_priv.h - what the corosync driver's three files share: wire format, driver state, transport (corosync_cpg.c) and member protocol (corosync_member.c) calls. */
#ifndef SHEEP_CLUSTER_COROSYNC_PRIV_H
#define SHEEP_CLUSTER_COROSYNC_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "sheep/cluster/cluster.h"

#define CC_MAGIC 0x53444343u /* "CCDS" */
#define CC_DEFAULT_GROUP "sheepdog"
#define CC_PENDING_TIMEOUT_MS 8000
#define CC_SEND_RETRY_MS 5000
#define CC_QUORUM_WAIT_MS 3000
#define CC_BUSY_RETRY_MS 60000 /* how long a busy corosync (CS_ERR_TRY_AGAIN) is waited for */

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

#define CC_QVIEW_MAX 64 /* nodes of a quorum view kept */

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
	/* Nodes of the last quorum notification's ring (nr_qview > CC_QVIEW_MAX:
	 * too many to keep, not consulted). */
	uint32_t qview[CC_QVIEW_MAX];
	size_t nr_qview;
	int holdfd;	     /* timerfd: look again at a held event */

	struct cc_evq rx;	/* raw events from libcpg callbacks */
	struct cc_evq buffered; /* PENDING: events after our ANNOUNCE */

	struct cc_member members[SD_MAX_NODES];
	struct sd_node nodes[SD_MAX_NODES];
	size_t nr;
};


/* ---- corosync_cpg.c: transport (below the member protocol) ---- */
const char *cc_strerror(cs_error_t e);
int cc_errno(cs_error_t e); /* corosync error -> -errno */
extern const char *cc_no_corosync; /* hint appended to "cannot reach corosync" */
void cc_evq_push(struct cc_evq *q, struct cc_event *e);
struct cc_event *cc_evq_pop(struct cc_evq *q);
void cc_ev_free(struct cc_event *e);
void cc_evq_clear(struct cc_evq *q);
int cc_ep_add(struct cluster_ctx *ctx, int fd);
void cc_ep_del(struct cluster_ctx *ctx, int fd);
int cc_cpg_open(struct cluster_ctx *ctx);
void cc_cpg_close(struct cluster_ctx *ctx);
int cc_quorum_open(struct cluster_ctx *ctx);
/* (Re)arm the protocol timer in ms; 0 disarms it. */
void cc_arm_timer(struct cluster_ctx *ctx, unsigned ms);
/* Multicast header + payload in agreed order; waits out flow control. */
int cc_send(struct cluster_ctx *ctx, uint16_t type, const void *p1, size_t l1, const void *p2,
	    size_t l2);
/* Open CPG if needed and join the group: state CC_JOINING. */
int cc_cpg_join(struct cluster_ctx *ctx);

/* ---- corosync_member.c: the member protocol ---- */
void cc_members_clear(struct cluster_ctx *ctx);
void cc_report_quorum(struct cluster_ctx *ctx, bool quorate);
/* Handle one delivered event in the current state; frees it unless kept. */
void cc_handle_event(struct cluster_ctx *ctx, struct cc_event *e);
/* The protocol timer fired: a newcomer gives up waiting (backoff), a
 * backed-off node joins again. */
void cc_on_timer(struct cluster_ctx *ctx);
/* Leave the group and join again after a random pause. */
void cc_start_backoff(struct cluster_ctx *ctx, const char *why);
/* Act on a change of corosync's quorum: leave, or join again. */
void cc_check_quorum(struct cluster_ctx *ctx);
/* Ask corosync for the quorum state now. */
void cc_refresh_quorum(struct cluster_ctx *ctx);
/*
 * corosync answers CS_ERR_TRY_AGAIN while it is busy: a burst of clients
 * connecting at once (256 sheep started together: 13 of them were told
 * so and exited), a membership change in progress. Like Sheepdog's
 * driver, try again: every 10 ms for the first second, then every 100 ms,
 * for up to CC_BUSY_RETRY_MS. After corosync answered e, having waited
 * waited_ms for it already: the milliseconds to sleep before trying
 * again, 0 to stop.
 */
static inline unsigned cc_busy_step_ms(cs_error_t e, unsigned waited_ms)
{
	if (e != CS_ERR_TRY_AGAIN || waited_ms >= CC_BUSY_RETRY_MS)
		return 0;
	return waited_ms < 1000 ? 10 : 100;
}
/* A node-down membership event (left: its departures) must wait for
 * votequorum's verdict on the new ring (corosync_member.c). */
bool cc_nodedown_needs_verdict(const struct cluster_ctx *ctx, const struct cpg_address *left,
			       size_t nr_left);

#endif
