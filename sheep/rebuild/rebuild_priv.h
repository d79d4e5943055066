/* rebuild_priv.h - state shared by sheep/rebuild/rebuild.c (thread, planning) and
 * sheep/rebuild/ops.c (opcodes, hooks). */
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
#define REC_MAX_ROUNDS 6    /* plans per epoch: the first plus rescans */
#define REC_BAD_MAX    64   /* checksum mismatches waiting for repair */

struct rec_bad {
	uint64_t oid;
	uint8_t idx;
};

struct sheep_recovery {
	struct sheep *s;
	pthread_mutex_t mu; /* guards everything below but known[] slots once set */
	pthread_cond_t cond;
	pthread_t main_thr;
	bool main_started;
	pthread_t workers[REC_WORKERS];
	int nr_workers;
	bool stop;
	bool force;
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
	struct rec_bad bad[REC_BAD_MAX];
	unsigned nr_bad;
};

uint64_t rec_now_ms(void);
/* Wait on r->cond for up to ms (r->mu held). */
void rec_timed_wait(struct sheep_recovery *r, uint64_t ms);

#endif
