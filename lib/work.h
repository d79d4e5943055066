/* work.h - work queues: a pool of threads runs jobs, completions run on an event loop. */
#ifndef SD_WORK_H
#define SD_WORK_H

#include <stdbool.h>

#include "lib/event.h"

/*
 * A job's fn runs on one of the pool's threads; then its done (if any)
 * runs on the loop thread, unless fn returned false: then fn finished the
 * job itself and w is no longer touched (fn may have freed it). Jobs start
 * in FIFO order. The struct is the caller's and must live until done has
 * run (embed it in a larger one).
 */
struct sd_work {
	bool (*fn)(struct sd_work *w);
	void (*done)(struct sd_work *w);
	struct sd_work *next; /* private */
};

struct sd_wq;

/* nr_threads >= 1. 0 or -errno. */
int sd_wq_create(const char *name, int nr_threads, struct sd_loop *loop, struct sd_wq **out);
void sd_wq_queue(struct sd_wq *wq, struct sd_work *w);
/* Jobs queued but not yet started. */
unsigned sd_wq_backlog(struct sd_wq *wq);
/* Stop the threads after the running jobs; unstarted jobs are dropped. */
void sd_wq_destroy(struct sd_wq *wq);

#endif
