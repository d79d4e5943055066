/* store_wal.c - the store's write-ahead log: group commit by one writer thread, checkpoints, replay at open. */
/*
 * Two files, wal.0 and wal.1 (in DIR, or in -j dir=PATH), each a sequence
 * of records (struct store_wal_rec, then the payload, zero-padded to 8
 * bytes). Records carry the log generation, a lsn consecutive within it,
 * a crc32c of the header and one of the payload. A file begins with a
 * WAL_MARK record (generation g, lsn 0) followed by the prepared writes
 * re-logged by the checkpoint that started it (mark.nr_pend of them); the
 * file is valid when all of these are. At open the valid file of the
 * highest generation is the log, read from its start up to the first
 * record that fails its checks (bad crc, other generation, lsn gap): what
 * follows is a torn tail (or corruption) and is dropped, said in the log.
 *
 * Group commit: callers queue records; the writer thread takes every
 * record queued while its previous sync ran, writes them with one
 * pwritev and one fdatasync, then wakes all of them. Each caller then
 * applies its record's effect to the fragment files (no sync) and
 * reports it applied.
 *
 * Checkpoint (when the current file passes half the budget, at open and
 * at close): wait until every durable record is applied, syncfs the
 * store's filesystem (the fragment files and their directory), then
 * write the other file from its start: WAL_MARK of generation g+1 and
 * every pending write, synced. Until that completes the old file is the
 * log, and replaying it over synced files is harmless (records are
 * absolute: whole blocks, whole headers, whole files, removals).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

struct relog {
	struct store_wal_iovs *b;
	struct store_wal_rec *recs;
	struct store_wal_prep *preps;
	int n, cap;
	uint64_t gen;
};

static int relog_one(struct store_pend *p, void *arg)
{
	struct relog *rl = arg;
	if (rl->n == rl->cap)
		return -ENOSPC; /* counted beforehand: cannot happen */
	struct store_wal_prep *pr = &rl->preps[rl->n];
	struct store_wal_rec *r = &rl->recs[rl->n];
	*pr = (struct store_wal_prep){.hdr = p->hdr, .time_ms = p->time_ms};
	struct iovec iov[2] = {{pr, sizeof(*pr)}, {p->data, p->hdr.pend_len}};
	/* a whole write's bytes are in its own file (STORE_PEND_FILE) */
	int niov = p->hdr.pend_len && !(p->hdr.pend_flags & STORE_PEND_FILE) ? 2 : 1;
	store_wal_rec_init(r, WAL_PREPARE, iov, niov);
	rl->n++;
	store_wal_rec_seal(r, rl->gen, (uint64_t)rl->n);
	return store_wal_iov_add_rec(rl->b, r, iov, niov);
}

/*
 * The checkpoint (see the top of the file). Runs on the thread making the
 * one batch in progress (the writer, or a caller leading: lead()), or at
 * open/close when no writer runs. On return the log is the other file,
 * holding the mark and the pending writes.
 */
static int checkpoint_body(struct store *st);

/* The checkpoint, with appends written inline (nosync) held off. */
static int checkpoint(struct store *st)
{
	struct store_wal *w = &st->wal;
	pthread_mutex_lock(&w->mu);
	w->ckpt_busy = true;
	pthread_mutex_unlock(&w->mu);
	int r = checkpoint_body(st);
	pthread_mutex_lock(&w->mu);
	w->ckpt_busy = false;
	pthread_cond_broadcast(&w->done);
	pthread_mutex_unlock(&w->mu);
	return r;
}

static int checkpoint_body(struct store *st)
{
	struct store_wal *w = &st->wal;
	uint64_t t0 = sd_now_ns();
	pthread_mutex_lock(&w->mu);
	while (w->unapplied > 0)
		pthread_cond_wait(&w->applied, &w->mu);
	pthread_mutex_unlock(&w->mu);
	int sr = store_md_syncfs(st);
	if (sr)
		return sr;
	if (store_crash_at(st, STORE_CRASH_CKPT_SYNCED)) {
		w->dead = true, wal_set_crashed(w);
		return -ECANCELED;
	}
	int next = 1 - w->cur;
	struct store_wal_iovs b = {0};
	struct store_wal_rec mrec;
	struct store_wal_mark mark = {.time_ms = store_wal_wall_ms()};
	struct relog rl = {.b = &b, .gen = w->gen + 1};
	int r;
	/* The pending writes are re-logged under the table lock, so none is
	 * added or freed meanwhile (callers add theirs after their record is
	 * durable and before reporting it applied, which was waited for above,
	 * and the one thread making batches is here). */
	int npend = 0;
	pthread_mutex_lock(&st->pend_mu);
	for (int bk = 0; bk < STORE_PEND_BUCKETS; bk++)
		for (struct store_pend *p = st->pend[bk]; p; p = p->next)
			npend++;
	pthread_mutex_unlock(&st->pend_mu);
	rl.cap = npend;
	rl.recs = calloc((size_t)npend + 1, sizeof(*rl.recs));
	rl.preps = calloc((size_t)npend + 1, sizeof(*rl.preps));
	if (!rl.recs || !rl.preps) {
		r = -ENOMEM;
		goto out;
	}
	mark.nr_pend = (uint32_t)npend;
	struct iovec miov = {&mark, sizeof(mark)};
	store_wal_rec_init(&mrec, WAL_MARK, &miov, 1);
	store_wal_rec_seal(&mrec, rl.gen, 0);
	r = store_wal_iov_add_rec(&b, &mrec, &miov, 1);
	/* Hold the table while its buffers are being written. */
	pthread_mutex_lock(&st->pend_mu);
	for (int bk = 0; bk < STORE_PEND_BUCKETS && !r; bk++)
		for (struct store_pend *p = st->pend[bk]; p && !r; p = p->next)
			r = relog_one(p, &rl);
	if (!r) {
		size_t limit = b.bytes;
		if (store_crash_at(st, STORE_CRASH_CKPT_TORN))
			limit = b.bytes / 2, w->dead = true, wal_set_crashed(w);
		r = store_wal_write_iovs(w->fd[next], &b, 0, limit);
		if (!r && w->dead)
			r = -ECANCELED;
	}
	pthread_mutex_unlock(&st->pend_mu);
	if (!r) {
		int prev = w->cur;
		w->cur = next;
		r = store_wal_extend_zeroed(st, b.bytes);
		w->cur = prev;
	}
	if (!r)
		r = store_wal_sync(st, w->fd[next]);
	if (r)
		goto out;
	w->cur = next;
	w->gen = rl.gen;
	w->lsn = (uint64_t)npend;
	w->head = b.bytes;
	uint64_t dt = sd_now_ns() - t0;
	w->stats.checkpoints++;
	w->stats.ckpt_ns_total += dt;
	w->stats.ckpt_ns_last = dt;
	w->stats.log_bytes += b.bytes;
	sd_debug("checkpoint: generation %" PRIu64 ", %d pending write(s) re-logged, %.1f ms",
		 w->gen, npend, (double)dt / 1e6);
out:
	free(b.v);
	free(rl.recs);
	free(rl.preps);
	if (r)
		sd_err("checkpoint of the log failed: %s", strerror(-r));
	return r;
}

/* Answer the lazy (or the other) requests of a batch with result r. A
 * request answered may return at once: its struct (on its caller's
 * stack) is not touched again, hence the batch's own copy of the list
 * and flags. */
struct batch_view {
	struct store_wal_req **q;
	bool *lazy, *answered;
	int n;
};

static void wake(struct store *st, struct batch_view *bv, bool lazy, int r)
{
	struct store_wal *w = &st->wal;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < bv->n; i++) {
		if (bv->lazy[i] != lazy || bv->answered[i])
			continue;
		bv->answered[i] = true;
		bv->q[i]->result = r;
		if (!r)
			w->unapplied++;
		bv->q[i]->done = true;
		pthread_cond_signal(&bv->q[i]->cond);
	}
	pthread_mutex_unlock(&w->mu);
}

/* Write one batch (a list of queued requests) with one write and one sync. */
static void write_batch(struct store *st, struct store_wal_req *batch)
{
	struct store_wal *w = &st->wal;
	struct store_wal_iovs b = {0};
	int n = 0, r = 0, nreq = 0;
	uint64_t bytes = 0;
	for (struct store_wal_req *q = batch; q; q = q->next) {
		bytes += sizeof(q->rec) + store_wal_padded(q->rec.len);
		nreq++;
	}
	struct batch_view bv = {.n = nreq};
	bv.q = malloc((size_t)nreq * sizeof(*bv.q));
	bv.lazy = calloc((size_t)nreq, 1);
	bv.answered = calloc((size_t)nreq, 1);
	bool durable = false;
	if (!bv.q || !bv.lazy || !bv.answered) {
		/* answer everyone with the error, walking the list itself */
		pthread_mutex_lock(&w->mu);
		for (struct store_wal_req *q = batch, *nx; q; q = nx) {
			nx = q->next;
			q->result = -ENOMEM;
			q->done = true;
			pthread_cond_signal(&q->cond);
		}
		pthread_mutex_unlock(&w->mu);
		goto out;
	}
	nreq = 0;
	for (struct store_wal_req *q = batch; q; q = q->next) {
		bv.q[nreq] = q;
		bv.lazy[nreq++] = q->lazy;
		durable |= !q->lazy;
	}
	pthread_mutex_lock(&w->mu);
	bool full = !wal_crashed(w) && w->head + bytes > w->size / 2 && w->head > 4096;
	pthread_mutex_unlock(&w->mu);
	if (w->dead)
		r = -ECANCELED;
	else if (full)
		r = checkpoint(st);
	/* The tail is sealed and written under mu: lazy records written by
	 * their callers (lazy_inline) go between two batches, never inside. */
	pthread_mutex_lock(&w->mu);
	uint64_t first = w->lsn + 1;
	for (struct store_wal_req *q = batch; q && !r; q = q->next) {
		q->rec.batch_pos = (uint32_t)(w->lsn + 1 - first);
		store_wal_rec_seal(&q->rec, w->gen, ++w->lsn);
		r = store_wal_iov_add_rec(&b, &q->rec, q->iov, q->niov);
		n++;
	}
	if (!r)
		w->written_seq += (uint64_t)n;
	if (!r) {
		size_t limit = b.bytes;
		bool torn = store_crash_at(st, STORE_CRASH_TORN_INTENT);
		bool unsynced = !torn && store_crash_at(st, STORE_CRASH_WAL_UNSYNCED);
		if (torn) { /* the first records whole, the last one cut */
			struct store_wal_req *last = batch;
			while (last->next)
				last = last->next;
			limit = b.bytes - (sizeof(last->rec) + store_wal_padded(last->rec.len)) / 2 - 1;
		}
		r = store_wal_write_iovs(w->fd[w->cur], &b, w->head, limit);
		if (!r && !torn && !unsynced)
			r = store_wal_extend_zeroed(st, w->head + b.bytes);
		if (!r && (torn || unsynced)) {
			w->dead = true, wal_set_crashed(w);
			r = -ECANCELED;
		}
	}
	if (!r) {
		w->head += b.bytes;
		w->stats.batches++;
		w->stats.records += (uint64_t)n;
		w->stats.log_bytes += b.bytes;
		if ((uint64_t)n > w->stats.max_batch)
			w->stats.max_batch = (uint64_t)n;
	} else if (r != -ECANCELED) {
		w->lsn -= (uint64_t)n; /* nothing of it was written */
	}
	uint64_t inline_seen = w->lazy_inline;
	pthread_mutex_unlock(&w->mu);
	/* Lazy records (see store_wal_append_lazy) are answered as soon as
	 * they are written; the others once synced. */
	if (!r) {
		wake(st, &bv, true, 0);
		if (durable) {
			r = store_wal_sync(st, w->fd[w->cur]);
			pthread_mutex_lock(&w->mu);
			/* lazy records written inline during the sync may have
			 * missed it: the idle timer still owes them one */
			if (w->lazy_inline == inline_seen)
				w->unsynced = false;
			pthread_mutex_unlock(&w->mu);
		} else {
			pthread_mutex_lock(&w->mu);
			if (!w->unsynced) {
				w->unsynced = true;
				w->unsynced_since = sd_now_ns();
			}
			pthread_mutex_unlock(&w->mu);
		}
	}
	if (r && r != -ECANCELED)
		sd_err("cannot write the log: %s", strerror(-r));
	wake(st, &bv, true, r); /* lazy ones not answered yet: failed */
	wake(st, &bv, false, r);
out:
	free(b.v);
	free(bv.q);
	free(bv.lazy);
	free(bv.answered);
}

static void *writer_main(void *arg)
{
	struct store *st = arg;
	pthread_setname_np(pthread_self(), "sd_wal");
	struct store_wal *w = &st->wal;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->leading || (!w->q && !w->stop && !w->want_ckpt)) {
			if (w->leading || !w->unsynced) { /* a leader signals when it is done */
				pthread_cond_wait(&w->work, &w->mu);
				continue;
			}
			/* Lazy records written and nothing durable coming: sync
			 * them STORE_WAL_LAZY_MS after the first of them. */
			uint64_t due = w->unsynced_since + STORE_WAL_LAZY_MS * 1000000ull;
			uint64_t now = sd_now_ns();
			struct timespec ts;
			uint64_t wait = due > now ? due - now : 0;
			sd_realtime_in(wait, &ts);
			if ((wait == 0 || pthread_cond_timedwait(&w->work, &w->mu, &ts) == ETIMEDOUT) &&
			    !w->q && w->unsynced) {
				w->unsynced = false;
				pthread_mutex_unlock(&w->mu);
				store_wal_sync(st, w->fd[w->cur]);
				pthread_mutex_lock(&w->mu);
			}
		}
		if (w->want_ckpt) {
			w->want_ckpt = false;
			w->batching = true;
			pthread_mutex_unlock(&w->mu);
			int r = wal_crashed(w) ? 0 : checkpoint(st);
			pthread_mutex_lock(&w->mu);
			w->batching = false;
			w->ckpt_result = r;
			w->ckpt_done++;
			pthread_cond_broadcast(&w->done);
			continue;
		}
		if (!w->q && w->stop)
			break;
		w->batching = true;
		store_wal_gather(st);
		struct store_wal_req *batch = w->q;
		w->q = w->qtail = NULL;
		pthread_mutex_unlock(&w->mu);
		write_batch(st, batch);
		pthread_mutex_lock(&w->mu);
		w->batching = false;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Under mu: write q's record alone at the head of the log (extend: keep
 * the zeroed tail ahead of it) and count it; 0 or -errno, said in the log. */
static int write_one_locked(struct store *st, struct store_wal_req *q, bool extend)
{
	struct store_wal *w = &st->wal;
	struct store_wal_iovs b = {0};
	q->rec.batch_pos = 0;
	store_wal_rec_seal(&q->rec, w->gen, w->lsn + 1);
	int r = store_wal_iov_add_rec(&b, &q->rec, q->iov, q->niov);
	if (!r)
		r = store_wal_write_iovs(w->fd[w->cur], &b, w->head, b.bytes);
	if (!r && extend)
		r = store_wal_extend_zeroed(st, w->head + b.bytes);
	if (!r) {
		w->lsn++;
		w->written_seq++;
		w->head += b.bytes;
		w->stats.batches++;
		w->stats.records++;
		w->stats.log_bytes += b.bytes;
		if (!w->stats.max_batch)
			w->stats.max_batch = 1;
		w->unapplied++;
	} else {
		sd_err("cannot write the log: %s", strerror(-r));
	}
	free(b.v);
	return r;
}

/*
 * A store opened with nosync has nothing to share: the caller writes its
 * record itself, under the log mutex (no hand-off to the writer thread,
 * which then only runs checkpoints). Not while a crash hook is armed:
 * those live in write_batch().
 */
static int append_inline(struct store *st, struct store_wal_req *q)
{
	struct store_wal *w = &st->wal;
	uint64_t bytes = sizeof(q->rec) + store_wal_padded(q->rec.len);
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->ckpt_busy)
			pthread_cond_wait(&w->done, &w->mu);
		if (w->dead) {
			pthread_mutex_unlock(&w->mu);
			return -ECANCELED;
		}
		if (wal_crashed(w) || w->head + bytes <= w->size / 2 || w->head <= 4096)
			break;
		pthread_mutex_unlock(&w->mu);
		int r = store_wal_checkpoint(st);
		if (r)
			return r;
	}
	int r = write_one_locked(st, q, false);
	pthread_mutex_unlock(&w->mu);
	return r;
}

/*
 * A lazy record (a commit or an abort: answered once written, synced by
 * the next group commit) is written by its caller under mu, between two
 * batches, instead of waiting for the writer to finish the sync it may be
 * in. Returns 1 when the log must first be checkpointed: the caller then
 * queues the record for the writer, which does that.
 */
static int append_lazy_inline(struct store *st, struct store_wal_req *q)
{
	struct store_wal *w = &st->wal;
	uint64_t bytes = sizeof(q->rec) + store_wal_padded(q->rec.len);
	pthread_mutex_lock(&w->mu);
	while (w->ckpt_busy)
		pthread_cond_wait(&w->done, &w->mu);
	if (w->dead) {
		pthread_mutex_unlock(&w->mu);
		return -ECANCELED;
	}
	if (!wal_crashed(w) && w->head + bytes > w->size / 2 && w->head > 4096) {
		pthread_mutex_unlock(&w->mu);
		return 1;
	}
	int r = write_one_locked(st, q, true);
	if (!r) {
		w->lazy_inline++;
		if (!w->unsynced) {
			w->unsynced = true;
			w->unsynced_since = sd_now_ns();
			pthread_cond_signal(&w->work); /* the writer's idle timer */
		}
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}

/*
 * Under mu: a durable record whose caller finds the writer idle (no
 * batch in progress, nothing queued, nothing announced or hinted as
 * coming, no checkpoint due) is written and synced by its caller, as a
 * batch of one: handing it to the writer and being woken by it would
 * cost two thread switches and gain no sharing. Records arriving
 * meanwhile queue for the writer, which the leader wakes when it is done
 * (one batch at a time, as ever). Returns false when the caller must
 * queue its record instead.
 */
static bool lead(struct store *st, struct store_wal_req *q)
{
	struct store_wal *w = &st->wal;
	uint64_t bytes = sizeof(q->rec) + store_wal_padded(q->rec.len);
	if (w->window_ns || w->batching || w->q || w->want_ckpt || w->ckpt_busy || w->stop || w->dead ||
	    wal_crashed(w) || (w->head + bytes > w->size / 2 && w->head > 4096) ||
	    store_wal_would_hold(st))
		return false;
	w->batching = w->leading = true;
	store_wal_durable_queued(st);
	w->stats.led++;
	pthread_mutex_unlock(&w->mu);
	write_batch(st, q);
	pthread_mutex_lock(&w->mu);
	w->batching = w->leading = false;
	if (w->q || w->want_ckpt || w->stop || w->unsynced)
		pthread_cond_signal(&w->work);
	return true;
}

/* The store whose announced record (store_wal_claim) this thread will log. */
static __thread struct store *tl_announced;

static int wal_append(struct store *st, uint32_t type, const struct iovec *iov, int niov,
		      bool lazy)
{
	struct store_wal *w = &st->wal;
	struct store_wal_req q = {.iov = iov, .niov = niov, .lazy = lazy};
	store_wal_rec_init(&q.rec, type, iov, niov);
	if (!w->running) { /* replay at open: nothing is logged */
		return -EINVAL;
	}
	bool hooked = __atomic_load_n(&st->crash, __ATOMIC_ACQUIRE) != STORE_CRASH_NONE;
	if (st->nosync && !hooked)
		return append_inline(st, &q);
	if (lazy && !hooked) {
		int r = append_lazy_inline(st, &q);
		if (r != 1)
			return r;
	}
	pthread_cond_init(&q.cond, NULL);
	pthread_mutex_lock(&w->mu);
	if (!lazy && tl_announced == st) { /* this thread's announced record is here */
		tl_announced = NULL;
		__atomic_sub_fetch(&w->expected, 1, __ATOMIC_ACQ_REL);
	}
	if (!lazy && !hooked && lead(st, &q)) {
		pthread_mutex_unlock(&w->mu);
		pthread_cond_destroy(&q.cond);
		return q.result;
	}
	if (w->qtail)
		w->qtail->next = &q;
	else
		w->q = &q;
	w->qtail = &q;
	if (!lazy)
		store_wal_durable_queued(st);
	/* A writer gathering for records on their way (announced, or hinted
	 * by coordinators) goes on waiting while any is: waking it for this
	 * one would only put it back to sleep. Its wait ends at its deadline,
	 * or when the last announced record gives up or a hint ends (both
	 * signal it). A leader wakes it when done. */
	if (!w->leading && (!w->gathering || !store_wal_would_hold(st)))
		pthread_cond_signal(&w->work);
	while (!q.done)
		pthread_cond_wait(&q.cond, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_cond_destroy(&q.cond);
	return q.result;
}

void store_wal_claim(struct store *st)
{
	if (st)
		tl_announced = st;
}

void store_wal_unclaim(struct store *st)
{
	if (st && tl_announced == st) {
		tl_announced = NULL;
		store_wal_expect(st, -1);
	}
}

void store_wal_expect(struct store *st, int delta)
{
	if (!st)
		return;
	int64_t now = __atomic_add_fetch(&st->wal.expected, delta, __ATOMIC_ACQ_REL);
	if (now <= 0 && delta < 0) { /* the last one gave up: let a gathering writer go */
		pthread_mutex_lock(&st->wal.mu);
		pthread_cond_signal(&st->wal.work);
		pthread_mutex_unlock(&st->wal.mu);
	}
}

int store_wal_append(struct store *st, uint32_t type, const struct iovec *iov, int niov)
{
	return wal_append(st, type, iov, niov, false);
}

int store_wal_append_lazy(struct store *st, uint32_t type, const struct iovec *iov, int niov)
{
	return wal_append(st, type, iov, niov, true);
}

static unsigned frag_slot(uint64_t oid, uint8_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 56)) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 52) % STORE_WAL_FRAG_SLOTS;
}

void store_wal_note(struct store *st, uint64_t oid, uint8_t idx)
{
	struct store_wal *w = &st->wal;
	unsigned k = frag_slot(oid, idx);
	pthread_mutex_lock(&w->mu);
	if (w->frag_seq[k] < w->written_seq)
		w->frag_seq[k] = w->written_seq;
	pthread_mutex_unlock(&w->mu);
}

bool store_wal_frag_durable(struct store *st, uint64_t oid, uint8_t idx)
{
	if (st->nosync)
		return true; /* nothing is synced: only process crashes count */
	struct store_wal *w = &st->wal;
	unsigned k = frag_slot(oid, idx);
	pthread_mutex_lock(&w->mu);
	bool ok = w->frag_seq[k] <= w->synced_seq;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

void store_wal_applied(struct store *st)
{
	struct store_wal *w = &st->wal;
	pthread_mutex_lock(&w->mu);
	if (w->unapplied && --w->unapplied == 0)
		pthread_cond_broadcast(&w->applied);
	pthread_mutex_unlock(&w->mu);
}

int store_wal_checkpoint(struct store *st)
{
	struct store_wal *w = &st->wal;
	if (!w->running)
		return wal_crashed(w) ? 0 : checkpoint(st);
	pthread_mutex_lock(&w->mu);
	uint64_t want = w->ckpt_done + 1;
	w->want_ckpt = true;
	pthread_cond_signal(&w->work);
	while (w->ckpt_done < want)
		pthread_cond_wait(&w->done, &w->mu);
	int r = w->ckpt_result;
	pthread_mutex_unlock(&w->mu);
	return r;
}

int store_get_stats(struct store *st, struct store_stats *out)
{
	if (!st || !out)
		return -EINVAL;
	struct store_wal *w = &st->wal;
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	out->log_fill = w->head;
	out->log_size = w->size;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* ---- open / close ---- */

int store_wal_open(struct store *st, const char *dir, uint64_t size)
{
	struct store_wal *w = &st->wal;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->done, NULL);
	pthread_cond_init(&w->applied, NULL);
	const char *window = getenv("SHEEP_TEST_WAL_WINDOW_US");
	if (window)
		w->window_ns = strtoull(window, NULL, 10) * 1000;
	w->busy_ns = STORE_WAL_BUSY_HOLD_NS;
	w->inited = true;
	w->size = size < STORE_WAL_MIN_SIZE ? STORE_WAL_MIN_SIZE : size;
	w->dir = strdup(dir);
	if (!w->dir)
		return -ENOMEM;
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	for (int i = 0; i < 2; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/wal.%d", dir, i);
		w->fd[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (w->fd[i] < 0) {
			int e = -errno;
			sd_err("cannot open the log %s: %s", path, strerror(-e));
			return e;
		}
	}
	for (int i = 0; i < 2; i++) {
		struct stat sb;
		w->zeroed[i] = fstat(w->fd[i], &sb) ? 0 : (uint64_t)sb.st_size;
	}
	return 0;
}

int store_wal_start(struct store *st)
{
	struct store_wal *w = &st->wal;
	int r = checkpoint(st);
	if (r)
		return r;
	if (pthread_create(&w->thread, NULL, writer_main, st))
		return -EAGAIN;
	w->running = true;
	return 0;
}

void store_wal_close(struct store *st)
{
	struct store_wal *w = &st->wal;
	if (!w->inited)
		return;
	if (w->running) {
		if (!wal_crashed(w) && !w->dead)
			store_wal_checkpoint(st);
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
		w->running = false;
	}
	for (int i = 0; i < 2; i++)
		if (w->fd[i] >= 0)
			close(w->fd[i]);
	free(w->dir);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->applied);
}

/* ---- test hooks (store_test.h) ---- */

int store_test_checkpoint(struct store *st)
{
	return store_wal_checkpoint(st);
}

void store_test_gather_ns(struct store *st, uint64_t ns)
{
	pthread_mutex_lock(&st->wal.mu);
	st->wal.gather_ns = ns;
	pthread_mutex_unlock(&st->wal.mu);
}

void store_test_hold_ns(struct store *st, uint64_t ns)
{
	pthread_mutex_lock(&st->wal.mu);
	st->wal.hold_ns = ns;
	pthread_mutex_unlock(&st->wal.mu);
}

void store_test_busy_ns(struct store *st, uint64_t ns)
{
	pthread_mutex_lock(&st->wal.mu);
	st->wal.busy_ns = ns;
	pthread_mutex_unlock(&st->wal.mu);
}

int store_test_wal_path(const struct store *st, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/wal.%d", st->wal.dir, st->wal.cur);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
