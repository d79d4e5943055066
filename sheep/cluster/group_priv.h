/* group_priv.h - what the group files of sheep/cluster/ share: the config and snapshot records, and their helpers. */
#ifndef SHEEP_CLUSTER_GROUP_PRIV_H
#define SHEEP_CLUSTER_GROUP_PRIV_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lib/fnv.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/sheep.h"
#include "sheep/vdi/vdi.h"
#include "sheep/cluster/ring.h"
#include "sheep/cluster/cluster.h"
#include "sheep/store/store.h"

/*
 * Every synced member applies the same sequence of events (membership
 * changes and messages, in the driver's total order) and so holds the same
 * state. s->seq numbers those events. A joiner buffers the events it sees
 * from its own join on, until a snapshot addressed to it arrives: the
 * snapshot is the state of the sender after event K; the joiner loads it
 * and replays the buffered events numbered above K.
 */

/* An epoch record kept in memory for STAT_CLUSTER (newest last). */
struct epoch_rec {
	uint32_t epoch;
	uint64_t time;
	uint32_t nr_nodes;
	struct sd_node *nodes;
};

/* Events a joining node buffers until its state snapshot arrives. */
struct pending_event {
	int is_msg;
	struct sd_node sender;          /* message sender or changed node */
	bool joined;
	size_t nr_members;
	struct sd_node *members;
	void *msg;
	size_t len;
	struct pending_event *next;
};

/* A synced member's record of a joiner still waiting for its snapshot. */
struct joiner {
	struct sd_node node;
	uint64_t join_seq;
	bool sent;
	struct joiner *next;
};

/* A worker waiting for a cluster message of its own to be applied. */
struct cop_wait {
	uint64_t token;
	int done;
	int result;
	uint32_t vid;
	struct cop_wait *next;
};

/*
 * A cluster operation applied lately (apply.c): its sender (a hash of
 * addr, port and incarnation), its token (the same in every copy sent:
 * cop.c) and its answer. A copy sent again after the driver called the
 * first one not sent when it was (ZooKeeper: a create cut off by a
 * dropped connection) is skipped, and its waiter gets the first copy's
 * answer: every member applies an operation once. The last COP_DONE_MAX
 * are kept, and go to a joiner with the rest of the state.
 */
#define COP_DONE_MAX 64
struct cop_done {
	uint64_t who;
	uint64_t token;
	int32_t result;
	uint32_t vid;
} __attribute__((packed));

/*
 * The cluster state (s->cl, made by group_init): everything here is
 * guarded by state_lock. Written only on the loop thread (driver
 * callbacks); read anywhere, by other modules through cluster.h.
 */
struct cluster_state {
	const struct cluster_driver *driver;
	struct cluster_ctx *cctx;
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond; /* cop_wait done, view changes */
	bool synced;               /* has the cluster state (own snapshot or alone) */
	uint64_t seq;              /* cluster events applied (same on every synced member) */
	uint32_t epoch;
	struct sheep_view *view;
	struct sd_node *members;   /* driver order (oldest first) */
	size_t nr_members;
	bool quorate;
	/* format */
	uint64_t ctime;            /* 0 = not formatted */
	/* Formatted, restarted, and not every node of the newest epoch is back
	 * yet (Sheepdog's "Waiting for other nodes to join cluster"): no epoch
	 * is logged and I/O is refused until they are (cluster/apply.c). */
	bool waiting;
	bool shut_down;            /* a cluster shutdown was applied: leaves are not epochs */
	uint16_t fmt_flags;        /* SD_CLUSTER_FLAG_* of the format (strict) */
	uint8_t def_copies, def_policy, def_shift;
	uint32_t fmt_vnodes;
	bool recovery_enabled;
	struct vdi_table vdis;
	struct epoch_rec *epochs;
	size_t nr_epochs;
	struct pending_event *pend_head, *pend_tail;
	struct joiner *joiners;
	struct cop_wait *waits;
	uint64_t next_token; /* atomics (cop_new_token) */
	struct cop_done done[COP_DONE_MAX]; /* a ring, oldest at done_next once full */
	unsigned nr_done, done_next;
	uint64_t test_echoed; /* SHEEP_TEST_CMSG_ECHO: the last operation echoed (loop thread) */
};

#define CONFIG_MAGIC 0x53444346u /* "SDCF" */
#define COP_TIMEOUT_S 30
#define SNAP_EPOCH_BUDGET (256u << 10)

struct config_file {
	uint32_t magic;
	uint32_t version;
	uint64_t ctime;
	uint8_t copies, policy, shift, recovery_enabled;
	uint32_t vnodes;
	uint16_t flags; /* version 2: SD_CLUSTER_FLAG_*; absent (0) in version 1 files */
} __attribute__((packed));
#define CONFIG_V1_SIZE (sizeof(struct config_file) - sizeof(uint16_t))

struct snap_hdr {
	struct cmsg_hdr h;
	struct sd_node target;
	uint64_t join_seq;
	uint64_t seq;
	uint32_t epoch;
	uint32_t nr_epochs;
	uint64_t ctime;
	uint8_t copies, policy, shift, recovery_enabled;
	uint32_t vnodes;
	uint32_t vdi_len;
	uint8_t waiting; /* the cluster waits for the nodes of its newest epoch */
	uint8_t fmt_flags; /* SD_CLUSTER_FLAG_* of the format */
	/* CMSG_SNAPSHOT: the other joiners still waiting for their snapshot
	 * when it was built (struct snap_joiner each, after the VDI table), so
	 * the target knows whom to sync should it become the oldest synced
	 * member (found.c). 0 in an offer. */
	uint16_t nr_joiners;
	/* The operations applied lately (struct cop_done each, oldest first,
	 * after the joiners). */
	uint16_t nr_done;
	/* SNAP_WIRE of the build that wrote it: a joiner of another build
	 * refuses the snapshot, a member ignores such an offer. Every field
	 * above keeps its place and size in later builds; new ones go below. */
	uint32_t wire;
} __attribute__((packed));

/*
 * The layout of the cluster messages and of the state snapshot: "SDW"
 * and a version byte, bumped with any change to either. One build runs a
 * cluster: a sheep of another is refused when it joins (its snapshot
 * says which), rather than misreading the VDI table or the epochs. The
 * snapshots of builds before the field have their epoch list where it
 * sits and so never match.
 */
#define SNAP_WIRE_MAGIC 0x53445700u
#define SNAP_WIRE_VERSION 1u
/* This sheep's SNAP_WIRE (SHEEP_TEST_WIRE_VER pretends another version). */
uint32_t group_wire(const struct sheep *s);

struct snap_joiner {
	struct sd_node node;
	uint64_t join_seq;
} __attribute__((packed));

/* Functions shared between the files of this folder. */
void group_state_path(struct sheep *s, const char *name, char *buf, size_t len);
 void group_complete_wait(struct sheep *s, uint64_t token, int result, uint32_t vid);
 void group_do_broadcast(void *arg);
/* A new token for a cluster operation (any thread). */
uint64_t cop_new_token(struct sheep *s);
/* apply.c: the operations applied lately (state_lock held). */
const struct cop_done *cop_done_find(struct sheep *s, const struct sd_node *sender, uint64_t token);
void cop_done_add(struct sheep *s, const struct sd_node *sender, uint64_t token, int result,
		  uint32_t vid);
 int group_post_broadcast(struct sheep *s, const void *msg, size_t len, uint64_t token);
 void group_after_unlock(struct sheep *s, bool wipe);

		void group_on_membership(void *arg, const struct sd_node *members, size_t nr,
		const struct sd_node *changed, bool joined);
 void group_on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len);
 void group_on_quorum(void *arg, bool quorate);
 void group_on_driver_fd(int fd, uint32_t events, void *arg);
 void group_ring_put(struct sheep_ring *r);
 struct sheep_ring *group_find_ring(struct sheep_view *v, uint32_t epoch);

		int group_build_ring(struct sheep *s, const struct ring *prev, const struct sd_node *nodes, size_t nr, struct sd_node *data,
		size_t *nr_data, struct ring **ring);
int group_build_ring_joins(struct sheep *s, const struct sd_node *nodes, size_t nr,
			   struct sd_node *data, size_t *nr_data, struct ring **ring);
int group_chain_ring(struct sheep *s, struct sheep_view *old, uint32_t x, bool chained,
		     const struct sd_node *nodes, size_t nr, struct sheep_ring **out);
uint64_t group_ring_digest(const struct sheep_ring *r);
struct sheep_ring *group_hist_ring(struct sheep *s, struct sheep_view *old, uint32_t x, uint32_t cur);
 void group_rebuild_view(struct sheep *s);
/* apply_node.c: vnodes set on a member (dog node vnodes set). Copy into
 * to[] the vnodes set on the same processes (addr, port, incarnation) in
 * from[]; apply CMSG_NODE_VNODES (the epoch it logs anchors a new ring
 * chain, chain.c). */
void group_carry_vnodes(struct sd_node *to, size_t nr, const struct sd_node *from, size_t nr_from);
struct cmsg_node_vnodes;
int group_apply_node_vnodes(struct sheep *s, const struct cmsg_node_vnodes *m);
 int group_epoch_log_write(struct sheep *s, const struct epoch_rec *r);

		int group_epoch_add(struct sheep *s, uint32_t epoch, uint64_t t, const struct sd_node *nodes,
		size_t nr, bool log);
 void group_epochs_clear(struct sheep *s);
void group_epoch_log_reset(struct sheep *s);
int group_epoch_put(struct sheep *s, uint32_t epoch, uint64_t t, const struct sd_node *nodes,
		    size_t nr, bool log);
 int group_epoch_cmp(const void *a, const void *b);
 int group_epoch_log_load(struct sheep *s);
 void group_save_config(struct sheep *s);
 void group_save_vdis(struct sheep *s);
 int group_load_state(struct sheep *s);
 bool group_node_in_joiners(struct sheep *s, const struct sd_node *n);
 void group_remove_joiner(struct sheep *s, const struct sd_node *n);
 void *group_build_snapshot(struct sheep *s, const struct joiner *j, size_t *len);
/* found.c: the joiners a snapshot carries (the sender's, but the target's)
 * and, on the joiner, the list they make; see found.c's top comment for the
 * rule that no joiner waits forever. */
size_t group_pack_joiners(struct sheep *s, const struct sd_node *target, void *buf, size_t cap,
			  uint16_t *nr);
int group_unpack_joiners(struct sheep *s, const void *p, size_t len, uint16_t nr);
bool group_may_found(struct sheep *s, const struct sd_node *members, size_t nr);
uint64_t group_found_joiners(struct sheep *s, const struct sd_node *members, size_t nr);
 void group_maybe_send_snapshots(struct sheep *s);
 void group_pending_free(struct pending_event *p);
 void group_pending_clear(struct sheep *s);
 void group_pending_add(struct sheep *s, struct pending_event *p);
 void group_apply_snapshot(struct sheep *s, const void *msg, size_t len, bool *wipe);
 void group_release_locks_of(struct sheep *s, const struct sd_node *n, bool *changed);

		void group_apply_membership(struct sheep *s, const struct sd_node *members, size_t nr,
		const struct sd_node *changed, bool joined);
 int group_wipe_collect(const struct store_meta *m, void *arg);
 void group_store_wipe(struct sheep *s);
 int group_apply_format(struct sheep *s, const struct cmsg_format *f, bool *wipe);
 int group_apply_new_vdi(struct sheep *s, const struct cmsg_vdi *m, uint32_t *vid);
 bool group_lock_is_sender(const struct vdi_entry *e, const struct sd_node *n, uint64_t owner);
/* apply_vdi.c: a live clone made from e (a working VDI of another name), or NULL. */
struct vdi_entry *group_first_clone(struct sheep *s, const struct vdi_entry *e);
/* apply_vdi.c: CMSG_VDI_SNAP, _CLONE, _ROLLBACK, _READY, _RECLAIMED. */
int group_apply_vdi_alter(struct sheep *s, struct vdi_entry *e, const struct cmsg_vdi *m);
int group_apply_vdi_family(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
			   uint32_t *vid);

		int group_apply_vdi_op(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
		uint32_t *vid);
 void group_shutdown_later(void *arg);
/* apply.c: Sheepdog's epoch rules (see group_apply_membership). */
void group_check_waiting(struct sheep *s);
void group_apply_offer(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len);
void *group_build_offer(struct sheep *s, size_t *len);

		void group_apply_msg(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len,
		bool *wipe);

#endif
