/* group.c - the driver's callbacks on the loop thread (membership, deliver, quorum), group_init/start/stop, and read-only queries of the cluster state. */
#include "lib/oid.h"
#include "lib/sd_wire.h"
#include "sheep/cluster/group_priv.h"

void group_after_unlock(struct sheep *s, bool wipe)
{
	if (wipe)
		group_store_wipe(s);
}

void group_on_membership(void *arg, const struct sd_node *members, size_t nr,
			  const struct sd_node *changed, bool joined)
{
	struct sheep *s = arg;
	pthread_mutex_lock(&s->cl->state_lock);
	if (!s->cl->synced && group_may_found(s, members, nr)) {
		/* Nobody to learn from (alone, or the oldest left and no member
		 * synced: found.c): this node's own state is the cluster's, and
		 * the other members are its joiners. */
		uint64_t n = group_found_joiners(s, members, nr);
		group_pending_clear(s);
		s->cl->synced = true;
		s->cl->seq = n;

		/* A formatted node restarting alone waits for the nodes of its
		 * newest epoch, as Sheepdog's does (apply.c). */
		s->cl->waiting = s->cl->ctime && s->cl->nr_epochs;
		if (nr == 1)
			sd_notice("alone in the cluster: starting from local state (epoch %u)", s->cl->epoch);
		else
			sd_notice("no synced member left, %zu others wait for the cluster state: the "
				  "oldest member starts from local state (epoch %u) and syncs them",
				  nr - 1, s->cl->epoch);
		if (s->cl->waiting)
			sd_notice("waiting for the %u nodes of epoch %u to be back: no I/O is served "
				  "until then (dog cluster recover force starts without them)",
				  s->cl->epochs[s->cl->nr_epochs - 1].nr_nodes, s->cl->epochs[s->cl->nr_epochs - 1].epoch);
		group_apply_membership(s, members, nr, changed, joined);
		pthread_mutex_unlock(&s->cl->state_lock);
		return;
	}
	if (!s->cl->synced) {
		struct pending_event *p = calloc(1, sizeof(*p));
		if (p)
			p->members = malloc(nr * sizeof(struct sd_node));
		if (!p || !p->members) {
			sd_emerg("out of memory buffering a membership change");
			free(p);
		} else {
			memcpy(p->members, members, nr * sizeof(struct sd_node));
			p->nr_members = nr;
			p->sender = *changed;
			p->joined = joined;
			if (s->cl->pend_head || (joined && sd_node_eq(changed, &s->self)))
				group_pending_add(s, p);
			else
				group_pending_free(p); /* before our own join: not ours to replay */
		}
		pthread_mutex_unlock(&s->cl->state_lock);
		return;
	}
	group_apply_membership(s, members, nr, changed, joined);
	pthread_mutex_unlock(&s->cl->state_lock);
}

void group_on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len)
{
	struct sheep *s = arg;
	bool wipe = false;
	struct cmsg_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, msg, sizeof(h));
	/* Test hook SHEEP_TEST_APPLY_DELAY_MS: another sheep's message is
	 * applied this much later, as by a busy member (tests/func/032). */
	if (s->opt.test_apply_delay_ms > 0 && !sd_node_eq(sender, &s->self))
		usleep((useconds_t)s->opt.test_apply_delay_ms * 1000);
	pthread_mutex_lock(&s->cl->state_lock);
	if (!s->cl->synced) {
		if (h.type == CMSG_SNAPSHOT && len >= sizeof(struct snap_hdr) && s->cl->pend_head) {
			struct snap_hdr sh;
			memcpy(&sh, msg, sizeof(sh));
			if (sd_node_eq(&sh.target, &s->self)) {
				group_apply_snapshot(s, msg, len, &wipe);
				s->cl->seq++; /* the snapshot message itself */
				pthread_mutex_unlock(&s->cl->state_lock);
				group_after_unlock(s, wipe);
				return;
			}
		}
		if (s->cl->pend_head) {
			struct pending_event *p = calloc(1, sizeof(*p));
			if (p && (p->msg = malloc(len))) {
				memcpy(p->msg, msg, len);
				p->len = len;
				p->is_msg = 1;
				p->sender = *sender;
				group_pending_add(s, p);
			} else {
				free(p);
				sd_emerg("out of memory buffering a cluster message");
			}
		}
		pthread_mutex_unlock(&s->cl->state_lock);
		return;
	}
	group_apply_msg(s, sender, msg, len, &wipe);
	pthread_mutex_unlock(&s->cl->state_lock);
	group_after_unlock(s, wipe);
}

void group_on_quorum(void *arg, bool quorate)
{
	struct sheep *s = arg;
	pthread_mutex_lock(&s->cl->state_lock);
	s->cl->quorate = quorate;
	if (!quorate) {
		/* The driver leaves the group and joins again when quorum
		 * returns; our state may have diverged by then, so learn it
		 * anew from the quorate side's snapshot, as a joiner does. */
		s->cl->synced = false;
		group_pending_clear(s);
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	if (quorate)
		sd_notice("cluster quorum regained");
	else
		sd_err("cluster quorum lost: writes are refused until it returns");
}

/* Still a member, but cut off from the membership service: refuse I/O
 * without dropping state (zookeeper with no server answering). */
static void group_on_suspend(void *arg, bool suspended)
{
	struct sheep *s = arg;
	pthread_mutex_lock(&s->cl->state_lock);
	s->cl->quorate = !suspended;
	pthread_mutex_unlock(&s->cl->state_lock);
	if (suspended)
		sd_err("cluster membership service unreachable: I/O is refused until it returns");
	else
		sd_notice("cluster membership service reachable again: serving I/O");
}

static const struct cluster_events group_events = {
	.membership = group_on_membership,
	.deliver = group_on_deliver,
	.quorum = group_on_quorum,
	.suspend = group_on_suspend,
};

void group_on_driver_fd(int fd, uint32_t events, void *arg)
{
	struct sheep *s = arg;
	int ret = s->cl->driver->dispatch(s->cl->cctx);
	if (ret < 0 && ret != -EAGAIN) {
		sd_emerg("cluster driver %s failed: %s; leaving", s->cl->driver->name, strerror(-ret));
		atomic_store(&s->stopping, true);
		sd_loop_stop(s->loop);
	}
}

int group_init(struct sheep *s)
{
	s->cl = calloc(1, sizeof(*s->cl));
	if (!s->cl)
		return -ENOMEM;
	pthread_mutex_init(&s->cl->state_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&s->cl->state_cond, &ca);
	pthread_condattr_destroy(&ca);
	s->cl->quorate = true;
	s->cl->recovery_enabled = true;
	int ret = vdi_table_init(&s->cl->vdis);
	if (ret)
		return ret;
	return group_load_state(s);
}

int group_start(struct sheep *s)
{
	const char *spec = s->opt.cluster ? s->opt.cluster : "local";
	s->cl->driver = cluster_driver_find(spec);
	if (!s->cl->driver) {
		sd_err("unknown cluster driver '%s' (built: %s)", spec, cluster_driver_names());
		return -EINVAL;
	}
	int ret = s->cl->driver->init(&s->cl->cctx, cluster_driver_options(spec), &s->self, &group_events, s);
	if (ret) {
		sd_err("cluster driver %s: init failed: %s", s->cl->driver->name, strerror(-ret));
		s->cl->cctx = NULL;
		return ret;
	}
	int fd = s->cl->driver->get_fd(s->cl->cctx);
	if (fd >= 0 && (ret = sd_loop_add(s->loop, fd, EPOLLIN, group_on_driver_fd, s)))
		return ret;
	/* A restarted sheep may race the others' reaping of its dead self
	 * (local driver: -EAGAIN); try a few times before giving up. */
	for (int i = 0; i < 25; i++) {
		ret = s->cl->driver->join(s->cl->cctx);
		if (ret != -EAGAIN && ret != -EBUSY)
			break;
		usleep(200000);
	}
	if (ret)
		sd_err("cluster driver %s: join failed: %s", s->cl->driver->name, strerror(-ret));
	return ret;
}

void group_stop(struct sheep *s)
{
	if (s->cl->cctx) {
		int fd = s->cl->driver->get_fd(s->cl->cctx);
		if (fd >= 0)
			sd_loop_del(s->loop, fd);
		s->cl->driver->leave(s->cl->cctx);
		s->cl->driver->destroy(s->cl->cctx);
		s->cl->cctx = NULL;
	}
	pthread_mutex_lock(&s->cl->state_lock);
	group_pending_clear(s);
	while (s->cl->joiners)
		group_remove_joiner(s, &s->cl->joiners->node);
	pthread_cond_broadcast(&s->cl->state_cond);
	pthread_mutex_unlock(&s->cl->state_lock);
}

int group_vdi_find(struct sheep *s, uint32_t vid, struct vdi_entry *out)
{
	pthread_mutex_lock(&s->cl->state_lock);
	struct vdi_entry *e = vdi_table_find(&s->cl->vdis, vid);
	if (e)
		*out = *e;
	pthread_mutex_unlock(&s->cl->state_lock);
	return e ? 0 : -ENOENT;
}

int group_vdi_lookup(struct sheep *s, const char *name, const char *tag, uint32_t snapid,
		     struct vdi_entry *out)
{
	pthread_mutex_lock(&s->cl->state_lock);
	int ret;
	if (!s->cl->synced || s->cl->waiting) {
		ret = SD_RES_WAIT_FOR_JOIN;
	} else if (!s->cl->ctime) {
		ret = SD_RES_WAIT_FOR_FORMAT;
	} else {
		struct vdi_entry *e = vdi_table_by_name(&s->cl->vdis, name, tag, snapid);
		if (e) {
			*out = *e;
			ret = SD_RES_SUCCESS;
		} else if ((tag && *tag) || snapid) {
			ret = vdi_table_by_name(&s->cl->vdis, name, NULL, 0) ? SD_RES_NO_TAG
									 : SD_RES_NO_VDI;
			if (snapid && ret == SD_RES_NO_TAG)
				ret = SD_RES_NO_VDI;
		} else {
			ret = SD_RES_NO_VDI;
		}
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	return ret;
}

uint64_t group_placement_key(struct sheep *s, uint64_t oid)
{
	if (oid & (VDI_BIT | VDI_ATTR_BIT | VDI_BTREE_BIT | LEDGER_BIT))
		return oid; /* inodes and metadata: placed by their own id */
	uint32_t vid = oid_to_vid(oid);
	pthread_mutex_lock(&s->cl->state_lock);
	uint32_t root = vdi_table_root(&s->cl->vdis, vid);
	pthread_mutex_unlock(&s->cl->state_lock);
	/* Both layouts of an object (SD_LAYOUT_BIT) have the same holders. */
	return (oid & ~(SD_VDI_MASK | SD_LAYOUT_BIT)) | ((uint64_t)root << VDI_SPACE_SHIFT);
}

bool group_formatted(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	bool f = s->cl->ctime != 0 && !s->cl->waiting;
	pthread_mutex_unlock(&s->cl->state_lock);
	return f;
}

bool group_strict(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	bool strict = s->cl->fmt_flags & SD_CLUSTER_FLAG_STRICT;
	pthread_mutex_unlock(&s->cl->state_lock);
	return strict;
}

bool group_waiting(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	bool w = s->cl->waiting;
	pthread_mutex_unlock(&s->cl->state_lock);
	return w;
}

int group_force_start(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	bool waiting = s->cl->synced && s->cl->waiting;
	pthread_mutex_unlock(&s->cl->state_lock);
	if (!waiting)
		return -1;
	struct cmsg_hdr h = {.type = CMSG_START, .len = sizeof(h)};
	return group_cluster_op(s, &h, sizeof(h), NULL);
}

int group_cluster_info(struct sheep *s, void *buf, size_t len, int *status)
{
	pthread_mutex_lock(&s->cl->state_lock);
	*status = atomic_load(&s->stopping) ? 2 : s->cl->waiting ? 3 : (s->cl->ctime ? 0 : 1);
	size_t n = 0;
	for (size_t i = s->cl->nr_epochs; i > 0 && (n + 1) * SD_EPOCH_LOG_SIZE <= len; i--, n++) {
		const struct epoch_rec *r = &s->cl->epochs[i - 1];
		char *p = (char *)buf + n * SD_EPOCH_LOG_SIZE;
		struct sd_epoch_log_hdr h;
		memset(&h, 0, sizeof(h));
		if (n == 0) { /* the cluster-wide fields, in the first record only */
			h.ctime = s->cl->ctime << 32;
			h.disable_recovery = !s->cl->recovery_enabled;
			h.nr_copies = s->cl->def_copies;
			h.copy_policy = s->cl->def_policy;
			h.block_size_shift = s->cl->def_shift;
			/* the client's format flags, as Sheepdog shows them:
			 * not the sheep's own (SD_CLUSTER_FLAG_JOIN_ANCHORS) */
			h.flags = s->cl->fmt_flags & (uint16_t)~SD_CLUSTER_FLAG_JOIN_ANCHORS;
			snprintf(h.drv_name, sizeof(h.drv_name), "plain");
		}
		h.time = r->time;
		h.epoch = r->epoch;
		h.nr_nodes = SD_MIN(r->nr_nodes, (uint32_t)SD_WIRE_MAX_NODES);
		memcpy(p, &h, sizeof(h));
		for (uint32_t k = 0; k < h.nr_nodes; k++) {
			struct sd_wire_node w;
			sd_node_to_wire(&r->nodes[k], &w);
			if (s->cl->fmt_vnodes && !r->nodes[k].gateway &&
			    r->nodes[k].fixed_vnodes != SD_NODE_VNODES_SET)
				w.nr_vnodes = (uint16_t)s->cl->fmt_vnodes; /* format -V: what the ring used */
			memcpy(p + sizeof(h) + (size_t)k * sizeof(w), &w, sizeof(w));
		}
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	return (int)(n * SD_EPOCH_LOG_SIZE);
}

struct release_arg {
	struct sheep *s;
	uint64_t owner;
};

void group_release_owner(struct sheep *s, uint64_t owner)
{
	/* Loop thread: broadcast unlocks for what this owner holds; no wait. */
	pthread_mutex_lock(&s->cl->state_lock);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = s->cl->vdis.buckets[b]; e; e = e->hnext)
			if (e->locked && group_lock_is_sender(e, &s->self, owner)) {
				struct cmsg_vdi m;
				memset(&m, 0, sizeof(m));
				m.h.type = CMSG_UNLOCK_VDI;
				m.h.len = sizeof(m);
				/* Nobody waits for it; a copy sent again is the
				 * same operation (cop.c resend_work). */
				m.h.token = cop_new_token(s);
				m.vid = e->vid;
				m.lock_owner = owner;
				group_post_broadcast(s, &m, sizeof(m), 0);
			}
	pthread_mutex_unlock(&s->cl->state_lock);
}
