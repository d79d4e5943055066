/* apply.c - applying membership changes and cluster messages (format, VDI create/delete/lock, shutdown) in delivery order, identically on every member. */
#include <inttypes.h>
#include "sheep/cluster/group_priv.h"

void group_release_locks_of(struct sheep *s, const struct sd_node *n, bool *changed)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = s->vdis.buckets[b]; e; e = e->hnext)
			if (e->locked && e->lock_port == n->port && e->lock_inc == n->incarnation &&
			    !strcmp(e->lock_addr, n->addr)) {
				e->locked = 0;
				*changed = true;
				sd_info("VDI %s (%x) unlocked: its holder %s:%u left", e->name, e->vid,
					n->addr, n->port);
			}
}

void group_apply_membership(struct sheep *s, const struct sd_node *members, size_t nr,
			     const struct sd_node *changed, bool joined)
{
	s->seq++;
	struct sd_node *m = malloc((nr ? nr : 1) * sizeof(*m));
	if (!m) {
		sd_emerg("out of memory applying a membership change");
		return;
	}
	memcpy(m, members, nr * sizeof(*m));
	free(s->members);
	s->members = m;
	s->nr_members = nr;
	s->epoch++;
	group_epoch_add(s, s->epoch, sd_wall_seconds(), members, nr, true);
	sd_notice("epoch %u: %s:%u %s, %zu members", s->epoch, changed->addr, changed->port,
		  joined ? "joined" : "left", nr);
	if (joined && !sd_node_eq(changed, &s->self)) {
		struct joiner *j = calloc(1, sizeof(*j));
		if (j) {
			j->node = *changed;
			j->join_seq = s->seq;
			j->next = s->joiners;
			s->joiners = j;
		}
	} else if (!joined) {
		group_remove_joiner(s, changed);
		bool ch = false;
		group_release_locks_of(s, changed, &ch);
	}
	group_outage_check(s);
	group_rebuild_view(s);
	group_maybe_send_snapshots(s);
}


struct wipe_list {
	size_t n, cap;
	struct {
		uint64_t oid;
		uint8_t idx;
	} *v;
};

int group_wipe_collect(const struct store_meta *m, void *arg)
{
	struct wipe_list *w = arg;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 1024;
		void *nv = realloc(w->v, nc * sizeof(*w->v));
		if (!nv)
			return -ENOMEM;
		w->v = nv;
		w->cap = nc;
	}
	w->v[w->n].oid = m->oid;
	w->v[w->n].idx = m->idx;
	w->n++;
	return 0;
}

void group_store_wipe(struct sheep *s)
{
	if (!s->store)
		return;
	struct wipe_list w = {0};
	store_for_each(s->store, group_wipe_collect, &w);
	for (size_t i = 0; i < w.n; i++)
		store_remove(s->store, w.v[i].oid, w.v[i].idx);
	if (w.n)
		sd_notice("format: removed %zu old fragments", w.n);
	free(w.v);
}

int group_apply_format(struct sheep *s, const struct cmsg_format *f, bool *wipe)
{
	struct ec_policy pol;
	if (ec_policy_from_wire(f->policy, f->copies, &pol))
		return SD_RES_INVALID_PARMS;
	if (f->shift < SD_MIN_BLOCK_SIZE_SHIFT || f->shift > SD_MAX_BLOCK_SIZE_SHIFT)
		return SD_RES_INVALID_PARMS;
	s->ctime = f->ctime;
	s->def_copies = f->copies;
	s->def_policy = f->policy;
	s->def_shift = f->shift;
	s->fmt_vnodes = f->vnodes;
	s->recovery_enabled = true;
	vdi_table_clear(&s->vdis);
	group_save_config(s);
	group_save_vdis(s);
	*wipe = true;
	char pb[32];
	ec_policy_format(&pol, pb, sizeof(pb));
	sd_notice("cluster formatted: policy %s, object size %u KiB", pb, (1u << f->shift) >> 10);
	return SD_RES_SUCCESS;
}

int group_apply_new_vdi(struct sheep *s, const struct cmsg_vdi *m, uint32_t *vid)
{
	if (!s->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	char name[SD_MAX_VDI_LEN];
	memcpy(name, m->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (!name[0])
		return SD_RES_INVALID_PARMS;
	if (vdi_table_by_name(&s->vdis, name, NULL, 0))
		return SD_RES_VDI_EXIST;
	uint32_t v = vdi_table_alloc_vid(&s->vdis, sd_vid_of_name(name));
	if (!v)
		return SD_RES_FULL_VDI;
	struct vdi_entry e;
	memset(&e, 0, sizeof(e));
	e.vid = v;
	e.snapid = 1;
	e.copy_policy = m->policy;
	e.nr_copies = m->copies;
	e.shift = m->shift;
	e.size = m->size;
	e.ctime = m->ctime;
	memcpy(e.name, name, sizeof(e.name));
	int ret = vdi_table_insert(&s->vdis, &e);
	if (ret)
		return SD_RES_NO_MEM;
	group_save_vdis(s);
	*vid = v;
	sd_info("VDI %s created: id %x, %llu bytes", name, v, (unsigned long long)m->size);
	return SD_RES_SUCCESS;
}

int group_apply_vdi_op(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
			uint32_t *vid)
{
	struct vdi_entry *e = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
	*vid = m->vid;
	switch (m->h.type) {
	case CMSG_DEL_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (e->locked && !group_lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		if (e->flags & VDI_F_PENDING)
			return SD_RES_VDI_LOCKED; /* being created: finish it first */
		if (group_first_clone(s, e))
			return SD_RES_VDI_WRITE; /* clones depend on it */
		e->deleted = VDI_DEL_RECLAIM;
		e->locked = 0;
		vdi_table_insert(&s->vdis, e); /* clears the in-use bit */
		group_save_vdis(s);
		sd_info("VDI %s (%x) deleted", e->name, e->vid);
		return SD_RES_SUCCESS;
	case CMSG_PURGE_VDI:
		if (e && e->deleted) {
			vdi_table_remove(&s->vdis, m->vid);
			group_save_vdis(s);
		}
		return SD_RES_SUCCESS;
	case CMSG_LOCK_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (e->locked && !group_lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		e->locked = 1;
		snprintf(e->lock_addr, sizeof(e->lock_addr), "%s", sender->addr);
		e->lock_port = sender->port;
		e->lock_inc = sender->incarnation;
		e->lock_owner = m->lock_owner;
		return SD_RES_SUCCESS;
	case CMSG_UNLOCK_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (!e->locked)
			return SD_RES_VDI_NOT_LOCKED;
		/* owner 0 from dog's "vdi lock unlock" forces the release. */
		if (m->lock_owner && !group_lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		e->locked = 0;
		return SD_RES_SUCCESS;
	}
	return SD_RES_INVALID_PARMS;
}

void group_shutdown_later(void *arg)
{
	struct sheep *s = arg;
	sd_loop_stop(s->loop);
}

/* Apply one message; sender's waiter (if this node) gets the result. */
void group_apply_msg(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len,
		      bool *wipe)
{
	s->seq++;
	struct cmsg_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, msg, sizeof(h));
	int res = SD_RES_INVALID_PARMS;
	uint32_t vid = 0;
	switch (h.type) {
	case CMSG_FORMAT:
		if (len >= sizeof(struct cmsg_format))
			res = group_apply_format(s, msg, wipe);
		break;
	case CMSG_NEW_VDI:
		if (len >= sizeof(struct cmsg_vdi))
			res = group_apply_new_vdi(s, msg, &vid);
		break;
	case CMSG_DEL_VDI:
	case CMSG_PURGE_VDI:
	case CMSG_LOCK_VDI:
	case CMSG_UNLOCK_VDI:
		if (len >= sizeof(struct cmsg_vdi))
			res = group_apply_vdi_op(s, sender, msg, &vid);
		break;
	case CMSG_VDI_SNAP:
	case CMSG_VDI_CLONE:
	case CMSG_VDI_ROLLBACK:
	case CMSG_VDI_READY:
	case CMSG_VDI_RECLAIMED:
		if (len >= sizeof(struct cmsg_vdi))
			res = group_apply_vdi_family(s, sender, msg, &vid);
		break;
	case CMSG_RECOVERY:
		if (len >= sizeof(struct cmsg_format)) {
			s->recovery_enabled = ((const struct cmsg_format *)msg)->copies != 0;
			group_save_config(s);
			res = SD_RES_SUCCESS;
		}
		break;
	case CMSG_SHUTDOWN:
		sd_notice("cluster shutdown requested by %s:%u", sender->addr, sender->port);
		res = SD_RES_SUCCESS;
		if (!sd_node_eq(sender, &s->self)) {
			atomic_store(&s->stopping, true);
			sd_loop_call(s->loop, group_shutdown_later, s);
		}
		break;
	case CMSG_OUTAGE:
		res = group_apply_outage(s, sender, msg, len);
		break;
	case CMSG_SNAPSHOT:
		return; /* for a joiner; synced members only count it */
	default:
		sd_warn("unknown cluster message type %u from %s:%u", h.type, sender->addr,
			sender->port);
		return;
	}
	if (sd_node_eq(sender, &s->self))
		group_complete_wait(s, h.token, res, vid);
}

/* ---- applying events (loop thread, state_lock held) ---- */

bool group_node_in_joiners(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner *j = s->joiners; j; j = j->next)
		if (sd_node_eq(&j->node, n))
			return true;
	return false;
}

void group_remove_joiner(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner **pp = &s->joiners; *pp; pp = &(*pp)->next)
		if (sd_node_eq(&(*pp)->node, n)) {
			struct joiner *j = *pp;
			*pp = j->next;
			free(j);
			return;
		}
}

/* Build the snapshot message for joiner j. */
void *group_build_snapshot(struct sheep *s, const struct joiner *j, size_t *len)
{
	size_t ebytes = 0;
	uint32_t ne = 0;
	for (size_t i = s->nr_epochs; i > 0; i--) {
		size_t b = sizeof(struct sd_epoch_rec) + s->epochs[i - 1].nr_nodes * sizeof(struct sd_node);
		if (ebytes + b > SNAP_EPOCH_BUDGET)
			break;
		ebytes += b;
		ne++;
	}
	size_t cap = CLUSTER_MAX_MSG;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	struct snap_hdr *h = (struct snap_hdr *)buf;
	memset(h, 0, sizeof(*h));
	h->h.type = CMSG_SNAPSHOT;
	h->target = j->node;
	h->join_seq = j->join_seq;
	h->seq = s->seq;
	h->epoch = s->epoch;
	h->nr_epochs = ne;
	h->ctime = s->ctime;
	h->copies = s->def_copies;
	h->policy = s->def_policy;
	h->shift = s->def_shift;
	h->recovery_enabled = s->recovery_enabled;
	h->vnodes = s->fmt_vnodes;
	char *p = buf + sizeof(*h);
	/* oldest first among the last ne */
	for (size_t i = s->nr_epochs - ne; i < s->nr_epochs; i++) {
		struct sd_epoch_rec r = {s->epochs[i].epoch, s->epochs[i].nr_nodes, s->epochs[i].time};
		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
		memcpy(p, s->epochs[i].nodes, r.nr_nodes * sizeof(struct sd_node));
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	long vl = vdi_table_pack(&s->vdis, p, cap - (size_t)(p - buf));
	if (vl < 0) {
		sd_emerg("the VDI table (%zu VDIs) does not fit a cluster message: a joiner "
			 "cannot be synced", s->vdis.nr);
		free(buf);
		return NULL;
	}
	h->vdi_len = (uint32_t)vl;
	p += vl;
	/* After a whole-cluster stop: what the cluster waits for (outage.c). */
	p += group_outage_pack(s, p, cap - (size_t)(p - buf));
	*len = (size_t)(p - buf);
	h->h.len = (uint32_t)*len;
	return buf;
}

void group_maybe_send_snapshots(struct sheep *s)
{
	if (!s->joiners)
		return;
	/* The oldest member that is not itself waiting sends. */
	const struct sd_node *sender = NULL;
	for (size_t i = 0; i < s->nr_members && !sender; i++)
		if (!group_node_in_joiners(s, &s->members[i]))
			sender = &s->members[i];
	if (!sender || !sd_node_eq(sender, &s->self))
		return;
	for (struct joiner *j = s->joiners; j; j = j->next) {
		if (j->sent)
			continue;
		size_t len;
		void *msg = group_build_snapshot(s, j, &len);
		if (!msg)
			continue;
		sd_info("sending state (event %llu, epoch %u) to joiner %s:%u",
			(unsigned long long)s->seq, s->epoch, j->node.addr, j->node.port);
		if (group_post_broadcast(s, msg, len, 0) == 0)
			j->sent = true;
		free(msg);
	}
}

void group_pending_free(struct pending_event *p)
{
	free(p->members);
	free(p->msg);
	free(p);
}

void group_pending_clear(struct sheep *s)
{
	struct pending_event *p = s->pend_head;
	while (p) {
		struct pending_event *n = p->next;
		group_pending_free(p);
		p = n;
	}
	s->pend_head = s->pend_tail = NULL;
}

void group_pending_add(struct sheep *s, struct pending_event *p)
{
	p->next = NULL;
	if (s->pend_tail)
		s->pend_tail->next = p;
	else
		s->pend_head = p;
	s->pend_tail = p;
}

/* A joiner got its snapshot: load it and replay what it buffered. */
void group_apply_snapshot(struct sheep *s, const void *msg, size_t len, bool *wipe)
{
	struct snap_hdr h;
	memcpy(&h, msg, sizeof(h));
	if (s->ctime && h.ctime && s->ctime != h.ctime) {
		/* As Sheepdog: a store of another format is refused, never wiped
		 * automatically. Nothing of this node's state is touched. */
		sd_emerg("this node's store (%s) belongs to another format of the cluster "
			 "(formatted at %" PRIu64 ", the cluster at %" PRIu64 "): refusing to "
			 "join; move the directory away to join as a new node",
			 s->opt.dir, s->ctime, h.ctime);
		s->exit_status = 1;
		s->stopping = 1;
		sd_loop_stop(s->loop);
		return;
	}
	const char *p = (const char *)msg + sizeof(h);
	const char *end = (const char *)msg + len;
	group_epochs_clear(s);
	for (uint32_t i = 0; i < h.nr_epochs; i++) {
		struct sd_epoch_rec r;
		if (p + sizeof(r) > end)
			return;
		memcpy(&r, p, sizeof(r));
		p += sizeof(r);
		if (r.nr_nodes > SD_MAX_NODES || p + r.nr_nodes * sizeof(struct sd_node) > end)
			return;
		group_epoch_add(s, r.epoch, r.time, (const struct sd_node *)(const void *)p, r.nr_nodes, true);
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	if (p + h.vdi_len > end || vdi_table_unpack(&s->vdis, p, h.vdi_len)) {
		sd_emerg("state snapshot is damaged");
		return;
	}
	p += h.vdi_len;
	free(s->outage_wait);
	free(s->outage_ann);
	s->outage_wait = s->outage_ann = NULL;
	s->nr_outage_wait = s->nr_outage_ann = 0;
	s->outage_epoch = 0;
	group_outage_unpack(s, p, (size_t)(end - p));
	s->ctime = h.ctime;
	s->def_copies = h.copies;
	s->def_policy = h.policy;
	s->def_shift = h.shift;
	s->recovery_enabled = h.recovery_enabled;
	s->fmt_vnodes = h.vnodes;
	s->epoch = h.epoch;
	s->seq = h.seq;
	group_save_config(s);
	group_save_vdis(s);
	/* Replay the buffered events after seq h.seq. Event number of the
	 * first buffered one (our join) is h.join_seq. */
	uint64_t n = h.join_seq;
	s->synced = true;
	struct pending_event *ev = s->pend_head;
	s->pend_head = s->pend_tail = NULL;
	while (ev) {
		struct pending_event *next = ev->next;
		if (n <= h.seq) {
			if (!ev->is_msg) {
				free(s->members);
				s->members = ev->members;
				s->nr_members = ev->nr_members;
				ev->members = NULL;
			}
		} else if (ev->is_msg) {
			group_apply_msg(s, &ev->sender, ev->msg, ev->len, wipe);
		} else {
			group_apply_membership(s, ev->members, ev->nr_members, &ev->sender, ev->joined);
		}
		n++;
		group_pending_free(ev);
		ev = next;
	}
	group_rebuild_view(s);
	sd_notice("joined the cluster at epoch %u with %zu VDIs", s->epoch, s->vdis.nr);
	group_outage_joined(s);
}
