/* vdi.h - the VDI table every sheep keeps (struct vdi_table in sheep/sheep.h) and its persistence. */
#ifndef SHEEP_VDI_VDI_H
#define SHEEP_VDI_VDI_H

#include <stddef.h>
#include <stdint.h>

struct vdi_entry;
struct vdi_table;

int vdi_table_init(struct vdi_table *t);
void vdi_table_free(struct vdi_table *t);
struct vdi_entry *vdi_table_find(struct vdi_table *t, uint32_t vid);
struct vdi_entry *vdi_table_by_name(struct vdi_table *t, const char *name, const char *tag,
				    uint32_t snapid);
int vdi_table_insert(struct vdi_table *t, const struct vdi_entry *e);
void vdi_table_remove(struct vdi_table *t, uint32_t vid);
/* First free vid probing upward from hash (mod 2^24, skipping 0). */
uint32_t vdi_table_alloc_vid(struct vdi_table *t, uint32_t start);
int vdi_table_save(struct vdi_table *t, const char *path);
int vdi_table_load(struct vdi_table *t, const char *path);
/* Serialise (for snapshots): returns bytes or -EMSGSIZE. */
long vdi_table_pack(struct vdi_table *t, void *buf, size_t len);
int vdi_table_unpack(struct vdi_table *t, const void *buf, size_t len);
void vdi_table_clear(struct vdi_table *t);
/* Root of vid's family tree (vid itself when it has no parent in the table). */
uint32_t vdi_table_root(struct vdi_table *t, uint32_t vid);
/* Entries that still need work: pending creations, deletions not reclaimed. */
size_t vdi_table_todo(struct vdi_table *t);
/* Remove reclaimed deleted entries no other entry descends from. */
void vdi_table_drop_zombies(struct vdi_table *t);

#endif
