/* inode.h - the VDI inode object in Sheepdog 1.0's on-wire layout (12,587,576 bytes, sparse). */
#ifndef SD_INODE_H
#define SD_INODE_H

#include <stdint.h>
#include <stddef.h>

#include "lib/sd_proto.h"

#define SD_INODE_DATA_INDEX (1u << 20) /* max objects per VDI */
#define SD_INODE_SIZE 12587576u
#define SD_INODE_HEADER_SIZE 4664u /* everything before data_vdi_id[] */

struct sd_gref {
	int32_t generation;
	int32_t count;
} __attribute__((packed));

struct sd_inode {
	char name[SD_MAX_VDI_LEN];     /* @0 */
	char tag[SD_MAX_VDI_TAG_LEN];  /* @256 */
	uint64_t create_time;          /* @512 */
	uint64_t snap_ctime;           /* @520 non-zero: a snapshot */
	uint64_t vm_clock_nsec;        /* @528 */
	uint64_t vdi_size;             /* @536 */
	uint64_t vm_state_size;        /* @544 */
	uint8_t copy_policy;           /* @552 0 = replication, else EC byte */
	uint8_t store_policy;          /* @553 */
	uint8_t nr_copies;             /* @554 copies, or d+p */
	uint8_t block_size_shift;      /* @555 */
	uint32_t snap_id;              /* @556 */
	uint32_t vdi_id;               /* @560 */
	uint32_t parent_vdi_id;        /* @564 */
	uint32_t btree_counter;        /* @568 */
	uint8_t __unused[SD_INODE_HEADER_SIZE - 572];
	uint32_t data_vdi_id[SD_INODE_DATA_INDEX]; /* @4664, 0 = unallocated */
	struct sd_gref gref[SD_INODE_DATA_INDEX];  /* @4198968 */
} __attribute__((packed));

/* The header alone (what is read to learn a VDI's identity and size): the
 * same fields at the same offsets as struct sd_inode. */
struct sd_inode_hdr {
	char name[SD_MAX_VDI_LEN];
	char tag[SD_MAX_VDI_TAG_LEN];
	uint64_t create_time;
	uint64_t snap_ctime;
	uint64_t vm_clock_nsec;
	uint64_t vdi_size;
	uint64_t vm_state_size;
	uint8_t copy_policy;
	uint8_t store_policy;
	uint8_t nr_copies;
	uint8_t block_size_shift;
	uint32_t snap_id;
	uint32_t vdi_id;
	uint32_t parent_vdi_id;
	uint32_t btree_counter;
	uint8_t __unused[SD_INODE_HEADER_SIZE - 572];
} __attribute__((packed));

_Static_assert(sizeof(struct sd_inode_hdr) == SD_INODE_HEADER_SIZE, "inode header size");
_Static_assert(offsetof(struct sd_inode_hdr, parent_vdi_id) == offsetof(struct sd_inode, parent_vdi_id),
	       "header and inode agree");
_Static_assert(offsetof(struct sd_inode, copy_policy) == 552, "copy_policy @552");
_Static_assert(offsetof(struct sd_inode, snap_id) == 556, "snap_id @556");
_Static_assert(offsetof(struct sd_inode, data_vdi_id) == 4664, "data_vdi_id @4664");
_Static_assert(offsetof(struct sd_inode, gref) == 4198968, "gref @4198968");
_Static_assert(sizeof(struct sd_inode) == SD_INODE_SIZE, "inode size");

/* Byte offset of data_vdi_id[idx] inside the inode object. */
static inline uint32_t sd_inode_vid_offset(uint32_t idx)
{
	return (uint32_t)(offsetof(struct sd_inode, data_vdi_id) + (size_t)idx * sizeof(uint32_t));
}

/* Objects of a VDI: vdi_size / object size rounded up, 0 when the header is
 * out of range (size beyond 2^20 objects, bad shift). */
static inline uint32_t sd_inode_nr_objs(const struct sd_inode_hdr *h)
{
	uint8_t shift = h->block_size_shift ? h->block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT;
	if (shift < SD_MIN_BLOCK_SIZE_SHIFT || shift > SD_MAX_BLOCK_SIZE_SHIFT ||
	    h->vdi_size > ((uint64_t)SD_INODE_DATA_INDEX << shift))
		return 0;
	return (uint32_t)((h->vdi_size + (1ull << shift) - 1) >> shift);
}

/* A snapshot (frozen) inode; a clone is a working VDI made from another
 * name's snapshot: Sheepdog marks it by snap_id 1 with a parent. */
static inline int sd_inode_is_snapshot(const struct sd_inode_hdr *h)
{
	return h->snap_ctime != 0;
}

static inline int sd_inode_is_clone(const struct sd_inode_hdr *h)
{
	return !h->snap_ctime && h->snap_id == 1 && h->parent_vdi_id != 0;
}

/* Maximum VDI size for a block size: 2^20 objects of 2^shift bytes. */
static inline uint64_t sd_max_vdi_size(uint8_t block_size_shift)
{
	return (uint64_t)SD_INODE_DATA_INDEX << block_size_shift;
}

#endif
