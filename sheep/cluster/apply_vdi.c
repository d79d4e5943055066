/* apply_vdi.c - the VDI lock owner test, and applying snapshot, clone, rollback, ready, reclaimed and alter-copy messages to the VDI table, identically on every member. */
#include "lib/sd_wire.h"
#include "sheep/cluster/group_priv.h"

bool group_lock_is_sender(const struct vdi_entry *e, const struct sd_node *n, uint64_t owner)
{
	return e->lock_port == n->port && e->lock_inc == n->incarnation &&
	       !strcmp(e->lock_addr, n->addr) && e->lock_owner == owner;
}

/* Any live clone of vid (a working VDI of another name made from it). */
struct vdi_entry *group_first_clone(struct sheep *s, const struct vdi_entry *e)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *c = s->cl->vdis.buckets[b]; c; c = c->hnext)
			if (!c->deleted && c->parent == e->vid && strcmp(c->name, e->name))
				return c;
	return NULL;
}

/* A new entry in vid's family, copied from base, pending its inode. */
static int insert_follower(struct sheep *s, const struct vdi_entry *base, uint32_t start,
			   struct vdi_entry *ne, uint32_t *vid)
{
	uint32_t v = vdi_table_alloc_vid(&s->cl->vdis, start);
	if (!v)
		return SD_RES_FULL_VDI;
	ne->vid = v;
	ne->parent = base->vid;
	ne->flags = VDI_F_PENDING;
	ne->deleted = 0;
	/* Its objects are its own, written afresh: one layout, no conversion. */
	ne->alt_copies = ne->alt_policy = ne->meta_width = 0;
	ne->conv_mark = 0;
	ne->hnext = NULL;
	if (vdi_table_insert(&s->cl->vdis, ne))
		return SD_RES_NO_MEM;
	*vid = v;
	return SD_RES_SUCCESS;
}

/*
 * Snapshot, clone and rollback as one table change each, applied in the
 * same order on every node: the new VDI is in the table (pending) and the
 * old one frozen or deleted at once; the inode of the new one is written
 * afterwards by whoever finds it pending (snap/snap.c), so a crash shows
 * the old state or the new one.
 */
int group_apply_vdi_family(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
			    uint32_t *vid)
{
	if (!s->cl->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	char tag[SD_MAX_VDI_TAG_LEN], name[SD_MAX_VDI_LEN];
	memcpy(tag, m->tag, sizeof(tag));
	tag[sizeof(tag) - 1] = '\0';
	memcpy(name, m->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	struct vdi_entry ne;
	int ret;
	switch (m->h.type) {
	case CMSG_VDI_SNAP: {
		struct vdi_entry *a = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
		if (!a || a->deleted || (a->flags & VDI_F_PENDING))
			return SD_RES_NO_VDI;
		if (a->flags & VDI_F_SNAPSHOT)
			return SD_RES_READONLY;
		if (a->flags & VDI_F_CONVERTING)
			return SD_RES_VDI_LOCKED; /* vdi alter-copy first: a frozen VDI is never converted */
		if (tag[0] && vdi_table_by_name(&s->cl->vdis, a->name, tag, 0))
			return SD_RES_VDI_EXIST;
		ne = *a;
		ne.snapid = a->snapid + 1;
		ne.ctime = m->ctime;
		memset(ne.tag, 0, sizeof(ne.tag));
		ret = insert_follower(s, a, a->vid + 1, &ne, vid);
		if (ret)
			return ret;
		a = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1)); /* insert may move nothing, but be safe */
		a->flags |= VDI_F_SNAPSHOT;
		memcpy(a->tag, tag, sizeof(a->tag));
		a->locked = 0; /* the writer's lock went to the new working VDI */
		sd_info("VDI %s: snapshot %u (%x%s%s), working VDI now %x", a->name, a->snapid, a->vid,
			tag[0] ? ", tag " : "", tag, *vid);
		break;
	}
	case CMSG_VDI_CLONE: {
		struct vdi_entry *b = vdi_table_find(&s->cl->vdis, m->base_vid & (SD_NR_VDIS - 1));
		if (!b || b->deleted)
			return SD_RES_NO_BASE_VDI;
		if (!(b->flags & VDI_F_SNAPSHOT))
			return SD_RES_INVALID_PARMS;
		if (!name[0])
			return SD_RES_INVALID_PARMS;
		if (vdi_table_by_name(&s->cl->vdis, name, NULL, 0))
			return SD_RES_VDI_EXIST;
		memset(&ne, 0, sizeof(ne));
		memcpy(ne.name, name, sizeof(ne.name));
		ne.snapid = 1;
		ne.copy_policy = m->copies ? m->policy : b->copy_policy;
		ne.nr_copies = m->copies ? m->copies : b->nr_copies;
		ne.shift = b->shift;
		ne.size = b->size;
		ne.ctime = m->ctime;
		ret = insert_follower(s, b, sd_vid_of_name(name), &ne, vid);
		if (ret)
			return ret;
		sd_info("VDI %s (%x) cloned from %s snapshot %u", name, *vid, b->name, b->snapid);
		break;
	}
	case CMSG_VDI_ROLLBACK: {
		struct vdi_entry *w = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
		struct vdi_entry *b = vdi_table_find(&s->cl->vdis, m->base_vid & (SD_NR_VDIS - 1));
		if (!w || w->deleted || (w->flags & VDI_F_SNAPSHOT))
			return SD_RES_NO_VDI;
		if (!b || b->deleted || !(b->flags & VDI_F_SNAPSHOT) || strcmp(b->name, w->name))
			return SD_RES_NO_BASE_VDI;
		if (w->locked && !group_lock_is_sender(w, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		ne = *w;
		ne.locked = 0;
		ne.size = b->size;
		ne.copy_policy = b->copy_policy;
		ne.nr_copies = b->nr_copies;
		ne.shift = b->shift;
		ne.ctime = m->ctime;
		ret = insert_follower(s, b, w->vid + 1, &ne, vid);
		if (ret)
			return ret;
		w = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
		w->deleted = VDI_DEL_RECLAIM;
		w->locked = 0;
		vdi_table_insert(&s->cl->vdis, w); /* clears the in-use bit */
		sd_info("VDI %s rolled back to snapshot %u: working VDI now %x (%x deleted)",
			w->name, b->snapid, *vid, w->vid);
		break;
	}
	case CMSG_VDI_READY: {
		struct vdi_entry *e = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
		if (!e)
			return SD_RES_NO_VDI;
		e->flags &= (uint8_t)~VDI_F_PENDING;
		*vid = e->vid;
		break;
	}
	case CMSG_VDI_RECLAIMED: {
		struct vdi_entry *e = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
		if (e && e->deleted == VDI_DEL_RECLAIM)
			e->deleted = VDI_DEL_ZOMBIE;
		/* As Sheepdog: a deleted VDI's id is taken for good unless the
		 * cluster was formatted with -R (recycle VIDs); the zombie
		 * entry keeps it (vdi_table_alloc_vid skips it). */
		if (s->cl->fmt_flags & SD_CLUSTER_FLAG_RECYCLE_VID)
			vdi_table_drop_zombies(&s->cl->vdis);
		break;
	}
	default:
		return SD_RES_INVALID_PARMS;
	}
	group_save_vdis(s);
	return SD_RES_SUCCESS;
}

/*
 * vdi alter-copy's table changes (gateway/convert.c does the data). START
 * records the target policy as the layout of the objects under the other
 * id than their home one and fixes the inode's width; asking again for
 * the same target is accepted (it resumes), another target is refused
 * while one runs. PROGRESS raises the mark. DONE makes the target the
 * VDI's policy and the other id the home one, keeping the old policy as
 * the other layout.
 */
int group_apply_vdi_alter(struct sheep *s, struct vdi_entry *e, const struct cmsg_vdi *m)
{
	if (!e || e->deleted || (e->flags & VDI_F_PENDING))
		return SD_RES_NO_VDI;
	if (e->flags & VDI_F_SNAPSHOT)
		return SD_RES_READONLY;
	bool conv = e->flags & VDI_F_CONVERTING;
	/* PROGRESS and DONE name the conversion they belong to (target and
	 * layout generation): one posted late by a converter that lost the
	 * lead must not touch a later conversion. */
	bool same = conv && e->alt_copies == m->copies && e->alt_policy == m->policy &&
		    ((e->flags & VDI_F_GEN) ? 1 : 0) == m->shift;
	switch (m->snapshot) {
	case CMSG_ALTER_START: {
		if (conv)
			return e->alt_copies == m->copies && e->alt_policy == m->policy
				       ? SD_RES_SUCCESS
				       : SD_RES_VDI_LOCKED;
		if (e->nr_copies == m->copies && e->copy_policy == m->policy)
			return SD_RES_INVALID_PARMS;
		struct ec_policy pol;
		if (!e->meta_width && !ec_policy_from_wire(e->copy_policy, e->nr_copies, &pol))
			e->meta_width = (uint8_t)ec_policy_width(&pol);
		e->alt_copies = m->copies;
		e->alt_policy = m->policy;
		e->conv_mark = 0;
		e->flags |= VDI_F_CONVERTING;
		group_save_vdis(s);
		sd_info("VDI %s (%x): converting to %u/%02x", e->name, e->vid, m->copies, m->policy);
		if (s->convert_kick)
			s->convert_kick(s);
		return SD_RES_SUCCESS;
	}
	case CMSG_ALTER_PROGRESS:
		if (same && m->size > e->conv_mark && m->size <= UINT32_MAX)
			e->conv_mark = (uint32_t)m->size;
		return same ? SD_RES_SUCCESS : SD_RES_INVALID_PARMS;
	case CMSG_ALTER_DONE: {
		if (!same)
			return SD_RES_INVALID_PARMS;
		uint8_t c = e->nr_copies, p = e->copy_policy;
		e->nr_copies = e->alt_copies;
		e->copy_policy = e->alt_policy;
		e->alt_copies = c;
		e->alt_policy = p;
		e->conv_mark = 0;
		e->flags = (uint8_t)((e->flags ^ VDI_F_GEN) & ~VDI_F_CONVERTING);
		group_save_vdis(s);
		sd_info("VDI %s (%x): converted to %u/%02x", e->name, e->vid, e->nr_copies,
			e->copy_policy);
		return SD_RES_SUCCESS;
	}
	}
	return SD_RES_INVALID_PARMS;
}
