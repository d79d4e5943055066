/* check.c - dog vdi check's work on one object: read every copy or fragment from its holder, find
 * what is missing, stale, fails its checksum or disagrees (EC parity, replicas), rewrite it from
 * the good ones and read it back. */
#include "sheep/gateway/gateway_priv.h"

#define CHK_MAX_BYTES (512u << 20) /* width x fragment size read at once, at most */

struct chk_arg {
	struct sd_check_obj *out;
	/* The first problem seen at each position by an earlier attempt: a
	 * retry (epoch change, the holder's recovery busy rebuilding it) may
	 * find it repaired meanwhile, and the report still says so. */
	uint8_t prior[SD_CHECK_MAX_WIDTH];
};

static bool is_damage(uint8_t p)
{
	return p == SD_CHECK_MISSING || p == SD_CHECK_CHECKSUM || p == SD_CHECK_STALE ||
	       p == SD_CHECK_MISMATCH;
}

/* EC: parity[k] recomputed from the data fragments into par[k]; returns a
 * mask of the parity positions (bit d+k) that differ from what was read. */
static uint32_t parity_mismatch(struct gw_obj *o, uint8_t **bufs, uint8_t **par)
{
	if (ec_encode(o->codec, o->frag_size, bufs, par))
		return UINT32_MAX;
	uint32_t bad = 0;
	for (int k = 0; k < o->p; k++)
		if (memcmp(par[k], bufs[o->d + k], o->frag_size))
			bad |= 1u << (o->d + k);
	return bad;
}

/*
 * All d+p fragments read with good checksums at one version, but the
 * parity does not match the data: find the one wrong fragment. When only
 * some parities disagree, the data and the agreeing parities are right
 * and the disagreeing parities wrong. When every parity disagrees, a data
 * fragment is suspect: it is the one j whose value decoded from the other
 * fragments makes every parity agree (p >= 2 is needed to tell). Marks
 * the culprits in bad (bitmask); false when no single culprit explains it.
 */
static bool find_culprit(struct gw_obj *o, uint8_t **bufs, uint8_t **par, uint32_t mism,
			 uint32_t *bad)
{
	if ((uint32_t)__builtin_popcount(mism) < (uint32_t)o->p) {
		*bad = mism;
		return true;
	}
	if (o->p < 2)
		return false;
	uint8_t *cand = malloc(o->frag_size);
	if (!cand)
		return false;
	int found = -1, nfound = 0;
	for (int j = 0; j < o->d; j++) {
		int have[GW_MAX_WIDTH], n = 0;
		const uint8_t *src[GW_MAX_WIDTH];
		for (int i = 0; i < o->width && n < o->d; i++)
			if (i != j) {
				have[n] = i;
				src[n++] = bufs[i];
			}
		uint8_t *w[1] = {cand};
		if (ec_decode(o->codec, o->frag_size, have, src, 1, &j, w))
			continue;
		uint8_t *data[GW_MAX_WIDTH];
		for (int i = 0; i < o->d; i++)
			data[i] = i == j ? cand : bufs[i];
		if (ec_encode(o->codec, o->frag_size, data, par))
			continue;
		bool all = true;
		for (int k = 0; k < o->p && all; k++)
			all = !memcmp(par[k], bufs[o->d + k], o->frag_size);
		if (all) {
			found = j;
			nfound++;
		}
	}
	free(cand);
	if (nfound != 1)
		return false;
	*bad = 1u << found;
	return true;
}

/* Copies: the content most good copies agree on (a strict majority), or
 * -1. Copies that differ from it get bit i in *bad. */
static int copy_majority(struct gw_obj *o, uint8_t **bufs, const bool *good, uint32_t *bad)
{
	int best = -1, best_n = 0, ngood = 0;
	for (int i = 0; i < o->width; i++) {
		if (!good[i])
			continue;
		ngood++;
		int n = 0;
		for (int j = 0; j < o->width; j++)
			n += good[j] && !memcmp(bufs[i], bufs[j], o->frag_size);
		if (n > best_n) {
			best_n = n;
			best = i;
		}
	}
	if (best < 0 || (best_n * 2 <= ngood && ngood > 1))
		return -1;
	*bad = 0;
	for (int i = 0; i < o->width; i++)
		if (good[i] && memcmp(bufs[i], bufs[best], o->frag_size))
			*bad |= 1u << i;
	return best;
}

/* Write the rebuilt fragment i back (whole, in one store write: a crash
 * leaves the old one or the new one) and read it back. true when the
 * holder now has exactly buf at version ver. */
static bool rewrite_one(struct gw_obj *o, int i, uint8_t problem, uint64_t have_ver, uint64_t ver,
			const uint8_t *own_rec, const uint8_t *buf, uint8_t *scratch, int *retry)
{
	/* Its own version in generation ver, and the record of last-changed
	 * versions it keeps (lastchg.c): the generation's when ver is its
	 * version, else the one it has (own_rec: its read's, when it stays at
	 * the same version). */
	uint64_t mine = gw_lc_of(o, NULL, ver, i);
	struct peer_call c;
	gw_call_init(o, &c, i, SD_OP_PEER_WRITE);
	if (problem == SD_CHECK_MISSING && !c.node)
		c.node = o->holder[i];
	c.req.flags = SD_FLAG_CMD_WRITE;
	c.has_whdr = true;
	c.whdr = (struct peer_write_hdr){
	    .expect_version = problem == SD_CHECK_STALE ? have_ver : mine,
	    .new_version = mine,
	    .frag_size = o->frag_size,
	    .copy_policy = o->meta_policy,
	    .nr_copies = o->meta_copies,
	    .mode = problem == SD_CHECK_MISSING ? PEER_WRITE_CREATE : PEER_WRITE_UPDATE};
	const uint8_t *rec = o->lc_valid && o->lc_gen == ver && mine == ver ? o->lc_delta : NULL;
	if (!rec && own_rec && problem != SD_CHECK_STALE && have_ver == mine)
		rec = own_rec;
	if (rec) {
		c.whdr.flags |= PEER_WH_LC;
		memcpy(c.whdr.lc_delta, rec, sizeof(c.whdr.lc_delta));
	}
	c.wbuf = buf;
	c.wlen = o->frag_size;
	gw_fanout(o, &c, 1);
	if (gw_res_is_retry(c.result)) {
		*retry = c.result;
		return false;
	}
	if (c.result != SD_RES_SUCCESS && c.result != SD_RES_VDI_EXIST) {
		sd_warn("check: rewrite of %016llx fragment %d on %s:%u: %s",
			(unsigned long long)o->oid, i, c.node ? c.node->addr : "-",
			c.node ? c.node->port : 0, sd_strerror((uint32_t)c.result));
		return false;
	}
	const struct sd_node *node = c.node;
	gw_call_init(o, &c, i, SD_OP_PEER_READ);
	c.node = node;
	c.rbuf = scratch;
	c.rcap = o->frag_size;
	gw_fanout(o, &c, 1);
	if (gw_res_is_retry(c.result)) {
		*retry = c.result; /* its holder is rebuilding it too: look again */
		return false;
	}
	return c.result == SD_RES_SUCCESS && c.version == mine && c.rlen == o->frag_size &&
	       !memcmp(scratch, buf, o->frag_size);
}

struct chk_bufs {
	uint8_t *frag[GW_MAX_WIDTH];
	uint8_t *par[GW_MAX_WIDTH];
	uint8_t *scratch;
};

static void chk_free(struct chk_bufs *b)
{
	for (int i = 0; i < GW_MAX_WIDTH; i++) {
		free(b->frag[i]);
		free(b->par[i]);
	}
	free(b->scratch);
}

static void fill_holder(struct gw_obj *o, int i, struct sd_check_frag *f)
{
	const struct sd_node *n = o->loc[i] ? o->loc[i] : o->holder[i];
	if (!n)
		return;
	snprintf(f->addr, sizeof(f->addr), "%s", n->addr);
	f->port = n->port;
}

/*
 * Rebuild the damaged positions (bits of bad) into their buffers from the
 * good ones. EC: from the first d good fragments; every other good one is
 * decoded too and must equal what was read, else the good ones disagree
 * among themselves (silent corruption next to a damaged fragment) and
 * nothing is rebuilt from them. false when too few good ones are left or
 * they disagree.
 */
static bool rebuild_bad(struct gw_obj *o, struct chk_bufs *b, const bool *good, uint32_t bad,
			int majority)
{
	if (!o->ec) {
		if (majority < 0)
			return false;
		for (int i = 0; i < o->width; i++)
			if (bad & (1u << i))
				memcpy(b->frag[i], b->frag[majority], o->frag_size);
		return true;
	}
	int have[GW_MAX_WIDTH], want[GW_MAX_WIDTH], nh = 0, nw = 0, extra[GW_MAX_WIDTH], ne = 0;
	const uint8_t *src[GW_MAX_WIDTH];
	uint8_t *dst[GW_MAX_WIDTH];
	for (int i = 0; i < o->width; i++) {
		if (good[i] && nh < o->d) {
			have[nh] = i;
			src[nh++] = b->frag[i];
		} else if (bad & (1u << i)) {
			want[nw] = i;
			dst[nw++] = b->frag[i];
		} else if (good[i]) {
			extra[ne++] = i;
		}
	}
	if (nh < o->d)
		return false;
	bool ok = true;
	for (int k = 0; k < ne && ok; k++) {
		uint8_t *w[1] = {b->scratch};
		ok = ec_decode(o->codec, o->frag_size, have, src, 1, &extra[k], w) == 0 &&
		     !memcmp(b->scratch, b->frag[extra[k]], o->frag_size);
	}
	if (!ok) {
		sd_err("check: %016llx is inconsistent: its good fragments disagree; nothing "
		       "rebuilt from them",
		       (unsigned long long)o->oid);
		return false;
	}
	return !nw || ec_decode(o->codec, o->frag_size, have, src, nw, want, dst) == 0;
}

/*
 * One attempt (gw_run retries it on an epoch change or AGAIN).
 * Guarantees: nothing is written unless the object has a version that
 * enough good fragments agree on (d for EC, a majority of the good copies
 * for replicas); each rewrite is one whole-fragment store write that the
 * holder applies only if the fragment is still at the version it was read
 * at (a client write in between wins and the attempt starts over); a
 * position is reported fixed only once read back equal to what was
 * written.
 */
static int gw_op_check(struct gw_obj *o, void *arg)
{
	struct chk_arg *a = arg;
	struct sd_check_obj *out = a->out;
	memset(out, 0, sizeof(*out));
	out->width = (uint8_t)o->width;
	out->d = (uint8_t)(o->ec ? o->d : 0);
	if (o->width > SD_CHECK_MAX_WIDTH || (uint64_t)o->width * o->frag_size > CHK_MAX_BYTES)
		return SD_RES_NO_SUPPORT;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	int ret = gw_probe(o, st);
	if (ret != SD_RES_SUCCESS)
		return ret;
	/* A write in flight: let it finish (or settle an early-ack one). */
	for (int i = 0; i < o->width; i++)
		if (st[i].has_pend && st[i].pend_age_ms < SD_PEER_PEND_GRACE_MS)
			return SD_RES_AGAIN;
	if (o->saw_early) {
		o->saw_early = false;
		if (gw_settle_early(o, st) == SD_RES_SUCCESS)
			return SD_RES_AGAIN;
	}
	if (gw_all_absent(st, o->width))
		return SD_RES_NO_OBJ;
	uint64_t ver = gw_choose_version(st, o->width, o->ec ? o->d : 1, NULL);
	if (!ver && o->ec && gw_settle(o, st) == SD_RES_SUCCESS)
		return SD_RES_AGAIN; /* an interrupted write, finished: look again */
	out->version = ver;

	struct chk_bufs b = {0};
	struct peer_call calls[GW_MAX_WIDTH];
	b.scratch = malloc(o->frag_size);
	ret = b.scratch ? SD_RES_SUCCESS : SD_RES_NO_MEM;
	for (int i = 0; i < o->width && ret == SD_RES_SUCCESS; i++) {
		b.frag[i] = malloc(o->frag_size);
		if (o->ec && i < o->p)
			b.par[i] = malloc(o->frag_size);
		if (!b.frag[i] || (o->ec && i < o->p && !b.par[i]))
			ret = SD_RES_NO_MEM;
		gw_call_init(o, &calls[i], i, SD_OP_PEER_READ);
		calls[i].rbuf = b.frag[i];
		calls[i].rcap = o->frag_size;
	}
	if (ret != SD_RES_SUCCESS) {
		chk_free(&b);
		return ret;
	}
	gw_fanout(o, calls, o->width);

	bool good[GW_MAX_WIDTH] = {0};
	uint64_t have_ver[GW_MAX_WIDTH] = {0};
	int ngood = 0, retry = 0, majority = -1;
	uint32_t bad = 0;
	bool unrepairable = !ver;
	for (int i = 0; i < o->width; i++) {
		struct sd_check_frag *f = &out->frag[i];
		fill_holder(o, i, f);
		int res = calls[i].node ? calls[i].result : -1;
		/* Its own version, and the generation it belongs to. */
		have_ver[i] = res == SD_RES_SUCCESS ? calls[i].version : st[i].real;
		uint64_t gen = gw_lc_gen_of(o, i, have_ver[i]);
		f->version = gen;
		if (gw_res_is_retry(res))
			retry = res; /* classify the others first: see chk_arg.prior */
		else if (!o->loc[i] && !o->holder[i])
			f->problem = SD_CHECK_NO_HOME;
		else if (ver && res == SD_RES_SUCCESS && gen > ver)
			retry = SD_RES_AGAIN; /* a write landed since the probe */
		else if (res == SD_RES_SUCCESS && calls[i].rlen == o->frag_size)
			f->problem = gen < ver ? SD_CHECK_STALE : SD_CHECK_OK;
		else if (res == SD_RES_EIO)
			f->problem = SD_CHECK_CHECKSUM;
		else if (res == SD_RES_NO_OBJ)
			f->problem = SD_CHECK_MISSING;
		else
			f->problem = SD_CHECK_UNREACHABLE;
		good[i] = f->problem == SD_CHECK_OK && !gw_res_is_retry(res);
		ngood += good[i];
	}
	if (retry)
		goto out;

	/* Content: EC parity against the data; replicas against each other. */
	if (ver && o->ec && ngood == o->width) {
		uint32_t mism = parity_mismatch(o, b.frag, b.par);
		if (mism && !find_culprit(o, b.frag, b.par, mism, &bad)) {
			sd_err("check: %016llx is inconsistent: parity does not match the data "
			       "and no single fragment explains it",
			       (unsigned long long)o->oid);
			bad = mism;
			unrepairable = true;
		}
	} else if (ver && !o->ec) {
		majority = copy_majority(o, b.frag, good, &bad);
		if (majority < 0 && ngood > 1)
			unrepairable = true;
	}
	for (int i = 0; i < o->width; i++)
		if (bad & (1u << i)) {
			out->frag[i].problem = SD_CHECK_MISMATCH;
			good[i] = false;
		}
	bad = 0;
	for (int i = 0; i < o->width; i++)
		if (is_damage(out->frag[i].problem))
			bad |= 1u << i;

	/* Repair: rebuild from the good ones, rewrite, read back. */
	if (bad && !unrepairable && rebuild_bad(o, &b, good, bad, majority)) {
		for (int i = 0; i < o->width && !retry; i++)
			if (bad & (1u << i))
				out->frag[i].fixed = rewrite_one(
				    o, i, out->frag[i].problem, have_ver[i], ver,
				    (calls[i].rsp_flags & PEER_RSP_LC) ? calls[i].lc_delta : NULL,
				    b.frag[i], b.scratch, &retry);
	} else if (bad) {
		unrepairable = true;
	}
out:
	chk_free(&b);
	if (retry) {
		for (int i = 0; i < o->width; i++)
			if (!a->prior[i] && is_damage(out->frag[i].problem))
				a->prior[i] = out->frag[i].problem;
		return retry;
	}
	for (int i = 0; i < o->width; i++) {
		struct sd_check_frag *f = &out->frag[i];
		if (f->problem == SD_CHECK_OK && is_damage(a->prior[i])) {
			f->problem = a->prior[i]; /* repaired since an earlier attempt */
			f->fixed = 1;
		}
		if (is_damage(f->problem) && !f->fixed)
			unrepairable = true;
	}
	out->unrepairable = unrepairable;
	return SD_RES_SUCCESS;
}

int gateway_check_obj(struct sheep *s, uint64_t oid, struct sd_check_obj *out)
{
	struct chk_arg a = {.out = out};
	const struct gw_held held = {.oid = oid, .write = false, .resolve = true};
	gw_obj_lock(s, oid, false);
	uint64_t at;
	int ret = gw_resolve(s, oid, false, &at, NULL);
	if (ret == SD_RES_SUCCESS)
		ret = gw_run_held(s, at, gw_op_check, &a, &held);
	gw_obj_unlock(s, oid, false);
	return ret;
}
