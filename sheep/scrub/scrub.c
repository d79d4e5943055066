/* scrub.c - the background scrub thread of a sheep and its found/repaired checksum counters. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/scrub/scrub.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

#define SCRUB_WATCH_MAX	    256	  /* bad fragments waiting to be seen good again */
#define SCRUB_REST_WAKE_MS  60000 /* longest sleep while resting or disabled */
#define SCRUB_EMPTY_WAKE_MS 5000  /* nothing to scrub yet: look again this often */

struct scrub_frag {
	uint64_t oid;
	uint32_t frag_size;
	uint8_t idx;
	/* watch list only: when to verify it again, and the current backoff */
	uint64_t next_ms;
	uint32_t delay_ms;
};

struct sheep_scrub {
	struct sheep *s;
	pthread_mutex_t mu; /* guards everything below; never held across I/O */
	pthread_cond_t cond;
	pthread_t thr;
	bool started, stop;
	bool enabled;
	uint64_t rate;
	uint32_t pause;
	bool restart; /* start a new pass now (dog cluster scrub start) */
	/* counters */
	uint64_t passes, done, total, scanned, bytes, found, repaired;
	struct scrub_frag watch[SCRUB_WATCH_MAX];
	unsigned nr_watch;
};

static void wait_ms(struct sheep_scrub *sc, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&sc->cond, &sc->mu, &ts);
}

int sheep_scrub_parse(const char *arg, struct sheep_scrub_opts *o)
{
	if (!strcmp(arg, "off")) {
		o->off = true;
		return 0;
	}
	char buf[128];
	if (!*arg || snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	/* Comma-separated parts, none empty. */
	for (char *t = buf, *next; t; t = next) {
		next = strchr(t, ',');
		if (next)
			*next++ = '\0';
		uint64_t v;
		if (!strncmp(t, "rate=", 5)) {
			if (sd_parse_size(t + 5, &v) || v == 0)
				return -EINVAL;
			o->rate = v;
		} else if (!strncmp(t, "pause=", 6)) {
			char *end;
			errno = 0;
			v = strtoull(t + 6, &end, 10);
			if (errno || end == t + 6 || *end || t[6] == '-' || v > 30 * 86400)
				return -EINVAL;
			o->pause = (uint32_t)v;
			o->pause_set = true;
		} else {
			return -EINVAL;
		}
	}
	o->off = false;
	return 0;
}

/* ---- the watch list: fragments reported bad, until seen good ---- */

void sheep_scrub_report_bad(struct sheep *s, uint64_t oid, uint8_t idx)
{
	struct sheep_scrub *sc = s->scrub;
	if (sc) {
		pthread_mutex_lock(&sc->mu);
		bool seen = false;
		for (unsigned k = 0; k < sc->nr_watch && !seen; k++)
			seen = sc->watch[k].oid == oid && sc->watch[k].idx == idx;
		if (!seen) {
			sc->found++;
			if (sc->nr_watch < SCRUB_WATCH_MAX) {
				struct scrub_frag *w = &sc->watch[sc->nr_watch++];
				memset(w, 0, sizeof(*w));
				w->oid = oid;
				w->idx = idx;
				w->delay_ms = 1000;
				w->next_ms = sd_now_ns() / 1000000ull + w->delay_ms;
			}
		}
		pthread_mutex_unlock(&sc->mu);
	}
	sheep_recovery_report_bad(s, oid, idx, false);
}

/* Verify the watched fragments that are due again: count those now good
 * as repaired; a still bad one waits twice as long (1 s up to 60 s), so a
 * repair that cannot happen (recovery disabled) costs little. */
static void recheck_watched(struct sheep_scrub *sc)
{
	uint64_t now = sd_now_ns() / 1000000ull;
	pthread_mutex_lock(&sc->mu);
	unsigned n = 0;
	struct scrub_frag w[SCRUB_WATCH_MAX];
	for (unsigned k = 0; k < sc->nr_watch; k++)
		if (sc->watch[k].next_ms <= now)
			w[n++] = sc->watch[k];
	pthread_mutex_unlock(&sc->mu);
	for (unsigned k = 0; k < n; k++) {
		int rc = store_verify(sc->s->store, w[k].oid, w[k].idx);
		pthread_mutex_lock(&sc->mu);
		for (unsigned j = 0; j < sc->nr_watch; j++) {
			struct scrub_frag *e = &sc->watch[j];
			if (e->oid != w[k].oid || e->idx != w[k].idx)
				continue;
			if (rc == -EIO) {
				e->delay_ms = SD_MIN(e->delay_ms * 2, 60000u);
				e->next_ms = sd_now_ns() / 1000000ull + e->delay_ms;
				break;
			}
			*e = sc->watch[--sc->nr_watch];
			if (rc == 0)
				sc->repaired++;
			break;
		}
		pthread_mutex_unlock(&sc->mu);
		if (rc == -EIO)
			continue;
		if (rc == 0)
			sd_notice("scrub: %016" PRIx64 " fragment %u verifies again: repaired",
				  w[k].oid, w[k].idx);
	}
}

/* ---- a pass ---- */

struct frag_list {
	struct scrub_frag *v;
	size_t nr, cap;
};

static int list_one(const struct store_meta *m, void *arg)
{
	struct frag_list *l = arg;
	if (l->nr == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 1024;
		void *p = realloc(l->v, ncap * sizeof(*l->v));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = ncap;
	}
	l->v[l->nr++] =
	    (struct scrub_frag){.oid = m->oid, .frag_size = m->frag_size, .idx = m->idx};
	return 0;
}

/* Formatted and not waiting for the last epoch's members (cluster.h). */
static bool formatted(struct sheep *s)
{
	struct group_status st;
	group_status(s, &st);
	return st.ctime != 0 && !st.waiting;
}

/*
 * The scrub thread. Guarantees: at most one fragment is verified at a
 * time, and after each one the thread sleeps frag_size / rate, so over a
 * pass it reads at most `rate` bytes per second (a stop, a rate change
 * or a new pass wakes it at once); it never holds its mutex while it
 * reads. It returns when the sheep stops.
 */
static void *scrub_main(void *arg)
{
	struct sheep_scrub *sc = arg;
	pthread_setname_np(pthread_self(), "sd_scrub");
	struct frag_list l = {0};
	size_t next = 0;
	uint64_t rest_until = 0, next_recheck = 0;
	pthread_mutex_lock(&sc->mu);
	while (!sc->stop) {
		uint64_t now = sd_now_ns() / 1000000ull;
		if (now >= next_recheck && sc->nr_watch) {
			pthread_mutex_unlock(&sc->mu);
			recheck_watched(sc);
			pthread_mutex_lock(&sc->mu);
			next_recheck = now + 1000;
			continue;
		}
		if (sc->restart) {
			sc->restart = false;
			free(l.v);
			memset(&l, 0, sizeof(l));
			rest_until = 0;
		}
		if (!sc->enabled || now < rest_until) {
			/* Enable, disable, restart and stop broadcast: sleep the
			 * whole rest (an idle sheep woke every second here). */
			uint64_t ms = sc->enabled ? SD_MIN(rest_until - now, SCRUB_REST_WAKE_MS)
						  : SCRUB_REST_WAKE_MS;
			wait_ms(sc, sc->nr_watch ? SD_MIN(ms, 1000) : ms);
			continue;
		}
		if (!l.v) {
			pthread_mutex_unlock(&sc->mu);
			bool ok = formatted(sc->s);
			int rc = ok ? store_for_each(sc->s->store, list_one, &l) : 0;
			pthread_mutex_lock(&sc->mu);
			if (!ok || rc || !l.nr) {
				free(l.v);
				memset(&l, 0, sizeof(l));
				wait_ms(sc, SCRUB_EMPTY_WAKE_MS);
				continue;
			}
			next = 0;
			sc->done = 0;
			sc->total = l.nr;
			sd_info("scrub: pass %" PRIu64 " over %zu fragment(s) at %" PRIu64
				" bytes/s",
				sc->passes + 1, l.nr, sc->rate);
		}
		if (next == l.nr) {
			sc->passes++;
			sd_info("scrub: pass %" PRIu64 " done: %zu fragment(s), %" PRIu64
				" found bad so far, %" PRIu64 " repaired",
				sc->passes, l.nr, sc->found, sc->repaired);
			free(l.v);
			memset(&l, 0, sizeof(l));
			rest_until = now + (uint64_t)sc->pause * 1000;
			continue;
		}
		struct scrub_frag f = l.v[next++];
		pthread_mutex_unlock(&sc->mu);
		int rc = store_verify(sc->s->store, f.oid, f.idx);
		if (rc == -EIO) {
			sd_warn("scrub: %016" PRIx64 " fragment %u fails its checksum", f.oid,
				f.idx);
			sheep_scrub_report_bad(sc->s, f.oid, f.idx);
			next_recheck = 0;
		}
		pthread_mutex_lock(&sc->mu);
		sc->done++;
		if (rc != -ENOENT) {
			sc->scanned++;
			sc->bytes += f.frag_size;
			/* The throttle: this fragment's share of a second at rate. */
			uint64_t ms = sc->rate ? (uint64_t)f.frag_size * 1000 / sc->rate : 0;
			if (ms)
				wait_ms(sc, ms);
		}
	}
	pthread_mutex_unlock(&sc->mu);
	free(l.v);
	return NULL;
}

int sheep_scrub_start(struct sheep *s, const struct sheep_scrub_opts *o)
{
	if (!s->store)
		return 0;
	struct sheep_scrub *sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->s = s;
	sc->enabled = !(o && o->off);
	sc->rate = o && o->rate ? o->rate : SHEEP_SCRUB_RATE;
	sc->pause = o && o->pause_set ? o->pause : SHEEP_SCRUB_PAUSE;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->scrub = sc;
	if (pthread_create(&sc->thr, NULL, scrub_main, sc)) {
		sheep_scrub_fini(s);
		return -EAGAIN;
	}
	sc->started = true;
	sd_info("scrub: %s (%" PRIu64 " bytes/s, %u s between passes)", sc->enabled ? "on" : "off",
		sc->rate, sc->pause);
	return 0;
}

void sheep_scrub_stop(struct sheep *s)
{
	struct sheep_scrub *sc = s->scrub;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_broadcast(&sc->cond);
	pthread_mutex_unlock(&sc->mu);
	if (sc->started)
		pthread_join(sc->thr, NULL);
	sc->started = false;
}

void sheep_scrub_fini(struct sheep *s)
{
	struct sheep_scrub *sc = s->scrub;
	if (!sc)
		return;
	sheep_scrub_stop(s);
	s->scrub = NULL;
	pthread_cond_destroy(&sc->cond);
	pthread_mutex_destroy(&sc->mu);
	free(sc);
}

void sheep_scrub_stat(struct sheep *s, struct sd_store_stat *st)
{
	struct sheep_scrub *sc = s->scrub;
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	st->scrub_enabled = sc->enabled;
	st->scrub_rate = sc->rate;
	st->scrub_passes = sc->passes;
	st->scrub_done = sc->done;
	st->scrub_total = sc->total;
	st->scrub_scanned = sc->scanned;
	st->scrub_bytes = sc->bytes;
	st->csum_found = sc->found;
	st->csum_repaired = sc->repaired;
	pthread_mutex_unlock(&sc->mu);
}

int sheep_scrub_ctl(struct sheep *s, const struct sd_scrub_ctl *ctl)
{
	struct sheep_scrub *sc = s->scrub;
	if (ctl->action == SD_SCRUB_STATUS)
		return SD_RES_SUCCESS;
	if (ctl->action != SD_SCRUB_START && ctl->action != SD_SCRUB_STOP)
		return SD_RES_INVALID_PARMS;
	if (!sc)
		return SD_RES_NO_STORE;
	pthread_mutex_lock(&sc->mu);
	if (ctl->action == SD_SCRUB_START) {
		sc->enabled = true;
		if (ctl->rate)
			sc->rate = ctl->rate;
		sc->restart = true;
	} else {
		sc->enabled = false;
	}
	pthread_cond_broadcast(&sc->cond);
	uint64_t rate = sc->rate;
	pthread_mutex_unlock(&sc->mu);
	sd_notice("scrub: %s (%" PRIu64 " bytes/s)",
		  ctl->action == SD_SCRUB_START ? "started, new pass" : "stopped", rate);
	return SD_RES_SUCCESS;
}
