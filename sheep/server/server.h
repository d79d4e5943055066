/* server.h - the daemon's front: client and peer connections (conn.c) and the operation table (ops.c). */
#ifndef SHEEP_SERVER_SERVER_H
#define SHEEP_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_proto.h"

struct sheep;
struct request;

/* ---- conn.c: client connections ---- */
int conn_listen(struct sheep *s);
/* The loop has stopped: refuse new connections and shut the open ones
 * down, so peers waiting on this sheep fail at once instead of timing out
 * (a stopping sheep serves nothing more). Loop thread only. */
void conn_shutdown_all(struct sheep *s);

/* ---- ops.c: what each opcode does (runs on a worker) ---- */
void ops_exec(struct sheep *s, struct request *r);
/* Opcode validity before reading the payload: 0, or the SD_RES_* to reply. */
int ops_check_header(const struct sd_req *hdr);
bool ops_is_peer(uint8_t opcode);

#endif
