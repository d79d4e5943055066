/* store_fdcache.c - a bounded cache of open fragment files, so a store call reuses a descriptor
 * instead of opening and closing the file each time. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "sheep/store/store_priv.h"

/*
 * Direct-mapped: fragment (oid, idx) may live only in slot hash(oid, idx),
 * so at most STORE_FDCACHE_SLOTS descriptors stay open. A slot in use by
 * another call (refs > 0) is not taken over: the newcomer's descriptor is
 * then closed at its store_frag_close(). Every call that renames a file
 * over a fragment's name or unlinks it holds the fragment's stripe lock
 * for writing and calls store_fdcache_forget() before releasing it; every
 * user of a descriptor holds that lock (shared or exclusive) while it
 * uses it, so a cached descriptor always names the fragment's current
 * file. Forgetting a slot still in use marks it dead: its descriptor is
 * closed by the last store_frag_close().
 */

static unsigned slot_of(uint64_t oid, uint8_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 59) ^ idx) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 40) % STORE_FDCACHE_SLOTS;
}

static int read_checked_hdr(int fd, uint64_t oid, uint8_t idx, struct store_frag_hdr *h)
{
	int r = store_pread_full(fd, h, sizeof(*h), 0);
	if (!r)
		r = store_hdr_check(h);
	if (r == 0 && (h->oid != oid || h->idx != idx))
		r = -EIO;
	if (r == -EIO)
		sd_err("fragment %016" PRIx64 "_%02x: bad header", oid, idx);
	return r;
}

int store_open_frag(struct store *st, uint64_t oid, uint8_t idx, int flags,
		    struct store_frag_hdr *h)
{
	struct store_fdslot *s = &st->fdc[slot_of(oid, idx)];
	int fd = -1;
	pthread_mutex_lock(&st->fd_mu);
	if (s->fd >= 0 && !s->dead && s->oid == oid && s->idx == idx) {
		s->refs++;
		fd = s->fd;
		st->fd_hits++;
	}
	pthread_mutex_unlock(&st->fd_mu);
	/* A file unlinked behind the store's back (an operator, a test) is
	 * not served from the cache: one fstat, no path lookup. */
	struct stat sb;
	if (fd >= 0 && (fstat(fd, &sb) || sb.st_nlink == 0)) {
		store_frag_close(st, oid, idx, fd);
		store_fdcache_forget(st, oid, idx);
		fd = -1;
	}
	if (fd < 0) {
		char name[STORE_NAME_LEN];
		store_frag_name(oid, idx, name);
		/* Read-write whatever the caller asked: the next caller may write. */
		int dirfd = store_md_dirfd(st, oid, name);
		fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == EACCES)
			fd = openat(dirfd, name, flags | O_CLOEXEC);
		if (fd < 0) {
			if (errno == EIO)
				store_md_note_eio(st);
			return -errno;
		}
		pthread_mutex_lock(&st->fd_mu);
		st->fd_opens++;
		if (s->fd < 0 || s->refs == 0) {
			if (s->fd >= 0)
				close(s->fd);
			*s = (struct store_fdslot){.oid = oid, .idx = idx, .fd = fd, .refs = 1};
		}
		pthread_mutex_unlock(&st->fd_mu);
	}
	int r = read_checked_hdr(fd, oid, idx, h);
	if (r) {
		store_frag_close(st, oid, idx, fd);
		store_fdcache_forget(st, oid, idx);
		return r;
	}
	return fd;
}

void store_frag_close(struct store *st, uint64_t oid, uint8_t idx, int fd)
{
	struct store_fdslot *s = &st->fdc[slot_of(oid, idx)];
	pthread_mutex_lock(&st->fd_mu);
	if (s->fd == fd && s->oid == oid && s->idx == idx && s->refs > 0) {
		if (--s->refs == 0 && s->dead) {
			close(s->fd);
			*s = (struct store_fdslot){.fd = -1};
		}
		fd = -1;
	}
	pthread_mutex_unlock(&st->fd_mu);
	if (fd >= 0)
		close(fd); /* never cached: its slot was busy */
}

void store_fdcache_forget(struct store *st, uint64_t oid, uint8_t idx)
{
	struct store_fdslot *s = &st->fdc[slot_of(oid, idx)];
	pthread_mutex_lock(&st->fd_mu);
	if (s->fd >= 0 && s->oid == oid && s->idx == idx) {
		if (s->refs == 0) {
			close(s->fd);
			*s = (struct store_fdslot){.fd = -1};
		} else {
			s->dead = true;
		}
	}
	pthread_mutex_unlock(&st->fd_mu);
}

void store_fdcache_init(struct store *st)
{
	pthread_mutex_init(&st->fd_mu, NULL);
	for (int i = 0; i < STORE_FDCACHE_SLOTS; i++)
		st->fdc[i] = (struct store_fdslot){.fd = -1};
}

void store_fdcache_drop_all(struct store *st)
{
	pthread_mutex_lock(&st->fd_mu);
	for (int i = 0; i < STORE_FDCACHE_SLOTS; i++) {
		struct store_fdslot *s = &st->fdc[i];
		if (s->fd < 0)
			continue;
		if (s->refs == 0) {
			close(s->fd);
			*s = (struct store_fdslot){.fd = -1};
		} else {
			s->dead = true;
		}
	}
	pthread_mutex_unlock(&st->fd_mu);
}

uint64_t store_test_fd_opens(struct store *st)
{
	pthread_mutex_lock(&st->fd_mu);
	uint64_t n = st->fd_opens;
	pthread_mutex_unlock(&st->fd_mu);
	return n;
}
