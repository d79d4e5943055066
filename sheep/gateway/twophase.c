/* twophase.c - two-phase EC writes: prepare everywhere, commit, and settle a write whose coordinator died. */
#include "lib/testhook.h"
#include "sheep/gateway/gateway_priv.h"

/* ---- two-phase writes (EC objects) ---- */

uint64_t gw_new_write_id(struct gw_obj *o)
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
int gw_test_crash_point(struct gw_obj *o)
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

/*
 * Which protocol the crash hook asks for, without taking it: a number k
 * (gw_test_crash_point) runs the write with its commits before the
 * acknowledgement, one at a time; "before-ack" makes an early-ack write's
 * coordinator die once its prepares are durable, before it acknowledges;
 * "after-ack" makes it die after acknowledging, before any commit is sent;
 * "mid-prepare" makes it send the prepares of every fragment but the
 * changed data fragments, then die (a power cut in the middle of the
 * fan-out); "after-old" makes it die once the data prepare sent ahead
 * (PEER_WH_OLD) answered with the old bytes, before the parity prepares.
 */
int gw_test_crash_mode(struct gw_obj *o)
{
	const char *path = o->s->opt.test_crash_file;
	char buf[16] = "";
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return GW_CRASH_NONE;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (!strncmp(buf, "before-ack", 10))
		return GW_CRASH_BEFORE_ACK;
	if (!strncmp(buf, "after-ack", 9))
		return GW_CRASH_AFTER_ACK;
	if (!strncmp(buf, "mid-prepare", 11))
		return GW_CRASH_MID_PREPARE;
	if (!strncmp(buf, "after-old", 9))
		return GW_CRASH_AFTER_OLD;
	return GW_CRASH_COMMITS;
}

/* Test hook (lib/testhook.h): hold this write at point ("rewrite-read"
 * after gw_rewrite_whole's read, "prepared" between a two-phase write's
 * prepares and its commits) while a test changes the cluster. */
void gw_test_pause(struct gw_obj *o, const char *point)
{
	sd_test_pause(o->s->opt.test_pause_file, point, o->s->self.port, o->oid);
}

/*
 * A write built from a read of the object at version o->base_version may
 * commit only if that read is still the newest state: no fragment, at a
 * current holder or at a live earlier one, is applied at a higher version,
 * and no other write (write id other than wid) is pending anywhere, as
 * that one may commit any moment. Called with this write prepared on its
 * targets, so a later writer's prepare there waits (AGAIN) for it, and a
 * writer of an earlier epoch cannot prepare at the peers that answered.
 * Returns SUCCESS or the code to abort with (AGAIN: read and retry).
 */
int gw_check_base(struct gw_obj *o, uint64_t wid)
{
	struct peer_call calls[GW_MAX_CALLS];
	int pos_of[GW_MAX_CALLS];
	for (int i = 0; i < o->width; i++) {
		gw_call_init(o, &calls[i], i, SD_OP_PEER_GEN);
		calls[i].node = o->holder[i];
	}
	int n = gw_add_shadows(o, calls, pos_of);
	gw_fanout(o, calls, n);
	for (int c = 0; c < n; c++) {
		if (!calls[c].node)
			continue;
		if (gw_res_is_retry(calls[c].result))
			return calls[c].result;
		struct frag_state st;
		gw_call_state(&calls[c], &st);
		bool newer = st.res == SD_RES_SUCCESS && st.version > o->base_version;
		bool other = st.has_pend && st.pend_id != wid &&
			     calls[c].gen.pend_age_ms < SD_PEER_PEND_GRACE_MS;
		if (newer || other) {
			sd_info("%016llx: fragment %d on %s:%u moved since it was read at version %llu "
				"(%s %llu): not committing, reading again",
				(unsigned long long)o->oid, calls[c].req.obj.ec_index,
				calls[c].node->addr, calls[c].node->port,
				(unsigned long long)o->base_version,
				newer ? "applied" : "pending",
				(unsigned long long)(newer ? st.version : st.pend_version));
			return SD_RES_AGAIN;
		}
	}
	return SD_RES_SUCCESS;
}

/* Send commit (or abort) calls cc[0..n); with the test hook armed, one at
 * a time and die after crash_at successes. */
void gw_send_commits(struct gw_obj *o, struct peer_call *cc, int n, int crash_at)
{
	/* Test hook: pause point "commit-one" holds the write with one
	 * fragment committed and the others still prepared (a plan then sees
	 * the object on one holder: tests/func/132). */
	if (crash_at < 0 && n > 1 &&
	    sd_test_pause_armed(o->s->opt.test_pause_file, "commit-one", o->oid)) {
		gw_fanout(o, cc, 1);
		gw_test_pause(o, "commit-one");
		gw_fanout(o, cc + 1, n - 1);
		return;
	}
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
void gw_commit_init(struct gw_obj *o, struct peer_call *c, const struct sd_node *node, int idx,
			uint64_t new_version, uint64_t wid, bool abort)
{
	gw_call_init(o, c, idx, SD_OP_PEER_COMMIT);
	c->node = node;
	c->commit = (struct peer_commit){.new_version = new_version, .write_id = wid,
					 .abort = abort};
	c->wbuf = &c->commit;
	c->wlen = sizeof(c->commit);
}

/* The commits (abort: drops) of write wid on every call of calls[0..n)
 * that prepared it, into cc; returns how many. */
static int commits_of(struct gw_obj *o, const struct peer_call *calls, int n, uint64_t wid,
		      bool abort, struct peer_call *cc)
{
	int nc = 0;
	for (int i = 0; i < n; i++)
		if (calls[i].node && calls[i].result == SD_RES_SUCCESS)
			gw_commit_init(o, &cc[nc++], calls[i].node, calls[i].req.obj.ec_index,
				       calls[i].whdr.new_version, wid, abort);
	return nc;
}

/*
 * The unchanged data fragments of a range update (o->silent, write.c)
 * hold it as they are: their holders were sent nothing. When every
 * prepare was answered they count as they are (members of the view at
 * the version the generation's record names). When some holder failed
 * (or a fragment was out of the write already: missing or behind), the
 * cluster may be losing nodes the view does not show yet, so each is
 * asked (PEER_GEN) and counts only if it answers at that version with no
 * other early-ack write pending (a probe refused with a retry code sets
 * *retry, when it is 0: the write is tried again under the new view).
 * Returns how many count; the others are cleared from o->silent.
 */
static int count_silent(struct gw_obj *o, const struct peer_call *calls, int n, int *retry)
{
	bool failed = false; /* a prepare failed, or a fragment was out already */
	for (int i = 0; i < n; i++) {
		int f = calls[i].req.obj.ec_index;
		failed |= calls[i].node ? calls[i].result != SD_RES_SUCCESS
					: f >= o->width || !o->silent[f];
	}
	struct peer_call pc[GW_MAX_WIDTH];
	int np = 0, cnt = 0;
	for (int i = 0; i < o->width; i++) {
		if (!o->silent[i])
			continue;
		if (!failed) {
			cnt++;
			continue;
		}
		gw_call_init(o, &pc[np], i, SD_OP_PEER_GEN);
		pc[np++].node = o->silent[i];
	}
	if (!np)
		return cnt;
	/* Test point (tests/func/036): the epoch moves before the probes. */
	gw_test_pause(o, "silent-probe");
	gw_fanout(o, pc, np);
	for (int k = 0; k < np; k++) {
		int i = pc[k].req.obj.ec_index;
		struct frag_state fs;
		gw_call_state(&pc[k], &fs);
		/* The epoch moved (or the holder is busy): the write is tried
		 * again under the new view, as a bump refused so made it. */
		if (gw_res_is_retry(fs.res) && !*retry)
			*retry = fs.res;
		bool holds = fs.res == SD_RES_SUCCESS && fs.real == o->silent_ver[i] &&
			     !(fs.has_pend && fs.pend_early);
		if (holds)
			cnt++;
		else
			o->silent[i] = NULL;
	}
	return cnt;
}

/* The zones holding a write whose prepares were sent (calls[0..n)): the
 * prepared ones, and the unchanged data fragments (o->silent) when silent
 * counted them. *maybe (may be NULL): those plus the holders that did not
 * answer (they may have prepared it). */
static int zones_holding(const struct gw_obj *o, const struct peer_call *calls, int n, int silent,
			 int *maybe)
{
	const struct sd_node *pn[GW_MAX_CALLS + GW_MAX_WIDTH] = {0};
	const struct sd_node *un[GW_MAX_CALLS + GW_MAX_WIDTH] = {0};
	int m = 0;
	for (int i = 0; i < n && i < GW_MAX_CALLS; i++, m++) {
		if (!calls[i].node)
			continue;
		if (calls[i].result == SD_RES_SUCCESS)
			pn[m] = un[m] = calls[i].node;
		else if (calls[i].result == SD_RES_NETWORK_ERROR)
			un[m] = calls[i].node;
	}
	for (int i = 0; silent && i < o->width; i++, m++)
		pn[m] = un[m] = o->silent[i];
	if (maybe)
		*maybe = gw_zones_of(un, m);
	return gw_zones_of(pn, m);
}

/*
 * An early-ack write whose prepares were sent (calls[0..n), write wid).
 * The rule every sheep applies alike: a write prepared on at least
 * gw_ack_threshold() fragments is decided and will be committed wherever
 * it is prepared (by this coordinator's commit queue, by its next write to
 * the object, or by any reader or writer that meets it, gw_settle_early),
 * so it is acknowledged now, with one durable step on the critical path.
 * A write that cannot have reached that count, even counting the holders
 * that did not answer, is aborted. In between (too few answers, but
 * silent holders could have prepared it) it is left pending and reported
 * failed: the next reader or writer decides it by what it finds.
 */
static int write_early(struct gw_obj *o, struct peer_call *calls, int n, uint64_t wid, int hook)
{
	int retry;
	gw_count_acks(o, calls, n, &retry);
	int silent = count_silent(o, calls, n, &retry), maybe;
	int prepared = zones_holding(o, calls, n, silent, &maybe), ok = prepared;
	/* Counted in zones, as the ack rule counts (ack.c): five fragments
	 * prepared in four zones are not decided, so they are aborted, and a
	 * write reported failed leaves its range as it was. */
	if (prepared)
		gw_test_pause(o, "prepared");
	int need = gw_ack_threshold(o);
	/* Every changed data fragment that was sent its bytes must hold them
	 * prepared, whatever the count: readers of a data range read only
	 * the data fragments, and a changed one at the base without the
	 * write is, to them, proof the write never reached the count
	 * (gw_settle_early drops it). So such a write is not acknowledged:
	 * it is dropped here (no reader can find it decided), and the
	 * gateway redoes it, under the next epoch when its holder was
	 * unreachable. */
	bool data_failed = false;
	for (int i = 0; i < n; i++)
		data_failed |= calls[i].node && calls[i].wlen && calls[i].req.obj.ec_index < o->d &&
			       calls[i].result != SD_RES_SUCCESS;
	if (prepared >= need && data_failed) {
		struct peer_call cc[GW_MAX_WIDTH];
		gw_fanout(o, cc, commits_of(o, calls, n, wid, true, cc));
		sd_info("%016llx: a changed data fragment did not take the write: dropped, to be "
			"redone", (unsigned long long)o->oid);
		gw_ack_result(o, ok, retry);
		return retry ? retry : SD_RES_EIO;
	}
	if (prepared < need) {
		if (maybe < need) {
			struct peer_call cc[GW_MAX_WIDTH];
			gw_fanout(o, cc, commits_of(o, calls, n, wid, true, cc));
		}
		return gw_ack_result(o, ok, retry);
	}
	if (hook == GW_CRASH_BEFORE_ACK && gw_test_crash_point(o) >= 0) {
		sd_err("test hook: %016llx: dying with the write prepared on %d fragment(s), "
		       "before the acknowledgement", (unsigned long long)o->oid, prepared);
		kill(getpid(), SIGKILL);
	}
	bool die = hook == GW_CRASH_AFTER_ACK && gw_test_crash_point(o) >= 0;
	gw_commitq_add(o, calls, n, wid, die);
	o->early_wid = wid;
	return gw_ack_result(o, ok, retry);
}

/*
 * PEER_WH_OLD (peer.h): send the changed data fragment's prepare ahead and
 * take the old bytes of its range from its first reply; fold old ^ new
 * into o->old_first.buf, which the parities' delta prepares carry. 0: the
 * data prepare is on its way (its final reply comes with the others');
 * else nothing was prepared: a retry code, or -1 (the holder did not
 * answer first: the caller reads the old bytes and starts again).
 */
static int old_first(struct gw_obj *o, struct peer_call *calls, int n, int hook)
{
	struct peer_call *c = NULL;
	for (int i = 0; i < n && !c; i++)
		if (calls[i].node && calls[i].wlen && calls[i].req.obj.ec_index == o->old_first.idx)
			c = &calls[i];
	if (!c)
		return -1;
	c->whdr.flags |= PEER_WH_OLD;
	c->rbuf = o->old_first.buf;
	c->rcap = c->wlen;
	gw_set_hints(o, c, 1, true);
	int first = peer_call_first(o->s, c);
	gw_ride_release(c, 1);
	if (!first) {
		o->neterr += c->result == SD_RES_NETWORK_ERROR;
		if (c->result == SD_RES_SUCCESS) {
			/* Prepared without a first reply (a sheep that does not
			 * know the flag): no old bytes, so drop it. */
			struct peer_call ab;
			gw_commit_init(o, &ab, c->node, c->req.obj.ec_index, c->whdr.new_version,
				       c->whdr.write_id, true);
			gw_fanout(o, &ab, 1);
		}
		c->whdr.flags &= (uint8_t)~PEER_WH_OLD;
		c->rbuf = NULL;
		c->rcap = 0;
		return gw_res_is_retry(c->result) ? c->result : -1;
	}
	if (hook == GW_CRASH_AFTER_OLD && gw_test_crash_point(o) >= 0) {
		sd_err("test hook: %016llx: dying with the data prepare sent, before the parity "
		       "prepares", (unsigned long long)o->oid);
		kill(getpid(), SIGKILL);
	}
	uint8_t *d = o->old_first.buf;
	const uint8_t *nw = c->wbuf;
	for (uint32_t b = 0; b < c->wlen; b++)
		d[b] ^= nw[b];
	if (c->rlen != c->wlen) {
		/* Not what was asked: the parities get nothing, so the data
		 * prepare alone falls short of the count and is dropped. */
		sd_err("%016llx: old bytes: %u of %u", (unsigned long long)o->oid, c->rlen,
		       c->wlen);
		for (int i = 0; i < n; i++)
			if (calls[i].req.obj.ec_index >= o->d)
				calls[i].node = NULL;
	}
	return 0;
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
int gw_write_2pc(struct gw_obj *o, struct peer_call *calls, int n)
{
	uint64_t wid = gw_new_write_id(o);
	int hook = gw_test_crash_mode(o);
	bool early = o->early && !o->base_version && hook != GW_CRASH_COMMITS;
	/* The fragments an early range update changes: the others only get a
	 * version bump that need not be durable (peer.h, PEER_WH_LAZY). */
	uint32_t touched = 0;
	for (int i = 0; early && i < n; i++)
		if (calls[i].wlen)
			touched |= 1u << calls[i].req.obj.ec_index;
	for (int i = 0; i < n; i++) {
		calls[i].req.flags |= SD_PEER_FLAG_PREPARE;
		calls[i].whdr.write_id = wid;
		if (early) {
			calls[i].whdr.flags |= PEER_WH_EARLY;
			calls[i].whdr.prev_write_id = o->prev_wid;
			calls[i].whdr.touched = touched;
			/* With records (PEER_WH_LC) a version-only prepare is a
			 * bump the record could not spare: durable. */
			if (!calls[i].wlen && !o->s->opt.test_no_lazy &&
			    !(calls[i].whdr.flags & PEER_WH_LC))
				calls[i].whdr.flags |= PEER_WH_LAZY;
		}
	}
	if (o->old_first.on) {
		/* Only an early write sends its data prepare ahead (not the
		 * protocols of the crash hooks that order the prepares or the
		 * commits); the parity deltas are not computed yet: nothing
		 * was sent, the caller takes the long way. */
		int r = early && hook != GW_CRASH_MID_PREPARE ? old_first(o, calls, n, hook) : -1;
		if (r)
			return r;
	}
	if (early && hook == GW_CRASH_MID_PREPARE && gw_test_crash_point(o) >= 0) {
		for (int i = 0; i < n; i++)
			if (calls[i].wlen && calls[i].req.obj.ec_index < o->d)
				calls[i].node = NULL;
		gw_fanout(o, calls, n);
		sd_err("test hook: %016llx: dying with the write prepared on all but the data "
		       "fragments it changes", (unsigned long long)o->oid);
		kill(getpid(), SIGKILL);
	}
	gw_fanout(o, calls, n);
	if (early)
		return write_early(o, calls, n, wid, hook);
	int retry;
	gw_count_acks(o, calls, n, &retry);
	int silent = count_silent(o, calls, n, &retry);
	int ok = zones_holding(o, calls, n, silent, NULL);
	bool go = !retry && ok >= gw_ack_threshold(o);
	if (ok)
		gw_test_pause(o, "prepared");
	if (go && o->base_version && (retry = gw_check_base(o, wid)) != SD_RES_SUCCESS)
		go = false;
	struct peer_call cc[GW_MAX_WIDTH];
	int nc = commits_of(o, calls, n, wid, !go, cc);
	gw_send_commits(o, cc, nc, go ? gw_test_crash_point(o) : -1);
	if (!go)
		return gw_ack_result(o, ok, retry);
	int ignored;
	gw_count_acks(o, cc, nc, &ignored);
	return gw_ack_result(o, zones_holding(o, cc, nc, silent, NULL), 0);
}

/*
 * Fragments that hold write (ver, wid) without a record of it: an early
 * range update's version-only prepare of a fragment it does not change is
 * not durable (PEER_WH_LAZY), so a power cut may leave that fragment at
 * the write's base version, whose bytes are the new version's. Such a
 * fragment (outside touched, at base, with no record of this write and no
 * other early write pending) counts as holding the write. touched == 0
 * (a write from before the rule, or not a range update): none. Returns
 * how many, their positions in *mask.
 */
static int implicit_holders(const struct gw_obj *o, const struct frag_state *st, uint64_t wid,
			    uint32_t touched, uint64_t base, uint32_t *mask)
{
	*mask = 0;
	if (!touched || !base || o->width > 32)
		return 0;
	int n = 0;
	for (int i = 0; i < o->width; i++) {
		if ((touched & (1u << i)) || st[i].res != SD_RES_SUCCESS || st[i].version != base)
			continue;
		if (st[i].has_pend && (st[i].pend_id == wid || st[i].pend_early))
			continue;
		*mask |= 1u << i;
		n++;
	}
	return n;
}

/* The touched set and base of write (ver, wid), from any fragment that
 * has it applied or pending (0 when none says). */
static uint32_t write_shape(const struct gw_obj *o, const struct frag_state *st, uint64_t ver,
			    uint64_t wid, uint64_t *base)
{
	for (int i = 0; i < o->width; i++) {
		if (st[i].has_pend && st[i].pend_id == wid && st[i].pend_version == ver &&
		    st[i].pend_touched) {
			*base = st[i].pend_base;
			return st[i].pend_touched;
		}
		if (st[i].res == SD_RES_SUCCESS && st[i].version == ver && st[i].write_id == wid &&
		    st[i].touched) {
			*base = st[i].base;
			return st[i].touched;
		}
	}
	*base = 0;
	return 0;
}

/* The record of last-changed versions of write (ver, wid) (PEER_WH_LC),
 * from any fragment that has it pending or applied; NULL when none has. */
static const uint8_t *write_record(const struct gw_obj *o, const struct frag_state *st,
				   uint64_t ver, uint64_t wid)
{
	for (int i = 0; i < o->width; i++) {
		if (st[i].has_pend && st[i].pend_id == wid && st[i].pend_version == ver &&
		    st[i].pend_lc_valid)
			return st[i].pend_lc_delta;
		if (st[i].res == SD_RES_SUCCESS && st[i].real == ver && st[i].write_id == wid &&
		    st[i].lc_valid)
			return st[i].lc_delta;
	}
	return NULL;
}

/*
 * The data fragments write (ver, wid) did not change, by its record rec:
 * such a fragment was sent nothing, so at the version the record names
 * for it (and with no other early-ack write pending) it holds the write
 * as it is. Returns how many, their positions in *mask.
 */
static int lc_holders(const struct gw_obj *o, const struct frag_state *st, uint64_t ver,
		      uint64_t wid, const uint8_t *rec, uint32_t *mask)
{
	*mask = 0;
	if (!rec)
		return 0;
	int n = 0;
	for (int k = 0; k < o->d && k < PEER_LC_MAX; k++) {
		if (!rec[k] || rec[k] >= ver || st[k].res != SD_RES_SUCCESS ||
		    st[k].real != ver - rec[k])
			continue;
		if (st[k].has_pend && (st[k].pend_id == wid || st[k].pend_early))
			continue;
		*mask |= 1u << k;
		n++;
	}
	return n;
}

/* Is a data fragment whose bytes write (ver, wid) changed found by its
 * current holder behind the write with no trace of it (the record's
 * counterpart of touched_data_lacks below)? touched: the fragments sent
 * bytes (whdr.touched), 0 if unknown: then those the record says changed
 * at ver, which includes a fragment only bumped (write.c: a delta past a
 * byte), whose lost bump proves nothing. */
static bool changed_data_lacks(const struct gw_obj *o, const struct frag_state *st, uint64_t ver,
			       uint64_t wid, const uint8_t *rec, uint32_t touched)
{
	for (int k = 0; rec && k < o->d && k < PEER_LC_MAX; k++) {
		bool changed = touched ? (touched >> k) & 1 : !rec[k];
		if (!changed || st[k].res != SD_RES_SUCCESS || st[k].real >= ver ||
		    o->loc[k] != o->holder[k])
			continue;
		if (!(st[k].has_pend && st[k].pend_id == wid))
			return true;
	}
	return false;
}

/* Bring the implicit holders (mask) of write (ver, wid) to it, as its
 * lost version-only prepare and commit would have: a prepare over base,
 * then its commit. Returns how many now hold it. */
static int bump_implicit(struct gw_obj *o, uint32_t mask, uint64_t base, uint64_t ver,
			 uint64_t wid, uint32_t touched)
{
	struct peer_call calls[GW_MAX_WIDTH], cc[GW_MAX_WIDTH];
	int n = 0, nc = 0, ok = 0;
	for (int i = 0; i < o->width; i++) {
		if (!(mask & (1u << i)) || !o->loc[i])
			continue;
		gw_call_init(o, &calls[n], i, SD_OP_PEER_WRITE);
		calls[n].req.flags |= SD_PEER_FLAG_PREPARE;
		calls[n].has_whdr = true;
		calls[n].whdr = (struct peer_write_hdr){.expect_version = base,
							.new_version = ver,
							.frag_size = o->frag_size,
							.copy_policy = o->meta_policy,
							.nr_copies = o->meta_copies,
							.mode = PEER_WRITE_UPDATE,
							.write_id = wid,
							.touched = touched};
		n++;
	}
	gw_fanout(o, calls, n);
	for (int k = 0; k < n; k++)
		if (calls[k].result == SD_RES_SUCCESS)
			gw_commit_init(o, &cc[nc++], calls[k].node, calls[k].req.obj.ec_index, ver, wid,
				       false);
	gw_fanout(o, cc, nc);
	for (int k = 0; k < nc; k++)
		ok += cc[k].result == SD_RES_SUCCESS;
	sd_info("%016llx: version %llu: %d of %d unchanged fragment(s) at version %llu brought "
		"to it (their bump was not kept)", (unsigned long long)o->oid,
		(unsigned long long)ver, ok, n, (unsigned long long)base);
	return ok;
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
int gw_settle(struct gw_obj *o, const struct frag_state *st)
{
	if (gw_settle_early(o, st) == SD_RES_SUCCESS)
		return SD_RES_SUCCESS;
	/* Real versions: a data fragment a write left unchanged is aligned
	 * to its generation (gw_lc_align) but was made by an older write. */
	uint64_t top = 0, wid = 0;
	for (int i = 0; i < o->width; i++)
		if (st[i].res == SD_RES_SUCCESS && st[i].real > top)
			top = st[i].real, wid = st[i].write_id;
	int applied = 0;
	for (int i = 0; i < o->width; i++) {
		if (st[i].res != SD_RES_SUCCESS || st[i].real != top)
			continue;
		if (st[i].write_id != wid)
			return SD_RES_EIO; /* two writes claim one version: leave it */
		applied++;
	}
	const uint8_t *rec = write_record(o, st, top, wid);
	uint32_t lmask;
	int nlc = lc_holders(o, st, top, wid, rec, &lmask);
	if (!wid || applied + nlc >= o->d)
		return SD_RES_EIO;
	struct peer_call cc[GW_MAX_WIDTH];
	int nc = 0;
	for (int i = 0; i < o->width; i++)
		if (st[i].has_pend && st[i].pend_version == top && st[i].pend_id == wid &&
		    !(st[i].res == SD_RES_SUCCESS && st[i].real == top))
			gw_commit_init(o, &cc[nc++], o->loc[i], i, top, wid, false);
	uint64_t base = 0;
	uint32_t touched = rec ? 0 : write_shape(o, st, top, wid, &base), imask;
	int nimp = implicit_holders(o, st, wid, touched, base, &imask);
	if (applied + nlc + nc + nimp < o->d)
		return SD_RES_EIO;
	gw_fanout(o, cc, nc);
	int ok = 0; /* fragments, not zones: what matters here is readability */
	for (int k = 0; k < nc; k++)
		ok += cc[k].node && cc[k].result == SD_RES_SUCCESS;
	sd_info("%016llx: finished an interrupted write (version %llu): it was applied on %d "
		"fragment(s), committed now on %d of %d pending", (unsigned long long)o->oid,
		(unsigned long long)top, applied, ok, nc);
	if (nimp)
		ok += bump_implicit(o, imask, base, top, wid, touched);
	return applied + nlc + ok >= o->d ? SD_RES_SUCCESS : SD_RES_EIO;
}

/*
 * Is a data fragment that write wid changed (touched, made over base)
 * found by its current holder at the base version with no trace of the
 * write? Then the write's prepare never became durable there, so it was
 * never acknowledged (write_early acknowledges only with every changed
 * data fragment prepared), and a reader of that range, which reads only
 * data fragments, may have served the base already: it must not be
 * committed later. (A fragment found elsewhere, or not answering, proves
 * nothing.)
 */
static bool touched_data_lacks(const struct gw_obj *o, const struct frag_state *st, uint64_t wid,
			       uint32_t touched, uint64_t base)
{
	if (!touched || !base)
		return false; /* the write's shape is unknown */
	for (int i = 0; i < o->d && i < 32; i++) {
		if (!(touched & (1u << i)) || st[i].res != SD_RES_SUCCESS || st[i].version != base ||
		    o->loc[i] != o->holder[i])
			continue;
		if (!(st[i].has_pend && st[i].pend_id == wid))
			return true;
	}
	return false;
}

/*
 * Decide the early-ack writes pending on this object (st from gw_probe):
 * one prepared or applied on at least gw_ack_threshold() fragments was
 * (or will be) acknowledged: commit it where it is pending. One older
 * than the grace time (its coordinator is gone) is committed when d
 * fragments have it (it may have been acknowledged by a count that
 * included holders out now, and d make the new generation readable), and
 * aborted when fewer do (it can never be read; acknowledged, it would
 * have lost more than the one fragment of redundancy an ack guarantees).
 * A younger one short of the threshold is still being prepared: left to
 * its coordinator (or, if that died, to whoever meets it once it is old).
 * Returns SUCCESS when it sent commits or aborts (look again), AGAIN when
 * it only met such a younger one (a reader must not serve the older
 * generation meanwhile: the write may still be committed, and a range
 * that read old would then change under its reader without a write), EIO
 * when there was nothing to decide.
 */
int gw_settle_early(struct gw_obj *o, const struct frag_state *st)
{
	bool seen[GW_MAX_WIDTH] = {0};
	int acted = 0, young = 0;
	for (int i = 0; i < o->width; i++) {
		if (!st[i].pend_early || !st[i].has_pend || seen[i])
			continue;
		uint64_t ver = st[i].pend_version, wid = st[i].pend_id, age = UINT64_MAX;
		struct peer_call cc[GW_MAX_WIDTH];
		const struct sd_node *hn[GW_MAX_WIDTH] = {0};
		int nc = 0, have = 0;
		for (int j = 0; j < o->width; j++) {
			if (st[j].has_pend && st[j].pend_id == wid && st[j].pend_version == ver) {
				seen[j] = true;
				have++;
				hn[j] = o->loc[j];
				age = SD_MIN(age, st[j].pend_age_ms);
				gw_commit_init(o, &cc[nc++], o->loc[j], j, ver, wid, false);
			} else if (st[j].res == SD_RES_SUCCESS && st[j].real == ver &&
				   st[j].write_id == wid) {
				have++;
				hn[j] = o->loc[j];
			}
		}
		bool old = age >= SD_PEER_PEND_GRACE_MS;
		/* Unchanged fragments whose bump was lost count once the
		 * coordinator is gone (old): while it lives, its own lazy
		 * prepares may still be on their way to them. */
		uint64_t base = 0;
		/* With a record (PEER_WH_LC), the fragments the write left
		 * unchanged hold it as they are, coordinator alive or not:
		 * nothing was sent to them. */
		const uint8_t *rec = write_record(o, st, ver, wid);
		uint32_t shape = write_shape(o, st, ver, wid, &base);
		bool lacks = rec ? changed_data_lacks(o, st, ver, wid, rec, shape)
				 : touched_data_lacks(o, st, wid, shape, base);
		/* No implicit holders with a record: lc_holders counts them. */
		uint32_t imask = 0, touched = old && !rec ? shape : 0, lmask;
		int nimp = implicit_holders(o, st, wid, touched, base, &imask);
		int nlc = lc_holders(o, st, ver, wid, rec, &lmask);
		have += nimp + nlc;
		for (int j = 0; j < o->width; j++)
			if ((imask | lmask) & (1u << j))
				hn[j] = o->loc[j];
		/* decided: in as many zones as the ack rule counts (write_early) */
		bool commit = !lacks &&
			      (gw_zones_of(hn, o->width) >= gw_ack_threshold(o) || (old && have >= o->d));
		if (!commit && !old) {
			young++;
			continue;
		}
		for (int k = 0; k < nc; k++)
			cc[k].commit.abort = !commit;
		gw_fanout(o, cc, nc);
		if (commit && nimp)
			bump_implicit(o, imask, base, ver, wid, touched);
		acted++;
		if (!commit || old) {
			uint32_t held = 0; /* pending or applied here, bit = fragment */
			for (int j = 0; j < o->width && j < 32; j++)
				held |= hn[j] && !((imask | lmask) & (1u << j)) ? 1u << j : 0;
			sd_info("%016llx: %s an early-acknowledged write (version %llu) found on %d "
				"fragment(s) (held 0x%x, at the base outside its changes 0x%x, "
				"changed 0x%x, %llu ms old)%s",
				(unsigned long long)o->oid, commit ? "finished" : "dropped",
				(unsigned long long)ver, have, held, imask | lmask, shape,
				(unsigned long long)age, lacks ? ", not on a data fragment it changed" : "");
		}
	}
	return acted ? SD_RES_SUCCESS : young ? SD_RES_AGAIN : SD_RES_EIO;
}
