/* event.c - epoll event loop behind event.h; an eventfd carries cross-thread calls. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/event.h"

struct sd_handler {
	int fd;
	sd_event_fn fn;
	void *arg;
	uint32_t events;	 /* as last given to epoll: a change to the same is no syscall */
	struct sd_handler *next; /* hash chain */
};

struct sd_call {
	sd_call_fn fn;
	void *arg;
	struct sd_call *next;
};

#define HANDLER_BUCKETS 256

struct sd_loop {
	int epfd;
	int evfd;
	atomic_bool stop; /* sd_loop_stop may run on any thread */
	struct sd_handler *buckets[HANDLER_BUCKETS];
	pthread_mutex_t call_lock;
	struct sd_call *call_head, *call_tail;
	uint64_t mods; /* EPOLL_CTL_MOD syscalls made (sd_loop_mods) */
};

static struct sd_handler **handler_slot(struct sd_loop *loop, int fd)
{
	struct sd_handler **pp = &loop->buckets[(unsigned)fd % HANDLER_BUCKETS];
	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	return pp;
}

int sd_loop_create(struct sd_loop **out)
{
	struct sd_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->epfd < 0 || loop->evfd < 0) {
		int e = -errno;
		if (loop->epfd >= 0)
			close(loop->epfd);
		if (loop->evfd >= 0)
			close(loop->evfd);
		free(loop);
		return e;
	}
	pthread_mutex_init(&loop->call_lock, NULL);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->evfd};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) < 0) {
		int e = -errno;
		sd_loop_destroy(loop);
		return e;
	}
	*out = loop;
	return 0;
}

void sd_loop_destroy(struct sd_loop *loop)
{
	if (!loop)
		return;
	for (int i = 0; i < HANDLER_BUCKETS; i++) {
		struct sd_handler *h = loop->buckets[i];
		while (h) {
			struct sd_handler *n = h->next;
			free(h);
			h = n;
		}
	}
	struct sd_call *c = loop->call_head;
	while (c) {
		struct sd_call *n = c->next;
		free(c);
		c = n;
	}
	close(loop->epfd);
	close(loop->evfd);
	pthread_mutex_destroy(&loop->call_lock);
	free(loop);
}

int sd_loop_add(struct sd_loop *loop, int fd, uint32_t events, sd_event_fn fn, void *arg)
{
	struct sd_handler **pp = handler_slot(loop, fd);
	if (*pp)
		return -EEXIST;
	struct sd_handler *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->fn = fn;
	h->arg = arg;
	h->events = events;
	struct epoll_event ev = {.events = events, .data.fd = fd};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;
		free(h);
		return e;
	}
	*pp = h;
	return 0;
}

/* A connection asks for its events after every request and reply, nearly
 * always the same ones: only a change costs an epoll_ctl. */
int sd_loop_mod(struct sd_loop *loop, int fd, uint32_t events)
{
	struct sd_handler *h = *handler_slot(loop, fd);
	if (!h)
		return -ENOENT;
	if (h->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.fd = fd};
	loop->mods++;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	h->events = events;
	return 0;
}

uint64_t sd_loop_mods(const struct sd_loop *loop)
{
	return loop->mods;
}

int sd_loop_del(struct sd_loop *loop, int fd)
{
	struct sd_handler **pp = handler_slot(loop, fd);
	if (!*pp)
		return -ENOENT;
	struct sd_handler *h = *pp;
	*pp = h->next;
	free(h);
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	return 0;
}

int sd_loop_call(struct sd_loop *loop, sd_call_fn fn, void *arg)
{
	struct sd_call *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->next = NULL;
	pthread_mutex_lock(&loop->call_lock);
	/* The loop reads the eventfd before it takes the list, so a call
	 * queued behind others it has not taken yet needs no second wake. */
	bool wake = !loop->call_head;
	if (loop->call_tail)
		loop->call_tail->next = c;
	else
		loop->call_head = c;
	loop->call_tail = c;
	pthread_mutex_unlock(&loop->call_lock);
	uint64_t one = 1;
	while (wake && write(loop->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	return 0;
}

static void run_calls(struct sd_loop *loop)
{
	uint64_t v;
	while (read(loop->evfd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&loop->call_lock);
	struct sd_call *c = loop->call_head;
	loop->call_head = loop->call_tail = NULL;
	pthread_mutex_unlock(&loop->call_lock);
	while (c) {
		struct sd_call *n = c->next;
		c->fn(c->arg);
		free(c);
		c = n;
	}
}

void sd_loop_stop(struct sd_loop *loop)
{
	atomic_store(&loop->stop, true);
	uint64_t one = 1;
	while (write(loop->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int sd_loop_run(struct sd_loop *loop)
{
	struct epoll_event evs[64];
	while (!atomic_load(&loop->stop)) {
		/* No timeout: sd_loop_stop() writes evfd, and an idle sheep must not
		 * wake for nothing (it did once a second). */
		int n = epoll_wait(loop->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !atomic_load(&loop->stop); i++) {
			int fd = evs[i].data.fd;
			if (fd == loop->evfd) {
				run_calls(loop);
				continue;
			}
			/* Look the handler up per event: an earlier handler in
			 * this batch may have removed it. */
			struct sd_handler *h = *handler_slot(loop, fd);
			if (h)
				h->fn(fd, evs[i].events, h->arg);
		}
	}
	return 0;
}
