/* snap.h - snapshots, clones, rollback and reclaim of VDI families (Sheepdog's copy-on-write model). */
#ifndef SHEEP_SNAP_SNAP_H
#define SHEEP_SNAP_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sheep;

/*
 * A family is a tree of VDIs linked by parent ids: snapshots of one name in
 * a chain, the working VDI at its tip, clones hanging off snapshots. Object
 * idx of VDI v is data object (data_vdi_id[idx], idx): an entry naming an
 * ancestor shares that ancestor's object until the first write copies it.
 *
 * Every call blocks (worker threads only) and returns SD_RES_*. Creation
 * is one cluster-wide table change (the new VDI is pending) followed by
 * writing its inode (the parent's object map, no data object read or
 * copied) and a second change marking it ready. A crash between the two
 * leaves it pending; vdi_snap_sweep() on any sheep finishes it, so after a
 * restart the cluster shows the new state, never half of it.
 */

/* Make and free this module's state (s->snap); init returns 0 or -ENOMEM. */
int vdi_snap_init(struct sheep *s);
void vdi_snap_fini(struct sheep *s);

/* Freeze the working VDI base as a snapshot (tag may be "" or NULL); *vid =
 * the new working VDI. SD_RES_READONLY when base is a snapshot already,
 * SD_RES_VDI_EXIST when the tag is taken by another snapshot of the name. */
int vdi_snap_snapshot(struct sheep *s, uint32_t base, const char *tag, uint32_t *vid);
/* A writable VDI name sharing snapshot base's objects; copies 0 keeps the
 * snapshot's policy, else (copies, policy) applies to objects the clone
 * writes. SD_RES_INVALID_PARMS when base is not a snapshot. */
int vdi_snap_clone(struct sheep *s, uint32_t base, const char *name, uint8_t copies,
		   uint8_t policy, uint32_t *vid);
/* Replace the working VDI of snapshot snap's name by a new one with the
 * snapshot's contents; the old working VDI is deleted (and reclaimed). */
int vdi_snap_rollback(struct sheep *s, uint32_t snap, uint64_t owner, uint32_t *vid);
/* Delete vid and free every object nothing else refers to. Refused
 * (SD_RES_VDI_WRITE) while clones depend on it: dependents names them. */
int vdi_snap_delete(struct sheep *s, uint32_t vid, uint64_t owner);
/* Names of the live clones made from vid, "a, b" (empty when none). */
void vdi_snap_dependents(struct sheep *s, uint32_t vid, char *buf, size_t len);
/* Finish pending creations and reclaim deleted VDIs; cheap when there is
 * nothing to do. */
int vdi_snap_sweep(struct sheep *s);

#endif
