/* objlock.c - per-object readers/writer locks local to this gateway; gateway_init/fini. */
#include "sheep/gateway/gateway_priv.h"

/* ---- per-object readers/writer lock, local to this gateway ---- */

struct obj_lock {
	uint64_t oid;
	int readers;
	int writer;
	int waiters;
	/* Waiters of this object only: an unlock wakes no thread waiting for
	 * another object (one shared condition woke every waiter of every
	 * object, each to take objlock_mu and sleep again). */
	pthread_cond_t cond;
	struct obj_lock *next;
};

struct obj_lock *gw_objlock_find(struct sheep *s, uint64_t oid)
{
	for (struct obj_lock *l = s->gw->objlocks; l; l = l->next)
		if (l->oid == oid)
			return l;
	return NULL;
}

void gw_obj_lock(struct sheep *s, uint64_t oid, bool write)
{
	pthread_mutex_lock(&s->gw->objlock_mu);
	struct obj_lock *l = gw_objlock_find(s, oid);
	if (!l) {
		l = calloc(1, sizeof(*l));
		while (!l) {
			/* Out of memory: wait for others to free theirs. */
			pthread_mutex_unlock(&s->gw->objlock_mu);
			usleep(1000);
			pthread_mutex_lock(&s->gw->objlock_mu);
			l = calloc(1, sizeof(*l));
		}
		l->oid = oid;
		pthread_cond_init(&l->cond, NULL);
		l->next = s->gw->objlocks;
		s->gw->objlocks = l;
	}
	l->waiters++;
	while (l->writer || (write && l->readers))
		pthread_cond_wait(&l->cond, &s->gw->objlock_mu);
	l->waiters--;
	if (write)
		l->writer = 1;
	else
		l->readers++;
	pthread_mutex_unlock(&s->gw->objlock_mu);
}

void gw_obj_unlock(struct sheep *s, uint64_t oid, bool write)
{
	pthread_mutex_lock(&s->gw->objlock_mu);
	struct obj_lock *l = gw_objlock_find(s, oid);
	if (write)
		l->writer = 0;
	else
		l->readers--;
	if (!l->writer && !l->readers && !l->waiters) {
		for (struct obj_lock **pp = &s->gw->objlocks; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
		pthread_cond_destroy(&l->cond);
		free(l);
	} else if (!l->writer && !l->readers) {
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&s->gw->objlock_mu);
}

int gateway_init(struct sheep *s)
{
	s->gw = calloc(1, sizeof(*s->gw));
	if (!s->gw)
		return -ENOMEM;
	pthread_mutex_init(&s->gw->objlock_mu, NULL);
	gw_vcache_init(s);
	int r = peer_pool_init(s);
	return r ? r : gw_commitq_init(s);
}

void gateway_fini(struct sheep *s)
{
	if (!s->gw)
		return;
	gw_commitq_fini(s);
	peer_pool_fini(s);
	gw_vcache_fini(s);
	pthread_mutex_destroy(&s->gw->objlock_mu);
	free(s->gw);
	s->gw = NULL;
}
