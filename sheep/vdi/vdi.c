/* vdi.c - the VDI table every node keeps: lookup by id and name, id allocation, packing and persistence. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "sheep/sheep.h"
#include "sheep/vdi/vdi.h"

#define VDI_FILE_MAGIC 0x53445654u /* "SDVT" */
#define VDI_FILE_VERSION 1

/* One entry as packed on disk and in snapshots (little-endian). */
struct vdi_rec {
	uint32_t vid, snapid, parent;
	uint8_t copy_policy, nr_copies, shift, deleted;
	uint64_t size, ctime;
	uint8_t locked, flags;
	uint16_t lock_port;
	uint8_t alt_copies, alt_policy, meta_width, __pad2;
	uint64_t lock_inc, lock_owner;
	char lock_addr[64];
	char name[SD_MAX_VDI_LEN];
	char tag[SD_MAX_VDI_TAG_LEN];
} __attribute__((packed));

struct vdi_file_hdr {
	uint32_t magic, version, count, __pad;
} __attribute__((packed));

int vdi_table_init(struct vdi_table *t)
{
	memset(t, 0, sizeof(*t));
	t->bitmap = calloc(1, SD_NR_VDIS / 8);
	return t->bitmap ? 0 : -ENOMEM;
}

static void free_entries(struct vdi_table *t)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++) {
		struct vdi_entry *e = t->buckets[b];
		while (e) {
			struct vdi_entry *n = e->hnext;
			free(e);
			e = n;
		}
		t->buckets[b] = NULL;
	}
	t->nr = 0;
}

void vdi_table_clear(struct vdi_table *t)
{
	free_entries(t);
	if (t->bitmap)
		memset(t->bitmap, 0, SD_NR_VDIS / 8);
}

void vdi_table_free(struct vdi_table *t)
{
	/* Not vdi_table_clear(): zeroing the 2 MiB bitmap just before freeing
	 * it touched every page (most of fuzz_cluster's time per input). */
	free_entries(t);
	free(t->bitmap);
	t->bitmap = NULL;
}

static unsigned bucket_of(uint32_t vid)
{
	return (vid * 2654435761u) % VDI_HASH_BUCKETS;
}

struct vdi_entry *vdi_table_find(struct vdi_table *t, uint32_t vid)
{
	for (struct vdi_entry *e = t->buckets[bucket_of(vid)]; e; e = e->hnext)
		if (e->vid == vid)
			return e;
	return NULL;
}

struct vdi_entry *vdi_table_by_name(struct vdi_table *t, const char *name, const char *tag,
				    uint32_t snapid)
{
	bool want_snap = (tag && *tag) || snapid;
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext) {
			if (e->deleted || strcmp(e->name, name))
				continue;
			bool snap = (e->flags & VDI_F_SNAPSHOT) != 0;
			if (!want_snap) {
				if (!snap)
					return e; /* the working VDI: one per name */
				continue;
			}
			if (!snap)
				continue;
			if (tag && *tag ? !strcmp(e->tag, tag) : e->snapid == snapid)
				return e;
		}
	return NULL;
}

uint32_t vdi_table_root(struct vdi_table *t, uint32_t vid)
{
	/* Bounded: a corrupt table with a cycle must not hang the daemon. */
	for (int depth = 0; depth < 1 << 20; depth++) {
		struct vdi_entry *e = vdi_table_find(t, vid);
		if (!e || !e->parent || !vdi_table_find(t, e->parent))
			return vid;
		vid = e->parent;
	}
	return vid;
}

size_t vdi_table_todo(struct vdi_table *t)
{
	size_t n = 0;
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext)
			if ((e->flags & VDI_F_PENDING) || e->deleted == VDI_DEL_RECLAIM)
				n++;
	return n;
}

static bool has_child(struct vdi_table *t, uint32_t vid)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext)
			if (e->parent == vid && e->vid != vid)
				return true;
	return false;
}

void vdi_table_drop_zombies(struct vdi_table *t)
{
	for (bool again = true; again;) {
		again = false;
		for (int b = 0; b < VDI_HASH_BUCKETS && !again; b++)
			for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext)
				if (e->deleted == VDI_DEL_ZOMBIE && !has_child(t, e->vid)) {
					vdi_table_remove(t, e->vid);
					again = true;
					break;
				}
	}
}

static void bit_set(uint8_t *bm, uint32_t vid, int on)
{
	if (on)
		bm[vid / 8] |= (uint8_t)(1u << (vid % 8));
	else
		bm[vid / 8] &= (uint8_t)~(1u << (vid % 8));
}

static int bit_get(const uint8_t *bm, uint32_t vid)
{
	return (bm[vid / 8] >> (vid % 8)) & 1;
}

int vdi_table_insert(struct vdi_table *t, const struct vdi_entry *src)
{
	struct vdi_entry *e = vdi_table_find(t, src->vid);
	if (!e) {
		e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		*e = *src;
		unsigned b = bucket_of(src->vid);
		e->hnext = t->buckets[b];
		t->buckets[b] = e;
		t->nr++;
	} else {
		struct vdi_entry *keep = e->hnext;
		*e = *src;
		e->hnext = keep;
	}
	bit_set(t->bitmap, e->vid, !e->deleted);
	return 0;
}

void vdi_table_remove(struct vdi_table *t, uint32_t vid)
{
	for (struct vdi_entry **pp = &t->buckets[bucket_of(vid)]; *pp; pp = &(*pp)->hnext)
		if ((*pp)->vid == vid) {
			struct vdi_entry *e = *pp;
			*pp = e->hnext;
			free(e);
			t->nr--;
			bit_set(t->bitmap, vid, 0);
			return;
		}
}

uint32_t vdi_table_alloc_vid(struct vdi_table *t, uint32_t start)
{
	uint32_t vid = start & (SD_NR_VDIS - 1);
	for (uint32_t n = 0; n < SD_NR_VDIS; n++, vid = (vid + 1) & (SD_NR_VDIS - 1)) {
		if (vid == 0)
			continue;
		if (!bit_get(t->bitmap, vid) && !vdi_table_find(t, vid))
			return vid;
	}
	return 0;
}

static void to_rec(const struct vdi_entry *e, struct vdi_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->vid = e->vid;
	r->snapid = e->snapid;
	r->parent = e->parent;
	r->copy_policy = e->copy_policy;
	r->nr_copies = e->nr_copies;
	r->shift = e->shift;
	r->deleted = e->deleted;
	r->size = e->size;
	r->ctime = e->ctime;
	r->locked = e->locked;
	r->flags = e->flags;
	r->lock_port = e->lock_port;
	r->lock_inc = e->lock_inc;
	r->lock_owner = e->lock_owner;
	r->alt_copies = e->alt_copies;
	r->alt_policy = e->alt_policy;
	r->meta_width = e->meta_width;
	memcpy(r->lock_addr, e->lock_addr, sizeof(r->lock_addr));
	memcpy(r->name, e->name, sizeof(r->name));
	memcpy(r->tag, e->tag, sizeof(r->tag));
}

static void from_rec(const struct vdi_rec *r, struct vdi_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->vid = r->vid & (SD_NR_VDIS - 1);
	e->snapid = r->snapid;
	e->parent = r->parent;
	e->copy_policy = r->copy_policy;
	e->nr_copies = r->nr_copies;
	e->shift = r->shift;
	e->deleted = r->deleted;
	e->size = r->size;
	e->ctime = r->ctime;
	e->locked = r->locked;
	e->flags = r->flags;
	e->lock_port = r->lock_port;
	e->lock_inc = r->lock_inc;
	e->lock_owner = r->lock_owner;
	e->alt_copies = r->alt_copies;
	e->alt_policy = r->alt_policy;
	e->meta_width = r->meta_width;
	memcpy(e->lock_addr, r->lock_addr, sizeof(e->lock_addr));
	e->lock_addr[sizeof(e->lock_addr) - 1] = '\0';
	memcpy(e->name, r->name, sizeof(e->name));
	e->name[sizeof(e->name) - 1] = '\0';
	memcpy(e->tag, r->tag, sizeof(e->tag));
	e->tag[sizeof(e->tag) - 1] = '\0';
}

long vdi_table_pack(struct vdi_table *t, void *buf, size_t len)
{
	size_t need = sizeof(struct vdi_file_hdr) + t->nr * sizeof(struct vdi_rec);
	if (need > len)
		return -EMSGSIZE;
	struct vdi_file_hdr h = {VDI_FILE_MAGIC, VDI_FILE_VERSION, (uint32_t)t->nr, 0};
	memcpy(buf, &h, sizeof(h));
	char *p = (char *)buf + sizeof(h);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext) {
			struct vdi_rec r;
			to_rec(e, &r);
			memcpy(p, &r, sizeof(r));
			p += sizeof(r);
		}
	return (long)need;
}

int vdi_table_unpack(struct vdi_table *t, const void *buf, size_t len)
{
	struct vdi_file_hdr h;
	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != VDI_FILE_MAGIC || h.version != VDI_FILE_VERSION ||
	    len < sizeof(h) + (size_t)h.count * sizeof(struct vdi_rec))
		return -EINVAL;
	vdi_table_clear(t);
	const char *p = (const char *)buf + sizeof(h);
	for (uint32_t i = 0; i < h.count; i++) {
		struct vdi_rec r;
		struct vdi_entry e;
		memcpy(&r, p + (size_t)i * sizeof(r), sizeof(r));
		from_rec(&r, &e);
		if (e.vid == 0)
			continue;
		int ret = vdi_table_insert(t, &e);
		if (ret)
			return ret;
	}
	return 0;
}

int vdi_table_save(struct vdi_table *t, const char *path)
{
	/* Locks are runtime state: a restarted cluster starts unlocked. */
	size_t cap = sizeof(struct vdi_file_hdr) + t->nr * sizeof(struct vdi_rec);
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	long n = vdi_table_pack(t, buf, cap);
	for (size_t i = 0; n > 0 && i < t->nr; i++) {
		struct vdi_rec *r = (struct vdi_rec *)(buf + sizeof(struct vdi_file_hdr)) + i;
		r->locked = 0;
	}
	int ret = n < 0 ? (int)n : 0;
	if (!ret) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			ret = -errno;
		} else {
			ssize_t w = write(fd, buf, (size_t)n);
			if (w != n || fsync(fd) < 0)
				ret = w < 0 ? -errno : -EIO;
			close(fd);
			if (!ret && rename(tmp, path) < 0)
				ret = -errno;
		}
	}
	free(buf);
	return ret;
}

int vdi_table_load(struct vdi_table *t, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	int ret = n == st.st_size ? vdi_table_unpack(t, buf, (size_t)n) : -EIO;
	free(buf);
	return ret;
}
