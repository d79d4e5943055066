/* store_pendtab.c - the store's table of prepared two-phase writes, keyed by (oid, idx), and the files of whole ones. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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



int store_file_dir(struct store *st, uint64_t oid, const char *name)
{
	int ring = store_md_ring_fd(st, oid);
	struct stat sb;
	if (fstatat(ring, name, &sb, 0) == 0)
		return ring;
	for (int k = 0; k < st->nr_disks; k++)
		if (st->disks[k].state == STORE_DISK_ON && fstatat(st->disks[k].fd, name, &sb, 0) == 0)
			return st->disks[k].fd;
	return ring;
}

void store_pw_name(uint64_t oid, uint8_t idx, uint64_t write_id, char *buf)
{
	char name[STORE_NAME_LEN];
	store_frag_name(oid, idx, name);
	snprintf(buf, STORE_PW_NAME_LEN, ".pw.%s.%016llx", name, (unsigned long long)write_id);
}

void store_pw_unlink(struct store *st, const struct store_pend *p)
{
	if (p->hdr.pend_kind != STORE_PEND_WHOLE || !(p->hdr.pend_flags & STORE_PEND_FILE))
		return;
	char pw[STORE_PW_NAME_LEN];
	store_pw_name(p->hdr.oid, p->hdr.idx, p->hdr.write_id, pw);
	int dirfd = store_file_dir(st, p->hdr.oid, pw);
	struct stat sb;
	if (fstatat(dirfd, pw, &sb, 0) == 0 && unlinkat(dirfd, pw, 0) == 0)
		__atomic_sub_fetch(&st->used, (uint64_t)sb.st_blocks * 512, __ATOMIC_RELAXED);
}
