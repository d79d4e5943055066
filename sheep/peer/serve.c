/* serve.c - serving peer requests (PEER_READ/WRITE/COMMIT/GEN/...) from the local store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ec/ec.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

static int check_epoch(struct sheep *s, const struct sd_req *req)
{
	if (req->flags & SD_PEER_FLAG_ANY_EPOCH)
		return SD_RES_SUCCESS;
	struct group_status st;
	group_status(s, &st);
	uint32_t e = st.epoch;
	if (!st.synced)
		return SD_RES_NEW_NODE_VER;
	if (req->epoch < e)
		return SD_RES_OLD_NODE_VER;
	if (req->epoch > e)
		return SD_RES_NEW_NODE_VER;
	return SD_RES_SUCCESS;
}

/*
 * A version-checked update sent under the epoch just before or after ours:
 * a write in flight while the epoch moves (this node or the writer not yet
 * caught up). Refusing it would cut the write (some fragments at the new
 * version, the rest at the old one, possibly fewer than d at either);
 * applying it is safe because expect_version still admits only the
 * generation the writer read, and readers and recovery take the highest
 * version of each position, wherever it is. For the same reason such a
 * write is not told to wait for recovery (recovery keeps a fragment
 * written locally meanwhile).
 */
static bool is_checked_update(const struct sd_req *req, const void *data)
{
	if (req->opcode != SD_OP_PEER_WRITE || !data ||
	    req->data_length < sizeof(struct peer_write_hdr) ||
	    (req->flags & SD_PEER_FLAG_PREPARE))
		return false;
	struct peer_write_hdr wh;
	memcpy(&wh, data, sizeof(wh));
	return wh.mode == PEER_WRITE_UPDATE && wh.expect_version != STORE_ANY_VERSION;
}

static bool adjacent_epoch(struct sheep *s, const struct sd_req *req)
{
	struct group_status st;
	group_status(s, &st);
	return st.synced && (req->epoch + 1 == st.epoch || req->epoch == st.epoch + 1);
}

struct list_ctx {
	struct peer_frag *out;
	size_t cap, n;
	uint64_t mask, value; /* PEER_LIST filter: (oid & mask) == value (mask 0: all) */
};

static int list_one(const struct store_meta *m, void *arg)
{
	struct list_ctx *lc = arg;
	if ((m->oid & lc->mask) != lc->value)
		return 0;
	if (lc->n >= lc->cap)
		return -ENOSPC;
	struct peer_frag *f = &lc->out[lc->n++];
	memset(f, 0, sizeof(*f));
	f->oid = m->oid;
	f->idx = m->idx;
	f->copy_policy = m->copy_policy;
	f->nr_copies = m->nr_copies;
	f->frag_size = m->frag_size;
	f->version = m->version;
	f->disk_bytes = m->disk_bytes;
	f->lc_valid = m->lc.valid;
	memcpy(f->lc_delta, m->lc.delta, sizeof(f->lc_delta));
	return 0;
}

/*
 * PEER_WH_DELTA: the new parity bytes of [off, off+len) of parity fragment
 * idx, from the delta of data fragment req.obj.reserved and the parity as
 * stored at expect_version, into a new buffer (*out, freed by the caller).
 * Read before the prepare takes the fragment's lock: the prepare checks
 * expect_version again, and every change of the bytes changes the version.
 */
static int delta_parity(struct sheep *s, const struct sd_req *req, const struct peer_write_hdr *wh,
			const uint8_t *delta, uint32_t len, uint8_t **out)
{
	struct ec_policy pol;
	const struct ec_codec *codec;
	uint8_t idx = req->obj.ec_index, didx = req->obj.reserved;
	if (ec_policy_from_wire(wh->copy_policy, wh->nr_copies, &pol) || pol.d == 0 ||
	    idx < pol.d || idx >= pol.d + pol.p || didx >= pol.d || len == 0 ||
	    wh->mode != PEER_WRITE_UPDATE || wh->expect_version == STORE_ANY_VERSION)
		return -EINVAL;
	if (ec_codec_get(pol.d, pol.p, EC_BACKEND_ISAL, &codec))
		return -EINVAL;
	uint8_t *par[EC_MAX_PARITY] = {0};
	int r = -ENOMEM;
	for (int j = 0; j < pol.p; j++)
		if (!(par[j] = calloc(1, len)))
			goto out;
	uint64_t version;
	uint8_t *mine = par[idx - pol.d];
	r = store_read(s->store, req->obj.oid, idx, mine, req->obj.offset, len, &version);
	if (!r && version != wh->expect_version)
		r = -ESTALE;
	if (!r && ec_update(codec, len, didx, delta, par))
		r = -EINVAL;
	if (!r) {
		*out = mine;
		par[idx - pol.d] = NULL;
	}
out:
	for (int j = 0; j < pol.p; j++)
		free(par[j]);
	return r;
}

/* A range of fragment (oid, idx) from the store, as PEER_READ serves it: a
 * checksum failure queues a repair (recovery upcalls). */
static int read_range(struct sheep *s, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		      uint32_t len, uint64_t *version, struct store_lc *lc)
{
	int ret = store_read_lc(s->store, oid, idx, buf, off, len, version, lc);
	if (ret == -EIO && s->frag_csum_bad)
		s->frag_csum_bad(s, oid, idx);
	else if (ret == -EIO && s->frag_bad)
		s->frag_bad(s, oid, idx, false);
	return ret;
}

/* A fragment's record in a reply: bytes 32..47 (peer.h, PEER_RSP_LC). */
static void rsp_put_lc(struct sd_rsp *rsp, const struct store_lc *lc)
{
	memcpy((uint8_t *)rsp + 32, lc->delta, sizeof(lc->delta));
}

/*
 * PEER_WH_OLD (peer.h): the range's bytes at wh->expect_version, sent as
 * the interim reply before the prepare. Returns 0 once sent; else the
 * SD_RES_* to answer with, nothing prepared.
 */
static int send_old(struct sheep *s, const struct sd_req *req, const struct peer_write_hdr *wh,
		    uint32_t len, const struct peer_interim *im)
{
	uint64_t oid = req->obj.oid;
	uint8_t idx = req->obj.ec_index;
	struct store_pending pp;
	if (!im || wh->mode != PEER_WRITE_UPDATE || (wh->flags & PEER_WH_DELTA) ||
	    !(wh->flags & PEER_WH_EARLY) || len == 0)
		return SD_RES_NO_SUPPORT;
	/* A write pending here would refuse the prepare after the old bytes
	 * went out: the coordinator takes the long way and meets it there. */
	if (store_pending(s->store, oid, idx, &pp) == 0)
		return SD_RES_NO_SUPPORT;
	uint8_t *old = malloc(len);
	if (!old)
		return SD_RES_NO_MEM;
	uint64_t version = 0;
	struct store_lc flc = {0};
	int ret = read_range(s, oid, idx, old, req->obj.offset, len, &version, &flc);
	int res = ret ? sd_errno_to_res(ret)
		      : version != wh->expect_version ? SD_RES_AGAIN : SD_RES_SUCCESS;
	if (res == SD_RES_SUCCESS) {
		struct sd_rsp rsp;
		memset(&rsp, 0, sizeof(rsp));
		rsp.proto_ver = req->proto_ver;
		rsp.opcode = req->opcode;
		rsp.id = req->id;
		rsp.result = SD_RES_SUCCESS;
		rsp.obj.offset = version;
		rsp.obj.reserved[0] = PEER_RSP_INTERIM | (flc.valid ? PEER_RSP_LC : 0);
		if (flc.valid)
			rsp_put_lc(&rsp, &flc);
		rsp.data_length = len;
		if (!im->send(im->ctx, &rsp, old, len))
			res = SD_RES_NETWORK_ERROR;
	}
	free(old);
	return res;
}

static int serve_write(struct sheep *s, const struct sd_req *req, const void *data,
		       uint64_t *version, const struct peer_interim *im)
{
	if (!data || req->data_length < sizeof(struct peer_write_hdr))
		return SD_RES_INVALID_PARMS;
	struct peer_write_hdr wh;
	memcpy(&wh, data, sizeof(wh));
	uint32_t skip = peer_write_skip(&wh, req->data_length); /* riding commits: applied */
	if (!skip)
		return SD_RES_INVALID_PARMS;
	const char *buf = (const char *)data + skip;
	uint32_t len = req->data_length - skip;
	uint64_t oid = req->obj.oid;
	uint8_t idx = req->obj.ec_index;
	uint32_t off = req->obj.offset;
	struct store_meta meta = {.oid = oid,
				  .idx = idx,
				  .copy_policy = wh.copy_policy,
				  .nr_copies = wh.nr_copies,
				  .frag_size = wh.frag_size,
				  .version = wh.new_version,
				  .wr_touched = wh.touched};
	if (wh.flags & PEER_WH_LC) {
		meta.lc.valid = 1;
		memcpy(meta.lc.delta, wh.lc_delta, sizeof(meta.lc.delta));
	}
	if (wh.frag_size == 0 && wh.mode != PEER_WRITE_UPDATE)
		return SD_RES_INVALID_PARMS;
	int ret;
	uint64_t t0 = sd_now_ns();
	if (req->flags & SD_PEER_FLAG_PREPARE) {
		if (wh.write_id == 0 || wh.mode > PEER_WRITE_UPSERT)
			return SD_RES_INVALID_PARMS;
		/* Not known current until this write is committed (or a probing
		 * read confirms it again), whatever becomes of it: even refused
		 * (its writer expected a newer version), or a version-only bump
		 * dropped by the test hook below (a power cut that loses one
		 * loses the marks too). */
		peer_sole_forget(s, oid, idx);
		/* Range updates are prepared against the version they expect;
		 * every other mode writes a whole new fragment. */
		bool whole = wh.mode != PEER_WRITE_UPDATE;
		struct store_pending pp;
		/* The coordinator's previous write of this fragment, acknowledged
		 * and maybe not yet committed here: commit it first. */
		if (wh.prev_write_id && store_pending(s->store, oid, idx, &pp) == 0 &&
		    pp.write_id == wh.prev_write_id && pp.new_version == wh.expect_version)
			store_commit(s->store, oid, idx, pp.new_version, pp.write_id);
		if ((wh.flags & PEER_WH_OLD) && (ret = send_old(s, req, &wh, len, im)))
			return ret;
		uint8_t pf = (wh.flags & PEER_WH_EARLY) && !whole ? STORE_PREP_EARLY : 0;
		if ((wh.flags & PEER_WH_LAZY) && pf && len == 0) {
			if (s->opt.test_drop_lazy)
				return SD_RES_SUCCESS; /* test: the bump a power cut may lose */
			pf |= STORE_PREP_LAZY;
		}
		uint8_t *par = NULL;
		ret = (wh.flags & PEER_WH_DELTA)
			      ? delta_parity(s, req, &wh, (const uint8_t *)buf, len, &par)
			      : 0;
		if (ret == 0)
			ret = store_prepare_ex(s->store, &meta, whole, wh.expect_version,
					       wh.write_id, SD_PEER_PEND_GRACE_MS, pf,
					       par ? par : (const uint8_t *)buf, off, len);
		free(par);
		if (ret == -EBUSY)
			return SD_RES_AGAIN;
		return sd_errno_to_res(ret);
	}
	switch (wh.mode) {
	case PEER_WRITE_UPDATE:
		ret = store_write_lc(s->store, oid, idx, wh.expect_version, wh.new_version, &meta.lc,
				     buf, off, len);
		break;
	case PEER_WRITE_CREATE:
		ret = store_create(s->store, &meta, buf, off, len);
		break;
	case PEER_WRITE_REPLACE:
		/* One rename: a crash leaves the old fragment or the new one,
		 * never neither (remove-then-create could lose it). */
		ret = store_replace(s->store, &meta, buf, off, len);
		break;
	case PEER_WRITE_UPSERT:
		/* Two upserts of a new fragment can race: the loser's create
		 * finds it present and writes into it instead. */
		for (int tries = 0; tries < 3; tries++) {
			ret = store_write_lc(s->store, oid, idx, STORE_ANY_VERSION, wh.new_version,
					     &meta.lc, buf, off, len);
			if (ret != -ENOENT)
				break;
			ret = store_create(s->store, &meta, buf, off, len);
			if (ret != -EEXIST)
				break;
		}
		break;
	default:
		return SD_RES_INVALID_PARMS;
	}
	if (ret == 0)
		*version = wh.new_version;
	/* A copy written by a write of this very epoch is the newest one: an
	 * update applies only over the version the coordinator chose, the
	 * other modes write the whole copy. (EC fragments are written in two
	 * phases: their commits mark them, commit_and_mark.) */
	if (ret == 0 && wh.copy_policy == 0 && check_epoch(s, req) == SD_RES_SUCCESS)
		peer_sole_mark(s, oid, idx, wh.new_version, req->epoch, t0);
	return sd_errno_to_res(ret);
}

/* SD_PEER_FLAG_COMMIT_PREV on a read: commit that pending write first. */
static void commit_prev(struct sheep *s, const struct sd_req *req)
{
	struct store_pending pp;
	if (!(req->flags & SD_PEER_FLAG_COMMIT_PREV) || !req->obj.cow_oid ||
	    store_pending(s->store, req->obj.oid, req->obj.ec_index, &pp) ||
	    pp.write_id != req->obj.cow_oid)
		return;
	store_commit(s->store, req->obj.oid, req->obj.ec_index, pp.new_version, pp.write_id);
}

/* Is the request of this holder's epoch exactly (commits are served at
 * any epoch; only one of this epoch may mark what it applies)? */
static bool same_epoch(struct sheep *s, const struct sd_req *req)
{
	struct group_status st;
	group_status(s, &st);
	return st.synced && req->epoch == st.epoch;
}

/*
 * Commit write (new_version, wid) of fragment (oid, idx) and, when this
 * call applied an early-ack write this process prepared, mark the
 * fragment current (sole.c), dated when the write was prepared here: a
 * write acknowledged without this fragment after that moment unmarked it
 * (its floor is later) or waited out the lease, so the mark can vouch for
 * nothing such a write left behind. Only early-ack writes: their commits
 * are sent once the write is decided, so its version becomes the
 * object's; a plain two-phase write's commit may land on fewer than d
 * fragments before its coordinator dies, and the older generation is then
 * kept (docs/architecture.md). A write replayed from the log has no date
 * and marks nothing; nor does a commit of a write already applied (its
 * date may be older than an unmark since). A commit of a batch (quiet)
 * that finds no such write pending does nothing more: its answer is not
 * looked at, and it is usually one the coordinator's next prepare or read
 * already carried (prev_write_id, COMMIT_PREV): about half of a 4:2
 * volume's batched commits at QD32 (session 17); store_commit would open
 * the fragment to say whether it was applied.
 */
static int commit_and_mark(struct sheep *s, const struct sd_req *req, uint64_t oid, uint8_t idx,
			   uint64_t new_version, uint64_t wid, bool quiet)
{
	struct store_pending pp;
	uint64_t since = 0;
	bool pending = store_pending(s->store, oid, idx, &pp) == 0 && pp.write_id == wid &&
		       pp.new_version == new_version;
	if (!pending && quiet)
		return -ENOENT;
	if (pending && (pp.flags & STORE_PREP_EARLY))
		since = pp.prep_ns;
	/* SHEEP_TEST_DROP_LAZY loses the bumps of unchanged fragments without
	 * the restart (a new epoch: no marks, no cached versions) that a
	 * power cut losing them brings: readers must keep meeting the lost
	 * bumps, so no commit marks anything then. */
	if (s->opt.test_drop_lazy)
		since = 0;
	int ret = store_commit(s->store, oid, idx, new_version, wid);
	if (ret == 0 && since && same_epoch(s, req))
		peer_sole_mark(s, oid, idx, new_version, req->epoch, since);
	return ret;
}

/* PEER_COMMIT: apply or drop a prepared write. */
static int serve_commit(struct sheep *s, const struct sd_req *req, const void *data)
{
	if (!data || req->data_length < sizeof(struct peer_commit))
		return SD_RES_INVALID_PARMS;
	struct peer_commit pc;
	memcpy(&pc, data, sizeof(pc));
	int ret = pc.abort ? store_abort(s->store, req->obj.oid, req->obj.ec_index, pc.write_id)
			   : commit_and_mark(s, req, req->obj.oid, req->obj.ec_index,
					     pc.new_version, pc.write_id, false);
	return sd_errno_to_res(ret);
}

static void commit_ents(struct sheep *s, const struct sd_req *req, const void *ents, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct peer_commit_ent e;
		memcpy(&e, (const char *)ents + i * sizeof(e), sizeof(e));
		commit_and_mark(s, req, e.oid, e.idx, e.new_version, e.write_id, true);
	}
}

/* PEER_COMMIT_BATCH: apply prepared writes of several fragments. */
static int serve_commit_batch(struct sheep *s, const struct sd_req *req, const void *data)
{
	size_t n = req->data_length / sizeof(struct peer_commit_ent);
	if (!data || !n || req->data_length % sizeof(struct peer_commit_ent) ||
	    n > SD_PEER_COMMIT_BATCH_MAX)
		return SD_RES_INVALID_PARMS;
	commit_ents(s, req, data, n);
	return SD_RES_SUCCESS;
}

/* The commits riding on a PEER_WRITE (whdr.nr_commits), applied before
 * anything else looks at the request: at any epoch, as a batch's are.
 * False when the count does not fit the payload (nothing applied). */
static bool ride_commits(struct sheep *s, const struct sd_req *req, const void *data)
{
	if (req->opcode != SD_OP_PEER_WRITE || !data ||
	    req->data_length < sizeof(struct peer_write_hdr))
		return true;
	struct peer_write_hdr wh;
	memcpy(&wh, data, sizeof(wh));
	if (!wh.nr_commits)
		return true;
	if (!peer_write_skip(&wh, req->data_length))
		return false;
	if (s->store)
		commit_ents(s, req, (const char *)data + sizeof(wh), wh.nr_commits);
	return true;
}

/* PEER_GEN: what generation the fragment is at and what is pending on it. */
static int serve_gen(struct sheep *s, const struct sd_req *req, void *rbuf, uint32_t *rlen,
		     uint64_t *version)
{
	if (!rbuf || req->data_length < sizeof(struct peer_gen))
		return SD_RES_INVALID_PARMS;
	struct peer_gen g = {0};
	struct store_meta m;
	struct store_pending p;
	if (req->flags & SD_PEER_FLAG_UNMARK)
		peer_sole_unmark(s, req->obj.oid, req->obj.ec_index);
	if (req->flags & SD_PEER_FLAG_MARK)
		peer_sole_confirm(s, req->obj.oid, req->obj.ec_index, req->obj.cow_oid);
	bool pend;
	/* One moment: a commit landing between the two would show the
	 * fragment at its old version with nothing pending (stale). */
	int ret = store_stat_pending(s->store, req->obj.oid, req->obj.ec_index, &m, &p, &pend);
	if (ret && ret != -ENOENT)
		return sd_errno_to_res(ret);
	if (ret == 0) {
		g.has_frag = 1;
		g.version = *version = m.version;
		g.write_id = m.write_id;
		g.base = m.wr_base;
		g.touched = m.wr_touched;
		g.lc_valid = m.lc.valid;
		memcpy(g.lc_delta, m.lc.delta, sizeof(g.lc_delta));
	}
	if ((req->flags & SD_PEER_FLAG_STALE) && s->frag_bad)
		s->frag_bad(s, req->obj.oid, req->obj.ec_index, true);
	if (pend) {
		g.has_pend = 1;
		g.pend_version = p.new_version;
		g.pend_id = p.write_id;
		g.pend_age_ms = p.age_ms;
		g.pend_early = (p.flags & STORE_PREP_EARLY) != 0;
		g.pend_touched = p.touched;
		g.pend_base = p.expect_version;
		g.pend_lc_valid = p.lc.valid;
		memcpy(g.pend_lc_delta, p.lc.delta, sizeof(g.pend_lc_delta));
	}
	memcpy(rbuf, &g, sizeof(g));
	*rlen = sizeof(g);
	return g.has_frag || g.has_pend ? SD_RES_SUCCESS : SD_RES_NO_OBJ;
}

/* PEER_COPY (peer.h): a local copy of one fragment under a new object id. */
static int serve_copy(struct sheep *s, const struct sd_req *req, const void *data)
{
	uint64_t want, got = 0;
	if (!data || req->data_length != sizeof(want) || req->obj.oid == req->obj.cow_oid)
		return SD_RES_INVALID_PARMS;
	memcpy(&want, data, sizeof(want));
	struct store_meta m;
	int ret = store_stat(s->store, req->obj.cow_oid, req->obj.ec_index, &m);
	if (ret)
		return sd_errno_to_res(ret);
	if (m.version != want)
		return SD_RES_EIO;
	void *buf = malloc(m.frag_size ? m.frag_size : 1);
	if (!buf)
		return SD_RES_NO_MEM;
	ret = store_read(s->store, req->obj.cow_oid, req->obj.ec_index, buf, 0, m.frag_size, &got);
	if (!ret && got != want)
		ret = -EIO;
	if (!ret) {
		struct store_meta d = m;
		d.oid = req->obj.oid;
		d.version = 1;
		d.write_id = 0;
		memset(&d.lc, 0, sizeof(d.lc)); /* every fragment of the copy at 1 */
		ret = store_replace(s->store, &d, buf, 0, m.frag_size);
	}
	free(buf);
	return sd_errno_to_res(ret);
}

void peer_serve(struct sheep *s, const struct sd_req *req, const void *data, struct sd_rsp *rsp,
		void *rbuf, uint32_t *rlen)
{
	peer_serve_ex(s, req, data, rsp, rbuf, rlen, NULL);
}

void peer_serve_ex(struct sheep *s, const struct sd_req *req, const void *data,
		   struct sd_rsp *rsp, void *rbuf, uint32_t *rlen, const struct peer_interim *im)
{
	*rlen = 0;
	bool any_epoch = req->opcode == SD_OP_PEER_COMMIT || req->opcode == SD_OP_PEER_COMMIT_BATCH;
	int res = any_epoch ? SD_RES_SUCCESS : check_epoch(s, req);
	if (!ride_commits(s, req, data))
		res = SD_RES_INVALID_PARMS;
	uint64_t version = 0, token = 0;
	uint8_t rsp_flags = 0;
	struct store_lc flc = {0};
	bool update = is_checked_update(req, data);
	if ((res == SD_RES_OLD_NODE_VER || res == SD_RES_NEW_NODE_VER) && update &&
	    adjacent_epoch(s, req))
		res = SD_RES_SUCCESS;
	if (res != SD_RES_SUCCESS)
		goto out;
	if (!s->store) {
		res = SD_RES_NO_STORE;
		goto out;
	}
	int ret;
	/* recovery upcall (s->frag_busy, set to sheep/rebuild/ops.c): a gateway touching a fragment
	 * this node is still recovering is told to retry (it goes first); a
	 * checksum mismatch queues a repair of the fragment. */
	if ((req->opcode == SD_OP_PEER_READ || req->opcode == SD_OP_PEER_WRITE ||
	     (req->opcode == SD_OP_PEER_GEN && !(req->flags & SD_PEER_FLAG_RECOVERING))) &&
	    !(req->flags & SD_PEER_FLAG_ANY_EPOCH) && !update &&
	    s->frag_busy && s->frag_busy(s, req->obj.oid, req->obj.ec_index)) {
		res = SD_RES_AGAIN;
		goto out;
	}
	switch (req->opcode) {
	case SD_OP_PEER_READ: {
		commit_prev(s, req);
		/* A prepared write (of any kind) pending on it, looked at before
		 * the read: a commit landing between the two then leaves the
		 * new bytes read, never the old ones read and the write gone
		 * from the table (an acknowledged write missed). A write
		 * prepared after the look is concurrent with this read. */
		struct store_pending pp;
		bool pend = store_pending(s->store, req->obj.oid, req->obj.ec_index, &pp) == 0;
		ret = read_range(s, req->obj.oid, req->obj.ec_index, rbuf, req->obj.offset,
				 req->data_length, &version, &flc);
		if (ret == 0 && flc.valid)
			rsp_flags |= PEER_RSP_LC;
		res = sd_errno_to_res(ret);
		if (ret == 0)
			*rlen = req->data_length;
		if (ret != 0 && ret != -ENOENT)
			pend = false;
		if (pend && (pp.flags & STORE_PREP_EARLY))
			rsp_flags |= PEER_RSP_EARLY;
		/* A sole read: the data only if this copy is known current and
		 * no prepared write is pending on it (an uncommitted two-phase
		 * write may be acknowledged, or committed elsewhere already). */
		if ((req->flags & SD_PEER_FLAG_SOLE) &&
		    (ret != 0 || pend ||
		     !peer_sole_ok(s, req->obj.oid, req->obj.ec_index, version, req->epoch))) {
			res = SD_RES_SUCCESS;
			*rlen = 0;
			rsp_flags |= PEER_RSP_NOT_SOLE;
			rsp_flags &= (uint8_t)~PEER_RSP_LC;
			if (ret == 0 && !pend)
				token = peer_sole_candidate(s, req->obj.oid, req->obj.ec_index,
							    version, req->epoch);
		}
		break;
	}
	case SD_OP_PEER_WRITE:
		res = serve_write(s, req, data, &version, im);
		break;
	case SD_OP_PEER_REMOVE:
		peer_sole_forget(s, req->obj.oid, req->obj.ec_index);
		res = sd_errno_to_res(store_remove(s->store, req->obj.oid, req->obj.ec_index));
		break;
	case SD_OP_PEER_COMMIT:
		res = serve_commit(s, req, data);
		break;
	case SD_OP_PEER_COMMIT_BATCH:
		res = serve_commit_batch(s, req, data);
		break;
	case SD_OP_PEER_COPY:
		res = serve_copy(s, req, data);
		break;
	case SD_OP_PEER_GEN:
		res = serve_gen(s, req, rbuf, rlen, &version);
		break;
	case SD_OP_PEER_STAT: {
		struct store_meta m;
		if (req->data_length < sizeof(struct peer_frag)) {
			res = SD_RES_INVALID_PARMS;
			break;
		}
		ret = store_stat(s->store, req->obj.oid, req->obj.ec_index, &m);
		res = sd_errno_to_res(ret);
		if (ret == 0) {
			struct list_ctx lc = {.out = rbuf, .cap = 1};
			list_one(&m, &lc);
			version = m.version;
			*rlen = sizeof(struct peer_frag);
		}
		break;
	}
	case SD_OP_PEER_LIST: {
		struct list_ctx lc = {.out = rbuf,
				      .cap = req->data_length / sizeof(struct peer_frag),
				      .mask = req->obj.cow_oid,
				      .value = req->obj.oid & req->obj.cow_oid};
		ret = store_for_each(s->store, list_one, &lc);
		res = ret == -ENOSPC ? SD_RES_NO_SPACE : sd_errno_to_res(ret);
		if (ret == 0)
			*rlen = (uint32_t)(lc.n * sizeof(struct peer_frag));
		break;
	}
	default:
		res = SD_RES_NO_SUPPORT;
	}
out:
	rsp->result = res;
	rsp->obj.offset = version;
	rsp->obj.reserved[0] = rsp_flags;
	rsp->obj.peer_token = token;
	if (rsp_flags & PEER_RSP_LC)
		rsp_put_lc(rsp, &flc);
	rsp->data_length = *rlen;
}
