/* rebuild_priv.h - state shared by sheep/rebuild/rebuild.c (thread, planning),
 * gather.c (object lists, end of an epoch) and ops.c (opcodes, hooks). */
#ifndef SHEEP_RECOVERY_PRIV_H
#define SHEEP_RECOVERY_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_internal.h"
#include "recovery/recovery.h"
#include "sheep/rebuild/rebuild.h"

#define REC_KNOWN_MAX  4096 /* node ids ever seen by this sheep */
#define REC_WORKERS    8    /* threads running jobs; the throttle bounds how many are busy */
#define REC_LOST_SAID 256   /* lost objects remembered as reported */
#define REC_RETRY_MAX_MS 60000
#define REC_LOST_ERR_AFTER 3 /* re-plans before an object is called lost at err */
#define REC_LOST_CONFIRM_MS 1000 /* short in plans this far apart: lost (see note_short) */
#define REC_MAX_ROUNDS 6    /* plans per epoch: the first plus rescans */
#define REC_BAD_MAX    64   /* checksum mismatches waiting for repair */
#define REC_IDLE_MS    1000 /* rec_main settled: longest sleep (force, bad, stop wait this) */
#define REC_WORKER_IDLE_MS 10000 /* a worker with nothing to start (woken by broadcasts) */
#define REC_REPAIR_TRIES 10 /* attempts at one repair before it waits for an epoch change */

struct rec_bad {
	uint64_t oid;
	uint8_t idx;
	uint8_t tries; /* failed attempts so far */
};

/* An object the plans of this epoch found short of consistent fragments. */
struct rec_short {
	uint64_t oid;
	uint64_t since_ms; /* the first plan of the unbroken run that found it so */
};

struct sheep_recovery {
	struct sheep *s;
	pthread_mutex_t mu; /* guards everything below (workers too: io_read copies a known[] slot under it) */
	pthread_cond_t cond;
	pthread_t main_thr;
	bool main_started;
	pthread_t workers[REC_WORKERS];
	int nr_workers;
	bool stop;
	bool force;
	uint64_t md_check_ms; /* when the disks are next checked (store_md_check) */
	struct recovery *eng;
	struct recovery_io io;
	struct sd_node *known; /* id -> node; slots never change once set */
	uint32_t nr_known;

	/* what STAT_RECOVERY reports */
	uint32_t epoch;
	uint8_t status; /* enum sd_recovery_status */
	bool cluster_done;
	uint32_t rounds;
	uint64_t start_ms, end_ms;
	uint64_t round_moved; /* jobs that copied or rebuilt since the last plan */
	uint64_t dropped;
	uint64_t base_read, base_written; /* engine byte counters when the epoch began */
	uint64_t repairs;
	char message[256];
	/* Retry of failed jobs and re-plan of lost objects, with backoff. */
	uint64_t retry_at;    /* when (rec_now_ms) to retry; 0: not scheduled */
	uint32_t retry_ms;    /* the current backoff (1 s doubling to 60 s) */
	uint32_t retries;     /* retries in this epoch */
	/* The objects the last plan found short, by oid (see note_short), and
	 * those of them called lost: short in plans REC_LOST_CONFIRM_MS
	 * apart (what STAT_RECOVERY reports, the first ones by name). */
	struct rec_short *shorts;
	size_t nr_shorts;
	uint64_t nr_lost;
	uint64_t lost_named[SD_RECOVERY_LOST_NAMED];
	uint64_t lost_confirm_ms; /* REC_LOST_CONFIRM_MS, or SHEEP_TEST_LOST_CONFIRM_MS */
	uint64_t lost_said[REC_LOST_SAID]; /* lost objects already logged at err */
	unsigned nr_lost_said;
	struct rec_bad bad[REC_BAD_MAX];
	unsigned nr_bad;
	/* Repairs that failed (a write in flight: too few fragments agree
	 * yet), tried again at redo_at; status stays running meanwhile. */
	struct rec_bad redo[REC_BAD_MAX];
	unsigned nr_redo;
	uint64_t redo_at;
	unsigned test_repair_fail; /* SHEEP_TEST_REPAIR_FAIL: fail this many repairs */
};

/* The fragments the data members hold, as the planner takes them. */
struct rec_frag_vec {
	struct recovery_frag *v;
	size_t nr, cap;
	uint32_t node;
	uint64_t only_oid; /* 0 = all */
};

uint64_t rec_now_ms(void);
/* The engine's id for node n (r->mu held): its slot in known[]. */
uint32_t rec_node_id(struct sheep_recovery *r, const struct sd_node *n);
/* Everything the data members of v hold (only_oid: one object, 0: all)
 * into *fv (freed by the caller); 0, -ECANCELED when stopping, -ENOMEM. */
struct sheep_view;
int rec_gather(struct sheep_recovery *r, struct sheep_view *v, uint64_t only_oid,
	       struct rec_frag_vec *fv);
/* Every data member of v has finished v's epoch with nothing failed (and,
 * with need_dropped, dropped what it no longer holds). */
bool rec_cluster_complete(struct sheep_recovery *r, struct sheep_view *v, bool need_dropped);
/* Remove the fragments the plan says now live elsewhere. */
void rec_drop_old(struct sheep_recovery *r, struct sheep_view *v);
/* Wait on r->cond for up to ms (r->mu held). */
void rec_timed_wait(struct sheep_recovery *r, uint64_t ms);

#endif
