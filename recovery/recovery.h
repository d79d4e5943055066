/* recovery.h - the recovery engine: after a membership change, decide what this node must hold,
 * then copy or rebuild it. */
#ifndef RECOVERY_RECOVERY_H
#define RECOVERY_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The engine is pure: it knows nothing of sockets, threads or sheep/. The
 * daemon gives it
 *   - the new epoch: this node's id, the members, and a placement callback;
 *   - what every reachable node holds (struct recovery_frag, one per
 *     fragment, gathered from the local store and the peers' object lists);
 *   - I/O callbacks (struct recovery_io) to read a fragment from a node,
 *     verify and install a local fragment, and decode erasure-coded data.
 *
 * Node ids are the caller's: any u32 that names one node for the life of
 * the engine (sheep uses its table of known addr:port). Fragment index idx
 * is the erasure-code fragment index, or the copy's placement position for a
 * replicated object (as in sheep/store/store.h).
 *
 * Threading: a struct recovery is owned by one thread (sheep's event loop);
 * none of its functions may run concurrently on the same engine.
 * recovery_execute() touches only its job and the callbacks, so jobs run on
 * any number of worker threads while the owner keeps planning.
 *
 * Safety: the engine never deletes anything. recovery_can_drop() says which
 * local fragments are no longer needed here; the daemon asks only once the
 * whole cluster reports recovery complete, so the last good copy of an
 * object is never dropped and old copies outlive the recovery.
 *
 * Errors: 0 or -errno; recovery_strerror() gives text for the engine's own.
 */

#define RECOVERY_NO_NODE      UINT32_MAX /* placement: this position has no home */
#define RECOVERY_ABSENT	      UINT64_MAX /* version: not held locally */
#define RECOVERY_MAX_INFLIGHT 1024

/*
 * Last-changed versions (sheep/store/store.h, struct store_lc): an EC
 * range write sends nothing to the data fragments it does not change, and
 * records in every fragment it makes, for each data fragment k, the
 * version at which k last changed: generation - delta[k]. A data fragment
 * at that version belongs to the generation (holds its bytes) as much as
 * one at the generation's own version. valid = 0: no record (every data
 * fragment of the generation is at its version).
 */
#define RECOVERY_LC_MAX 16
struct recovery_lc {
	uint8_t valid;
	uint8_t delta[RECOVERY_LC_MAX];
};

/* One fragment (or copy) some node holds, as its store reports it. */
struct recovery_frag {
	uint64_t oid;
	uint64_t version;
	uint64_t disk_bytes; /* bytes it occupies on disk (space estimate) */
	uint32_t frag_size;
	uint32_t node; /* holder */
	uint8_t idx;
	uint8_t copy_policy; /* 0 = N copies, else the EC byte ((d/2)<<4)|p */
	uint8_t nr_copies;   /* N, or d+p */
	uint8_t __pad[5];
	struct recovery_lc lc; /* its record of last-changed versions */
	/* The planner's (callers leave it 0): the fragment's own version,
	 * while version becomes the generation it belongs to. */
	uint64_t real;
};

/*
 * Placement in the new epoch: out[i] = node id holding fragment/copy i of
 * oid, i < n, or RECOVERY_NO_NODE when position i has no home (fewer zones
 * than fragments). Returns 0 or -errno. A node may appear at two positions.
 */
typedef int (*recovery_locate_fn)(void *arg, uint64_t oid, int n, uint32_t *out);

struct recovery_epoch {
	uint32_t epoch;
	uint32_t self;		 /* this node */
	const uint32_t *members; /* the nodes of the new epoch (holders are trusted only if here) */
	size_t nr_members;
	recovery_locate_fn locate;
	void *locate_arg;	/* used only during recovery_plan() */
	uint64_t free_bytes;	/* free space of this node's store */
	uint64_t reserve_bytes; /* recovery refuses to go below this */
};

/* Throttle: at most max jobs in flight; a finished job's slot is reusable
 * interval_ms later (so at most max*1000/interval_ms jobs per second). */
struct recovery_throttle {
	uint32_t max;	      /* 1..RECOVERY_MAX_INFLIGHT */
	uint32_t interval_ms; /* 0 = no pause */
};

enum recovery_state {
	RECOVERY_IDLE = 0, /* never planned */
	RECOVERY_RUNNING,  /* jobs pending or in flight */
	RECOVERY_DONE,	   /* every job finished (see failed) */
	RECOVERY_REFUSED,  /* the plan would fill the disk: nothing was started */
	RECOVERY_DISABLED, /* planned, but disabled by the admin */
};

struct recovery_progress {
	uint32_t epoch;
	uint8_t state; /* enum recovery_state */
	uint8_t __pad[3];
	uint64_t total;	 /* jobs in the plan (fragments this node must hold) */
	uint64_t done;	 /* of which finished: reused + copied + rebuilt */
	uint64_t failed; /* finished without success (retried at the next plan or force) */
	uint64_t in_flight;
	uint64_t reused;     /* local fragment valid: same version, checksums ok */
	uint64_t copied;     /* same fragment/copy read from a holder */
	uint64_t rebuilt;    /* decoded from d other fragments */
	uint64_t bytes_read; /* since recovery_new(), across plans */
	uint64_t bytes_written;
	uint64_t objects;    /* distinct objects seen in the cluster */
	uint64_t degraded;   /* objects with a position that has no home (too few zones) */
	uint64_t lost;	     /* objects with too few consistent fragments to rebuild */
	uint64_t need_bytes; /* space the plan needs on this node */
	uint64_t free_bytes;
};

/* How a job must be done. A REUSE job verifies the local fragment first and
 * falls back to copying or rebuilding when the checksums do not match. */
enum recovery_kind { RECOVERY_REUSE = 0, RECOVERY_COPY, RECOVERY_REBUILD };
enum recovery_how {
	RECOVERY_HOW_NONE = 0,
	RECOVERY_HOW_REUSED,
	RECOVERY_HOW_COPIED,
	RECOVERY_HOW_REBUILT
};

struct recovery_src {
	uint32_t node;
	uint8_t idx;
	uint8_t __pad[3];
};

/* One fragment to put in place on this node. Sources are candidates in the
 * order to try: holders of the same fragment/copy (copy) first, then holders
 * of other fragments at the same version (rebuild, EC only). */
struct recovery_job {
	uint64_t oid;
	uint64_t version;      /* version to install */
	uint64_t have_version; /* version held locally when planned, or RECOVERY_ABSENT */
	uint32_t frag_size;
	uint8_t idx;
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t kind; /* enum recovery_kind */
	uint32_t nr_src;
	struct recovery_src *src;
	/* The record of generation version (EC): a data fragment at the
	 * version it names belongs to it; have_version is the local
	 * fragment's own version. */
	struct recovery_lc lc;
	/* filled by recovery_execute() for install: the version to write (the
	 * fragment's own in generation version) and the record to keep */
	uint64_t put_version;
	struct recovery_lc put_lc;
	/* filled by recovery_execute() */
	uint8_t how; /* enum recovery_how */
	int result;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t generation; /* engine-private */
};

/*
 * I/O the daemon provides. All blocking, called from recovery_execute() on
 * whatever thread runs it; they must be thread-safe.
 */
struct recovery_io {
	void *arg;
	/* Read [off, off+len) of fragment (oid, idx) held by node (node may be
	 * this one), its version and its record (lc). 0, -ENOENT, -EIO
	 * (checksum), or another -errno (node unreachable). */
	int (*read)(void *arg, uint32_t node, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		    uint32_t len, uint64_t *version, struct recovery_lc *lc);
	/* Verify every checksum of local fragment (oid, idx): 0 (and its version),
	 * -EIO or -ENOENT. */
	int (*verify)(void *arg, uint64_t oid, uint8_t idx, uint64_t *version);
	/* Put the whole fragment buf (job->frag_size bytes) in place at
	 * job->put_version with record job->put_lc: create it when
	 * job->have_version is RECOVERY_ABSENT,
	 * else replace the local one only if it is still at have_version.
	 * -EEXIST / -ESTALE: the local fragment moved meanwhile; kept when
	 * verify then finds it at job->version or newer (a local write got
	 * there first), else installed over at its new version (exec.c). */
	int (*install)(void *arg, const struct recovery_job *job, const void *buf);
	/* Erasure decode: from d fragments src[k] of index src_idx[k] (each
	 * frag_size bytes, all of one version), produce fragment want into out. */
	int (*decode)(void *arg, uint8_t copy_policy, uint32_t frag_size, const uint8_t *src_idx,
		      const void *const *src, uint8_t want, void *out);
};

struct recovery;

int recovery_new(const struct recovery_throttle *throttle, struct recovery **out);
void recovery_free(struct recovery *r);

/*
 * Plan (or replan) for a new epoch from frags, the fragments every
 * reachable node holds (this node's included). Finished work survives a
 * replan: a fragment already done at the version the new plan wants stays
 * done, and a job still in flight is not started twice. Entries from nodes
 * not in ep->members are ignored. -ENOSPC (plan refused, nothing will be
 * started; recovery_refusal() says why), -EINVAL (bad epoch), -ENOMEM.
 */
int recovery_plan(struct recovery *r, const struct recovery_epoch *ep,
		  const struct recovery_frag *frags, size_t nr);

/*
 * Add or refresh the jobs of one object at high priority (a scrub found a
 * bad checksum, or a client needs it): frags are all its known fragments
 * (one oid); a local fragment at the wanted version is verified again and
 * rebuilt if bad. ep must be the epoch of the last recovery_plan().
 * 0, -ENOENT (this node holds no position of oid), -ENODATA (too few
 * consistent fragments to rebuild), -ESTALE (ep is not the planned epoch).
 */
int recovery_plan_object(struct recovery *r, const struct recovery_epoch *ep,
			 const struct recovery_frag *frags, size_t nr);

/*
 * Hand out the next job. 0 with *job set: the caller runs
 * recovery_execute() (any thread) and then recovery_finish() (owner).
 * -EAGAIN: throttled or disabled; *wait_ms is a hint (0 = wait for a
 * finish). -ENOENT: nothing left to start.
 */
int recovery_take(struct recovery *r, uint64_t now_ms, struct recovery_job **job,
		  uint64_t *wait_ms);
/* Do the job: verify/copy/rebuild and install. Returns and stores in
 * job->result 0 or -errno (-EAGAIN: versions moved while reading, retry). */
int recovery_execute(const struct recovery_io *io, struct recovery_job *job);
/* Account a finished job and free it. */
void recovery_finish(struct recovery *r, struct recovery_job *job, uint64_t now_ms);

/* Objects a client waits on go first: move oid's pending jobs to the head.
 * 0, or -ENOENT when nothing of oid is pending. */
int recovery_prioritize(struct recovery *r, uint64_t oid);
/* Is fragment (oid, idx) still to be recovered here (pending or in flight)? */
bool recovery_pending(const struct recovery *r, uint64_t oid, uint8_t idx);

void recovery_progress(const struct recovery *r, struct recovery_progress *p);
/* Why the last plan was refused ("" if it was not). */
const char *recovery_refusal(const struct recovery *r);

int recovery_set_throttle(struct recovery *r, const struct recovery_throttle *t);
void recovery_get_throttle(const struct recovery *r, struct recovery_throttle *t);
/* This node lost fragments it held (a failed or unplugged disk): the next
 * recovery_plan() trusts only what the frags it is given say is held,
 * and carries over no item finished under an earlier plan (jobs in flight
 * still carry over). */
void recovery_forget_done(struct recovery *r);
/* Disabled: recovery_take() hands out nothing (planning still happens). */
void recovery_set_enabled(struct recovery *r, bool enabled);
bool recovery_enabled(const struct recovery *r);
/* The objects the last plan found too short of consistent fragments to
 * rebuild: up to max oids in out; returns how many there are. */
size_t recovery_lost_oids(const struct recovery *r, uint64_t *out, size_t max);
/* Failed jobs go back to pending (dog cluster recover force). Returns how many. */
size_t recovery_retry_failed(struct recovery *r);

/*
 * May this node delete its local fragment f? Only when, in the current
 * plan, this node does not hold position f->idx of the object, another node
 * does, the object was planned without loss or failure here, and f is not
 * newer than the version recovery settled on. The caller must also know
 * that every node reports recovery done for this epoch.
 */
bool recovery_can_drop(const struct recovery *r, const struct recovery_frag *f);

/* Parse "max=N,interval=MS" (either part optional) into t. 0 or -EINVAL. */
int recovery_throttle_parse(const char *s, struct recovery_throttle *t);
const char *recovery_state_name(enum recovery_state s);
const char *recovery_strerror(int err);

/* Fragments d needed to rebuild an object of this policy (1 for copies). */
int recovery_policy_data(uint8_t copy_policy);

#endif
