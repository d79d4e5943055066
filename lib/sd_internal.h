/* sd_internal.h - payload formats of the internal ops (proto_ver 0x0a) spoken between dog and sheep. */
#ifndef SD_INTERNAL_H
#define SD_INTERNAL_H

#include <stdint.h>

#include "lib/sd_proto.h"

/*
 * The internal ops dog uses answer in Sheepdog 1.0's layouts (lib/sd_wire.h:
 * 80-byte nodes, epoch logs, recovery state and throttle), so Sheepdog's dog
 * works against this sheep and this dog against Sheepdog's. The structs
 * here are this project's own: the node as the cluster knows it (cluster
 * messages, epoch files), the detail that follows Sheepdog's recovery state,
 * and dog's summary of a STAT_CLUSTER reply. All little-endian, packed.
 */

#define SD_MAX_NODES 1024

/*
 * NEW_VDI (0x11) as Sheepdog 1.0 defines it: snapid != 0 makes a snapshot of
 * base_vdi_id (0 = the working VDI of the payload's name); base_vdi_id != 0
 * with snapid 0 clones that snapshot under the payload's name. Payload:
 * name[256], optionally tag[256] (a snapshot's tag; when absent, the tag a
 * Sheepdog 1.0 client wrote into the inode first). Our extension:
 * vdi.type = SD_NEW_VDI_ROLLBACK with base_vdi_id = a snapshot replaces the
 * working VDI of that snapshot's name by a copy of it, in one step.
 */
#define SD_NEW_VDI_ROLLBACK 0x1

/* A node as the cluster knows it (also what cluster drivers carry). */
struct sd_node {
	char addr[64];        /* advertised address (sheep -y), NUL-terminated */
	uint16_t port;        /* Sheepdog protocol port (client and peer) */
	uint16_t nbd_port;    /* 0 = NBD off */
	uint32_t zone;        /* failure domain */
	uint64_t space;       /* store capacity in bytes; 0 = gateway only */
	uint16_t nr_vnodes;   /* vnodes in the ring (fixed by -V or from space) */
	uint8_t gateway;      /* 1 = gateway only (-g), holds no data */
	uint8_t fixed_vnodes; /* 1 = nr_vnodes fixed by sheep -V; 0 = the ring derives them
	                       * from space (GET_NODE_LIST reports the derived count);
	                       * SD_NODE_VNODES_SET = set by dog node vnodes set (wins
	                       * over cluster format -V) */
	uint8_t __pad[4];
	uint64_t incarnation; /* distinguishes restarts of the same addr:port */
} __attribute__((packed));
_Static_assert(sizeof(struct sd_node) == 96, "sd_node is 96 bytes");
#define SD_NODE_VNODES_SET 2

/*
 * GET_NODE_LIST (0x82): reply payload = struct sd_wire_node[nr_nodes]
 * (sd_wire.h), sorted by address and port (the order `dog node list` shows,
 * Id = index). rsp->node.nr_nodes = count; the u32 at rsp byte 24
 * (Sheepdog's local_idx) = index of the answering node in the list.
 */
#define sd_rsp_local_idx(rsp) (((uint32_t *)(void *)(rsp))[6])

/*
 * STAT_SHEEP (0x86): no payload; rsp->node.store_size and store_free of the
 * answering node, rsp->node.nr_nodes = objects (fragments) it holds.
 */

/*
 * MAKE_FS (0x84): req->cluster as Sheepdog's (ctime (s << 32) | ns @24,
 * copies @32, copy_policy @33, flags @34, block_size_shift @44) plus our
 * nr_vnodes @46; optional payload: the store name ("plain"; "tree" is taken
 * as plain; others NO_STORE). copies/copy_policy as in the inode (copies
 * = N or d+p, copy_policy = 0 or the EC byte). Replies INVALID_PARMS on a
 * bad policy, SUCCESS once every member has applied it. Epoch 1 = the
 * members of that moment.
 */

/*
 * NEW_VDI (0x11, client op): when the policy is wider than the cluster's
 * zones the reply payload is a NUL-terminated explanation: with
 * INVALID_PARMS when no write could be acknowledged (fewer than d+1 zones
 * for d:p, fewer than 2 for N >= 2 copies), with SUCCESS as a warning when
 * redundancy stays reduced. At most 1023 bytes.
 */

/*
 * STAT_CLUSTER (0x87) answers in Sheepdog's epoch log layout (sd_wire.h).
 * struct sd_cluster_info is what dog and the dashboard make of a reply
 * (sd_stat_cluster_summary); it is not on the wire.
 */
struct sd_cluster_info {
	uint64_t ctime;          /* format time, seconds since epoch; 0 = never */
	uint32_t epoch;          /* current epoch */
	uint8_t copies;          /* default: N or d+p */
	uint8_t copy_policy;     /* default policy byte */
	uint8_t block_size_shift;
	uint8_t status;          /* 0 running, 1 waiting for format, 2 shutting down,
	                          * 3 waiting for the nodes of the last epoch */
	uint32_t nr_epochs;      /* records in the reply */
	uint8_t recovery_enabled;
	uint8_t __pad;
	uint16_t flags;          /* SD_CLUSTER_FLAG_* of the format */
	uint32_t nr_zones;       /* distinct zones among the newest epoch's data nodes */
};

/* An epoch record: the epoch files DIR/epoch/NNNNNNNN (this header, then
 * struct sd_node[nr_nodes]) and the cluster's own messages. */
struct sd_epoch_rec {
	uint32_t epoch;
	uint32_t nr_nodes;
	uint64_t time; /* seconds since epoch when this epoch began */
} __attribute__((packed));

/*
 * Recovery (sheep/recovery_*.c, recovery/).
 *
 * STAT_RECOVERY (0x97): no payload; the reply payload is struct
 * sd_wire_recovery (sd_wire.h): Sheepdog's 24 bytes, then the answering
 * node's struct sd_recovery_state, cut to data_length.
 * GET_RECOVERY (0xca): reply payload struct sd_wire_throttle (16 bytes, as
 * Sheepdog's) of the answering node.
 * SET_RECOVERY (0xcb): request payload struct sd_wire_throttle; applies
 * to the node asked (dog asks every node). INVALID_PARMS when max is 0 or
 * above 1024, or interval_ms above one hour; nothing changes then.
 * ENABLE_RECOVER (0xa8) / DISABLE_RECOVER (0xa9): cluster-wide; every
 * member applies it in order. Disabled, nodes keep planning but move no
 * data; STAT_CLUSTER's recovery_enabled shows the setting.
 * FORCE_RECOVER (0x8a): a restarted cluster still waiting for the nodes of
 * its newest epoch starts without them (one new epoch of the members
 * present); otherwise the node asked gathers the object lists again,
 * replans and retries failed jobs (e.g. after a refusal for lack of space).
 */
struct sd_recovery_throttle {
	uint32_t max;         /* jobs (fragments) in flight, 1..1024 */
	uint32_t interval_ms; /* pause of a freed slot before reuse, 0..3600000 */
} __attribute__((packed));

enum sd_recovery_status {
	SD_RECOVERY_IDLE = 0,     /* nothing planned yet */
	SD_RECOVERY_RUNNING = 1,  /* fragments left to fetch or rebuild */
	SD_RECOVERY_DONE = 2,     /* this node holds what it must */
	SD_RECOVERY_REFUSED = 3,  /* would fill the disk; message says why */
	SD_RECOVERY_DISABLED = 4, /* planned but disabled cluster-wide */
	SD_RECOVERY_PLANNING = 5, /* gathering object lists */
};

/* Objects recovery plans as lost that STAT_RECOVERY names (dog node recovery). */
#define SD_RECOVERY_LOST_NAMED 16
struct sd_recovery_state {
	uint32_t epoch;         /* epoch the current plan is for */
	uint8_t status;         /* enum sd_recovery_status */
	uint8_t enabled;
	uint8_t cluster_done;   /* every member reported done: old copies dropped */
	uint8_t __pad;
	struct sd_recovery_throttle throttle;
	uint64_t total;         /* fragments this node must hold */
	uint64_t done;          /* of which in place (reused + copied + rebuilt) */
	uint64_t failed;
	uint64_t in_flight;
	uint64_t reused;        /* already here and valid (version, checksums) */
	uint64_t copied;        /* copied from a holder of the same fragment */
	uint64_t rebuilt;       /* decoded from d other fragments */
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t objects;       /* objects seen cluster-wide */
	uint64_t degraded;      /* objects with fewer homes than fragments (zones) */
	uint64_t lost;          /* objects with too few fragments left to rebuild */
	uint64_t dropped;       /* old fragments removed after cluster-wide completion */
	uint64_t need_bytes;    /* space the plan needs here */
	uint64_t free_bytes;
	uint64_t elapsed_ms;    /* since the epoch change (until done, when done) */
	uint32_t rounds;        /* plans made for this epoch (rescans included) */
	uint32_t repairs;       /* objects re-planned after a checksum mismatch here, since start */
	char message[256];      /* why refused or degraded; "" when all is well */
	uint64_t lost_oids[SD_RECOVERY_LOST_NAMED]; /* the first min(lost, 16) of them */
} __attribute__((packed));

/*
 * STAT (0xb8): no request payload; reply payload = struct sd_store_stat,
 * the answering sheep's write-ahead log counters since it started
 * (`dog node stat`). A gateway-only sheep answers all zeros.
 */
struct sd_store_stat {
	uint64_t syncs;         /* fdatasyncs of the log */
	uint64_t records;       /* records written */
	uint64_t batches;       /* group commits (one write + one sync each) */
	uint64_t log_bytes;     /* bytes written to the log */
	uint64_t max_batch;     /* most records in one group commit */
	uint64_t checkpoints;
	uint64_t ckpt_ns_total; /* time in checkpoints */
	uint64_t ckpt_ns_last;
	uint64_t log_fill;      /* bytes in the current log file */
	uint64_t log_size;      /* budget of the log */
	uint64_t replayed;      /* records replayed at start */
	uint64_t dropped;       /* records found torn or damaged at start */
	uint64_t pending;       /* prepared two-phase writes held */
	/* the background scrub (sheep/scrub/scrub.h) */
	uint64_t scrub_enabled;  /* 1 when it runs */
	uint64_t scrub_rate;     /* bytes per second it reads at most */
	uint64_t scrub_passes;   /* complete passes over the store */
	uint64_t scrub_done;     /* fragments verified in the current pass */
	uint64_t scrub_total;    /* fragments the current pass walks */
	uint64_t scrub_scanned;  /* fragments verified since start */
	uint64_t scrub_bytes;    /* bytes verified since start */
	uint64_t csum_found;     /* fragments found bad here (scrub, reads, vdi check) */
	uint64_t csum_repaired;  /* of which verified good again after repair */
} __attribute__((packed));

/*
 * SCRUB (0xd8, this project's): the background scrub of the sheep asked.
 * With SD_FLAG_CMD_WRITE the payload is a struct sd_scrub_ctl (start at a
 * rate, stop); the reply is its struct sd_store_stat (the scrub_* and
 * csum_* fields). A gateway-only sheep answers NO_STORE to a change.
 */
#define SD_OP_SCRUB 0xd8
enum sd_scrub_action { SD_SCRUB_STATUS = 0, SD_SCRUB_START = 1, SD_SCRUB_STOP = 2 };
struct sd_scrub_ctl {
	uint32_t action; /* enum sd_scrub_action */
	uint32_t __pad;
	uint64_t rate;   /* SD_SCRUB_START: bytes per second, 0 = keep the current rate */
} __attribute__((packed));

/*
 * CHECK_OBJ (0xd9, this project's; dog vdi check): the sheep asked reads
 * every copy or fragment of obj.oid from its holder, checks checksums,
 * versions and (EC) that the parity matches the data, rewrites what is
 * wrong from the good ones and reads it back. Reply payload: struct
 * sd_check_obj. NO_OBJ when no holder has any of it.
 */
#define SD_OP_CHECK_OBJ 0xd9
#define SD_CHECK_MAX_WIDTH 32
enum sd_check_problem {
	SD_CHECK_OK = 0,
	SD_CHECK_MISSING,     /* its holder lacks it */
	SD_CHECK_CHECKSUM,    /* a block's crc32c does not match */
	SD_CHECK_STALE,       /* an older version than the object's */
	SD_CHECK_MISMATCH,    /* checksums fine, content wrong (parity, replica) */
	SD_CHECK_UNREACHABLE, /* its holder did not answer */
	SD_CHECK_NO_HOME,     /* no node for this position (fewer zones) */
};
struct sd_check_frag {
	char addr[64]; /* the holder checked ("" when none) */
	uint16_t port;
	uint8_t problem; /* enum sd_check_problem */
	uint8_t fixed;   /* rewritten and read back good */
	uint8_t __pad[4];
	uint64_t version; /* what it held */
} __attribute__((packed));
struct sd_check_obj {
	uint64_t version; /* the object's version (the newest readable) */
	uint8_t width;    /* copies, or d+p */
	uint8_t d;        /* data fragments (0: copies) */
	uint8_t unrepairable; /* damage left that could not be repaired */
	uint8_t __pad[5];
	struct sd_check_frag frag[SD_CHECK_MAX_WIDTH];
} __attribute__((packed));

/*
 * ALTER_VDI_COPY (0xc0, Sheepdog 1.0's code and request layout for vdi
 * alter-copy): change VDI vdi_state.new_vid's policy to vdi_state.copies /
 * vdi_state.copy_policy. The sheep
 * asked checks it and records the target in the VDI table; the cluster
 * then converts the data in the background (sheep/gateway/convert.c).
 * Asking again for the target of a running conversion resumes it
 * (SUCCESS); another target meanwhile is VDI_LOCKED. A refusal may carry
 * a NUL-terminated explanation as payload.
 *
 * ALTER_STATUS (0xda, this project's): where VDI vdi.base_vdi_id's
 * conversion stands, from the table of the sheep asked. Reply payload:
 * struct sd_alter_status.
 */
#define SD_OP_ALTER_VDI_COPY 0xc0
#define SD_OP_ALTER_STATUS 0xda
struct sd_alter_status {
	uint32_t vid;
	uint8_t converting;     /* 1 while a conversion runs */
	uint8_t copies, copy_policy;       /* the policy (the old one while converting) */
	uint8_t target_copies, target_policy; /* while converting */
	uint8_t __pad[3];
	uint32_t mark;    /* objects below this index are converted */
	uint32_t nr_objs; /* objects the VDI maps */
} __attribute__((packed));

#endif
