/* cluster.h - the membership driver interface: join, leave, totally ordered broadcast. */
#ifndef SHEEP_CLUSTER_H
#define SHEEP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lib/sd_internal.h"

/* struct sd_node lives in lib/sd_internal.h: dog shows it too. */

/*
 * What a driver tells the daemon. Both callbacks run on the event-loop
 * thread from cluster_driver.dispatch(). Every member sees the same sequence
 * of membership changes and messages, interleaved in the same order
 * (virtual synchrony): that total order is what cluster-wide operations
 * (format, VDI create/delete/lock) rely on, since each node applies them
 * deterministically in delivery order. A sender gets its own messages back.
 */
struct cluster_events {
	/* members: the whole agreed member list after the change, in the same
	 * order on every node (oldest member first). changed: the node that
	 * joined (joined = true) or left/failed (joined = false). The first
	 * call a node gets is its own join, listing itself. */
	void (*membership)(void *arg, const struct sd_node *members, size_t nr_members,
			   const struct sd_node *changed, bool joined);
	void (*deliver)(void *arg, const struct sd_node *sender, const void *msg, size_t len);
	/* The driver lost contact with the membership service or quorum
	 * (corosync). The node must stop accepting writes until it returns. */
	void (*quorum)(void *arg, bool quorate);
	/* Optional (may be NULL). The driver lost contact with its
	 * coordination service (zookeeper: no server answers) but this node
	 * is still a member: refuse client I/O until suspend(false). Unlike
	 * quorum(false), the node keeps its state and no rejoin follows. */
	void (*suspend)(void *arg, bool suspended);
};

struct cluster_ctx;

struct cluster_driver {
	const char *name;
	/* options: the text after "name:" in sheep -c (e.g. "path=/tmp/x"),
	 * or "". Returns 0 or -errno; errors are logged with what to do. */
	int (*init)(struct cluster_ctx **ctx, const char *options, const struct sd_node *self,
		    const struct cluster_events *ev, void *arg);
	int (*join)(struct cluster_ctx *ctx);
	int (*leave)(struct cluster_ctx *ctx);
	/* Totally ordered broadcast of up to CLUSTER_MAX_MSG bytes. The message
	 * is delivered to every current member, sender included, or to none
	 * (sender failed before the driver accepted it). */
	int (*broadcast)(struct cluster_ctx *ctx, const void *msg, size_t len);
	/* An fd the event loop polls for readability; then call dispatch(). */
	int (*get_fd)(struct cluster_ctx *ctx);
	int (*dispatch)(struct cluster_ctx *ctx);
	void (*destroy)(struct cluster_ctx *ctx);
};

#define CLUSTER_MAX_MSG (1u << 20)

/* Look a driver up by the name before any ':' in spec ("local",
 * "local:path=/x", "corosync"). NULL when unknown or not built. */
const struct cluster_driver *cluster_driver_find(const char *spec);
/* The options part of spec ("" when none). */
const char *cluster_driver_options(const char *spec);
/* The names of the drivers built in, "local, corosync, zookeeper". */
const char *cluster_driver_names(void);

extern const struct cluster_driver cluster_local_driver;
/* The local driver polls its log (no inotify instance could be had at init). */
bool cluster_local_polling(const struct cluster_ctx *c);
#if HAVE_COROSYNC
extern const struct cluster_driver cluster_corosync_driver;
#endif
#if HAVE_ZOOKEEPER
extern const struct cluster_driver cluster_zookeeper_driver;
#endif

/* ---- The membership view, the epoch log and cluster-wide operations (group*.c) ---- */
struct sheep;
struct sheep_view;
struct vdi_entry;
struct vdi_table;

int group_init(struct sheep *s);
int group_start(struct sheep *s);
void group_stop(struct sheep *s);
/* Current view with a reference; NULL before the node is synced. */
struct sheep_view *sheep_view_get(struct sheep *s);
void sheep_view_put(struct sheep_view *v);
/* Wait (up to ms) until the epoch differs from old_epoch; returns the new view
 * (referenced) or NULL. */
struct sheep_view *sheep_view_wait_change(struct sheep *s, uint32_t old_epoch, int ms);

/* Cluster messages (totally ordered, applied by every member). */
enum cmsg_type {
	CMSG_FORMAT = 1,
	CMSG_NEW_VDI,
	CMSG_DEL_VDI,
	CMSG_PURGE_VDI,
	CMSG_LOCK_VDI,
	CMSG_UNLOCK_VDI,
	CMSG_SNAPSHOT,
	CMSG_SHUTDOWN,
	CMSG_RECOVERY,
	CMSG_VDI_SNAP,      /* vid becomes a snapshot; a new working VDI follows it */
	CMSG_VDI_CLONE,     /* new VDI name from snapshot base_vid */
	CMSG_VDI_ROLLBACK,  /* working vid deleted, a new working VDI from base_vid */
	CMSG_VDI_READY,     /* vid's inode is written */
	CMSG_VDI_RECLAIMED, /* deleted vid's objects are reclaimed */
	CMSG_OFFER,         /* a formatted joiner's own state (snap_hdr layout), for a
	                     * cluster that is unformatted or waiting on an older epoch */
	CMSG_START,         /* start a waiting cluster without the missing nodes */
	CMSG_NODE_VNODES,   /* a member's vnodes set (dog node vnodes set): a new epoch */
	CMSG_VDI_ALTER,     /* vdi alter-copy: start (snapshot = 0, copies/policy the
	                     * target), progress (1, size = mark) or end (2) */
};
enum { CMSG_ALTER_START = 0, CMSG_ALTER_PROGRESS = 1, CMSG_ALTER_DONE = 2 };

struct cmsg_hdr {
	uint32_t type;
	uint32_t len; /* whole message */
	uint64_t token;
} __attribute__((packed));

struct cmsg_format {
	struct cmsg_hdr h;
	uint64_t ctime;
	uint8_t copies, policy, shift, flags; /* flags: SD_CLUSTER_FLAG_* (strict) */
	uint32_t vnodes;
} __attribute__((packed));

struct cmsg_vdi {
	struct cmsg_hdr h;
	uint32_t vid;        /* DEL/PURGE/LOCK/UNLOCK */
	uint32_t base_vid;
	uint32_t snapid;
	uint8_t copies, policy, shift, snapshot;
	uint64_t size;
	uint64_t ctime;
	uint64_t lock_owner;
	char lock_addr[64];
	uint16_t lock_port;
	uint16_t __pad;
	uint32_t __pad2;
	uint64_t lock_inc;
	char name[SD_MAX_VDI_LEN];
	char tag[SD_MAX_VDI_TAG_LEN];
} __attribute__((packed));

struct cmsg_node_vnodes {
	struct cmsg_hdr h;
	struct sd_node node; /* the member (addr, port, incarnation) */
	uint32_t vnodes;     /* 1..65535 */
	uint32_t __pad;
} __attribute__((packed));

/* From a worker thread: broadcast msg (its token is filled in) and wait
 * until this node has applied it. Returns the SD_RES_* of the apply; *vid
 * gets the VDI id a NEW_VDI chose. */
int group_cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid);
/* Broadcast msg without waiting for it (for a message whose loss is
 * repaired anyway, like VDI_READY). */
int group_cluster_post(struct sheep *s, void *msg, size_t len);
/* A consistent picture of the cluster state at one instant (group_status). */
struct group_status {
	bool synced;           /* this node has the cluster state */
	bool quorate;          /* the driver has quorum */
	bool waiting;          /* restarted, waiting for the nodes of its newest epoch */
	bool recovery_enabled; /* dog cluster recover enable/disable */
	uint32_t epoch;
	uint64_t ctime; /* format time, 0: not formatted */
	uint8_t def_copies, def_policy, def_shift; /* the format's defaults */
	size_t nr_epochs;   /* epochs logged */
	uint32_t nr_nodes;  /* members of the current view (0 before synced) */
	uint32_t nr_zones;  /* distinct zones among its data members */
	size_t nr_vdis;     /* entries of the VDI table */
};
/* The cluster state (cluster/state.c), read under its lock. */
void group_status(struct sheep *s, struct group_status *st);
uint32_t group_epoch(struct sheep *s);
/* The VDI table, locked: no cluster event is applied until
 * group_vdis_unlock. st, when not NULL, gets the status under the same
 * lock. Never block on peers or the cluster while holding it. */
struct vdi_table *group_vdis_lock(struct sheep *s, struct group_status *st);
void group_vdis_unlock(struct sheep *s);
/* The members of logged epoch `epoch` (a copy the caller frees) and when
 * it began; -ENOENT when it is not logged, -ENOMEM. */
int group_epoch_nodes(struct sheep *s, uint32_t epoch, struct sd_node **nodes, size_t *nr,
		      uint64_t *time);
/* Read helpers under state_lock. */
int group_vdi_find(struct sheep *s, uint32_t vid, struct vdi_entry *out);
/* From a worker: wait at most ms for VDI vid to be in this node's table
 * (a message applied elsewhere first may not be applied here yet); 0 when
 * it is, -ENOENT. */
int group_vdi_wait(struct sheep *s, uint32_t vid, int ms);
int group_vdi_lookup(struct sheep *s, const char *name, const char *tag, uint32_t snapid,
		     struct vdi_entry *out);
/* Fill a STAT_CLUSTER reply (Sheepdog's epoch logs, newest first, as many
 * whole ones as len holds; buf zeroed by the caller); returns bytes used.
 * *status: 0 running, 1 not formatted, 2 stopping, 3 waiting for nodes. */
int group_cluster_info(struct sheep *s, void *buf, size_t len, int *status);
/* A waiting cluster (restarted, nodes of its newest epoch missing) starts
 * now, as Sheepdog's "cluster recover force": SD_RES_* once applied, or -1
 * when the cluster is not waiting. */
int group_force_start(struct sheep *s);
/* The cluster was formatted with -t (strict): writes are refused (HALT)
 * while there are fewer zones than an object's policy is wide. */
bool group_strict(struct sheep *s);
bool group_formatted(struct sheep *s);
/* A restarted cluster waiting for the nodes of its newest epoch (apply.c):
 * client I/O, VDI lookups and recovery wait too. */
bool group_waiting(struct sheep *s);
/* Where placement puts data object oid: the oid with its VDI id replaced by
 * the root of the VDI's family, so every copy-on-write copy of an object
 * lands on the holders of the original (identical to oid for a VDI with no
 * parent). Other objects are placed by their own id. */
uint64_t group_placement_key(struct sheep *s, uint64_t oid);
void group_release_owner(struct sheep *s, uint64_t owner);
/* Where placement put oid's width positions at epoch x (its ring rebuilt
 * from the epoch log, track.c): out[i] the holder of position i, zeroed
 * (port 0) when none (fewer zones than positions). SD_RES_NO_TAG when x is
 * not in the log. For dog vdi track. */
/* cluster format -V's vnodes (0: none); this node's record as the
 * cluster has it (its vnodes set by dog node vnodes set included). */
uint32_t group_fmt_vnodes(struct sheep *s);
void group_self_node(struct sheep *s, struct sd_node *out);
int group_epoch_holders(struct sheep *s, uint32_t x, uint64_t oid, int width, struct sd_node *out);

#endif
