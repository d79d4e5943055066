/* gateway.c - the gateway's entry points: each object operation runs under the current view and is retried while the epoch moves; VDI lookup, locks and bitmap. */
#include "sheep/gateway/gateway_priv.h"

/*
 * Run op under the current view, retrying while the epoch moves. A caller
 * holding the object's lock says so in h: the lock is let go while this
 * waits between attempts. A retry waits for something else to happen to
 * the object, and that may need the lock: recovery of a fragment this
 * node holds answers the gateway AGAIN (it goes first) and may have to
 * settle the object (gateway_settle_obj) before it can finish; holding
 * the lock through the wait deadlocked the two until the write gave up
 * (EIO after GW_RETRY_MS, func/123). Letting go between attempts is safe:
 * every attempt starts over from what the holders have, as a write by
 * another coordinator would (an attempt's left-overs, a pending write,
 * are decided by whoever meets them first).
 */
int gw_run_held(struct sheep *s, uint64_t oid, gw_op_fn fn, void *arg, const struct gw_held *h)
{
	uint64_t deadline = sd_now_ns() + (uint64_t)GW_RETRY_MS * 1000000ull;
	int ret, dead_waits = 0;
	for (int attempt = 0;; attempt++) {
		struct sheep_view *v = sheep_view_get(s);
		if (!v)
			return SD_RES_WAIT_FOR_JOIN;
		if (group_waiting(s)) {
			/* After a whole-cluster stop this node may hold old data:
			 * coordinate nothing until the last epoch's members are back. */
			sheep_view_put(v);
			return SD_RES_WAIT_FOR_JOIN;
		}
		struct gw_obj o;
		ret = gw_obj_init(s, v, oid, &o);
		if (ret == SD_RES_SUCCESS)
			ret = fn(&o, arg);
		uint32_t epoch = v->epoch;
		sheep_view_put(v);
		/* Failed because peers of this view did not answer: they may be
		 * dead and not yet out of the view. Wait for the next epoch and
		 * redo the operation under its placement, a bounded number of
		 * times. */
		if ((ret == SD_RES_EIO || ret == SD_RES_NETWORK_ERROR) && o.neterr &&
		    dead_waits < GW_DEAD_WAITS && !atomic_load(&s->stopping) && sd_now_ns() < deadline) {
			dead_waits++;
			sd_info("%016llx: %s with %d peer(s) unreachable at epoch %u; retrying under "
				"the next epoch", (unsigned long long)oid, sd_strerror(ret), o.neterr,
				epoch);
			ret = SD_RES_OLD_NODE_VER;
		}
		if (!gw_res_is_retry(ret) || atomic_load(&s->stopping) || sd_now_ns() > deadline)
			break;
		sd_debug("%016llx: %s at epoch %u, retrying", (unsigned long long)oid, sd_strerror(ret),
			 epoch);
		if (h)
			gw_obj_unlock(s, h->oid, h->write);
		if (ret == SD_RES_OLD_NODE_VER) {
			struct sheep_view *nv = sheep_view_wait_change(s, epoch, 1000);
			if (nv)
				sheep_view_put(nv);
		} else if (ret == SD_RES_NEW_NODE_VER) {
			usleep(20000);
		} else if (attempt > 3) {
			usleep(1000u * (unsigned)SD_MIN(attempt, 50));
		}
		if (h) {
			gw_obj_lock(s, h->oid, h->write);
			/* vdi alter-copy may have moved the object meanwhile. */
			if (h->resolve &&
			    (ret = gw_resolve(s, h->oid, h->write, &oid, NULL)) != SD_RES_SUCCESS)
				break;
		}
	}
	if (gw_res_is_retry(ret))
		ret = ret == SD_RES_AGAIN ? SD_RES_EIO : SD_RES_NETWORK_ERROR;
	return ret;
}

int gw_run(struct sheep *s, uint64_t oid, gw_op_fn fn, void *arg)
{
	return gw_run_held(s, oid, fn, arg, NULL);
}

/* ---- vdi alter-copy: which of its two ids a data object is stored under ----
 *
 * A VDI's data object idx is stored under one of two ids: its home id
 * (the client's id, with SD_LAYOUT_BIT when VDI_F_GEN is set) in the VDI's
 * policy, or the other id in the alternative policy (vdi_entry.alt_*).
 * Outside a conversion every object is at home. During one, an object is
 * at its other id (the target layout) once that id is there, else at
 * home; an object created during a conversion is created at the other id.
 */

struct exists_arg {
	bool readable;
};

/* Is o there: a readable generation (d fragments, or one copy, of one
 * version), or an early-acknowledged write pending on it (acknowledged
 * before its commits: it is the object already)? A plain prepared write
 * is not: the converter's create of the new layout is one until it
 * commits, and readers must keep reading the old layout meanwhile. Sets
 * a->readable; SUCCESS or a retry code. */
static int gw_op_exists(struct gw_obj *o, void *arg)
{
	struct exists_arg *a = arg;
	struct frag_state st[GW_MAX_CALLS];
	memset(st, 0, sizeof(st));
	int ret = gw_probe(o, st);
	if (ret != SD_RES_SUCCESS)
		return ret;
	bool pend = false;
	for (int i = 0; i < o->width; i++)
		pend |= st[i].has_pend && st[i].pend_early;
	a->readable = pend || gw_choose_version(st, o->width, o->ec ? o->d : 1, NULL) != 0;
	return SD_RES_SUCCESS;
}

/* SUCCESS (readable), NO_OBJ (nothing readable), or an error. */
int gw_stored_exists(struct sheep *s, uint64_t oid)
{
	struct exists_arg a = {0};
	int ret = gw_run(s, oid, gw_op_exists, &a);
	if (ret != SD_RES_SUCCESS)
		return ret;
	return a.readable ? SD_RES_SUCCESS : SD_RES_NO_OBJ;
}

/* The home and the other id of data object oid (client form) of VDI e. */
void gw_ids(const struct vdi_entry *e, uint64_t oid, uint64_t *home, uint64_t *other)
{
	uint64_t plain = oid & ~SD_LAYOUT_BIT;
	*home = (e->flags & VDI_F_GEN) ? plain | SD_LAYOUT_BIT : plain;
	*other = *home ^ SD_LAYOUT_BIT;
}

int gw_resolve(struct sheep *s, uint64_t oid, bool write, uint64_t *out, bool *converting)
{
	*out = oid;
	if (converting)
		*converting = false;
	if (!is_data_obj(oid) || (oid & SD_LAYOUT_BIT))
		return SD_RES_SUCCESS;
	struct vdi_entry e;
	if (group_vdi_find(s, oid_to_vid(oid), &e) || e.deleted)
		return SD_RES_SUCCESS; /* the caller's call says what is wrong */
	uint64_t home, other;
	gw_ids(&e, oid, &home, &other);
	*out = home;
	if (!(e.flags & VDI_F_CONVERTING))
		return SD_RES_SUCCESS;
	if (converting)
		*converting = true;
	/* Not the mark (progress only): an object the converter passed may
	 * still be at home for a moment (see conv_census in convert.c). */
	int r = gw_stored_exists(s, other);
	if (r == SD_RES_SUCCESS) {
		*out = other;
		return r;
	}
	if (r != SD_RES_NO_OBJ || !write)
		return r == SD_RES_NO_OBJ ? SD_RES_SUCCESS : r;
	/* A write: an object that is nowhere yet is created in the target
	 * layout, so the converter never has to come back for it. */
	r = gw_stored_exists(s, home);
	if (r == SD_RES_NO_OBJ)
		*out = other;
	return r == SD_RES_NO_OBJ ? SD_RES_SUCCESS : r;
}

bool gw_vdi_layered(struct sheep *s, uint64_t oid)
{
	struct vdi_entry e;
	if (!is_data_obj(oid) || group_vdi_find(s, oid_to_vid(oid), &e))
		return false;
	return (e.flags & (VDI_F_GEN | VDI_F_CONVERTING)) || (oid & SD_LAYOUT_BIT);
}

struct rw_args {
	void *buf;
	uint32_t len, off;
	bool create;
	uint64_t mixed_since; /* when this write first found a newer partial generation */
};

int gw_check_range(struct gw_obj *o, uint32_t len, uint32_t off)
{
	if ((uint64_t)off + len > o->obj_size)
		return SD_RES_INVALID_PARMS;
	return SD_RES_SUCCESS;
}

int gw_op_read(struct gw_obj *o, void *arg)
{
	struct rw_args *a = arg;
	int ret = gw_check_range(o, a->len, a->off);
	if (ret != SD_RES_SUCCESS || a->len == 0)
		return ret;
	/* Commits this sheep still has queued for the object (it coordinates
	 * its writes) would make the read meet their writes pending and
	 * settle them: send them first. Only EC writes have any. */
	if (o->ec)
		gw_commitq_flush(o->s, o->oid);
	return o->ec ? gw_read_ec(o, a->buf, a->len, a->off) : gw_read_copies(o, a->buf, a->len, a->off);
}

int gw_op_write(struct gw_obj *o, void *arg)
{
	struct rw_args *a = arg;
	int ret = gw_check_range(o, a->len, a->off);
	if (ret != SD_RES_SUCCESS)
		return ret;
	/* A snapshot's objects and object map never change; its inode header
	 * (tag, snap_ctime) may. Checked here, at the object's coordinator,
	 * under its object lock. */
	if (o->frozen && (!is_vdi_obj(o->oid) || (uint64_t)a->off + a->len > SD_INODE_HEADER_SIZE))
		return SD_RES_READONLY;
	/* One write, even across two data fragments (its parity range then
	 * spans most of a fragment): split in two, a crash between the
	 * halves would leave the range half new. */
	return gw_write_once(o, a->buf, a->len, a->off, a->create, &a->mixed_since);
}

int gw_op_remove(struct gw_obj *o, void *arg)
{
	(void)arg;
	/* Remove every copy: at the current holders and at the live earlier
	 * holders, so an old fragment cannot resurface. */
	struct peer_call calls[GW_MAX_CALLS];
	int pos_of[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++)
		gw_call_init(o, &calls[i], i, SD_OP_PEER_REMOVE);
	int n = gw_add_shadows(o, calls, pos_of);
	for (int c = o->width; c < n; c++)
		calls[c].req.opcode = SD_OP_PEER_REMOVE;
	gw_fanout(o, calls, n);
	int removed = 0, failed = 0;
	for (int c = 0; c < n; c++) {
		if (gw_res_is_retry(calls[c].result))
			return calls[c].result;
		if (calls[c].result == SD_RES_SUCCESS)
			removed++;
		else if (calls[c].node && calls[c].result != SD_RES_NO_OBJ)
			failed++;
	}
	if (removed)
		return SD_RES_SUCCESS;
	return failed ? SD_RES_EIO : SD_RES_NO_OBJ;
}

int gw_op_settle(struct gw_obj *o, void *arg)
{
	(void)arg;
	if (!o->ec)
		return SD_RES_SUCCESS;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	o->recovering = true; /* only recovery settles objects this way */
	int ret = gw_probe(o, st);
	if (ret != SD_RES_SUCCESS)
		return ret;
	/* An early-ack write pending anywhere, even over a readable
	 * generation: decided now (SUCCESS), or to be once it is old (AGAIN:
	 * gw_run asks again); EIO: none. Recovery must not copy a fragment's
	 * older generation away from under a write that will be committed. */
	if ((ret = gw_settle_early(o, st)) != SD_RES_EIO)
		return ret;
	uint64_t vmax;
	if (gw_choose_version(st, o->width, o->d, &vmax) != 0 || vmax == 0)
		return SD_RES_NO_OBJ; /* readable as it is, or absent: nothing to finish */
	return gw_settle(o, st);
}

int gateway_settle_obj(struct sheep *s, uint64_t oid)
{
	gw_obj_lock(s, oid, true);
	int ret = gw_run(s, oid, gw_op_settle, NULL); /* a stored id (recovery's) */
	gw_obj_unlock(s, oid, true);
	return ret;
}

int gateway_read_obj(struct sheep *s, uint64_t oid, void *buf, uint32_t len, uint32_t off)
{
	struct rw_args a = {.buf = buf, .len = len, .off = off};
	const struct gw_held held = {.oid = oid, .write = false, .resolve = true};
	gw_obj_lock(s, oid, false);
	int ret;
	/* Under vdi alter-copy the object may move between the lookup of its
	 * id and the read: its coordinator converts it without this reader's
	 * lock, and removes the old layout fragment by fragment (NO_OBJ, or
	 * EIO with fewer than d left). Look again. */
	for (int attempt = 0;; attempt++) {
		uint64_t at;
		bool converting;
		ret = gw_resolve(s, oid, false, &at, &converting);
		if (ret == SD_RES_SUCCESS)
			ret = gw_run_held(s, at, gw_op_read, &a, &held);
		if ((ret != SD_RES_NO_OBJ && ret != SD_RES_EIO) || !converting || attempt >= 4)
			break;
		usleep(10000u << attempt);
	}
	gw_obj_unlock(s, oid, false);
	return ret;
}

int gateway_write_local(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
			bool create)
{
	struct rw_args a = {.buf = (void *)buf, .len = len, .off = off, .create = create};
	const struct gw_held held = {.oid = oid, .write = true, .resolve = true};
	uint64_t t0 = sd_now_ns();
	if (s->gw)
		__atomic_add_fetch(&s->gw->writing, 1, __ATOMIC_ACQ_REL);
	gw_obj_lock(s, oid, true);
	/* Here, as the coordinator, under the object lock that vdi
	 * alter-copy's move of this object takes too (convert.c). */
	uint64_t at;
	int ret = gw_resolve(s, oid, true, &at, NULL);
	if (ret == SD_RES_SUCCESS)
		ret = gw_run_held(s, at, gw_op_write, &a, &held);
	gw_obj_unlock(s, oid, true);
	if (s->gw) {
		__atomic_sub_fetch(&s->gw->writing, 1, __ATOMIC_ACQ_REL);
		/* a moving average; a lost update between racing writers is harmless */
		uint64_t dt = sd_now_ns() - t0,
			 avg = __atomic_load_n(&s->gw->write_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&s->gw->write_ns, avg ? (7 * avg + dt) / 8 : dt, __ATOMIC_RELAXED);
	}
	return ret;
}

/*
 * Writes to one object are applied by one node at a time: its write
 * coordinator, the first holder of the current placement. A parity delta
 * computed by two gateways from the same old parity would lose one of the
 * updates; funnelling the writes through one node's object lock orders
 * them. The coordinator applies a forwarded write itself, never forwards.
 */
int gateway_write_obj(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
		      bool create)
{
	uint64_t deadline = sd_now_ns() + (uint64_t)GW_RETRY_MS * 1000000ull;
	for (;;) {
		struct sheep_view *v = sheep_view_get(s);
		if (!v)
			return SD_RES_WAIT_FOR_JOIN;
		struct gw_obj o;
		int ret = gw_obj_init(s, v, oid, &o);
		/* Strict (format -t), as Sheepdog's: no write with fewer zones
		 * than the policy is wide. */
		if (ret == SD_RES_SUCCESS && (int)v->nr_zones < o.width && group_strict(s)) {
			sheep_view_put(v);
			return SD_RES_HALT;
		}
		const struct sd_node *coord = NULL;
		for (int i = 0; ret == SD_RES_SUCCESS && i < o.width && !coord; i++)
			coord = o.holder[i];
		/* Test hook SHEEP_TEST_LOCAL_WRITES: every gateway coordinates
		 * its own writes, as two nodes whose views of the epoch differ
		 * both may for a moment (tests/func/108). */
		if (ret != SD_RES_SUCCESS || !coord || sd_node_eq(coord, &s->self) ||
		    s->opt.test_local_writes) {
			sheep_view_put(v);
			return gateway_write_local(s, oid, buf, len, off, create);
		}
		struct peer_call c;
		memset(&c, 0, sizeof(c));
		c.node = coord;
		c.req.opcode = SD_OP_PEER_GW_WRITE;
		c.req.epoch = v->epoch;
		c.req.obj.oid = oid;
		c.req.obj.offset = off;
		c.wbuf = buf;
		c.wlen = len;
		c.req.flags = SD_FLAG_CMD_WRITE | (create ? SD_PEER_FLAG_CREATE : 0);
		peer_fanout(s, &c, 1);
		uint32_t epoch = v->epoch;
		sheep_view_put(v);
		ret = c.result;
		if (!gw_res_is_retry(ret) && ret != SD_RES_NETWORK_ERROR)
			return ret;
		if (atomic_load(&s->stopping) || sd_now_ns() > deadline)
			return ret == SD_RES_NETWORK_ERROR ? ret : SD_RES_EIO;
		sd_debug("%016llx: forward to %s:%u: %s", (unsigned long long)oid, coord->addr,
			 coord->port, sd_strerror(ret));
		if (ret == SD_RES_NEW_NODE_VER) {
			usleep(20000);
		} else {
			/* coordinator gone or our view is old: wait for the next epoch */
			struct sheep_view *nv = sheep_view_wait_change(s, epoch, 1000);
			if (nv)
				sheep_view_put(nv);
		}
	}
}

struct locate_args {
	struct gateway_loc *out;
	int max, *width, *d;
	bool *ec;
};

static int gw_op_locate(struct gw_obj *o, void *arg)
{
	struct locate_args *a = arg;
	struct frag_state st[GW_MAX_CALLS];
	int ret = gw_probe(o, st);
	if (gw_res_is_retry(ret))
		return ret;
	*a->width = SD_MIN(o->width, a->max);
	*a->ec = o->ec;
	*a->d = o->d;
	for (int i = 0; i < *a->width; i++) {
		struct gateway_loc *l = &a->out[i];
		memset(l, 0, sizeof(*l));
		const struct sd_node *n = o->loc[i] ? o->loc[i] : o->holder[i];
		if (n)
			l->node = *n;
		l->present = st[i].res == SD_RES_SUCCESS;
		l->moved = o->loc[i] && o->loc[i] != o->holder[i];
		l->version = st[i].version;
	}
	return SD_RES_SUCCESS;
}

int gateway_locate_obj(struct sheep *s, uint64_t oid, struct gateway_loc *out, int max,
		       int *width, bool *ec, int *d)
{
	struct locate_args a = {out, max, width, d, ec};
	*width = 0;
	uint64_t at;
	int ret = gw_resolve(s, oid, false, &at, NULL);
	return ret == SD_RES_SUCCESS ? gw_run(s, at, gw_op_locate, &a) : ret;
}

int gateway_remove_obj(struct sheep *s, uint64_t oid)
{
	const struct gw_held held = {.oid = oid, .write = true};
	gw_obj_lock(s, oid, true);
	int ret = gw_run_held(s, oid, gw_op_remove, NULL, &held);
	/* A client's id of a VDI with two layouts: remove both (a deleted
	 * VDI's reclaim names what the stores list, and removes each). */
	if (is_data_obj(oid) && !(oid & SD_LAYOUT_BIT) && gw_vdi_layered(s, oid)) {
		int r = gw_run_held(s, oid | SD_LAYOUT_BIT, gw_op_remove, NULL, &held);
		if (ret == SD_RES_NO_OBJ || (ret == SD_RES_SUCCESS && r != SD_RES_NO_OBJ))
			ret = r;
	}
	gw_obj_unlock(s, oid, true);
	return ret;
}

int gateway_vdi_lookup(struct sheep *s, const char *name, uint32_t snapid, const char *tag,
		       uint32_t *vid)
{
	struct vdi_entry e;
	int ret = group_vdi_lookup(s, name, tag, snapid, &e);
	if (ret == SD_RES_SUCCESS)
		*vid = e.vid;
	return ret;
}

int gateway_vdi_lock(struct sheep *s, uint32_t vid, uint64_t owner)
{
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_LOCK_VDI;
	m.vid = vid;
	m.lock_owner = owner;
	return group_cluster_op(s, &m, sizeof(m), NULL);
}

int gateway_vdi_unlock(struct sheep *s, uint32_t vid, uint64_t owner)
{
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_UNLOCK_VDI;
	m.vid = vid;
	m.lock_owner = owner;
	return group_cluster_op(s, &m, sizeof(m), NULL);
}

int gateway_vdi_lock_held(struct sheep *s, uint32_t vid, uint64_t owner)
{
	struct vdi_entry e;
	if (group_vdi_find(s, vid, &e) || e.deleted)
		return SD_RES_NO_VDI;
	if (e.flags & VDI_F_SNAPSHOT)
		return SD_RES_SUCCESS;
	const struct sd_node *me = &s->self;
	bool mine = e.locked && e.lock_owner == owner && !strcmp(e.lock_addr, me->addr) &&
		    e.lock_port == me->port && e.lock_inc == me->incarnation;
	return mine ? SD_RES_SUCCESS : SD_RES_VDI_LOCKED;
}

int gateway_read_vdis(struct sheep *s, void *bitmap, size_t len)
{
	if (len < SD_NR_VDIS / 8)
		return SD_RES_INVALID_PARMS;
	struct group_status st;
	struct vdi_table *t = group_vdis_lock(s, &st);
	int ret = st.synced ? SD_RES_SUCCESS : SD_RES_WAIT_FOR_JOIN;
	if (ret == SD_RES_SUCCESS)
		memcpy(bitmap, t->bitmap, SD_NR_VDIS / 8);
	group_vdis_unlock(s);
	return ret;
}

struct nbd_server **gateway_nbd_slot(struct sheep *s)
{
	return &s->nbd;
}
