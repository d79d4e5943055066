/* convert.c - vdi alter-copy: the per-object rewrite into the new layout at the object's
 * coordinator, and the background converter that drives it. */
#include <pthread.h>
#include <stddef.h>

#include "sheep/gateway/gateway_priv.h"

/*
 * Which of its two ids a data object is at is decided by gw_resolve
 * (gateway.c). gateway_convert_local moves one object, under the
 * coordinator's object lock that every write of it takes too. See
 * docs/architecture.md, "Changing a VDI's policy".
 */

/* Remove o everywhere and forget its version in this coordinator's cache:
 * the id may be written afresh by a later conversion. */
static int gw_op_drop(struct gw_obj *o, void *arg)
{
	int ret = gw_op_remove(o, arg);
	gw_vcache_put(o, 0, 0, false, NULL);
	return ret;
}

struct whole_arg {
	void *buf;
	uint32_t len;
	bool create;
	uint64_t mixed_since;
};

static int gw_op_read_whole(struct gw_obj *o, void *arg)
{
	struct whole_arg *a = arg;
	a->len = o->obj_size;
	a->buf = malloc(o->obj_size);
	if (!a->buf)
		return SD_RES_NO_MEM;
	int ret = o->ec ? gw_read_ec(o, a->buf, o->obj_size, 0)
			: gw_read_copies(o, a->buf, o->obj_size, 0);
	if (ret != SD_RES_SUCCESS) {
		free(a->buf);
		a->buf = NULL;
	}
	return ret;
}

static int gw_op_write_whole(struct gw_obj *o, void *arg)
{
	struct whole_arg *a = arg;
	if (a->len != o->obj_size)
		return SD_RES_INVALID_PARMS;
	return gw_write_once(o, a->buf, a->len, 0, a->create, &a->mixed_since);
}

static int gw_read_stored(struct sheep *s, uint64_t oid, struct whole_arg *a)
{
	memset(a, 0, sizeof(*a));
	return gw_run(s, oid, gw_op_read_whole, a);
}

/*
 * Move data object oid (client form) of a converting VDI to its other
 * id, here, as its write coordinator, under its object lock. Crash-safe:
 * the new layout is written whole and acknowledged (durable on every
 * reachable holder) before the old one is removed, and a readable new
 * layout is the object from the moment it exists (gw_resolve), so a
 * crash anywhere leaves the old layout, or the new one (possibly with
 * the old still to remove, or with positions to fill: both redone here
 * on the next pass). SUCCESS also when there is nothing to move.
 */
int gateway_convert_local(struct sheep *s, uint64_t oid)
{
	oid &= ~SD_LAYOUT_BIT;
	if (!is_data_obj(oid))
		return SD_RES_INVALID_PARMS;
	gw_obj_lock(s, oid, true);
	struct vdi_entry e;
	int ret = SD_RES_SUCCESS;
	struct whole_arg a = {0};
	if (group_vdi_find(s, oid_to_vid(oid), &e) || e.deleted || !(e.flags & VDI_F_CONVERTING))
		goto out;
	uint64_t home, other;
	gw_ids(&e, oid, &home, &other);
	ret = gw_stored_exists(s, other);
	if (ret == SD_RES_SUCCESS) {
		/* Already the object. If the old layout is still there, an
		 * earlier pass died between the two steps: the new one may
		 * lack positions, so it is rewritten whole from itself. */
		ret = gw_stored_exists(s, home);
		if (ret == SD_RES_NO_OBJ) {
			ret = SD_RES_SUCCESS;
			goto out;
		}
		if (ret != SD_RES_SUCCESS || (ret = gw_read_stored(s, other, &a)) != SD_RES_SUCCESS)
			goto out;
		a.create = false;
		ret = gw_run(s, other, gw_op_write_whole, &a);
	} else if (ret == SD_RES_NO_OBJ) {
		ret = gw_read_stored(s, home, &a);
		if (ret == SD_RES_NO_OBJ) {
			ret = SD_RES_SUCCESS; /* never written: nothing to move */
			goto out;
		}
		if (ret != SD_RES_SUCCESS)
			goto out;
		a.create = true;
		ret = gw_run(s, other, gw_op_write_whole, &a);
		if (ret != SD_RES_SUCCESS) {
			/* Leave no unreadable remains that a later probe would
			 * have to weigh: the old layout is still the object. */
			int r = gw_run(s, other, gw_op_drop, NULL);
			if (r != SD_RES_SUCCESS && r != SD_RES_NO_OBJ)
				sd_warn("%016llx: removing a partial conversion failed: %s",
					(unsigned long long)other, sd_strerror((uint32_t)r));
		}
	}
	if (ret != SD_RES_SUCCESS)
		goto out;
	ret = gw_run(s, home, gw_op_drop, NULL);
	if (ret == SD_RES_NO_OBJ)
		ret = SD_RES_SUCCESS;
out:
	free(a.buf);
	gw_obj_unlock(s, oid, true);
	if (ret != SD_RES_SUCCESS)
		sd_warn("%016llx: conversion failed: %s", (unsigned long long)oid,
			sd_strerror((uint32_t)ret));
	return ret;
}

/* ---- the converter: one thread per sheep; the first member of the view
 * drives every conversion, one object at a time, each at its coordinator ---- */

struct gw_converter {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, started;
	bool kicked;	   /* kicked since the thread last looked */
	uint32_t delay_ms; /* SHEEP_TEST_CONVERT_MS: test hook, a pause per object */
};

static bool conv_stopping(struct sheep *s)
{
	struct gw_converter *c = s->gw->conv;
	pthread_mutex_lock(&c->mu);
	bool stop = c->stop;
	pthread_mutex_unlock(&c->mu);
	return stop || atomic_load(&s->stopping);
}

/* Sleep ms (0: until kicked or stopped); a kick ends any sleep. */
static void conv_sleep(struct sheep *s, uint32_t ms)
{
	struct gw_converter *c = s->gw->conv;
	struct timespec ts;
	sd_realtime_in((uint64_t)ms * 1000000ull, &ts);
	pthread_mutex_lock(&c->mu);
	if (!c->stop && !c->kicked) {
		if (ms)
			pthread_cond_timedwait(&c->cond, &c->mu, &ts);
		else
			pthread_cond_wait(&c->cond, &c->mu);
	}
	c->kicked = false;
	pthread_mutex_unlock(&c->mu);
}

void gateway_converter_kick(struct sheep *s)
{
	struct gw_converter *c = s->gw ? s->gw->conv : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->kicked = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
}

/* Is this sheep the one that drives conversions (first member of the view)? */
static bool conv_leader(struct sheep *s)
{
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return false;
	bool me = v->nr_nodes && sd_node_eq(&v->nodes[0], &s->self);
	sheep_view_put(v);
	return me && !group_waiting(s);
}

/* PROGRESS or DONE of the conversion e stands in (its target and layout
 * generation, so that the table ignores it once that one is over). */
static int conv_post(struct sheep *s, const struct vdi_entry *e, uint8_t op, uint64_t mark)
{
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_ALTER;
	m.vid = e->vid;
	m.snapshot = op;
	m.size = mark;
	m.copies = e->alt_copies;
	m.policy = e->alt_policy;
	m.shift = (e->flags & VDI_F_GEN) ? 1 : 0;
	return group_cluster_op(s, &m, sizeof(m), NULL);
}

/* The one object move, at its write coordinator (forwarded as a
 * PEER_GW_WRITE with SD_PEER_FLAG_CONVERT), retried while the epoch moves. */
int gateway_convert_obj(struct sheep *s, uint64_t oid)
{
	uint64_t deadline = sd_now_ns() + (uint64_t)GW_RETRY_MS * 1000000ull;
	for (;;) {
		struct sheep_view *v = sheep_view_get(s);
		if (!v)
			return SD_RES_WAIT_FOR_JOIN;
		struct gw_obj o;
		int ret = gw_obj_init(s, v, oid, &o);
		const struct sd_node *coord = NULL;
		for (int i = 0; ret == SD_RES_SUCCESS && i < o.width && !coord; i++)
			coord = o.holder[i];
		if (ret != SD_RES_SUCCESS || !coord || sd_node_eq(coord, &s->self) ||
		    s->opt.test_local_writes) {
			sheep_view_put(v);
			return ret == SD_RES_SUCCESS ? gateway_convert_local(s, oid) : ret;
		}
		struct peer_call c;
		memset(&c, 0, sizeof(c));
		c.node = coord;
		c.req.opcode = SD_OP_PEER_GW_WRITE;
		c.req.epoch = v->epoch;
		c.req.obj.oid = oid;
		c.req.flags = SD_PEER_FLAG_CONVERT;
		peer_fanout(s, &c, 1);
		uint32_t epoch = v->epoch;
		sheep_view_put(v);
		ret = c.result;
		if (!gw_res_is_retry(ret) && ret != SD_RES_NETWORK_ERROR)
			return ret;
		if (atomic_load(&s->stopping) || sd_now_ns() > deadline)
			return ret;
		struct sheep_view *nv = sheep_view_wait_change(s, epoch, 1000);
		if (nv)
			sheep_view_put(nv);
	}
}

/* Write the target policy into the inode header (what dog vdi list and
 * clients read), before the table says the conversion is over. */
static int conv_inode_policy(struct sheep *s, const struct vdi_entry *e)
{
	uint64_t ino = vid_to_vdi_oid(e->vid);
	uint8_t b[3];
	uint32_t off = (uint32_t)offsetof(struct sd_inode, copy_policy);
	int ret = gateway_read_obj(s, ino, b, sizeof(b), off);
	if (ret != SD_RES_SUCCESS)
		return ret;
	b[0] = e->alt_policy; /* copy_policy, store_policy, nr_copies */
	b[2] = e->alt_copies;
	return gateway_write_obj(s, ino, b, sizeof(b), off, false);
}

#define CONV_MAP_CHUNK 4096u

/*
 * The converter's last pass: every data object of the VDI that some
 * member still holds at its home id is moved. The pass over the object
 * map misses an object whose creation had chosen the home id before the
 * conversion started and whose map entry was written after the map was
 * read; the stores do not. SUCCESS when none is left (after at most
 * three rounds).
 */
static int conv_census(struct sheep *s, const struct vdi_entry *e)
{
	uint64_t mask = SD_TYPE_MASK | SD_VDI_MASK | SD_LAYOUT_BIT;
	uint64_t value =
	    ((uint64_t)e->vid << VDI_SPACE_SHIFT) | ((e->flags & VDI_F_GEN) ? SD_LAYOUT_BIT : 0);
	for (int round = 0; round < 3; round++) {
		uint64_t *oids;
		size_t nr;
		int ret = gateway_list_objs(s, mask, value, &oids, &nr);
		if (ret != SD_RES_SUCCESS)
			return ret;
		if (nr == 0) {
			free(oids);
			return SD_RES_SUCCESS;
		}
		sd_info("VDI %s (%x): %zu object(s) still at their old layout", e->name, e->vid,
			nr);
		for (size_t i = 0; i < nr && ret == SD_RES_SUCCESS; i++)
			ret = gateway_convert_obj(s, oids[i] & ~SD_LAYOUT_BIT);
		free(oids);
		if (ret != SD_RES_SUCCESS)
			return ret;
	}
	return SD_RES_AGAIN;
}

/*
 * Convert VDI vid from its mark to its end, then end the conversion.
 * Returns when done, when this sheep stops leading, or on an error (the
 * next pass goes on from the mark: every step is idempotent).
 */
static void conv_vdi(struct sheep *s, uint32_t vid)
{
	struct gw_converter *c = s->gw->conv;
	struct vdi_entry e, first;
	if (group_vdi_find(s, vid, &e) || !(e.flags & VDI_F_CONVERTING))
		return;
	first = e;
	uint32_t nr = (uint32_t)((e.size + (1ull << e.shift) - 1) >> e.shift);
	uint32_t *map = malloc(CONV_MAP_CHUNK * sizeof(*map));
	if (!map)
		return;
	uint64_t last_post = sd_now_ns();
	uint32_t idx = e.conv_mark;
	sd_info("VDI %s (%x): converting objects %u..%u", e.name, vid, idx, nr);
	while (idx < nr) {
		uint32_t n = SD_MIN(CONV_MAP_CHUNK, nr - idx);
		int ret = gateway_read_obj(s, vid_to_vdi_oid(vid), map, n * (uint32_t)sizeof(*map),
					   (uint32_t)sd_inode_vid_offset(idx));
		if (ret != SD_RES_SUCCESS)
			goto out;
		for (uint32_t k = 0; k < n; k++, idx++) {
			if (conv_stopping(s) || !conv_leader(s))
				goto out;
			if (group_vdi_find(s, vid, &e) || e.deleted ||
			    !(e.flags & VDI_F_CONVERTING) || e.alt_copies != first.alt_copies ||
			    e.alt_policy != first.alt_policy ||
			    ((e.flags ^ first.flags) & VDI_F_GEN))
				goto out;
			if (map[k] != vid)
				continue; /* unallocated, or its parent's (never converted) */
			if (c->delay_ms)
				conv_sleep(s, c->delay_ms);
			if ((ret = gateway_convert_obj(s, vid_to_data_oid(vid, idx))) !=
			    SD_RES_SUCCESS)
				goto out;
			if (sd_now_ns() - last_post > 500000000ull) {
				conv_post(s, &first, CMSG_ALTER_PROGRESS, idx + 1);
				last_post = sd_now_ns();
			}
		}
	}
	if (conv_census(s, &first) != SD_RES_SUCCESS ||
	    conv_post(s, &first, CMSG_ALTER_PROGRESS, nr) != SD_RES_SUCCESS ||
	    conv_inode_policy(s, &first) != SD_RES_SUCCESS)
		goto out;
	if (conv_post(s, &first, CMSG_ALTER_DONE, 0) == SD_RES_SUCCESS)
		sd_info("VDI %s (%x): conversion done", e.name, vid);
out:
	free(map);
}

static int conv_collect(struct sheep *s, uint32_t *vids, int max)
{
	int n = 0;
	struct vdi_table *t = group_vdis_lock(s, NULL);
	for (int b = 0; b < VDI_HASH_BUCKETS && n < max; b++)
		for (struct vdi_entry *e = t->buckets[b]; e && n < max; e = e->hnext)
			if ((e->flags & VDI_F_CONVERTING) && !e->deleted)
				vids[n++] = e->vid;
	group_vdis_unlock(s);
	return n;
}

/*
 * The converter's loop. Only the leader (the view's first member) with a
 * VDI converting works, and looks again every 300 ms while any is; every
 * other sheep, and the leader once none is left, sleeps until kicked
 * (gateway_converter_kick): by the cluster message that starts a
 * conversion, or by a new view, which may make this sheep the leader
 * (the old one left, or a restarted cluster resumes one). An idle sheep
 * is not woken for it.
 */
static void *conv_main(void *arg)
{
	struct sheep *s = arg;
	pthread_setname_np(pthread_self(), "sd_convert");
	uint32_t wait_ms = 300; /* the first look: conversions left by a restart */
	while (!conv_stopping(s)) {
		conv_sleep(s, wait_ms);
		if (conv_stopping(s))
			break;
		uint32_t vids[64];
		int n = conv_collect(s, vids, 64);
		bool lead = n && conv_leader(s);
		for (int i = 0; lead && i < n && !conv_stopping(s); i++)
			conv_vdi(s, vids[i]);
		wait_ms = lead ? 300 : 0;
	}
	return NULL;
}

int gateway_converter_start(struct sheep *s)
{
	struct gw_converter *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cond, NULL);
	const char *d = getenv("SHEEP_TEST_CONVERT_MS");
	c->delay_ms = d ? (uint32_t)strtoul(d, NULL, 10) : 0;
	s->gw->conv = c;
	if (pthread_create(&c->thread, NULL, conv_main, s) == 0)
		c->started = true;
	return c->started ? 0 : -EAGAIN;
}

void gateway_converter_stop(struct sheep *s)
{
	struct gw_converter *c = s->gw ? s->gw->conv : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mu);
	if (c->started)
		pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
	s->gw->conv = NULL;
}
