/* view.c - the membership view of each epoch: members, the ring, the rings of earlier epochs, references for readers. */
#include "sheep/cluster/group_priv.h"

/* ---- views ---- */

struct sheep_view *sheep_view_get(struct sheep *s)
{
	pthread_mutex_lock(&s->state_lock);
	struct sheep_view *v = s->synced ? s->view : NULL;
	if (v)
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&s->state_lock);
	return v;
}

void group_ring_put(struct sheep_ring *r)
{
	if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (r->ring)
		ring_free(r->ring);
	free(r->data);
	free(r);
}

void sheep_view_put(struct sheep_view *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	group_ring_put(v->cur);
	for (int i = 0; i < v->nr_hist; i++)
		group_ring_put(v->hist[i]);
	free(v->nodes);
	free(v);
}

struct sheep_view *sheep_view_wait_change(struct sheep *s, uint32_t old_epoch, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->state_lock);
	while (!s->stopping && (!s->synced || s->epoch == old_epoch))
		if (pthread_cond_timedwait(&s->state_cond, &s->state_lock, &ts))
			break;
	struct sheep_view *v = NULL;
	if (s->synced && s->epoch != old_epoch && s->view) {
		v = s->view;
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->state_lock);
	return v;
}

struct sheep_ring *group_find_ring(struct sheep_view *v, uint32_t epoch)
{
	if (!v)
		return NULL;
	if (v->cur && v->cur->epoch == epoch && v->cur->ring)
		return v->cur;
	for (int i = 0; i < v->nr_hist; i++)
		if (v->hist[i]->epoch == epoch)
			return v->hist[i];
	return NULL;
}

/* The data holders of a node list, sorted, and their ring. */
int group_build_ring(struct sheep *s, const struct sd_node *nodes, size_t nr, struct sd_node *data,
		      size_t *nr_data, struct ring **ring)
{
	size_t n = 0;
	for (size_t i = 0; i < nr; i++)
		if (!nodes[i].gateway && nodes[i].space > 0)
			data[n++] = nodes[i];
	qsort(data, n, sizeof(struct sd_node), sheep_node_cmp);
	*nr_data = n;
	*ring = NULL;
	if (!n)
		return 0;
	struct ring_node *pn = calloc(n, sizeof(*pn));
	if (!pn)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(pn[i].id, sizeof(pn[i].id), "%s:%u", data[i].addr, data[i].port);
		pn[i].zone = data[i].zone;
		pn[i].weight = data[i].space;
		/* -V on the node or at format fixes vnodes; else placement/
		 * derives them from the weight (capacity, sheep -s). */
		pn[i].vnodes = s->fmt_vnodes	       ? (uint16_t)s->fmt_vnodes
			       : data[i].fixed_vnodes ? data[i].nr_vnodes
						      : 0;
	}
	int ret = ring_build(pn, n, ring);
	free(pn);
	return ret;
}

struct sheep_ring *group_ring_of_epoch(struct sheep *s, const struct epoch_rec *er)
{
	struct sheep_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->refs = 1;
	r->epoch = er->epoch;
	r->data = calloc(er->nr_nodes ? er->nr_nodes : 1, sizeof(struct sd_node));
	if (!r->data || group_build_ring(s, er->nodes, er->nr_nodes, r->data, &r->nr_data, &r->ring) ||
	    !r->ring) {
		free(r->data);
		if (r->ring)
			ring_free(r->ring);
		free(r);
		return NULL;
	}
	return r;
}

/* Build and publish the view of the current members and epoch (locked). */
void group_rebuild_view(struct sheep *s)
{
	struct sheep_view *v = calloc(1, sizeof(*v));
	if (!v)
		goto fail;
	v->refs = 1;
	v->epoch = s->epoch;
	v->self_data_idx = -1;
	v->nodes = calloc(s->nr_members ? s->nr_members : 1, sizeof(struct sd_node));
	v->cur = calloc(1, sizeof(*v->cur));
	if (!v->nodes || !v->cur)
		goto fail;
	v->cur->refs = 1;
	v->cur->epoch = s->epoch;
	v->data = v->cur->data = calloc(s->nr_members ? s->nr_members : 1, sizeof(struct sd_node));
	if (!v->data)
		goto fail;
	memcpy(v->nodes, s->members, s->nr_members * sizeof(struct sd_node));
	v->nr_nodes = s->nr_members;
	qsort(v->nodes, v->nr_nodes, sizeof(struct sd_node), sheep_node_cmp);
	int ret = group_build_ring(s, v->nodes, v->nr_nodes, v->data, &v->nr_data, &v->ring);
	if (ret)
		sd_err("cannot build the placement ring for epoch %u: %s", s->epoch, strerror(-ret));
	uint32_t zones[SD_MAX_NODES];
	for (size_t i = 0; i < v->nr_data; i++) {
		if (sd_node_eq(&v->data[i], &s->self))
			v->self_data_idx = (int)i;
		bool seen = false;
		for (uint32_t z = 0; z < v->nr_zones; z++)
			seen |= zones[z] == v->data[i].zone;
		if (!seen && v->nr_zones < SD_MAX_NODES)
			zones[v->nr_zones++] = v->data[i].zone;
	}
	v->cur->nr_data = v->nr_data;
	v->cur->ring = v->ring;
	/* Rings of the previous epochs, newest first: where fragments are
	 * until recovery moves them. Reuse the old view's, build the rest
	 * from the epoch log (a joiner or a restarted node has no old view). */
	for (size_t k = s->nr_epochs; k > 0 && v->nr_hist < SHEEP_VIEW_HIST; k--) {
		const struct epoch_rec *er = &s->epochs[k - 1];
		if (er->epoch >= s->epoch)
			continue;
		struct sheep_ring *r = group_find_ring(s->view, er->epoch);
		if (r)
			__atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
		else
			r = group_ring_of_epoch(s, er);
		if (r)
			v->hist[v->nr_hist++] = r;
	}
	sheep_view_put(s->view);
	s->view = v;
	pthread_cond_broadcast(&s->state_cond);
	return;
fail:
	sd_emerg("out of memory building the view of epoch %u", s->epoch);
	if (v) {
		v->refs = 1;
		sheep_view_put(v);
	}
}
