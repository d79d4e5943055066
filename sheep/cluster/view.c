/* view.c - the membership view of each epoch, references for readers, and the ring of a member list
 * (chain.c chains the rings and builds the views). */
#include "sheep/cluster/group_priv.h"

/* ---- views ---- */

struct sheep_view *sheep_view_get(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	struct sheep_view *v = s->cl->synced ? s->cl->view : NULL;
	if (v)
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&s->cl->state_lock);
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

/* ms from now on state_cond's clock (the default, CLOCK_REALTIME). */
static void deadline_in(int ms, struct timespec *ts)
{
	sd_realtime_in((uint64_t)ms * 1000000ull, ts);
}

struct sheep_view *sheep_view_wait_change(struct sheep *s, uint32_t old_epoch, int ms)
{
	struct timespec ts;
	deadline_in(ms, &ts);
	pthread_mutex_lock(&s->cl->state_lock);
	while (!atomic_load(&s->stopping) && (!s->cl->synced || s->cl->epoch == old_epoch))
		if (pthread_cond_timedwait(&s->cl->state_cond, &s->cl->state_lock, &ts))
			break;
	struct sheep_view *v = NULL;
	if (s->cl->synced && s->cl->epoch != old_epoch && s->cl->view) {
		v = s->cl->view;
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	return v;
}

int group_vdi_wait(struct sheep *s, uint32_t vid, int ms)
{
	struct timespec ts;
	deadline_in(ms, &ts);
	pthread_mutex_lock(&s->cl->state_lock);
	int timed_out = 0;
	while (!vdi_table_find(&s->cl->vdis, vid) && !atomic_load(&s->stopping) && !timed_out)
		timed_out = pthread_cond_timedwait(&s->cl->state_cond, &s->cl->state_lock, &ts);
	bool known = vdi_table_find(&s->cl->vdis, vid) != NULL;
	pthread_mutex_unlock(&s->cl->state_lock);
	return known ? 0 : -ENOENT;
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

/* The data holders of a node list, sorted, and their ring, chained from
 * prev (NULL: an anchor ring). */
/* The ring of nodes (sorted) as if they had joined one at a time in that
 * order: the format epoch's (chain.c), so that a member that leaves and
 * comes back takes back what it held, as after joins one by one. */
int group_build_ring_joins(struct sheep *s, const struct sd_node *nodes, size_t nr,
			   struct sd_node *data, size_t *nr_data, struct ring **ring)
{
	struct ring *r = NULL;
	size_t nd = 0;
	for (size_t k = 1; k <= nr; k++) {
		struct ring *next = NULL;
		int ret = group_build_ring(s, r, nodes, k, data, &nd, &next);
		if (r)
			ring_free(r);
		if (ret)
			return ret;
		r = next;
	}
	if (!nr)
		return group_build_ring(s, NULL, nodes, 0, data, nr_data, ring);
	*nr_data = nd;
	*ring = r;
	return 0;
}

int group_build_ring(struct sheep *s, const struct ring *prev, const struct sd_node *nodes,
		     size_t nr, struct sd_node *data, size_t *nr_data, struct ring **ring)
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
		pn[i].vnodes = data[i].fixed_vnodes == SD_NODE_VNODES_SET ? data[i].nr_vnodes
			       : s->cl->fmt_vnodes    ? (uint16_t)s->cl->fmt_vnodes
			       : data[i].fixed_vnodes ? data[i].nr_vnodes
						      : 0;
	}
	int ret = ring_build_next(prev, pn, n, ring);
	free(pn);
	return ret;
}
