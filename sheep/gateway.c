/* gateway.c - object I/O through the cluster: placement, fan-out, EC encode/decode/delta, versions, ack rule. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/gateway.h"
#include "sheep/peer.h"
#include "sheep/sheep.h"

#define GW_MAX_WIDTH 32
#define GW_MAX_CALLS (GW_MAX_WIDTH * (SHEEP_VIEW_HIST + 1))
#define GW_RETRY_MS 30000
#define GW_DEAD_WAITS 3 /* retries after unreachable peers, each waiting <= 1 s for an epoch */

/*
 * How one object is laid out in one view: its policy, sizes and holders.
 * For EC, fragment i (0..d+p-1) is on holder[i]; for N copies, copy i is
 * on holder[i] and stored with idx i.
 */
struct gw_obj {
	struct sheep *s;
	struct sheep_view *v;
	uint64_t oid;
	struct ec_policy pol;
	bool ec;
	int d, p, width;
	uint32_t obj_size, frag_size;
	uint8_t meta_policy, meta_copies;
	const struct ec_codec *codec;
	const struct sd_node *holder[GW_MAX_WIDTH]; /* placement in the current epoch */
	const struct sd_node *loc[GW_MAX_WIDTH];    /* where the fragment is found */
	int neterr; /* peer calls of this attempt that found no live peer */
	bool acked_all; /* the last write reached every fragment */
};

/* What a probe or read learned about one fragment. */
struct frag_state {
	int res;          /* SD_RES_* (SUCCESS: the fragment is there) */
	uint64_t version;
	/* Generation probes (PEER_GEN) only: */
	uint64_t write_id; /* two-phase write that made this version (0: none) */
	bool has_pend;     /* a prepared write is pending on it */
	uint64_t pend_version, pend_id;
};

/* ---- per-object readers/writer lock, local to this gateway ---- */

struct obj_lock {
	uint64_t oid;
	int readers;
	int writer;
	int waiters;
	struct obj_lock *next;
};

static struct obj_lock *objlock_find(struct sheep *s, uint64_t oid)
{
	for (struct obj_lock *l = s->objlocks; l; l = l->next)
		if (l->oid == oid)
			return l;
	return NULL;
}

static void obj_lock(struct sheep *s, uint64_t oid, bool write)
{
	pthread_mutex_lock(&s->objlock_mu);
	struct obj_lock *l = objlock_find(s, oid);
	if (!l) {
		l = calloc(1, sizeof(*l));
		while (!l) {
			/* Out of memory: wait for others to free theirs. */
			pthread_mutex_unlock(&s->objlock_mu);
			usleep(1000);
			pthread_mutex_lock(&s->objlock_mu);
			l = calloc(1, sizeof(*l));
		}
		l->oid = oid;
		l->next = s->objlocks;
		s->objlocks = l;
	}
	l->waiters++;
	while (l->writer || (write && l->readers))
		pthread_cond_wait(&s->objlock_cond, &s->objlock_mu);
	l->waiters--;
	if (write)
		l->writer = 1;
	else
		l->readers++;
	pthread_mutex_unlock(&s->objlock_mu);
}

static void obj_unlock(struct sheep *s, uint64_t oid, bool write)
{
	pthread_mutex_lock(&s->objlock_mu);
	struct obj_lock *l = objlock_find(s, oid);
	if (write)
		l->writer = 0;
	else
		l->readers--;
	if (!l->writer && !l->readers && !l->waiters) {
		for (struct obj_lock **pp = &s->objlocks; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
		free(l);
	}
	pthread_cond_broadcast(&s->objlock_cond);
	pthread_mutex_unlock(&s->objlock_mu);
}

/* ---- version cache of the write coordinator ----
 *
 * Writes to an object are funnelled through one coordinator per epoch, so
 * after a write that reached every fragment the coordinator knows the
 * object's state: every fragment at that version, nothing pending. The
 * next write then skips the generation probe round. Every later step
 * still checks the version on each holder (expect_version, version of
 * every read), so a stale entry (a remove through another gateway, a
 * holder that lost its fragment) only makes that write fail and be
 * redone with a probe. */
#define GW_VCACHE_SLOTS 4096

struct gw_vcache_ent {
	uint64_t oid;
	uint64_t version; /* 0: empty */
	uint32_t epoch;
};

static struct gw_vcache_ent *vcache_slot(struct sheep *s, uint64_t oid)
{
	return &s->vcache[(oid * 0x9E3779B97F4A7C15ULL) >> 52];
}

/* The cached version of o's object at o's epoch, or 0. */
static uint64_t vcache_get(struct gw_obj *o)
{
	uint64_t v = 0;
	if (!o->s->vcache)
		return 0;
	pthread_mutex_lock(&o->s->vcache_mu);
	struct gw_vcache_ent *e = vcache_slot(o->s, o->oid);
	if (e->oid == o->oid && e->epoch == o->v->epoch)
		v = e->version;
	pthread_mutex_unlock(&o->s->vcache_mu);
	return v;
}

/* Remember version (0: forget) of o's object. */
static void vcache_put(struct gw_obj *o, uint64_t version)
{
	if (!o->s->vcache)
		return;
	pthread_mutex_lock(&o->s->vcache_mu);
	struct gw_vcache_ent *e = vcache_slot(o->s, o->oid);
	if (version)
		*e = (struct gw_vcache_ent){.oid = o->oid, .version = version, .epoch = o->v->epoch};
	else if (e->oid == o->oid)
		e->version = 0;
	pthread_mutex_unlock(&o->s->vcache_mu);
}

int gateway_init(struct sheep *s)
{
	pthread_mutex_init(&s->objlock_mu, NULL);
	pthread_cond_init(&s->objlock_cond, NULL);
	pthread_mutex_init(&s->vcache_mu, NULL);
	s->vcache = calloc(GW_VCACHE_SLOTS, sizeof(*s->vcache)); /* NULL: no cache */
	return peer_pool_init(s);
}

void gateway_fini(struct sheep *s)
{
	peer_pool_fini(s);
	free(s->vcache);
	s->vcache = NULL;
}

/* ---- object setup ---- */

static int gw_obj_init(struct sheep *s, struct sheep_view *v, uint64_t oid, struct gw_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->s = s;
	o->v = v;
	o->oid = oid;
	uint32_t vid = oid_to_vid(oid);
	struct vdi_entry e;
	if (group_vdi_find(s, vid, &e))
		return SD_RES_NO_VDI;
	struct ec_policy pol;
	if (ec_policy_from_wire(e.copy_policy, e.nr_copies, &pol))
		return SD_RES_INVALID_PARMS;
	if (is_vdi_obj(oid)) {
		if (oid & ~(VDI_BIT | SD_VDI_MASK))
			return SD_RES_INVALID_PARMS;
		/* The inode is kept as full copies, one per fragment of the policy. */
		o->obj_size = SD_INODE_SIZE;
		o->width = (int)ec_policy_width(&pol);
		o->pol = (struct ec_policy){.d = 0, .p = 0, .copies = (uint8_t)o->width};
		o->ec = false;
	} else if ((oid & SD_TYPE_MASK) == 0 || (oid & SD_TYPE_MASK) == VMSTATE_BIT) {
		if (e.shift < SD_MIN_BLOCK_SIZE_SHIFT || e.shift > SD_MAX_BLOCK_SIZE_SHIFT)
			return SD_RES_INVALID_PARMS;
		o->obj_size = 1u << e.shift;
		o->pol = pol;
		o->ec = ec_policy_is_ec(&pol);
		o->width = (int)ec_policy_width(&pol);
		if (oid_to_idx(oid) >= SD_INODE_DATA_INDEX && !(oid & VMSTATE_BIT))
			return SD_RES_INVALID_PARMS;
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
	int found = ring_locate(v->ring, oid, o->width, out);
	if (found < 0)
		return SD_RES_SYSTEM_ERROR;
	for (int i = 0; i < o->width; i++)
		o->holder[i] = (i < found && out[i] >= 0 && (size_t)out[i] < v->nr_data)
				       ? &v->data[out[i]]
				       : NULL;
	memcpy(o->loc, o->holder, sizeof(o->loc));
	return SD_RES_SUCCESS;
}

static void call_init(struct gw_obj *o, struct peer_call *c, int idx, uint8_t opcode)
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
	}
}

/* What call c (a read, a version probe or a generation probe) says of its
 * fragment. A generation probe may find only a pending write. */
static void call_state(const struct peer_call *c, struct frag_state *st)
{
	memset(st, 0, sizeof(*st));
	st->res = c->node ? c->result : SD_RES_NETWORK_ERROR;
	st->version = c->version;
	if (c->req.opcode != SD_OP_PEER_GEN || c->result != SD_RES_SUCCESS)
		return;
	if (c->rlen < sizeof(c->gen) || !c->gen.has_frag)
		st->res = SD_RES_NO_OBJ;
	st->write_id = c->gen.write_id;
	st->has_pend = c->rlen >= sizeof(c->gen) && c->gen.has_pend;
	st->pend_version = c->gen.pend_version;
	st->pend_id = c->gen.pend_id;
}

/* peer_fanout, counting the calls that reached no peer: a node may have
 * died before the view says so (see gw_run). */
static void gw_fanout(struct gw_obj *o, struct peer_call *calls, int n)
{
	peer_fanout(o->s, calls, n);
	for (int i = 0; i < n; i++)
		o->neterr += calls[i].node && calls[i].result == SD_RES_NETWORK_ERROR;
}

static bool res_is_retry(int res)
{
	return res == SD_RES_OLD_NODE_VER || res == SD_RES_NEW_NODE_VER || res == SD_RES_AGAIN;
}

static int gw_round(struct gw_obj *o, struct peer_call *calls, struct frag_state *st,
		    uint32_t *won);
static int gw_settle(struct gw_obj *o, const struct frag_state *st);

/* Probe every holder's generation (version, write id, pending write).
 * Returns a retry code if any holder asks for one, else SUCCESS. */
static int gw_probe(struct gw_obj *o, struct frag_state *st)
{
	struct peer_call calls[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++)
		call_init(o, &calls[i], i, SD_OP_PEER_GEN);
	uint32_t won;
	return gw_round(o, calls, st, &won);
}

/* The version a read must use: the highest held by at least `need`
 * fragments. 0 when none qualifies. *vmax gets the highest seen at all. */
static uint64_t choose_version(const struct frag_state *st, int n, int need, uint64_t *vmax)
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

static bool all_absent(const struct frag_state *st, int n)
{
	for (int i = 0; i < n; i++)
		if (st[i].res != SD_RES_NO_OBJ && st[i].res != SD_RES_NETWORK_ERROR)
			return false;
	return true;
}

/* A live data-holding member with n's address, or NULL. */
static const struct sd_node *live_node(const struct sheep_view *v, const struct sd_node *n)
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
static int add_shadows(struct gw_obj *o, struct peer_call *calls, int *pos_of)
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
		int found = ring_locate(r->ring, o->oid, o->width, out);
		for (int i = 0; i < o->width && i < found; i++) {
			if (out[i] < 0 || (size_t)out[i] >= r->nr_data)
				continue;
			const struct sd_node *cand = live_node(o->v, &r->data[out[i]]);
			bool dup = !cand || cand == o->holder[i];
			for (int c = o->width; c < n && !dup; c++)
				dup = pos_of[c] == i && calls[c].node == cand;
			if (dup)
				continue;
			uint8_t op = calls[0].req.opcode == SD_OP_PEER_GEN ? SD_OP_PEER_GEN
									 : SD_OP_PEER_READ;
			call_init(o, &calls[n], i, op);
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
static int gw_round(struct gw_obj *o, struct peer_call *calls, struct frag_state *st,
		    uint32_t *won)
{
	int pos_of[GW_MAX_CALLS];
	int n = add_shadows(o, calls, pos_of);
	gw_fanout(o, calls, n);
	int ret = SD_RES_SUCCESS;
	*won = 0;
	for (int i = 0; i < o->width; i++) {
		call_state(&calls[i], &st[i]);
		if (res_is_retry(st[i].res))
			ret = st[i].res;
	}
	for (int c = o->width; c < n; c++) {
		int i = pos_of[c];
		if (res_is_retry(calls[c].result))
			ret = calls[c].result;
		struct frag_state sh;
		call_state(&calls[c], &sh);
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
	return ret;
}

/*
 * Reconstruct [off, off+len) of the fragments in want[] (nr_want of them)
 * from d other fragments at version ver. good[i] says which fragments may
 * be used; out[k] receives want[k]'s bytes. Returns SUCCESS, EIO when fewer
 * than d usable fragments answer, or a retry code.
 */
static int gw_decode_range(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
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
			call_init(o, &calls[k], have_idx[k], SD_OP_PEER_READ);
			calls[k].req.obj.offset = off;
			calls[k].rbuf = bufs[k];
			calls[k].rcap = len;
		}
		gw_fanout(o, calls, nh);
		bool again = false;
		for (int k = 0; k < nh; k++) {
			if (res_is_retry(calls[k].result)) {
				ret = calls[k].result;
				goto out;
			}
			if (calls[k].result == SD_RES_SUCCESS && calls[k].version != ver) {
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

/* ---- reads ---- */

static int gw_read_ec(struct gw_obj *o, void *buf, uint32_t len, uint32_t off)
{
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = ec_map_range(&o->pol, o->obj_size, off, len, ext, GW_MAX_WIDTH);
	if (ne < 0)
		return SD_RES_INVALID_PARMS;
	/* Fragment i: which extent it serves (-1 none). Contiguous layout
	 * gives each fragment at most one extent of a contiguous range. */
	int ext_of[GW_MAX_WIDTH];
	for (int i = 0; i < GW_MAX_WIDTH; i++)
		ext_of[i] = -1;
	for (int k = 0; k < ne; k++)
		ext_of[ext[k].idx] = k;
	struct peer_call calls[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++) {
		call_init(o, &calls[i], i, SD_OP_PEER_READ);
		if (ext_of[i] >= 0) {
			const struct ec_extent *e = &ext[ext_of[i]];
			calls[i].req.obj.offset = e->frag_off;
			calls[i].rbuf = (char *)buf + (e->obj_off - off);
			calls[i].rcap = e->len;
		}
	}
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	uint32_t moved;
	int r0 = gw_round(o, calls, st, &moved);
	if (r0 != SD_RES_SUCCESS)
		return r0;
	if (moved) {
		/* Re-read the extents whose fragment is elsewhere. */
		int nm = 0;
		struct peer_call mc[GW_MAX_WIDTH];
		int mi[GW_MAX_WIDTH];
		for (int i = 0; i < o->width; i++) {
			if (!(moved & (1u << i)) || ext_of[i] < 0)
				continue;
			mc[nm] = calls[i];
			mc[nm].node = o->loc[i];
			mi[nm++] = i;
		}
		gw_fanout(o, mc, nm);
		for (int k = 0; k < nm; k++) {
			int i = mi[k];
			calls[i] = mc[k];
			st[i].res = mc[k].result;
			st[i].version = mc[k].version;
			if (res_is_retry(st[i].res))
				return st[i].res;
		}
	}
	uint64_t ver = choose_version(st, o->width, o->d, NULL);
	if (ver == 0) {
		if (all_absent(st, o->width))
			return SD_RES_NO_OBJ;
		int answered = 0;
		for (int i = 0; i < o->width; i++)
			answered += st[i].res == SD_RES_SUCCESS;
		struct frag_state gs[GW_MAX_WIDTH];
		if (gw_probe(o, gs) == SD_RES_SUCCESS && gw_settle(o, gs) == SD_RES_SUCCESS)
			return SD_RES_AGAIN; /* an interrupted write was finished: read again */
		if (answered >= o->d)
			return SD_RES_AGAIN; /* generations mixed: a write is in flight */
		sd_err("object %016llx: fewer than %d fragments of one version are readable",
		       (unsigned long long)o->oid, o->d);
		return SD_RES_EIO;
	}
	/* Extents whose fragment did not answer at the chosen version are
	 * rebuilt from d others, only over the range asked for. */
	uint8_t want[GW_MAX_WIDTH];
	int nw = 0;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (int k = 0; k < ne; k++) {
		int i = ext[k].idx;
		if (st[i].res == SD_RES_SUCCESS && st[i].version == ver &&
		    calls[i].rlen == ext[k].len)
			continue;
		want[nw++] = (uint8_t)i;
		lo = SD_MIN(lo, ext[k].frag_off);
		hi = SD_MAX(hi, ext[k].frag_off + ext[k].len);
		if (st[i].res == SD_RES_SUCCESS)
			st[i].res = SD_RES_EIO; /* unusable for decoding: wrong version */
	}
	if (nw == 0)
		return SD_RES_SUCCESS;
	uint32_t rlen = hi - lo;
	uint8_t *out[GW_MAX_WIDTH] = {0};
	int ret = SD_RES_NO_MEM;
	for (int k = 0; k < nw; k++)
		if (!(out[k] = malloc(rlen)))
			goto out;
	sd_debug("degraded read of %016llx: %d fragment(s), %u bytes", (unsigned long long)o->oid,
		 nw, rlen);
	ret = gw_decode_range(o, st, ver, want, nw, lo, rlen, out);
	if (ret == SD_RES_SUCCESS) {
		for (int k = 0; k < ne; k++)
			for (int w = 0; w < nw; w++)
				if (want[w] == ext[k].idx)
					memcpy((char *)buf + (ext[k].obj_off - off),
					       out[w] + (ext[k].frag_off - lo), ext[k].len);
	}
out:
	for (int k = 0; k < nw; k++)
		free(out[k]);
	return ret;
}

static int gw_read_copies(struct gw_obj *o, void *buf, uint32_t len, uint32_t off)
{
	struct peer_call calls[GW_MAX_CALLS];
	/* The data comes from this sheep's own copy when it holds one (no
	 * network), else from the first holder; the others are asked for
	 * their version only, in the same round. */
	int first = -1;
	for (int i = 0; i < o->width; i++) {
		call_init(o, &calls[i], i, SD_OP_PEER_READ);
		if (o->holder[i] && (first < 0 || sd_node_eq(o->holder[i], &o->s->self)))
			first = i;
	}
	if (first < 0)
		return SD_RES_NO_STORE;
	calls[first].req.obj.offset = off;
	calls[first].rbuf = buf;
	calls[first].rcap = len;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	uint32_t moved;
	int r0 = gw_round(o, calls, st, &moved);
	if (r0 != SD_RES_SUCCESS)
		return r0;
	uint64_t ver = choose_version(st, o->width, 1, NULL);
	if (ver == 0)
		return all_absent(st, o->width) ? SD_RES_NO_OBJ : SD_RES_EIO;
	bool first_moved = moved & (1u << first);
	if (!first_moved && st[first].res == SD_RES_SUCCESS && st[first].version == ver &&
	    calls[first].rlen == len)
		return SD_RES_SUCCESS;
	/* Try the other copies that hold the newest version. */
	for (int i = 0; i < o->width; i++) {
		if ((i == first && !first_moved) || st[i].res != SD_RES_SUCCESS || st[i].version != ver)
			continue;
		struct peer_call c;
		call_init(o, &c, i, SD_OP_PEER_READ);
		c.req.obj.offset = off;
		c.rbuf = buf;
		c.rcap = len;
		gw_fanout(o, &c, 1);
		if (res_is_retry(c.result))
			return c.result;
		if (c.result == SD_RES_SUCCESS && c.version == ver && c.rlen == len)
			return SD_RES_SUCCESS;
		if (c.result == SD_RES_SUCCESS && c.version > ver)
			return SD_RES_AGAIN;
	}
	sd_err("object %016llx: no readable copy", (unsigned long long)o->oid);
	return SD_RES_EIO;
}

/* ---- writes ---- */

static int ack_threshold(const struct gw_obj *o)
{
	if (o->ec)
		return o->d + 1;
	return o->width >= 2 ? 2 : 1;
}

static int count_acks(struct gw_obj *o, struct peer_call *calls, int n, int *retry)
{
	int ok = 0;
	*retry = 0;
	for (int i = 0; i < n; i++) {
		if (!calls[i].node)
			continue;
		if (calls[i].result == SD_RES_SUCCESS)
			ok++;
		else if (res_is_retry(calls[i].result))
			*retry = calls[i].result;
		else
			sd_info("write of %016llx fragment %d on %s:%u: %s",
				(unsigned long long)o->oid, calls[i].req.obj.ec_index,
				calls[i].node->addr, calls[i].node->port, sd_strerror(calls[i].result));
	}
	return ok;
}

/* Refuse before writing anything when fewer fragments than the ack rule
 * needs can be written: a write that cannot be acknowledged changes nothing. */
static int precheck_targets(struct gw_obj *o, int targets)
{
	if (targets >= ack_threshold(o))
		return SD_RES_SUCCESS;
	sd_err("write of %016llx refused: only %d of %d fragments are writable, %d needed to "
	       "keep redundancy", (unsigned long long)o->oid, targets, o->width, ack_threshold(o));
	return SD_RES_EIO;
}

static int ack_result(struct gw_obj *o, int ok, int retry)
{
	o->acked_all = !retry && ok == o->width;
	if (retry)
		return retry;
	if (ok >= ack_threshold(o))
		return SD_RES_SUCCESS;
	sd_err("write of %016llx reached %d of %d holders, %d needed to keep redundancy: "
	       "not acknowledged", (unsigned long long)o->oid, ok, o->width, ack_threshold(o));
	return SD_RES_EIO;
}

/* ---- two-phase writes (EC objects) ---- */

static uint64_t new_write_id(struct gw_obj *o)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = sd_now_ns() ^ ((uint64_t)o->s->self.port << 48) ^ o->oid;
	return id ? id : 1;
}

/*
 * Test hook: a sheep started with SHEEP_TEST_CRASH_FILE=PATH in its
 * environment that, as the coordinator of a two-phase write, finds PATH
 * (holding a number k) takes it (rename: one sheep of the cluster gets
 * it), sends the commits one at a time in fragment order and dies
 * (SIGKILL) after k of them (never, when k >= the commits to send). It
 * writes its port to PATH.by.
 */
static int test_crash_point(struct gw_obj *o)
{
	const char *path = o->s->opt.test_crash_file;
	if (!path)
		return -1;
	char mine[PATH_MAX], buf[16] = "";
	snprintf(mine, sizeof(mine), "%s.%d", path, (int)getpid());
	if (rename(path, mine))
		return -1;
	FILE *f = fopen(mine, "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	unlink(mine);
	/* Say who took it (PATH.by: this sheep's port), for the test. */
	snprintf(mine, sizeof(mine), "%s.by", path);
	if ((f = fopen(mine, "w"))) {
		fprintf(f, "%u\n", (unsigned)o->s->self.port);
		fclose(f);
	}
	return atoi(buf);
}

/* Send commit (or abort) calls cc[0..n); with the test hook armed, one at
 * a time and die after crash_at successes. */
static void gw_send_commits(struct gw_obj *o, struct peer_call *cc, int n, int crash_at)
{
	if (crash_at < 0) {
		gw_fanout(o, cc, n);
		return;
	}
	int done = 0;
	for (int k = 0; k < n; k++) {
		if (done == crash_at) {
			sd_err("test hook: %016llx: dying after %d of %d commits",
			       (unsigned long long)o->oid, done, n);
			kill(getpid(), SIGKILL);
		}
		gw_fanout(o, &cc[k], 1);
		done += cc[k].result == SD_RES_SUCCESS;
	}
}

/* A commit (abort: drop) of write (new_version, wid) of fragment idx at node. */
static void commit_init(struct gw_obj *o, struct peer_call *c, const struct sd_node *node, int idx,
			uint64_t new_version, uint64_t wid, bool abort)
{
	call_init(o, c, idx, SD_OP_PEER_COMMIT);
	c->node = node;
	c->commit = (struct peer_commit){.new_version = new_version, .write_id = wid,
					 .abort = abort};
	c->wbuf = &c->commit;
	c->wlen = sizeof(c->commit);
}

/*
 * The write fan-out of an EC object, in two phases so that a coordinator
 * dying half-way never leaves fewer than d fragments of both generations
 * (DESIGN.md invariant 2): every fragment write is first prepared (stored
 * aside, nothing changed); only when enough holders prepared it for the
 * ack rule is it committed on them, else dropped. Once one commit is
 * done, every live holder of a fragment has the write either applied or
 * pending, so gw_settle() can finish it if this node dies.
 */
static int gw_write_2pc(struct gw_obj *o, struct peer_call *calls, int n)
{
	uint64_t wid = new_write_id(o);
	for (int i = 0; i < n; i++) {
		calls[i].req.flags |= SD_PEER_FLAG_PREPARE;
		calls[i].whdr.write_id = wid;
	}
	gw_fanout(o, calls, n);
	int retry;
	int ok = count_acks(o, calls, n, &retry);
	bool go = !retry && ok >= ack_threshold(o);
	struct peer_call cc[GW_MAX_WIDTH];
	int nc = 0;
	for (int i = 0; i < n; i++)
		if (calls[i].node && calls[i].result == SD_RES_SUCCESS)
			commit_init(o, &cc[nc++], calls[i].node, calls[i].req.obj.ec_index,
				    calls[i].whdr.new_version, wid, !go);
	gw_send_commits(o, cc, nc, go ? test_crash_point(o) : -1);
	if (!go)
		return ack_result(o, ok, retry);
	int ignored;
	return ack_result(o, count_acks(o, cc, nc, &ignored), 0);
}

/*
 * Finish a write whose coordinator died during its commits: some
 * fragments are at its version (fewer than d, so neither generation may
 * be readable) and it is pending on others. When applied + pending reach
 * d, commit it on the pending ones (committing a prepared write is what
 * its coordinator would have done; doing it twice is harmless). st comes
 * from gw_probe(). Returns SUCCESS when the object moved (probe again),
 * EIO when there is nothing to finish.
 */
static int gw_settle(struct gw_obj *o, const struct frag_state *st)
{
	uint64_t top = 0, wid = 0;
	for (int i = 0; i < o->width; i++)
		if (st[i].res == SD_RES_SUCCESS && st[i].version > top)
			top = st[i].version, wid = st[i].write_id;
	int applied = 0;
	for (int i = 0; i < o->width; i++) {
		if (st[i].res != SD_RES_SUCCESS || st[i].version != top)
			continue;
		if (st[i].write_id != wid)
			return SD_RES_EIO; /* two writes claim one version: leave it */
		applied++;
	}
	if (!wid || applied >= o->d)
		return SD_RES_EIO;
	struct peer_call cc[GW_MAX_WIDTH];
	int nc = 0;
	for (int i = 0; i < o->width; i++)
		if (st[i].has_pend && st[i].pend_version == top && st[i].pend_id == wid &&
		    !(st[i].res == SD_RES_SUCCESS && st[i].version == top))
			commit_init(o, &cc[nc++], o->loc[i], i, top, wid, false);
	if (applied + nc < o->d)
		return SD_RES_EIO;
	gw_fanout(o, cc, nc);
	int retry;
	int ok = count_acks(o, cc, nc, &retry);
	sd_info("%016llx: finished an interrupted write (version %llu): it was applied on %d "
		"fragment(s), committed now on %d of %d pending", (unsigned long long)o->oid,
		(unsigned long long)top, applied, ok, nc);
	return applied + ok >= o->d ? SD_RES_SUCCESS : SD_RES_EIO;
}

/*
 * Whole-fragment writes: every fragment gets [lo, lo+len) of frags[i] at
 * new_version; mode CREATE/REPLACE/UPSERT (no version expectation).
 */
static int gw_put_all(struct gw_obj *o, uint8_t **frags, uint32_t lo, const uint32_t *lens,
		      uint8_t mode, uint64_t new_version)
{
	struct peer_call calls[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++) {
		call_init(o, &calls[i], i, SD_OP_PEER_WRITE);
		/* A rewrite lands on the current holder; where none can be
		 * placed, on the node still holding the old fragment. */
		calls[i].node = o->holder[i] ? o->holder[i] : o->loc[i];
		calls[i].req.obj.offset = lo;
		calls[i].has_whdr = true;
		calls[i].whdr = (struct peer_write_hdr){.expect_version = UINT64_MAX,
							.new_version = new_version,
							.frag_size = o->frag_size,
							.copy_policy = o->meta_policy,
							.nr_copies = o->meta_copies,
							.mode = mode};
		calls[i].wbuf = frags[i];
		calls[i].wlen = lens[i];
	}
	int targets = 0;
	for (int i = 0; i < o->width; i++)
		targets += calls[i].node != NULL;
	int pre = precheck_targets(o, targets);
	if (pre != SD_RES_SUCCESS)
		return pre;
	if (o->ec)
		return gw_write_2pc(o, calls, o->width);
	gw_fanout(o, calls, o->width);
	int retry;
	int ok = count_acks(o, calls, o->width, &retry);
	return ack_result(o, ok, retry);
}

/* Build the fragments of object bytes [off, off+len) (zeros elsewhere)
 * over fragment range [lo, hi) and write them all with mode. */
static int gw_write_full_ec(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
			    uint8_t mode, uint64_t new_version)
{
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = ec_map_range(&o->pol, o->obj_size, off, len, ext, GW_MAX_WIDTH);
	if (ne <= 0)
		return SD_RES_INVALID_PARMS;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (int k = 0; k < ne; k++) {
		lo = SD_MIN(lo, ext[k].frag_off);
		hi = SD_MAX(hi, ext[k].frag_off + ext[k].len);
	}
	uint32_t flen = hi - lo;
	uint8_t *frags[GW_MAX_WIDTH] = {0};
	int ret = SD_RES_NO_MEM;
	for (int i = 0; i < o->width; i++)
		if (!(frags[i] = calloc(1, flen ? flen : 1)))
			goto out;
	/* A data fragment the write does not touch is created empty (thin):
	 * only its version is written. Parity covers [lo, hi). */
	uint32_t lens[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++)
		lens[i] = i < o->d ? 0 : flen;
	for (int k = 0; k < ne; k++) {
		memcpy(frags[ext[k].idx] + (ext[k].frag_off - lo), (const char *)buf + (ext[k].obj_off - off),
		       ext[k].len);
		lens[ext[k].idx] = flen;
	}
	if (ec_encode(o->codec, flen, frags, frags + o->d)) {
		ret = SD_RES_SYSTEM_ERROR;
		goto out;
	}
	ret = gw_put_all(o, frags, lo, lens, mode, new_version);
out:
	for (int i = 0; i < o->width; i++)
		free(frags[i]);
	return ret;
}

static int gw_write_full_copies(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
				uint8_t mode, uint64_t new_version)
{
	uint8_t *frags[GW_MAX_WIDTH];
	uint32_t lens[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++) {
		frags[i] = (uint8_t *)buf;
		lens[i] = len;
	}
	return gw_put_all(o, frags, off, lens, mode, new_version);
}

/* Partial update of replicated copies at version ver -> new_version. */
static int gw_update_copies(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
			    const void *buf, uint32_t len, uint32_t off, uint64_t new_version)
{
	struct peer_call calls[GW_MAX_WIDTH];
	int targets = 0;
	for (int i = 0; i < o->width; i++)
		targets += st[i].res == SD_RES_SUCCESS && st[i].version == ver;
	int pre = precheck_targets(o, targets);
	if (pre != SD_RES_SUCCESS)
		return pre;
	for (int i = 0; i < o->width; i++) {
		call_init(o, &calls[i], i, SD_OP_PEER_WRITE);
		if (st[i].res != SD_RES_SUCCESS || st[i].version != ver) {
			calls[i].node = NULL; /* missing or stale: left to recovery */
			continue;
		}
		calls[i].req.obj.offset = off;
		calls[i].has_whdr = true;
		calls[i].whdr = (struct peer_write_hdr){.expect_version = ver,
							.new_version = new_version,
							.frag_size = o->frag_size,
							.copy_policy = o->meta_policy,
							.nr_copies = o->meta_copies,
							.mode = PEER_WRITE_UPDATE};
		calls[i].wbuf = buf;
		calls[i].wlen = len;
	}
	gw_fanout(o, calls, o->width);
	int retry;
	int ok = count_acks(o, calls, o->width, &retry);
	return ack_result(o, ok, retry);
}

/*
 * Partial EC write by parity delta. Reads the old bytes of the touched
 * data ranges (decoding them when their holder is down) and the parity
 * over the union range, folds old^new into the parity, then writes the new
 * data, the new parity and a version-only bump to untouched fragments, all
 * expecting version ver. Fragments not at ver are skipped (recovery).
 */
static int gw_update_ec(struct gw_obj *o, struct frag_state *st, uint64_t ver, const void *buf,
			uint32_t len, uint32_t off, uint64_t new_version)
{
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = ec_map_range(&o->pol, o->obj_size, off, len, ext, GW_MAX_WIDTH);
	if (ne <= 0)
		return SD_RES_INVALID_PARMS;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (int k = 0; k < ne; k++) {
		lo = SD_MIN(lo, ext[k].frag_off);
		hi = SD_MAX(hi, ext[k].frag_off + ext[k].len);
	}
	uint32_t plen = hi - lo;
	int ret = SD_RES_NO_MEM;
	uint8_t *old[GW_MAX_WIDTH] = {0};    /* per extent */
	uint8_t *parity[GW_MAX_WIDTH] = {0}; /* per parity fragment, over [lo,hi) */
	bool usable[GW_MAX_WIDTH];
	int targets = 0;
	for (int i = 0; i < o->width; i++) {
		usable[i] = st[i].res == SD_RES_SUCCESS && st[i].version == ver;
		targets += usable[i];
	}
	if ((ret = precheck_targets(o, targets)) != SD_RES_SUCCESS)
		return ret;
	ret = SD_RES_NO_MEM;
	for (int k = 0; k < ne; k++)
		if (!(old[k] = malloc(ext[k].len)))
			goto out;
	for (int j = 0; j < o->p; j++)
		if (!(parity[j] = malloc(plen)))
			goto out;

	/* Read old data of usable touched fragments and all usable parity. */
	struct peer_call calls[2 * GW_MAX_WIDTH];
	int nc = 0;
	int call_ext[2 * GW_MAX_WIDTH], call_par[2 * GW_MAX_WIDTH];
	for (int k = 0; k < ne; k++) {
		if (!usable[ext[k].idx])
			continue;
		call_init(o, &calls[nc], ext[k].idx, SD_OP_PEER_READ);
		calls[nc].req.obj.offset = ext[k].frag_off;
		calls[nc].rbuf = old[k];
		calls[nc].rcap = ext[k].len;
		call_ext[nc] = k;
		call_par[nc] = -1;
		nc++;
	}
	for (int j = 0; j < o->p; j++) {
		if (!usable[o->d + j])
			continue;
		call_init(o, &calls[nc], o->d + j, SD_OP_PEER_READ);
		calls[nc].req.obj.offset = lo;
		calls[nc].rbuf = parity[j];
		calls[nc].rcap = plen;
		call_ext[nc] = -1;
		call_par[nc] = j;
		nc++;
	}
	gw_fanout(o, calls, nc);
	bool have_old[GW_MAX_WIDTH] = {0};
	for (int c = 0; c < nc; c++) {
		if (res_is_retry(calls[c].result)) {
			ret = calls[c].result;
			goto out;
		}
		bool good = calls[c].result == SD_RES_SUCCESS && calls[c].version == ver &&
			    calls[c].rlen == calls[c].rcap;
		if (calls[c].result == SD_RES_SUCCESS && calls[c].version != ver) {
			ret = SD_RES_AGAIN;
			goto out;
		}
		int i = call_ext[c] >= 0 ? ext[call_ext[c]].idx : o->d + call_par[c];
		if (!good)
			usable[i] = false, st[i].res = SD_RES_EIO;
		else if (call_ext[c] >= 0)
			have_old[call_ext[c]] = true;
	}
	/* Old bytes of data fragments that could not be read: decode them. */
	for (int k = 0; k < ne; k++) {
		if (have_old[k])
			continue;
		uint8_t want = ext[k].idx;
		uint8_t *outp[1] = {old[k]};
		ret = gw_decode_range(o, st, ver, &want, 1, ext[k].frag_off, ext[k].len, outp);
		if (ret != SD_RES_SUCCESS)
			goto out;
	}
	/* Fold each extent's delta into the parity buffers. */
	for (int k = 0; k < ne; k++) {
		const uint8_t *nw = (const uint8_t *)buf + (ext[k].obj_off - off);
		for (uint32_t b = 0; b < ext[k].len; b++)
			old[k][b] ^= nw[b];
		uint8_t *pp[GW_MAX_WIDTH];
		for (int j = 0; j < o->p; j++)
			pp[j] = parity[j] + (ext[k].frag_off - lo);
		if (ec_update(o->codec, ext[k].len, ext[k].idx, old[k], pp)) {
			ret = SD_RES_SYSTEM_ERROR;
			goto out;
		}
	}
	/* Write: new data, new parity, version bumps elsewhere. */
	nc = 0;
	int ext_of[GW_MAX_WIDTH];
	for (int i = 0; i < GW_MAX_WIDTH; i++)
		ext_of[i] = -1;
	for (int k = 0; k < ne; k++)
		ext_of[ext[k].idx] = k;
	for (int i = 0; i < o->width; i++) {
		call_init(o, &calls[nc], i, SD_OP_PEER_WRITE);
		if (!usable[i])
			calls[nc].node = NULL;
		calls[nc].has_whdr = true;
		calls[nc].whdr = (struct peer_write_hdr){.expect_version = ver,
							 .new_version = new_version,
							 .frag_size = o->frag_size,
							 .copy_policy = o->meta_policy,
							 .nr_copies = o->meta_copies,
							 .mode = PEER_WRITE_UPDATE};
		if (i < o->d && ext_of[i] >= 0) {
			const struct ec_extent *e = &ext[ext_of[i]];
			calls[nc].req.obj.offset = e->frag_off;
			calls[nc].wbuf = (const char *)buf + (e->obj_off - off);
			calls[nc].wlen = e->len;
		} else if (i >= o->d) {
			calls[nc].req.obj.offset = lo;
			calls[nc].wbuf = parity[i - o->d];
			calls[nc].wlen = plen;
		}
		nc++;
	}
	ret = gw_write_2pc(o, calls, nc);
out:
	for (int k = 0; k < ne; k++)
		free(old[k]);
	for (int j = 0; j < o->p; j++)
		free(parity[j]);
	return ret;
}

/*
 * Too few fragments are where they can be updated in place (holders down
 * and recovery not done yet), but enough current holders are alive: read
 * the whole object (decoding as needed), apply the write and store every
 * fragment afresh on the current holders. The write is then acknowledged
 * with full redundancy, as the ack rule wants.
 */
static int gw_rewrite_whole(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
			    uint64_t new_version)
{
	char *whole = malloc(o->obj_size);
	if (!whole)
		return SD_RES_NO_MEM;
	int ret = o->ec ? gw_read_ec(o, whole, o->obj_size, 0)
			: gw_read_copies(o, whole, o->obj_size, 0);
	if (ret == SD_RES_SUCCESS) {
		sd_info("%016llx: rewriting the whole object on the current holders",
			(unsigned long long)o->oid);
		memcpy(whole + off, buf, len);
		memcpy(o->loc, o->holder, sizeof(o->loc));
		ret = o->ec ? gw_write_full_ec(o, whole, o->obj_size, 0, PEER_WRITE_UPSERT, new_version)
			    : gw_write_full_copies(o, whole, o->obj_size, 0, PEER_WRITE_UPSERT,
						   new_version);
	}
	free(whole);
	return ret;
}

#define GW_MIXED_WAIT_MS 3000

static int gw_write_probed(struct gw_obj *o, struct frag_state *st, const void *buf, uint32_t len,
			   uint32_t off, bool create, uint64_t *mixed_since, uint64_t *made);

/* One write attempt: the object's state from the coordinator's version
 * cache, else from a probe of every holder; then the write. */
static int gw_write_once(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
			 bool create, uint64_t *mixed_since)
{
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	uint64_t cached = create ? 0 : vcache_get(o), made = 0;
	int ret;
	if (cached) {
		for (int i = 0; i < o->width; i++)
			st[i] = (struct frag_state){.res = SD_RES_SUCCESS, .version = cached};
	} else if ((ret = gw_probe(o, st)) != SD_RES_SUCCESS) {
		return ret;
	}
	o->acked_all = false;
	ret = gw_write_probed(o, st, buf, len, off, create, mixed_since, &made);
	vcache_put(o, ret == SD_RES_SUCCESS && o->acked_all ? made : 0);
	if (cached && ret != SD_RES_SUCCESS && !res_is_retry(ret)) {
		sd_debug("%016llx: write from the cached version %llu failed (%s): probing",
			 (unsigned long long)o->oid, (unsigned long long)cached, sd_strerror(ret));
		ret = SD_RES_AGAIN;
	}
	return ret;
}

static int gw_write_probed(struct gw_obj *o, struct frag_state *st, const void *buf, uint32_t len,
			   uint32_t off, bool create, uint64_t *mixed_since, uint64_t *made)
{
	uint64_t vmax;
	uint64_t ver = choose_version(st, o->width, o->d, &vmax);
	/* No generation is readable: finish an interrupted write if it can
	 * be (when the older generation is readable it is kept: a reader may
	 * have seen it, and the interrupted write was never acknowledged). */
	if (o->ec && ver == 0 && vmax && gw_settle(o, st) == SD_RES_SUCCESS)
		return SD_RES_AGAIN; /* look again */
	/* Above every version held or pending anywhere, so this write never
	 * shares a version with another one. */
	uint64_t new_version = vmax;
	for (int i = 0; i < o->width; i++)
		if (st[i].has_pend && st[i].pend_version > new_version)
			new_version = st[i].pend_version;
	new_version++;
	*made = new_version;
	bool whole = off == 0 && len == o->obj_size;
	if (create || whole) {
		/* A new object (or one rewritten whole): every fragment is
		 * written afresh, replacing leftovers of any older generation. */
		uint8_t mode = create ? PEER_WRITE_REPLACE : PEER_WRITE_UPSERT;
		if (o->ec)
			return gw_write_full_ec(o, buf, len, off, mode, new_version);
		return gw_write_full_copies(o, buf, len, off, mode, new_version);
	}
	if (vmax > ver && !(ver == 0 && all_absent(st, o->width))) {
		/* Some fragments are at a generation that fewer than d hold:
		 * another write is in flight (typically one sent under the
		 * previous epoch, by the previous coordinator). Writing over
		 * the older fragments now would mix the two; let it finish.
		 * A writer that died leaves it so for good: after a short
		 * wait the write goes on below. */
		uint64_t now = sd_now_ns();
		if (!*mixed_since)
			*mixed_since = now;
		if (now - *mixed_since < (uint64_t)GW_MIXED_WAIT_MS * 1000000ull) {
			sd_debug("%016llx: version %llu held by too few fragments: waiting",
				 (unsigned long long)o->oid, (unsigned long long)vmax);
			return SD_RES_AGAIN;
		}
	}
	if (ver == 0) {
		if (all_absent(st, o->width))
			return SD_RES_NO_OBJ;
		sd_err("object %016llx: no consistent generation to update", (unsigned long long)o->oid);
		return SD_RES_EIO;
	}
	int usable = 0, placed = 0;
	for (int i = 0; i < o->width; i++) {
		usable += st[i].res == SD_RES_SUCCESS && st[i].version == ver;
		placed += o->holder[i] != NULL;
	}
	if (usable < ack_threshold(o) && placed >= ack_threshold(o) &&
	    o->obj_size <= SD_MAX_PAYLOAD)
		return gw_rewrite_whole(o, buf, len, off, new_version);
	if (o->ec)
		return gw_update_ec(o, st, ver, buf, len, off, new_version);
	return gw_update_copies(o, st, ver, buf, len, off, new_version);
}

/* Run op under the current view, retrying while the epoch moves. */
typedef int (*gw_op_fn)(struct gw_obj *o, void *arg);

static int gw_run(struct sheep *s, uint64_t oid, gw_op_fn fn, void *arg)
{
	uint64_t deadline = sd_now_ns() + (uint64_t)GW_RETRY_MS * 1000000ull;
	int ret, dead_waits = 0;
	for (int attempt = 0;; attempt++) {
		struct sheep_view *v = sheep_view_get(s);
		if (!v)
			return SD_RES_WAIT_FOR_JOIN;
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
		    dead_waits < GW_DEAD_WAITS && !s->stopping && sd_now_ns() < deadline) {
			dead_waits++;
			sd_info("%016llx: %s with %d peer(s) unreachable at epoch %u; retrying under "
				"the next epoch", (unsigned long long)oid, sd_strerror(ret), o.neterr,
				epoch);
			ret = SD_RES_OLD_NODE_VER;
		}
		if (!res_is_retry(ret) || s->stopping || sd_now_ns() > deadline)
			break;
		sd_debug("%016llx: %s at epoch %u, retrying", (unsigned long long)oid, sd_strerror(ret),
			 epoch);
		if (ret == SD_RES_OLD_NODE_VER) {
			struct sheep_view *nv = sheep_view_wait_change(s, epoch, 1000);
			if (nv)
				sheep_view_put(nv);
		} else if (ret == SD_RES_NEW_NODE_VER) {
			usleep(20000);
		} else if (attempt > 3) {
			usleep(1000u * (unsigned)SD_MIN(attempt, 50));
		}
	}
	if (res_is_retry(ret))
		ret = ret == SD_RES_AGAIN ? SD_RES_EIO : SD_RES_NETWORK_ERROR;
	return ret;
}

struct rw_args {
	void *buf;
	uint32_t len, off;
	bool create;
	uint64_t mixed_since; /* when this write first found a newer partial generation */
};

static int check_range(struct gw_obj *o, uint32_t len, uint32_t off)
{
	if ((uint64_t)off + len > o->obj_size)
		return SD_RES_INVALID_PARMS;
	return SD_RES_SUCCESS;
}

static int op_read(struct gw_obj *o, void *arg)
{
	struct rw_args *a = arg;
	int ret = check_range(o, a->len, a->off);
	if (ret != SD_RES_SUCCESS || a->len == 0)
		return ret;
	return o->ec ? gw_read_ec(o, a->buf, a->len, a->off) : gw_read_copies(o, a->buf, a->len, a->off);
}

static int op_write(struct gw_obj *o, void *arg)
{
	struct rw_args *a = arg;
	int ret = check_range(o, a->len, a->off);
	if (ret != SD_RES_SUCCESS)
		return ret;
	if (!o->ec || a->create)
		return gw_write_once(o, a->buf, a->len, a->off, a->create, &a->mixed_since);
	/* A write that straddles two fragments only at their ends would make
	 * the parity range span most of a fragment: split it in two. */
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = ec_map_range(&o->pol, o->obj_size, a->off, a->len, ext, GW_MAX_WIDTH);
	if (ne == 2 && a->len < o->frag_size / 2) {
		ret = gw_write_once(o, a->buf, ext[0].len, a->off, false, &a->mixed_since);
		if (ret != SD_RES_SUCCESS)
			return ret;
		return gw_write_once(o, (char *)a->buf + ext[0].len, ext[1].len,
				     a->off + ext[0].len, false, &a->mixed_since);
	}
	return gw_write_once(o, a->buf, a->len, a->off, false, &a->mixed_since);
}

static int op_remove(struct gw_obj *o, void *arg)
{
	(void)arg;
	/* Remove every copy: at the current holders and at the live earlier
	 * holders, so an old fragment cannot resurface. */
	struct peer_call calls[GW_MAX_CALLS];
	int pos_of[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++)
		call_init(o, &calls[i], i, SD_OP_PEER_REMOVE);
	int n = add_shadows(o, calls, pos_of);
	for (int c = o->width; c < n; c++)
		calls[c].req.opcode = SD_OP_PEER_REMOVE;
	gw_fanout(o, calls, n);
	int removed = 0, failed = 0;
	for (int c = 0; c < n; c++) {
		if (res_is_retry(calls[c].result))
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

static int op_settle(struct gw_obj *o, void *arg)
{
	(void)arg;
	if (!o->ec)
		return SD_RES_SUCCESS;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	int ret = gw_probe(o, st);
	if (ret != SD_RES_SUCCESS)
		return ret;
	uint64_t vmax;
	if (choose_version(st, o->width, o->d, &vmax) != 0 || vmax == 0)
		return SD_RES_NO_OBJ; /* readable as it is, or absent: nothing to finish */
	return gw_settle(o, st);
}

int gateway_settle_obj(struct sheep *s, uint64_t oid)
{
	obj_lock(s, oid, true);
	int ret = gw_run(s, oid, op_settle, NULL);
	obj_unlock(s, oid, true);
	return ret;
}

int gateway_read_obj(struct sheep *s, uint64_t oid, void *buf, uint32_t len, uint32_t off)
{
	struct rw_args a = {.buf = buf, .len = len, .off = off};
	obj_lock(s, oid, false);
	int ret = gw_run(s, oid, op_read, &a);
	obj_unlock(s, oid, false);
	return ret;
}

int gateway_write_local(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
			bool create)
{
	struct rw_args a = {.buf = (void *)buf, .len = len, .off = off, .create = create};
	obj_lock(s, oid, true);
	int ret = gw_run(s, oid, op_write, &a);
	obj_unlock(s, oid, true);
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
		const struct sd_node *coord = NULL;
		for (int i = 0; ret == SD_RES_SUCCESS && i < o.width && !coord; i++)
			coord = o.holder[i];
		if (ret != SD_RES_SUCCESS || !coord || sd_node_eq(coord, &s->self)) {
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
		c.req.obj.copy_policy = create ? 1 : 0;
		c.wbuf = buf;
		c.wlen = len;
		c.req.flags = SD_FLAG_CMD_WRITE;
		peer_fanout(s, &c, 1);
		uint32_t epoch = v->epoch;
		sheep_view_put(v);
		ret = c.result;
		if (!res_is_retry(ret) && ret != SD_RES_NETWORK_ERROR)
			return ret;
		if (s->stopping || sd_now_ns() > deadline)
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

int gateway_remove_obj(struct sheep *s, uint64_t oid)
{
	obj_lock(s, oid, true);
	int ret = gw_run(s, oid, op_remove, NULL);
	obj_unlock(s, oid, true);
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

int gateway_read_vdis(struct sheep *s, void *bitmap, size_t len)
{
	if (len < SD_NR_VDIS / 8)
		return SD_RES_INVALID_PARMS;
	pthread_mutex_lock(&s->state_lock);
	int ret = s->synced ? SD_RES_SUCCESS : SD_RES_WAIT_FOR_JOIN;
	if (ret == SD_RES_SUCCESS)
		memcpy(bitmap, s->vdis.bitmap, SD_NR_VDIS / 8);
	pthread_mutex_unlock(&s->state_lock);
	return ret;
}

struct nbd_server **gateway_nbd_slot(struct sheep *s)
{
	return &s->nbd;
}
