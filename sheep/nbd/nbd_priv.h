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
};

struct nbd_job {
	struct nbd_job *next;
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

	pthread_mutex_t qlock; /* the job queue and worker accounting */
	pthread_cond_t qcond;  /* workers wait for jobs */
	pthread_cond_t qroom;  /* the reader waits for room */
	struct nbd_job *head, *tail;
	int inflight; /* queued + running */
	int queued;   /* not yet taken by a worker */
	size_t inflight_bytes;
	int nr_workers, idle_workers;
	bool closing;
	pthread_t workers[NBD_MAX_WORKERS];

	pthread_mutex_t wlock; /* one reply at a time on the socket */
	bool dead;             /* a reply could not be sent */
};

/* Serve the transmission phase on c until DISC, EOF, a protocol violation
 * or server stop; then drain in-flight requests. Does not close c->exp. */
void nbd_transmission(struct nbd_conn *c);

#endif
