/* ops_vdi.c - the VDI ops: create, snapshot, clone, rollback, look up, lock, list, delete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/sheep.h"
#include "sheep/server/server.h"
#include "sheep/cluster/cluster.h"
#include "sheep/snap/snap.h"
#include "sheep/store/store.h"

#include "sheep/server/ops_priv.h"

/* ---- VDI ops ---- */

static void fill_vdi_rsp(struct request *r, const struct vdi_entry *e)
{
	sd_rsp_vdi_id(&r->rsp) = e->vid;
	r->rsp.vdi_hdr.copies = e->nr_copies;
	r->rsp.vdi_hdr.block_size_shift = e->shift;
}

static int zone_check(struct sheep *s, struct request *r, const struct ec_policy *pol,
		      const char *name)
{
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return SD_RES_WAIT_FOR_JOIN;
	uint32_t zones = v->nr_zones;
	sheep_view_put(v);
	unsigned width = ec_policy_width(pol);
	unsigned need = ec_policy_is_ec(pol) ? (unsigned)pol->d + 1 : (width >= 2 ? 2 : 1);
	char pb[32];
	ec_policy_format(pol, pb, sizeof(pb));
	char msg[512];
	if (zones < need) {
		snprintf(msg, sizeof(msg),
			 "policy %s needs at least %u zones to accept writes, cluster has %u: "
			 "add zones or choose a narrower policy", pb, need, zones);
		sd_err("VDI %s refused: %s", name, msg);
		ops_reply_text(r, msg);
		return SD_RES_INVALID_PARMS;
	}
	if (zones < width) {
		snprintf(msg, sizeof(msg),
			 "policy %s places %u fragments on distinct zones, cluster has %u: "
			 "redundancy stays reduced until more zones join", pb, width, zones);
		sd_warn("VDI %s: %s", name, msg);
		ops_reply_text(r, msg);
	}
	return SD_RES_SUCCESS;
}

/* The result of a snapshot, clone or rollback: the new VDI's id and policy. */
static void fill_new_vdi_rsp(struct sheep *s, struct request *r, uint32_t vid)
{
	struct vdi_entry e;
	sd_rsp_vdi_id(&r->rsp) = vid;
	if (!group_vdi_find(s, vid, &e)) {
		r->rsp.vdi_hdr.copies = e.nr_copies;
		r->rsp.vdi_hdr.block_size_shift = e.shift;
	}
}

/*
 * NEW_VDI with snapid or base_vdi_id (lib/sd_internal.h): snapshot of the
 * working VDI, clone of a snapshot, or (our extension) rollback.
 */
static int do_new_family_vdi(struct sheep *s, struct request *r, const char *name)
{
	char tag[SD_MAX_VDI_TAG_LEN], msg[1024];
	if (ops_get_name(r, SD_MAX_VDI_LEN, tag, sizeof(tag)))
		return SD_RES_INVALID_PARMS;
	uint32_t base = r->hdr.vdi.base_vdi_id & (SD_NR_VDIS - 1), vid = 0;
	struct vdi_entry b;
	int ret;
	if (r->hdr.vdi.snapid) {
		if (!base) {
			ret = group_vdi_lookup(s, name, NULL, 0, &b);
			if (ret != SD_RES_SUCCESS)
				return ret;
			base = b.vid;
		} else if (group_vdi_find(s, base, &b) || b.deleted) {
			return SD_RES_NO_VDI;
		}
		if (b.flags & VDI_F_SNAPSHOT) {
			snprintf(msg, sizeof(msg), "%s snapshot %u is a snapshot already: snapshot "
				 "the working VDI", b.name, b.snapid);
			ops_reply_text(r, msg);
			return SD_RES_INVALID_PARMS;
		}
		if (!tag[0]) {
			/* A Sheepdog 1.0 client writes the tag into the inode first. */
			ret = gateway_read_obj(s, vid_to_vdi_oid(base), tag, sizeof(tag),
					       (uint32_t)offsetof(struct sd_inode, tag));
			if (ret != SD_RES_SUCCESS)
				return ret;
			tag[sizeof(tag) - 1] = '\0';
		}
		ret = vdi_snap_snapshot(s, base, tag, &vid);
		if (ret == SD_RES_VDI_EXIST) {
			snprintf(msg, sizeof(msg), "%s already has a snapshot tagged '%s'", b.name, tag);
			ops_reply_text(r, msg);
		}
	} else {
		if (group_vdi_find(s, base, &b) || b.deleted)
			return SD_RES_NO_BASE_VDI;
		if (!(b.flags & VDI_F_SNAPSHOT)) {
			snprintf(msg, sizeof(msg), "%s (id %x) is not a snapshot: only snapshots can be "
				 "%s (take one with dog vdi snapshot)", b.name, b.vid,
				 r->hdr.vdi.type == SD_NEW_VDI_ROLLBACK ? "rolled back to" : "cloned");
			ops_reply_text(r, msg);
			return SD_RES_INVALID_PARMS;
		}
		if (r->hdr.vdi.type == SD_NEW_VDI_ROLLBACK) {
			ret = vdi_snap_rollback(s, base, r->owner, &vid);
		} else {
			uint8_t copies = r->hdr.vdi.copies, policy = r->hdr.vdi.copy_policy;
			if (copies) {
				struct ec_policy pol;
				if (ec_policy_from_wire(policy, copies, &pol))
					return SD_RES_INVALID_PARMS;
				if (ec_policy_is_ec(&pol) && ((1u << b.shift) % pol.d))
					return SD_RES_INVALID_PARMS;
				ret = zone_check(s, r, &pol, name);
				if (ret)
					return ret;
			}
			ret = vdi_snap_clone(s, base, name, copies, policy, &vid);
		}
	}
	if (ret == SD_RES_SUCCESS)
		fill_new_vdi_rsp(s, r, vid);
	return ret;
}

int ops_new_vdi(struct sheep *s, struct request *r)
{
	char name[SD_MAX_VDI_LEN];
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || ops_get_name(r, 0, name, sizeof(name)) || !name[0])
		return SD_RES_INVALID_PARMS;
	if (r->hdr.vdi.snapid || r->hdr.vdi.base_vdi_id)
		return do_new_family_vdi(s, r, name);
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_NEW_VDI;
	struct group_status st;
	group_status(s, &st);
	m.copies = r->hdr.vdi.copies ? r->hdr.vdi.copies : st.def_copies;
	m.policy = r->hdr.vdi.copies ? r->hdr.vdi.copy_policy : st.def_policy;
	m.shift = r->hdr.vdi.block_size_shift ? r->hdr.vdi.block_size_shift : st.def_shift;
	struct ec_policy pol;
	if (ec_policy_from_wire(m.policy, m.copies, &pol))
		return SD_RES_INVALID_PARMS;
	if (m.shift < SD_MIN_BLOCK_SIZE_SHIFT || m.shift > SD_MAX_BLOCK_SIZE_SHIFT)
		return SD_RES_INVALID_PARMS;
	uint64_t size = r->hdr.vdi.vdi_size;
	if (size == 0 || size > sd_max_vdi_size(m.shift))
		return SD_RES_INVALID_PARMS;
	if (ec_policy_is_ec(&pol) && ((1u << m.shift) % pol.d))
		return SD_RES_INVALID_PARMS;
	int ret = zone_check(s, r, &pol, name);
	if (ret)
		return ret;
	m.size = size;
	m.ctime = sd_wall_seconds();
	memcpy(m.name, name, sizeof(m.name));
	uint32_t vid = 0;
	ret = group_cluster_op(s, &m, sizeof(m), &vid);
	if (ret != SD_RES_SUCCESS)
		return ret;
	/* The inode, in Sheepdog's layout; the rest of it reads as zeros. */
	char *ino = calloc(1, SD_INODE_HEADER_SIZE);
	if (!ino)
		return SD_RES_NO_MEM;
	uint64_t ctime = m.ctime, vsize = size;
	uint32_t snap_id = 1;
#define INO_SET(field, val) memcpy(ino + offsetof(struct sd_inode, field), &(val), sizeof(val))
	memcpy(ino + offsetof(struct sd_inode, name), name, sizeof(name));
	INO_SET(create_time, ctime);
	INO_SET(vdi_size, vsize);
	INO_SET(copy_policy, m.policy);
	INO_SET(nr_copies, m.copies);
	INO_SET(block_size_shift, m.shift);
	INO_SET(snap_id, snap_id);
	INO_SET(vdi_id, vid);
#undef INO_SET
	ret = gateway_write_obj(s, vid_to_vdi_oid(vid), ino, SD_INODE_HEADER_SIZE, 0, true);
	free(ino);
	if (ret != SD_RES_SUCCESS) {
		sd_err("VDI %s: writing its inode failed (%s): removing it", name, sd_strerror(ret));
		struct cmsg_vdi d;
		memset(&d, 0, sizeof(d));
		d.h.type = CMSG_DEL_VDI;
		d.vid = vid;
		group_cluster_op(s, &d, sizeof(d), NULL);
		d.h.type = CMSG_PURGE_VDI;
		group_cluster_op(s, &d, sizeof(d), NULL);
		return ret;
	}
	sd_rsp_vdi_id(&r->rsp) = vid;
	r->rsp.vdi_hdr.copies = m.copies;
	r->rsp.vdi_hdr.block_size_shift = m.shift;
	return SD_RES_SUCCESS;
}

static int lookup_from_payload(struct sheep *s, struct request *r, struct vdi_entry *e)
{
	char name[SD_MAX_VDI_LEN], tag[SD_MAX_VDI_TAG_LEN];
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || ops_get_name(r, 0, name, sizeof(name)) ||
	    ops_get_name(r, SD_MAX_VDI_LEN, tag, sizeof(tag)))
		return SD_RES_INVALID_PARMS;
	vdi_snap_sweep(s); /* a crash may have left a creation to finish */
	return group_vdi_lookup(s, name, tag, r->hdr.vdi.snapid, e);
}

int ops_get_vdi_info(struct sheep *s, struct request *r)
{
	struct vdi_entry e;
	int ret = lookup_from_payload(s, r, &e);
	if (ret == SD_RES_SUCCESS)
		fill_vdi_rsp(r, &e);
	return ret;
}

int ops_lock_vdi(struct sheep *s, struct request *r)
{
	struct vdi_entry e;
	int ret = lookup_from_payload(s, r, &e);
	if (ret != SD_RES_SUCCESS)
		return ret;
	ret = gateway_vdi_lock(s, e.vid, r->owner);
	if (ret == SD_RES_SUCCESS)
		fill_vdi_rsp(r, &e);
	return ret;
}

int ops_release_vdi(struct sheep *s, struct request *r)
{
	return gateway_vdi_unlock(s, r->hdr.vdi.base_vdi_id, r->owner);
}

int ops_read_vdis(struct sheep *s, struct request *r)
{
	vdi_snap_sweep(s); /* a listing shows finished states only */
	uint32_t len = SD_MIN(r->hdr.data_length, SD_NR_VDIS / 8);
	void *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	memcpy(buf, group_vdis_lock(s, NULL)->bitmap, len);
	group_vdis_unlock(s);
	r->rlen = len;
	return SD_RES_SUCCESS;
}

/* READ_DEL_VDIS (0xc9): the bitmap of deleted VDIs, which Sheepdog's dog
 * leaves out of its listing (their in-use bits are clear here anyway). */
int ops_read_del_vdis(struct sheep *s, struct request *r)
{
	uint32_t len = SD_MIN(r->hdr.data_length, SD_NR_VDIS / 8);
	uint8_t *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	struct vdi_table *t = group_vdis_lock(s, NULL);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext)
			if (e->deleted && e->vid / 8 < len)
				buf[e->vid / 8] |= (uint8_t)(1u << (e->vid % 8));
	group_vdis_unlock(s);
	r->rlen = len;
	return SD_RES_SUCCESS;
}

static bool attr_field_ok(const char *f, size_t cap)
{
	return memchr(f, '\0', cap) != NULL;
}

/*
 * GET_VDI_ATTR (0x89), as Sheepdog 1.0 (sd_wire.h): find the attribute
 * object of (VDI, key) by probing attribute ids upward from a hash of the
 * VDI name and the key; create, rewrite or delete its header as the flags
 * say. The value itself is written and read by the client.
 */
int ops_get_vdi_attr(struct sheep *s, struct request *r)
{
	struct sd_vdi_attr a;
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || r->hdr.data_length < sizeof(a) || !r->data)
		return SD_RES_INVALID_PARMS;
	memcpy(&a, r->data, sizeof(a));
	if (!attr_field_ok(a.name, sizeof(a.name)) || !attr_field_ok(a.tag, sizeof(a.tag)) ||
	    !attr_field_ok(a.key, sizeof(a.key)) || !a.key[0] ||
	    a.value_len > SD_MAX_VDI_ATTR_VALUE_LEN)
		return SD_RES_INVALID_PARMS;
	struct vdi_entry e;
	int ret = group_vdi_lookup(s, a.name, a.tag, a.snap_id, &e);
	if (ret != SD_RES_SUCCESS)
		return ret;
	bool create = r->hdr.flags & SD_FLAG_CMD_CREAT, excl = r->hdr.flags & SD_FLAG_CMD_EXCL,
	     del = r->hdr.flags & SD_FLAG_CMD_DEL;
	a.ctime = e.ctime;
	uint64_t h = fnv_64a_buf(a.name, strlen(a.name), FNV1A_64_INIT);
	h = fnv_64a_buf(a.key, strlen(a.key), h);
	for (uint32_t n = 0; n < 4096; n++) {
		uint32_t id = (uint32_t)(h + n) & (SD_NR_VDIS - 1);
		uint64_t oid = sd_vid_to_attr_oid(e.vid, id);
		struct sd_vdi_attr cur;
		ret = gateway_read_obj(s, oid, &cur, sizeof(cur), 0);
		if (ret == SD_RES_NO_OBJ) {
			if (!create || del)
				return SD_RES_NO_OBJ;
			ret = gateway_write_obj(s, oid, &a, sizeof(a), 0, true);
		} else if (ret == SD_RES_SUCCESS) {
			cur.key[sizeof(cur.key) - 1] = cur.name[sizeof(cur.name) - 1] = '\0';
			cur.tag[sizeof(cur.tag) - 1] = '\0';
			if (strcmp(cur.name, a.name) || strcmp(cur.tag, a.tag) ||
			    cur.snap_id != a.snap_id || strcmp(cur.key, a.key))
				continue; /* another key, or a deleted one: probe on */
			if (excl && !del)
				return SD_RES_VDI_EXIST;
			if (del) {
				struct sd_vdi_attr gone;
				memset(&gone, 0, sizeof(gone));
				ret = gateway_write_obj(s, oid, &gone, sizeof(gone), 0, false);
			} else if (create) {
				ret = gateway_write_obj(s, oid, &a, sizeof(a), 0, false);
			}
		}
		if (ret != SD_RES_SUCCESS)
			return ret;
		sd_rsp_vdi_id(&r->rsp) = e.vid;
		r->rsp.vdi_hdr.attr_id = id;
		r->rsp.vdi_hdr.copies = e.nr_copies;
		return SD_RES_SUCCESS;
	}
	return SD_RES_FULL_VDI;
}

int ops_del_vdi(struct sheep *s, struct request *r)
{
	struct vdi_entry e;
	int ret = lookup_from_payload(s, r, &e);
	if (ret != SD_RES_SUCCESS)
		return ret;
	char deps[400], msg[1024];
	vdi_snap_dependents(s, e.vid, deps, sizeof(deps));
	if (deps[0]) {
		snprintf(msg, sizeof(msg), "%s%s%.0u has clones that depend on it: %s; delete them "
			 "first", e.name, e.flags & VDI_F_SNAPSHOT ? " snapshot " : "",
			 e.flags & VDI_F_SNAPSHOT ? e.snapid : 0, deps);
		ops_reply_text(r, msg);
		return SD_RES_VDI_WRITE;
	}
	return vdi_snap_delete(s, e.vid, r->owner);
}


/* Every locked VDI (of this node's replicated table), as struct sd_vdi_lock. */
int ops_get_vdi_locks(struct sheep *s, struct request *r)
{
	uint32_t max = r->hdr.data_length / (uint32_t)sizeof(struct sd_vdi_lock);
	struct sd_vdi_lock *out = max ? ops_reply_buf(r, max * sizeof(*out)) : NULL;
	if (max && !out)
		return SD_RES_NO_MEM;
	uint32_t n = 0;
	struct vdi_table *t = group_vdis_lock(s, NULL);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = t->buckets[b]; e; e = e->hnext) {
			if (!e->locked || e->deleted)
				continue;
			if (n == max)
				continue; /* the caller's buffer is full: a prefix */
			memset(&out[n], 0, sizeof(out[n]));
			out[n].vid = e->vid;
			out[n].port = e->lock_port;
			out[n].owner = e->lock_owner;
			snprintf(out[n].addr, sizeof(out[n].addr), "%s", e->lock_addr);
			n++;
		}
	group_vdis_unlock(s);
	r->rlen = n * (uint32_t)sizeof(struct sd_vdi_lock);
	return SD_RES_SUCCESS;
}

/* dog vdi lock unlock: owner 0 releases the lock whoever holds it. */
int ops_force_unlock_vdi(struct sheep *s, struct request *r)
{
	return gateway_vdi_unlock(s, r->hdr.vdi.base_vdi_id, 0);
}
