/* zookeeper_priv.h - state shared by the two halves of the zookeeper cluster driver (session and queue). */
#ifndef SHEEP_CLUSTER_ZOOKEEPER_PRIV_H
#define SHEEP_CLUSTER_ZOOKEEPER_PRIV_H

#include "config.h"

#if HAVE_ZOOKEEPER

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <zookeeper/zookeeper.h>

#include "sheep/cluster/cluster.h"
#include "sheep/cluster/zookeeper.h"

/*
 * Layout under the cluster's path P (option path=, default /sheepdog):
 *
 *   P/members/m-ADDR_PORT-NNNNNNNNNN  ephemeral sequential, one per live
 *            sheep session; data {magic, pos, sd_node}: pos is the last
 *            queue entry this member has applied (published now and then).
 *            The sequence number N is the member id.
 *   P/queue/q-NNNNNNNNNN  persistent sequential: the totally ordered
 *            event log. Data {magic, type JOIN/LEAVE/MSG, member id,
 *            sd_node, payload length} + payload.
 *   P/base   {magic, pos, member list}: the member list after applying
 *            every entry up to pos; entries <= pos are gone (trimmed).
 *
 * Every member applies the queue in sequence order, so every member sees
 * the same JOINs, LEAVEs and MSGs in the same order (virtual synchrony);
 * the member list is JOIN order minus LEAVEs, oldest first. A member whose
 * znode vanishes (session closed or expired) is removed by a LEAVE that the
 * oldest live member appends. See zookeeper.c for sessions and
 * joining, zookeeper_queue.c for applying and trimming.
 */

#define ZK_REC_MAGIC 0x5a4b5344u  /* "DSKZ" */
#define ZK_MEMB_MAGIC 0x5a4b4d42u /* "BMKZ" */
#define ZK_BASE_MAGIC 0x5a4b4253u /* "SBKZ" */
/* ZooKeeper refuses a request over jute.maxbuffer (1 MiB - 1 by default);
 * keep a record, its path and framing well inside it. */
#define ZK_MAX_DATA (1000u * 1024u)

enum zk_rec_type { ZK_JOIN = 1, ZK_LEAVE = 2, ZK_MSG = 3 };

struct zk_rec {
	uint32_t magic;
	uint8_t type;
	uint8_t __pad[3];
	uint32_t len; /* payload bytes */
	uint32_t __pad2;
	uint64_t id; /* member id of the joining, leaving or sending member */
	struct sd_node node;
} __attribute__((packed));

struct zk_memb {
	uint32_t magic;
	uint32_t __pad;
	int64_t pos;
	struct sd_node node;
} __attribute__((packed));

struct zk_base_hdr {
	uint32_t magic;
	uint32_t nr;
	int64_t pos;
} __attribute__((packed));

struct zk_base_ent {
	uint64_t id;
	struct sd_node node;
} __attribute__((packed));

/* One membership change, kept so the member list at an earlier position
 * can be rebuilt when trimming. */
struct zk_undo {
	int64_t seq;
	uint64_t id;
	uint32_t index; /* where the member was (left) or was put (joined) */
	uint8_t joined;
	struct sd_node node;
};

struct cluster_ctx {
	struct zk_options opt;
	struct sd_node self;
	struct cluster_events ev;
	void *arg;

	zhandle_t *zh;
	int efd, tfd, epfd;
	char p_members[320], p_queue[320], p_base[320], prefix[200];

	/* Set by ZooKeeper's threads (watcher), taken by dispatch. */
	pthread_mutex_t mu;
	bool f_connected, f_disconnected, f_expired, f_queue, f_members;
	uint64_t f_stalled_ms; /* watchdog: the process stood still this long */
	pthread_t wd;	       /* the watchdog thread */
	bool wd_running, wd_stop;

	bool connected;	     /* last session state seen by dispatch */
	bool joined;	     /* the daemon asked to join and did not leave */
	bool in_group;	     /* own JOIN applied */
	bool want_rejoin;    /* session lost or declared gone: join anew */
	bool told_unquorate; /* the daemon was told quorum(false) */
	bool suspended;	     /* the daemon was told suspend(true) */
	uint64_t disc_since; /* ns: connection lost at (0 = connected) */
	uint64_t last_trim, last_publish;

	char my_znode[1024];
	uint64_t my_id; /* 0 = no znode */
	int64_t join_seq;
	int64_t pos;	   /* last applied queue entry (-1: none) */
	int64_t published; /* pos last written to our znode */
	int64_t base_pos;  /* last base this member knows of */
	unsigned since_base;

	uint64_t *ids;
	struct sd_node *nodes;
	size_t nr;

	struct zk_undo *undo;
	size_t nr_undo, cap_undo;
	int64_t undo_floor; /* the list at positions below this is unknown */

	uint64_t *live; /* member ids with a znode, from the last listing */
	size_t nr_live;
	uint64_t leave_sent[64];
	size_t nr_leave_sent;
	/* Members listed before us at our JOIN that have not spoken since
	 * (one of them sends the daemon's state snapshot). */
	uint64_t *older;
	size_t nr_older;
	uint64_t rejoin_after; /* ns: do not join again before */

	char *buf; /* ZK_MAX_DATA + a record header */

	/* Fast failure detection (zookeeper_watch.c): an idle connection to
	 * the next member's port. */
	int wfd;	       /* -1: none */
	int w_state;	       /* ZKW_* */
	bool w_confirm;	       /* a refusal of this connect proves w_id dead */
	bool w_on;	       /* a member is watched: w_id */
	bool w_dead;	       /* w_id refused: its znode is removed */
	/* This node removed its target, whose own target it watches next:
	 * that member's watcher is dead, so a refusal proves it dead too
	 * (until a connect to it succeeds). */
	bool w_inherit;
	/* This node has been connected to member w_known_id's port: from then
	 * on, whatever happened in between (a connect that timed out, a
	 * ZooKeeper reconnect), its port refusing proves it gone. */
	bool w_known;
	uint64_t w_known_id;
	unsigned w_flaps;      /* connections that dropped right after connecting */
	uint64_t w_id;
	struct sd_node w_node; /* its address */
	uint64_t w_since;      /* ns: connect started */
	uint64_t w_retry_after;
};

enum { ZKW_IDLE, ZKW_CONNECTING, ZKW_CONNECTED };

/* zookeeper_queue.c */
int zkq_path_seq(const char *name, int64_t *seq);
int zkq_append(struct cluster_ctx *c, uint8_t type, uint64_t id, const struct sd_node *node,
	       const void *payload, uint32_t len, int64_t *seq);
int zkq_load_base(struct cluster_ctx *c, int *version);
/* The bytes of the base znode, decoded into c's member list (c->pos set to
 * its position): 0, or -EIO when damaged (c untouched). Pure: fuzzed. */
int zkq_decode_base(struct cluster_ctx *c, const char *buf, size_t len);
/* A member znode's data: its published position, or -EIO. Pure: fuzzed. */
int zkq_decode_memb(const void *buf, size_t len, int64_t *pos);
/* Apply one queue entry's bytes (any bytes: a malformed one is logged and
 * skipped); fuzzed. */
int zkq_apply(struct cluster_ctx *c, int64_t seq, const void *data, size_t len);
int zkq_read(struct cluster_ctx *c, int64_t below, bool watch);
int zkq_check_leaves(struct cluster_ctx *c, bool refresh);
int zkq_bury_dead(struct cluster_ctx *c);
void zkq_trim(struct cluster_ctx *c);
void zkq_reset(struct cluster_ctx *c);
int zk_err(int rc);

/* zookeeper_watch.c */
/* "m-ADDR_PORT-": the name of node's member znodes before the sequence. */
void zk_member_prefix(const struct sd_node *node, char *buf, size_t len);
void zkw_update(struct cluster_ctx *c);
void zkw_dispatch(struct cluster_ctx *c);
void zkw_stop(struct cluster_ctx *c);

#endif /* HAVE_ZOOKEEPER */
#endif
