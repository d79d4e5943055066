/* oid.h - object ids: VDI id, object index and type bits packed in a u64. */
#ifndef SD_OID_H
#define SD_OID_H

#include <stdint.h>
#include <stdbool.h>

#define VDI_SPACE_SHIFT 32
#define SD_VDI_MASK	0x00FFFFFF00000000ULL
#define SD_IDX_MASK	0x00000000FFFFFFFFULL
#define VDI_BIT		(1ULL << 63)
#define VMSTATE_BIT	(1ULL << 62)
#define VDI_ATTR_BIT	(1ULL << 61)
#define VDI_BTREE_BIT	(1ULL << 60)
#define LEDGER_BIT	(1ULL << 59)
#define SD_TYPE_MASK	(VDI_BIT | VMSTATE_BIT | VDI_ATTR_BIT | VDI_BTREE_BIT | LEDGER_BIT)

/*
 * The layout bit (this project's, bit 31 of the object index, above any
 * index an inode maps): a VDI's data object is stored under one of two
 * ids, with or without it. vdi alter-copy writes each object's new layout
 * under the other id than its old one, so both layouts sit side by side
 * on the same holders while the object is converted (docs/architecture.md,
 * "Changing a VDI's policy"). Clients never send it; placement ignores it.
 */
#define SD_LAYOUT_BIT	(1ULL << 31)

static inline uint64_t vid_to_vdi_oid(uint32_t vid)
{
	return VDI_BIT | ((uint64_t)vid << VDI_SPACE_SHIFT);
}

static inline uint64_t vid_to_data_oid(uint32_t vid, uint32_t idx)
{
	return ((uint64_t)vid << VDI_SPACE_SHIFT) | idx;
}

static inline uint32_t oid_to_vid(uint64_t oid)
{
	return (uint32_t)((oid & SD_VDI_MASK) >> VDI_SPACE_SHIFT);
}

static inline uint32_t oid_to_idx(uint64_t oid)
{
	return (uint32_t)(oid & SD_IDX_MASK);
}

static inline bool is_vdi_obj(uint64_t oid)
{
	return (oid & VDI_BIT) != 0;
}

static inline bool is_data_obj(uint64_t oid)
{
	return (oid & SD_TYPE_MASK) == 0;
}

#endif
