/* engine_priv.h - recovery engine internals shared by the planner, the job queue and the executor.
 */
#ifndef RECOVERY_ENGINE_PRIV_H
#define RECOVERY_ENGINE_PRIV_H

#include "recovery/recovery.h"

enum rec_item_state { ITEM_PENDING = 0, ITEM_INFLIGHT, ITEM_DONE, ITEM_FAILED };

#define REC_MAX_TRIES 3

/* One fragment this node must hold in the current plan. */
struct rec_item {
	uint64_t oid;
	uint64_t version;
	uint64_t have_version;
	uint64_t est_bytes; /* space it will take (0 when held already) */
	uint32_t frag_size;
	uint8_t idx;
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t kind;
	uint8_t state;
	uint8_t how;
	uint8_t tries;
	uint8_t __pad;
	uint32_t busy;	  /* jobs of this fragment still out (maybe from an older plan) */
	uint32_t src_off; /* into recovery.srcs */
	uint32_t nr_src;
	uint64_t generation;   /* of the job in flight */
	struct recovery_lc lc; /* the record of version (recovery_job.lc) */
};

#define OBJ_LOST     0x1 /* too few consistent fragments */
#define OBJ_DEGRADED 0x2 /* some position has no home */
#define OBJ_BADLOC   0x4 /* placement failed for it */
#define OBJ_FAILED   0x8 /* a job of it failed here */

struct rec_obj {
	uint64_t oid;
	uint64_t version;  /* version recovery settled on */
	uint32_t hold_off; /* into recovery.holders, n entries */
	uint8_t n;
	uint8_t flags;
	uint8_t __pad[2];
};

/* Open-addressing map from (oid, idx) to an array index. */
struct rec_key {
	uint64_t oid;
	uint32_t idx; /* REC_NO_IDX for the object map */
	uint32_t val; /* UINT32_MAX = free slot */
};
#define REC_NO_IDX 0x100u

struct rec_map {
	struct rec_key *slots;
	size_t cap; /* power of two, 0 = empty */
	size_t used;
};

struct recovery {
	struct recovery_throttle thr;
	bool enabled;
	bool planned;
	bool refused;
	char refusal[320];
	uint32_t epoch;
	uint32_t self;
	bool forget_done; /* recovery_forget_done(): the next plan carries no finished item */

	struct rec_item *items;
	size_t nr_items, cap_items;
	struct rec_map item_map; /* (oid, idx) -> item */
	struct recovery_src *srcs;
	size_t nr_srcs, cap_srcs;
	struct rec_obj *objs;
	size_t nr_objs, cap_objs;
	struct rec_map obj_map; /* oid -> obj */
	uint32_t *holders;
	size_t nr_holders, cap_holders;

	/* Start order: urgent FIFO first, then order[] from cursor. */
	uint32_t *urgent;
	size_t urgent_head, nr_urgent, cap_urgent;
	uint32_t *order;
	size_t order_cursor, nr_order, cap_order;

	uint64_t cool[RECOVERY_MAX_INFLIGHT]; /* when recently freed slots become usable */
	size_t nr_cool;
	uint64_t in_flight;
	uint64_t generation;

	uint64_t bytes_read, bytes_written, need_bytes, free_bytes;
	uint64_t nr_objects, nr_degraded, nr_lost;
};

int rec_map_put(struct rec_map *m, uint64_t oid, uint32_t idx, uint32_t val);
/* Index for (oid, idx) or -1. */
long rec_map_get(const struct rec_map *m, uint64_t oid, uint32_t idx);
void rec_map_clear(struct rec_map *m);
void rec_map_free(struct rec_map *m);

/* plan.c: queue item i on the urgent (client-waiting) or the ordered queue. 0 or -ENOMEM. */
int rec_push_urgent(struct recovery *r, uint32_t i);
int rec_push_order(struct recovery *r, uint32_t i);

#endif
