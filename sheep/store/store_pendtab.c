/* store_pendtab.c - the store's table of prepared two-phase writes, keyed by (oid, idx). */
#include <stdlib.h>

#include "sheep/store/store_priv.h"

static unsigned bucket_of(uint64_t oid, uint8_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 56)) * 0x9E3779B97F4A7C15ULL;
	return (unsigned)(h >> 54) % STORE_PEND_BUCKETS;
}

struct store_pend *store_pend_find(struct store *st, uint64_t oid, uint8_t idx)
{
	pthread_mutex_lock(&st->pend_mu);
	struct store_pend *p = st->pend[bucket_of(oid, idx)];
	while (p && !(p->hdr.oid == oid && p->hdr.idx == idx))
		p = p->next;
	pthread_mutex_unlock(&st->pend_mu);
	return p;
}

static void pend_free(struct store_pend *p)
{
	free(p->data);
	free(p);
}

/* Insert p, replacing (and freeing) any entry of the same fragment. */
void store_pend_put(struct store *st, struct store_pend *p)
{
	pthread_mutex_lock(&st->pend_mu);
	struct store_pend **pp = &st->pend[bucket_of(p->hdr.oid, p->hdr.idx)];
	while (*pp && !((*pp)->hdr.oid == p->hdr.oid && (*pp)->hdr.idx == p->hdr.idx))
		pp = &(*pp)->next;
	struct store_pend *old = *pp;
	if (old) {
		p->next = old->next;
		st->wal.stats.pending--;
	} else {
		p->next = NULL;
	}
	*pp = p;
	st->wal.stats.pending++;
	pthread_mutex_unlock(&st->pend_mu);
	if (old) {
		if (old->hdr.write_id != p->hdr.write_id) /* same id: the same file, rebuilt */
			store_pw_unlink(st, old);
		pend_free(old);
	}
}

/* Drop the entry of (oid, idx): any write when write_id is 0. */
void store_pend_drop(struct store *st, uint64_t oid, uint8_t idx, uint64_t write_id)
{
	pthread_mutex_lock(&st->pend_mu);
	struct store_pend **pp = &st->pend[bucket_of(oid, idx)];
	while (*pp && !((*pp)->hdr.oid == oid && (*pp)->hdr.idx == idx))
		pp = &(*pp)->next;
	struct store_pend *old = *pp;
	if (old && (!write_id || old->hdr.write_id == write_id)) {
		*pp = old->next;
		st->wal.stats.pending--;
	} else {
		old = NULL;
	}
	pthread_mutex_unlock(&st->pend_mu);
	if (old) {
		store_pw_unlink(st, old); /* a whole write's file, when not renamed */
		pend_free(old);
	}
}

void store_pend_free_all(struct store *st)
{
	for (int b = 0; b < STORE_PEND_BUCKETS; b++) {
		while (st->pend[b]) {
			struct store_pend *p = st->pend[b];
			st->pend[b] = p->next;
			pend_free(p);
		}
	}
	st->wal.stats.pending = 0;
}


