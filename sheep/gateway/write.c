/* write.c - writing an object: the acknowledgement rule, whole-fragment writes, partial updates (copies, EC parity delta), one write attempt. */
#include "sheep/gateway/gateway_priv.h"

/*
 * Whole-fragment writes: every fragment gets [lo, lo+len) of frags[i] at
 * new_version; mode CREATE/REPLACE/UPSERT (no version expectation).
 */
int gw_put_all(struct gw_obj *o, uint8_t **frags, uint32_t lo, const uint32_t *lens,
		      uint8_t mode, uint64_t new_version)
{
	struct peer_call calls[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_WRITE);
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
	const struct sd_node *targets[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++)
		targets[i] = calls[i].node;
	int pre = gw_precheck_targets(o, targets);
	if (pre != SD_RES_SUCCESS)
		return pre;
	/* Two-phase also for copies built from a read (gw_rewrite_whole), so
	 * the read can be checked still current before anything changes. */
	if (o->ec || o->base_version)
		return gw_write_2pc(o, calls, o->width);
	gw_fanout(o, calls, o->width);
	int retry;
	int ok = gw_count_acks(o, calls, o->width, &retry);
	return gw_ack_result(o, ok, retry);
}

/* Build the fragments of object bytes [off, off+len) (zeros elsewhere)
 * over fragment range [lo, hi) and write them all with mode. */
int gw_write_full_ec(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
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

int gw_write_full_copies(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
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
int gw_update_copies(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
			    const void *buf, uint32_t len, uint32_t off, uint64_t new_version)
{
	struct peer_call calls[GW_MAX_WIDTH];
	const struct sd_node *targets[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++)
		targets[i] = st[i].res == SD_RES_SUCCESS && st[i].version == ver ? o->loc[i] : NULL;
	int pre = gw_precheck_targets(o, targets);
	if (pre != SD_RES_SUCCESS)
		return pre;
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_WRITE);
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
	int ok = gw_count_acks(o, calls, o->width, &retry);
	return gw_ack_result(o, ok, retry);
}

/* A read of old bytes by this coordinator's next write: its previous
 * early-ack write of the object (maybe not committed yet) goes first. */
static void gw_commit_prev(struct gw_obj *o, struct peer_call *c)
{
	/* The write of this fragment whose commit is still queued here (an
	 * earlier write than the previous one, when that one skipped the
	 * fragment), else the previous write. */
	uint64_t wid = c->node ? gw_commitq_queued(o->s, c->node, o->oid, c->req.obj.ec_index) : 0;
	if (!wid)
		wid = o->prev_wid;
	if (!wid)
		return;
	c->req.flags |= SD_PEER_FLAG_COMMIT_PREV;
	c->req.obj.cow_oid = wid;
}

/* What a range update knows of each fragment of generation ver: which
 * can take the write (usable) and the version each is at (exp: a data
 * fragment's last-changed version in ver, else ver). */
struct gw_upd {
	bool usable[GW_MAX_WIDTH];
	uint64_t exp[GW_MAX_WIDTH];
};

/*
 * The prepares of a range update: new data on the touched fragments,
 * pbuf[j] (new parity, or with PEER_WH_DELTA the delta of data fragment
 * didx) on parity j; unusable ones skipped. The data fragments it does
 * not change are sent nothing: every prepare carries the new generation's
 * record of last-changed versions (PEER_WH_LC; theirs unchanged, the
 * touched ones' new_version), and the usable ones count as holding the
 * write (o->silent, twophase.c). A fragment whose last change would fall
 * more than 255 versions behind (the record's delta is a byte) takes a
 * version-only prepare, as every untouched one did before the record
 * (and still does under SHEEP_TEST_BUMPS).
 */
static int gw_update_prepare(struct gw_obj *o, const struct gw_upd *u, uint64_t new_version,
			     const void *buf, uint32_t off, const struct ec_extent *ext, int ne,
			     uint8_t *const *pbuf, uint32_t lo, uint32_t plen, int didx)
{
	struct peer_call calls[GW_MAX_WIDTH];
	int ext_of[GW_MAX_WIDTH];
	for (int i = 0; i < GW_MAX_WIDTH; i++)
		ext_of[i] = -1;
	for (int k = 0; k < ne; k++)
		ext_of[ext[k].idx] = k;
	/* Records only for early-ack writes (all range updates but those of
	 * the crash hook of 014, which tests the commit-before-ack protocol
	 * with its rule that an older generation still on d fragments is
	 * kept: with records, the unchanged fragments would count for both). */
	bool lc = !o->s->opt.test_bumps && o->d <= PEER_LC_MAX &&
		  gw_test_crash_mode(o) != GW_CRASH_COMMITS;
	uint8_t delta[PEER_LC_MAX] = {0};
	bool bump[GW_MAX_WIDTH] = {0};
	for (int k = 0; k < o->d && lc; k++) {
		uint64_t last = ext_of[k] >= 0 ? new_version : u->exp[k];
		if (last > new_version || new_version - last > 255) {
			bump[k] = u->usable[k];
			last = new_version;
		}
		delta[k] = (uint8_t)(new_version - last);
	}
	memset(o->silent, 0, sizeof(o->silent));
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_WRITE);
		if (!u->usable[i])
			calls[i].node = NULL;
		calls[i].has_whdr = true;
		calls[i].whdr = (struct peer_write_hdr){.expect_version = u->exp[i],
							.new_version = new_version,
							.frag_size = o->frag_size,
							.copy_policy = o->meta_policy,
							.nr_copies = o->meta_copies,
							.mode = PEER_WRITE_UPDATE};
		if (lc) {
			calls[i].whdr.flags |= PEER_WH_LC;
			memcpy(calls[i].whdr.lc_delta, delta, sizeof(delta));
		}
		if (i < o->d && ext_of[i] >= 0) {
			const struct ec_extent *e = &ext[ext_of[i]];
			calls[i].req.obj.offset = e->frag_off;
			calls[i].wbuf = (const char *)buf + (e->obj_off - off);
			calls[i].wlen = e->len;
		} else if (i >= o->d) {
			calls[i].req.obj.offset = lo;
			calls[i].wbuf = pbuf[i - o->d];
			calls[i].wlen = plen;
			if (didx >= 0) {
				calls[i].whdr.flags |= PEER_WH_DELTA;
				calls[i].req.obj.reserved = (uint8_t)didx;
			}
		} else if (lc && !bump[i] && calls[i].node) {
			o->silent[i] = calls[i].node; /* unchanged: nothing to send */
			o->silent_ver[i] = u->exp[i];
			calls[i].node = NULL;
		}
	}
	o->made_lc = lc;
	memcpy(o->made_delta, delta, sizeof(delta));
	o->early = true; /* a range update: acknowledged once prepared (twophase.c) */
	int ret = gw_write_2pc(o, calls, o->width);
	o->early = false;
	memset(o->silent, 0, sizeof(o->silent));
	return ret;
}

/*
 * The short form of gw_update_ec() when the write is one extent and every
 * fragment is current: read only the old data of that extent, then send
 * its delta (old ^ new) to the parity holders, which fold it into their
 * parity themselves (PEER_WH_DELTA): one read instead of 1 + p before the
 * prepares. Returns -1 (nothing sent but the read) when the old data could
 * not be read: the caller then takes the long way.
 */
static int gw_update_ec_delta(struct gw_obj *o, const struct gw_upd *u, const void *buf,
			      uint32_t off, const struct ec_extent *e, uint64_t new_version)
{
	uint8_t *delta = malloc(e->len);
	if (!delta)
		return SD_RES_NO_MEM;
	uint8_t *pbuf[GW_MAX_WIDTH]; /* every parity prepare carries the delta */
	for (int j = 0; j < o->p; j++)
		pbuf[j] = delta;
	const struct sd_node *dn = o->loc[e->idx];
	if (!o->s->opt.test_no_old_first && dn && !sd_node_eq(dn, &o->s->self)) {
		/* The old bytes come with the data prepare's first reply. */
		o->old_first.on = true;
		o->old_first.idx = e->idx;
		o->old_first.buf = delta;
		int r = gw_update_prepare(o, u, new_version, buf, off, e, 1, pbuf, e->frag_off,
					  e->len, e->idx);
		o->old_first.on = false;
		if (r != -1) {
			free(delta);
			return r;
		}
	}
	struct peer_call c;
	gw_call_init(o, &c, e->idx, SD_OP_PEER_READ);
	gw_commit_prev(o, &c);
	c.req.obj.offset = e->frag_off;
	c.rbuf = delta;
	c.rcap = e->len;
	gw_fanout(o, &c, 1);
	int ret = -1;
	if (gw_res_is_retry(c.result))
		ret = c.result;
	else if (c.result == SD_RES_SUCCESS && c.version != u->exp[e->idx])
		ret = SD_RES_AGAIN;
	else if (c.result == SD_RES_SUCCESS && c.rlen == c.rcap) {
		const uint8_t *nw = (const uint8_t *)buf + (e->obj_off - off);
		for (uint32_t b = 0; b < e->len; b++)
			delta[b] ^= nw[b];
		ret = gw_update_prepare(o, u, new_version, buf, off, e, 1, pbuf, e->frag_off,
					e->len, e->idx);
	}
	free(delta);
	return ret;
}

/*
 * Partial EC write by parity delta. Reads the old bytes of the touched
 * data ranges (decoding them when their holder is down) and the parity
 * over the union range, folds old^new into the parity, then writes the new
 * data and the new parity (gw_update_prepare), each expecting its version
 * in generation ver. Fragments not consistent with ver are skipped
 * (recovery).
 */
int gw_update_ec(struct gw_obj *o, struct frag_state *st, uint64_t ver, const void *buf,
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
	struct gw_upd u;
	bool *usable = u.usable;
	const struct sd_node *tnodes[GW_MAX_WIDTH];
	int targets = 0;
	for (int i = 0; i < o->width; i++) {
		usable[i] = st[i].res == SD_RES_SUCCESS && st[i].version == ver;
		u.exp[i] = usable[i] ? st[i].real : gw_lc_of(o, st, ver, i);
		tnodes[i] = usable[i] ? o->loc[i] : NULL;
		targets += usable[i];
	}
	if ((ret = gw_precheck_targets(o, tnodes)) != SD_RES_SUCCESS)
		return ret;
	if (ne == 1 && targets == o->width && !o->s->opt.test_no_delta &&
	    (ret = gw_update_ec_delta(o, &u, buf, off, &ext[0], new_version)) != -1)
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
		gw_call_init(o, &calls[nc], ext[k].idx, SD_OP_PEER_READ);
		gw_commit_prev(o, &calls[nc]);
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
		gw_call_init(o, &calls[nc], o->d + j, SD_OP_PEER_READ);
		gw_commit_prev(o, &calls[nc]);
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
		if (gw_res_is_retry(calls[c].result)) {
			ret = calls[c].result;
			goto out;
		}
		int i = call_ext[c] >= 0 ? ext[call_ext[c]].idx : o->d + call_par[c];
		bool good = calls[c].result == SD_RES_SUCCESS && calls[c].version == u.exp[i] &&
			    calls[c].rlen == calls[c].rcap;
		if (calls[c].result == SD_RES_SUCCESS && calls[c].version != u.exp[i]) {
			ret = SD_RES_AGAIN;
			goto out;
		}
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
	/* Write: new data, new parity. */
	ret = gw_update_prepare(o, &u, new_version, buf, off, ext, ne, parity, lo, plen, -1);
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
int gw_rewrite_whole(struct gw_obj *o, uint64_t ver, const void *buf, uint32_t len, uint32_t off,
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
		gw_test_pause(o, "rewrite-read");
		/* Built from a read at ver (or newer, which the check also
		 * refuses): commit only if no write moved the object since,
		 * else that write, maybe acknowledged, would be overwritten. */
		o->base_version = ver;
		memcpy(whole + off, buf, len);
		memcpy(o->loc, o->holder, sizeof(o->loc));
		ret = o->ec ? gw_write_full_ec(o, whole, o->obj_size, 0, PEER_WRITE_UPSERT, new_version)
			    : gw_write_full_copies(o, whole, o->obj_size, 0, PEER_WRITE_UPSERT,
						   new_version);
	}
	free(whole);
	return ret;
}

/* Fragment i is on its current holder, which answered, at a version
 * older than the object's ver: a write it missed. */
static bool frag_behind(const struct gw_obj *o, const struct frag_state *st, int i, uint64_t ver)
{
	return o->holder[i] && o->loc[i] == o->holder[i] && st[i].res == SD_RES_SUCCESS &&
	       st[i].version < ver;
}

/* After an acknowledged update: tell the current holders whose fragment
 * it skipped as older than ver to have it rebuilt now. Otherwise nothing
 * looks at it until the next membership change (issue 14, bug 3). */
static void gw_hint_stale(struct gw_obj *o, const struct frag_state *st, uint64_t ver)
{
	struct peer_call calls[GW_MAX_WIDTH];
	int n = 0;
	for (int i = 0; i < o->width; i++) {
		if (!frag_behind(o, st, i, ver))
			continue;
		gw_call_init(o, &calls[n], i, SD_OP_PEER_GEN);
		calls[n++].req.flags |= SD_PEER_FLAG_STALE;
		sd_info("%016llx: fragment %d on %s:%u left at version %llu (object at %llu): "
			"asking for its rebuild", (unsigned long long)o->oid, i, o->holder[i]->addr,
			o->holder[i]->port, (unsigned long long)st[i].version,
			(unsigned long long)ver);
	}
	if (n)
		gw_fanout(o, calls, n);
}

/*
 * A write acknowledged without every copy or fragment (an EC write: every
 * prepare, or commit, it waited for): before the acknowledgement, every
 * holder forgets that its copy or fragment is current (peer.h,
 * SD_PEER_FLAG_UNMARK), so no sole read serves the one it missed. A
 * holder that cannot be reached may be hung rather than dead, with marks
 * still alive: wait until any mark it holds has outlived its lease.
 */
static void gw_unmark_holders(struct gw_obj *o)
{
	struct peer_call calls[GW_MAX_WIDTH * 2];
	int n = 0;
	for (int i = 0; i < o->width; i++) {
		const struct sd_node *at[2] = {o->holder[i], o->loc[i] != o->holder[i] ? o->loc[i] : NULL};
		for (int k = 0; k < 2; k++) {
			if (!at[k])
				continue;
			gw_call_init(o, &calls[n], i, SD_OP_PEER_GEN);
			calls[n].node = at[k];
			calls[n++].req.flags |= SD_PEER_FLAG_UNMARK | SD_PEER_FLAG_ANY_EPOCH;
		}
	}
	peer_fanout(o->s, calls, n);
	for (int c = 0; c < n; c++) {
		if (calls[c].result != SD_RES_NETWORK_ERROR)
			continue;
		sd_info("%016llx: copy or fragment %d on %s:%u unreachable to unmark: waiting %d ms (its lease) "
			"before acknowledging", (unsigned long long)o->oid, calls[c].req.obj.ec_index,
			calls[c].node->addr, calls[c].node->port, PEER_SOLE_LEASE_MS);
		usleep((useconds_t)PEER_SOLE_LEASE_MS * 1000u);
		break;
	}
}

#define GW_MIXED_WAIT_MS 3000

static int write_probed(struct gw_obj *o, struct frag_state *st, const void *buf, uint32_t len,
			uint32_t off, bool create, uint64_t *mixed_since, uint64_t *made);

/* One write attempt: the object's state from the coordinator's version
 * cache (vcache.c), else from a probe of every holder; then the write. */
int gw_write_once(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
			 bool create, uint64_t *mixed_since)
{
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	uint64_t prev_wid = 0;
	bool clc = false;
	uint8_t cdelta[PEER_LC_MAX];
	uint64_t cached = create ? 0 : gw_vcache_get(o, &prev_wid, &clc, cdelta), made = 0;
	int ret;
	o->prev_wid = cached ? prev_wid : 0;
	o->early_wid = 0;
	o->made_lc = false;
	/* The group-commit hint counts this write from now (layout.c). */
	gw_coming_begin(o, off, len, create || (off == 0 && len == o->obj_size));
	if (cached) {
		/* The cached generation's record says where its unchanged data
		 * fragments are (lastchg.c). */
		o->lc_valid = clc && o->ec;
		o->lc_gen = o->lc_valid ? cached : 0;
		if (o->lc_valid)
			memcpy(o->lc_delta, cdelta, sizeof(o->lc_delta));
		for (int i = 0; i < o->width; i++)
			st[i] = (struct frag_state){.res = SD_RES_SUCCESS, .version = cached,
						    .real = gw_lc_of(o, NULL, cached, i)};
	} else if ((ret = gw_probe(o, st)) != SD_RES_SUCCESS) {
		gw_coming_end();
		return ret;
	}
	o->acked_all = false;
	ret = write_probed(o, st, buf, len, off, create, mixed_since, &made);
	gw_coming_end(); /* when it sent no peer write */
	if (ret == SD_RES_SUCCESS && !o->acked_all)
		gw_unmark_holders(o);
	gw_vcache_put(o, ret == SD_RES_SUCCESS && o->acked_all ? made : 0, o->early_wid,
		      o->made_lc, o->made_delta);
	if (cached && ret != SD_RES_SUCCESS && !gw_res_is_retry(ret)) {
		sd_debug("%016llx: write from the cached version %llu failed (%s): probing",
			 (unsigned long long)o->oid, (unsigned long long)cached, sd_strerror(ret));
		ret = SD_RES_AGAIN;
	}
	return ret;
}

static int write_probed(struct gw_obj *o, struct frag_state *st, const void *buf, uint32_t len,
			uint32_t off, bool create, uint64_t *mixed_since, uint64_t *made)
{
	uint64_t vmax;
	/* An early-acknowledged write pending here (this coordinator's, its
	 * commits still queued, or a dead one's): decided first, so this
	 * write goes over it (EIO: none pending). */
	if (o->ec && gw_settle_early(o, st) != SD_RES_EIO)
		return SD_RES_AGAIN; /* decided now, or still to be: look again */
	uint64_t ver = gw_choose_version(st, o->width, o->d, &vmax);
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
	if (vmax > ver && !(ver == 0 && gw_all_absent(st, o->width))) {
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
		if (gw_all_absent(st, o->width))
			return SD_RES_NO_OBJ;
		sd_err("object %016llx: no consistent generation to update", (unsigned long long)o->oid);
		return SD_RES_EIO;
	}
	int usable = 0, placed = 0, behind = 0;
	for (int i = 0; i < o->width; i++) {
		usable += st[i].res == SD_RES_SUCCESS && st[i].version == ver;
		placed += o->holder[i] != NULL;
		behind += frag_behind(o, st, i, ver);
	}
	/* Rewrite whole: too few fragments to update in place, or one still
	 * behind on its holder a while after recovery was asked to rebuild
	 * it (an object written all the time moves under every rebuild, and
	 * every write would find it behind and go around it). */
	if (placed >= gw_ack_threshold(o) && o->obj_size <= SD_MAX_PAYLOAD &&
	    (usable < gw_ack_threshold(o) || (behind && gw_behind_rewrite_due(o))))
		return gw_rewrite_whole(o, ver, buf, len, off, new_version);
	int ret = o->ec ? gw_update_ec(o, st, ver, buf, len, off, new_version)
		    : gw_update_copies(o, st, ver, buf, len, off, new_version);
	if (ret == SD_RES_SUCCESS)
		gw_hint_stale(o, st, ver);
	return ret;
}
