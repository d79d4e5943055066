/* store_wal_hold.c - when the log writer holds a group commit for the records on their way. */
/*
 * A sync shared by more records costs each of them less, but a record
 * waits for its sync. The writer holds a sync (store_wal_gather) only
 * when someone says records are coming:
 *  - announced requests (store_wal_expect/claim): a peer write that has
 *    arrived and not yet logged its record (queued for a CPU, checking
 *    its fragment): at most as long as the last sync took, 2 ms at most;
 *  - coordinators' hints (store_wal_hint): writes that hold their object
 *    lock at their coordinator and have not sent their prepares (they are
 *    reading the old data): at most hold_budget(), a few gaps between
 *    durable records, 20 ms at most, ended early when every coordinator
 *    says nothing more is coming;
 *  - coordinators' patience (STORE_HINT_PATIENCE in their hints): a
 *    coordinator with other writes in flight (its client keeps a queue)
 *    offers a quarter of its writes' usual time; the batch is held that
 *    long (the least offered, STORE_WAL_BUSY_HOLD_NS at most) for the
 *    records that keep arriving. The two above rarely hold at a queue
 *    depth of 32 (a record seldom knows of the next one); this does, and
 *    halves the syncs per write there (README, "Session 25").
 * A lone write (QD1) has none of them and never waits.
 * For measuring, SHEEP_TEST_WAL_WINDOW_US holds every durable batch a
 * fixed time instead (bench/nbd_bench.sh --wal-window): fewer syncs per
 * write bought with latency, at every queue depth.
 */
#include <stdlib.h>
#include <time.h>

#include "lib/util.h"
#include "sheep/store/store_priv.h"

/* Writes the coordinators' latest hints (younger than the longest hold)
 * say are coming. Under mu. */
static uint64_t hint_coming(const struct store_wal *w, uint64_t now)
{
	uint64_t n = 0;
	for (int i = 0; i < STORE_WAL_HINT_SLOTS; i++)
		if (w->hint[i].coming && now - w->hint[i].at_ns <= STORE_WAL_HOLD_MAX_NS)
			n += w->hint[i].coming;
	return n;
}

/* The least patience the coordinators' latest hints (younger than the
 * longest hold) offer; 0: none offers any. Under mu. */
static uint64_t hint_patience(const struct store_wal *w, uint64_t now)
{
	uint64_t p = 0;
	for (int i = 0; i < STORE_WAL_HINT_SLOTS; i++)
		if (w->hint[i].patience_ns && now - w->hint[i].at_ns <= STORE_WAL_HOLD_MAX_NS &&
		    (!p || w->hint[i].patience_ns < p))
			p = w->hint[i].patience_ns;
	return p;
}

/* How long a batch may be held for hinted writes: STORE_WAL_HOLD_GAPS
 * gaps between durable records (the moving average), at least the last
 * sync's time, at most STORE_WAL_HOLD_MAX_NS. Under mu. */
static uint64_t hold_budget(const struct store_wal *w)
{
	if (w->hold_ns)
		return w->hold_ns;
	uint64_t b = STORE_WAL_HOLD_GAPS * w->gap_ns;
	if (b < w->last_sync_ns)
		b = w->last_sync_ns;
	return b < STORE_WAL_HOLD_MAX_NS ? b : STORE_WAL_HOLD_MAX_NS;
}

/* How long a batch may be held for patient coordinators: the least
 * patience offered, at most busy_ns (STORE_WAL_BUSY_HOLD_NS); 0: no hold.
 * Under mu. */
static uint64_t busy_budget(const struct store_wal *w, uint64_t now)
{
	uint64_t b = hint_patience(w, now);
	return b < w->busy_ns ? b : w->busy_ns;
}

static void deadline_ts(uint64_t deadline_ns, struct timespec *ts)
{
	uint64_t now = sd_now_ns();
	sd_realtime_in(deadline_ns > now ? deadline_ns - now : 0, ts);
}

/*
 * Before a group commit that will sync, wait (under w->mu, which the wait
 * releases) while durable records are on their way, so that they share
 * this sync instead of paying for the next one:
 *  - records announced by store_wal_expect() (arrived, not yet queued):
 *    at most as long as the last sync took, never more than
 *    STORE_WAL_GATHER_MAX_NS, counted from the end of any hold below;
 *  - writes the coordinators' hints say are coming (store_wal_hint):
 *    at most hold_budget(). A hint of 0 from a coordinator ends its part
 *    of the hold at once;
 *  - else, while a coordinator offers patience: busy_budget().
 * A batch of lazy records only (no sync) and a log with nothing announced
 * nor hinted go at once, so a lone writer (QD1) never waits here.
 */
void store_wal_gather(struct store *st)
{
	struct store_wal *w = &st->wal;
	if (st->nosync || w->stop || w->dead)
		return;
	bool durable = false;
	for (struct store_wal_req *q = w->q; q && !durable; q = q->next)
		durable = !q->lazy;
	if (!durable)
		return;
	uint64_t t0 = sd_now_ns();
	if (w->window_ns) { /* the fixed window of the test hook */
		while (!w->stop && !w->want_ckpt && sd_now_ns() < t0 + w->window_ns) {
			struct timespec ts;
			deadline_ts(t0 + w->window_ns, &ts);
			w->gathering = true;
			pthread_cond_timedwait(&w->work, &w->mu, &ts);
			w->gathering = false;
		}
		w->stats.holds++;
		return;
	}
	uint64_t announced =
	    w->last_sync_ns < STORE_WAL_GATHER_MAX_NS ? w->last_sync_ns : STORE_WAL_GATHER_MAX_NS;
	if (w->gather_ns)
		announced = w->gather_ns;
	uint64_t hinted = hold_budget(w);
	bool held = false, holding = false;
	uint64_t base = t0; /* the announced records' wait starts after any hold */
	for (;;) {
		if (w->stop || w->want_ckpt)
			break;
		uint64_t now = sd_now_ns();
		uint64_t until = 0, busy = busy_budget(w, now);
		if (hint_coming(w, now) > 0 && now < t0 + hinted) {
			until = t0 + hinted;
			holding = true;
		} else if (now < t0 + busy) {
			until = t0 + busy;
			holding = true;
		} else if (holding) { /* the hold ended now */
			holding = false;
			base = now;
		}
		if (__atomic_load_n(&w->expected, __ATOMIC_ACQUIRE) > 0 && base + announced > until)
			until = base + announced;
		if (now >= until)
			break;
		held = true;
		struct timespec ts;
		deadline_ts(until, &ts);
		w->gathering = true;
		pthread_cond_timedwait(&w->work, &w->mu, &ts);
		w->gathering = false;
	}
	if (held)
		w->stats.holds++;
}

/* Under mu: would the writer hold a sync now (records announced or
 * hinted as coming)? A caller then queues its record for the writer
 * instead of writing and syncing it itself (store_wal.c, lead()). */
bool store_wal_would_hold(const struct store *st)
{
	const struct store_wal *w = &st->wal;
	uint64_t now = sd_now_ns();
	return __atomic_load_n(&w->expected, __ATOMIC_ACQUIRE) > 0 || hint_coming(w, now) > 0 ||
	       busy_budget(w, now) > 0;
}

/* Under mu: a durable record was queued; the gaps between them size the hold. */
void store_wal_durable_queued(struct store *st)
{
	struct store_wal *w = &st->wal;
	uint64_t now = sd_now_ns();
	if (w->last_durable_ns) {
		uint64_t gap = now - w->last_durable_ns;
		if (gap > STORE_WAL_HOLD_MAX_NS)
			gap = STORE_WAL_HOLD_MAX_NS;
		w->gap_ns = w->gap_ns ? (7 * w->gap_ns + gap) / 8 : gap;
	}
	w->last_durable_ns = now;
}

void store_wal_hint(struct store *st, uint32_t hint)
{
	if (!st || !st->wal.inited)
		return;
	struct store_wal *w = &st->wal;
	unsigned slot = (hint >> 24) % STORE_WAL_HINT_SLOTS;
	uint32_t coming = hint & STORE_HINT_COMING;
	uint64_t patience =
	    (uint64_t)((hint >> STORE_HINT_PATIENCE_SHIFT) & STORE_HINT_PATIENCE_MAX) *
	    STORE_HINT_PATIENCE_UNIT_NS;
	pthread_mutex_lock(&w->mu);
	bool ended = (w->hint[slot].coming && !coming) || (w->hint[slot].patience_ns && !patience);
	w->hint[slot].coming = coming;
	w->hint[slot].patience_ns = patience;
	w->hint[slot].at_ns = sd_now_ns();
	if (ended) /* a holding writer may go now */
		pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}
