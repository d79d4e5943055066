/* gather.c - what the recovery thread asks of the other members: their object
 * lists (PEER_LIST) before a plan, their recovery state (STAT_RECOVERY) at
 * the end of an epoch; and the drop of the fragments the plan moved away. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "recovery/recovery.h"
#include "sheep/cluster/cluster.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild_priv.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

/* The engine's id for a node: its slot in known[] (added on first sight;
 * r->mu held). Slots never move or change, but nr_known grows while workers
 * run: a worker copies its slot under r->mu (io_read). */
uint32_t rec_node_id(struct sheep_recovery *r, const struct sd_node *n)
{
	for (uint32_t i = 0; i < r->nr_known; i++)
		if (sd_node_eq(&r->known[i], n))
			return i;
	if (r->nr_known == REC_KNOWN_MAX)
		return RECOVERY_NO_NODE;
	r->known[r->nr_known] = *n;
	return r->nr_known++;
}

/* ---- gathering what every data member holds ---- */

static int vec_add(struct rec_frag_vec *fv, uint64_t oid, uint8_t idx, uint8_t cp, uint8_t nc,
		   uint32_t fs, uint64_t version, uint64_t disk, bool lc_valid,
		   const uint8_t *delta)
{
	if (fv->only_oid && oid != fv->only_oid)
		return 0;
	if (fv->nr == fv->cap) {
		size_t ncap = fv->cap ? fv->cap * 2 : 1024;
		void *p = realloc(fv->v, ncap * sizeof(*fv->v));
		if (!p)
			return -ENOMEM;
		fv->v = p;
		fv->cap = ncap;
	}
	struct recovery_frag *f = &fv->v[fv->nr++];
	memset(f, 0, sizeof(*f));
	f->oid = oid;
	f->idx = idx;
	f->copy_policy = cp;
	f->nr_copies = nc;
	f->frag_size = fs;
	f->version = version;
	f->disk_bytes = disk;
	f->node = fv->node;
	if (lc_valid) {
		f->lc.valid = 1;
		memcpy(f->lc.delta, delta, sizeof(f->lc.delta));
	}
	return 0;
}

static int local_one(const struct store_meta *m, void *arg)
{
	return vec_add(arg, m->oid, m->idx, m->copy_policy, m->nr_copies, m->frag_size, m->version,
		       m->disk_bytes, m->lc.valid, m->lc.delta);
}

/* PEER_LIST of one member into fv; 0 or -errno (member unreachable). */
static int list_remote(struct sheep *s, const struct sd_node *n, uint32_t epoch,
		       struct rec_frag_vec *fv)
{
	uint32_t cap = 1u << 20;
	for (;;) {
		void *buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
		struct peer_call c;
		memset(&c, 0, sizeof(c));
		c.node = n;
		c.req.opcode = SD_OP_PEER_LIST;
		c.req.flags = SD_PEER_FLAG_ANY_EPOCH;
		c.req.epoch = epoch;
		c.rbuf = buf;
		c.rcap = cap;
		peer_fanout(s, &c, 1);
		if (c.result == SD_RES_NO_SPACE && cap < SD_MAX_PAYLOAD) {
			free(buf);
			cap *= 2;
			continue;
		}
		int rc = sd_res_to_errno(c.result);
		if (!rc) {
			const struct peer_frag *pf = buf;
			size_t cnt = c.rlen / sizeof(*pf);
			for (size_t k = 0; k < cnt && !rc; k++)
				rc = vec_add(fv, pf[k].oid, pf[k].idx, pf[k].copy_policy,
					     pf[k].nr_copies, pf[k].frag_size, pf[k].version,
					     pf[k].disk_bytes, pf[k].lc_valid == 1, pf[k].lc_delta);
		}
		free(buf);
		return rc;
	}
}

/* Everything the data members of v hold (only_oid: one object). Members
 * that do not answer are skipped: what they hold is unreachable anyway. */
int rec_gather(struct sheep_recovery *r, struct sheep_view *v, uint64_t only_oid,
	       struct rec_frag_vec *fv)
{
	memset(fv, 0, sizeof(*fv));
	fv->only_oid = only_oid;
	for (size_t i = 0; i < v->nr_data; i++) {
		pthread_mutex_lock(&r->mu);
		bool stop = r->stop;
		fv->node = rec_node_id(r, &v->data[i]);
		pthread_mutex_unlock(&r->mu);
		if (stop || r->s->stopping) {
			/* A stopping sheep plans nothing: do not wait on peers. */
			free(fv->v);
			memset(fv, 0, sizeof(*fv));
			return -ECANCELED;
		}
		if (fv->node == RECOVERY_NO_NODE)
			continue;
		int rc;
		if ((int)i == v->self_data_idx)
			rc = store_for_each(r->s->store, local_one, fv);
		else
			rc = list_remote(r->s, &v->data[i], v->epoch, fv);
		if (rc == -ENOMEM) {
			free(fv->v);
			return rc;
		}
		if (rc)
			sd_warn("recovery: no object list from %s:%u (%d); skipping it",
				v->data[i].addr, v->data[i].port, rc);
	}
	return 0;
}

/* ---- the end of an epoch's recovery: cluster-wide completion, old copies ---- */

static int stat_remote(const struct sd_node *n, struct sd_recovery_state *st)
{
	int fd = sd_connect(n->addr, n->port, 2000);
	if (fd < 0)
		return fd;
	sd_set_timeout(fd, 5000);
	struct sd_req req;
	struct sd_rsp rsp;
	memset(&req, 0, sizeof(req));
	req.proto_ver = SD_SHEEP_PROTO_VER;
	req.opcode = SD_OP_STAT_RECOVERY;
	/* Sheepdog's 24 bytes first, then this project's state (sd_wire.h). */
	struct sd_wire_recovery w;
	memset(&w, 0, sizeof(w));
	req.data_length = sizeof(w);
	int rc = sd_exec(fd, &req, NULL, &rsp, &w, sizeof(w));
	close(fd);
	if (rc)
		return rc;
	*st = w.ext;
	return rsp.result == SD_RES_SUCCESS && rsp.data_length == sizeof(w) ? 0 : -EIO;
}

/*
 * Every data member has finished this epoch with nothing failed; with
 * need_dropped, every one has also dropped the fragments it no longer holds
 * (its cluster_done is set).
 */
bool rec_cluster_complete(struct sheep_recovery *r, struct sheep_view *v, bool need_dropped)
{
	for (size_t i = 0; i < v->nr_data; i++) {
		if ((int)i == v->self_data_idx)
			continue;
		struct sd_recovery_state st;
		if (stat_remote(&v->data[i], &st))
			return false;
		if (st.epoch != v->epoch || st.status != SD_RECOVERY_DONE || st.failed)
			return false;
		if (need_dropped && !st.cluster_done)
			return false;
	}
	return true;
}

struct drop_ctx {
	struct sheep_recovery *r;
	uint32_t self;
	struct store_meta *list;
	size_t nr, cap;
};

static int drop_collect(const struct store_meta *m, void *arg)
{
	struct drop_ctx *dc = arg;
	struct recovery_frag f = {.oid = m->oid,
				  .version = m->version,
				  .idx = m->idx,
				  .node = dc->self,
				  .copy_policy = m->copy_policy,
				  .nr_copies = m->nr_copies,
				  .frag_size = m->frag_size};
	if (!recovery_can_drop(dc->r->eng, &f))
		return 0;
	if (dc->nr == dc->cap) {
		size_t ncap = dc->cap ? dc->cap * 2 : 256;
		void *p = realloc(dc->list, ncap * sizeof(*dc->list));
		if (!p)
			return -ENOMEM;
		dc->list = p;
		dc->cap = ncap;
	}
	dc->list[dc->nr++] = *m;
	return 0;
}

/* Remove the fragments the plan says now live elsewhere. */
void rec_drop_old(struct sheep_recovery *r, struct sheep_view *v)
{
	struct drop_ctx dc = {.r = r};
	pthread_mutex_lock(&r->mu);
	dc.self = rec_node_id(r, &v->data[v->self_data_idx]);
	int rc = store_for_each(r->s->store, drop_collect, &dc);
	pthread_mutex_unlock(&r->mu);
	size_t n = 0;
	for (size_t k = 0; k < dc.nr && !rc; k++)
		if (store_remove(r->s->store, dc.list[k].oid, dc.list[k].idx) == 0)
			n++;
	free(dc.list);
	pthread_mutex_lock(&r->mu);
	r->dropped += n;
	pthread_mutex_unlock(&r->mu);
	if (n)
		sd_info("recovery, epoch %u: cluster complete, dropped %zu old fragment(s)",
			v->epoch, n);
}
