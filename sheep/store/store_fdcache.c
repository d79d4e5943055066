/* store_fdcache.c - a bounded cache of open fragment files, so a store call reuses a descriptor
 * instead of opening and closing the file each time. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "sheep/store/store_priv.h"

/*
 * Set-associative: fragment (oid, idx) may live only in set hash(oid,
 * idx), in any of its st->fd_ways ways; a new descriptor takes an empty
 * way, else the least recently used one nobody is using. So at most
 * STORE_FDCACHE_SETS * fd_ways descriptors stay open. A set whose every
 * way is in use (refs > 0) takes nothing: the newcomer's descriptor is
 * then closed at its store_frag_close(). Every call that renames a file
 * over a fragment's name or unlinks it holds the fragment's stripe lock
 * for writing and calls store_fdcache_forget() before releasing it; every
 * user of a descriptor holds that lock (shared or exclusive) while it
 * uses it, so a cached descriptor always names the fragment's current
 * file. Forgetting a slot still in use marks it dead: its descriptor is
 * closed by the last store_frag_close().
 *
 * The hash mixes every bit of oid and idx. It used to be bits 40..47 of
 * (oid ^ idx ^ idx << 59) * golden ratio, where idx << 59 never reaches
 * those bits: fragments whose oid ^ idx agree (object o's fragment 3 and
 * object o ^ 1's fragment 2, as one sheep holds them) shared a slot and
 * evicted each other on every call. A 4:2 volume of 64 objects on six
 * sheep kept 39 of each sheep's 64 fragments reopening (0.7 opens per
 * client write per sheep).
 */

static unsigned set_of(uint64_t oid, uint8_t idx)
{
	uint64_t h = oid ^ ((uint64_t)idx + 1) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (unsigned)(h % STORE_FDCACHE_SETS);
}

static struct store_fdslot *set_base(struct store *st, uint64_t oid, uint8_t idx)
{
	return &st->fdc[set_of(oid, idx) * STORE_FDCACHE_WAYS];
}

static bool holds(const struct store_fdslot *s, uint64_t oid, uint8_t idx)
{
	return s->fd >= 0 && !s->dead && s->oid == oid && s->idx == idx;
}

int store_fdcache_get(struct store *st, uint64_t oid, uint8_t idx)
{
	struct store_fdslot *set = set_base(st, oid, idx);
	int fd = -1;
	pthread_mutex_lock(&st->fd_mu);
	for (int w = 0; w < st->fd_ways; w++) {
		if (holds(&set[w], oid, idx)) {
			set[w].refs++;
			set[w].used = ++st->fd_tick;
			fd = set[w].fd;
			st->fd_hits++;
			break;
		}
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
	return fd;
}

void store_fdcache_add(struct store *st, uint64_t oid, uint8_t idx, int fd)
{
	struct store_fdslot *set = set_base(st, oid, idx), *to = NULL;
	pthread_mutex_lock(&st->fd_mu);
	st->fd_opens++;
	for (int w = 0; w < st->fd_ways; w++) {
		struct store_fdslot *s = &set[w];
		if (holds(s, oid, idx)) {
			/* Two calls missed at once: the cached one stays unless idle. */
			to = s->refs == 0 ? s : NULL;
			break;
		}
		if (s->fd < 0) {
			if (!to || to->fd >= 0)
				to = s;
		} else if (s->refs == 0 && (!to || (to->fd >= 0 && s->used < to->used))) {
			to = s;
		}
	}
	if (to) {
		if (to->fd >= 0)
			close(to->fd);
		*to = (struct store_fdslot){
		    .oid = oid, .idx = idx, .fd = fd, .refs = 1, .used = ++st->fd_tick};
	}
	pthread_mutex_unlock(&st->fd_mu);
}

void store_frag_close(struct store *st, uint64_t oid, uint8_t idx, int fd)
{
	struct store_fdslot *set = set_base(st, oid, idx);
	pthread_mutex_lock(&st->fd_mu);
	for (int w = 0; w < STORE_FDCACHE_WAYS; w++) {
		struct store_fdslot *s = &set[w];
		if (s->fd == fd && s->oid == oid && s->idx == idx && s->refs > 0) {
			if (--s->refs == 0 && s->dead) {
				close(s->fd);
				*s = (struct store_fdslot){.fd = -1};
			}
			fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&st->fd_mu);
	if (fd >= 0)
		close(fd); /* never cached: its set was busy */
}

static void forget_slot(struct store_fdslot *s)
{
	if (s->refs == 0) {
		close(s->fd);
		*s = (struct store_fdslot){.fd = -1};
	} else {
		s->dead = true;
	}
}

void store_fdcache_forget(struct store *st, uint64_t oid, uint8_t idx)
{
	struct store_fdslot *set = set_base(st, oid, idx);
	pthread_mutex_lock(&st->fd_mu);
	for (int w = 0; w < STORE_FDCACHE_WAYS; w++)
		if (holds(&set[w], oid, idx))
			forget_slot(&set[w]);
	pthread_mutex_unlock(&st->fd_mu);
}

/* Ways in use: all four (1,024 descriptors) when the descriptor limit
 * leaves room for them beside the connections and the log; one (256, as
 * before) under the common default limit of 1,024. sheep raises its soft
 * limit to the hard one at start (server/main.c). */
void store_fdcache_init(struct store *st)
{
	pthread_mutex_init(&st->fd_mu, NULL);
	for (int i = 0; i < STORE_FDCACHE_SLOTS; i++)
		st->fdc[i] = (struct store_fdslot){.fd = -1};
	struct rlimit rl;
	long ways = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t spare = rl.rlim_cur == RLIM_INFINITY ? (rlim_t)1 << 30 : rl.rlim_cur;
		ways = spare > 768 ? (long)((spare - 768) / STORE_FDCACHE_SETS) : 1;
	}
	st->fd_ways = (int)SD_MAX(1, SD_MIN(ways, STORE_FDCACHE_WAYS));
}

void store_fdcache_drop_all(struct store *st)
{
	pthread_mutex_lock(&st->fd_mu);
	for (int i = 0; i < STORE_FDCACHE_SLOTS; i++)
		if (st->fdc[i].fd >= 0 && !st->fdc[i].dead)
			forget_slot(&st->fdc[i]);
	pthread_mutex_unlock(&st->fd_mu);
}

int store_test_fd_set(uint64_t oid, uint8_t idx)
{
	return (int)set_of(oid, idx);
}

int store_test_fd_capacity(struct store *st)
{
	return STORE_FDCACHE_SETS * st->fd_ways;
}

uint64_t store_test_fd_opens(struct store *st)
{
	pthread_mutex_lock(&st->fd_mu);
	uint64_t n = st->fd_opens;
	pthread_mutex_unlock(&st->fd_mu);
	return n;
}
