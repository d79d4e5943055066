/* gateway_priv.h - what the files of sheep/gateway/ share: one object's layout and fragment state, and their helpers. */
#ifndef SHEEP_GATEWAY_GATEWAY_PRIV_H
#define SHEEP_GATEWAY_GATEWAY_PRIV_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/ring.h"

#define GW_MAX_WIDTH 32
#define GW_MAX_CALLS (GW_MAX_WIDTH * (SHEEP_VIEW_HIST + 1))
#define GW_RETRY_MS 30000
#define GW_HINT_SLOTS 256 /* per-node counts of the group-commit hint */
#define GW_DEAD_WAITS 3 /* retries after unreachable peers, each waiting <= 1 s for an epoch */

/*
 * How one object is laid out in one view: its policy, sizes and holders.
 * For EC, fragment i (0..d+p-1) is on holder[i]; for N copies, copy i is
 * on holder[i] and stored with idx i.
 */
struct gw_obj {
	struct sheep *s;
	struct sheep_view *v;
	uint64_t oid;
	struct ec_policy pol;
	bool ec;
	int d, p, width;
	uint32_t obj_size, frag_size;
	uint8_t meta_policy, meta_copies;
	const struct ec_codec *codec;
	const struct sd_node *holder[GW_MAX_WIDTH]; /* placement in the current epoch */
	const struct sd_node *loc[GW_MAX_WIDTH];    /* where the fragment is found */
	int neterr; /* peer calls of this attempt that found no live peer */
	bool acked_all; /* the last write reached every fragment */
	/* Set by a write built from a read of the object (gw_rewrite_whole):
	 * the version it read. gw_write_2pc then commits only if no other
	 * write was applied or is pending since (gw_check_base). */
	uint64_t base_version;
	bool frozen; /* its VDI is a snapshot: data and object map read-only */
	/* Early-ack two-phase write (twophase.c): set by gw_update_ec. */
	bool early;
	uint64_t prev_wid;  /* in: the coordinator's last early write of it (vcache) */
	uint64_t early_wid; /* out: the early write this attempt made (0: none) */
	bool saw_early;     /* a round met an early-ack write pending somewhere */
	/* A settle run by recovery (gateway_settle_obj): its generation
	 * probes ask even fragments being recovered (SD_PEER_FLAG_RECOVERING). */
	bool recovering;
	uint64_t pkey; /* placement key (group_placement_key) */
	/* Last-changed versions (lastchg.c): the generation gw_lc_align
	 * aligned the fragments' states to (0: none) and its record (valid:
	 * the data fragments' last-changed versions are gen - delta[k]). */
	uint64_t lc_gen;
	bool lc_valid;
	uint8_t lc_delta[PEER_LC_MAX];
	/* An EC range update (write.c, twophase.c): the data fragments it
	 * sends nothing, counted as holding it (their holders), and the
	 * record of the generation it makes (for the version cache). */
	const struct sd_node *silent[GW_MAX_WIDTH];
	uint64_t silent_ver[GW_MAX_WIDTH]; /* the version each is expected at */
	bool made_lc;
	uint8_t made_delta[PEER_LC_MAX];
	/* A range update of data fragment idx whose prepare there asks for
	 * the old bytes first (PEER_WH_OLD, write.c): gw_write_2pc sends it
	 * ahead, folds old ^ new into buf, which the parities' delta prepares
	 * carry, then sends those. */
	struct {
		bool on;
		int idx;
		uint8_t *buf;
	} old_first;
};

/*
 * The gateway's own state, owned by this folder (s->gw, made by
 * gateway_init): the per-object locks of this gateway, the coordinator's
 * version cache and the queue of commits of early-acknowledged writes.
 */
struct gw_state {
	pthread_mutex_t objlock_mu;
	struct obj_lock *objlocks;
	pthread_mutex_t vcache_mu;
	struct gw_vcache_ent *vcache; /* NULL: no cache (out of memory) */
	struct gw_behind_ent *behind;  /* vcache.c: objects seen with a fragment behind */
	struct gw_commitq *commitq;
	struct gw_converter *conv; /* convert.c */
	/* Writes coordinated here that have not sent their writes or
	 * prepares yet, counted per node they will send a durable record to
	 * (slot: a hash of the node's address; atomics): the hint the peer
	 * writes to that node carry (store_wal_hint). */
	int coming[GW_HINT_SLOTS];
	/* Writes coordinated here now, from before their object lock to
	 * their end, and the moving average of their time (atomics): with
	 * GW_PATIENT_WRITES or more in flight the hints offer the holders a
	 * part of that time to hold their syncs for (STORE_HINT_PATIENCE,
	 * gw_patience() in layout.c). */
	int writing;
	uint64_t write_ns;
};

/* What a probe or read learned about one fragment. */
struct frag_state {
	int res;          /* SD_RES_* (SUCCESS: the fragment is there) */
	/* The generation the fragment is consistent with: its own version,
	 * or for a data fragment that no write since changed, the newer
	 * generation whose record says so (gw_lc_align). real is its own. */
	uint64_t version;
	uint64_t real;
	/* Its record of last-changed versions (store_lc; deltas from real),
	 * and the pending write's (deltas from pend_version). */
	uint8_t lc_valid, pend_lc_valid;
	uint8_t lc_delta[PEER_LC_MAX], pend_lc_delta[PEER_LC_MAX];
	/* Generation probes (PEER_GEN) only: */
	uint64_t write_id; /* two-phase write that made this version (0: none) */
	bool has_pend;     /* a prepared write is pending on it */
	bool pend_early;   /* ... an early-ack one (never replaced, see peer.h) */
	uint64_t pend_version, pend_id, pend_age_ms;
	/* Range writes (peer.h, PEER_WH_LAZY): the fragments the applied
	 * (pending) write changed, 0 if unknown, and the version it was made
	 * over (applies over). */
	uint32_t touched, pend_touched;
	uint64_t base, pend_base;
};
/* An operation gw_run() runs under the current view (gateway.c). */
typedef int (*gw_op_fn)(struct gw_obj *o, void *arg);

/* An object lock held by a caller of gw_run_held (gateway.c), let go
 * while it waits between attempts; resolve: the stored id is the lock's
 * client id resolved again after relocking (gw_resolve). */
struct gw_held {
	uint64_t oid;
	bool write, resolve;
};

/* Functions shared between the files of this folder. */
int gw_run(struct sheep *s, uint64_t oid, gw_op_fn fn, void *arg);
int gw_run_held(struct sheep *s, uint64_t oid, gw_op_fn fn, void *arg, const struct gw_held *h);
 int gw_check_range(struct gw_obj *o, uint32_t len, uint32_t off);
 int gw_op_read(struct gw_obj *o, void *arg);
 int gw_op_write(struct gw_obj *o, void *arg);
 int gw_op_remove(struct gw_obj *o, void *arg);
 int gw_op_settle(struct gw_obj *o, void *arg);
 struct obj_lock *gw_objlock_find(struct sheep *s, uint64_t oid);
/* The group-commit hint (layout.c): a write counts for each node it will
 * send a durable record to (gw_durable_targets), from gw_coming_begin to
 * its first fan-out of peer writes or gw_coming_end, whichever comes
 * first. Per thread; a nested begin counts nothing. */
void gw_coming_begin(struct gw_obj *o, uint32_t off, uint32_t len, bool whole);
void gw_coming_end(void);
/* The hint's count for node n: writes coordinated here still to send it a
 * durable record. */
int gw_coming_for(struct sheep *s, const struct sd_node *n);
/* Which fragments a write of [off, off + len) sends a durable record:
 * for a range update of an EC object the data fragments of its range and
 * the parities (the others only take a lazy version bump), for anything
 * else every fragment. Sets out[0..width), returns how many. */
int gw_durable_targets(const struct gw_obj *o, uint32_t off, uint32_t len, bool whole,
		       bool *out);
 void gw_obj_lock(struct sheep *s, uint64_t oid, bool write);
 void gw_obj_unlock(struct sheep *s, uint64_t oid, bool write);
 int gw_obj_init(struct sheep *s, struct sheep_view *v, uint64_t oid, struct gw_obj *o);
 void gw_call_init(struct gw_obj *o, struct peer_call *c, int idx, uint8_t opcode);
 void gw_call_state(const struct peer_call *c, struct frag_state *st);
 void gw_fanout(struct gw_obj *o, struct peer_call *calls, int n);
/* The group-commit hints of the writes among calls[0..n) (whdr.hint);
 * ahead: they go before the write's other prepares, which still count as
 * coming to their nodes. */
void gw_set_hints(struct gw_obj *o, struct peer_call *calls, int n, bool ahead);
 bool gw_res_is_retry(int res);
 int gw_probe(struct gw_obj *o, struct frag_state *st);
 uint64_t gw_choose_version(const struct frag_state *st, int n, int need, uint64_t *vmax);
 bool gw_all_absent(const struct frag_state *st, int n);
 const struct sd_node *gw_live_node(const struct sheep_view *v, const struct sd_node *n);
 int gw_add_shadows(struct gw_obj *o, struct peer_call *calls, int *pos_of);
 int gw_round(struct gw_obj *o, struct peer_call *calls, struct frag_state *st, uint32_t *won);

		int gw_decode_range(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
		const uint8_t *want, int nr_want, uint32_t off, uint32_t len,
		uint8_t **out);
 int gw_read_ec(struct gw_obj *o, void *buf, uint32_t len, uint32_t off);
 int gw_read_copies(struct gw_obj *o, void *buf, uint32_t len, uint32_t off);
 int gw_ack_threshold(const struct gw_obj *o);
 int gw_count_acks(struct gw_obj *o, struct peer_call *calls, int n, int *retry);
 int gw_precheck_targets(struct gw_obj *o, const struct sd_node *const *targets);
 int gw_zones_of(const struct sd_node *const *nodes, int n);
 int gw_ack_result(struct gw_obj *o, int ok, int retry);

		int gw_put_all(struct gw_obj *o, uint8_t **frags, uint32_t lo, const uint32_t *lens,
		uint8_t mode, uint64_t new_version);

		int gw_write_full_ec(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
		uint8_t mode, uint64_t new_version);

		int gw_write_full_copies(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
		uint8_t mode, uint64_t new_version);

		int gw_update_copies(struct gw_obj *o, const struct frag_state *st, uint64_t ver,
		const void *buf, uint32_t len, uint32_t off, uint64_t new_version);

		int gw_update_ec(struct gw_obj *o, struct frag_state *st, uint64_t ver, const void *buf,
		uint32_t len, uint32_t off, uint64_t new_version);

		int gw_rewrite_whole(struct gw_obj *o, uint64_t ver, const void *buf, uint32_t len, uint32_t off,
		uint64_t new_version);

		int gw_write_once(struct gw_obj *o, const void *buf, uint32_t len, uint32_t off,
		bool create, uint64_t *mixed_since);
 uint64_t gw_new_write_id(struct gw_obj *o);
/* vcache.c: the coordinator's object versions (0: unknown / forget),
 * with the record of last-changed versions of that generation (lc_valid,
 * delta; may be NULL). */
uint64_t gw_vcache_get(struct gw_obj *o, uint64_t *early_wid, bool *lc_valid, uint8_t *delta);
void gw_vcache_put(struct gw_obj *o, uint64_t version, uint64_t early_wid, bool lc_valid,
		   const uint8_t *delta);
/* lastchg.c: last-changed versions of EC data fragments (store.h,
 * struct store_lc; docs/architecture.md "Unchanged fragments"). */
/* The version data fragment k holds in generation gen, by gen's record
 * (in st, or o's aligned one); gen itself when none says otherwise. */
uint64_t gw_lc_of(const struct gw_obj *o, const struct frag_state *st, uint64_t gen, int k);
/* Align st[0..width) to the newest generation d fragments are consistent
 * with (or, when none is, the newest one with a record): a data fragment
 * at the version that generation's record names for it gets that
 * generation as its version. Remembers it in o (lc_gen, lc_delta). */
void gw_lc_align(struct gw_obj *o, struct frag_state *st);
/* The generation a reply of fragment i at version real belongs to, by
 * o's aligned record. */
uint64_t gw_lc_gen_of(const struct gw_obj *o, int i, uint64_t real);
/* gateway.c, for vdi alter-copy (convert.c). gw_resolve: the id data object oid (as a
 * client names it) is stored under now, for a read or a write (a write
 * of an object that is nowhere yet goes to the target layout); SUCCESS or
 * an error of the probe. *converting: its VDI is being converted (a read
 * that finds nothing should resolve again). */
int gw_resolve(struct sheep *s, uint64_t oid, bool write, uint64_t *out, bool *converting);
/* The home and the other id of data object oid (client form) of VDI e. */
void gw_ids(const struct vdi_entry *e, uint64_t oid, uint64_t *home, uint64_t *other);
/* Is the object stored under oid there (readable, or a write pending)?
 * SUCCESS, NO_OBJ, or an error. */
int gw_stored_exists(struct sheep *s, uint64_t oid);
/* oid's VDI has ever had two layouts: holder-local copies do not apply. */
bool gw_vdi_layered(struct sheep *s, uint64_t oid);
/* commitq.c: asynchronous commits of early-ack writes. */
void gw_commitq_add(struct gw_obj *o, const struct peer_call *calls, int n, uint64_t wid,
		    bool die);
bool gw_commitq_any(struct sheep *s);
uint64_t gw_commitq_queued(struct sheep *s, const struct sd_node *n, uint64_t oid, uint8_t idx);
void gw_commitq_flush(struct sheep *s, uint64_t oid);
int gw_commitq_take(struct sheep *s, const struct sd_node *n, uint32_t epoch,
		    struct peer_commit_ent *out, int max);
/* layout.c: queued commits ride on the writes about to leave (attach,
 * from gw_set_hints) until they are sent (release). */
void gw_ride_release(struct peer_call *calls, int n);
int gw_commitq_init(struct sheep *s);
void gw_commitq_fini(struct sheep *s);
int gw_settle_early(struct gw_obj *o, const struct frag_state *st);
/* A placed holder's fragment is behind the object (write.c): true when the
 * write should rewrite the object whole now, the fragment having been
 * seen behind at least GW_BEHIND_GRACE_MS ago (recovery had its chance)
 * with no write reaching every fragment since (gw_vcache_put), and no
 * whole rewrite of it in the last GW_BEHIND_BACKOFF_MS; false notes the
 * sighting. */
#define GW_BEHIND_GRACE_MS 1000
#define GW_BEHIND_BACKOFF_MS 10000
bool gw_behind_rewrite_due(struct gw_obj *o);
void gw_vcache_init(struct sheep *s);
void gw_vcache_fini(struct sheep *s);
 int gw_test_crash_point(struct gw_obj *o);
enum { GW_CRASH_NONE, GW_CRASH_COMMITS, GW_CRASH_BEFORE_ACK, GW_CRASH_AFTER_ACK,
       GW_CRASH_MID_PREPARE, GW_CRASH_AFTER_OLD };
int gw_test_crash_mode(struct gw_obj *o);
 void gw_test_pause(struct gw_obj *o, const char *point);
 int gw_check_base(struct gw_obj *o, uint64_t wid);
 void gw_send_commits(struct gw_obj *o, struct peer_call *cc, int n, int crash_at);

		void gw_commit_init(struct gw_obj *o, struct peer_call *c, const struct sd_node *node, int idx,
		uint64_t new_version, uint64_t wid, bool abort);
 int gw_write_2pc(struct gw_obj *o, struct peer_call *calls, int n);
 int gw_settle(struct gw_obj *o, const struct frag_state *st);

#endif
