/* sd_wire.h - Sheepdog 1.0's layouts of the internal ops dog uses (80-byte node, epoch log, recovery state), and conversions from/to this project's structs. */
#ifndef SD_WIRE_H
#define SD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/sd_internal.h"

/*
 * Sheepdog 1.0 puts its in-memory structs on the wire: struct sd_node is 80
 * bytes (a 24-byte rb_node nobody reads, then struct node_id, vnodes, zone,
 * space), an epoch log is a fixed 48-byte header plus room for 6144 nodes.
 * Sheepdog's dog and scripts parse exactly these, so this sheep answers in
 * them and this project's dog reads them (it works against Sheepdog's sheep
 * too). What Sheepdog's layout leaves as padding carries this project's
 * extras (NBD port, gateway flag), which Sheepdog's dog ignores.
 */

#define SD_WIRE_MAX_NODES 6144 /* Sheepdog 1.0's SD_MAX_NODES (no disk vnodes) */
#define SD_STORE_LEN 16

/* Bits of sd_wire_node.sd_flags (this project's; 0 from Sheepdog's sheep). */
#define SD_WIRE_NODE_GATEWAY 0x01      /* gateway only (-g) */
#define SD_WIRE_NODE_FIXED_VNODES 0x02 /* vnodes fixed by sheep -V */

struct sd_wire_node {
	uint8_t __rb[24];    /* @0  Sheepdog's rb_node: zero here, ignored when read */
	uint8_t addr[16];    /* @24 IPv6, or IPv4 in the last 4 bytes (the rest zero) */
	uint16_t port;       /* @40 */
	uint8_t io_addr[16]; /* @42 the data-path address (sheep -i); zero: none */
	uint16_t io_port;    /* @58 */
	uint16_t nbd_port;   /* @60 Sheepdog's padding; ours: NBD port, 0 = off */
	uint8_t sd_flags;    /* @62 Sheepdog's padding; ours: SD_WIRE_NODE_* */
	uint8_t __pad1;      /* @63 */
	uint16_t nr_vnodes;  /* @64 */
	uint16_t __pad2;     /* @66 */
	uint32_t zone;       /* @68 */
	uint64_t space;      /* @72 */
} __attribute__((packed));
_Static_assert(sizeof(struct sd_wire_node) == 80, "Sheepdog's struct sd_node is 80 bytes");

/*
 * STAT_CLUSTER (0x87): the reply is an array of these, newest epoch first,
 * as many as the request's data_length holds and the sheep has (Sheepdog's
 * dog asks for epoch * sizeof). The cluster-wide fields are in the first
 * one only. rsp->result: SUCCESS running, WAIT_FOR_FORMAT, WAIT_FOR_JOIN,
 * SHUTDOWN. ctime is (seconds << 32) | nanoseconds, as Sheepdog's dog
 * prints it (ctime >> 32).
 */
struct sd_epoch_log_hdr {
	uint64_t ctime;            /* @0 */
	uint64_t time;             /* @8 when this epoch began, seconds */
	uint32_t epoch;            /* @16 */
	uint32_t nr_nodes;         /* @20 */
	uint8_t disable_recovery;  /* @24 */
	uint8_t nr_copies;         /* @25 */
	uint8_t copy_policy;       /* @26 */
	uint8_t block_size_shift;  /* @27 */
	uint8_t __pad[2];          /* @28 */
	uint16_t flags;            /* @30 SD_CLUSTER_FLAG_* */
	char drv_name[SD_STORE_LEN]; /* @32 "plain" */
} __attribute__((packed));
_Static_assert(sizeof(struct sd_epoch_log_hdr) == 48, "epoch log header is 48 bytes");

#define SD_EPOCH_LOG_SIZE \
	(sizeof(struct sd_epoch_log_hdr) + SD_WIRE_MAX_NODES * sizeof(struct sd_wire_node))

/* MAKE_FS request flags (req->cluster.flags), as Sheepdog's. */
#define SD_CLUSTER_FLAG_STRICT 0x0001 /* refuse writes with fewer zones than the policy */
/* Deleted VDIs' ids may be taken again (dog cluster format -R); without it
 * a deleted VDI's id stays taken (listed by READ_DEL_VDIS) and a new VDI
 * of the same name gets the next free id. */
#define SD_CLUSTER_FLAG_RECYCLE_VID 0x0010
/* Set by the sheep at format, never by a client: each placement span's
 * first epoch is built as the format's is (sheep/cluster/chain.c), so a
 * cluster whose members did not change re-anchors without moving data.
 * Clusters formatted before it keep the one-shot anchors they had. */
#define SD_CLUSTER_FLAG_JOIN_ANCHORS 0x0080

/*
 * STAT_RECOVERY (0x97): Sheepdog's struct recovery_state is the first 24
 * bytes of the reply; this project's struct sd_recovery_state follows when
 * data_length asks for it (sizeof(struct sd_wire_recovery)).
 */
struct sd_wire_recovery {
	uint8_t in_recovery;  /* @0 */
	uint8_t __pad[3];
	uint32_t state;       /* @4 0 preparing the object list, 1 recovering, 2 notifying */
	uint64_t nr_finished; /* @8 */
	uint64_t nr_total;    /* @16 */
	struct sd_recovery_state ext; /* @24 this project's detail */
} __attribute__((packed));

/* GET_RECOVERY (0xca) reply / SET_RECOVERY (0xcb) payload, 16 bytes as
 * Sheepdog's struct recovery_throttling (u32, then u64 aligned). */
struct sd_wire_throttle {
	uint32_t max_exec_count;      /* @0 */
	uint32_t __pad;
	uint64_t queue_work_interval; /* @8 milliseconds */
} __attribute__((packed));

/*
 * GET_VDI_ATTR (0x89): a VDI's key-value attributes, each in its own
 * attribute object (oid VDI_ATTR_BIT | vid << 32 | attr_id), as Sheepdog
 * 1.0 keeps them: this header (SD_ATTR_OBJ_SIZE bytes), then value_len
 * bytes of value. The request's payload is the header (name, tag, snap_id
 * select the VDI; key names the attribute); flags SD_FLAG_CMD_CREAT
 * (create or rewrite the header), _EXCL (VDI_EXIST if it exists), _DEL
 * (remove it). The reply gives vdi_id @24, attr_id @28, copies @32; the
 * client then writes or reads the value at offset SD_ATTR_OBJ_SIZE.
 * NO_OBJ when the key is absent (and not created).
 */
#define SD_OP_GET_VDI_ATTR 0x89
#define SD_FLAG_CMD_CREAT 0x0100
#define SD_FLAG_CMD_EXCL 0x0200
#define SD_FLAG_CMD_DEL 0x0400
#define SD_MAX_VDI_ATTR_KEY_LEN 256
#define SD_MAX_VDI_ATTR_VALUE_LEN 65536

struct sd_vdi_attr {
	char name[256];                      /* @0 */
	char tag[256];                       /* @256 */
	uint64_t ctime;                      /* @512 the VDI's creation time */
	uint32_t snap_id;                    /* @520 */
	uint32_t value_len;                  /* @524 */
	char key[SD_MAX_VDI_ATTR_KEY_LEN];   /* @528; "" once deleted */
} __attribute__((packed));
#define SD_ATTR_OBJ_SIZE sizeof(struct sd_vdi_attr)
_Static_assert(sizeof(struct sd_vdi_attr) == 784, "Sheepdog's attribute header is 784 bytes");

static inline uint64_t sd_vid_to_attr_oid(uint32_t vid, uint32_t attr_id)
{
	return (1ULL << 61) | ((uint64_t)vid << 32) | attr_id;
}

/*
 * OBJ_LOCATION (0xd0, this project's; Sheepdog's dog computes placement
 * itself): where each position of obj.oid is. Reply: rsp->obj.copies =
 * positions (N copies or d+p fragments), rsp byte 21 = d (0: copies), then
 * one struct sd_obj_loc per position.
 */
#define SD_OP_OBJ_LOCATION 0xd0
/* OBJ_TRACK (0xd1, ours: Sheepdog's dog vdi track computes placement
 * itself): request obj.oid, obj.tgt_epoch, obj.copies = positions; reply
 * struct sd_wire_node per position as placement had it at that epoch
 * (port 0: no holder), rsp obj.copies = positions. NO_TAG when the epoch
 * is not in the log. */
#define SD_OP_OBJ_TRACK 0xd1

/* MD_INFO (0xb1) reply, Sheepdog 1.0's struct sd_md_info: one record per
 * data directory of the sheep asked (this project's sheep has one), then
 * the count. free + used = the directory's capacity for the store. */
#define SD_MD_MAX_DISK 64
#define SD_MD_PATH_MAX 4096
struct sd_md_disk {
	int32_t idx;
	uint32_t __pad;
	uint64_t free;
	uint64_t used;
	char path[SD_MD_PATH_MAX];
} __attribute__((packed));
struct sd_md_info {
	struct sd_md_disk disk[SD_MD_MAX_DISK];
	int32_t nr;
	uint32_t __pad;
} __attribute__((packed));
_Static_assert(sizeof(struct sd_md_disk) == 4120, "md_info is 4120 bytes");
struct sd_obj_loc {
	struct sd_wire_node node; /* the holder (zero: none at this epoch) */
	uint8_t present;          /* it answered that it has the fragment */
	uint8_t moved;            /* an earlier holder, recovery not done yet */
	uint8_t __pad[6];
	uint64_t version;
} __attribute__((packed));

/* This project's node <-> Sheepdog's 80 bytes. to_wire zeroes the rest. */
void sd_node_to_wire(const struct sd_node *n, struct sd_wire_node *w);
void sd_node_from_wire(const struct sd_wire_node *w, struct sd_node *n);

/*
 * A STAT_CLUSTER reply (buf, len bytes, result) as this project's summary:
 * ci filled (nr_epochs = whole records in buf, epoch = the newest one's,
 * nr_zones = distinct zones of its data nodes). Never fails: a short reply
 * gives zeros.
 */
void sd_stat_cluster_summary(const void *buf, size_t len, uint32_t result,
			     struct sd_cluster_info *ci);
/* Record i of a STAT_CLUSTER reply: e filled, nodes (room for
 * SD_WIRE_MAX_NODES) converted; -1 when i is past the reply or damaged. */
int sd_stat_cluster_epoch(const void *buf, size_t len, uint32_t i, struct sd_epoch_rec *e,
			  struct sd_node *nodes);

#endif
