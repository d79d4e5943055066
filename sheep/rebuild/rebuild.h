/* rebuild.h - the daemon side of recovery: one thread per sheep that replans on epoch
 * changes and runs the jobs, and its hooks into sheep. */
#ifndef SHEEP_RECOVERY_SHEEP_H
#define SHEEP_RECOVERY_SHEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_internal.h"

struct sheep;
struct request;

/*
 * On every epoch change (and after `dog cluster recover force`) the
 * recovery thread of each data node
 *   1. gathers what every data member holds (PEER_LIST, its own store
 *      directly),
 *   2. plans with recovery/ against the new placement ring,
 *   3. runs the jobs on a few worker threads under the throttle
 *      (sheep -R max=N,interval=MS; dog node recovery set-throttle),
 *   4. rescans until a round moves nothing (writes that raced the first
 *      round are caught by the next one),
 *   5. then polls the members' STAT_RECOVERY; once every member reports done
 *      for this epoch with nothing failed, drops the old fragments that the
 *      plan says belong elsewhere now (never the last good copy).
 * Nothing here runs on the event-loop thread.
 */

/* Default throttle. */
#define SHEEP_RECOVERY_MAX	4
#define SHEEP_RECOVERY_INTERVAL 0

/* Parse sheep -R "max=N,interval=MS" into t (defaults where absent).
 * 0 or -EINVAL. */
int sheep_recovery_parse(const char *arg, struct sd_recovery_throttle *t);

/* Start after group_start(); nothing for a gateway-only node. 0 or -errno. */
int sheep_recovery_start(struct sheep *s, const struct sd_recovery_throttle *t);
void sheep_recovery_stop(struct sheep *s);

/* Opcodes served here: STAT_RECOVERY, GET_RECOVERY, SET_RECOVERY,
 * FORCE_RECOVER. */
bool sheep_recovery_handles(uint8_t opcode);
/* Serve one of them (worker thread): sets r->rdata / r->rlen, returns the
 * SD_RES_* result. */
int sheep_recovery_op(struct sheep *s, struct request *r);

/*
 * Peer hook: a gateway request touches fragment (oid, idx) on this node.
 * true when that fragment is still to be recovered here: it moves to the
 * head of the queue, and the caller answers SD_RES_AGAIN so the gateway
 * retries in a moment instead of writing around a fragment recovery is
 * about to install.
 */
bool sheep_recovery_busy(struct sheep *s, uint64_t oid, uint8_t idx);

/* Replan this node's recovery at the current epoch (its disks changed:
 * md plug/unplug, a failed disk). Nothing on a gateway. */
void sheep_recovery_kick(struct sheep *s);

/* A read found a checksum mismatch on local fragment (oid, idx): rebuild it
 * from the other holders soon (asynchronous). */
void sheep_recovery_report_bad(struct sheep *s, uint64_t oid, uint8_t idx, bool stale);

#endif
