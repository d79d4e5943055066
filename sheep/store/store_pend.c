/* store_pend.c - two-phase writes of the store: prepared writes held in memory and in the log, committed or aborted later. */
/*
 * A prepared write is a WAL_PREPARE record (the new bytes and how to apply
 * them) plus an entry in an in-memory table keyed by (oid, idx); nothing
 * of the fragment changes. A whole write keeps its bytes in a file of
 * its own instead (STORE_PEND_FILE: the complete new fragment file,
 * synced before its record), which its commit renames into place with a
 * WAL_INSTALL record: its bytes are written once. A checkpoint re-logs every entry at the start
 * of the new log file, so a prepared write lives until it is committed,
 * aborted or replaced, across restarts. Commit of a range write is a
 * WAL_WRITE record naming the pending write it consumed; of a whole write
 * a WAL_COMMIT record (replay rebuilds the fragment from the entry);
 * abort a WAL_ABORT record. Entries of one fragment change only under its
 * stripe lock; the table's own mutex guards the buckets.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pend_free(struct store_pend *p)
{
	free(p->data);
	free(p);
}

static uint64_t pend_age(const struct store_pend *p)
{
	uint64_t now = wall_ms();
	return now > p->time_ms ? now - p->time_ms : 0;
}

static int check_meta(const struct store *st, const struct store_meta *meta)
{
	if (!st || !meta || meta->frag_size == 0 || meta->frag_size > STORE_FRAG_MAX)
		return -EINVAL;
	return 0;
}

int store_prepare(struct store *st, const struct store_meta *meta, bool whole,
		  uint64_t expect_version, uint64_t write_id, uint32_t grace_ms, const void *buf,
		  uint32_t off, uint32_t len)
{
	return store_prepare_ex(st, meta, whole, expect_version, write_id, grace_ms, 0, buf, off,
				len);
}

int store_prepare_ex(struct store *st, const struct store_meta *meta, bool whole,
		     uint64_t expect_version, uint64_t write_id, uint32_t grace_ms, uint8_t flags,
		     const void *buf, uint32_t off, uint32_t len)
{
	int r = check_meta(st, meta);
	if (r || (r = store_check_range(meta->frag_size, buf, off, len)))
		return r;
	struct store_stripe *s = store_stripe_of(st, meta->oid, meta->idx);
	struct store_frag_hdr cur;
	struct store_pend *p = NULL;
	pthread_rwlock_wrlock(&s->lock);
	struct store_pend *old = store_pend_find(st, meta->oid, meta->idx);
	if (old && old->hdr.write_id != write_id &&
	    (pend_age(old) < grace_ms || (old->hdr.pend_flags & STORE_PREP_EARLY))) {
		r = -EBUSY;
		goto out;
	}
	if (!whole) {
		/* Checked now so a write that cannot apply is refused at once;
		 * store_commit() checks again. */
		int fd = store_open_frag(st, meta->oid, meta->idx, O_RDONLY, &cur);
		if (fd < 0) {
			r = fd;
			goto out;
		}
		store_frag_close(st, meta->oid, meta->idx, fd);
		if (meta->frag_size != cur.frag_size) {
			r = -EINVAL;
			goto out;
		}
		if (expect_version != STORE_ANY_VERSION && expect_version != cur.version) {
			r = -ESTALE;
			goto out;
		}
	}
	p = calloc(1, sizeof(*p));
	/* A whole write's bytes go to their own file, not to memory and the
	 * log: written once, renamed into place by the commit. */
	if (!p || (!whole && !(p->data = malloc(len ? len : 1)))) {
		r = -ENOMEM;
		goto out;
	}
	store_hdr_init(st, meta, &p->hdr);
	p->hdr.write_id = write_id;
	p->hdr.pend_kind = whole ? STORE_PEND_WHOLE : STORE_PEND_RANGE;
	p->hdr.pend_expect = whole ? STORE_ANY_VERSION : expect_version;
	p->hdr.pend_off = off;
	p->hdr.pend_len = len;
	p->hdr.pend_flags = (flags & STORE_PREP_EARLY) | (whole ? STORE_PEND_FILE : 0);
	p->hdr.wr_touched = whole ? 0 : meta->wr_touched;
	p->hdr.wr_base = 0;
	p->hdr.crc = store_hdr_crc(&p->hdr);
	p->time_ms = wall_ms();
	p->mono_ns = sd_now_ns();
	if (whole) {
		struct store_frag_hdr fh;
		store_pw_final_hdr(p, &fh);
		if ((r = store_pw_build(st, &fh, buf, off, len)) != 0)
			goto out;
	} else if (len) {
		memcpy(p->data, buf, len);
	}
	struct store_wal_prep rec = {.hdr = p->hdr, .time_ms = p->time_ms};
	struct iovec iov[2] = {{&rec, sizeof(rec)}, {p->data, whole ? 0 : len}};
	/* An untouched fragment's version bump need not be durable when its
	 * current state is (store.h, STORE_PREP_LAZY). */
	bool lazy = (flags & STORE_PREP_LAZY) && !whole && len == 0 &&
		    store_wal_frag_durable(st, meta->oid, meta->idx);
	r = lazy ? store_wal_append_lazy(st, WAL_PREPARE, iov, 1)
		 : store_wal_append(st, WAL_PREPARE, iov, len && !whole ? 2 : 1);
	if (r) {
		if (whole && (!old || old->hdr.write_id != write_id))
			store_pw_unlink(st, p);
		goto out;
	}
	store_wal_note(st, meta->oid, meta->idx);
	store_pend_put(st, p);
	p = NULL;
	store_wal_applied(st);
out:
	if (p)
		pend_free(p);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

/* Log the drop of a pending write that can never apply, and drop it. */
static void pend_abort_logged(struct store *st, const struct store_pend *p)
{
	struct store_wal_ref ref = {.oid = p->hdr.oid, .idx = p->hdr.idx,
				    .version = p->hdr.version, .write_id = p->hdr.write_id};
	struct iovec iov = {&ref, sizeof(ref)};
	if (store_wal_append_lazy(st, WAL_ABORT, &iov, 1) == 0) {
		store_wal_note(st, ref.oid, ref.idx);
		store_wal_applied(st);
	}
	store_pend_drop(st, ref.oid, ref.idx, ref.write_id);
}

int store_commit(struct store *st, uint64_t oid, uint8_t idx, uint64_t new_version,
		 uint64_t write_id)
{
	if (!st)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	int r;
	pthread_rwlock_wrlock(&s->lock);
	struct store_pend *p = store_pend_find(st, oid, idx);
	if (!p || p->hdr.version != new_version || p->hdr.write_id != write_id) {
		/* Not pending (any more): done already, or never prepared here. */
		struct store_frag_hdr fh;
		int fd = store_open_frag(st, oid, idx, O_RDONLY, &fh);
		if (fd < 0) {
			r = fd;
		} else {
			store_frag_close(st, oid, idx, fd);
			r = fh.version == new_version && fh.write_id == write_id ? 0 : -ENOENT;
		}
		goto out;
	}
	if (p->hdr.pend_kind == STORE_PEND_WHOLE && (p->hdr.pend_flags & STORE_PEND_FILE)) {
		struct store_frag_hdr h;
		store_pw_final_hdr(p, &h);
		r = store_pw_commit(st, &h);
		if (r == 0)
			store_pend_drop(st, oid, idx, write_id);
		goto out;
	}
	if (p->hdr.pend_kind == STORE_PEND_WHOLE) {
		struct store_frag_hdr h = p->hdr;
		h.pend_kind = 0;
		h.pend_expect = 0;
		h.pend_off = h.pend_len = 0;
		h.pend_flags = 0;
		h.wr_touched = 0;
		h.wr_base = 0;
		h.crc = store_hdr_crc(&h);
		r = store_put_whole(st, &h, p->data, p->hdr.pend_off, p->hdr.pend_len, WAL_COMMIT,
				    false);
		if (r == 0)
			store_pend_drop(st, oid, idx, write_id);
		goto out;
	}
	struct store_lc lc;
	store_hdr_get_lc(&p->hdr, &lc);
	r = store_write_locked(st, oid, idx, p->hdr.pend_expect, new_version, write_id, write_id,
			       p->hdr.wr_touched, &lc, p->data, p->hdr.pend_off, p->hdr.pend_len);
	if (r == 0)
		store_pend_drop(st, oid, idx, write_id); /* the record said so too */
	else if (r == -ESTALE || r == -ENOENT)
		pend_abort_logged(st, p); /* can never apply */
out:
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int store_abort(struct store *st, uint64_t oid, uint8_t idx, uint64_t write_id)
{
	if (!st)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	int r = -ENOENT;
	pthread_rwlock_wrlock(&s->lock);
	struct store_pend *p = store_pend_find(st, oid, idx);
	if (p && p->hdr.write_id == write_id) {
		pend_abort_logged(st, p);
		r = 0;
	}
	pthread_rwlock_unlock(&s->lock);
	return r;
}

/* Under the stripe lock: the write pending on (oid, idx), as store_pending says. */
int store_pending_locked(struct store *st, uint64_t oid, uint8_t idx, struct store_pending *out)
{
	struct store_pend *p = store_pend_find(st, oid, idx);
	if (p) {
		out->new_version = p->hdr.version;
		out->write_id = p->hdr.write_id;
		out->expect_version = p->hdr.pend_expect;
		out->age_ms = pend_age(p);
		out->flags = p->hdr.pend_flags & ~STORE_PEND_FILE;
		out->touched = p->hdr.wr_touched;
		store_hdr_get_lc(&p->hdr, &out->lc);
		out->prep_ns = p->mono_ns;
	}
	return p ? 0 : -ENOENT;
}

int store_pending(struct store *st, uint64_t oid, uint8_t idx, struct store_pending *out)
{
	if (!st || !out)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	pthread_rwlock_rdlock(&s->lock);
	int r = store_pending_locked(st, oid, idx, out);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

/*
 * store_stat and store_pending at one moment: a commit (which applies the
 * write and forgets it as pending under the stripe lock) cannot fall
 * between them, as it can between two calls, where the fragment would
 * look neither at the new version nor with the write pending. *has_pend
 * says whether pend was filled; returns store_stat's result.
 */
int store_stat_pending(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta,
		       struct store_pending *pend, bool *has_pend)
{
	if (!st || !meta || !pend || !has_pend)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	pthread_rwlock_rdlock(&s->lock);
	int r = store_stat_locked(st, oid, idx, meta);
	*has_pend = store_pending_locked(st, oid, idx, pend) == 0;
	pthread_rwlock_unlock(&s->lock);
	return r;
}

/*
 * Stores from before the log kept each prepared write as a file in
 * obj/.pend. Load them into the table (the checkpoint at open re-logs
 * them); store_pend_legacy_clear() removes the files afterwards.
 */
int store_pend_load_legacy(struct store *st)
{
	if (st->pendfd < 0)
		return 0;
	DIR *d = sd_opendirat(st->pendfd, ".");
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		int fd = openat(st->pendfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct store_frag_hdr h;
		struct stat sb;
		struct store_pend *p = NULL;
		if (store_pread_full(fd, &h, sizeof(h), 0) || store_hdr_check(&h) ||
		    (h.pend_kind != STORE_PEND_RANGE && h.pend_kind != STORE_PEND_WHOLE) ||
		    store_check_range(h.frag_size, "", h.pend_off, h.pend_len) || fstat(fd, &sb)) {
			sd_warn("ignoring a bad pending file %s", de->d_name);
		} else if (!(p = calloc(1, sizeof(*p))) || !(p->data = malloc(h.pend_len + 1))) {
			r = -ENOMEM;
		} else if (store_read_range(st, fd, &h, p->data, h.pend_off, h.pend_len)) {
			sd_warn("ignoring an unreadable pending file %s", de->d_name);
		} else {
			p->hdr = h;
			p->time_ms = (uint64_t)sb.st_mtim.tv_sec * 1000;
			store_pend_put(st, p);
			p = NULL;
		}
		if (p)
			pend_free(p);
		close(fd);
	}
	closedir(d);
	return r;
}

void store_pend_legacy_clear(struct store *st)
{
	if (st->pendfd < 0)
		return;
	DIR *d = sd_opendirat(st->pendfd, ".");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || !strncmp(de->d_name, ".tmp.", 5))
			unlinkat(st->pendfd, de->d_name, 0);
	closedir(d);
}
