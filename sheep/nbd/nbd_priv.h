/* nbd_priv.h - NBD export internals shared by the handshake (nbd.c) and transmission (nbd_io.c) halves. */
#ifndef SHEEP_NBD_PRIV_H
#define SHEEP_NBD_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sheep/nbd/nbd.h"

/* A client that has not finished negotiating within this time is dropped. */
#define NBD_HANDSHAKE_TIMEOUT_MS 30000
#define NBD_MAX_OPTIONS 128
#define NBD_MAX_OPT_LEN 65536
/* Backpressure: the reader stops taking requests beyond these. */
#define NBD_MAX_INFLIGHT 64
#define NBD_MAX_INFLIGHT_BYTES (128u << 20)
/* The id this server gives the base:allocation meta context. */
#define NBD_META_ID_ALLOC 1
/* At most this many extents in one NBD_CMD_BLOCK_STATUS reply (the rest of
 * the range is described by the next request). */
#define NBD_MAX_EXTENTS 65536

struct nbd_job;
struct nbd_reply;

/*
 * The worker pool every connection of one server shares (nbd_io.c): one
 * FIFO of requests, at most NBD_POOL_WORKERS threads started on demand.
 * A connection's readers stop at NBD_MAX_INFLIGHT requests of its own, so
 * no client fills the queue alone.
 */
struct nbd_pool {
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* workers wait for jobs */
	struct nbd_job *head, *tail;
	int queued;           /* not yet taken by a worker */
	int nr_workers, idle; /* started; waiting for a job */
	bool stop;
	pthread_t workers[NBD_POOL_WORKERS];
};

struct nbd_server {
	const struct nbd_backend *ops;
	void *arg;
	int lfd;
	int port;
	int wake[2];
	pthread_t listener;
	bool listening;

	pthread_mutex_t lock; /* conns, nr_conns, next_owner */
	pthread_cond_t cond;
	struct nbd_conn *conns;
	int nr_conns;
	atomic_bool stopping; /* read by connection threads without the lock */
	uint64_t next_owner;
	struct nbd_pool pool;
};

struct nbd_job {
	struct nbd_job *next;
	struct nbd_conn *conn; /* whose request it is */
	uint16_t type;
	uint16_t flags;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
	uint32_t bytes; /* buffered: the READ reply or the WRITE payload */
	char *data;     /* WRITE payload */
};

struct nbd_conn {
	struct nbd_server *srv;
	struct nbd_conn *next;
	int fd;
	uint64_t owner;
	char peer[64];

	struct nbd_export *exp;
	struct nbd_export_info info;
	uint16_t tflags;

	/* Negotiated in the handshake (NBD_OPT_STRUCTURED_REPLY and
	 * NBD_OPT_SET_META_CONTEXT); a client that asked for neither gets
	 * simple replies only and no NBD_CMD_BLOCK_STATUS. */
	bool structured;
	bool meta_alloc;	  /* base:allocation selected */
	char *meta_export;	  /* ... for this export name (malloc'd) */

	pthread_mutex_t qlock; /* in-flight accounting */
	pthread_cond_t qroom;  /* the reader waits for room, or for the last reply */
	int inflight;          /* in the pool's queue or running */
	size_t inflight_bytes;

	/* Replies (nbd_io.c): a worker queues its reply; the one that finds
	 * nobody sending becomes the sender and writes every queued reply,
	 * many per writev, until the queue is empty. */
	pthread_mutex_t wlock;     /* the queue, sending, dead */
	struct nbd_reply *rhead, *rtail;
	bool sending;              /* a thread is writing replies */
	bool dead;                 /* a reply could not be sent */
};

/* Start and stop a server's pool (no thread runs until the first job). */
void nbd_pool_init(struct nbd_pool *p);
void nbd_pool_stop(struct nbd_pool *p);

/* Free the replies still queued on c (none once its requests are
 * drained; called when c is freed). */
void nbd_replies_drop(struct nbd_conn *c);

/* Serve the transmission phase on c until DISC, EOF, a protocol violation
 * or server stop; then drain in-flight requests. Does not close c->exp. */
void nbd_transmission(struct nbd_conn *c);

#endif
