/* snap.c - snapshots, clones, rollback and reclaim of VDI families: table changes, inode copies, freeing objects. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/gateway/gateway.h"
#include "sheep/sheep.h"
#include "sheep/snap/snap.h"
#include "sheep/vdi/vdi.h"

/* Object maps move in slices of this many bytes. */
#define SNAP_MAP_CHUNK (1u << 20)

/*
 * Test hook: a sheep started with SHEEP_TEST_SNAP_CRASH=POINT dies
 * (SIGKILL) when it reaches POINT: "committed" (the table change of a
 * snapshot, clone, rollback or delete is applied, nothing else done),
 * "frozen" (the parent's inode marked, the new inode not written),
 * "inode" (the new inode written, not marked ready), "reclaim" (the first
 * object of a deleted VDI removed).
 */
static void crash_point(const char *point)
{
	const char *want = getenv("SHEEP_TEST_SNAP_CRASH");
	if (want && !strcmp(want, point)) {
		sd_notice("test hook: killed at %s", point);
		raise(SIGKILL);
	}
}

static int cluster_vdi_op(struct sheep *s, uint32_t type, uint32_t vid, uint32_t base,
			  uint32_t *out)
{
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = type;
	m.vid = vid;
	m.base_vid = base;
	m.ctime = sd_wall_seconds();
	return group_cluster_op(s, &m, sizeof(m), out);
}

/* The inode header of vid and its number of objects. */
static int read_header(struct sheep *s, uint32_t vid, struct sd_inode_hdr *hdr, uint32_t *nr)
{
	int ret = gateway_read_obj(s, vid_to_vdi_oid(vid), hdr, SD_INODE_HEADER_SIZE, 0);
	if (ret != SD_RES_SUCCESS)
		return ret;
	*nr = sd_inode_nr_objs(hdr);
	return *nr || !hdr->vdi_size ? SD_RES_SUCCESS : SD_RES_EIO;
}

/* data_vdi_id[0..nr) of vid, malloc'ed. */
static int read_map(struct sheep *s, uint32_t vid, uint32_t nr, uint32_t **out)
{
	uint32_t *map = calloc(nr ? nr : 1, sizeof(uint32_t));
	if (!map)
		return SD_RES_NO_MEM;
	uint64_t total = (uint64_t)nr * sizeof(uint32_t);
	for (uint64_t done = 0; done < total;) {
		uint32_t n = (uint32_t)SD_MIN(total - done, SNAP_MAP_CHUNK);
		int ret = gateway_read_obj(s, vid_to_vdi_oid(vid), (char *)map + done, n,
					   (uint32_t)(SD_INODE_HEADER_SIZE + done));
		if (ret != SD_RES_SUCCESS) {
			free(map);
			return ret;
		}
		done += n;
	}
	*out = map;
	return SD_RES_SUCCESS;
}

static bool entry_of(struct sheep *s, uint32_t vid, struct vdi_entry *e)
{
	return group_vdi_find(s, vid, e) == 0;
}

/* Mark vid ready: waiting for the message, or (wait false) posting it. */
static int send_ready(struct sheep *s, uint32_t vid, bool wait)
{
	if (wait)
		return cluster_vdi_op(s, CMSG_VDI_READY, vid, 0, NULL);
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_READY;
	m.vid = vid;
	return group_cluster_post(s, &m, sizeof(m));
}

/*
 * Write the inode of pending VDI vid: its parent's object map, then its
 * parent's header with its own identity, last (a header naming vid marks
 * the inode complete). The parent is frozen first (its inode's
 * snap_ctime and tag), through the inode's coordinator: a writer still
 * allocating into the parent either lands its map entry before this point
 * (and it is copied) or is refused after it (and retries on the new
 * working VDI). Idempotent, and safe after vid has been written: a
 * complete inode is never written again, only marked ready.
 */
static int finish_pending(struct sheep *s, uint32_t vid, bool wait_ready)
{
	struct vdi_entry e, p;
	if (!entry_of(s, vid, &e) || !(e.flags & VDI_F_PENDING))
		return SD_RES_SUCCESS;
	if (!entry_of(s, e.parent, &p))
		return SD_RES_NO_BASE_VDI;
	struct sd_inode_hdr *hdr = malloc(sizeof(*hdr));
	uint32_t *map = NULL, nr = 0;
	if (!hdr)
		return SD_RES_NO_MEM;
	int ret = gateway_read_obj(s, vid_to_vdi_oid(vid), hdr, sizeof(*hdr), 0);
	if (ret == SD_RES_SUCCESS && hdr->vdi_id == vid) {
		ret = send_ready(s, vid, true); /* written before a crash: only mark it */
		goto out;
	}
	ret = read_header(s, p.vid, hdr, &nr);
	if (ret != SD_RES_SUCCESS)
		goto out;
	if (!hdr->snap_ctime || strncmp(hdr->tag, p.tag, sizeof(hdr->tag))) {
		/* tag @256 .. snap_ctime @520..528, create_time kept as read */
		if (!hdr->snap_ctime)
			hdr->snap_ctime = e.ctime ? e.ctime : sd_wall_seconds();
		if (p.tag[0])
			memcpy(hdr->tag, p.tag, sizeof(hdr->tag));
		uint32_t lo = (uint32_t)offsetof(struct sd_inode_hdr, tag);
		uint32_t hi = (uint32_t)offsetof(struct sd_inode_hdr, vm_clock_nsec);
		ret = gateway_write_obj(s, vid_to_vdi_oid(p.vid), (char *)hdr + lo, hi - lo, lo, false);
		if (ret != SD_RES_SUCCESS)
			goto out;
	}
	crash_point("frozen");
	ret = read_map(s, p.vid, nr, &map);
	if (ret != SD_RES_SUCCESS)
		goto out;

	struct sd_inode_hdr *ni = hdr; /* the parent's header becomes ours */
	memset(ni->name, 0, sizeof(ni->name));
	memcpy(ni->name, e.name, strnlen(e.name, sizeof(ni->name) - 1));
	memset(ni->tag, 0, sizeof(ni->tag));
	ni->create_time = e.ctime;
	ni->snap_ctime = 0;
	ni->vm_clock_nsec = 0;
	ni->vm_state_size = 0;
	ni->copy_policy = e.copy_policy;
	ni->nr_copies = e.nr_copies;
	ni->snap_id = e.snapid;
	ni->vdi_id = e.vid;
	ni->parent_vdi_id = p.vid;
	ni->btree_counter = 0;

	struct vdi_entry now;
	if (!entry_of(s, vid, &now) || !(now.flags & VDI_F_PENDING)) {
		ret = SD_RES_SUCCESS; /* another sheep finished it meanwhile */
		goto out;
	}
	/* The first write creates the object (an empty header reads as zeros). */
	uint64_t total = (uint64_t)nr * sizeof(uint32_t);
	ret = SD_RES_SUCCESS;
	for (uint64_t done = 0; ret == SD_RES_SUCCESS && (done < total || !done);) {
		uint32_t n = (uint32_t)SD_MIN(total - done, SNAP_MAP_CHUNK);
		ret = gateway_write_obj(s, vid_to_vdi_oid(vid), (char *)map + done, n,
					(uint32_t)(SD_INODE_HEADER_SIZE + done), done == 0);
		done += n ? n : 1;
	}
	if (ret == SD_RES_SUCCESS)
		ret = gateway_write_obj(s, vid_to_vdi_oid(vid), ni, sizeof(*ni), 0, false);
	if (ret == SD_RES_SUCCESS) {
		crash_point("inode");
		ret = send_ready(s, vid, wait_ready);
	}
	if (ret == SD_RES_SUCCESS)
		sd_info("VDI %s (%" PRIx32 "): inode written from %" PRIx32 " (%" PRIu32 " entries)",
			e.name, vid, p.vid, nr);
out:
	if (ret != SD_RES_SUCCESS)
		sd_err("VDI %s (%" PRIx32 "): finishing its creation failed: %s", e.name, vid,
		       sd_strerror((uint32_t)ret));
	free(map);
	free(hdr);
	return ret;
}

/* The members of vid's family (vids), from the table. */
static int family_of(struct sheep *s, uint32_t vid, uint32_t **out, size_t *n)
{
	size_t cap = 64, cnt = 0;
	uint32_t *v = malloc(cap * sizeof(*v));
	if (!v)
		return SD_RES_NO_MEM;
	struct vdi_table *t = group_vdis_lock(s, NULL);
	uint32_t root = vdi_table_root(t, vid);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext) {
			if (vdi_table_root(t, e->vid) != root)
				continue;
			if (cnt == cap) {
				uint32_t *nv = realloc(v, 2 * cap * sizeof(*v));
				if (!nv) {
					group_vdis_unlock(s);
					free(v);
					return SD_RES_NO_MEM;
				}
				v = nv;
				cap *= 2;
			}
			v[cnt++] = e->vid;
		}
	group_vdis_unlock(s);
	*out = v;
	*n = cnt;
	return SD_RES_SUCCESS;
}

struct live_map {
	uint32_t nr;
	uint32_t *map;
};

/* Remove the attribute objects (vdi setattr) of VDI d, found in every data
 * member's store: their ids are hashes of the keys, so the cluster's
 * listing is the only way to find them all. Before the inode goes, so a
 * failure leaves d to the next sweep. */
static int reclaim_attrs(struct sheep *s, uint32_t d, uint64_t *nr_removed)
{
	uint64_t *oids;
	size_t n;
	const uint64_t mask = SD_TYPE_MASK | ((uint64_t)(SD_NR_VDIS - 1) << VDI_SPACE_SHIFT);
	int ret = gateway_list_objs(s, mask, VDI_ATTR_BIT | ((uint64_t)d << VDI_SPACE_SHIFT), &oids,
				    &n);
	if (ret != SD_RES_SUCCESS) {
		sd_warn("VDI %" PRIx32 ": its attributes cannot be listed: %s", d,
			sd_strerror((uint32_t)ret));
		return ret;
	}
	for (size_t i = 0; i < n; i++) {
		int r = gateway_remove_obj(s, oids[i]);
		if (r == SD_RES_SUCCESS)
			(*nr_removed)++;
		else if (r != SD_RES_NO_OBJ)
			ret = r;
	}
	free(oids);
	return ret;
}

/*
 * Free the objects deleted VDI d referred to that no live member of its
 * family refers to any more: entries owned by d itself or by an ancestor
 * deleted before (kept then because d used them). Objects owned by a live
 * VDI are never freed here. Then d's inode goes and the table marks d
 * reclaimed (dropped once nothing descends from it). Idempotent; a crash
 * midway is finished by the next sweep.
 */
static int reclaim_one(struct sheep *s, uint32_t d)
{
	struct vdi_entry de;
	if (!entry_of(s, d, &de) || de.deleted != VDI_DEL_RECLAIM)
		return SD_RES_SUCCESS;
	struct sd_inode_hdr *hdr = malloc(sizeof(*hdr));
	uint32_t *fam = NULL, *dmap = NULL, nr = 0;
	size_t nfam = 0, nlive = 0;
	struct live_map *live = NULL;
	if (!hdr)
		return SD_RES_NO_MEM;
	int ret = read_header(s, d, hdr, &nr);
	uint64_t attrs = 0;
	if (ret == SD_RES_NO_OBJ) {
		/* inode already gone: its attributes (a crash between the two)
		 * and the table are left */
		ret = reclaim_attrs(s, d, &attrs);
		if (ret != SD_RES_SUCCESS)
			goto out;
		goto done;
	}
	if (ret == SD_RES_SUCCESS) {
		/* The whole object map, not only the entries of its size: an
		 * inode that cannot be read whole is not trusted to say which
		 * objects exist. */
		ret = read_map(s, d, SD_INODE_DATA_INDEX, &dmap);
	}
	if (ret != SD_RES_SUCCESS) {
		/* The object map cannot be read: its objects cannot be found, so
		 * the VDI stays in the table (deleted, its id taken) rather than
		 * be forgotten while its objects stay on disk. */
		sd_err("VDI %x: inode unreadable (%s): objects kept, VDI not purged", d,
		       sd_strerror((uint32_t)ret));
		goto out;
	}
	if (ret == SD_RES_SUCCESS)
		ret = family_of(s, d, &fam, &nfam);
	if (ret != SD_RES_SUCCESS)
		goto out;
	live = calloc(nfam ? nfam : 1, sizeof(*live));
	if (!live) {
		ret = SD_RES_NO_MEM;
		goto out;
	}
	for (size_t i = 0; i < nfam; i++) {
		struct vdi_entry le;
		if (!entry_of(s, fam[i], &le) || le.deleted)
			continue;
		if (le.flags & VDI_F_PENDING) {
			ret = SD_RES_AGAIN; /* its map is not written yet: finish it first */
			goto out;
		}
		struct sd_inode_hdr lh;
		uint32_t lnr;
		ret = read_header(s, le.vid, &lh, &lnr);
		if (ret == SD_RES_SUCCESS)
			ret = read_map(s, le.vid, SD_MIN(lnr, nr), &live[nlive].map);
		if (ret != SD_RES_SUCCESS)
			goto out;
		live[nlive++].nr = SD_MIN(lnr, nr);
	}
	uint64_t freed = 0, kept = 0;
	for (uint32_t idx = 0; idx < nr; idx++) {
		uint32_t o = dmap[idx];
		if (!o)
			continue;
		struct vdi_entry oe;
		if (o != d && (!entry_of(s, o, &oe) || !oe.deleted))
			continue; /* a live VDI's object: its business */
		bool used = false;
		for (size_t l = 0; l < nlive && !used; l++)
			used = idx < live[l].nr && live[l].map[idx] == o;
		if (used) {
			kept++;
			continue;
		}
		int r = gateway_remove_obj(s, vid_to_data_oid(o, idx));
		if (r != SD_RES_SUCCESS && r != SD_RES_NO_OBJ) {
			sd_warn("VDI %" PRIx32 ": object %" PRIx32 ":%" PRIu32 " not removed: %s", d, o,
				idx, sd_strerror((uint32_t)r));
			ret = r;
		} else if (r == SD_RES_SUCCESS) {
			freed++;
			crash_point("reclaim");
		}
	}
	if (ret != SD_RES_SUCCESS)
		goto out;
	ret = reclaim_attrs(s, d, &attrs);
	if (ret != SD_RES_SUCCESS)
		goto out;
	sd_info("VDI %s (%" PRIx32 ") reclaimed: %" PRIu64 " objects freed, %" PRIu64
		" kept for its family, %" PRIu64 " attributes", de.name, d, freed, kept, attrs);
	ret = gateway_remove_obj(s, vid_to_vdi_oid(d));
	if (ret == SD_RES_NO_OBJ)
		ret = SD_RES_SUCCESS;
	if (ret != SD_RES_SUCCESS)
		goto out;
done:
	ret = cluster_vdi_op(s, CMSG_VDI_RECLAIMED, d, 0, NULL);
out:
	for (size_t l = 0; l < nlive; l++)
		free(live[l].map);
	free(live);
	free(fam);
	free(dmap);
	free(hdr);
	return ret;
}

/* Vids of entries that are pending (want_pending) or awaiting reclaim. */
static size_t collect_todo(struct sheep *s, bool want_pending, uint32_t *out, size_t cap)
{
	size_t n = 0;
	struct vdi_table *t = group_vdis_lock(s, NULL);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e && n < cap; e = e->hnext)
			if (want_pending ? (e->flags & VDI_F_PENDING) != 0
					 : e->deleted == VDI_DEL_RECLAIM)
				out[n++] = e->vid;
	group_vdis_unlock(s);
	return n;
}

/* After a failed sweep, lookups retry it only after this long (a VDI whose
 * inode cannot be read would otherwise cost every lookup a failing read);
 * deletes and rollbacks always sweep. */
#define SNAP_SWEEP_BACKOFF_NS (10ull * 1000000000ull)

/* This module's state (s->snap, made by vdi_snap_init). */
struct snap_state {
	pthread_mutex_t sweep_lock;      /* one sweep at a time */
	_Atomic uint64_t sweep_failed_ns; /* when the last sweep failed (0: it did not) */
};

int vdi_snap_init(struct sheep *s)
{
	s->snap = calloc(1, sizeof(*s->snap));
	if (!s->snap)
		return -ENOMEM;
	pthread_mutex_init(&s->snap->sweep_lock, NULL);
	return 0;
}

void vdi_snap_fini(struct sheep *s)
{
	if (!s->snap)
		return;
	pthread_mutex_destroy(&s->snap->sweep_lock);
	free(s->snap);
	s->snap = NULL;
}

static int sweep(struct sheep *s, bool force)
{
	struct snap_state *st = s->snap;
	struct group_status gs;
	struct vdi_table *t = group_vdis_lock(s, &gs);
	size_t todo = gs.synced && gs.ctime ? vdi_table_todo(t) : 0;
	group_vdis_unlock(s);
	uint64_t failed = atomic_load(&st->sweep_failed_ns);
	bool wait = !force && failed && sd_now_ns() - failed < SNAP_SWEEP_BACKOFF_NS;
	if (!todo || wait)
		return SD_RES_SUCCESS;
	enum { BATCH = 256 };
	uint32_t vids[BATCH];
	int ret = SD_RES_SUCCESS;
	pthread_mutex_lock(&st->sweep_lock);
	for (int round = 0; round < 4; round++) {
		ret = SD_RES_SUCCESS;
		size_t n = collect_todo(s, true, vids, BATCH);
		for (size_t i = 0; i < n; i++) {
			int r = finish_pending(s, vids[i], true);
			if (r != SD_RES_SUCCESS)
				ret = r;
		}
		n = collect_todo(s, false, vids, BATCH);
		for (size_t i = 0; i < n; i++) {
			int r = reclaim_one(s, vids[i]);
			if (r != SD_RES_SUCCESS)
				ret = r;
		}
		if (ret == SD_RES_SUCCESS)
			break;
	}
	pthread_mutex_unlock(&st->sweep_lock);
	atomic_store(&st->sweep_failed_ns, ret == SD_RES_SUCCESS ? 0 : sd_now_ns());
	return ret;
}

int vdi_snap_sweep(struct sheep *s)
{
	return sweep(s, false);
}

int vdi_snap_snapshot(struct sheep *s, uint32_t base, const char *tag, uint32_t *vid)
{
	vdi_snap_sweep(s);
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_SNAP;
	m.vid = base;
	m.ctime = sd_wall_seconds();
	if (tag)
		snprintf(m.tag, sizeof(m.tag), "%s", tag);
	int ret = group_cluster_op(s, &m, sizeof(m), vid);
	if (ret != SD_RES_SUCCESS)
		return ret;
	crash_point("committed");
	return finish_pending(s, *vid, false);
}

int vdi_snap_clone(struct sheep *s, uint32_t base, const char *name, uint8_t copies,
		   uint8_t policy, uint32_t *vid)
{
	vdi_snap_sweep(s);
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_CLONE;
	m.base_vid = base;
	m.copies = copies;
	m.policy = policy;
	m.ctime = sd_wall_seconds();
	snprintf(m.name, sizeof(m.name), "%s", name);
	int ret = group_cluster_op(s, &m, sizeof(m), vid);
	if (ret != SD_RES_SUCCESS)
		return ret;
	crash_point("committed");
	return finish_pending(s, *vid, false);
}

int vdi_snap_rollback(struct sheep *s, uint32_t snap, uint64_t owner, uint32_t *vid)
{
	vdi_snap_sweep(s);
	struct vdi_entry b, w;
	if (!entry_of(s, snap, &b) || b.deleted || !(b.flags & VDI_F_SNAPSHOT))
		return SD_RES_NO_BASE_VDI;
	if (group_vdi_lookup(s, b.name, NULL, 0, &w) != SD_RES_SUCCESS)
		return SD_RES_NO_VDI;
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_ROLLBACK;
	m.vid = w.vid;
	m.base_vid = snap;
	m.lock_owner = owner;
	m.ctime = sd_wall_seconds();
	int ret = group_cluster_op(s, &m, sizeof(m), vid);
	if (ret != SD_RES_SUCCESS)
		return ret;
	crash_point("committed");
	ret = finish_pending(s, *vid, false);
	int r = sweep(s, true); /* reclaims the old working VDI */
	return ret != SD_RES_SUCCESS ? ret : r;
}

void vdi_snap_dependents(struct sheep *s, uint32_t vid, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	struct vdi_table *t = group_vdis_lock(s, NULL);
	struct vdi_entry *e = vdi_table_find(t, vid);
	for (int b = 0; e && b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *c = t->buckets[b]; c; c = c->hnext) {
			if (c->deleted || c->parent != vid || !strcmp(c->name, e->name))
				continue;
			int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", c->name);
			if (n < 0 || (size_t)n >= len - used) {
				buf[used] = '\0';
				break;
			}
			used += (size_t)n;
		}
	group_vdis_unlock(s);
}

int vdi_snap_delete(struct sheep *s, uint32_t vid, uint64_t owner)
{
	vdi_snap_sweep(s);
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_DEL_VDI;
	m.vid = vid;
	m.lock_owner = owner;
	int ret = group_cluster_op(s, &m, sizeof(m), NULL);
	if (ret != SD_RES_SUCCESS)
		return ret;
	crash_point("committed");
	ret = sweep(s, true);
	/* Answer for this VDI: another's failed reclaim is not ours. */
	struct vdi_entry e;
	if (!entry_of(s, vid, &e) || e.deleted != VDI_DEL_RECLAIM)
		return SD_RES_SUCCESS;
	return ret != SD_RES_SUCCESS ? ret : SD_RES_EIO;
}
