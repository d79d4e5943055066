/* peer.h - the sheep-to-sheep protocol: fragment read/write/remove/stat/list on a holder's store. */
#ifndef SHEEP_PEER_H
#define SHEEP_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/sd_internal.h"
#include "lib/sd_proto.h"

/*
 * Peer requests use the 48-byte header with proto_ver SD_SHEEP_PROTO_VER
 * and these opcodes (>= SD_OP_PEER_FIRST). Object fields: obj.oid,
 * obj.ec_index = fragment index, obj.offset = offset in the fragment.
 * hdr.epoch must equal the holder's epoch, else the holder answers
 * SD_RES_OLD_NODE_VER (request older) or SD_RES_NEW_NODE_VER (holder
 * behind) and does nothing; SD_PEER_FLAG_ANY_EPOCH skips the check (for
 * recovery reading old holders). Replies carry the fragment's version in
 * rsp.obj.offset (u64 @24).
 *
 *  PEER_READ   data_length = len to read (0 = version probe only).
 *              NO_OBJ if absent, EIO on checksum mismatch.
 *  PEER_WRITE  payload = struct peer_write_hdr + data.
 *  PEER_REMOVE removes the fragment (NO_OBJ if absent).
 *  PEER_STAT   reply payload = struct peer_frag.
 *  PEER_LIST   reply payload = struct peer_frag[] of every fragment held,
 *              at most data_length bytes (NO_SPACE if they do not fit).
 *              A non-zero obj.cow_oid is a filter: only fragments with
 *              (oid & obj.cow_oid) == (obj.oid & obj.cow_oid) are listed.
 */
#define SD_OP_PEER_READ 0xe0
#define SD_OP_PEER_WRITE 0xe1
#define SD_OP_PEER_REMOVE 0xe2
#define SD_OP_PEER_STAT 0xe3
#define SD_OP_PEER_LIST 0xe4
/* A gateway write forwarded to the object's write coordinator (the first
 * holder in the current placement), which serialises writes to one object
 * across gateways. obj.oid, obj.offset, payload = data, flag
 * SD_PEER_FLAG_CREATE for CREATE_AND_WRITE. Answers the gateway's SD_RES_*
 * code. */
#define SD_OP_PEER_GW_WRITE 0xe5

/*
 * Two-phase writes (EC objects). A PEER_WRITE with SD_PEER_FLAG_PREPARE
 * and a non-zero whdr.write_id is checked and stored aside as the
 * fragment's pending write (store_prepare): nothing changes yet. Then
 *  PEER_COMMIT payload = struct peer_commit: apply the pending write
 *              (new_version, write_id) (abort = 1: drop it). Any epoch:
 *              finishing a prepared write is always safe. SUCCESS when
 *              applied or already applied, NO_OBJ when no such write is
 *              pending, AGAIN when the fragment moved on.
 *  PEER_GEN    generation probe: reply payload = struct peer_gen (the
 *              fragment's version and write id, the pending write's).
 * A prepare finding another write pending that is younger than
 * SD_PEER_PEND_GRACE_MS answers AGAIN: that write's coordinator is about
 * to commit it; an older one was abandoned and is replaced.
 *
 * Early-ack writes (whdr.flags PEER_WH_EARLY, EC range updates): the
 * coordinator acknowledges once the prepares are durable and commits
 * later, asynchronously (gateway/commitq.c). Such a pending write is
 * never replaced (only committed or aborted), every PEER_READ reply of a
 * fragment holding one says so (rsp.obj.reserved[0] & PEER_RSP_EARLY),
 * and a prepare with whdr.prev_write_id commits that earlier write of the
 * fragment first when it is still pending (at version expect_version):
 * the coordinator's next write to an object carries its previous write's
 * commit.
 */
#define PEER_WH_EARLY 0x01
#define PEER_RSP_EARLY 0x01
/*
 * Parity delta (whdr.flags PEER_WH_DELTA, prepares of EC range updates
 * sent to a parity holder): the payload is not the new parity but old ^
 * new of data fragment req.obj.reserved at the same in-fragment range.
 * The holder reads its parity there at expect_version, folds the delta in
 * (ec_update) and prepares the result as if it had been sent: what is
 * logged and later committed is the new parity itself. The coordinator
 * then reads only the old data, not the parity, before its prepares.
 */
#define PEER_WH_DELTA 0x02
/*
 * Untouched fragments (whdr.flags PEER_WH_LAZY, early-ack range updates):
 * the version-only prepare of a fragment whose bytes the write does not
 * change need not be durable (STORE_PREP_LAZY). whdr.touched (every
 * prepare of a range update) is the set of fragments the write changes,
 * bit i for fragment i: kept with the prepared and the applied write and
 * reported by PEER_GEN, so a gateway can count a fragment outside it that
 * is still at the base version as holding the write (gw_settle).
 */
#define PEER_WH_LAZY 0x04
/*
 * Last-changed versions (whdr.flags PEER_WH_LC, prepares of EC range
 * updates and whatever a write makes of a fragment): whdr.lc_delta[k] =
 * new_version - the version at which data fragment k last changed, as of
 * the generation this write makes (store.h, struct store_lc), kept in the
 * fragment's header. Replies report a fragment's record: PEER_READ in the
 * reply header (PEER_RSP_LC: bytes 32..47, rsp.obj.peer_token and the
 * word after it, hold the deltas from the version in rsp.obj.offset; never
 * with PEER_RSP_NOT_SOLE, whose token is there), PEER_GEN and PEER_LIST /
 * PEER_STAT in their structs.
 */
#define PEER_WH_LC 0x08
#define PEER_RSP_LC 0x04
#define PEER_LC_MAX 16
/*
 * Old bytes first (whdr.flags PEER_WH_OLD, the early prepare of a range
 * update of one data fragment, with its new bytes): before it prepares,
 * the holder commits the coordinator's previous write as any prepare does,
 * then reads the range as it is at expect_version and sends them in a
 * first reply (PEER_RSP_INTERIM, result SUCCESS, the version and the
 * fragment's record as a PEER_READ reply has them); the final reply
 * follows once the prepare is durable (or failed). The coordinator folds
 * old ^ new into the parity prepares meanwhile: the read of the old bytes
 * and the data prepare are one message. A holder that cannot read the
 * range at expect_version, or has a prepared write pending on the
 * fragment, or serves the request where it cannot answer twice (a pool
 * worker, a call of a node to itself), sends only a final reply, without
 * preparing: NO_SUPPORT (the coordinator takes the long way) or the error.
 */
#define PEER_WH_OLD 0x10
#define PEER_RSP_INTERIM 0x08
#define SD_OP_PEER_COMMIT 0xe6
/* Commits of several prepared writes on one holder, any epoch: payload =
 * struct peer_commit_ent[] (at most SD_PEER_COMMIT_BATCH_MAX). Each is
 * applied as a PEER_COMMIT would be; the reply says SUCCESS once all were
 * tried (a reader or the next write finishes any that failed). */
#define SD_OP_PEER_COMMIT_BATCH 0xea
#define SD_PEER_COMMIT_BATCH_MAX 1024
/*
 * Commits riding on a write (whdr.nr_commits, any PEER_WRITE): that many
 * struct peer_commit_ent go between the header and the data. The holder
 * applies them as a PEER_COMMIT_BATCH would, first, whatever becomes of
 * the write itself (refused for its epoch, busy, failed): the
 * coordinator's queued commits for this holder travel with its next
 * message there instead of a batch of their own (gateway/commitq.c).
 */
#define SD_PEER_RIDE_MAX 64
#define SD_OP_PEER_GEN 0xe7
/*
 * Copy-on-write on the holder itself: fragment obj.ec_index of object
 * obj.cow_oid is copied in this store to object obj.oid, at version 1
 * (replacing a leftover copy). Payload: u64, the version the source
 * fragment must have (else EIO: the caller copies the slow way). No
 * object data crosses the network.
 */
#define SD_OP_PEER_COPY 0xe9
#define SD_PEER_PEND_GRACE_MS 2000

#define SD_PEER_FLAG_ANY_EPOCH 0x8000
#define SD_PEER_FLAG_PREPARE 0x4000
#define SD_PEER_FLAG_CREATE 0x2000 /* PEER_GW_WRITE: create the object */
/* On PEER_GEN: a write just left this fragment behind (older version at
 * its current holder): the holder's recovery rebuilds it now, without
 * waiting for a membership change. */
#define SD_PEER_FLAG_STALE 0x1000
/* On PEER_READ: first commit the early-ack write obj.cow_oid (a write id)
 * if it is pending on this fragment. The coordinator's next write to an
 * object reads old data and parity from holders where its previous
 * write may not be committed yet. */
#define SD_PEER_FLAG_COMMIT_PREV 0x0800
/* On PEER_GW_WRITE (no payload): move data object obj.oid of a VDI under
 * vdi alter-copy to its new layout, as its coordinator (gateway/convert.c). */
#define SD_PEER_FLAG_CONVERT 0x0400
/*
 * Sole reads of replicated copies and of EC data fragments (sole.c,
 * docs/architecture.md "Reading one copy"). On PEER_READ,
 * SD_PEER_FLAG_SOLE: answer only if this holder knows its copy current at
 * the request's epoch (marked by a write of this epoch, or confirmed by a
 * probing read of this epoch, less than PEER_SOLE_LEASE_MS before, and not
 * unmarked since) and no prepared write is pending on it; otherwise SUCCESS
 * with no data, PEER_RSP_NOT_SOLE, the copy's version and a token
 * (rsp.obj.peer_token, 0: none). The gateway then probes every holder; if
 * this copy was the newest, PEER_GEN with SD_PEER_FLAG_MARK and the token
 * in obj.cow_oid marks it, dated at the token (refused if any unmark came
 * after it). On PEER_GEN (with ANY_EPOCH), SD_PEER_FLAG_UNMARK: a write is
 * about to be acknowledged without this copy; forget that it is current.
 * A coordinator that cannot reach a holder to unmark it waits
 * PEER_SOLE_LEASE_MS before acknowledging. A commit of this epoch
 * (PEER_COMMIT, PEER_COMMIT_BATCH) that applies an early-ack write this
 * process prepared marks the fragment too, dated when it was prepared:
 * every write acknowledged without the fragment after that date unmarked
 * it or waited out the lease. An accepted prepare drops the mark.
 */
#define SD_PEER_FLAG_SOLE 0x0200
#define SD_PEER_FLAG_UNMARK 0x0100
#define SD_PEER_FLAG_MARK 0x0080
/* On PEER_GEN: answer even for a fragment this node is recovering (not
 * AGAIN): the probe of a settle that recovery runs (gateway_settle_obj)
 * on the very fragment one of its jobs is rebuilding here. */
#define SD_PEER_FLAG_RECOVERING 0x0040
#define PEER_RSP_NOT_SOLE 0x02
#define PEER_SOLE_LEASE_MS 3000

enum peer_write_mode {
	PEER_WRITE_UPDATE = 0,  /* store_write with expect_version */
	PEER_WRITE_CREATE = 1,  /* store_create; VDI_EXIST when present */
	PEER_WRITE_REPLACE = 2, /* drop any old fragment, create afresh */
	PEER_WRITE_UPSERT = 3,  /* update when present (any version), else create */
};

struct peer_write_hdr {
	uint64_t expect_version; /* UINT64_MAX = any */
	uint64_t new_version;
	uint32_t frag_size;      /* for create */
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t mode;
	uint8_t flags;     /* PEER_WH_* */
	uint64_t write_id; /* two-phase writes: this write's id (random, non-zero) */
	uint64_t prev_write_id; /* prepares: commit this pending write first (0: none) */
	uint32_t touched;  /* range-update prepares: fragments changed (PEER_WH_LAZY) */
	/* The coordinator's group-commit hint (store_wal_hint): tag << 24 |
	 * the patience it offers (STORE_HINT_PATIENCE: it has other writes
	 * in flight) << 16 | its other writes that hold their object lock
	 * and have not sent their writes or prepares yet. 0: no hold. */
	uint32_t hint;
	uint8_t lc_delta[PEER_LC_MAX]; /* PEER_WH_LC */
	uint32_t nr_commits; /* struct peer_commit_ent after this header (riding commits) */
} __attribute__((packed));

struct peer_commit {
	uint64_t new_version;
	uint64_t write_id;
	uint8_t abort;
	uint8_t __pad[7];
} __attribute__((packed));

struct peer_commit_ent {
	uint64_t oid;
	uint64_t new_version;
	uint64_t write_id;
	uint8_t idx;
	uint8_t __pad[7];
} __attribute__((packed));

/* Bytes of a PEER_WRITE payload before its data: the header and the
 * commits riding on it; 0 when data_length cannot hold them. */
static inline uint32_t peer_write_skip(const struct peer_write_hdr *wh, uint32_t data_length)
{
	uint64_t skip = sizeof(*wh) + (uint64_t)wh->nr_commits * sizeof(struct peer_commit_ent);
	return wh->nr_commits > SD_PEER_RIDE_MAX || skip > data_length ? 0 : (uint32_t)skip;
}

struct peer_gen {
	uint64_t version; /* 0 with has_frag = 0: no fragment */
	uint64_t write_id;
	uint64_t pend_version; /* the pending write, when has_pend */
	uint64_t pend_id;
	uint64_t pend_age_ms;
	uint8_t has_frag;
	uint8_t has_pend;
	uint8_t pend_early; /* the pending write is an early-ack one */
	uint8_t __pad[5];
	/* The write that made this version: fragments it changed (0: unknown)
	 * and the version it was made over; the pending write's set. */
	uint64_t base;
	uint32_t touched;
	uint32_t pend_touched;
	uint64_t pend_base; /* the version the pending write applies over */
	/* PEER_WH_LC records (valid: 1) of the fragment and of the pending
	 * write, deltas from version and pend_version. */
	uint8_t lc_valid, pend_lc_valid;
	uint8_t __pad2[6];
	uint8_t lc_delta[PEER_LC_MAX];
	uint8_t pend_lc_delta[PEER_LC_MAX];
} __attribute__((packed));

struct peer_frag {
	uint64_t oid;
	uint8_t idx;
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t lc_valid; /* PEER_WH_LC record of this version: lc_delta */
	uint32_t frag_size;
	uint64_t version;
	uint64_t disk_bytes;
	uint8_t lc_delta[PEER_LC_MAX];
} __attribute__((packed));

struct sheep;

/* Serve one peer request against the local store (any thread). rbuf has
 * room for req->data_length bytes of read data; *rlen gets what was put
 * there. */
void peer_serve(struct sheep *s, const struct sd_req *req, const void *data, struct sd_rsp *rsp,
		void *rbuf, uint32_t *rlen);
/* The same, for a server that can send a first reply before the final one
 * (PEER_WH_OLD): send(ctx, rsp, data, len) sends it; false when it could
 * not (the request then fails: NETWORK_ERROR). */
struct peer_interim {
	bool (*send)(void *ctx, const struct sd_rsp *rsp, const void *data, uint32_t len);
	void *ctx;
};
void peer_serve_ex(struct sheep *s, const struct sd_req *req, const void *data,
		   struct sd_rsp *rsp, void *rbuf, uint32_t *rlen, const struct peer_interim *im);

/*
 * One call of a fan-out. The caller fills node, req (opcode, flags,
 * epoch, obj.*; data_length is set from wlen/rcap), wbuf/wlen (payload
 * for writes: pass the peer_write_hdr in whdr and data in wbuf), rbuf/rcap.
 * After peer_fanout: result is the SD_RES_* (SD_RES_NETWORK_ERROR when
 * the node could not be reached), version the fragment's version, rlen the
 * bytes read.
 */
struct peer_call {
	const struct sd_node *node;
	struct sd_req req;
	struct peer_write_hdr whdr;
	bool has_whdr;
	const void *wbuf;
	uint32_t wlen;
	void *rbuf;
	uint32_t rcap;
	struct peer_commit commit; /* PEER_COMMIT: sent as the payload */
	/* Commits riding on this write: whdr.nr_commits entries, sent
	 * between the header and the data (the caller owns them). */
	const struct peer_commit_ent *ride;
	/* out */
	struct peer_gen gen; /* PEER_GEN: the reply (rbuf/rcap point here) */
	int result;
	uint64_t version;
	uint32_t rlen;
	uint8_t rsp_flags; /* PEER_RSP_* */
	uint64_t token;    /* rsp.obj.peer_token (sole reads) */
	uint8_t lc_delta[PEER_LC_MAX]; /* PEER_RSP_LC */
	int fd; /* private */
	/* Sent by peer_call_first, its final reply still to come: the next
	 * peer_fanout with it only collects that reply. */
	bool sent;
};

/* Send c (with PEER_WH_OLD) and read its first reply. 1: the interim one
 * (rbuf holds rlen old bytes; version, rsp_flags and lc_delta are set, and
 * c->sent: pass c to peer_fanout for the final reply); 0: c is done (the
 * final reply, or a call to this node: NO_SUPPORT), result says how. */
int peer_call_first(struct sheep *s, struct peer_call *c);

/* Send every call, then collect every reply: the calls to different nodes
 * run in parallel. Calls to this node are served from the store directly. */
void peer_fanout(struct sheep *s, struct peer_call *calls, int n);

int peer_pool_init(struct sheep *s);
void peer_pool_fini(struct sheep *s);

/* sole.c: the copies this holder may serve alone. mark: copy (oid, idx)
 * at version was current at epoch no later than since_ns (refused if an
 * unmark came after since_ns). unmark: forget it (a write left it behind).
 * ok: may a sole read at epoch serve the copy, found at version? */
int peer_sole_init(struct sheep *s);
void peer_sole_fini(struct sheep *s);
void peer_sole_mark(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version, uint32_t epoch,
		    uint64_t since_ns);
void peer_sole_unmark(struct sheep *s, uint64_t oid, uint8_t idx);
/* The fragment is gone (removed): drop its mark, no floor raised. */
void peer_sole_forget(struct sheep *s, uint64_t oid, uint8_t idx);
/* A sole read found no mark: remember (version, epoch) as a candidate,
 * dated now; returns the token that confirm needs (0: none). */
uint64_t peer_sole_candidate(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version,
			     uint32_t epoch);
/* A probing read found the candidate of token newest: mark it (dated at
 * the token; refused if an unmark came after it or it was replaced). */
void peer_sole_confirm(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t token);
bool peer_sole_ok(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version, uint32_t epoch);

#endif
