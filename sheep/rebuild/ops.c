/* ops.c - the recovery opcodes (STAT/GET/SET_RECOVERY, FORCE_RECOVER) and the peer hooks
 * (busy fragment, bad checksum). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "sheep/sheep.h"
#include "sheep/cluster/cluster.h"
#include "sheep/rebuild/rebuild_priv.h"

bool sheep_recovery_handles(uint8_t opcode)
{
	return opcode == SD_OP_STAT_RECOVERY || opcode == SD_OP_GET_RECOVERY ||
	       opcode == SD_OP_SET_RECOVERY || opcode == SD_OP_FORCE_RECOVER;
}

static void fill_state(struct sheep_recovery *r, struct sd_recovery_state *st)
{
	struct recovery_progress p;
	struct recovery_throttle t;
	recovery_progress(r->eng, &p);
	recovery_get_throttle(r->eng, &t);
	memset(st, 0, sizeof(*st));
	st->epoch = r->epoch;
	st->status = r->status;
	st->enabled = recovery_enabled(r->eng);
	st->cluster_done = r->cluster_done;
	st->throttle.max = t.max;
	st->throttle.interval_ms = t.interval_ms;
	st->total = p.total;
	st->done = p.done;
	st->failed = p.failed;
	st->in_flight = p.in_flight;
	st->reused = p.reused;
	st->copied = p.copied;
	st->rebuilt = p.rebuilt;
	st->bytes_read = p.bytes_read - r->base_read; /* this epoch */
	st->bytes_written = p.bytes_written - r->base_written;
	st->objects = p.objects;
	st->degraded = p.degraded;
	st->lost = r->nr_lost; /* short in plans a second apart (rebuild.c, note_short) */
	size_t nl = SD_MIN(r->nr_lost, (uint64_t)SD_RECOVERY_LOST_NAMED);
	memcpy(st->lost_oids, r->lost_named, nl * sizeof(r->lost_named[0])); /* packed */
	st->dropped = r->dropped;
	st->repairs = (uint32_t)r->repairs;
	st->need_bytes = p.need_bytes;
	st->free_bytes = p.free_bytes;
	if (r->start_ms)
		st->elapsed_ms = (r->end_ms ? r->end_ms : rec_now_ms()) - r->start_ms;
	st->rounds = r->rounds;
	snprintf(st->message, sizeof(st->message), "%s", r->message);
}

/* The reply payload: len bytes in a fresh buffer the connection frees. */
static int reply(struct request *req, const void *buf, uint32_t len)
{
	if (req->hdr.data_length < len)
		return SD_RES_INVALID_PARMS;
	void *b = malloc(len);
	if (!b)
		return SD_RES_NO_MEM;
	memcpy(b, buf, len);
	req->rdata = b;
	req->rlen = len;
	return SD_RES_SUCCESS;
}

int sheep_recovery_op(struct sheep *s, struct request *req)
{
	struct sheep_recovery *r = s->rec;
	switch (req->hdr.opcode) {
	case SD_OP_STAT_RECOVERY: {
		/* Sheepdog's 24-byte recovery_state, then ours when asked for. */
		struct sd_wire_recovery w;
		memset(&w, 0, sizeof(w));
		struct sd_recovery_state *st = &w.ext;
		if (!r) {
			/* A gateway-only node holds nothing: nothing to recover. */
			st->status = SD_RECOVERY_DONE;
			st->cluster_done = 1;
		} else {
			pthread_mutex_lock(&r->mu);
			fill_state(r, st);
			pthread_mutex_unlock(&r->mu);
		}
		w.in_recovery = st->status == SD_RECOVERY_RUNNING ||
				st->status == SD_RECOVERY_PLANNING;
		w.state = st->status == SD_RECOVERY_PLANNING ? 0 : 1;
		w.nr_finished = st->done;
		w.nr_total = st->total;
		return reply(req, &w, SD_MIN(req->hdr.data_length, (uint32_t)sizeof(w)));
	}
	case SD_OP_GET_RECOVERY: {
		struct sd_wire_throttle t = {.max_exec_count = SHEEP_RECOVERY_MAX,
					     .queue_work_interval = SHEEP_RECOVERY_INTERVAL};
		if (r) {
			struct recovery_throttle rt;
			pthread_mutex_lock(&r->mu);
			recovery_get_throttle(r->eng, &rt);
			pthread_mutex_unlock(&r->mu);
			t.max_exec_count = rt.max;
			t.queue_work_interval = rt.interval_ms;
		}
		return reply(req, &t, sizeof(t));
	}
	case SD_OP_SET_RECOVERY: {
		/* Sheepdog's 16-byte recovery_throttling. */
		struct sd_wire_throttle t;
		if (!(req->hdr.flags & SD_FLAG_CMD_WRITE) || req->hdr.data_length != sizeof(t) ||
		    !req->data)
			return SD_RES_INVALID_PARMS;
		memcpy(&t, req->data, sizeof(t));
		/* max 0 (Sheepdog's "no throttle") restores the default pace. */
		if (t.queue_work_interval > 3600000)
			return SD_RES_INVALID_PARMS;
		struct recovery_throttle rt = {.max = t.max_exec_count ? t.max_exec_count
								     : SHEEP_RECOVERY_MAX,
					       .interval_ms = (uint32_t)t.queue_work_interval};
		if (rt.max < 1 || rt.max > RECOVERY_MAX_INFLIGHT)
			return SD_RES_INVALID_PARMS;
		if (r) {
			pthread_mutex_lock(&r->mu);
			recovery_set_throttle(r->eng, &rt);
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->mu);
			sd_notice("recovery throttle: max %u, interval %u ms", rt.max,
				  rt.interval_ms);
		}
		return SD_RES_SUCCESS;
	}
	case SD_OP_FORCE_RECOVER: {
		/* A restarted cluster waiting for missing nodes starts without
		 * them (Sheepdog's "cluster recover force"); else replan. */
		int started = group_force_start(s);
		if (started >= 0)
			return started;
		if (r) {
			pthread_mutex_lock(&r->mu);
			r->force = true;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->mu);
			sd_notice("recovery: forced replan");
		}
		return SD_RES_SUCCESS;
	}
	}
	return SD_RES_NO_SUPPORT;
}

bool sheep_recovery_busy(struct sheep *s, uint64_t oid, uint8_t idx)
{
	struct sheep_recovery *r = s->rec;
	if (!r)
		return false;
	bool busy = false;
	pthread_mutex_lock(&r->mu);
	if (r->status == SD_RECOVERY_RUNNING && recovery_enabled(r->eng) &&
	    recovery_pending(r->eng, oid, idx)) {
		recovery_prioritize(r->eng, oid);
		pthread_cond_broadcast(&r->cond);
		busy = true;
	}
	pthread_mutex_unlock(&r->mu);
	return busy;
}

void sheep_recovery_report_bad(struct sheep *s, uint64_t oid, uint8_t idx, bool stale)
{
	struct sheep_recovery *r = s->rec;
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	bool seen = false;
	for (unsigned k = 0; k < r->nr_bad; k++)
		seen |= r->bad[k].oid == oid && r->bad[k].idx == idx;
	if (!seen && r->nr_bad < REC_BAD_MAX) {
		r->bad[r->nr_bad].oid = oid;
		r->bad[r->nr_bad].idx = idx;
		r->nr_bad++;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->mu);
	/* A stale hint (a write acknowledged without this fragment) is the
	 * expected aftermath of a member change: info, not a warning. */
	if (stale)
		sd_info("%016llx fragment %u left at an old version by a write: queued for repair",
			(unsigned long long)oid, idx);
	else
		sd_warn("checksum mismatch on %016llx fragment %u: queued for repair",
			(unsigned long long)oid, idx);
}

