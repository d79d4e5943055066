/* read.c - reading an object: EC (data holders first, decode on failure) and N copies (first healthy copy), each from one holder alone when it knows its fragment or copy current. */
#include "sheep/gateway/gateway_priv.h"
#include "sheep/metrics/metrics.h"

/*
 * A sole read (docs/architecture.md, "Reading one copy"): ask one holder,
 * this sheep when it holds a copy, for the range, on the condition that
 * it knows its copy current (peer.h, SD_PEER_FLAG_SOLE). SUCCESS with the
 * data; else AGAIN, with *token and *version set when the holder offers
 * its copy as a candidate for a probing read to confirm.
 */
static int gw_read_sole(struct gw_obj *o, int idx, void *buf, uint32_t len, uint32_t off,
			uint64_t *token, uint64_t *version)
{
	struct peer_call c;
	gw_call_init(o, &c, idx, SD_OP_PEER_READ);
	c.req.flags |= SD_PEER_FLAG_SOLE;
	c.req.obj.offset = off;
	c.rbuf = buf;
	c.rcap = len;
	peer_fanout(o->s, &c, 1); /* not gw_fanout: a miss here is no verdict on the peer */
	*token = 0;
	*version = 0;
	if (c.result != SD_RES_SUCCESS)
		return SD_RES_AGAIN;
	if (!(c.rsp_flags & (PEER_RSP_NOT_SOLE | PEER_RSP_EARLY)) && c.rlen == len)
		return SD_RES_SUCCESS;
	if (c.rsp_flags & PEER_RSP_NOT_SOLE) {
		*token = c.token;
		*version = c.version;
	}
	return SD_RES_AGAIN;
}

/* The probing read found holder idx's candidate (token) the newest copy:
 * let it serve the next reads alone. */
static void gw_confirm_sole(struct gw_obj *o, int idx, uint64_t token)
{
	if (sd_node_eq(o->holder[idx], &o->s->self)) {
		peer_sole_confirm(o->s, o->oid, (uint8_t)idx, token);
		return;
	}
	struct peer_call c;
	gw_call_init(o, &c, idx, SD_OP_PEER_GEN);
	c.req.flags |= SD_PEER_FLAG_MARK;
	c.req.obj.cow_oid = token;
	peer_fanout(o->s, &c, 1);
}

/*
 * EC read of [off, off+len) of one object. Guarantees: the bytes returned
 * all come from one version (the one d fragments agree on), never older
 * than an acknowledged write. A range inside one data fragment is first a
 * sole read of that fragment's holder (in process when this sheep holds
 * it): served alone when the holder knows its fragment current
 * (docs/architecture.md, "Reading one copy"). Otherwise the data holders
 * of the range are read and every other holder probed in one round and,
 * when one is down, lacks the fragment or fails its checksum, only the
 * range asked for is decoded from other fragments of that version; a sole
 * candidate the round finds at the newest version everywhere is confirmed.
 * When no version has d fragments, an interrupted two-phase write is
 * finished (gw_settle) and SD_RES_AGAIN asks the caller to read again;
 * mixed generations while a write is in flight are SD_RES_AGAIN too;
 * otherwise NO_OBJ (nothing anywhere) or EIO.
 */
int gw_read_ec(struct gw_obj *o, void *buf, uint32_t len, uint32_t off)
{
	struct ec_extent ext[GW_MAX_WIDTH];
	int ne = ec_map_range(&o->pol, o->obj_size, off, len, ext, GW_MAX_WIDTH);
	if (ne < 0)
		return SD_RES_INVALID_PARMS;
	int sole = -1; /* the data fragment asked alone */
	uint64_t token = 0, cand_ver = 0;
	if (ne == 1 && ext[0].idx < o->d && o->holder[ext[0].idx] && !o->s->opt.test_no_sole) {
		sole = ext[0].idx;
		if (gw_read_sole(o, sole, buf, len, ext[0].frag_off, &token, &cand_ver) ==
		    SD_RES_SUCCESS) {
			sheep_metrics_sole_read(o->s->metrics, true);
			return SD_RES_SUCCESS;
		}
		sheep_metrics_sole_read(o->s->metrics, false);
	}
	int neterr0 = o->neterr;
	/* Fragment i: which extent it serves (-1 none). Contiguous layout
	 * gives each fragment at most one extent of a contiguous range. */
	int ext_of[GW_MAX_WIDTH];
	for (int i = 0; i < GW_MAX_WIDTH; i++)
		ext_of[i] = -1;
	for (int k = 0; k < ne; k++)
		ext_of[ext[k].idx] = k;
	struct peer_call calls[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_READ);
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
			gw_call_state(&mc[k], &st[i]);
			if (gw_res_is_retry(st[i].res))
				return st[i].res;
		}
		gw_lc_align(o, st);
	}
	/* An early-acknowledged write is pending on some fragment: it may be
	 * acknowledged with its commits still on their way. Decide it
	 * (gw_settle_early commits it when it is) and read again, so a read
	 * after an acknowledgement, through any sheep, sees the write. One not
	 * yet decided (still being prepared, or left so by a coordinator that
	 * died, until it is SD_PEER_PEND_GRACE_MS old) is waited for: were the
	 * older generation served now, the write could still be committed
	 * later and the range change under its reader. */
	bool early = o->saw_early;
	uint64_t vmax;
	uint64_t ver = gw_choose_version(st, o->width, o->d, &vmax);
	if (o->saw_early) {
		struct frag_state gs[GW_MAX_WIDTH];
		o->saw_early = false;
		gw_test_pause(o, "read-early");
		/* The probe failing (a holder busy, the epoch moved) is no
		 * licence to serve what the round read: that may be the older
		 * generation under a decided write. Nor is finding the write
		 * gone: someone committed it since the round (the probe then
		 * sees a newer version than the round did). Both read again. */
		int pr = gw_probe(o, gs);
		if (pr != SD_RES_SUCCESS)
			return pr;
		if (gw_settle_early(o, gs) != SD_RES_EIO)
			return SD_RES_AGAIN;
		uint64_t now;
		gw_choose_version(gs, o->width, 1, &now);
		if (now > vmax)
			return SD_RES_AGAIN;
	}
	if (ver == 0) {
		if (gw_all_absent(st, o->width))
			return SD_RES_NO_OBJ;
		int answered = 0;
		for (int i = 0; i < o->width; i++)
			answered += st[i].res == SD_RES_SUCCESS;
		struct frag_state gs[GW_MAX_WIDTH];
		int pr = gw_probe(o, gs);
		if (pr != SD_RES_SUCCESS)
			return pr;
		if (gw_settle(o, gs) == SD_RES_SUCCESS)
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
	if (nw == 0) {
		/* The candidate's version is the newest anything probed holds,
		 * d fragments have it, nothing is pending early and every probed
		 * node answered: no acknowledged write is newer (the ack rule
		 * needs d+1 fragments), so let its holder serve it alone. */
		bool all = token && gw_lc_gen_of(o, sole, cand_ver) == ver && vmax == ver &&
			   !moved && !early &&
			   o->neterr == neterr0 && o->loc[sole] == o->holder[sole];
		for (int i = 0; i < o->width && all; i++)
			all = !calls[i].node || st[i].res == SD_RES_SUCCESS ||
			      st[i].res == SD_RES_NO_OBJ;
		if (all)
			gw_confirm_sole(o, sole, token);
		return SD_RES_SUCCESS;
	}
	uint32_t rlen = hi - lo;
	uint8_t *out[GW_MAX_WIDTH] = {0};
	int ret = SD_RES_NO_MEM;
	for (int k = 0; k < nw; k++)
		if (!(out[k] = malloc(rlen)))
			goto out;
	sd_debug("degraded read of %016llx: %d fragment(s), %u bytes", (unsigned long long)o->oid,
		 nw, rlen);
	ret = gw_decode_range(o, st, ver, want, nw, lo, rlen, out);
	if (ret == SD_RES_SUCCESS)
		sheep_metrics_degraded(o->s->metrics, (uint64_t)rlen * (uint64_t)nw);
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

/*
 * Read of [off, off+len) of a replicated object. Guarantees: never bytes
 * older than an acknowledged write. First a sole read of one copy (the
 * local one if this sheep holds one, else the first holder's); when that
 * holder cannot vouch for its copy, every holder (and earlier holder,
 * until recovery settles) is probed and the newest version is read, as
 * before. A sole-read candidate that this probe finds newest, with every
 * probed node answering, is then confirmed, so later reads of it are sole
 * reads until the lease ends.
 */
int gw_read_copies(struct gw_obj *o, void *buf, uint32_t len, uint32_t off)
{
	struct peer_call calls[GW_MAX_CALLS];
	/* The data comes from this sheep's own copy when it holds one (no
	 * network), else from the first holder; the others are asked for
	 * their version only, in the same round. */
	int first = -1;
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_READ);
		if (o->holder[i] && (first < 0 || sd_node_eq(o->holder[i], &o->s->self)))
			first = i;
	}
	if (first < 0)
		return SD_RES_NO_STORE;
	uint64_t token = 0, cand_ver = 0;
	if (!o->s->opt.test_no_sole &&
	    gw_read_sole(o, first, buf, len, off, &token, &cand_ver) == SD_RES_SUCCESS) {
		sheep_metrics_sole_read(o->s->metrics, true);
		return SD_RES_SUCCESS;
	}
	sheep_metrics_sole_read(o->s->metrics, false);
	calls[first].req.obj.offset = off;
	calls[first].rbuf = buf;
	calls[first].rcap = len;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	uint32_t moved;
	int neterr0 = o->neterr;
	int r0 = gw_round(o, calls, st, &moved);
	if (r0 != SD_RES_SUCCESS)
		return r0;
	uint64_t ver = gw_choose_version(st, o->width, 1, NULL);
	if (ver == 0)
		return gw_all_absent(st, o->width) ? SD_RES_NO_OBJ : SD_RES_EIO;
	bool first_moved = moved & (1u << first);
	if (!first_moved && st[first].res == SD_RES_SUCCESS && st[first].version == ver &&
	    calls[first].rlen == len) {
		/* The candidate is the newest copy anything probed holds, and
		 * every probed node answered: an acknowledged write is on two
		 * copies at least, so none is newer. */
		bool all = token && cand_ver == ver && !moved && o->neterr == neterr0;
		for (int i = 0; i < o->width && all; i++)
			all = !calls[i].node || st[i].res == SD_RES_SUCCESS ||
			      st[i].res == SD_RES_NO_OBJ;
		if (all)
			gw_confirm_sole(o, first, token);
		return SD_RES_SUCCESS;
	}
	/* Try the other copies that hold the newest version. */
	for (int i = 0; i < o->width; i++) {
		if ((i == first && !first_moved) || st[i].res != SD_RES_SUCCESS || st[i].version != ver)
			continue;
		struct peer_call c;
		gw_call_init(o, &c, i, SD_OP_PEER_READ);
		c.req.obj.offset = off;
		c.rbuf = buf;
		c.rcap = len;
		gw_fanout(o, &c, 1);
		if (gw_res_is_retry(c.result))
			return c.result;
		if (c.result == SD_RES_SUCCESS && c.version == ver && c.rlen == len)
			return SD_RES_SUCCESS;
		if (c.result == SD_RES_SUCCESS && c.version > ver)
			return SD_RES_AGAIN;
	}
	sd_err("object %016llx: no readable copy", (unsigned long long)o->oid);
	return SD_RES_EIO;
}
