/* sd_proto.h - the Sheepdog 1.0 client wire protocol: header layout, opcodes, flags, result codes. */
#ifndef SD_PROTO_H
#define SD_PROTO_H

#include <stdint.h>
#include <stddef.h>

/*
 * Every request and every reply is a 48-byte header, little-endian, followed
 * by data_length bytes of payload (requests: only when SD_FLAG_CMD_WRITE).
 * Replies echo opcode and id and may come back out of order.
 */
#define SD_LISTEN_PORT 7000
#define SD_NBD_PORT 10809

#define SD_PROTO_VER 0x02      /* client ops accept 0, 1 or 2 */
#define SD_SHEEP_PROTO_VER 0x0a /* internal ops (>= 0x80) require this */

#define SD_HDR_SIZE 48
/* Largest payload a sheep accepts in one request: one whole object of the
 * largest allowed size would be 2 GiB, far beyond a sane frame, so requests
 * are bounded; clients split larger I/O. */
#define SD_MAX_PAYLOAD (64u << 20)

/* flags */
#define SD_FLAG_CMD_WRITE 0x01
#define SD_FLAG_CMD_COW 0x02
#define SD_FLAG_CMD_CACHE 0x04
#define SD_FLAG_CMD_DIRECT 0x08
#define SD_FLAG_CMD_PIGGYBACK 0x10
#define SD_FLAG_CMD_TGT 0x20
#define SD_FLAG_CMD_FWD 0x40

/* client opcodes */
#define SD_OP_CREATE_AND_WRITE_OBJ 0x01
#define SD_OP_READ_OBJ 0x02
#define SD_OP_WRITE_OBJ 0x03
#define SD_OP_REMOVE_OBJ 0x04
#define SD_OP_DISCARD_OBJ 0x05
#define SD_OP_NEW_VDI 0x11
#define SD_OP_LOCK_VDI 0x12
#define SD_OP_RELEASE_VDI 0x13
#define SD_OP_GET_VDI_INFO 0x14
#define SD_OP_READ_VDIS 0x15
#define SD_OP_FLUSH_VDI 0x16
#define SD_OP_DEL_VDI 0x17
#define SD_OP_GET_CLUSTER_DEFAULT 0x18

/* internal opcodes used by dog (proto_ver 0x0a) */
#define SD_OP_GET_NODE_LIST 0x82
#define SD_OP_MAKE_FS 0x84
#define SD_OP_SHUTDOWN 0x85
#define SD_OP_STAT_SHEEP 0x86
#define SD_OP_STAT_CLUSTER 0x87
#define SD_OP_FORCE_RECOVER 0x8a
#define SD_OP_STAT_RECOVERY 0x97
#define SD_OP_KILL_NODE 0x9a
#define SD_OP_GET_OBJ_LIST 0xa1
#define SD_OP_GET_EPOCH 0xa2
#define SD_OP_ENABLE_RECOVER 0xa8
#define SD_OP_DISABLE_RECOVER 0xa9
#define SD_OP_MD_INFO 0xb1
#define SD_OP_MD_PLUG 0xb2   /* payload: "DISK[,DISK...]" NUL-terminated */
#define SD_OP_MD_UNPLUG 0xb3
#define SD_OP_GET_HASH 0xb4
#define SD_OP_REWEIGHT 0xb5
#define SD_OP_STAT 0xb8
#define SD_OP_GET_LOGLEVEL 0xb9 /* reply: int32 level (0 emerg .. 7 debug) */
#define SD_OP_SET_LOGLEVEL 0xba /* payload: int32 level */
#define SD_OP_EXIST 0xbd
#define SD_OP_CLUSTER_INFO 0xbe
#define SD_OP_GET_VDI_LOCKS 0xc4  /* reply: struct sd_vdi_lock per locked VDI */
#define SD_OP_FORCE_UNLOCK_VDI 0xc5 /* break the lock of base_vdi_id, whoever holds it */
#define SD_OP_READ_DEL_VDIS 0xc9 /* bitmap of deleted VDIs, 2^24 bits */
#define SD_OP_GET_RECOVERY 0xca
#define SD_OP_SET_RECOVERY 0xcb
#define SD_OP_SET_VNODES 0xcc /* payload: int32 vnodes of the node asked (dog node vnodes set) */
#define SD_OP_GET_VNODES 0xcd /* reply: int32 vnodes of the node asked */
/* Peer-to-peer opcodes between sheep live in 0xe0..0xff (sheep/peer/peer.h). */
#define SD_OP_PEER_FIRST 0xe0

/* result codes */
#define SD_RES_SUCCESS 0x00
#define SD_RES_UNKNOWN 0x01
#define SD_RES_NO_OBJ 0x02
#define SD_RES_EIO 0x03
#define SD_RES_VDI_EXIST 0x04
#define SD_RES_INVALID_PARMS 0x05
#define SD_RES_SYSTEM_ERROR 0x06
#define SD_RES_VDI_LOCKED 0x07
#define SD_RES_NO_VDI 0x08
#define SD_RES_NO_BASE_VDI 0x09
#define SD_RES_VDI_READ 0x0a
#define SD_RES_VDI_WRITE 0x0b
#define SD_RES_BASE_VDI_READ 0x0c
#define SD_RES_BASE_VDI_WRITE 0x0d
#define SD_RES_NO_TAG 0x0e
#define SD_RES_STARTUP 0x0f
#define SD_RES_VDI_NOT_LOCKED 0x10
#define SD_RES_SHUTDOWN 0x11
#define SD_RES_NO_MEM 0x12
#define SD_RES_FULL_VDI 0x13
#define SD_RES_VER_MISMATCH 0x14
#define SD_RES_NO_SPACE 0x15
#define SD_RES_WAIT_FOR_FORMAT 0x16
#define SD_RES_WAIT_FOR_JOIN 0x17
#define SD_RES_JOIN_FAILED 0x18
#define SD_RES_HALT 0x19
#define SD_RES_READONLY 0x1a
/* internal */
#define SD_RES_OLD_NODE_VER 0x81
#define SD_RES_NEW_NODE_VER 0x82
#define SD_RES_NOT_FORMATTED 0x83
#define SD_RES_NETWORK_ERROR 0x86
#define SD_RES_NO_STORE 0x8a
#define SD_RES_NO_SUPPORT 0x8b
#define SD_RES_NODE_IN_RECOVERY 0x8c
#define SD_RES_KILLED 0x8d
#define SD_RES_AGAIN 0x8f

/* VDI id space and object sizes */
#define SD_NR_VDIS (1u << 24)
#define SD_MAX_VDI_LEN 256
#define SD_MAX_VDI_TAG_LEN 256
#define SD_DEFAULT_BLOCK_SIZE_SHIFT 22
#define SD_MIN_BLOCK_SIZE_SHIFT 20
#define SD_MAX_BLOCK_SIZE_SHIFT 31
#define SD_DEFAULT_COPIES 3
#define SD_MAX_COPIES 31

/* The 48-byte request header. Field offsets are fixed by the protocol and
 * checked by static assertions below. */
struct sd_req {
	uint8_t proto_ver;
	uint8_t opcode;
	uint16_t flags;
	uint32_t epoch;
	uint32_t id;
	uint32_t data_length;
	union {
		struct {
			uint64_t oid;         /* @16 */
			uint64_t cow_oid;     /* @24 */
			uint8_t copies;       /* @32 */
			uint8_t copy_policy;  /* @33 */
			uint8_t ec_index;     /* @34 */
			uint8_t reserved;     /* @35 */
			uint32_t tgt_epoch;   /* @36 */
			uint32_t offset;      /* @40 (QEMU wrote a u64; low half) */
			uint32_t __pad;       /* @44 */
		} obj;
		struct {
			uint64_t vdi_size;        /* @16 */
			uint32_t base_vdi_id;     /* @24 */
			uint8_t copies;           /* @28 */
			uint8_t copy_policy;      /* @29 */
			uint8_t store_policy;     /* @30 */
			uint8_t block_size_shift; /* @31 */
			uint32_t snapid;          /* @32 */
			uint32_t type;            /* @36 */
			uint32_t __pad[2];        /* @40 */
		} vdi;
		struct {
			uint64_t old_ctime;       /* @16 */
			uint64_t ctime;           /* @24 format time: (seconds << 32) | ns */
			uint8_t copies;           /* @32 */
			uint8_t copy_policy;      /* @33 */
			uint16_t flags;           /* @34 SD_CLUSTER_FLAG_* (sd_wire.h) */
			uint32_t tag;             /* @36 */
			uint32_t nodes_nr;        /* @40 */
			uint8_t block_size_shift; /* @44 */
			uint8_t __pad;            /* @45 */
			uint16_t nr_vnodes;       /* @46 ours (Sheepdog's padding): fixed vnodes, 0 = by capacity */
		} cluster;
		struct {
			uint32_t old_vid;         /* @16 */
			uint32_t new_vid;         /* @20 ALTER_VDI_COPY: the VDI */
			uint8_t copies;           /* @24 */
			uint8_t set_bitmap;       /* @25 */
			uint8_t copy_policy;      /* @26 */
			uint8_t block_size_shift; /* @27 */
			uint32_t __pad[4];        /* @28 */
		} vdi_state;
		uint32_t __args[8];
	};
} __attribute__((packed));

struct sd_rsp {
	uint8_t proto_ver;
	uint8_t opcode;
	uint16_t flags;
	uint32_t epoch;
	uint32_t id;
	uint32_t data_length;
	union {
		uint32_t result; /* @16, every reply */
		struct {
			uint32_t __pad;
			uint8_t copies;  /* @20 */
			uint8_t reserved[3];
			uint64_t offset; /* @24 */
			uint64_t peer_token; /* @32: peer protocol only (sheep/peer/peer.h) */
			uint64_t __pad2;
		} obj;
		struct {
			uint32_t __pad;
			uint32_t rsvd;            /* @20 */
			uint32_t __pad2;          /* @24 is vdi_id: see below */
			uint32_t attr_id;         /* @28 */
			uint8_t copies;           /* @32 */
			uint8_t block_size_shift; /* @33 */
			uint8_t __pad3[14];
		} vdi_hdr;
		struct {
			uint32_t __pad;
			uint32_t nr_nodes;   /* @20 */
			uint32_t __pad2[2];  /* @24 */
			uint64_t store_size; /* @32 */
			uint64_t store_free; /* @40 */
		} node;
		struct {
			uint32_t __pad;
			uint8_t nr_copies;        /* @20 */
			uint8_t copy_policy;      /* @21 */
			uint8_t block_size_shift; /* @22 */
			uint8_t __pad2[25];
		} cluster;
		uint32_t __args[8];
	};
} __attribute__((packed));

/* The VDI reply's vdi_id sits at @24; give it a name. */
#define sd_rsp_vdi_id(rsp) (((uint32_t *)(void *)(rsp))[6])

_Static_assert(sizeof(struct sd_req) == SD_HDR_SIZE, "request header is 48 bytes");
_Static_assert(sizeof(struct sd_rsp) == SD_HDR_SIZE, "reply header is 48 bytes");
_Static_assert(offsetof(struct sd_req, obj.oid) == 16, "oid @16");
_Static_assert(offsetof(struct sd_req, vdi_state.new_vid) == 20 &&
		   offsetof(struct sd_req, vdi_state.copy_policy) == 26,
	       "vdi_state as Sheepdog 1.0's");
_Static_assert(offsetof(struct sd_req, obj.ec_index) == 34, "ec_index @34");
_Static_assert(offsetof(struct sd_req, obj.offset) == 40, "offset @40");
_Static_assert(offsetof(struct sd_req, vdi.block_size_shift) == 31, "shift @31");
_Static_assert(offsetof(struct sd_req, vdi.snapid) == 32, "snapid @32");
_Static_assert(offsetof(struct sd_rsp, obj.offset) == 24, "rsp offset @24");
_Static_assert(offsetof(struct sd_req, cluster.ctime) == 24, "format ctime @24");
_Static_assert(offsetof(struct sd_req, cluster.flags) == 34, "format flags @34");
_Static_assert(offsetof(struct sd_req, cluster.block_size_shift) == 44, "format shift @44");
_Static_assert(offsetof(struct sd_rsp, vdi_hdr.attr_id) == 28, "attr_id @28");
_Static_assert(offsetof(struct sd_rsp, vdi_hdr.copies) == 32, "vdi copies @32");
_Static_assert(offsetof(struct sd_rsp, node.store_size) == 32, "store_size @32");
_Static_assert(offsetof(struct sd_rsp, cluster.block_size_shift) == 22, "cluster shift @22");

/* A reply's result as the int that dog's calls return beside -errno: one
 * that does not fit in an int (no sheep sends one) reads as
 * SD_RES_UNKNOWN, never as a negative errno (found by fuzz_dog: a result
 * of 0x80000000 was negated as INT_MIN). */
static inline int sd_res_int(uint32_t result)
{
	return result > 0x7fffffffu ? SD_RES_UNKNOWN : (int)result;
}

/* Is this opcode an internal one (needs SD_SHEEP_PROTO_VER)? */
static inline int sd_op_is_internal(uint8_t opcode)
{
	return opcode >= 0x80;
}

/* Text for a result code ("No object found"); never NULL. */
const char *sd_strerror(uint32_t result);

/* The one converter between -errno and result codes (lib/sd_errno.c).
 * sd_res_to_errno: SD_RES_SUCCESS -> 0, a known code -> its -errno, an
 * unknown code -> -EIO. sd_errno_to_res: 0 -> SUCCESS, anything unlisted
 * -> SD_RES_EIO. sd_errno_to_res(sd_res_to_errno(r)) is r for the first
 * code of each errno (NO_OBJ for -ENOENT, NO_SPACE for -ENOSPC, ...). */
int sd_res_to_errno(int res);
int sd_errno_to_res(int err);

/* One entry of SD_OP_GET_VDI_LOCKS: the sheep whose client holds the lock
 * and the holder's id there (NBD connection or client connection). */
struct sd_vdi_lock {
	uint32_t vid;
	uint16_t port;
	uint16_t pad;
	uint64_t owner;
	char addr[64];
} __attribute__((packed));
_Static_assert(sizeof(struct sd_vdi_lock) == 80, "sd_vdi_lock is 80 bytes");

#endif
