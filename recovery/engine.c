/* engine.c - recovery job queue: priority, throttle, progress, enable/disable, and what may be
 * dropped afterwards. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "recovery/engine_priv.h"

int recovery_new(const struct recovery_throttle *throttle, struct recovery **out)
{
	struct recovery_throttle t = {.max = 4, .interval_ms = 0};
	if (throttle)
		t = *throttle;
	if (t.max < 1 || t.max > RECOVERY_MAX_INFLIGHT)
		return -EINVAL;
	struct recovery *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->thr = t;
	r->enabled = true;
	*out = r;
	return 0;
}

void recovery_free(struct recovery *r)
{
	if (!r)
		return;
	free(r->items);
	free(r->srcs);
	free(r->objs);
	free(r->holders);
	free(r->urgent);
	free(r->order);
	rec_map_free(&r->item_map);
	rec_map_free(&r->obj_map);
	free(r);
}

static bool startable(const struct rec_item *it)
{
	return it->state == ITEM_PENDING && it->busy == 0;
}

/* Drop cooling slots whose pause is over; return the soonest end left. */
static uint64_t expire_cool(struct recovery *r, uint64_t now)
{
	uint64_t soonest = UINT64_MAX;
	size_t k = 0;
	for (size_t i = 0; i < r->nr_cool; i++) {
		if (r->cool[i] > now) {
			r->cool[k++] = r->cool[i];
			if (r->cool[i] < soonest)
				soonest = r->cool[i];
		}
	}
	r->nr_cool = k;
	return soonest;
}

static long next_item(struct recovery *r)
{
	while (r->urgent_head < r->nr_urgent) {
		uint32_t i = r->urgent[r->urgent_head++];
		if (i < r->nr_items && startable(&r->items[i]))
			return i;
	}
	while (r->order_cursor < r->nr_order) {
		uint32_t i = r->order[r->order_cursor++];
		if (i < r->nr_items && startable(&r->items[i]))
			return i;
	}
	return -1;
}

int recovery_take(struct recovery *r, uint64_t now_ms, struct recovery_job **job, uint64_t *wait_ms)
{
	uint64_t dummy;
	if (!wait_ms)
		wait_ms = &dummy;
	*wait_ms = 0;
	*job = NULL;
	if (!r->planned)
		return -ENOENT;
	if (r->refused)
		return -ENOSPC;
	if (!r->enabled)
		return -EAGAIN;
	uint64_t soonest = expire_cool(r, now_ms);
	if (r->in_flight + r->nr_cool >= r->thr.max) {
		if (r->in_flight < r->thr.max && soonest != UINT64_MAX)
			*wait_ms = soonest - now_ms;
		return -EAGAIN;
	}
	long i = next_item(r);
	if (i < 0)
		return -ENOENT;
	struct rec_item *it = &r->items[i];
	struct recovery_job *j = calloc(1, sizeof(*j));
	struct recovery_src *s = calloc(it->nr_src ? it->nr_src : 1, sizeof(*s));
	if (!j || !s) {
		free(j);
		free(s);
		/* Still pending: queue it again so a later take finds it. */
		rec_push_urgent(r, (uint32_t)i);
		return -ENOMEM;
	}
	if (it->nr_src) /* a job keeping the local fragment may have none, and r->srcs be NULL */
		memcpy(s, r->srcs + it->src_off, it->nr_src * sizeof(*s));
	j->oid = it->oid;
	j->version = it->version;
	j->have_version = it->have_version;
	j->frag_size = it->frag_size;
	j->idx = it->idx;
	j->copy_policy = it->copy_policy;
	j->nr_copies = it->nr_copies;
	j->kind = it->kind;
	j->nr_src = it->nr_src;
	j->src = s;
	j->lc = it->lc;
	j->generation = ++r->generation;
	it->generation = j->generation;
	it->state = ITEM_INFLIGHT;
	it->busy++;
	r->in_flight++;
	*job = j;
	return 0;
}

void recovery_finish(struct recovery *r, struct recovery_job *job, uint64_t now_ms)
{
	if (!job)
		return;
	if (r->in_flight)
		r->in_flight--;
	if (r->thr.interval_ms && r->nr_cool < RECOVERY_MAX_INFLIGHT)
		r->cool[r->nr_cool++] = now_ms + r->thr.interval_ms;
	r->bytes_read += job->bytes_read;
	r->bytes_written += job->bytes_written;

	long i = rec_map_get(&r->item_map, job->oid, job->idx);
	if (i >= 0) {
		struct rec_item *it = &r->items[i];
		if (it->busy)
			it->busy--;
		if (it->state == ITEM_INFLIGHT && it->generation == job->generation) {
			if (job->result == 0) {
				it->state = ITEM_DONE;
				it->how = job->how;
				it->version = job->version;
				it->have_version = job->put_version;
			} else if (job->result == -EAGAIN && ++it->tries < REC_MAX_TRIES) {
				it->state = ITEM_PENDING;
				rec_push_order(r, (uint32_t)i);
			} else {
				it->state = ITEM_FAILED;
				long o = rec_map_get(&r->obj_map, it->oid, REC_NO_IDX);
				if (o >= 0)
					r->objs[o].flags |= OBJ_FAILED;
				sd_err("recovery of %016" PRIx64 " fragment %u failed: %s", it->oid,
				       it->idx, recovery_strerror(job->result));
			}
		} else if (startable(it)) {
			/* Replanned while this job ran: start the new one now. */
			rec_push_order(r, (uint32_t)i);
		}
	}
	free(job->src);
	free(job);
}

int recovery_prioritize(struct recovery *r, uint64_t oid)
{
	long o = rec_map_get(&r->obj_map, oid, REC_NO_IDX);
	if (o < 0)
		return -ENOENT;
	int found = 0;
	for (uint32_t idx = 0; idx < r->objs[o].n; idx++) {
		long i = rec_map_get(&r->item_map, oid, idx);
		if (i >= 0 && startable(&r->items[i])) {
			if (rec_push_urgent(r, (uint32_t)i))
				return -ENOMEM;
			found = 1;
		}
	}
	return found ? 0 : -ENOENT;
}

bool recovery_pending(const struct recovery *r, uint64_t oid, uint8_t idx)
{
	long i = rec_map_get(&r->item_map, oid, idx);
	if (i < 0)
		return false;
	uint8_t st = r->items[i].state;
	return st == ITEM_PENDING || st == ITEM_INFLIGHT;
}

void recovery_progress(const struct recovery *r, struct recovery_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->epoch = r->epoch;
	uint64_t pending = 0;
	for (size_t k = 0; k < r->nr_items; k++) {
		const struct rec_item *it = &r->items[k];
		switch (it->state) {
		case ITEM_PENDING:
			pending++;
			break;
		case ITEM_DONE:
			p->done++;
			if (it->how == RECOVERY_HOW_REUSED)
				p->reused++;
			else if (it->how == RECOVERY_HOW_COPIED)
				p->copied++;
			else if (it->how == RECOVERY_HOW_REBUILT)
				p->rebuilt++;
			break;
		case ITEM_FAILED:
			p->failed++;
			break;
		}
	}
	p->total = r->nr_items;
	p->in_flight = r->in_flight;
	p->bytes_read = r->bytes_read;
	p->bytes_written = r->bytes_written;
	p->objects = r->nr_objects;
	p->degraded = r->nr_degraded;
	p->lost = r->nr_lost;
	p->need_bytes = r->need_bytes;
	p->free_bytes = r->free_bytes;
	if (!r->planned)
		p->state = RECOVERY_IDLE;
	else if (r->refused)
		p->state = RECOVERY_REFUSED;
	else if (pending && !r->enabled)
		p->state = RECOVERY_DISABLED;
	else if (pending || r->in_flight)
		p->state = RECOVERY_RUNNING;
	else
		p->state = RECOVERY_DONE;
}

const char *recovery_refusal(const struct recovery *r)
{
	return r->refusal;
}

int recovery_set_throttle(struct recovery *r, const struct recovery_throttle *t)
{
	if (!t || t->max < 1 || t->max > RECOVERY_MAX_INFLIGHT)
		return -EINVAL;
	r->thr = *t;
	if (!t->interval_ms)
		r->nr_cool = 0;
	return 0;
}

void recovery_get_throttle(const struct recovery *r, struct recovery_throttle *t)
{
	*t = r->thr;
}

void recovery_set_enabled(struct recovery *r, bool enabled)
{
	r->enabled = enabled;
}

bool recovery_enabled(const struct recovery *r)
{
	return r->enabled;
}

size_t recovery_retry_failed(struct recovery *r)
{
	size_t n = 0;
	for (size_t k = 0; k < r->nr_items; k++) {
		struct rec_item *it = &r->items[k];
		if (it->state != ITEM_FAILED)
			continue;
		it->state = ITEM_PENDING;
		it->tries = 0;
		long o = rec_map_get(&r->obj_map, it->oid, REC_NO_IDX);
		if (o >= 0)
			r->objs[o].flags &= (uint8_t)~OBJ_FAILED;
		if (it->busy == 0 && rec_push_order(r, (uint32_t)k))
			break;
		n++;
	}
	return n;
}

size_t recovery_lost_oids(const struct recovery *r, uint64_t *out, size_t max)
{
	size_t n = 0;
	for (size_t o = 0; o < r->nr_objs; o++)
		if (r->objs[o].flags & OBJ_LOST) {
			if (n < max)
				out[n] = r->objs[o].oid;
			n++;
		}
	return n;
}

bool recovery_can_drop(const struct recovery *r, const struct recovery_frag *f)
{
	if (!r->planned || r->refused)
		return false;
	long o = rec_map_get(&r->obj_map, f->oid, REC_NO_IDX);
	if (o < 0)
		return false; /* not in the plan: maybe newer than it */
	const struct rec_obj *obj = &r->objs[o];
	if (obj->flags & (OBJ_LOST | OBJ_BADLOC | OBJ_FAILED))
		return false;
	if (f->version > obj->version || f->idx >= obj->n)
		return false;
	uint32_t h = r->holders[obj->hold_off + f->idx];
	if (h == r->self || h == RECOVERY_NO_NODE)
		return false;
	/* Everything this node must hold of the object is in place. */
	for (uint32_t idx = 0; idx < obj->n; idx++) {
		long i = rec_map_get(&r->item_map, f->oid, idx);
		if (i >= 0 && r->items[i].state != ITEM_DONE)
			return false;
	}
	return true;
}
