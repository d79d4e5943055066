/* rebuild.c - the recovery thread of a sheep: gathers object lists, plans with recovery/,
 * runs jobs on workers (gather.c: the object lists, the end of an epoch). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ec/ec.h"
#include "lib/log.h"
#include "lib/testhook.h"
#include "sheep/sheep.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/ring.h"
#include "lib/net.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "recovery/recovery.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild_priv.h"
#include "sheep/store/capacity.h"
#include "sheep/store/store.h"

uint64_t rec_now_ms(void)
{
	return sd_now_ns() / 1000000ull;
}

void rec_timed_wait(struct sheep_recovery *r, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&r->cond, &r->mu, &ts);
}

/* ---- I/O callbacks for recovery_execute() (worker threads) ---- */

static int io_read(void *arg, uint32_t node, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		   uint32_t len, uint64_t *version, struct recovery_lc *lc)
{
	struct sheep_recovery *r = arg;
	/* Test hook: 113's regression test of the race 173346c fixed holds
	 * a job here while a sheep joins (the planner then moves the epoch
	 * and grows known[]). */
	sd_test_pause(r->s->opt.test_pause_file, "rec-read", r->s->self.port, oid);
	struct sd_node peer;
	pthread_mutex_lock(&r->mu);
	bool known = node < r->nr_known;
	if (known)
		peer = r->known[node];
	uint32_t epoch = r->epoch;
	pthread_mutex_unlock(&r->mu);
	if (!known)
		return -EINVAL;
	struct sheep *s = r->s;
	struct peer_call c;
	memset(&c, 0, sizeof(c));
	c.node = &peer;
	c.req.opcode = SD_OP_PEER_READ;
	c.req.flags = SD_PEER_FLAG_ANY_EPOCH;
	c.req.epoch = epoch;
	c.req.obj.oid = oid;
	c.req.obj.ec_index = idx;
	c.req.obj.offset = off;
	c.rbuf = buf;
	c.rcap = len;
	/*
	 * An early-acknowledged write pending on this source may be committed
	 * (it may have been acknowledged), and a copy of the bytes under it
	 * would then be an older generation installed where readers look
	 * first. So it is decided first (the gateway waits while it is too
	 * young to be) and the source read again; one still pending then
	 * counts as behind (version 0): the job is retried.
	 */
	for (int pass = 0;; pass++) {
		peer_fanout(s, &c, 1);
		int rc = sd_res_to_errno(c.result);
		if (rc)
			return rc;
		if (c.rlen != len)
			return -EIO;
		if (!(c.rsp_flags & PEER_RSP_EARLY)) {
			*version = c.version;
			memset(lc, 0, sizeof(*lc));
			if (c.rsp_flags & PEER_RSP_LC) {
				lc->valid = 1;
				memcpy(lc->delta, c.lc_delta, sizeof(lc->delta));
			}
			return 0;
		}
		if (pass) {
			*version = 0;
			return 0;
		}
		int sr = gateway_settle_obj(s, oid);
		sd_info("%016llx fragment %u: an early-ack write pending on the copy at %s:%u: "
			"settled (%s) before recovery reads it", (unsigned long long)oid, idx,
			peer.addr, peer.port, sd_strerror((uint32_t)sr));
	}
}

static int io_verify(void *arg, uint64_t oid, uint8_t idx, uint64_t *version)
{
	struct sheep_recovery *r = arg;
	struct store_meta m;
	int rc = store_stat(r->s->store, oid, idx, &m);
	if (rc)
		return rc;
	rc = store_verify(r->s->store, oid, idx);
	if (rc)
		return rc;
	*version = m.version;
	return 0;
}

static int io_install(void *arg, const struct recovery_job *job, const void *buf)
{
	struct sheep_recovery *r = arg;
	struct store *st = r->s->store;
	struct store_meta m = {.oid = job->oid,
			       .idx = job->idx,
			       .copy_policy = job->copy_policy,
			       .nr_copies = job->nr_copies,
			       .frag_size = job->frag_size,
			       .version = job->put_version};
	if (job->put_lc.valid) {
		m.lc.valid = 1;
		memcpy(m.lc.delta, job->put_lc.delta, sizeof(m.lc.delta));
	}
	if (job->have_version == RECOVERY_ABSENT)
		return store_create(st, &m, buf, 0, job->frag_size);
	struct store_meta cur;
	int rc = store_stat(st, job->oid, job->idx, &cur);
	if (rc == -ENOENT)
		return store_create(st, &m, buf, 0, job->frag_size);
	if (rc)
		return rc;
	if (cur.version != job->have_version)
		return -ESTALE; /* a client write got there first */
	/* Whole-fragment swap in one rename: a crash leaves the old fragment
	 * or the new one. (Also right for a corrupt fragment at the same
	 * version, or one of another shape.) */
	return store_replace(st, &m, buf, 0, job->frag_size);
}

static int io_decode(void *arg, uint8_t cp, uint32_t fs, const uint8_t *src_idx,
		     const void *const *src, uint8_t want, void *out)
{
	struct ec_policy pol;
	uint8_t width = (uint8_t)(((cp >> 4) * 2) + (cp & 0xf));
	int rc = ec_policy_from_wire(cp, width, &pol);
	if (rc)
		return rc;
	const struct ec_codec *codec;
	rc = ec_codec_get(pol.d, pol.p, EC_BACKEND_ISAL, &codec);
	if (rc)
		return rc;
	int have[EC_MAX_WIDTH], w = want;
	for (int k = 0; k < pol.d; k++)
		have[k] = src_idx[k];
	uint8_t *o = out;
	return ec_decode(codec, fs, have, (const uint8_t *const *)src, 1, &w, &o);
}

/* ---- planning ---- */

struct locate_ctx {
	struct sheep *s;
	const struct ring *ring;
	const uint32_t *ids; /* ring index -> node id */
	size_t nr;
};

static int locate_cb(void *arg, uint64_t oid, int n, uint32_t *out)
{
	struct locate_ctx *lc = arg;
	int pos[EC_MAX_WIDTH];
	if (n > EC_MAX_WIDTH)
		return -EINVAL;
	/* Positions placement leaves unset (fewer zones than fragments) have
	 * no home. */
	for (int i = 0; i < n; i++)
		pos[i] = -1;
	int rc = ring_locate(lc->ring, group_placement_key(lc->s, oid), n, pos);
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++)
		out[i] =
		    (pos[i] >= 0 && (size_t)pos[i] < lc->nr) ? lc->ids[pos[i]] : RECOVERY_NO_NODE;
	return 0;
}

static int make_epoch(struct sheep_recovery *r, struct sheep_view *v, struct recovery_epoch *ep,
		      struct locate_ctx *lc, uint32_t *ids)
{
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < v->nr_data; i++)
		ids[i] = rec_node_id(r, &v->data[i]);
	pthread_mutex_unlock(&r->mu);
	lc->s = r->s;
	lc->ring = v->ring;
	lc->ids = ids;
	lc->nr = v->nr_data;
	uint64_t total = 0, free_bytes = 0;
	sheep_capacity(r->s, &total, &free_bytes);
	memset(ep, 0, sizeof(*ep));
	ep->epoch = v->epoch;
	ep->self = ids[v->self_data_idx];
	ep->members = ids;
	ep->nr_members = v->nr_data;
	ep->locate = locate_cb;
	ep->locate_arg = lc;
	/* What this sheep may still store (capacity.c), minus 1% kept in reserve. */
	ep->free_bytes = free_bytes;
	ep->reserve_bytes = total / 100;
	return 0;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * EC objects that no version can be read back from (the plan found fewer
 * than d fragments consistent with every generation: recovery_lost_oids)
 * but that hold more than one version: typically a write whose
 * coordinator died during its commits. The gateway finishes such a write
 * from its pending copies (gateway_settle_obj); then the round gathers
 * again. The plan's count, not one of versions here: a data fragment a
 * range write left unchanged keeps its older version and still belongs
 * to the newer generation (recovery.h, struct recovery_lc). Returns how
 * many objects moved.
 */
static int settle_interrupted(struct sheep_recovery *r, const struct rec_frag_vec *fv)
{
	if (!fv->nr)
		return 0;
	pthread_mutex_lock(&r->mu);
	size_t n = recovery_lost_oids(r->eng, NULL, 0);
	uint64_t *lost = n ? malloc(n * sizeof(*lost)) : NULL;
	if (lost)
		n = recovery_lost_oids(r->eng, lost, n);
	pthread_mutex_unlock(&r->mu);
	/* Which of them are EC objects holding several versions: one pass. */
	uint64_t *v0 = lost ? calloc(n, sizeof(*v0)) : NULL;
	uint8_t *several = lost ? calloc(n, 1) : NULL;
	int moved = 0;
	if (v0 && several) {
		qsort(lost, n, sizeof(*lost), u64_cmp);
		for (size_t a = 0; a < fv->nr; a++) {
			const uint64_t *at = bsearch(&fv->v[a].oid, lost, n, sizeof(*lost), u64_cmp);
			if (!at || !fv->v[a].copy_policy)
				continue;
			size_t k = (size_t)(at - lost);
			several[k] |= v0[k] && fv->v[a].version != v0[k];
			v0[k] = fv->v[a].version;
		}
		for (size_t k = 0; k < n && !atomic_load(&r->s->stopping); k++)
			if (several[k] && gateway_settle_obj(r->s, lost[k]) == SD_RES_SUCCESS)
				moved++;
	}
	free(v0);
	free(several);
	free(lost);
	return moved;
}

_Static_assert(RECOVERY_LC_MAX == STORE_LC_MAX && PEER_LC_MAX == STORE_LC_MAX,
	       "one record of last-changed versions from the store to the engine");

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_short(const void *key, const void *elt)
{
	return cmp_u64(key, &((const struct rec_short *)elt)->oid);
}

/* No object is short: a new epoch (what earlier plans found says nothing
 * of its plans), or a plan that found none. */
static void forget_short(struct sheep_recovery *r)
{
	free(r->shorts);
	r->shorts = NULL;
	r->nr_shorts = 0;
	r->nr_lost = 0;
}

/*
 * After a plan (r->mu held): which of the objects it found short of
 * consistent fragments are lost. One plan cannot tell a lost object from
 * a write in flight: a create (or any whole write) committed on fewer than
 * d holders yet, or a member that did not answer the gather, looks the
 * same. The re-plan a second later (the retry timer) can. So an object is
 * called lost (counted and named by STAT_RECOVERY, in the message and the
 * metrics) once every plan of this epoch for REC_LOST_CONFIRM_MS (1 s) has
 * found it short; until then it is only re-planned. `dog node recovery` named
 * such an object lost for a second before (tests/func/132).
 */
static void note_short(struct sheep_recovery *r, uint64_t now)
{
	size_t n = recovery_lost_oids(r->eng, NULL, 0);
	if (!n) {
		forget_short(r);
		return;
	}
	uint64_t *oids = malloc(n * sizeof(*oids));
	struct rec_short *v = malloc(n * sizeof(*v));
	if (!oids || !v) { /* no memory: call every short object lost */
		free(oids);
		free(v);
		forget_short(r);
		r->nr_lost = n;
		recovery_lost_oids(r->eng, r->lost_named, SD_RECOVERY_LOST_NAMED);
		return;
	}
	recovery_lost_oids(r->eng, oids, n);
	qsort(oids, n, sizeof(*oids), cmp_u64);
	r->nr_lost = 0;
	for (size_t k = 0; k < n; k++) {
		const struct rec_short *was =
		    r->nr_shorts ? bsearch(&oids[k], r->shorts, r->nr_shorts, sizeof(*r->shorts),
					   cmp_short)
				 : NULL;
		v[k] = (struct rec_short){.oid = oids[k], .since_ms = was ? was->since_ms : now};
		if (now - v[k].since_ms >= r->lost_confirm_ms) {
			if (r->nr_lost < SD_RECOVERY_LOST_NAMED)
				r->lost_named[r->nr_lost] = oids[k];
			r->nr_lost++;
		}
	}
	free(oids);
	free(r->shorts);
	r->shorts = v;
	r->nr_shorts = n;
}

/* (Re)plan the view from what was gathered; *lost gets the objects too
 * short of fragments to rebuild. */
static int plan_gathered(struct sheep_recovery *r, struct sheep_view *v,
			 const struct rec_frag_vec *fv, uint64_t *lost)
{
	*lost = 0;
	uint32_t *ids = calloc(v->nr_data ? v->nr_data : 1, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	struct recovery_epoch ep;
	struct locate_ctx lc;
	make_epoch(r, v, &ep, &lc, ids);
	pthread_mutex_lock(&r->mu);
	int rc = recovery_plan(r->eng, &ep, fv->v, fv->nr);
	r->rounds++;
	r->round_moved = 0;
	if (rc == -ENOSPC) {
		snprintf(r->message, sizeof(r->message), "%s", recovery_refusal(r->eng));
	} else if (rc == 0) {
		struct recovery_progress p;
		recovery_progress(r->eng, &p);
		*lost = p.lost;
		note_short(r, rec_now_ms());
		r->message[0] = '\0';
		unsigned width = 0;
		for (size_t k = 0; k < fv->nr; k++)
			if (fv->v[k].nr_copies > width)
				width = fv->v[k].nr_copies;
		if (p.degraded || v->nr_zones < width)
			snprintf(r->message, sizeof(r->message),
				 "only %u zone(s) for objects of up to %u fragments/copies:"
				 " best possible redundancy (%" PRIu64 " object(s) short of a"
				 " home) until nodes join",
				 v->nr_zones, width, p.degraded);
		bool alarm = r->message[0] || r->nr_lost;
		if (r->nr_lost)
			snprintf(r->message + strlen(r->message),
				 sizeof(r->message) - strlen(r->message),
				 "%s%" PRIu64 " object(s) have too few fragments left to rebuild",
				 r->message[0] ? "; " : "", r->nr_lost);
		if (p.lost > r->nr_lost)
			snprintf(r->message + strlen(r->message),
				 sizeof(r->message) - strlen(r->message),
				 "%s%" PRIu64 " object(s) short of consistent fragments in this plan"
				 " (a write in flight, or a member that did not answer?): checking"
				 " again",
				 r->message[0] ? "; " : "", p.lost - r->nr_lost);
		if (alarm)
			sd_warn("recovery, epoch %u: %s", v->epoch, r->message);
		else if (r->message[0])
			sd_notice("recovery, epoch %u: %s", v->epoch, r->message);
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	free(ids);
	return rc;
}

/* One planning round for the view: gather and (re)plan. Objects found too
 * short to rebuild may be interrupted writes: once those are finished,
 * gather and plan again. */
static int plan_round(struct sheep_recovery *r, struct sheep_view *v)
{
	struct rec_frag_vec fv;
	uint64_t lost;
	int rc = rec_gather(r, v, 0, &fv);
	if (rc)
		return rc;
	rc = plan_gathered(r, v, &fv, &lost);
	if (rc == 0 && lost && settle_interrupted(r, &fv) > 0) {
		free(fv.v);
		if ((rc = rec_gather(r, v, 0, &fv)))
			return rc;
		rc = plan_gathered(r, v, &fv, &lost);
	}
	free(fv.v);
	return rc;
}

/* Re-examine the objects reported bad (checksum mismatch) at high priority. */
/* A repair that could not be planned now is tried again later, 0.5 s
 * doubling up to 32 s, REC_REPAIR_TRIES times (r->mu held). */
static void repair_again(struct sheep_recovery *r, const struct rec_bad *b, const char *why)
{
	if (b->tries + 1 >= REC_REPAIR_TRIES) {
		sd_warn("recovery: repair of %016" PRIx64 " fragment %u: %s; gave up after %u "
			"tries (the next epoch change plans it again)",
			b->oid, b->idx, why, b->tries + 1);
		return;
	}
	bool seen = false;
	for (unsigned k = 0; k < r->nr_redo; k++)
		seen |= r->redo[k].oid == b->oid && r->redo[k].idx == b->idx;
	if (seen || r->nr_redo == REC_BAD_MAX)
		return;
	r->redo[r->nr_redo] = *b;
	r->redo[r->nr_redo].tries++;
	uint64_t at = rec_now_ms() + (500u << SD_MIN(b->tries, 6));
	if (!r->nr_redo || at < r->redo_at)
		r->redo_at = at;
	r->nr_redo++;
	sd_notice("recovery: repair of %016" PRIx64 " fragment %u: %s; trying again (%u of %u)",
		  b->oid, b->idx, why, b->tries + 1, REC_REPAIR_TRIES);
}

/* Due repairs back into the queue repair_round takes (r->mu held). */
static void repair_due(struct sheep_recovery *r)
{
	if (!r->nr_redo || rec_now_ms() < r->redo_at)
		return;
	for (unsigned k = 0; k < r->nr_redo && r->nr_bad < REC_BAD_MAX; k++)
		r->bad[r->nr_bad++] = r->redo[k];
	r->nr_redo = 0;
}

static void repair_round(struct sheep_recovery *r, struct sheep_view *v)
{
	pthread_mutex_lock(&r->mu);
	unsigned n = r->nr_bad;
	struct rec_bad bad[REC_BAD_MAX];
	memcpy(bad, r->bad, n * sizeof(bad[0]));
	r->nr_bad = 0;
	pthread_mutex_unlock(&r->mu);
	uint32_t *ids = calloc(v->nr_data ? v->nr_data : 1, sizeof(*ids));
	if (!ids)
		return;
	for (unsigned k = 0; k < n; k++) {
		bool dup = false;
		for (unsigned j = 0; j < k; j++)
			dup |= bad[j].oid == bad[k].oid;
		if (dup)
			continue;
		struct rec_frag_vec fv;
		if (rec_gather(r, v, bad[k].oid, &fv)) {
			pthread_mutex_lock(&r->mu);
			repair_again(r, &bad[k], "no fragment list from every holder");
			pthread_mutex_unlock(&r->mu);
			continue;
		}
		struct recovery_epoch ep;
		struct locate_ctx lc;
		make_epoch(r, v, &ep, &lc, ids);
		pthread_mutex_lock(&r->mu);
		int rc;
		if (r->test_repair_fail) {
			r->test_repair_fail--;
			rc = -ENODATA; /* as while a write moves the versions */
		} else {
			rc = fv.nr ? recovery_plan_object(r->eng, &ep, fv.v, fv.nr) : -ENODATA;
		}
		if (rc == 0)
			r->repairs++;
		/* Fewer consistent fragments than needed is usually a write in
		 * flight on this object: try again once it has landed. */
		if (rc == -ENODATA || rc == -EAGAIN)
			repair_again(r, &bad[k], recovery_strerror(rc));
		else
			sd_notice("recovery: repair of %016" PRIx64 " fragment %u: %s", bad[k].oid,
				  bad[k].idx, rc ? recovery_strerror(rc) : "queued");
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mu);
		free(fv.v);
	}
	free(ids);
}

/* ---- threads ---- */

/* The cluster's enable flag, read under state_lock (never nested in r->mu). */
static bool cluster_recovery_enabled(struct sheep *s)
{
	struct group_status st;
	group_status(s, &st);
	return st.recovery_enabled;
}

/* Under r->mu: the engine follows the cluster's flag; a change wakes the
 * workers, which otherwise sleep until a plan or a finish. */
static void set_enabled(struct sheep_recovery *r, bool on)
{
	if (recovery_enabled(r->eng) != on)
		pthread_cond_broadcast(&r->cond);
	recovery_set_enabled(r->eng, on);
}

static void *rec_worker(void *arg)
{
	struct sheep_recovery *r = arg;
	pthread_setname_np(pthread_self(), "sd_rec_worker");
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		/* Check the flag before every job, not only when rec_main
		 * next loops: a disable that lands while it plans (or a plan
		 * installed just after) must stop new jobs at once. */
		pthread_mutex_unlock(&r->mu);
		bool on = cluster_recovery_enabled(r->s);
		pthread_mutex_lock(&r->mu);
		set_enabled(r, on);
		struct recovery_job *job;
		uint64_t wait = 0;
		int rc = recovery_take(r->eng, rec_now_ms(), &job, &wait);
		if (rc == 0) {
			pthread_mutex_unlock(&r->mu);
			recovery_execute(&r->io, job);
			pthread_mutex_lock(&r->mu);
			if (job->result == 0 && job->how != RECOVERY_HOW_REUSED)
				r->round_moved++;
			recovery_finish(r->eng, job, rec_now_ms());
			pthread_cond_broadcast(&r->cond);
			continue;
		}
		/* Nothing to start: whatever changes that (a plan, a finish, a
		 * flag or a throttle change, a priority, stop) broadcasts. The
		 * timeout is only a safety net, long so that an idle sheep's
		 * workers do not wake (they did 2-4 times a second each). */
		rec_timed_wait(r, rc == -EAGAIN && wait ? wait : REC_WORKER_IDLE_MS);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* After REC_LOST_ERR_AFTER re-plans, one err line per object still too
 * short of consistent fragments to rebuild (r->mu held). */
static void say_lost(struct sheep_recovery *r, uint32_t epoch)
{
	uint64_t oids[64];
	size_t n = recovery_lost_oids(r->eng, oids, 64);
	for (size_t k = 0; k < n && k < 64; k++) {
		bool said = false;
		for (unsigned j = 0; j < r->nr_lost_said && !said; j++)
			said = r->lost_said[j] == oids[k];
		if (said)
			continue;
		if (r->nr_lost_said < REC_LOST_SAID)
			r->lost_said[r->nr_lost_said++] = oids[k];
		sd_err("recovery, epoch %u: object %016" PRIx64 " has too few consistent fragments "
		       "to rebuild after %u re-plans: lost unless its holders return",
		       epoch, oids[k], r->retries);
	}
}

static bool view_usable(struct sheep *s, struct sheep_view *v)
{
	/* After a whole-cluster stop, planning from members that may all be
	 * stale could rebuild old data over new: wait as client I/O does. */
	return v && v->ring && v->self_data_idx >= 0 && group_formatted(s) &&
	       !group_waiting(s);
}

/*
 * The recovery thread of a data node, one per sheep. It moves between
 * idle, plan, run and settled phases: a new usable view (formatted, this
 * node on the ring) starts planning with recovery/, jobs then run on the
 * workers within the throttle, and a membership change in any phase
 * replans without undoing finished jobs. It returns when the sheep stops.
 */
void sheep_recovery_kick(struct sheep *s)
{
	struct sheep_recovery *r = s->rec;
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	recovery_forget_done(r->eng);
	r->force = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

static void *rec_main(void *arg)
{
	struct sheep_recovery *r = arg;
	pthread_setname_np(pthread_self(), "sd_rec");
	struct sheep *s = r->s;
	enum { PH_PLAN, PH_RUN, PH_SETTLED, PH_DROPPED, PH_IDLE } phase = PH_IDLE;
	uint64_t next_poll = 0;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		pthread_mutex_unlock(&r->mu);
		/* A failed disk (store_md.c) is taken out; what it held comes
		 * back from peers by a replan, as after md unplug. */
		if (s->store && rec_now_ms() >= r->md_check_ms) {
			r->md_check_ms = rec_now_ms() + 1000;
			if (store_md_check(s->store) > 0)
				sheep_recovery_kick(s);
		}
		/* The view first, then the flag: a disable ordered before this
		 * view's epoch change is always seen with it. */
		struct sheep_view *v = sheep_view_get(s);
		bool usable = view_usable(s, v);
		bool enabled = cluster_recovery_enabled(s);
		pthread_mutex_lock(&r->mu);
		set_enabled(r, enabled);
		if (!usable) {
			if (v)
				sheep_view_put(v);
			rec_timed_wait(r, 300);
			continue;
		}
		if (v->epoch != r->epoch) {
			sd_info("recovery: epoch %u -> %u, planning", r->epoch, v->epoch);
			r->epoch = v->epoch;
			r->rounds = 0;
			r->start_ms = rec_now_ms();
			r->end_ms = 0;
			r->cluster_done = false;
			r->status = SD_RECOVERY_PLANNING;
			r->retry_at = 0;
			r->retry_ms = 0;
			r->retries = 0;
			forget_short(r);
			struct recovery_progress bp;
			recovery_progress(r->eng, &bp);
			r->base_read = bp.bytes_read;
			r->base_written = bp.bytes_written;
			phase = PH_PLAN;
		}
		if (r->force) {
			r->force = false;
			recovery_retry_failed(r->eng);
			r->cluster_done = false;
			r->end_ms = 0;
			r->status = SD_RECOVERY_PLANNING;
			phase = PH_PLAN;
		}
		if (phase == PH_PLAN) {
			pthread_mutex_unlock(&r->mu);
			int rc = plan_round(r, v);
			pthread_mutex_lock(&r->mu);
			if (rc && rc != -ENOSPC) {
				sd_err("recovery: planning epoch %u failed: %s; retrying", v->epoch,
				       recovery_strerror(rc));
				sheep_view_put(v);
				rec_timed_wait(r, 1000);
				continue;
			}
			if (r->retries >= REC_LOST_ERR_AFTER)
				say_lost(r, v->epoch);
			phase = PH_RUN;
		}
		repair_due(r);
		if (r->nr_bad) {
			pthread_mutex_unlock(&r->mu);
			repair_round(r, v);
			pthread_mutex_lock(&r->mu);
			if (phase == PH_SETTLED || phase == PH_DROPPED || phase == PH_IDLE)
				phase = PH_RUN;
		}
		struct recovery_progress p;
		recovery_progress(r->eng, &p);
		r->status = p.state == RECOVERY_RUNNING	   ? SD_RECOVERY_RUNNING
			    : p.state == RECOVERY_DONE	   ? SD_RECOVERY_DONE
			    : p.state == RECOVERY_REFUSED  ? SD_RECOVERY_REFUSED
			    : p.state == RECOVERY_DISABLED ? SD_RECOVERY_DISABLED
							   : SD_RECOVERY_IDLE;
		if (r->nr_redo && r->status == SD_RECOVERY_DONE)
			r->status = SD_RECOVERY_RUNNING; /* a repair waits for its retry */
		/*
		 * Failed jobs (versions moved, a source busy or down) and objects
		 * planned as lost (often a write in flight, or a member that did
		 * not answer the gather) are retried and re-planned on a timer,
		 * 1 s doubling to 60 s, for as long as any remain.
		 */
		if ((phase == PH_SETTLED || phase == PH_DROPPED || phase == PH_IDLE) &&
		    (p.failed || p.lost)) {
			uint64_t now = rec_now_ms();
			if (!r->retry_at) {
				r->retry_ms = r->retry_ms ? SD_MIN(r->retry_ms * 2, REC_RETRY_MAX_MS)
							  : 1000;
				r->retry_at = now + r->retry_ms;
			} else if (now >= r->retry_at) {
				r->retry_at = 0;
				r->retries++;
				size_t nf = recovery_retry_failed(r->eng);
				sd_notice("recovery, epoch %u: retry %u: %zu failed job(s) again, "
					  "re-planning (%" PRIu64 " object(s) short of fragments); "
					  "next in %u ms if still needed",
					  v->epoch, r->retries, nf, p.lost,
					  SD_MIN(r->retry_ms * 2, REC_RETRY_MAX_MS));
				r->cluster_done = false;
				r->end_ms = 0;
				r->status = SD_RECOVERY_PLANNING;
				phase = PH_PLAN;
				sheep_view_put(v);
				continue;
			}
		}
		if (phase == PH_RUN && p.state == RECOVERY_DONE) {
			if (r->round_moved && r->rounds < REC_MAX_ROUNDS) {
				/* Writes may have raced this round: look again. */
				r->status = SD_RECOVERY_RUNNING;
				phase = PH_PLAN;
				sheep_view_put(v);
				continue;
			}
			r->end_ms = rec_now_ms();
			sd_info("recovery, epoch %u: done in %" PRIu64 " ms (%" PRIu64
				" reused, %" PRIu64 " copied, %" PRIu64 " rebuilt, %" PRIu64
				" failed, %u rounds)",
				v->epoch, r->end_ms - r->start_ms, p.reused, p.copied, p.rebuilt,
				p.failed, r->rounds);
			phase = PH_SETTLED;
			next_poll = 0;
		}
		/*
		 * Two steps. SETTLED: once every member is done at this epoch,
		 * drop what this node no longer holds and say so (cluster_done).
		 * DROPPED: once every member says so, no earlier holder keeps a
		 * fragment anywhere, and only then may the gateway stop reaching
		 * earlier holders (v->settled): a remove or a write sent to the
		 * current holders alone would otherwise miss a copy that another
		 * node has not dropped yet.
		 */
		if ((phase == PH_SETTLED || phase == PH_DROPPED) && !p.failed &&
		    rec_now_ms() >= next_poll) {
			bool dropping = phase == PH_SETTLED;
			pthread_mutex_unlock(&r->mu);
			bool all = rec_cluster_complete(r, v, !dropping);
			if (all && dropping)
				rec_drop_old(r, v);
			pthread_mutex_lock(&r->mu);
			if (all && r->epoch == v->epoch && phase == PH_SETTLED) {
				r->cluster_done = true;
				phase = PH_DROPPED;
				next_poll = 0;
				sheep_view_put(v);
				continue;
			}
			if (all && r->epoch == v->epoch && phase == PH_DROPPED) {
				__atomic_store_n(&v->settled, 1, __ATOMIC_RELEASE);
				phase = PH_IDLE;
			}
			next_poll = rec_now_ms() + (phase == PH_DROPPED ? 250 : 1000);
		}
		sheep_view_put(v);
		if (r->stop || r->force || r->nr_bad)
			continue;
		if (phase == PH_IDLE && !p.failed && !p.lost && !r->nr_redo) {
			/* Settled, nothing to retry: sleep until the epoch
			 * changes (state_cond), for at most REC_IDLE_MS; a force,
			 * a bad fragment or stop (r->cond) waits for that too.
			 * Polling every 200 ms here was 5 wakeups a second of an
			 * idle sheep. */
			uint32_t epoch = r->epoch;
			pthread_mutex_unlock(&r->mu);
			struct sheep_view *nv = sheep_view_wait_change(s, epoch, REC_IDLE_MS);
			if (nv)
				sheep_view_put(nv);
			pthread_mutex_lock(&r->mu);
			continue;
		}
		rec_timed_wait(r, 200);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int sheep_recovery_parse(const char *arg, struct sd_recovery_throttle *t)
{
	struct recovery_throttle rt = {.max = t->max ? t->max : SHEEP_RECOVERY_MAX,
				       .interval_ms = t->interval_ms};
	int rc = recovery_throttle_parse(arg, &rt);
	if (rc)
		return rc;
	t->max = rt.max;
	t->interval_ms = rt.interval_ms;
	return 0;
}

int sheep_recovery_start(struct sheep *s, const struct sd_recovery_throttle *t)
{
	if (!s->store)
		return 0;
	struct sheep_recovery *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->known = calloc(REC_KNOWN_MAX, sizeof(*r->known));
	const char *tf = getenv("SHEEP_TEST_REPAIR_FAIL");
	r->test_repair_fail = tf ? (unsigned)strtoul(tf, NULL, 10) : 0;
	/* Tests that hold a write while they look at a plan widen the window. */
	const char *lc = getenv("SHEEP_TEST_LOST_CONFIRM_MS");
	r->lost_confirm_ms = lc ? strtoull(lc, NULL, 10) : REC_LOST_CONFIRM_MS;
	struct recovery_throttle rt = {.max = SHEEP_RECOVERY_MAX,
				       .interval_ms = SHEEP_RECOVERY_INTERVAL};
	if (t && t->max) {
		rt.max = t->max;
		rt.interval_ms = t->interval_ms;
	}
	int rc = r->known ? recovery_new(&rt, &r->eng) : -ENOMEM;
	if (rc) {
		free(r->known);
		free(r);
		return rc;
	}
	r->s = s;
	r->io = (struct recovery_io){.arg = r,
				     .read = io_read,
				     .verify = io_verify,
				     .install = io_install,
				     .decode = io_decode};
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->rec = r;
	r->nr_workers = REC_WORKERS;
	for (int i = 0; i < r->nr_workers; i++)
		if (pthread_create(&r->workers[i], NULL, rec_worker, r)) {
			r->nr_workers = i;
			break;
		}
	if (pthread_create(&r->main_thr, NULL, rec_main, r)) {
		sheep_recovery_stop(s);
		return -EAGAIN;
	}
	r->main_started = true;
	sd_info("recovery: started (max %u in flight, interval %u ms)", rt.max, rt.interval_ms);
	return 0;
}

void sheep_recovery_stop(struct sheep *s)
{
	struct sheep_recovery *r = s->rec;
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	if (r->main_started)
		pthread_join(r->main_thr, NULL);
	for (int i = 0; i < r->nr_workers; i++)
		pthread_join(r->workers[i], NULL);
	s->rec = NULL;
	recovery_free(r->eng);
	free(r->shorts);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r->known);
	free(r);
}

