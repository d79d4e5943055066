/* nbd.h - the NBD export: every VDI served over the NBD protocol (fixed newstyle) on TCP 10809. */
#ifndef SHEEP_NBD_H
#define SHEEP_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sheep;
struct nbd_server;
struct nbd_export;

/*
 * What the export offers (NBD protocol, doc/proto.md of NetworkBlockDevice/nbd):
 *
 *  - Handshake: fixed newstyle only (NBD_FLAG_FIXED_NEWSTYLE, NO_ZEROES).
 *    Options NBD_OPT_GO, INFO, LIST, EXPORT_NAME, ABORT, STRUCTURED_REPLY,
 *    LIST_META_CONTEXT and SET_META_CONTEXT (one context:
 *    "base:allocation"); every other option (STARTTLS, EXTENDED_HEADERS,
 *    ...) is answered NBD_REP_ERR_UNSUP and negotiation goes on.
 *  - Replies: simple ones unless the client negotiated structured replies.
 *    With them, a READ is answered with one OFFSET_DATA chunk, a
 *    BLOCK_STATUS with one BLOCK_STATUS chunk, every error with an ERROR
 *    chunk; other successful commands get a simple reply (allowed).
 *  - NBD_CMD_BLOCK_STATUS (needs base:allocation selected for the export
 *    attached): unallocated objects are HOLE|ZERO, allocated ones 0, so
 *    qemu-img map / convert, nbdcopy and backups skip what was never
 *    written. NBD_CMD_FLAG_REQ_ONE gives one extent.
 *  - Export name = VDI name: "NAME" attaches the working VDI for writing and
 *    takes its cluster-wide write lock for the life of the connection (a
 *    second writer gets NBD_REP_ERR_POLICY "... is locked ..."; with
 *    NBD_OPT_EXPORT_NAME, which cannot carry an error, the connection is
 *    closed and the sheep log says why). "NAME:ro" attaches the working
 *    VDI read-only, without the lock. "NAME:handover" (a live migration's
 *    destination) attaches for writing even while another writer holds
 *    the lock, and takes it over at its first write (the old writer is
 *    fenced). "NAME@TAG" and "NAME@SNAPID" (all digits) attach a snapshot,
 *    read-only. Size = VDI size.
 *  - Commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (with NO_HOLE),
 *    BLOCK_STATUS, DISC; NBD_CMD_FLAG_FUA accepted on all.
 *  - Transmission flags: HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM,
 *    SEND_WRITE_ZEROES; READ_ONLY and CAN_MULTI_CONN for read-only exports.
 *    CAN_MULTI_CONN is not offered on a writable export: a second connection
 *    could not write (the VDI is locked by the first).
 *  - FLUSH and FUA: every write is acknowledged only after the gateway has
 *    made it durable on the object's holders (the store fdatasyncs before it
 *    answers), and this server keeps no cache. So a write is on stable
 *    storage when its reply is sent, FUA or not, and FLUSH has nothing left
 *    to do: it is answered at once, truthfully.
 *  - Several requests in flight per connection are served in parallel by
 *    one worker pool all connections share (up to NBD_POOL_WORKERS
 *    threads, however many clients); replies go back in completion order,
 *    one at a time on the socket.
 *  - Request limits: a request longer than NBD_MAX_REQUEST (advertised as
 *    the maximum block size) gets EINVAL; a WRITE that long closes the
 *    connection (its payload cannot be trusted to be skipped safely). A
 *    range past the end of the VDI gets EINVAL (ENOSPC for writes); a bad
 *    magic closes the connection; an unknown command gets EINVAL.
 *  - Bad input never changes data: a write is applied only after its whole
 *    payload has arrived, so a client that vanishes mid-request leaves the
 *    volume as it was; its lock is released when the connection ends.
 */

#define NBD_DEFAULT_PORT 10809
#define NBD_MAX_REQUEST (32u << 20) /* bytes, per READ/WRITE request */
#define NBD_POOL_WORKERS 32         /* worker threads of a server, all connections */
#define NBD_MAX_CONNECTIONS 256

/* Start serving every VDI of sheep s on bind_addr (NULL or "" = any):port.
 * Runs its own threads; returns 0 or -errno (e.g. -EADDRINUSE). */
int nbd_start(struct sheep *s, const char *bind_addr, int port);
/* Stop: close the listener and every connection (in-flight requests finish
 * first), release their locks. Safe to call when nbd_start failed or was
 * never called. */
void nbd_stop(struct sheep *s);

/*
 * The protocol engine, independent of where the bytes live: nbd_start() runs
 * it over VDIs (sheep/nbd/nbd_vdi.c); unit tests run it over memory.
 *
 * I/O callbacks return 0 or -errno; the errno goes to the client as the NBD
 * error (EPERM, EIO, ENOMEM, EINVAL, ENOSPC are the values NBD knows; others
 * are sent as EIO). They are called from worker threads, concurrently.
 */
struct nbd_export_info {
	uint64_t size;
	bool readonly;
};

/* One run of NBD_CMD_BLOCK_STATUS base:allocation: length bytes with the
 * same NBD_STATE_* flags (HOLE: nothing is stored; ZERO: reads as zeros). */
struct nbd_extent {
	uint64_t length;
	uint32_t flags;
};

struct nbd_backend {
	/*
	 * Open the export called name for a connection (owner is unique per
	 * connection). probe: only report what it is (NBD_OPT_INFO), take no
	 * lock. Returns 0, or -ENOENT (unknown export), -EBUSY (locked),
	 * -EINVAL (bad name) or another -errno, with a message for the client
	 * in msg.
	 */
	int (*open)(void *arg, const char *name, bool probe, uint64_t owner,
		    struct nbd_export **out, struct nbd_export_info *info, char *msg,
		    size_t msglen);
	void (*close)(struct nbd_export *e);
	int (*read)(struct nbd_export *e, void *buf, uint32_t len, uint64_t off);
	int (*write)(struct nbd_export *e, const void *buf, uint32_t len, uint64_t off);
	/* Make the range read as zeros; may_free: holes are allowed. */
	int (*zero)(struct nbd_export *e, uint32_t len, uint64_t off, bool may_free);
	int (*trim)(struct nbd_export *e, uint32_t len, uint64_t off);
	/*
	 * Describe [off, off + len) for base:allocation: up to max extents in
	 * order, from off, covering the range or a prefix of it; *n = how
	 * many (at least one on success). NULL: the meta context is not
	 * offered.
	 */
	int (*block_status)(struct nbd_export *e, uint32_t len, uint64_t off,
			    struct nbd_extent *ext, uint32_t max, uint32_t *n);
	/* Call cb for each export name (NBD_OPT_LIST); 0 or -errno. */
	int (*list)(void *arg, int (*cb)(void *cbarg, const char *name), void *cbarg);
};

int nbd_server_start(const struct nbd_backend *ops, void *arg, const char *bind_addr, int port,
		     struct nbd_server **out);
/* The port actually bound (useful with port 0). */
int nbd_server_port(const struct nbd_server *srv);
void nbd_server_stop(struct nbd_server *srv);

#endif
