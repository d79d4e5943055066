/* work.c - thread pool behind work.h; completions are handed to the loop with sd_loop_call. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/work.h"

#define SD_WQ_STACK (1u << 20)

struct sd_wq {
	char name[16];
	struct sd_loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sd_work *head, *tail;
	unsigned backlog;
	int stop;
	int nr_threads;
	pthread_t *threads;
};

static void run_done(void *arg)
{
	struct sd_work *w = arg;
	w->done(w);
}

static void *worker_main(void *arg)
{
	struct sd_wq *wq = arg;
	pthread_setname_np(pthread_self(), wq->name);
	for (;;) {
		pthread_mutex_lock(&wq->lock);
		while (!wq->head && !wq->stop)
			pthread_cond_wait(&wq->cond, &wq->lock);
		if (wq->stop) {
			pthread_mutex_unlock(&wq->lock);
			return NULL;
		}
		struct sd_work *w = wq->head;
		wq->head = w->next;
		if (!wq->head)
			wq->tail = NULL;
		wq->backlog--;
		pthread_mutex_unlock(&wq->lock);
		if (w->fn(w) && w->done)
			sd_loop_call(wq->loop, run_done, w);
	}
}

int sd_wq_create(const char *name, int nr_threads, struct sd_loop *loop, struct sd_wq **out)
{
	if (nr_threads < 1)
		return -EINVAL;
	struct sd_wq *wq = calloc(1, sizeof(*wq));
	if (!wq)
		return -ENOMEM;
	snprintf(wq->name, sizeof(wq->name), "%s", name);
	wq->loop = loop;
	pthread_mutex_init(&wq->lock, NULL);
	pthread_cond_init(&wq->cond, NULL);
	wq->threads = calloc((size_t)nr_threads, sizeof(pthread_t));
	if (!wq->threads) {
		free(wq);
		return -ENOMEM;
	}
	/* 1 MiB stacks, not glibc's 8 MiB: a sheep has 64 pool threads, and
	 * their deepest frames (gateway calls on GW_MAX_CALLS fragments) use
	 * a few tens of KiB. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SD_WQ_STACK);
	for (int i = 0; i < nr_threads; i++) {
		int ret = pthread_create(&wq->threads[i], &attr, worker_main, wq);
		if (ret) {
			pthread_attr_destroy(&attr);
			wq->nr_threads = i;
			sd_wq_destroy(wq);
			return -ret;
		}
	}
	pthread_attr_destroy(&attr);
	wq->nr_threads = nr_threads;
	*out = wq;
	return 0;
}

void sd_wq_queue(struct sd_wq *wq, struct sd_work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&wq->lock);
	if (wq->tail)
		wq->tail->next = w;
	else
		wq->head = w;
	wq->tail = w;
	wq->backlog++;
	pthread_mutex_unlock(&wq->lock);
	/* After the unlock: a worker woken under the lock would only block
	 * again on it (one more thread switch per request). The condition
	 * lives as long as the queue, so signalling it here is safe. */
	pthread_cond_signal(&wq->cond);
}

unsigned sd_wq_backlog(struct sd_wq *wq)
{
	pthread_mutex_lock(&wq->lock);
	unsigned n = wq->backlog;
	pthread_mutex_unlock(&wq->lock);
	return n;
}

void sd_wq_destroy(struct sd_wq *wq)
{
	if (!wq)
		return;
	pthread_mutex_lock(&wq->lock);
	wq->stop = 1;
	pthread_cond_broadcast(&wq->cond);
	pthread_mutex_unlock(&wq->lock);
	for (int i = 0; i < wq->nr_threads; i++)
		pthread_join(wq->threads[i], NULL);
	free(wq->threads);
	pthread_mutex_destroy(&wq->lock);
	pthread_cond_destroy(&wq->cond);
	free(wq);
}
