/* layout.c - one object's layout in one view: holders, probing rounds, version choice, shadows at earlier holders, range decode. */
#include "lib/sd_wire.h"
#include "sheep/gateway/gateway_priv.h"
#include "sheep/store/store.h"

/* ---- object setup ---- */

int gw_obj_init(struct sheep *s, struct sheep_view *v, uint64_t oid, struct gw_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->s = s;
	o->v = v;
	o->oid = oid;
	uint32_t vid = oid_to_vid(oid);
	struct vdi_entry e;
	if (group_vdi_find(s, vid, &e))
		return SD_RES_NO_VDI;
	/* A data object under the other id than its VDI's home one is in the
	 * alternative layout (vdi alter-copy, convert.c). */
	uint8_t cp = e.copy_policy, nc = e.nr_copies;
	bool other = (oid & SD_TYPE_MASK) == 0 &&
		     ((oid & SD_LAYOUT_BIT) != 0) != ((e.flags & VDI_F_GEN) != 0);
	if (other) {
		if (!e.alt_copies)
			return SD_RES_NO_OBJ;
		cp = e.alt_policy;
		nc = e.alt_copies;
	}
	struct ec_policy pol;
	if (ec_policy_from_wire(cp, nc, &pol))
		return SD_RES_INVALID_PARMS;
	/* The inode and attributes keep the width they were created with. */
	int meta_width = e.meta_width ? e.meta_width : (int)ec_policy_width(&pol);
	o->frozen = (e.flags & VDI_F_SNAPSHOT) != 0;
	if (is_vdi_obj(oid)) {
		if (oid & ~(VDI_BIT | SD_VDI_MASK))
			return SD_RES_INVALID_PARMS;
		/* The inode is kept as full copies, one per fragment of the policy. */
		o->obj_size = SD_INODE_SIZE;
		o->width = meta_width;
		o->pol = (struct ec_policy){.d = 0, .p = 0, .copies = (uint8_t)o->width};
		o->ec = false;
	} else if ((oid & SD_TYPE_MASK) == 0 || (oid & SD_TYPE_MASK) == VMSTATE_BIT) {
		if (e.shift < SD_MIN_BLOCK_SIZE_SHIFT || e.shift > SD_MAX_BLOCK_SIZE_SHIFT)
			return SD_RES_INVALID_PARMS;
		o->obj_size = 1u << e.shift;
		o->pol = pol;
		o->ec = ec_policy_is_ec(&pol);
		o->width = (int)ec_policy_width(&pol);
		if ((oid_to_idx(oid) & ~(uint32_t)SD_LAYOUT_BIT) >= SD_INODE_DATA_INDEX &&
		    !(oid & VMSTATE_BIT))
			return SD_RES_INVALID_PARMS;
	} else if ((oid & SD_TYPE_MASK) == VDI_ATTR_BIT) {
		/* A VDI attribute (vdi setattr): full copies, as the inode. */
		o->obj_size = SD_ATTR_OBJ_SIZE + SD_MAX_VDI_ATTR_VALUE_LEN;
		o->width = meta_width;
		o->pol = (struct ec_policy){.d = 0, .p = 0, .copies = (uint8_t)o->width};
		o->ec = false;
	} else {
		return SD_RES_NO_SUPPORT;
	}
	if (o->width < 1 || o->width > GW_MAX_WIDTH - 1)
		return SD_RES_INVALID_PARMS;
	o->meta_policy = o->ec ? ec_policy_byte(&o->pol) : 0;
	o->meta_copies = (uint8_t)o->width;
	if (o->ec) {
		o->d = o->pol.d;
		o->p = o->pol.p;
		o->frag_size = ec_frag_size(&o->pol, o->obj_size);
		if (ec_codec_get(o->pol.d, o->pol.p, EC_BACKEND_ISAL, &o->codec))
			return SD_RES_SYSTEM_ERROR;
	} else {
		o->d = 1;
		o->frag_size = o->obj_size;
	}
	if (!v->ring || v->nr_data == 0)
		return SD_RES_NO_STORE;
	int out[GW_MAX_WIDTH];
	o->pkey = group_placement_key(s, oid);
	int found = ring_locate(v->ring, o->pkey, o->width, out);
	if (found < 0)
		return SD_RES_SYSTEM_ERROR;
	for (int i = 0; i < o->width; i++)
		o->holder[i] = (i < found && out[i] >= 0 && (size_t)out[i] < v->nr_data)
				       ? &v->data[out[i]]
				       : NULL;
	memcpy(o->loc, o->holder, sizeof(o->loc));
	return SD_RES_SUCCESS;
}

void gw_call_init(struct gw_obj *o, struct peer_call *c, int idx, uint8_t opcode)
{
	memset(c, 0, sizeof(*c));
	c->node = o->loc[idx];
	c->req.opcode = opcode;
	c->req.epoch = o->v->epoch;
	c->req.obj.oid = o->oid;
	c->req.obj.ec_index = (uint8_t)idx;
	if (opcode == SD_OP_PEER_GEN) {
		c->rbuf = &c->gen;
		c->rcap = sizeof(c->gen);
		if (o->recovering)
			c->req.flags |= SD_PEER_FLAG_RECOVERING;
	}
}

/* What call c (a read, a version probe or a generation probe) says of its
 * fragment. A generation probe may find only a pending write. */
void gw_call_state(const struct peer_call *c, struct frag_state *st)
{
	memset(st, 0, sizeof(*st));
	st->res = c->node ? c->result : SD_RES_NETWORK_ERROR;
	st->version = st->real = c->version;
	/* A read or version probe says whether an early-ack write is pending. */
	st->pend_early = c->node && (c->rsp_flags & PEER_RSP_EARLY);
	if (c->node && (c->rsp_flags & PEER_RSP_LC)) {
		st->lc_valid = 1;
		memcpy(st->lc_delta, c->lc_delta, sizeof(st->lc_delta));
	}
	if (c->req.opcode != SD_OP_PEER_GEN || c->result != SD_RES_SUCCESS)
		return;
	if (c->rlen < sizeof(c->gen) || !c->gen.has_frag)
		st->res = SD_RES_NO_OBJ;
	st->write_id = c->gen.write_id;
	st->has_pend = c->rlen >= sizeof(c->gen) && c->gen.has_pend;
	st->pend_version = c->gen.pend_version;
	st->pend_id = c->gen.pend_id;
	st->pend_age_ms = c->gen.pend_age_ms;
	st->pend_early = st->has_pend && c->gen.pend_early;
	st->touched = c->gen.touched;
	st->base = c->gen.base;
	st->pend_touched = st->has_pend ? c->gen.pend_touched : 0;
	st->pend_base = c->gen.pend_base;
	st->lc_valid = c->rlen >= sizeof(c->gen) && c->gen.has_frag && c->gen.lc_valid == 1;
	memcpy(st->lc_delta, c->gen.lc_delta, sizeof(st->lc_delta));
	st->pend_lc_valid = st->has_pend && c->gen.pend_lc_valid == 1;
	memcpy(st->pend_lc_delta, c->gen.pend_lc_delta, sizeof(st->pend_lc_delta));
}

/*
 * The group-commit hint (store_wal_hint). A holder holds a sync while its
 * coordinators' hints say durable records are coming to it, so a hint
 * counts, per destination node, the writes coordinated here that will
 * send that node a durable record and have not sent their prepares yet
 * (they are reading old data, or probing): counted from gw_coming_begin
 * (gw_write_once) to their first fan-out of peer writes. A count of every
 * write coming (as before session 19) made a holder that a range update
 * only sends a lazy version bump hold its sync for records that would not
 * come (4:2 QD32: 1.10x IOPS with per-node counts, README "Session 19").
 * Slots hash the node's address: two nodes sharing one only over-count,
 * which holds a sync no longer than the count of every write did.
 * Thread-local: a write runs on one thread; a nested write (a settle's
 * bump) counts nothing of its own.
 */
static __thread struct {
	struct gw_state *gw; /* whose counts (one sheep per process, but tests) */
	int n;
	uint8_t slot[GW_MAX_WIDTH];
} tl_coming;

/* FNV-1a (32-bit) of address and port, the port folded in last as one
 * word so that it reaches the top byte (the coordinator's tag): byte-wise
 * FNV (lib/fnv.h) leaves the top byte of sheep on one host differing by
 * port alike, and their hints would share one slot on every holder. */
static uint32_t node_hash(const struct sd_node *n)
{
	uint32_t h = 2166136261u;
	for (const char *p = n->addr; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return (h ^ n->port) * 16777619u;
}

static unsigned hint_slot(const struct sd_node *n)
{
	return node_hash(n) % GW_HINT_SLOTS;
}

int gw_durable_targets(const struct gw_obj *o, uint32_t off, uint32_t len, bool whole,
		       bool *out)
{
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = o->ec && !whole ? ec_map_range(&o->pol, o->obj_size, off, len, ext, GW_MAX_WIDTH)
				 : 0;
	/* Everywhere but the unchanged data fragments of a range update (a
	 * range no write takes counts everywhere too). */
	for (int i = 0; i < o->width; i++)
		out[i] = ne <= 0 || i >= o->d;
	for (int k = 0; k < ne; k++)
		out[ext[k].idx] = true;
	int n = 0;
	for (int i = 0; i < o->width; i++)
		n += out[i];
	return n;
}

void gw_coming_begin(struct gw_obj *o, uint32_t off, uint32_t len, bool whole)
{
	if (!o->s->gw || tl_coming.n)
		return;
	bool to[GW_MAX_WIDTH];
	gw_durable_targets(o, off, len, whole, to);
	tl_coming.gw = o->s->gw;
	for (int i = 0; i < o->width; i++) {
		if (!to[i] || !o->loc[i])
			continue;
		unsigned k = hint_slot(o->loc[i]);
		__atomic_add_fetch(&o->s->gw->coming[k], 1, __ATOMIC_ACQ_REL);
		tl_coming.slot[tl_coming.n++] = (uint8_t)k;
	}
}

/* The write's record for n is on its way (a data prepare sent ahead of
 * the others, PEER_WH_OLD): n's count drops, the others' stay until the
 * rest go out. */
static void gw_coming_end_node(const struct sd_node *n)
{
	unsigned k = hint_slot(n);
	for (int i = 0; i < tl_coming.n; i++) {
		if (tl_coming.slot[i] != k)
			continue;
		__atomic_sub_fetch(&tl_coming.gw->coming[k], 1, __ATOMIC_ACQ_REL);
		tl_coming.slot[i] = tl_coming.slot[--tl_coming.n];
		return;
	}
}

void gw_coming_end(void)
{
	for (int i = 0; i < tl_coming.n; i++)
		__atomic_sub_fetch(&tl_coming.gw->coming[tl_coming.slot[i]], 1, __ATOMIC_ACQ_REL);
	tl_coming.n = 0;
}

int gw_coming_for(struct sheep *s, const struct sd_node *n)
{
	if (!s->gw)
		return 0;
	return __atomic_load_n(&s->gw->coming[hint_slot(n)], __ATOMIC_ACQUIRE);
}

static void ride_attach(struct gw_obj *o, struct peer_call *c);

/*
 * How long the holders may hold a sync for this coordinator's records
 * (STORE_HINT_PATIENCE units): with at least two other writes in flight
 * here (a client keeps a queue), a quarter of a write's usual time, so
 * that a hold adds little to it; nothing for a lone write (QD1), which no
 * hold would help, nor with one other: at QD4 a 4:2 write, which passes
 * two holds (the data prepare, then the parities'), lost 7% of its IOPS
 * to them (README "Session 25").
 */
#define GW_PATIENT_WRITES 3
static uint32_t gw_patience(struct sheep *s)
{
	if (!s->gw || __atomic_load_n(&s->gw->writing, __ATOMIC_ACQUIRE) < GW_PATIENT_WRITES)
		return 0;
	uint64_t p =
	    __atomic_load_n(&s->gw->write_ns, __ATOMIC_RELAXED) / 4 / STORE_HINT_PATIENCE_UNIT_NS;
	return (uint32_t)SD_MIN(p, STORE_HINT_PATIENCE_MAX);
}

/* peer_fanout, counting the calls that reached no peer: a node may have
 * died before the view says so (see gw_run). */
void gw_set_hints(struct gw_obj *o, struct peer_call *calls, int n, bool ahead)
{
	bool writes = false;
	for (int i = 0; i < n && !writes; i++)
		writes = calls[i].node && calls[i].req.opcode == SD_OP_PEER_WRITE;
	if (!writes)
		return;
	if (ahead) { /* only these go now: the others still count as coming */
		for (int i = 0; i < n; i++)
			if (calls[i].node && calls[i].req.opcode == SD_OP_PEER_WRITE)
				gw_coming_end_node(calls[i].node);
	} else {
		gw_coming_end(); /* this write is on its way now */
	}
	uint32_t tag = node_hash(&o->s->self) >> 24; /* this coordinator's */
	uint32_t patience = gw_patience(o->s);
	for (int i = 0; i < n; i++) {
		if (calls[i].req.opcode != SD_OP_PEER_WRITE || !calls[i].node || calls[i].sent)
			continue;
		int coming = gw_coming_for(o->s, calls[i].node);
		calls[i].whdr.hint = tag << 24 | patience << STORE_HINT_PATIENCE_SHIFT |
				     (uint32_t)SD_MIN(SD_MAX(coming, 0), (int)STORE_HINT_COMING);
		ride_attach(o, &calls[i]);
	}
}

/* The commits queued for c's holder (commitq.c) ride on c, a write about
 * to leave: no message of their own (a call to this node applies them
 * before it is served, as a remote holder does). */
static void ride_attach(struct gw_obj *o, struct peer_call *c)
{
	/* A call to this node with PEER_WH_OLD is not served at all
	 * (peer_call_first): nothing may ride on it. */
	if (c->ride || !c->has_whdr || !gw_commitq_any(o->s) ||
	    ((c->whdr.flags & PEER_WH_OLD) && sd_node_eq(c->node, &o->s->self)))
		return;
	struct peer_commit_ent e[SD_PEER_RIDE_MAX];
	int got = gw_commitq_take(o->s, c->node, c->req.epoch, e, SD_PEER_RIDE_MAX);
	struct peer_commit_ent *r = got ? malloc((size_t)got * sizeof(*r)) : NULL;
	if (!r) /* none, or no memory: they are lost as a failed batch's are (commitq.c) */
		return;
	memcpy(r, e, (size_t)got * sizeof(*r));
	c->ride = r;
	c->whdr.nr_commits = (uint32_t)got;
}

void gw_ride_release(struct peer_call *calls, int n)
{
	for (int i = 0; i < n; i++) {
		free((void *)calls[i].ride);
		calls[i].ride = NULL;
		calls[i].whdr.nr_commits = 0;
	}
}

void gw_fanout(struct gw_obj *o, struct peer_call *calls, int n)
{
	gw_set_hints(o, calls, n, false);
	peer_fanout(o->s, calls, n);
	gw_ride_release(calls, n);
	for (int i = 0; i < n; i++)
		o->neterr += calls[i].node && calls[i].result == SD_RES_NETWORK_ERROR;
}

bool gw_res_is_retry(int res)
{
	return res == SD_RES_OLD_NODE_VER || res == SD_RES_NEW_NODE_VER || res == SD_RES_AGAIN;
}


/* Probe every holder's generation (version, write id, pending write).
 * Returns a retry code if any holder asks for one, else SUCCESS. */
int gw_probe(struct gw_obj *o, struct frag_state *st)
{
	/* This sheep's own commits still queued for the object would show
	 * as writes pending to settle: send them first. */
	gw_commitq_flush(o->s, o->oid);
	struct peer_call calls[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++)
		gw_call_init(o, &calls[i], i, SD_OP_PEER_GEN);
	uint32_t won;
	return gw_round(o, calls, st, &won);
}

/* The version a read must use: the highest held by at least `need`
 * fragments. 0 when none qualifies. *vmax gets the highest seen at all. */
uint64_t gw_choose_version(const struct frag_state *st, int n, int need, uint64_t *vmax)
{
	uint64_t best = 0, top = 0;
	for (int i = 0; i < n; i++) {
		if (st[i].res != SD_RES_SUCCESS)
			continue;
		if (st[i].version > top)
			top = st[i].version;
		if (st[i].version <= best)
			continue;
		int cnt = 0;
		for (int j = 0; j < n; j++)
			if (st[j].res == SD_RES_SUCCESS && st[j].version == st[i].version)
				cnt++;
		if (cnt >= need)
			best = st[i].version;
	}
	if (vmax)
		*vmax = top;
	return best;
}

bool gw_all_absent(const struct frag_state *st, int n)
{
	for (int i = 0; i < n; i++)
		if (st[i].res != SD_RES_NO_OBJ && st[i].res != SD_RES_NETWORK_ERROR)
			return false;
	return true;
}

/* A live data-holding member with n's address, or NULL. */
const struct sd_node *gw_live_node(const struct sheep_view *v, const struct sd_node *n)
{
	for (size_t i = 0; i < v->nr_data; i++)
		if (v->data[i].port == n->port && !strcmp(v->data[i].addr, n->addr))
			return &v->data[i];
	return NULL;
}

/*
 * Until recovery has moved every fragment, fragment i may be on a node
 * that held position i in an earlier epoch, and the current holder may
 * hold a stale copy (it was down while the object was written). So each
 * round of probes also asks the live earlier holders of each position;
 * calls[o->width..] are filled here with those version probes.
 */
int gw_add_shadows(struct gw_obj *o, struct peer_call *calls, int *pos_of)
{
	int n = o->width;
	/* Recovery finished everywhere at this epoch: no earlier holder
	 * keeps anything the current ones lack. */
	if (__atomic_load_n(&o->v->settled, __ATOMIC_ACQUIRE))
		return n;
	for (int h = 0; h < o->v->nr_hist; h++) {
		const struct sheep_ring *r = o->v->hist[h];
		if (!r->ring)
			continue;
		int out[GW_MAX_WIDTH];
		int found = ring_locate(r->ring, o->pkey, o->width, out);
		for (int i = 0; i < o->width && i < found; i++) {
			if (out[i] < 0 || (size_t)out[i] >= r->nr_data)
				continue;
			const struct sd_node *cand = gw_live_node(o->v, &r->data[out[i]]);
			bool dup = !cand || cand == o->holder[i];
			for (int c = o->width; c < n && !dup; c++)
				dup = pos_of[c] == i && calls[c].node == cand;
			if (dup)
				continue;
			uint8_t op = calls[0].req.opcode == SD_OP_PEER_GEN ? SD_OP_PEER_GEN
									 : SD_OP_PEER_READ;
			gw_call_init(o, &calls[n], i, op);
			calls[n].node = cand;
			pos_of[n++] = i;
		}
	}
	return n;
}

/*
 * One fan-out: calls[0..width-1] (set up by the caller for the current
 * locations) plus the shadow probes. st[i] gets the best answer for
 * fragment i (highest version); where a shadow beat the current location,
 * loc[i] moves there and the bit is set in *won (the caller's data for that
 * fragment is then not valid). Returns a retry code or SUCCESS.
 */
int gw_round(struct gw_obj *o, struct peer_call *calls, struct frag_state *st,
		    uint32_t *won)
{
	int pos_of[GW_MAX_CALLS];
	int n = gw_add_shadows(o, calls, pos_of);
	gw_fanout(o, calls, n);
	int ret = SD_RES_SUCCESS;
	*won = 0;
	for (int i = 0; i < o->width; i++) {
		gw_call_state(&calls[i], &st[i]);
		if (gw_res_is_retry(st[i].res))
			ret = st[i].res;
	}
	for (int c = 0; c < n; c++)
		if (calls[c].node && ((calls[c].rsp_flags & PEER_RSP_EARLY) ||
				      (calls[c].req.opcode == SD_OP_PEER_GEN &&
				       calls[c].result == SD_RES_SUCCESS && calls[c].gen.pend_early)))
			o->saw_early = true;
	for (int c = o->width; c < n; c++) {
		int i = pos_of[c];
		if (gw_res_is_retry(calls[c].result))
			ret = calls[c].result;
		struct frag_state sh;
		gw_call_state(&calls[c], &sh);
		if (sh.res != SD_RES_SUCCESS)
			continue;
		if (st[i].res == SD_RES_SUCCESS && st[i].version >= sh.version)
			continue;
		st[i] = sh;
		o->loc[i] = calls[c].node;
		*won |= 1u << i;
	}
	if (*won)
		sd_debug("%016llx: fragments 0x%x found at earlier holders", (unsigned long long)o->oid,
			 *won);
	gw_lc_align(o, st);
	return ret;
}

/*
 * Reconstruct [off, off+len) of the fragments in want[] (nr_want of them)
 * from d other fragments at version ver. good[i] says which fragments may
 * be used; out[k] receives want[k]'s bytes. Returns SUCCESS, EIO when fewer
 * than d usable fragments answer, or a retry code.
 */
int gw_decode_range(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
			   const uint8_t *want, int nr_want, uint32_t off, uint32_t len,
			   uint8_t **out)
{
	bool bad[GW_MAX_WIDTH] = {0};
	for (int k = 0; k < nr_want; k++)
		bad[want[k]] = true;
	uint8_t *bufs[GW_MAX_WIDTH] = {0};
	int ret = SD_RES_EIO;
	for (int attempt = 0; attempt < o->width; attempt++) {
		int have_idx[GW_MAX_WIDTH];
		int nh = 0;
		for (int i = 0; i < o->width && nh < o->d; i++)
			if (!bad[i] && st[i].res == SD_RES_SUCCESS && st[i].version == ver)
				have_idx[nh++] = i;
		if (nh < o->d) {
			ret = SD_RES_EIO;
			break;
		}
		struct peer_call calls[GW_MAX_WIDTH];
		for (int k = 0; k < nh; k++) {
			if (!bufs[k]) {
				bufs[k] = malloc(len ? len : 1);
				if (!bufs[k]) {
					ret = SD_RES_NO_MEM;
					goto out;
				}
			}
			gw_call_init(o, &calls[k], have_idx[k], SD_OP_PEER_READ);
			calls[k].req.obj.offset = off;
			calls[k].rbuf = bufs[k];
			calls[k].rcap = len;
		}
		gw_fanout(o, calls, nh);
		bool again = false;
		for (int k = 0; k < nh; k++) {
			if (gw_res_is_retry(calls[k].result)) {
				ret = calls[k].result;
				goto out;
			}
			if (calls[k].result == SD_RES_SUCCESS &&
			    calls[k].version != st[have_idx[k]].real) {
				ret = SD_RES_AGAIN; /* a write slipped in: start over */
				goto out;
			}
			if (calls[k].result != SD_RES_SUCCESS || calls[k].rlen != len) {
				bad[have_idx[k]] = true;
				again = true;
			}
		}
		if (again)
			continue;
		int want_idx[GW_MAX_WIDTH];
		for (int k = 0; k < nr_want; k++)
			want_idx[k] = want[k];
		int r = ec_decode(o->codec, len, have_idx, (const uint8_t *const *)bufs, nr_want,
				  want_idx, out);
		ret = r ? SD_RES_EIO : SD_RES_SUCCESS;
		if (r)
			sd_err("decode of %016llx failed: %s", (unsigned long long)o->oid,
			       ec_strerror(r));
		break;
	}
out:
	for (int k = 0; k < GW_MAX_WIDTH; k++)
		free(bufs[k]);
	return ret;
}
