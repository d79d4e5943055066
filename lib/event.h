/* event.h - a small epoll event loop with thread-safe calls into the loop thread. */
#ifndef SD_EVENT_H
#define SD_EVENT_H

#include <stdint.h>
#include <sys/epoll.h>

/*
 * One loop runs on one thread (sd_loop_run). Handlers run on that thread.
 * sd_loop_call() is the only function safe from other threads: it queues a
 * function to run on the loop thread soon (FIFO) and wakes the loop.
 */
struct sd_loop;

typedef void (*sd_event_fn)(int fd, uint32_t events, void *arg);
typedef void (*sd_call_fn)(void *arg);

int sd_loop_create(struct sd_loop **out);
/* Free the loop; registered fds are not closed. Pending calls are dropped. */
void sd_loop_destroy(struct sd_loop *loop);

/* Watch fd for events (EPOLLIN, EPOLLOUT...). 0 or -errno. */
int sd_loop_add(struct sd_loop *loop, int fd, uint32_t events, sd_event_fn fn, void *arg);
/* Change fd's events; the same events again cost no syscall. 0 or -errno. */
int sd_loop_mod(struct sd_loop *loop, int fd, uint32_t events);
/* How many sd_loop_mod calls reached epoll_ctl (loop thread; for tests). */
uint64_t sd_loop_mods(const struct sd_loop *loop);
int sd_loop_del(struct sd_loop *loop, int fd);

/* From any thread: run fn(arg) on the loop thread. 0 or -ENOMEM. */
int sd_loop_call(struct sd_loop *loop, sd_call_fn fn, void *arg);

/* Dispatch until sd_loop_stop(); returns 0 or -errno from epoll_wait. */
int sd_loop_run(struct sd_loop *loop);
/* From any thread. */
void sd_loop_stop(struct sd_loop *loop);

#endif
