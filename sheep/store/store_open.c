/* store_open.c - opening and closing the store: directories, the log's replay and writer, space accounting. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

static const uint8_t zero_block[STORE_BLK];

#define NAME_LEN STORE_NAME_LEN

/* ---- open / close ---- */

/* Remove temp files of interrupted creations; sum the space of fragments. */
static int scan_obj_dir(struct store *st, int objfd)
{
	DIR *d = sd_opendirat(objfd, ".");
	if (!d)
		return -errno;
	struct dirent *de;
	bool removed = false;
	while ((de = readdir(d))) {
		uint64_t oid;
		uint8_t idx;
		struct stat sb;
		if (!strncmp(de->d_name, ".pw.", 4)) {
			/* a pending whole write's file: kept while its write is */
			char want[STORE_PW_NAME_LEN], nm[STORE_NAME_LEN];
			struct store_pend *p = NULL;
			if (strlen(de->d_name) == 4 + 19 + 1 + 16) {
				memcpy(nm, de->d_name + 4, 19);
				nm[19] = 0;
				if (store_parse_name(nm, &oid, &idx))
					p = store_pend_find(st, oid, idx);
			}
			if (p) {
				store_pw_name(oid, idx, p->hdr.write_id, want);
				if (!(p->hdr.pend_flags & STORE_PEND_FILE) || strcmp(want, de->d_name))
					p = NULL;
			}
			if (p) {
				if (fstatat(objfd, de->d_name, &sb, 0) == 0)
					st->used += (uint64_t)sb.st_blocks * 512;
			} else {
				sd_info("removing %s of a write no longer pending", de->d_name);
				unlinkat(objfd, de->d_name, 0);
				removed = true;
			}
		} else if (!strncmp(de->d_name, ".tmp.", 5)) {
			sd_info("removing %s left by an interrupted create", de->d_name);
			unlinkat(objfd, de->d_name, 0);
			removed = true;
		} else if (store_parse_name(de->d_name, &oid, &idx) &&
			   fstatat(objfd, de->d_name, &sb, 0) == 0) {
			st->used += (uint64_t)sb.st_blocks * 512;
		}
	}
	closedir(d);
	if (removed && !st->nosync && fsync(objfd))
		return -errno;
	return 0;
}

static int mkdir_p(int dirfd, const char *path)
{
	if (mkdirat(dirfd, path, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* An existing directory under objfd, opened; -ENOENT when absent. */
static int open_subdir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int store_open_config(const struct store_config *cfg, struct store **out)
{
	if (!cfg || !cfg->dir || !*cfg->dir || !out)
		return -EINVAL;
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->objfd = st->jdirfd = st->pendfd = -1;
	pthread_rwlock_init(&st->md_rw, NULL);
	st->wal.fd[0] = st->wal.fd[1] = -1;
	for (int i = 0; i < STORE_NR_STRIPES; i++)
		pthread_rwlock_init(&st->stripes[i].lock, NULL);
	pthread_mutex_init(&st->pend_mu, NULL);
	store_fdcache_init(st);
	st->nosync = cfg->nosync;
	st->zero_crc = sd_crc32c(0, zero_block, STORE_BLK);
	const char *dir = cfg->dir;
	int r = -ENOMEM;
	st->dir = strdup(dir);
	if (!st->dir)
		goto fail;
	if ((r = mkdir_p(AT_FDCWD, dir)))
		goto fail;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		goto fail;
	}
	r = mkdir_p(dfd, "obj");
	if (r == 0) {
		st->objfd = openat(dfd, "obj", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (st->objfd < 0)
			r = -errno;
	}
	close(dfd);
	if (r || (r = store_md_init(st, cfg)))
		goto fail;
	/* Stores from before the log: their intent journals and pending files. */
	st->jdirfd = open_subdir(st->objfd, ".journal");
	st->pendfd = open_subdir(st->objfd, ".pend");
	if (st->jdirfd >= 0 && (r = store_journal_replay_all(st)))
		goto fail;
	/* The log: replayed over the files, pending files of old stores
	 * loaded, checkpointed (which re-logs them), its writer started. */
	if ((r = store_wal_open(st, cfg->wal_dir ? cfg->wal_dir : dir,
				cfg->wal_size ? cfg->wal_size : STORE_WAL_DEFAULT_SIZE)) ||
	    (r = store_wal_replay(st)) || (r = store_pend_load_legacy(st)) ||
	    (r = store_wal_start(st)))
		goto fail;
	store_pend_legacy_clear(st);
	for (int i = 0; i < st->nr_disks; i++)
		if (st->disks[i].state == STORE_DISK_ON && (r = scan_obj_dir(st, st->disks[i].fd)))
			goto fail;
	*out = st;
	return 0;
fail:
	sd_err("cannot open the store in %s: %s", dir, strerror(-r));
	store_close(st);
	return r;
}

int store_open(const char *dir, bool nosync, struct store **out)
{
	struct store_config cfg = {.dir = dir, .nosync = nosync};
	return store_open_config(&cfg, out);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_wal_close(st);
	store_fdcache_drop_all(st);
	pthread_mutex_destroy(&st->fd_mu);
	store_pend_free_all(st);
	for (int i = 0; i < STORE_NR_STRIPES; i++)
		pthread_rwlock_destroy(&st->stripes[i].lock);
	pthread_mutex_destroy(&st->pend_mu);
	store_md_close(st);
	if (st->jdirfd >= 0)
		close(st->jdirfd);
	if (st->pendfd >= 0)
		close(st->pendfd);
	if (st->objfd >= 0)
		close(st->objfd);
	free(st->dir);
	free(st);
}

