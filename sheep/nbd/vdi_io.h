/* vdi_io.h - byte-range I/O on one VDI inside the daemon, on top of the gateway (used by the NBD export). */
#ifndef SHEEP_VDI_IO_H
#define SHEEP_VDI_IO_H

#include <stdbool.h>
#include <stdint.h>

struct sheep;
struct vdi_io;

/*
 * A VDI opened for byte-range I/O. Every call is blocking and safe from
 * several threads at once on the same handle (never from the daemon's
 * event-loop thread: it calls the gateway). Results are SD_RES_* codes
 * (lib/sd_proto.h); sd_strerror() gives the text.
 *
 * Layout: the VDI is cut into objects of 2^block_size_shift bytes (from the
 * inode; 0 there means the default 4 MiB). Object idx of VDI vid is data
 * object vid_to_data_oid(data_vdi_id[idx], idx); data_vdi_id[idx] == 0 means
 * unallocated (reads as zeros), != vid means inherited from a snapshot
 * (copied on first write).
 *
 * Durability: a call that returns SD_RES_SUCCESS has had every byte it wrote
 * and every inode entry it changed acknowledged by the gateway, which
 * acknowledges only durable writes. There is no cache here, so there is
 * nothing to flush, and what one handle wrote is visible to every other
 * handle as soon as the call returns.
 *
 * Crash safety of allocation: a new object is created (and durable) before
 * its inode entry points at it; a freed object is unlinked from the inode
 * before it is removed. A crash in between leaves an unreferenced object,
 * never an entry pointing at nothing.
 */

#define VDI_IO_WRITE 0x1 /* open for writing: takes the VDI's cluster-wide write lock */
/*
 * With VDI_IO_WRITE: a live migration's destination. When another writer
 * holds the lock the open succeeds anyway, without the lock; the first
 * write (or zero/trim) takes the lock over (the old holder is fenced: its
 * writes fail from then on). Until then the handle only reads, and closing
 * it leaves the old holder's lock alone.
 */
#define VDI_IO_HANDOVER 0x2

struct vdi_io_info {
	uint32_t vid;
	uint64_t size;        /* bytes */
	uint32_t object_size; /* bytes, a power of two */
	uint8_t copy_policy;  /* 0 = replication, else the EC policy byte */
	uint8_t nr_copies;    /* copies, or d+p */
	bool snapshot;        /* a snapshot: never writable */
	bool writable;        /* opened with VDI_IO_WRITE and locked */
};

/*
 * Open the VDI called name (snapid 0 and tag NULL/"" = the working VDI, else
 * that snapshot). With VDI_IO_WRITE: SD_RES_READONLY for a snapshot,
 * SD_RES_VDI_LOCKED when another owner holds the write lock; owner is any
 * u64 unique to the caller on this sheep. SD_RES_NO_VDI / SD_RES_NO_TAG when
 * it does not exist. Nothing is changed on failure.
 */
int vdi_io_open(struct sheep *s, const char *name, uint32_t snapid, const char *tag,
		unsigned flags, uint64_t owner, struct vdi_io **out);
/* Release the write lock (if held) and free the handle. */
void vdi_io_close(struct vdi_io *v);
void vdi_io_get_info(const struct vdi_io *v, struct vdi_io_info *info);

/*
 * len bytes at off; off + len must lie within the VDI (SD_RES_INVALID_PARMS
 * otherwise, nothing done). A range spanning several objects is done object
 * by object; on error some objects may already hold the new data (as with
 * any block device, a failed write leaves its range undefined).
 */
int vdi_io_read(struct vdi_io *v, void *buf, uint64_t len, uint64_t off);
int vdi_io_write(struct vdi_io *v, const void *buf, uint64_t len, uint64_t off);
/*
 * Make the range read as zeros. Whole objects owned by this VDI are removed
 * and their inode entries cleared (inherited ones only unlinked) when
 * may_free; otherwise, and for partial objects, zeros are written into
 * allocated objects (unallocated ones already read as zeros).
 */
int vdi_io_zero(struct vdi_io *v, uint64_t len, uint64_t off, bool may_free);
/*
 * Discard: free the whole objects inside the range as vdi_io_zero does;
 * partial objects at the edges are left as they are (a discard is advisory).
 */
int vdi_io_trim(struct vdi_io *v, uint64_t len, uint64_t off);

/* A run of the VDI that is all allocated or all unallocated. */
struct vdi_io_extent {
	uint64_t length;
	bool allocated; /* false: no object, reads as zeros */
};

/*
 * Allocation of [off, off+len), from off: up to max runs (adjacent objects
 * alike are merged), *n set; the runs cover the range or a prefix of it.
 * Inherited objects (from a snapshot) count as allocated. A handle that
 * others may write (read-only attach of the working VDI) re-reads the
 * range's inode entries first, so an object written since the open is
 * never reported as a hole.
 */
int vdi_io_map(struct vdi_io *v, uint64_t len, uint64_t off, struct vdi_io_extent *ext,
	       uint32_t max, uint32_t *n);

#endif
