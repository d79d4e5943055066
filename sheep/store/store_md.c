/* store_md.c - several disks per sheep (Sheepdog's "md"): fragment files spread over directories by
 * capacity, plug, unplug and failed disks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

/*
 * Layout. Without disks listed the store has one disk, dir/obj (shown as
 * dir). With `sheep DIR,DISK1,DISK2` each DISKn holds fragment files
 * directly (as Sheepdog's md disks hold objects) plus .md_size, the
 * disk's weight: its filesystem's free space plus what the store already
 * kept there when it was first plugged, kept so that the ring does not
 * move as the disk fills. Each disk owns one ring point per 128 MiB of
 * weight (at least one), points at successive FNV-1a hashes of its path;
 * an object goes to the disk owning the first point at or after the hash
 * of its id, so every fragment of one object on this sheep shares a disk
 * and a disk joining or leaving moves only the objects whose points
 * changed hands.
 */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t oid_hash(uint64_t oid)
{
	return mix64(fnv_64a_u64(oid, FNV1A_64_INIT));
}

static int vdisk_cmp(const void *a, const void *b)
{
	const struct store_vdisk *x = a, *y = b;
	return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : x->disk - y->disk;
}

static uint64_t vdisks_of(const struct store_disk *d)
{
	uint64_t n = (d->space + STORE_MD_VDISK - 1) / STORE_MD_VDISK;
	return n < 1 ? 1 : n > (1u << 16) ? (1u << 16) : n;
}

/* Rebuild the ring from the disks that are on. Caller holds everything. */
static int build_ring(struct store *st)
{
	size_t total = 0;
	for (int i = 0; i < st->nr_disks; i++)
		if (st->disks[i].state == STORE_DISK_ON)
			total += vdisks_of(&st->disks[i]);
	struct store_vdisk *r = calloc(total ? total : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	size_t k = 0;
	for (int i = 0; i < st->nr_disks; i++) {
		const struct store_disk *d = &st->disks[i];
		if (d->state != STORE_DISK_ON)
			continue;
		uint64_t h = fnv_64a_buf(d->path, strlen(d->path), FNV1A_64_INIT);
		for (uint64_t j = 0, n = vdisks_of(d); j < n; j++) {
			h = fnv_64a_u64(j, h);
			r[k].hash = mix64(h);
			r[k++].disk = i;
		}
	}
	qsort(r, k, sizeof(*r), vdisk_cmp);
	free(st->ring);
	st->ring = r;
	st->ring_n = k;
	return 0;
}

static int ring_disk(const struct store *st, uint64_t oid)
{
	if (st->ring_n == 0)
		return 0;
	uint64_t h = oid_hash(oid);
	size_t lo = 0, hi = st->ring_n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return st->ring[lo == st->ring_n ? 0 : lo].disk;
}

int store_md_disk_of(struct store *st, uint64_t oid)
{
	pthread_rwlock_rdlock(&st->md_rw);
	int d = ring_disk(st, oid), pos = 0;
	for (int i = 0; i < d; i++)
		pos += st->disks[i].state == STORE_DISK_ON;
	pthread_rwlock_unlock(&st->md_rw);
	return pos;
}

const char *store_md_ring_path(const struct store *st, uint64_t oid)
{
	return st->disks[ring_disk(st, oid)].path;
}

int store_md_space(struct store *st, uint64_t *total, uint64_t *avail)
{
	uint64_t done[STORE_MD_MAX];
	int nd = 0;
	*total = *avail = 0;
	pthread_rwlock_rdlock(&st->md_rw);
	int r = 0;
	for (int i = 0; i < st->nr_disks; i++) {
		struct store_disk *d = &st->disks[i];
		if (d->state != STORE_DISK_ON)
			continue;
		bool seen = false;
		for (int j = 0; j < nd; j++)
			seen |= done[j] == d->dev;
		if (seen)
			continue;
		done[nd++] = d->dev;
		struct statvfs v;
		if (fstatvfs(d->fd, &v)) {
			r = -errno;
			break;
		}
		*total += (uint64_t)v.f_blocks * v.f_frsize;
		*avail += (uint64_t)v.f_bavail * v.f_frsize;
	}
	pthread_rwlock_unlock(&st->md_rw);
	return r;
}

int store_md_ring_fd(struct store *st, uint64_t oid)
{
	return st->disks[ring_disk(st, oid)].fd;
}

static int nr_on(const struct store *st)
{
	int n = 0;
	for (int i = 0; i < st->nr_disks; i++)
		n += __atomic_load_n(&st->disks[i].state, __ATOMIC_RELAXED) == STORE_DISK_ON;
	return n;
}

int store_md_dirfd(struct store *st, uint64_t oid, const char *name)
{
	int ring = ring_disk(st, oid);
	int fd = st->disks[ring].fd;
	if (st->nr_disks <= 1)
		return fd;
	struct stat sb;
	if (fstatat(fd, name, &sb, 0) == 0)
		return fd;
	for (int i = 0; i < st->nr_disks; i++)
		if (i != ring && st->disks[i].state == STORE_DISK_ON &&
		    fstatat(st->disks[i].fd, name, &sb, 0) == 0)
			return st->disks[i].fd;
	return fd;
}

void store_md_drop_others(struct store *st, const char *name, int keep_fd)
{
	for (int i = 0; i < st->nr_disks; i++)
		if (st->disks[i].fd != keep_fd && st->disks[i].state == STORE_DISK_ON)
			unlinkat(st->disks[i].fd, name, 0);
}

int store_md_syncfs(struct store *st)
{
	if (st->nosync)
		return 0;
	uint64_t done[STORE_MD_MAX];
	int nd = 0;
	for (int i = 0; i < st->nr_disks; i++) {
		struct store_disk *d = &st->disks[i];
		if (__atomic_load_n(&d->state, __ATOMIC_RELAXED) != STORE_DISK_ON)
			continue;
		bool seen = false;
		for (int j = 0; j < nd; j++)
			seen |= done[j] == d->dev;
		if (seen)
			continue;
		done[nd++] = d->dev;
		if (syncfs(d->fd)) {
			int e = errno;
			store_md_note_eio(st);
			return -e;
		}
	}
	return 0;
}

void store_md_note_eio(struct store *st)
{
	__atomic_store_n(&st->md_suspect, 1, __ATOMIC_RELAXED);
}

/* ---- disks ---- */

/* path without trailing slashes, made absolute if it exists. */
static int norm_path(const char *in, char *out, size_t len)
{
	if (!in || !*in || strlen(in) >= len)
		return -EINVAL;
	char buf[PATH_MAX];
	if (realpath(in, buf))
		in = buf;
	snprintf(out, len, "%s", in);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return 0;
}

static int find_disk(const struct store *st, const char *path)
{
	for (int i = 0; i < st->nr_disks; i++)
		if (!strcmp(st->disks[i].path, path))
			return i;
	return -1;
}

/* Bytes of fragment files in directory fd and their count. */
static void dir_usage(int fd, uint64_t *bytes, uint32_t *count)
{
	*bytes = 0;
	if (count)
		*count = 0;
	DIR *d = sd_opendirat(fd, ".");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t oid;
		uint8_t idx;
		struct stat sb;
		if (store_parse_name(de->d_name, &oid, &idx) &&
		    fstatat(fd, de->d_name, &sb, 0) == 0) {
			*bytes += (uint64_t)sb.st_blocks * 512;
			if (count)
				(*count)++;
		}
	}
	closedir(d);
}

/* Open (creating it if needed) disk path; its weight from .md_size, or
 * decided now and written there. */
static int open_disk(struct store *st, const char *path, struct store_disk *d)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	/* DIR itself (plugged back after an unplug): its fragments are in DIR/obj. */
	bool meta = !strcmp(path, st->dir);
	int fd = meta ? dup(st->objfd) : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	struct statvfs v;
	if (fstat(fd, &sb) || fstatvfs(fd, &v)) {
		int e = -errno;
		close(fd);
		return e;
	}
	uint64_t space = 0;
	char buf[32] = "";
	int sfd = openat(fd, ".md_size", O_RDONLY | O_CLOEXEC);
	if (sfd >= 0) {
		ssize_t n = read(sfd, buf, sizeof(buf) - 1);
		close(sfd);
		if (n > 0) {
			buf[n] = '\0';
			space = strtoull(buf, NULL, 10);
		}
	}
	if (!space) {
		uint64_t own;
		dir_usage(fd, &own, NULL);
		space = (uint64_t)v.f_bavail * v.f_frsize + own;
		if (!space)
			space = 1;
		int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", space);
		sfd = openat(fd, ".md_size", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (sfd < 0 || write(sfd, buf, (size_t)n) != n || (!st->nosync && fsync(sfd))) {
			int e = sfd < 0 || errno ? -errno : -EIO;
			if (sfd >= 0)
				close(sfd);
			close(fd);
			return e ? e : -EIO;
		}
		close(sfd);
	}
	d->path = strdup(path);
	if (!d->path) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	d->dev = (uint64_t)sb.st_dev;
	d->space = space;
	d->state = STORE_DISK_ON;
	return 0;
}

/* Copy fragment file name from dir fd src to dir fd dst (another
 * filesystem): sparse, synced, then renamed into place. */
static int copy_frag(struct store *st, int src, int dst, const char *name)
{
	char tmp[300];
	/* Not .tmp.: that may be a create's synced file its log record names,
	 * which replay (after the moves) renames into place. */
	if (snprintf(tmp, sizeof(tmp), ".mv.%s", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int in = openat(src, name, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = openat(dst, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = -errno;
		close(in);
		return e;
	}
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	int r = buf ? 0 : -ENOMEM;
	uint64_t off = 0;
	while (r == 0) {
		ssize_t n = pread(in, buf, CHUNK, (off_t)off);
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		bool zero = true;
		for (ssize_t i = 0; i < n && zero; i++)
			zero = buf[i] == 0;
		if (!zero)
			r = store_pwrite_full(out, buf, (size_t)n, off);
		off += (uint64_t)n;
	}
	free(buf);
	if (r == 0 && ftruncate(out, (off_t)off))
		r = -errno;
	if (r == 0 && !st->nosync && fsync(out))
		r = -errno;
	close(out);
	close(in);
	if (r == 0 && renameat(dst, tmp, dst, name))
		r = -errno;
	if (r) {
		unlinkat(dst, tmp, 0);
		return r;
	}
	if (!st->nosync && fsync(dst))
		return -errno;
	if (unlinkat(src, name, 0))
		return -errno;
	return 0;
}

/* Move every fragment file of disk index from (or of dir fd from_fd when
 * from < 0) whose ring disk is another one. Caller holds everything.
 * Returns the count moved; failures are logged and the file left. */
static uint64_t drain(struct store *st, int from, int from_fd)
{
	int sfd = from >= 0 ? st->disks[from].fd : from_fd;
	uint64_t sdev = 0;
	struct stat sb;
	if (fstat(sfd, &sb) == 0)
		sdev = (uint64_t)sb.st_dev;
	DIR *d = sd_opendirat(sfd, ".");
	if (!d)
		return 0;
	uint64_t moved = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t oid;
		uint8_t idx;
		if (!store_parse_name(de->d_name, &oid, &idx))
			continue;
		int to = ring_disk(st, oid);
		if (to == from)
			continue;
		struct store_disk *t = &st->disks[to];
		int r = sdev == t->dev && renameat(sfd, de->d_name, t->fd, de->d_name) == 0
			    ? 0
			    : copy_frag(st, sfd, t->fd, de->d_name);
		if (r) {
			sd_err("md: cannot move %s to %s: %s", de->d_name, t->path, strerror(-r));
			continue;
		}
		moved++;
	}
	closedir(d);
	if (moved && !st->nosync)
		fsync(sfd);
	return moved;
}

static void recount_used(struct store *st)
{
	uint64_t total = 0;
	for (int i = 0; i < st->nr_disks; i++) {
		if (st->disks[i].state != STORE_DISK_ON)
			continue;
		uint64_t b;
		dir_usage(st->disks[i].fd, &b, NULL);
		total += b;
	}
	__atomic_store_n(&st->used, total, __ATOMIC_RELAXED);
}

static void lock_all(struct store *st)
{
	pthread_rwlock_wrlock(&st->md_rw);
	for (int i = 0; i < STORE_NR_STRIPES; i++)
		pthread_rwlock_wrlock(&st->stripes[i].lock);
}

/* Every stripe is held for writing, so no call uses a cached descriptor: the
 * cache is emptied before files move between disks become visible. */
static void unlock_all(struct store *st)
{
	store_fdcache_drop_all(st);
	for (int i = STORE_NR_STRIPES - 1; i >= 0; i--)
		pthread_rwlock_unlock(&st->stripes[i].lock);
	pthread_rwlock_unlock(&st->md_rw);
}

/* Remove .mv. files of interrupted moves in dir fd (a create's .tmp.
 * files wait for the log's replay, then scan_obj_dir). */
static void clean_tmp(int fd)
{
	DIR *d = sd_opendirat(fd, ".");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, ".mv.", 4)) {
			sd_info("removing %s left by an interrupted move", de->d_name);
			unlinkat(fd, de->d_name, 0);
		}
	closedir(d);
}

/* At open, before the log replays: the disks opened (a bad or duplicate
 * one fails the open), the ring built, and every fragment moved to the
 * disk the ring gives it. Without disks listed: one disk, dir/obj. */
int store_md_init(struct store *st, const struct store_config *cfg)
{
	const char *eio = getenv("SHEEP_TEST_MD_EIO");
	if (eio && *eio && !(st->md_test_eio = strdup(eio)))
		return -ENOMEM;
	if (!cfg->disks || cfg->nr_disks <= 0) {
		struct stat sb;
		if (fstat(st->objfd, &sb))
			return -errno;
		st->disks[0] = (struct store_disk){.path = strdup(st->dir),
						   .fd = st->objfd,
						   .dev = (uint64_t)sb.st_dev,
						   .space = 1,
						   .state = STORE_DISK_ON};
		st->nr_disks = 1;
		if (!st->disks[0].path)
			return -ENOMEM;
		return build_ring(st);
	}
	if (cfg->nr_disks > STORE_MD_MAX)
		return -E2BIG;
	st->md = true;
	for (int i = 0; i < cfg->nr_disks; i++) {
		char p[PATH_MAX];
		int r = norm_path(cfg->disks[i], p, sizeof(p));
		if (r)
			return r;
		if (find_disk(st, p) >= 0) {
			sd_err("md: disk %s listed twice", p);
			return -EEXIST;
		}
		if ((r = open_disk(st, p, &st->disks[st->nr_disks]))) {
			sd_err("md: cannot use disk %s: %s", p, strerror(-r));
			return r;
		}
		st->nr_disks++;
		clean_tmp(st->disks[st->nr_disks - 1].fd);
	}
	int r = build_ring(st);
	if (r)
		return r;
	/* Fragments on a disk the ring no longer gives them (disks listed
	 * differently since the last run, or a store that had none) move
	 * now, before the log replays over them. */
	uint64_t moved = drain(st, -1, st->objfd);
	for (int i = 0; i < st->nr_disks; i++)
		moved += drain(st, i, -1);
	if (moved)
		sd_notice("md: %" PRIu64 " fragment(s) moved to the disk the ring gives them",
			  moved);
	for (int i = 0; i < st->nr_disks; i++)
		sd_info("md: disk %s, weight %" PRIu64 " bytes, %" PRIu64 " ring points",
			st->disks[i].path, st->disks[i].space, vdisks_of(&st->disks[i]));
	return 0;
}

void store_md_close(struct store *st)
{
	for (int i = 0; i < st->nr_disks; i++) {
		if (st->disks[i].fd >= 0 && st->disks[i].fd != st->objfd)
			close(st->disks[i].fd);
		free(st->disks[i].path);
	}
	st->nr_disks = 0;
	free(st->ring);
	st->ring = NULL;
	free(st->md_test_eio);
	st->md_test_eio = NULL;
	pthread_rwlock_destroy(&st->md_rw);
}

int store_md_info(struct store *st, struct store_md_disk *out, int max)
{
	int n = 0;
	pthread_rwlock_rdlock(&st->md_rw);
	for (int i = 0; i < st->nr_disks && n < max; i++) {
		const struct store_disk *d = &st->disks[i];
		if (d->state != STORE_DISK_ON)
			continue;
		struct store_md_disk *o = &out[n++];
		memset(o, 0, sizeof(*o));
		snprintf(o->path, sizeof(o->path), "%s", d->path);
		o->space = d->space;
		dir_usage(d->fd, &o->used, &o->nr_frags);
		struct statvfs v;
		if (fstatvfs(d->fd, &v) == 0)
			o->avail = (uint64_t)v.f_bavail * v.f_frsize;
	}
	pthread_rwlock_unlock(&st->md_rw);
	return n;
}

/* Check the list: normalised into out, each once. */
static int check_list(const char *const *paths, int n, char (*out)[PATH_MAX])
{
	if (!paths || n <= 0 || n > STORE_MD_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		int r = norm_path(paths[i], out[i], PATH_MAX);
		if (r)
			return r;
		for (int j = 0; j < i; j++)
			if (!strcmp(out[i], out[j]))
				return -EEXIST;
	}
	return 0;
}

/* Guarantees in store.h: the list is checked and the new disks opened
 * before anything changes; then the ring changes and fragments move with
 * every stripe locked. */
int store_md_plug(struct store *st, const char *const *paths, int n, uint64_t *moved)
{
	char(*p)[PATH_MAX] = calloc(n > 0 ? (size_t)n : 1, PATH_MAX);
	if (!p)
		return -ENOMEM;
	int r = check_list(paths, n, p);
	pthread_rwlock_rdlock(&st->md_rw);
	int slots = st->nr_disks;
	for (int i = 0; r == 0 && i < n; i++) {
		int k = find_disk(st, p[i]);
		if (k >= 0 && st->disks[k].state == STORE_DISK_ON)
			r = -EEXIST;
		else if (k < 0)
			slots++;
	}
	pthread_rwlock_unlock(&st->md_rw);
	if (r == 0 && slots > STORE_MD_MAX)
		r = -E2BIG;
	struct store_disk nd[STORE_MD_MAX];
	int opened = 0;
	for (; r == 0 && opened < n; opened++)
		if ((r = open_disk(st, p[opened], &nd[opened]))) {
			sd_err("md plug: cannot use %s: %s", p[opened], strerror(-r));
			break;
		}
	if (r) {
		for (int i = 0; i < opened; i++) {
			close(nd[i].fd);
			free(nd[i].path);
		}
		free(p);
		return r;
	}
	lock_all(st);
	for (int i = 0; i < n; i++) {
		int k = find_disk(st, nd[i].path);
		if (k >= 0) { /* plugged again: a fresh slot state */
			if (st->disks[k].fd != st->objfd)
				close(st->disks[k].fd);
			free(st->disks[k].path);
			st->disks[k] = nd[i];
		} else {
			st->disks[st->nr_disks++] = nd[i];
		}
		sd_notice("md: plugged %s (weight %" PRIu64 " bytes)", nd[i].path, nd[i].space);
	}
	uint64_t m = 0;
	r = build_ring(st);
	for (int i = 0; r == 0 && i < st->nr_disks; i++)
		if (st->disks[i].state == STORE_DISK_ON)
			m += drain(st, i, -1);
	recount_used(st);
	unlock_all(st);
	sd_notice("md plug: %" PRIu64 " fragment(s) moved to their new disk", m);
	if (moved)
		*moved = m;
	free(p);
	return r;
}

/* Guarantees in store.h: checked with every stripe locked, then the disks
 * leave the ring and are drained onto the others. */
int store_md_unplug(struct store *st, const char *const *paths, int n, uint64_t *moved)
{
	char(*p)[PATH_MAX] = calloc(n > 0 ? (size_t)n : 1, PATH_MAX);
	if (!p)
		return -ENOMEM;
	int r = check_list(paths, n, p);
	lock_all(st);
	int idx[STORE_MD_MAX];
	for (int i = 0; r == 0 && i < n; i++) {
		idx[i] = find_disk(st, p[i]);
		if (idx[i] < 0 || st->disks[idx[i]].state != STORE_DISK_ON)
			r = -ENOENT;
	}
	if (r == 0 && nr_on(st) - n < 1)
		r = -EBUSY;
	uint64_t m = 0;
	if (r == 0) {
		for (int i = 0; i < n; i++)
			st->disks[idx[i]].state = STORE_DISK_OFF;
		r = build_ring(st);
		for (int i = 0; r == 0 && i < n; i++) {
			uint64_t k = drain(st, idx[i], -1);
			sd_notice("md: unplugged %s: %" PRIu64
				  " fragment(s) moved to the other disks",
				  st->disks[idx[i]].path, k);
			m += k;
		}
		recount_used(st);
	}
	unlock_all(st);
	if (moved)
		*moved = m;
	free(p);
	return r;
}

/* Is disk d failed: its directory removed, not writable, or named by the
 * test hook's file. */
static bool disk_failed(struct store *st, const struct store_disk *d, bool probe)
{
	struct stat sb;
	if (fstat(d->fd, &sb) || sb.st_nlink == 0)
		return true;
	if (st->md_test_eio) {
		char buf[PATH_MAX] = "";
		int fd = open(st->md_test_eio, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '/'))
				n--;
			buf[n > 0 ? n : 0] = '\0';
			if (n > 0 && !strcmp(buf, d->path))
				return true;
		}
	}
	if (!probe)
		return false;
	int fd = openat(d->fd, ".md_probe", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EIO || errno == EROFS || errno == ENOENT || errno == EACCES;
	bool bad = write(fd, "ok\n", 3) != 3;
	close(fd);
	unlinkat(d->fd, ".md_probe", 0);
	return bad;
}

int store_md_check(struct store *st)
{
	if (!st)
		return 0;
	/* The write probe when the store saw an EIO, and every tenth call. */
	bool probe = __atomic_exchange_n(&st->md_suspect, 0, __ATOMIC_RELAXED) != 0 ||
		     __atomic_add_fetch(&st->md_checks, 1, __ATOMIC_RELAXED) % 10 == 0;
	bool bad[STORE_MD_MAX] = {false};
	int nbad = 0;
	pthread_rwlock_rdlock(&st->md_rw);
	int on = nr_on(st);
	for (int i = 0; i < st->nr_disks; i++)
		if (st->disks[i].state == STORE_DISK_ON && disk_failed(st, &st->disks[i], probe))
			bad[i] = true, nbad++;
	pthread_rwlock_unlock(&st->md_rw);
	if (!nbad)
		return 0;
	if (nbad >= on) {
		sd_err("md: every disk of this sheep has failed; keeping the last one");
		return -EBUSY;
	}
	lock_all(st);
	int taken = 0;
	for (int i = 0; i < st->nr_disks; i++)
		if (bad[i] && st->disks[i].state == STORE_DISK_ON) {
			st->disks[i].state = STORE_DISK_FAILED;
			taken++;
			sd_err("md: disk %s failed: unplugged; its fragments come back from peers",
			       st->disks[i].path);
		}
	int r = build_ring(st);
	recount_used(st);
	unlock_all(st);
	return r ? r : taken;
}
