/* apply.c - applying membership changes and cluster messages (format, VDI create/delete/lock, shutdown) in delivery order, identically on every member. */
#include <inttypes.h>
#include "sheep/cluster/group_priv.h"

void group_release_locks_of(struct sheep *s, const struct sd_node *n, bool *changed)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = s->cl->vdis.buckets[b]; e; e = e->hnext)
			if (e->locked && e->lock_port == n->port && e->lock_inc == n->incarnation &&
			    !strcmp(e->lock_addr, n->addr)) {
				e->locked = 0;
				*changed = true;
				sd_info("VDI %s (%x) unlocked: its holder %s:%u left", e->name, e->vid,
					n->addr, n->port);
			}
}

/* Whether every node of the newest logged epoch is a member again (by
 * address and port: a restarted node has a new incarnation). */
static bool newest_epoch_present(const struct sheep *s)
{
	if (!s->cl->nr_epochs)
		return true;
	const struct epoch_rec *r = &s->cl->epochs[s->cl->nr_epochs - 1];
	for (uint32_t i = 0; i < r->nr_nodes; i++) {
		bool found = false;
		for (size_t k = 0; k < s->cl->nr_members && !found; k++)
			found = s->cl->members[k].port == r->nodes[i].port &&
				!strcmp(s->cl->members[k].addr, r->nodes[i].addr);
		if (!found)
			return false;
	}
	return true;
}

/* One new epoch of the current members, logged (a membership change of a
 * running cluster, the start of a waiting one, a format). */
static void log_new_epoch(struct sheep *s)
{
	s->cl->epoch++;
	group_epoch_add(s, s->cl->epoch, sd_wall_seconds(), s->cl->members, s->cl->nr_members, true);
}

/* A waiting cluster starts once the nodes of its newest epoch are all back:
 * one epoch of everyone present, as Sheepdog's does after a restart. */
void group_check_waiting(struct sheep *s)
{
	if (!s->cl->waiting || !newest_epoch_present(s))
		return;
	s->cl->waiting = false;
	log_new_epoch(s);
	sd_notice("epoch %u: every node of the previous epoch is back; the cluster runs with "
		  "%zu members", s->cl->epoch, s->cl->nr_members);
}

/*
 * A membership change, as Sheepdog 1.0 counts epochs: nothing is logged
 * before the cluster is formatted (the format logs epoch 1 with the members
 * of that moment) nor while a restarted cluster waits for the nodes of its
 * newest epoch (the start logs one epoch of everyone then present); a
 * running cluster logs one epoch per change. Every member applies the same
 * events in the same order, so all log the same epochs.
 */
void group_apply_membership(struct sheep *s, const struct sd_node *members, size_t nr,
			     const struct sd_node *changed, bool joined)
{
	s->cl->seq++;
	struct sd_node *m = malloc((nr ? nr : 1) * sizeof(*m));
	if (!m) {
		sd_emerg("out of memory applying a membership change");
		return;
	}
	memcpy(m, members, nr * sizeof(*m));
	group_carry_vnodes(m, nr, s->cl->members, s->cl->nr_members);
	free(s->cl->members);
	s->cl->members = m;
	s->cl->nr_members = nr;
	if (s->cl->ctime && !s->cl->waiting && !s->cl->shut_down) {
		log_new_epoch(s);
		sd_notice("epoch %u: %s:%u %s, %zu members", s->cl->epoch, changed->addr, changed->port,
			  joined ? "joined" : "left", nr);
	} else {
		sd_notice("%s:%u %s, %zu members; epoch %u kept (%s)", changed->addr, changed->port,
			  joined ? "joined" : "left", nr, s->cl->epoch,
			  !s->cl->ctime ? "not formatted"
			  : s->cl->shut_down ? "cluster shut down"
					 : "waiting for the nodes of the last epoch");
		/* A joiner of a waiting cluster may bring a newer epoch: the
		 * check waits for its offer (group_apply_offer). */
		if (!joined || nr == 1)
			group_check_waiting(s);
	}
	if (joined && !sd_node_eq(changed, &s->self)) {
		struct joiner *j = calloc(1, sizeof(*j));
		if (j) {
			j->node = *changed;
			j->join_seq = s->cl->seq;
			j->next = s->cl->joiners;
			s->cl->joiners = j;
		}
	} else if (!joined) {
		group_remove_joiner(s, changed);
		bool ch = false;
		group_release_locks_of(s, changed, &ch);
	}
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
	s->cl->ctime = f->ctime;
	s->cl->def_copies = f->copies;
	s->cl->def_policy = f->policy;
	s->cl->def_shift = f->shift;
	s->cl->fmt_vnodes = f->vnodes;
	s->cl->fmt_flags = f->flags;
	s->cl->recovery_enabled = true;
	vdi_table_clear(&s->cl->vdis);
	group_save_config(s);
	group_save_vdis(s);
	/* As Sheepdog: the history starts again, epoch 1 = the members now. */
	group_epoch_log_reset(s);
	s->cl->epoch = 0;
	s->cl->waiting = false;
	log_new_epoch(s);
	group_rebuild_view(s);
	*wipe = true;
	char pb[32];
	ec_policy_format(&pol, pb, sizeof(pb));
	sd_notice("cluster formatted: policy %s, object size %u KiB", pb, (1u << f->shift) >> 10);
	return SD_RES_SUCCESS;
}

int group_apply_new_vdi(struct sheep *s, const struct cmsg_vdi *m, uint32_t *vid)
{
	if (!s->cl->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	char name[SD_MAX_VDI_LEN];
	memcpy(name, m->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (!name[0])
		return SD_RES_INVALID_PARMS;
	if (vdi_table_by_name(&s->cl->vdis, name, NULL, 0))
		return SD_RES_VDI_EXIST;
	uint32_t v = vdi_table_alloc_vid(&s->cl->vdis, sd_vid_of_name(name));
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
	int ret = vdi_table_insert(&s->cl->vdis, &e);
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
	struct vdi_entry *e = vdi_table_find(&s->cl->vdis, m->vid & (SD_NR_VDIS - 1));
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
		vdi_table_insert(&s->cl->vdis, e); /* clears the in-use bit */
		group_save_vdis(s);
		sd_info("VDI %s (%x) deleted", e->name, e->vid);
		return SD_RES_SUCCESS;
	case CMSG_PURGE_VDI:
		if (e && e->deleted) {
			vdi_table_remove(&s->cl->vdis, m->vid);
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
	case CMSG_VDI_ALTER:
		return group_apply_vdi_alter(s, e, m);
	}
	return SD_RES_INVALID_PARMS;
}

void group_shutdown_later(void *arg)
{
	struct sheep *s = arg;
	sd_loop_stop(s->loop);
}

/* ---- operations applied lately (group_priv.h, struct cop_done) ---- */

static uint64_t cop_who(const struct sd_node *n)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const char *c = n->addr; *c; c++)
		h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
	h = (h ^ n->port) * 0x100000001b3ull;
	return (h ^ n->incarnation) * 0x100000001b3ull;
}

const struct cop_done *cop_done_find(struct sheep *s, const struct sd_node *sender, uint64_t token)
{
	uint64_t who = cop_who(sender);
	for (unsigned i = 0; i < s->cl->nr_done; i++)
		if (s->cl->done[i].token == token && s->cl->done[i].who == who)
			return &s->cl->done[i];
	return NULL;
}

void cop_done_add(struct sheep *s, const struct sd_node *sender, uint64_t token, int result,
		  uint32_t vid)
{
	struct cop_done *d = &s->cl->done[s->cl->done_next];
	*d = (struct cop_done){.who = cop_who(sender), .token = token, .result = result, .vid = vid};
	s->cl->done_next = (s->cl->done_next + 1) % COP_DONE_MAX;
	if (s->cl->nr_done < COP_DONE_MAX)
		s->cl->nr_done++;
}

/* Apply one message; sender's waiter (if this node) gets the result. */
void group_apply_msg(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len,
		      bool *wipe)
{
	s->cl->seq++;
	struct cmsg_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, msg, sizeof(h));
	int res = SD_RES_INVALID_PARMS;
	uint32_t vid = 0;
	/* A second copy of an operation (sent again after the driver said
	 * the first was not sent when it was): applied once, answered as the
	 * first was. Every member skips it: they hold the same list. */
	const struct cop_done *dup = h.token ? cop_done_find(s, sender, h.token) : NULL;
	if (dup) {
		sd_info("cluster message %u from %s:%u: a second copy of an operation applied "
			"already; skipped", h.type, sender->addr, sender->port);
		if (sd_node_eq(sender, &s->self))
			group_complete_wait(s, h.token, dup->result, dup->vid);
		pthread_cond_broadcast(&s->cl->state_cond);
		return;
	}
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
	case CMSG_VDI_ALTER:
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
			s->cl->recovery_enabled = ((const struct cmsg_format *)msg)->copies != 0;
			group_save_config(s);
			res = SD_RES_SUCCESS;
		}
		break;
	case CMSG_SHUTDOWN:
		sd_notice("cluster shutdown requested by %s:%u", sender->addr, sender->port);
		/* As Sheepdog: the members stopping now are not epochs; the
		 * restart waits for all of them. */
		s->cl->shut_down = true;
		res = SD_RES_SUCCESS;
		if (!sd_node_eq(sender, &s->self)) {
			atomic_store(&s->stopping, true);
			sd_loop_call(s->loop, group_shutdown_later, s);
		}
		break;
	case CMSG_SNAPSHOT:
		/* For a joiner; a synced member, and a joiner replaying what it
		 * buffered, count it and stop waiting for its target. */
		if (len >= sizeof(struct snap_hdr)) {
			struct snap_hdr sh;
			memcpy(&sh, msg, sizeof(sh));
			group_remove_joiner(s, &sh.target);
		}
		return;
	case CMSG_OFFER:
		if (len >= sizeof(struct snap_hdr))
			group_apply_offer(s, sender, msg, len);
		return;
	case CMSG_NODE_VNODES:
		if (len >= sizeof(struct cmsg_node_vnodes))
			res = group_apply_node_vnodes(s, msg);
		break;
	case CMSG_START:
		res = SD_RES_SUCCESS; /* already running: nothing to do */
		if (s->cl->waiting) {
			s->cl->waiting = false;
			log_new_epoch(s);
			sd_notice("epoch %u: started by %s:%u without the missing nodes of the "
				  "last epoch, %zu members", s->cl->epoch, sender->addr, sender->port,
				  s->cl->nr_members);
			group_rebuild_view(s);
		}
		break;
	default:
		sd_warn("unknown cluster message type %u from %s:%u", h.type, sender->addr,
			sender->port);
		return;
	}
	if (h.token)
		cop_done_add(s, sender, h.token, res, vid);
	if (sd_node_eq(sender, &s->self))
		group_complete_wait(s, h.token, res, vid);
	/* Workers waiting for the VDI table to catch up (group_vdi_wait). */
	pthread_cond_broadcast(&s->cl->state_cond);
}

/* ---- applying events (loop thread, state_lock held) ---- */

bool group_node_in_joiners(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner *j = s->cl->joiners; j; j = j->next)
		if (sd_node_eq(&j->node, n))
			return true;
	return false;
}

/* This node's state in the snapshot layout, for target (join_seq its join);
 * with the other joiners when with_joiners (a CMSG_SNAPSHOT). */
uint32_t group_wire(const struct sheep *s)
{
	if (s->opt.test_wire_ver > 0)
		return SNAP_WIRE_MAGIC | ((uint32_t)s->opt.test_wire_ver & 0xffu);
	return SNAP_WIRE_MAGIC | SNAP_WIRE_VERSION;
}

/* What to call the build that wrote wire, in a log line. */
static void wire_name(uint32_t wire, char *buf, size_t len)
{
	if ((wire & ~0xffu) == SNAP_WIRE_MAGIC)
		snprintf(buf, len, "version %u", wire & 0xffu);
	else
		snprintf(buf, len, "a build older than version 1");
}

static void *build_state(struct sheep *s, const struct sd_node *target, uint64_t join_seq,
			 bool with_joiners, size_t *len)
{
	size_t ebytes = 0;
	uint32_t ne = 0;
	for (size_t i = s->cl->nr_epochs; i > 0; i--) {
		size_t b = sizeof(struct sd_epoch_rec) + s->cl->epochs[i - 1].nr_nodes * sizeof(struct sd_node);
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
	h->target = *target;
	h->join_seq = join_seq;
	h->seq = s->cl->seq;
	h->epoch = s->cl->epoch;
	h->nr_epochs = ne;
	h->ctime = s->cl->ctime;
	h->copies = s->cl->def_copies;
	h->policy = s->cl->def_policy;
	h->shift = s->cl->def_shift;
	h->recovery_enabled = s->cl->recovery_enabled;
	h->vnodes = s->cl->fmt_vnodes;
	h->waiting = s->cl->waiting;
	h->fmt_flags = (uint8_t)s->cl->fmt_flags;
	h->wire = group_wire(s);
	char *p = buf + sizeof(*h);
	/* oldest first among the last ne */
	for (size_t i = s->cl->nr_epochs - ne; i < s->cl->nr_epochs; i++) {
		struct sd_epoch_rec r = {s->cl->epochs[i].epoch, s->cl->epochs[i].nr_nodes, s->cl->epochs[i].time};
		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
		memcpy(p, s->cl->epochs[i].nodes, r.nr_nodes * sizeof(struct sd_node));
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	long vl = vdi_table_pack(&s->cl->vdis, p, cap - (size_t)(p - buf));
	if (vl < 0) {
		sd_emerg("the VDI table (%zu VDIs) does not fit a cluster message: a joiner "
			 "cannot be synced", s->cl->vdis.nr);
		free(buf);
		return NULL;
	}
	h->vdi_len = (uint32_t)vl;
	p += vl;
	if (with_joiners) {
		uint16_t nj = 0;
		p += group_pack_joiners(s, target, p, cap - (size_t)(p - buf), &nj);
		h->nr_joiners = nj;
	}
	/* The operations applied lately, oldest first. */
	size_t db = s->cl->nr_done * sizeof(struct cop_done);
	if (db <= cap - (size_t)(p - buf)) {
		unsigned first = s->cl->nr_done < COP_DONE_MAX ? 0 : s->cl->done_next;
		for (unsigned i = 0; i < s->cl->nr_done; i++) {
			memcpy(p, &s->cl->done[(first + i) % COP_DONE_MAX], sizeof(struct cop_done));
			p += sizeof(struct cop_done);
		}
		h->nr_done = (uint16_t)s->cl->nr_done;
	}
	*len = (size_t)(p - buf);
	h->h.len = (uint32_t)*len;
	return buf;
}

/* Build the snapshot message for joiner j. */
void *group_build_snapshot(struct sheep *s, const struct joiner *j, size_t *len)
{
	return build_state(s, &j->node, j->join_seq, true, len);
}

void group_maybe_send_snapshots(struct sheep *s)
{
	if (!s->cl->joiners)
		return;
	/* The oldest member that is not itself waiting sends. */
	const struct sd_node *sender = NULL;
	for (size_t i = 0; i < s->cl->nr_members && !sender; i++)
		if (!group_node_in_joiners(s, &s->cl->members[i]))
			sender = &s->cl->members[i];
	if (!sender || !sd_node_eq(sender, &s->self))
		return;
	for (struct joiner *j = s->cl->joiners; j; j = j->next) {
		if (j->sent)
			continue;
		size_t len;
		void *msg = group_build_snapshot(s, j, &len);
		if (!msg)
			continue;
		sd_info("sending state (event %llu, epoch %u) to joiner %s:%u",
			(unsigned long long)s->cl->seq, s->cl->epoch, j->node.addr, j->node.port);
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
	struct pending_event *p = s->cl->pend_head;
	while (p) {
		struct pending_event *n = p->next;
		group_pending_free(p);
		p = n;
	}
	s->cl->pend_head = s->cl->pend_tail = NULL;
}

void group_pending_add(struct sheep *s, struct pending_event *p)
{
	p->next = NULL;
	if (s->cl->pend_tail)
		s->cl->pend_tail->next = p;
	else
		s->cl->pend_head = p;
	s->cl->pend_tail = p;
}

/* This node's own state as a CMSG_OFFER (the snapshot layout). */
void *group_build_offer(struct sheep *s, size_t *len)
{
	struct snap_hdr *h = build_state(s, &s->self, 0, false, len);
	if (h)
		h->h.type = CMSG_OFFER;
	return h;
}

/* The epoch records of a snapshot-layout message: 0 when they are all
 * within [p, end) (*after = the byte after them) and every node's address
 * ends within its field, else -EINVAL (fuzz_cluster, session 17: an
 * address without its NUL was compared past its end while sorting). */
static int snap_epochs_check(const char *p, const char *end, uint32_t nr, const char **after)
{
	for (uint32_t i = 0; i < nr; i++) {
		struct sd_epoch_rec r;
		if (p + sizeof(r) > end)
			return -EINVAL;
		memcpy(&r, p, sizeof(r));
		p += sizeof(r);
		if (r.nr_nodes > SD_MAX_NODES || p + r.nr_nodes * sizeof(struct sd_node) > end)
			return -EINVAL;
		for (uint32_t k = 0; k < r.nr_nodes; k++)
			if (!memchr(p + k * sizeof(struct sd_node) + offsetof(struct sd_node, addr), 0,
				    sizeof(((struct sd_node *)0)->addr)))
				return -EINVAL;
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	*after = p;
	return 0;
}

/* Put the epoch records of a checked snapshot-layout message. */
static void snap_epochs_put(struct sheep *s, const char *p, uint32_t nr, bool log)
{
	for (uint32_t i = 0; i < nr; i++) {
		struct sd_epoch_rec r;
		memcpy(&r, p, sizeof(r));
		p += sizeof(r);
		group_epoch_put(s, r.epoch, r.time, (const struct sd_node *)(const void *)p,
				r.nr_nodes, log);
		p += r.nr_nodes * sizeof(struct sd_node);
	}
}

/* The format and epoch a state snapshot carries become this node's. */
static void take_format(struct sheep *s, const struct snap_hdr *h)
{
	s->cl->ctime = h->ctime;
	s->cl->def_copies = h->copies;
	s->cl->def_policy = h->policy;
	s->cl->def_shift = h->shift;
	s->cl->recovery_enabled = h->recovery_enabled;
	s->cl->fmt_vnodes = h->vnodes;
	s->cl->fmt_flags = h->fmt_flags;
	s->cl->epoch = h->epoch;
}

/*
 * A formatted node that joined an unformatted cluster, or any node that
 * joined a waiting cluster, offers its state (Sheepdog: formatted
 * sheep restarted next to fresh ones resume; the node with the newest epoch
 * decides whom the cluster waits for). Every member decides the same way:
 * adopt the offer (format, VDI table, epoch history merged, newest epoch)
 * and wait for that epoch's nodes, or ignore it. The offering node kept its
 * own files until now; when ignored it saves the cluster's state instead.
 */
void group_apply_offer(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len)
{
	struct snap_hdr h;
	memcpy(&h, msg, sizeof(h));
	const char *p = (const char *)msg + sizeof(h);
	const char *end = (const char *)msg + len;
	const char *vdi = NULL;
	bool self = sd_node_eq(sender, &s->self);
	bool adopt = h.ctime && (!s->cl->ctime || (h.ctime == s->cl->ctime && s->cl->waiting &&
					       h.epoch > s->cl->epoch));
	if (adopt && h.wire != group_wire(s)) {
		char theirs[48];
		wire_name(h.wire, theirs, sizeof(theirs));
		sd_err("state offered by %s:%u comes from another build of sheep (cluster "
		       "messages %s, this sheep's version %u); ignored",
		       sender->addr, sender->port, theirs, group_wire(s) & 0xffu);
		adopt = false;
	}
	if (adopt && (snap_epochs_check(p, end, h.nr_epochs, &vdi) || vdi + h.vdi_len > end)) {
		sd_err("state offered by %s:%u is damaged; ignored", sender->addr, sender->port);
		adopt = false;
	}
	struct vdi_table t;
	if (adopt && (vdi_table_init(&t) || vdi_table_unpack(&t, vdi, h.vdi_len))) {
		sd_err("VDI table offered by %s:%u is damaged; ignored", sender->addr, sender->port);
		vdi_table_free(&t);
		adopt = false;
	}
	if (!adopt) {
		if (self) {
			group_save_config(s);
			group_save_vdis(s);
		}
		sd_info("state offered by %s:%u (epoch %u) not taken: the cluster is at epoch %u",
			sender->addr, sender->port, h.epoch, s->cl->epoch);
		bool was = s->cl->waiting;
		group_check_waiting(s);
		if (was != s->cl->waiting)
			group_rebuild_view(s);
		return;
	}
	if (!s->cl->ctime)
		group_epoch_log_reset(s);
	snap_epochs_put(s, p, h.nr_epochs, true);
	vdi_table_free(&s->cl->vdis);
	s->cl->vdis = t;
	take_format(s, &h);
	s->cl->waiting = true;
	group_save_config(s);
	group_save_vdis(s);
	sd_notice("took the state of %s:%u: formatted at %" PRIu64 ", epoch %u, %zu VDIs; "
		  "waiting for the nodes of epoch %u", sender->addr, sender->port, s->cl->ctime,
		  s->cl->epoch, s->cl->vdis.nr, s->cl->epoch);
	group_check_waiting(s);
	group_rebuild_view(s);
}

/* A joiner got its snapshot: load it and replay what it buffered. */
void group_apply_snapshot(struct sheep *s, const void *msg, size_t len, bool *wipe)
{
	struct snap_hdr h;
	memcpy(&h, msg, sizeof(h));
	if (h.wire != group_wire(s)) {
		/* Nothing else of it can be read as this build reads it. */
		char theirs[48];
		wire_name(h.wire, theirs, sizeof(theirs));
		sd_emerg("the cluster runs another build of sheep (its cluster messages are %s, "
			 "this sheep's version %u): refusing to join; run one build on every sheep",
			 theirs, group_wire(s) & 0xffu);
		s->exit_status = 1;
		s->stopping = 1;
		sd_loop_stop(s->loop);
		return;
	}
	if (s->cl->ctime && h.ctime && s->cl->ctime != h.ctime) {
		/* As Sheepdog: a store of another format is refused, never wiped
		 * automatically. Nothing of this node's state is touched. */
		sd_emerg("this node's store (%s) belongs to another format of the cluster "
			 "(formatted at %" PRIu64 ", the cluster at %" PRIu64 "): refusing to "
			 "join; move the directory away to join as a new node",
			 s->opt.dir, s->cl->ctime, h.ctime);
		s->exit_status = 1;
		s->stopping = 1;
		sd_loop_stop(s->loop);
		return;
	}
	const char *p = (const char *)msg + sizeof(h);
	const char *end = (const char *)msg + len;
	const char *vdi;
	if (snap_epochs_check(p, end, h.nr_epochs, &vdi) || vdi + h.vdi_len > end ||
	    h.nr_done > COP_DONE_MAX ||
	    (size_t)h.nr_joiners * sizeof(struct snap_joiner) + (size_t)h.nr_done * sizeof(struct cop_done) >
		    (size_t)(end - (vdi + h.vdi_len))) {
		sd_emerg("state snapshot is damaged");
		return;
	}
	/* A joiner of a waiting cluster, or a formatted one of an unformatted
	 * cluster, offers its own state once synced (the cluster decides whether
	 * it is newer), and keeps its files until the offer is decided. */
	size_t olen = 0;
	void *offer = NULL;
	if (h.waiting || (s->cl->ctime && !h.ctime))
		offer = group_build_offer(s, &olen);
	group_epochs_clear(s);
	snap_epochs_put(s, p, h.nr_epochs, !offer);
	if (vdi_table_unpack(&s->cl->vdis, vdi, h.vdi_len)) {
		sd_emerg("state snapshot is damaged");
		free(offer);
		return;
	}
	take_format(s, &h);
	s->cl->waiting = h.waiting;
	s->cl->seq = h.seq;
	/* The others still waiting when it was built (found.c); the replay
	 * below adds later joins and drops those synced since. */
	group_unpack_joiners(s, vdi + h.vdi_len, (size_t)(end - (vdi + h.vdi_len)), h.nr_joiners);
	/* The operations applied up to h.seq: the buffered copies replayed
	 * below are skipped as the members skipped them. */
	const char *dp = vdi + h.vdi_len + (size_t)h.nr_joiners * sizeof(struct snap_joiner);
	s->cl->nr_done = h.nr_done;
	s->cl->done_next = h.nr_done % COP_DONE_MAX;
	for (unsigned i = 0; i < h.nr_done; i++)
		memcpy(&s->cl->done[i], dp + (size_t)i * sizeof(struct cop_done), sizeof(struct cop_done));
	if (!offer) {
		group_save_config(s);
		group_save_vdis(s);
	}
	/* Replay the buffered events after seq h.seq. Event number of the
	 * first buffered one (our join) is h.join_seq. */
	uint64_t n = h.join_seq;
	s->cl->synced = true;
	struct pending_event *ev = s->cl->pend_head;
	s->cl->pend_head = s->cl->pend_tail = NULL;
	while (ev) {
		struct pending_event *next = ev->next;
		if (n <= h.seq) {
			if (!ev->is_msg) {
				free(s->cl->members);
				s->cl->members = ev->members;
				s->cl->nr_members = ev->nr_members;
				ev->members = NULL;
				/* vnodes set on members (dog node vnodes set) are in
				 * the newest epoch, not in the driver's records */
				if (s->cl->nr_epochs)
					group_carry_vnodes(s->cl->members, s->cl->nr_members,
							   s->cl->epochs[s->cl->nr_epochs - 1].nodes,
							   s->cl->epochs[s->cl->nr_epochs - 1].nr_nodes);
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
	sd_notice("joined the cluster at epoch %u with %zu VDIs%s", s->cl->epoch, s->cl->vdis.nr,
		  offer ? "; offering this node's newer state" : "");
	if (offer) {
		group_post_broadcast(s, offer, olen, 0);
		free(offer);
	}
}
