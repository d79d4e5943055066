/* state.c - what other modules read of the cluster state (struct cluster_state stays private to
 * this folder). */
#include "sheep/cluster/group_priv.h"

/* Fill st from s->cl; the caller holds state_lock. */
static void status_locked(struct sheep *s, struct group_status *st)
{
	struct cluster_state *c = s->cl;
	memset(st, 0, sizeof(*st));
	st->synced = c->synced;
	st->quorate = c->quorate;
	st->waiting = c->waiting;
	st->recovery_enabled = c->recovery_enabled;
	st->epoch = c->epoch;
	st->ctime = c->ctime;
	st->def_copies = c->def_copies;
	st->def_policy = c->def_policy;
	st->def_shift = c->def_shift;
	st->nr_epochs = c->nr_epochs;
	st->nr_nodes = c->view ? (uint32_t)c->view->nr_nodes : 0;
	st->nr_zones = c->view ? c->view->nr_zones : 0;
	st->nr_vdis = c->vdis.nr;
}

void group_status(struct sheep *s, struct group_status *st)
{
	pthread_mutex_lock(&s->cl->state_lock);
	status_locked(s, st);
	pthread_mutex_unlock(&s->cl->state_lock);
}

uint32_t group_epoch(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	uint32_t e = s->cl->epoch;
	pthread_mutex_unlock(&s->cl->state_lock);
	return e;
}

struct vdi_table *group_vdis_lock(struct sheep *s, struct group_status *st)
{
	pthread_mutex_lock(&s->cl->state_lock);
	if (st)
		status_locked(s, st);
	return &s->cl->vdis;
}

void group_vdis_unlock(struct sheep *s)
{
	pthread_mutex_unlock(&s->cl->state_lock);
}

int group_epoch_nodes(struct sheep *s, uint32_t epoch, struct sd_node **nodes, size_t *nr,
		      uint64_t *time)
{
	int ret = -ENOENT;
	*nodes = NULL;
	*nr = 0;
	pthread_mutex_lock(&s->cl->state_lock);
	for (size_t i = 0; i < s->cl->nr_epochs; i++) {
		const struct epoch_rec *r = &s->cl->epochs[i];
		if (r->epoch != epoch)
			continue;
		*nodes = calloc(r->nr_nodes ? r->nr_nodes : 1, sizeof(**nodes));
		if (!*nodes) {
			ret = -ENOMEM;
			break;
		}
		memcpy(*nodes, r->nodes, r->nr_nodes * sizeof(**nodes));
		*nr = r->nr_nodes;
		*time = r->time;
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	return ret;
}
