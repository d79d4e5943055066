/* store_write.c - mutations of the store: range writes, creations, replacements and removals, each a log record applied once durable. */
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

#define NAME_LEN STORE_NAME_LEN

static int check_meta(const struct store *st, const struct store_meta *meta)
{
	if (!st || !meta || meta->frag_size == 0 || meta->frag_size > STORE_FRAG_MAX)
		return -EINVAL;
	return 0;
}

/* Build dirfd/name as a complete fragment file: header h, blocks of sp
 * (zeros elsewhere), not synced. Returns its fd, or -errno with the file
 * removed. */
static int build_file_span(struct store *st, int dirfd, const char *name,
			   const struct store_frag_hdr *h, const struct store_span *sp)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	uint64_t nblk = ((uint64_t)h->frag_size + STORE_BLK - 1) >> STORE_BLK_SHIFT;
	int r = 0;
	if (ftruncate(fd, (off_t)(h->data_off + nblk * STORE_BLK)))
		r = -errno;
	if (!r)
		r = store_apply(st, fd, h, sp->first, sp->n, sp->crcs, sp->zero, sp->iov, sp->niov,
				true);
	if (r) {
		close(fd);
		unlinkat(dirfd, name, 0);
		return r;
	}
	return fd;
}

/* The payload of a WAL_WRITE / WAL_CREATE record for (nh, sp): iov[0] the
 * metadata (caller frees *meta), then the blocks. Returns niov. */
static int blocks_record(const struct store_frag_hdr *nh, const struct store_span *sp,
			 uint64_t pend_wid, uint8_t **meta, struct iovec *iov)
{
	size_t mlen = sizeof(struct store_wal_blocks) + (size_t)sp->n * 5;
	mlen = (mlen + 7) & ~(size_t)7;
	uint8_t *m = calloc(1, mlen);
	if (!m)
		return -ENOMEM;
	struct store_wal_blocks *wb = (struct store_wal_blocks *)m;
	wb->hdr = *nh;
	wb->first = sp->first;
	wb->n = sp->n;
	wb->pend_wid = pend_wid;
	if (sp->n) {
		memcpy(m + sizeof(*wb), sp->crcs, (size_t)sp->n * 4);
		memcpy(m + sizeof(*wb) + (size_t)sp->n * 4, sp->zero, sp->n);
	}
	*meta = m;
	iov[0] = (struct iovec){m, mlen};
	for (int i = 0; i < sp->niov; i++)
		iov[1 + i] = sp->iov[i];
	return 1 + sp->niov;
}

int store_write_span(struct store *st, int fd, const struct store_frag_hdr *nh,
		     const struct store_span *sp, uint64_t pend_wid)
{
	uint8_t *meta = NULL;
	struct iovec iov[4];
	int niov = blocks_record(nh, sp, pend_wid, &meta, iov);
	if (niov < 0)
		return niov;
	/* A commit of a prepared write need not wait for the sync: the
	 * prepared record is durable (store.h). */
	int r = pend_wid ? store_wal_append_lazy(st, WAL_WRITE, iov, niov)
			 : store_wal_append(st, WAL_WRITE, iov, niov);
	free(meta);
	if (r)
		return r;
	store_wal_note(st, nh->oid, nh->idx);
	if (store_crash_at(st, STORE_CRASH_AFTER_INTENT)) {
		wal_set_crashed(&st->wal);
		store_wal_applied(st);
		return -ECANCELED;
	}
	/* Space used changes only with blocks: a header alone (a version-only
	 * commit, three of them per 4:2 range write) lies in the file's first
	 * block, always allocated, so it costs no fstat either side. */
	uint64_t before = sp->n ? store_disk_bytes(fd) : 0;
	r = store_apply(st, fd, nh, sp->first, sp->n, sp->crcs, sp->zero, sp->iov, sp->niov, false);
	if (r == -ECANCELED)
		wal_set_crashed(&st->wal);
	uint64_t after = sp->n ? store_disk_bytes(fd) : 0;
	__atomic_add_fetch(&st->used, after - before, __ATOMIC_RELAXED); /* wraps when it shrank */
	store_wal_applied(st);
	return r;
}

/*
 * A whole fragment (header h, buf at [off, off+len), zeros elsewhere)
 * replaces any old one. Its bytes are written once, to the temp file
 * .tmp.<name>, which is synced; then a small WAL_INSTALL record (the new
 * header, whose random uuid names that file) is made durable, and the
 * temp file is renamed into place. A crash before the record is durable
 * leaves the old fragment (the temp file is removed at open); after it,
 * replay renames the temp file if the rename was lost, and the record
 * supersedes every earlier record of the fragment, so none replays over
 * the new file. The commit of a pending whole write (type WAL_COMMIT,
 * whose bytes are already in the log in its WAL_PREPARE) logs a
 * WAL_COMMIT record instead and does not sync the file; replaying (true
 * when called by replay of that record) logs nothing. The caller holds
 * the stripe lock.
 */
int store_put_whole(struct store *st, const struct store_frag_hdr *h, const void *buf,
		    uint32_t off, uint32_t len, enum store_wal_type type, bool replaying)
{
	char name[NAME_LEN], tmp[NAME_LEN + 8];
	store_frag_name(h->oid, h->idx, name);
	snprintf(tmp, sizeof(tmp), ".tmp.%s", name);
	struct store_span sp;
	int r = store_span_prepare(st, -1, h, buf, off, len, &sp);
	if (r)
		return r;
	bool install = !replaying && type != WAL_COMMIT;
	struct stat sb;
	int olddir = store_md_dirfd(st, h->oid, name), dirfd = store_md_ring_fd(st, h->oid);
	uint64_t old_bytes = fstatat(olddir, name, &sb, 0) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
	int fd = build_file_span(st, dirfd, tmp, h, &sp);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	if (!replaying && store_crash_at(st, STORE_CRASH_BEFORE_RENAME)) {
		wal_set_crashed(&st->wal);
		r = -ECANCELED;
		goto out;
	}
	bool logged = false;
	if (install) {
		if (!st->nosync && fdatasync(fd)) {
			r = -errno;
			goto out_unlink;
		}
		struct store_wal_install ins = {.hdr = *h};
		struct iovec iov = {&ins, sizeof(ins)};
		if ((r = store_wal_append(st, WAL_INSTALL, &iov, 1)) != 0)
			goto out_unlink;
	} else if (!replaying) {
		struct store_wal_ref ref = {.oid = h->oid, .idx = h->idx, .version = h->version,
					    .write_id = h->write_id};
		struct iovec riov = {&ref, sizeof(ref)};
		if ((r = store_wal_append_lazy(st, WAL_COMMIT, &riov, 1)) != 0)
			goto out_unlink;
	}
	if (!replaying) {
		store_wal_note(st, h->oid, h->idx);
		logged = true;
	}
	if (install && store_crash_at(st, STORE_CRASH_INSTALL_LOGGED)) {
		wal_set_crashed(&st->wal); /* the temp file stays: replay renames it */
		store_wal_applied(st);
		r = -ECANCELED;
		goto out;
	}
	if (renameat(dirfd, tmp, dirfd, name)) {
		r = -errno;
		if (logged)
			store_wal_applied(st);
		if (install)
			goto out; /* logged: replay installs it */
		goto out_unlink;
	}
	store_fdcache_forget(st, h->oid, h->idx);
	if (olddir != dirfd)
		store_md_drop_others(st, name, dirfd);
	__atomic_add_fetch(&st->used, store_disk_bytes(fd) - old_bytes, __ATOMIC_RELAXED);
	if (logged)
		store_wal_applied(st);
	r = 0;
	goto out;
out_unlink:
	unlinkat(dirfd, tmp, 0);
out:
	if (fd >= 0)
		close(fd);
	store_span_free(&sp);
	return r;
}

int store_replay_install(struct store *st, const struct store_frag_hdr *h, uint64_t pend_wid)
{
	char name[NAME_LEN], tmp[STORE_PW_NAME_LEN];
	store_frag_name(h->oid, h->idx, name);
	if (pend_wid)
		store_pw_name(h->oid, h->idx, pend_wid, tmp);
	else
		snprintf(tmp, sizeof(tmp), ".tmp.%s", name);
	int dirfd = store_file_dir(st, h->oid, tmp);
	int fd = openat(dirfd, tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) /* renamed before the crash */
		return errno == ENOENT ? 0 : -errno;
	struct store_frag_hdr cur;
	/* A create's temp file is this record's when its uuid is (random per
	 * creation); a pending write's file is named by its write id. */
	bool mine = store_pread_full(fd, &cur, sizeof(cur), 0) == 0 && store_hdr_check(&cur) == 0 &&
		    cur.oid == h->oid && cur.idx == h->idx &&
		    (pend_wid ? cur.write_id == pend_wid && cur.version == h->version
			      : cur.uuid == h->uuid);
	close(fd);
	if (!mine) /* a later create's, never logged: removed at open */
		return 0;
	if (renameat(dirfd, tmp, dirfd, name))
		return -errno;
	if (st->nr_disks > 1)
		store_md_drop_others(st, name, dirfd);
	store_fdcache_forget(st, h->oid, h->idx);
	return 0;
}

void store_pw_final_hdr(const struct store_pend *p, struct store_frag_hdr *h)
{
	*h = p->hdr;
	h->pend_kind = 0;
	h->pend_expect = 0;
	h->pend_off = h->pend_len = 0;
	h->pend_flags = 0;
	h->wr_touched = 0;
	h->wr_base = 0;
	h->crc = store_hdr_crc(h);
}

int store_pw_build(struct store *st, const struct store_frag_hdr *h, const void *buf,
		   uint32_t off, uint32_t len)
{
	char pw[STORE_PW_NAME_LEN];
	store_pw_name(h->oid, h->idx, h->write_id, pw);
	struct store_span sp;
	int r = store_span_prepare(st, -1, h, buf, off, len, &sp);
	if (r)
		return r;
	int dirfd = store_md_ring_fd(st, h->oid);
	int fd = build_file_span(st, dirfd, pw, h, &sp);
	store_span_free(&sp);
	if (fd < 0)
		return fd;
	if (!st->nosync && fdatasync(fd)) {
		r = -errno;
		unlinkat(dirfd, pw, 0);
	}
	uint64_t bytes = store_disk_bytes(fd);
	close(fd);
	if (!r) /* counted as used from now: the rename keeps it */
		__atomic_add_fetch(&st->used, bytes, __ATOMIC_RELAXED);
	return r;
}

int store_pw_commit(struct store *st, const struct store_frag_hdr *h)
{
	char name[NAME_LEN], pw[STORE_PW_NAME_LEN];
	store_frag_name(h->oid, h->idx, name);
	store_pw_name(h->oid, h->idx, h->write_id, pw);
	struct store_wal_install ins = {.hdr = *h, .pend_wid = h->write_id};
	struct iovec iov = {&ins, sizeof(ins)};
	int r = store_wal_append_lazy(st, WAL_INSTALL, &iov, 1);
	if (r)
		return r;
	store_wal_note(st, h->oid, h->idx);
	if (store_crash_at(st, STORE_CRASH_INSTALL_LOGGED)) {
		wal_set_crashed(&st->wal);
		store_wal_applied(st);
		return -ECANCELED;
	}
	int dirfd = store_file_dir(st, h->oid, pw);
	int olddir = store_md_dirfd(st, h->oid, name);
	struct stat sb;
	uint64_t old_bytes = fstatat(olddir, name, &sb, 0) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
	if (renameat(dirfd, pw, dirfd, name)) {
		r = -errno;
		/* Renamed already (a commit whose record a crash lost)? */
		struct store_frag_hdr cur;
		int fd = r == -ENOENT ? openat(olddir, name, O_RDONLY | O_CLOEXEC) : -1;
		if (fd >= 0) {
			if (store_pread_full(fd, &cur, sizeof(cur), 0) == 0 &&
			    cur.version == h->version && cur.write_id == h->write_id)
				r = 0;
			close(fd);
		}
		store_wal_applied(st);
		return r;
	}
	store_fdcache_forget(st, h->oid, h->idx);
	if (olddir != dirfd)
		store_md_drop_others(st, name, dirfd);
	__atomic_sub_fetch(&st->used, old_bytes, __ATOMIC_RELAXED);
	store_wal_applied(st);
	return 0;
}

int store_replay_whole(struct store *st, const struct store_frag_hdr *h,
		       const struct store_span *sp)
{
	char name[NAME_LEN], tmp[NAME_LEN + 8];
	store_frag_name(h->oid, h->idx, name);
	snprintf(tmp, sizeof(tmp), ".tmp.%s", name);
	int dirfd = store_md_ring_fd(st, h->oid);
	int fd = build_file_span(st, dirfd, tmp, h, sp);
	if (fd < 0)
		return fd;
	close(fd);
	if (renameat(dirfd, tmp, dirfd, name)) {
		int r = -errno;
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (st->nr_disks > 1)
		store_md_drop_others(st, name, dirfd);
	store_fdcache_forget(st, h->oid, h->idx);
	return 0;
}

/* Create (or, with replace, swap in) a whole fragment. */
static int create_common(struct store *st, const struct store_meta *meta, const void *buf,
			 uint32_t off, uint32_t len, bool replace)
{
	int r = check_meta(st, meta);
	if (r || (r = store_check_range(meta->frag_size, buf, off, len)))
		return r;
	struct store_frag_hdr h;
	store_hdr_init(st, meta, &h);
	char name[NAME_LEN];
	store_frag_name(meta->oid, meta->idx, name);
	struct store_stripe *s = store_stripe_of(st, meta->oid, meta->idx);
	struct stat sb;
	pthread_rwlock_wrlock(&s->lock);
	if (!replace && fstatat(store_md_dirfd(st, meta->oid, name), name, &sb, 0) == 0)
		r = -EEXIST;
	else
		r = store_put_whole(st, &h, buf, off, len, WAL_CREATE, false);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int store_create(struct store *st, const struct store_meta *meta, const void *buf, uint32_t off,
		 uint32_t len)
{
	return create_common(st, meta, buf, off, len, false);
}

int store_replace(struct store *st, const struct store_meta *meta, const void *buf, uint32_t off,
		  uint32_t len)
{
	return create_common(st, meta, buf, off, len, true);
}

/*
 * A range write: the new content of the touched blocks (edges merged with
 * the old bytes) and the new header go to the log as one record; once it
 * is durable they are applied in place. The stripe lock is held
 * throughout, so the file always reflects every record of its fragment.
 */
int store_write_locked(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		       uint64_t new_version, uint64_t write_id, uint64_t pend_wid, uint32_t touched,
		       const struct store_lc *lc, const void *buf, uint32_t off, uint32_t len)
{
	struct store_frag_hdr h;
	struct store_span sp = {0};
	int fd = store_open_frag(st, oid, idx, O_RDWR, &h);
	if (fd < 0)
		return fd;
	int r = store_check_range(h.frag_size, buf, off, len);
	if (r)
		goto out;
	if (expect_version != STORE_ANY_VERSION && expect_version != h.version) {
		r = -ESTALE;
		goto out;
	}
	/* The whole fragment (a 4 MiB write of a replicated object, as
	 * sequential writes make) is written once, as a new file that a small
	 * record installs (store_put_whole), not through the log's bytes
	 * (each logged byte costs two, docs/architecture.md); with a new
	 * uuid, so that replay never takes an older record's temp file for
	 * this one's. Small fragments stay in the log: one record, one sync. */
	bool whole = !pend_wid && off == 0 && len == h.frag_size && len >= STORE_WHOLE_MIN;
	if (!whole && (r = store_span_prepare(st, fd, &h, buf, off, len, &sp)) != 0)
		goto out;
	h.version = new_version;
	h.write_id = write_id;
	h.wr_touched = touched;
	h.wr_base = touched ? expect_version : 0;
	store_hdr_set_lc(&h, lc);
	if (whole)
		h.uuid = store_new_uuid(st);
	h.crc = store_hdr_crc(&h);
	if (whole) {
		store_frag_close(st, oid, idx, fd);
		return store_put_whole(st, &h, buf, 0, len, WAL_CREATE, false);
	}
	r = store_write_span(st, fd, &h, &sp, pend_wid);
out:
	store_span_free(&sp);
	store_frag_close(st, oid, idx, fd);
	return r;
}

int store_write(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		uint64_t new_version, const void *buf, uint32_t off, uint32_t len)
{
	return store_write_lc(st, oid, idx, expect_version, new_version, NULL, buf, off, len);
}

int store_write_lc(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		   uint64_t new_version, const struct store_lc *lc, const void *buf, uint32_t off,
		   uint32_t len)
{
	if (!st || (len && !buf))
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	pthread_rwlock_wrlock(&s->lock);
	int r = store_write_locked(st, oid, idx, expect_version, new_version, 0, 0, 0, lc, buf,
				   off, len);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int store_remove(struct store *st, uint64_t oid, uint8_t idx)
{
	if (!st)
		return -EINVAL;
	char name[NAME_LEN];
	store_frag_name(oid, idx, name);
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	struct stat sb;
	int r = 0;
	pthread_rwlock_wrlock(&s->lock);
	bool had_pend = store_pend_find(st, oid, idx) != NULL;
	int dirfd = store_md_dirfd(st, oid, name);
	if (fstatat(dirfd, name, &sb, 0)) {
		r = -errno;
		if (!had_pend)
			goto out;
	}
	/* Logged first: a crash after the unlink and before the record is
	 * durable cannot happen, so replay never brings the fragment back. */
	struct store_wal_ref ref = {.oid = oid, .idx = idx};
	struct iovec iov = {&ref, sizeof(ref)};
	int w = store_wal_append(st, WAL_REMOVE, &iov, 1);
	if (w) {
		r = w;
		goto out;
	}
	store_wal_note(st, oid, idx);
	store_pend_drop(st, oid, idx, 0); /* a pending write of it goes too */
	if (r == 0) {
		store_fdcache_forget(st, oid, idx);
		if (unlinkat(dirfd, name, 0))
			r = -errno;
		else
			__atomic_sub_fetch(&st->used, (uint64_t)sb.st_blocks * 512, __ATOMIC_RELAXED);
	}
	store_wal_applied(st);
out:
	pthread_rwlock_unlock(&s->lock);
	return r;
}
