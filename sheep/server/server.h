/* server.h - the daemon's front: client and peer connections (conn.c) and the operation table
 * (ops.c). */
#ifndef SHEEP_SERVER_SERVER_H
#define SHEEP_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_proto.h"

struct sheep;
struct request;

/* ---- conn.c: client connections ---- */
/* Before anything else: the count of threads serving in place. */
void conn_init(struct sheep *s);
int conn_listen(struct sheep *s);
/* The loop has stopped: refuse new connections and shut the open ones
 * down, so peers waiting on this sheep fail at once instead of timing out
 * (a stopping sheep serves nothing more). Loop thread only. */
void conn_shutdown_all(struct sheep *s);
/* After group_stop: wait until no thread serves a connection in place. */
void conn_join_all(struct sheep *s);

/* ---- mem.c: the malloc policy ---- */
#define SERVER_MEM_ARENAS  2 /* glibc arenas (mem.c says why not more) */
#define SERVER_MEM_TRIM_MS 2000
/* Before any thread starts: at most SERVER_MEM_ARENAS arenas. 0, or -1
 * when malloc refused (a sanitizer's allocator). */
int server_mem_bound(void);
/* Give the free pages back (every SERVER_MEM_TRIM_MS from the loop). */
void server_mem_trim(void);

/* ---- ops.c: the operation table and what each opcode does ---- */

/* Who sends an op, which also picks the pool that runs it (conn.c). */
enum ops_kind {
	OPS_CLIENT,  /* object I/O from QEMU/dog through the gateway: gw pool */
	OPS_CLUSTER, /* decided by a cluster message in the driver's order: gw pool */
	OPS_LOCAL,   /* answered from this node's state: gw pool */
	OPS_PEER,    /* fragment I/O from another sheep, never waits on a sheep: peer pool */
	OPS_FORWARD, /* a gateway write forwarded to its coordinator: fwd pool */
};

/* One row of the operation table (ops.c), indexed by opcode. */
struct sd_op {
	const char *name; /* "SD_OP_READ_OBJ", for logs */
	enum ops_kind kind;
	bool ready; /* refused unless quorate, synced and formatted */
	/* Runs on a worker; returns the SD_RES_* of the reply and may set
	 * r->rsp fields, r->rdata/r->rlen, r->close_after. */
	int (*fn)(struct sheep *s, struct request *r);
};

/* The row of an opcode, or NULL if this sheep does not serve it. */
const struct sd_op *ops_lookup(uint8_t opcode);
/* Run one request on a worker (see ops.c for the guarantees). */
void ops_exec(struct sheep *s, struct request *r);
/* Opcode validity before reading the payload: 0, or the SD_RES_* to reply. */
int ops_check_header(const struct sd_req *hdr);

#endif
