/* vdi_io.c - byte-range I/O on one VDI: object mapping, allocation, copy-on-write, free, write lock. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/nbd/vdi_io.h"

/* Allocation, copy-on-write and free of one object are serialised by a lock
 * chosen by object index; writes into objects already owned go straight to
 * the gateway, which serialises writes per object itself. */
#define VDI_IO_NR_LOCKS 64
/* How long a writer following a snapshot waits for the new inode. */
#define VDI_IO_FOLLOW_WAIT_MS 30000
/* Inode entries are read in slices of this many bytes at open. */
#define VDI_IO_MAP_CHUNK (1u << 20)
/* How long an open for writing waits for a just-released lock. */
#define VDI_IO_LOCK_WAIT_MS 3000

struct vdi_io {
	struct sheep *s;
	char name[SD_MAX_VDI_LEN];
	/* A snapshot of the working VDI moves it to a new id: vid and map are
	 * swapped under the write side; every piece of I/O holds the read side. */
	pthread_rwlock_t swap;
	uint32_t vid;
	uint64_t owner;
	uint64_t size;
	uint8_t shift;
	uint32_t obj_size;
	uint32_t nr_objs;
	uint8_t copy_policy;
	uint8_t nr_copies;
	bool snapshot;
	bool writable;
	/* VDI_IO_HANDOVER opened while another writer held the lock: the first
	 * write takes it over (under handover_lock). */
	atomic_bool pending;
	pthread_mutex_t handover_lock;
	/* Someone else may write this VDI while we read it: an entry we hold as
	 * unallocated, or one whose object has gone, is re-read from the inode. */
	bool may_change;
	uint32_t *map; /* data_vdi_id[0..nr_objs), read and written atomically */
	pthread_mutex_t locks[VDI_IO_NR_LOCKS];
};

static uint32_t map_get(struct vdi_io *v, uint32_t idx)
{
	return __atomic_load_n(&v->map[idx], __ATOMIC_ACQUIRE);
}

static void map_set(struct vdi_io *v, uint32_t idx, uint32_t vid)
{
	__atomic_store_n(&v->map[idx], vid, __ATOMIC_RELEASE);
}

static pthread_mutex_t *obj_lock(struct vdi_io *v, uint32_t idx)
{
	return &v->locks[idx % VDI_IO_NR_LOCKS];
}

/* Re-read data_vdi_id[idx] from the inode object. */
static int map_refresh(struct vdi_io *v, uint32_t idx, uint32_t *out)
{
	uint32_t e = 0;
	int ret = gateway_read_obj(v->s, vid_to_vdi_oid(v->vid), &e, sizeof(e),
				   sd_inode_vid_offset(idx));
	if (ret != SD_RES_SUCCESS)
		return ret;
	map_set(v, idx, e);
	*out = e;
	return SD_RES_SUCCESS;
}

/* Durably point data_vdi_id[idx] at vid (0 = unallocated). */
static int map_store(struct vdi_io *v, uint32_t idx, uint32_t vid)
{
	int ret = gateway_write_obj(v->s, vid_to_vdi_oid(v->vid), &vid, sizeof(vid),
				    sd_inode_vid_offset(idx), false);
	if (ret != SD_RES_SUCCESS) {
		sd_err("vdi %" PRIx32 " object %" PRIu32 ": inode update failed: %s", v->vid, idx,
		       sd_strerror(ret));
		return ret;
	}
	map_set(v, idx, vid);
	return SD_RES_SUCCESS;
}

int vdi_io_open(struct sheep *s, const char *name, uint32_t snapid, const char *tag,
		unsigned flags, uint64_t owner, struct vdi_io **out)
{
	uint8_t *hdr = NULL;
	struct vdi_io *v = NULL;
	uint32_t vid;
	int ret;

	*out = NULL;
	if (!name || !*name || strlen(name) >= SD_MAX_VDI_LEN ||
	    (tag && strlen(tag) >= SD_MAX_VDI_TAG_LEN))
		return SD_RES_INVALID_PARMS;
	ret = gateway_vdi_lookup(s, name, snapid, tag, &vid);
	if (ret != SD_RES_SUCCESS)
		return ret;

	/* Only the header: the inode object is 12 MiB, mostly the gref table. */
	hdr = malloc(SD_INODE_HEADER_SIZE);
	v = calloc(1, sizeof(*v));
	if (!hdr || !v) {
		ret = SD_RES_NO_MEM;
		goto fail;
	}
	ret = gateway_read_obj(s, vid_to_vdi_oid(vid), hdr, SD_INODE_HEADER_SIZE, 0);
	if (ret != SD_RES_SUCCESS)
		goto fail;

	v->s = s;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->vid = vid;
	v->owner = owner;
	uint64_t snap_ctime;
	memcpy(&v->size, hdr + offsetof(struct sd_inode, vdi_size), sizeof(v->size));
	memcpy(&snap_ctime, hdr + offsetof(struct sd_inode, snap_ctime), sizeof(snap_ctime));
	v->shift = hdr[offsetof(struct sd_inode, block_size_shift)];
	if (v->shift == 0)
		v->shift = SD_DEFAULT_BLOCK_SIZE_SHIFT;
	v->copy_policy = hdr[offsetof(struct sd_inode, copy_policy)];
	v->nr_copies = hdr[offsetof(struct sd_inode, nr_copies)];
	v->snapshot = snap_ctime != 0 || snapid != 0 || (tag && *tag);
	if (v->shift < SD_MIN_BLOCK_SIZE_SHIFT || v->shift > SD_MAX_BLOCK_SIZE_SHIFT ||
	    v->size > sd_max_vdi_size(v->shift)) {
		sd_err("vdi %s (%" PRIx32 "): bad inode (size %" PRIu64 ", block_size_shift %u)",
		       name, vid, v->size, v->shift);
		ret = SD_RES_EIO;
		goto fail;
	}
	v->obj_size = 1u << v->shift;
	v->nr_objs = (uint32_t)SD_DIV_ROUND_UP(v->size, v->obj_size);

	if (flags & VDI_IO_WRITE) {
		if (v->snapshot) {
			ret = SD_RES_READONLY;
			goto fail;
		}
		/* A writer that has just detached (a client that sent DISC and
		 * closed, a QEMU restarted) frees its lock a moment after its
		 * client has gone: wait up to VDI_IO_LOCK_WAIT_MS for that
		 * before refusing, so a hand-over never fails on the race. A
		 * migration destination does not wait: it opens without the lock. */
		for (int waited = 0;; waited += 100) {
			ret = gateway_vdi_lock(s, vid, owner);
			if (ret != SD_RES_VDI_LOCKED || waited >= VDI_IO_LOCK_WAIT_MS ||
			    (flags & VDI_IO_HANDOVER))
				break;
			usleep(100 * 1000);
		}
		if (ret == SD_RES_VDI_LOCKED && (flags & VDI_IO_HANDOVER)) {
			sd_info("vdi %s: opened as a migration destination; the lock moves here at "
				"its first write", name);
			atomic_store(&v->pending, true);
			/* The holder writes on: re-read entries we hold as
			 * unallocated until the map is reloaded at takeover. */
			v->may_change = true;
			ret = SD_RES_SUCCESS;
		}
		if (ret != SD_RES_SUCCESS)
			goto fail;
		v->writable = true;
	} else {
		v->may_change = !v->snapshot;
	}

	v->map = calloc(v->nr_objs ? v->nr_objs : 1, sizeof(uint32_t));
	if (!v->map) {
		ret = SD_RES_NO_MEM;
		goto fail;
	}
	for (uint64_t done = 0, total = (uint64_t)v->nr_objs * 4; done < total;) {
		uint32_t n = (uint32_t)SD_MIN(total - done, VDI_IO_MAP_CHUNK);
		ret = gateway_read_obj(s, vid_to_vdi_oid(vid), (char *)v->map + done, n,
				       (uint32_t)(SD_INODE_HEADER_SIZE + done));
		if (ret != SD_RES_SUCCESS)
			goto fail;
		done += n;
	}
	for (int i = 0; i < VDI_IO_NR_LOCKS; i++)
		pthread_mutex_init(&v->locks[i], NULL);
	pthread_rwlock_init(&v->swap, NULL);
	pthread_mutex_init(&v->handover_lock, NULL);
	free(hdr);
	*out = v;
	return SD_RES_SUCCESS;
fail:
	if (v && v->writable && !atomic_load(&v->pending))
		gateway_vdi_unlock(s, vid, owner);
	if (v)
		free(v->map);
	free(v);
	free(hdr);
	return ret;
}

void vdi_io_close(struct vdi_io *v)
{
	if (!v)
		return;
	if (v->writable && !atomic_load(&v->pending)) {
		/* Test hook: free the lock this long after the client has gone
		 * (tests/func/069 proves a new writer waits for it). */
		const char *delay = getenv("SHEEP_TEST_UNLOCK_DELAY_MS");
		if (delay)
			usleep((useconds_t)strtoul(delay, NULL, 10) * 1000);
		int ret = gateway_vdi_unlock(v->s, v->vid, v->owner);
		if (ret == SD_RES_VDI_NOT_LOCKED) {
			/* A snapshot taken since our last write froze v->vid and
			 * moved our lock to the new working VDI, which we never
			 * followed (no write came after it): release it there.
			 * The unlock checks the owner, so no other lock goes.
			 * Still v->vid: nothing to release. The unlock was sent
			 * again after the driver said it was not sent when it
			 * was (ZooKeeper: a create whose answer a dropped
			 * connection lost; tests/func/083), or dog vdi lock
			 * unlock took it. */
			uint32_t cur;
			bool found = gateway_vdi_lookup(v->s, v->name, 0, NULL, &cur) == SD_RES_SUCCESS;
			if (found && cur != v->vid) {
				ret = gateway_vdi_unlock(v->s, cur, v->owner);
			} else if (found) {
				sd_info("vdi %" PRIx32 ": not locked any more: nothing to release", v->vid);
				ret = SD_RES_SUCCESS;
			}
		}
		if (ret != SD_RES_SUCCESS)
			sd_warn("vdi %" PRIx32 ": unlock failed: %s", v->vid, sd_strerror(ret));
	}
	for (int i = 0; i < VDI_IO_NR_LOCKS; i++)
		pthread_mutex_destroy(&v->locks[i]);
	pthread_rwlock_destroy(&v->swap);
	pthread_mutex_destroy(&v->handover_lock);
	free(v->map);
	free(v);
}

/*
 * The VDI we write was frozen as a snapshot (a write answered READONLY):
 * follow the name to its new working VDI, which inherited the lock, and
 * load its object map. SD_RES_SUCCESS when the handle now points at a
 * writable VDI.
 */
static int vdi_io_follow(struct vdi_io *v, uint32_t old_vid)
{
	pthread_rwlock_wrlock(&v->swap);
	int ret = SD_RES_SUCCESS;
	if (v->vid != old_vid)
		goto out; /* another thread followed already */
	uint32_t vid;
	ret = gateway_vdi_lookup(v->s, v->name, 0, NULL, &vid);
	if (ret != SD_RES_SUCCESS)
		goto out;
	if (vid == v->vid) {
		ret = SD_RES_READONLY;
		goto out;
	}
	/* The snapshot may still be writing the new VDI's inode: it is complete
	 * once its header names it (written last). */
	for (int waited = 0;; waited += 20) {
		uint32_t id = 0;
		ret = gateway_read_obj(v->s, vid_to_vdi_oid(vid), &id, sizeof(id),
				       (uint32_t)offsetof(struct sd_inode, vdi_id));
		if (ret == SD_RES_SUCCESS && id == vid)
			break;
		if (waited >= VDI_IO_FOLLOW_WAIT_MS) {
			sd_err("vdi %s: the new working VDI %" PRIx32 " is not complete after %d ms",
			       v->name, vid, waited);
			ret = SD_RES_EIO;
			goto out;
		}
		usleep(20000);
	}
	uint32_t *map = calloc(v->nr_objs ? v->nr_objs : 1, sizeof(uint32_t));
	if (!map) {
		ret = SD_RES_NO_MEM;
		goto out;
	}
	for (uint64_t done = 0, total = (uint64_t)v->nr_objs * 4; done < total;) {
		uint32_t n = (uint32_t)SD_MIN(total - done, VDI_IO_MAP_CHUNK);
		ret = gateway_read_obj(v->s, vid_to_vdi_oid(vid), (char *)map + done, n,
				       (uint32_t)(SD_INODE_HEADER_SIZE + done));
		if (ret != SD_RES_SUCCESS) {
			free(map);
			goto out;
		}
		done += n;
	}
	sd_info("vdi %s: snapshot taken, writes go to %" PRIx32 " (was %" PRIx32 ")", v->name, vid,
		v->vid);
	free(v->map);
	v->map = map;
	v->vid = vid;
out:
	pthread_rwlock_unlock(&v->swap);
	return ret;
}

void vdi_io_get_info(const struct vdi_io *v, struct vdi_io_info *info)
{
	info->vid = v->vid;
	info->size = v->size;
	info->object_size = v->obj_size;
	info->copy_policy = v->copy_policy;
	info->nr_copies = v->nr_copies;
	info->snapshot = v->snapshot;
	info->writable = v->writable;
}

static bool range_ok(const struct vdi_io *v, uint64_t len, uint64_t off)
{
	return off <= v->size && len <= v->size - off;
}

/* Read [off, off+len) of object idx (len within the object). */
static int read_piece(struct vdi_io *v, uint32_t idx, char *buf, uint32_t len, uint32_t off)
{
	uint32_t owner = map_get(v, idx);
	int ret;

	if (owner == 0 && v->may_change) {
		ret = map_refresh(v, idx, &owner);
		if (ret != SD_RES_SUCCESS)
			return ret;
	}
	for (int attempt = 0;; attempt++) {
		if (owner == 0) {
			memset(buf, 0, len);
			return SD_RES_SUCCESS;
		}
		ret = gateway_read_obj(v->s, vid_to_data_oid(owner, idx), buf, len, off);
		if (ret != SD_RES_NO_OBJ || attempt > 0)
			break;
		/* Freed or moved since we looked: the inode says which. */
		uint32_t now;
		int r = map_refresh(v, idx, &now);
		if (r != SD_RES_SUCCESS || now == owner)
			break;
		owner = now;
	}
	if (ret != SD_RES_SUCCESS)
		sd_err("vdi %" PRIx32 " object %" PRIu32 ": read failed: %s", v->vid, idx,
		       sd_strerror(ret));
	return ret;
}

/*
 * Give object idx to this VDI and write [off, off+len) into it, under the
 * object's lock. Unallocated: create it with the new bytes (the rest reads as
 * zeros). Inherited: copy the old object, apply the bytes, create ours. Then
 * point the inode at it. buf NULL means zeros.
 */
static int alloc_piece(struct vdi_io *v, uint32_t idx, const char *buf, uint32_t len, uint32_t off)
{
	uint64_t oid = vid_to_data_oid(v->vid, idx);
	pthread_mutex_t *lk = obj_lock(v, idx);
	char *whole = NULL;
	int ret;

	pthread_mutex_lock(lk);
	uint32_t owner = map_get(v, idx);
	if (owner == v->vid) {
		/* Someone allocated it while we waited. */
		pthread_mutex_unlock(lk);
		if (buf)
			return gateway_write_obj(v->s, oid, buf, len, off, false);
		whole = calloc(1, len);
		if (!whole)
			return SD_RES_NO_MEM;
		ret = gateway_write_obj(v->s, oid, whole, len, off, false);
		free(whole);
		return ret;
	}
	if (owner == 0) {
		const char *src = buf;
		if (!src) {
			whole = calloc(1, len);
			if (!whole) {
				ret = SD_RES_NO_MEM;
				goto out;
			}
			src = whole;
		}
		ret = gateway_write_obj(v->s, oid, src, len, off, true);
	} else if (gateway_copy_obj(v->s, vid_to_data_oid(owner, idx), oid) == SD_RES_SUCCESS) {
		/* Copied on its holders; now the bytes, as a partial write. */
		if (buf) {
			ret = gateway_write_obj(v->s, oid, buf, len, off, false);
		} else {
			whole = calloc(1, len);
			ret = whole ? gateway_write_obj(v->s, oid, whole, len, off, false)
				    : SD_RES_NO_MEM;
		}
	} else {
		whole = malloc(v->obj_size);
		if (!whole) {
			ret = SD_RES_NO_MEM;
			goto out;
		}
		ret = gateway_read_obj(v->s, vid_to_data_oid(owner, idx), whole, v->obj_size, 0);
		if (ret == SD_RES_NO_OBJ) {
			memset(whole, 0, v->obj_size);
			ret = SD_RES_SUCCESS;
		}
		if (ret != SD_RES_SUCCESS)
			goto out;
		if (buf)
			memcpy(whole + off, buf, len);
		else
			memset(whole + off, 0, len);
		ret = gateway_write_obj(v->s, oid, whole, v->obj_size, 0, true);
	}
	if (ret != SD_RES_SUCCESS) {
		sd_err("vdi %" PRIx32 " object %" PRIu32 ": create failed: %s", v->vid, idx,
		       sd_strerror(ret));
		goto out;
	}
	ret = map_store(v, idx, v->vid);
	if (ret == SD_RES_READONLY) {
		/* Frozen between the object and its entry: nothing refers to
		 * the object we made, so it goes; the write is redone on the
		 * new working VDI. */
		int r = gateway_remove_obj(v->s, oid);
		if (r != SD_RES_SUCCESS && r != SD_RES_NO_OBJ)
			sd_warn("vdi %" PRIx32 " object %" PRIu32 ": remove failed: %s", v->vid, idx,
				sd_strerror(r));
	} else if (ret == SD_RES_SUCCESS) {
		/* A snapshot freezes the inode (snap_ctime) before copying its
		 * map: if it is frozen now, our entry may have missed the copy,
		 * so the caller writes the bytes again on the new working VDI. */
		uint64_t snap_ctime = 0;
		int r = gateway_read_obj(v->s, vid_to_vdi_oid(v->vid), &snap_ctime,
					 sizeof(snap_ctime),
					 (uint32_t)offsetof(struct sd_inode, snap_ctime));
		if (r == SD_RES_SUCCESS && snap_ctime)
			ret = SD_RES_READONLY;
	}
out:
	pthread_mutex_unlock(lk);
	free(whole);
	return ret;
}

static int write_piece(struct vdi_io *v, uint32_t idx, const char *buf, uint32_t len, uint32_t off)
{
	if (map_get(v, idx) == v->vid) {
		int ret = gateway_write_obj(v->s, vid_to_data_oid(v->vid, idx), buf, len, off, false);
		if (ret != SD_RES_SUCCESS)
			sd_err("vdi %" PRIx32 " object %" PRIu32 ": write failed: %s", v->vid, idx,
			       sd_strerror(ret));
		return ret;
	}
	return alloc_piece(v, idx, buf, len, off);
}

/* Unlink object idx from the inode, then remove it if it was ours. */
static int free_object(struct vdi_io *v, uint32_t idx)
{
	pthread_mutex_t *lk = obj_lock(v, idx);
	int ret = SD_RES_SUCCESS;

	pthread_mutex_lock(lk);
	uint32_t owner = map_get(v, idx);
	if (owner != 0) {
		ret = map_store(v, idx, 0);
		if (ret == SD_RES_SUCCESS && owner == v->vid) {
			int r = gateway_remove_obj(v->s, vid_to_data_oid(v->vid, idx));
			/* Unreferenced now, so reads are right; the space leaks
			 * until a cleanup, which is all a failure here costs. */
			if (r != SD_RES_SUCCESS && r != SD_RES_NO_OBJ)
				sd_warn("vdi %" PRIx32 " object %" PRIu32 ": remove failed: %s",
					v->vid, idx, sd_strerror(r));
		}
	}
	pthread_mutex_unlock(lk);
	return ret;
}

/* Write zeros into [off, off+len) of object idx if it is allocated. */
static int zero_piece(struct vdi_io *v, uint32_t idx, uint32_t len, uint32_t off)
{
	uint32_t owner = map_get(v, idx);
	if (owner == 0)
		return SD_RES_SUCCESS;
	if (owner != v->vid)
		return alloc_piece(v, idx, NULL, len, off);
	char *z = calloc(1, len);
	if (!z)
		return SD_RES_NO_MEM;
	int ret = gateway_write_obj(v->s, vid_to_data_oid(v->vid, idx), z, len, off, false);
	free(z);
	return ret;
}

enum vdi_op { VDI_READ, VDI_WRITE, VDI_ZERO, VDI_ZERO_FREE, VDI_TRIM };

static int map_refresh_range(struct vdi_io *v, uint32_t first, uint32_t count);

/*
 * Fencing: a writer whose lock is gone (broken by dog vdi lock unlock, or
 * taken over by a migration's destination) writes no more. A frozen VDI (a
 * snapshot was just taken) passes: the write gets READONLY and follows the
 * lock to the new working VDI.
 */
static int vdi_io_lock_held(struct vdi_io *v)
{
	int ret;
	if (atomic_load(&v->pending)) {
		/* Migration handover: break the source's lock, take it. */
		pthread_mutex_lock(&v->handover_lock);
		ret = SD_RES_SUCCESS;
		if (atomic_load(&v->pending)) {
			ret = gateway_vdi_unlock(v->s, v->vid, 0);
			if (ret == SD_RES_SUCCESS || ret == SD_RES_VDI_NOT_LOCKED)
				ret = gateway_vdi_lock(v->s, v->vid, v->owner);
			/* The old holder allocated objects since our open, and is
			 * fenced now: reload the whole map before the first write. */
			if (ret == SD_RES_SUCCESS)
				ret = map_refresh_range(v, 0, v->nr_objs);
			if (ret == SD_RES_SUCCESS) {
				atomic_store(&v->pending, false);
				sd_notice("vdi %s (%" PRIx32 "): lock handed over to this writer "
					  "(migration destination's first write)", v->name, v->vid);
			}
		}
		pthread_mutex_unlock(&v->handover_lock);
		if (ret != SD_RES_SUCCESS) {
			sd_warn("vdi %s: lock handover failed: %s", v->name, sd_strerror(ret));
			return ret;
		}
	}
	ret = gateway_vdi_lock_held(v->s, v->vid, v->owner);
	if (ret != SD_RES_SUCCESS)
		sd_warn("vdi %s (%" PRIx32 "): write refused: this writer's lock is gone: %s",
			v->name, v->vid, sd_strerror(ret));
	return ret;
}

/* Walk [off, off+len) object by object. */
static int vdi_io_range(struct vdi_io *v, enum vdi_op op, char *buf, uint64_t len, uint64_t off)
{
	if (!range_ok(v, len, off))
		return SD_RES_INVALID_PARMS;
	if (op != VDI_READ && !v->writable)
		return SD_RES_READONLY;
	int follows = 0;

	while (len > 0) {
		uint32_t idx = (uint32_t)(off >> v->shift);
		uint32_t in = (uint32_t)(off & (v->obj_size - 1));
		uint32_t n = (uint32_t)SD_MIN(len, (uint64_t)(v->obj_size - in));
		bool whole = n == v->obj_size;
		int ret;

		pthread_rwlock_rdlock(&v->swap);
		uint32_t vid = v->vid;
		if (op != VDI_READ) {
			ret = vdi_io_lock_held(v);
			if (ret != SD_RES_SUCCESS) {
				pthread_rwlock_unlock(&v->swap);
				return ret;
			}
		}
		switch (op) {
		case VDI_READ:
			ret = read_piece(v, idx, buf, n, in);
			break;
		case VDI_WRITE:
			ret = write_piece(v, idx, buf, n, in);
			break;
		case VDI_ZERO:
			ret = zero_piece(v, idx, n, in);
			break;
		case VDI_ZERO_FREE:
			ret = whole ? free_object(v, idx) : zero_piece(v, idx, n, in);
			break;
		case VDI_TRIM:
		default:
			ret = whole ? free_object(v, idx) : SD_RES_SUCCESS;
			break;
		}
		pthread_rwlock_unlock(&v->swap);
		if (ret == SD_RES_READONLY && op != VDI_READ && follows++ < 8) {
			ret = vdi_io_follow(v, vid);
			if (ret == SD_RES_SUCCESS)
				continue; /* the same piece again, on the new working VDI */
		}
		if (ret != SD_RES_SUCCESS)
			return ret;
		if (buf)
			buf += n;
		off += n;
		len -= n;
	}
	return SD_RES_SUCCESS;
}

int vdi_io_read(struct vdi_io *v, void *buf, uint64_t len, uint64_t off)
{
	return vdi_io_range(v, VDI_READ, buf, len, off);
}

int vdi_io_write(struct vdi_io *v, const void *buf, uint64_t len, uint64_t off)
{
	return vdi_io_range(v, VDI_WRITE, (char *)buf, len, off);
}

int vdi_io_zero(struct vdi_io *v, uint64_t len, uint64_t off, bool may_free)
{
	return vdi_io_range(v, may_free ? VDI_ZERO_FREE : VDI_ZERO, NULL, len, off);
}

int vdi_io_trim(struct vdi_io *v, uint64_t len, uint64_t off)
{
	return vdi_io_range(v, VDI_TRIM, NULL, len, off);
}

/* Re-read the inode entries [first, first + count) into the map. */
static int map_refresh_range(struct vdi_io *v, uint32_t first, uint32_t count)
{
	if (count == 0)
		return SD_RES_SUCCESS;
	uint32_t *buf = malloc((size_t)count * 4);
	if (!buf)
		return SD_RES_NO_MEM;
	int ret = SD_RES_SUCCESS;
	for (uint32_t done = 0; done < count && ret == SD_RES_SUCCESS;) {
		uint32_t n = SD_MIN(count - done, VDI_IO_MAP_CHUNK / 4);
		ret = gateway_read_obj(v->s, vid_to_vdi_oid(v->vid), buf + done, n * 4,
				       sd_inode_vid_offset(first + done));
		done += n;
	}
	if (ret == SD_RES_SUCCESS)
		for (uint32_t i = 0; i < count; i++)
			map_set(v, first + i, buf[i]);
	free(buf);
	return ret;
}

int vdi_io_map(struct vdi_io *v, uint64_t len, uint64_t off, struct vdi_io_extent *ext,
	       uint32_t max, uint32_t *n)
{
	*n = 0;
	if (!range_ok(v, len, off) || len == 0 || max == 0)
		return SD_RES_INVALID_PARMS;
	uint32_t first = (uint32_t)(off >> v->shift);
	uint32_t last = (uint32_t)((off + len - 1) >> v->shift);
	int ret = SD_RES_SUCCESS;

	pthread_rwlock_rdlock(&v->swap);
	if (v->may_change)
		ret = map_refresh_range(v, first, last - first + 1);
	for (uint32_t idx = first; ret == SD_RES_SUCCESS && idx <= last; idx++) {
		uint64_t start = SD_MAX(off, (uint64_t)idx << v->shift);
		uint64_t end = SD_MIN(off + len, ((uint64_t)idx + 1) << v->shift);
		bool alloc = map_get(v, idx) != 0;
		if (*n > 0 && ext[*n - 1].allocated == alloc) {
			ext[*n - 1].length += end - start;
			continue;
		}
		if (*n == max)
			break;
		ext[*n] = (struct vdi_io_extent){.length = end - start, .allocated = alloc};
		(*n)++;
	}
	pthread_rwlock_unlock(&v->swap);
	return ret;
}
