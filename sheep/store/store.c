/* store.c - the local object store: one sparse, checksummed, versioned file per fragment. */
/*
 * On-disk format (all integers little-endian):
 *
 *   DIR/obj/<oid as 16 hex digits>_<idx as 2 hex digits>   one per fragment
 *   DIR/obj/.tmp.<name>       a fragment being created (renamed by replay
 *                             when its WAL_INSTALL is durable, else removed
 *                             at open)
 *   DIR/obj/.pw.<name>.<wid>  a pending whole write's new fragment file
 *   DIR/wal.0, DIR/wal.1      the write-ahead log (store_wal.c); -j dir=PATH
 *                             puts them in PATH
 *   DIR/obj/.journal, .pend   intent journals and pending files of stores
 *                             from before the log: replayed/loaded at open
 *
 * A fragment file is
 *   [0, 128)            struct store_frag_hdr: magic "SDFRAG1", format 1,
 *                       block_shift 12, oid, idx, copy_policy, nr_copies,
 *                       frag_size, version, uuid, data_off, write_id (the
 *                       two-phase write that made this version, 0 if none),
 *                       the pending fields, crc32c of the header
 *   [4096, data_off)    the checksum table: one u32 per 4 KiB block,
 *                       stored as crc32c(block) XOR crc32c(4 KiB of zeros)
 *   [data_off, ...)     the data, block b at data_off + b * 4096; the last
 *                       block is padded with zeros to 4 KiB
 * data_off = 4096 + round_up(4 * nr_blocks, 4096), so data blocks are
 * filesystem-block aligned. The XOR makes the checksum of a block that was
 * never written 0, which is what a hole in the table reads as: unwritten
 * blocks stay holes in both the table and the data and read as zeros, and a
 * 2 GiB fragment with 4 KiB written uses ~12 KiB. Blocks written with zeros
 * are punched back into holes. 4 KiB blocks keep a small write's
 * read-modify-write to one block and its checksum to 4 bytes; the table of a
 * 2 GiB fragment is 2 MiB (0.1%), of a 4 MiB one 4 KiB.
 *
 * Every mutation is a record of the write-ahead log first (store_wal.c),
 * applied to the files once durable, so a crash leaves a fragment wholly
 * old or wholly new. Creation builds a temp file, logs the fragment, and
 * renames the file into place; prepared two-phase writes live in memory
 * and in the log (store_pend.c).
 * Every fragment hashes to one of 64 lock stripes (a rwlock): reads share
 * it, writes, creates and removes of one fragment are serialised by it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

#define NAME_LEN STORE_NAME_LEN

static const uint8_t zero_block[STORE_BLK];

static bool is_zero(const uint8_t *p, size_t len)
{
	return p[0] == 0 && !memcmp(p, p + 1, len - 1);
}

bool store_crash_at(struct store *st, enum store_crash where)
{
	enum store_crash want = where;
	return where != STORE_CRASH_NONE &&
	       __atomic_compare_exchange_n(&st->crash, &want, STORE_CRASH_NONE, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

struct store_stripe *store_stripe_of(struct store *st, uint64_t oid, uint8_t idx)
{
	uint64_t h = (oid ^ ((uint64_t)idx << 56) ^ idx) * 0x9E3779B97F4A7C15ULL;
	return &st->stripes[h >> 58]; /* 64 stripes */
}

uint32_t store_hdr_crc(const struct store_frag_hdr *h)
{
	struct store_frag_hdr c = *h;
	c.crc = 0;
	return sd_crc32c(0, &c, sizeof(c));
}

int store_hdr_check(const struct store_frag_hdr *h)
{
	if (memcmp(h->magic, STORE_FRAG_MAGIC, sizeof(h->magic)) || h->format != STORE_FORMAT ||
	    h->block_shift != STORE_BLK_SHIFT || h->crc != store_hdr_crc(h))
		return -EIO;
	if (h->frag_size == 0 || h->frag_size > STORE_FRAG_MAX ||
	    h->data_off != store_data_off(h->frag_size))
		return -EIO;
	return 0;
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

/* The descriptor comes from the open-file cache (store_fdcache.c) when it
 * holds one; the header is read and checked every time. */
int store_open_frag(struct store *st, uint64_t oid, uint8_t idx, int flags,
		    struct store_frag_hdr *h)
{
	int fd = store_fdcache_get(st, oid, idx);
	if (fd < 0) {
		char name[NAME_LEN];
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
		store_fdcache_add(st, oid, idx, fd);
	}
	int r = read_checked_hdr(fd, oid, idx, h);
	if (r) {
		store_frag_close(st, oid, idx, fd);
		store_fdcache_forget(st, oid, idx);
		return r;
	}
	return fd;
}

uint64_t store_disk_bytes(int fd)
{
	struct stat s;
	return fstat(fd, &s) ? 0 : (uint64_t)s.st_blocks * 512;
}

/* ---- blocks ---- */

static uint32_t block_crc(const struct store *st, const void *blk)
{
	return sd_crc32c(0, blk, STORE_BLK) ^ st->zero_crc;
}

/* Read n blocks from first into dst and check each against its stored
 * checksum (crcs, or read from the table when crcs is NULL). */
static int read_blocks(struct store *st, int fd, const struct store_frag_hdr *h, uint32_t first,
		       uint32_t n, uint8_t *dst, const uint32_t *crcs)
{
	uint32_t *tab = NULL;
	int r;
	if (!crcs) {
		tab = malloc((size_t)n * 4);
		if (!tab)
			return -ENOMEM;
		r = store_pread_full(fd, tab, (size_t)n * 4, STORE_HDR_AREA + (uint64_t)first * 4);
		if (r)
			goto out;
		crcs = tab;
	}
	r = store_pread_full(fd, dst, (size_t)n * STORE_BLK,
			     h->data_off + (uint64_t)first * STORE_BLK);
	if (r)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		if (block_crc(st, dst + (size_t)i * STORE_BLK) != crcs[i]) {
			sd_err("fragment %016" PRIx64 "_%02x: checksum mismatch in block %u",
			       h->oid, h->idx, first + i);
			__atomic_fetch_add(&st->csum_errors, 1, __ATOMIC_RELAXED);
			r = -EIO;
			goto out;
		}
	}
out:
	free(tab);
	return r;
}

void store_span_free(struct store_span *sp)
{
	free(sp->head);
	free(sp->tail);
	free(sp->crcs);
	free(sp->zero);
	memset(sp, 0, sizeof(*sp));
}

/* Old content of an edge block into a fresh bounce buffer, then the new bytes
 * over it. fd < 0: the fragment is new, its old content is zeros. */
static int bounce_block(struct store *st, int fd, const struct store_frag_hdr *h, uint32_t b,
			const uint8_t *buf, uint32_t off, uint32_t len, uint8_t **out)
{
	uint8_t *blk = calloc(1, STORE_BLK);
	if (!blk)
		return -ENOMEM;
	if (fd >= 0) {
		int r = read_blocks(st, fd, h, b, 1, blk, NULL);
		if (r) {
			free(blk);
			return r;
		}
	}
	uint64_t bstart = (uint64_t)b * STORE_BLK;
	uint64_t from = SD_MAX(bstart, (uint64_t)off);
	uint64_t to = SD_MIN(bstart + STORE_BLK, (uint64_t)off + len);
	memcpy(blk + (from - bstart), buf + (from - off), to - from);
	*out = blk;
	return 0;
}

/* Build the block view of writing buf at [off, off+len) (see store_priv.h). */
int store_span_prepare(struct store *st, int fd, const struct store_frag_hdr *h,
			const uint8_t *buf, uint32_t off, uint32_t len, struct store_span *sp)
{
	memset(sp, 0, sizeof(*sp));
	if (len == 0)
		return 0;
	uint64_t end = (uint64_t)off + len;
	uint32_t first = off >> STORE_BLK_SHIFT;
	uint32_t last = (uint32_t)((end - 1) >> STORE_BLK_SHIFT);
	bool head_full = off % STORE_BLK == 0 && end >= ((uint64_t)first + 1) * STORE_BLK;
	bool tail_full = end % STORE_BLK == 0 && off <= (uint64_t)last * STORE_BLK;
	int r;
	sp->first = first;
	sp->n = last - first + 1;
	if (!head_full) {
		r = bounce_block(st, fd, h, first, buf, off, len, &sp->head);
		if (r)
			goto fail;
		sp->iov[sp->niov++] = (struct iovec){sp->head, STORE_BLK};
	}
	uint32_t mid_first = head_full ? first : first + 1;
	uint32_t mid_last = tail_full ? last : last - 1; /* may be < mid_first */
	if (mid_first <= mid_last && !(last == first && !head_full)) {
		const uint8_t *p = buf + ((uint64_t)mid_first * STORE_BLK - off);
		sp->iov[sp->niov++] = (struct iovec){(void *)p,
						     (size_t)(mid_last - mid_first + 1) * STORE_BLK};
	}
	if (!tail_full && last != first) {
		r = bounce_block(st, fd, h, last, buf, off, len, &sp->tail);
		if (r)
			goto fail;
		sp->iov[sp->niov++] = (struct iovec){sp->tail, STORE_BLK};
	}
	sp->crcs = malloc((size_t)sp->n * 4);
	sp->zero = malloc(sp->n);
	if (!sp->crcs || !sp->zero) {
		r = -ENOMEM;
		goto fail;
	}
	uint32_t b = 0;
	for (int i = 0; i < sp->niov; i++) {
		const uint8_t *p = sp->iov[i].iov_base;
		for (size_t o = 0; o < sp->iov[i].iov_len; o += STORE_BLK, b++) {
			sp->crcs[b] = block_crc(st, p + o);
			sp->zero[b] = is_zero(p + o, STORE_BLK);
		}
	}
	if (b != sp->n) { /* cannot happen: the iovecs cover [first, last] */
		r = -EFAULT;
		goto fail;
	}
	return 0;
fail:
	store_span_free(sp);
	return r;
}

static int punch_zeros(int fd, uint64_t pos, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)pos, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	for (uint64_t o = 0; o < len; o += STORE_BLK) {
		int r = store_pwrite_full(fd, zero_block, STORE_BLK, pos + o);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Put blocks [first, first+n) (content iov, checksums crcs, zero flags) and
 * the header nh into the fragment file fd, not synced (the log record is
 * durable; a checkpoint syncs). Idempotent, so a replayed record may apply
 * it again. fresh: the file is new and all holes,
 * so zero blocks need no punching.
 */
int store_apply(struct store *st, int fd, const struct store_frag_hdr *nh, uint32_t first,
		uint32_t n, const uint32_t *crcs, const uint8_t *zero, const struct iovec *iov,
		int niov, bool fresh)
{
	uint64_t pos = nh->data_off + (uint64_t)first * STORE_BLK;
	uint32_t b = 0;
	int r;
	for (int v = 0; v < niov; v++) {
		const uint8_t *p = iov[v].iov_base;
		uint32_t nb = (uint32_t)(iov[v].iov_len / STORE_BLK);
		for (uint32_t i = 0; i < nb;) {
			uint32_t j = i;
			while (j < nb && zero[b + j] == zero[b + i])
				j++;
			uint64_t at = pos + (uint64_t)i * STORE_BLK, len = (uint64_t)(j - i) * STORE_BLK;
			if (!zero[b + i])
				r = store_pwrite_full(fd, p + (size_t)i * STORE_BLK, len, at);
			else
				r = fresh ? 0 : punch_zeros(fd, at, len);
			if (r)
				return r;
			if (store_crash_at(st, STORE_CRASH_MID_APPLY))
				return -ECANCELED;
			i = j;
		}
		pos += (uint64_t)nb * STORE_BLK;
		b += nb;
	}
	if (b != n)
		return -EFAULT;
	if (n) {
		r = store_pwrite_full(fd, crcs, (size_t)n * 4, STORE_HDR_AREA + (uint64_t)first * 4);
		if (r)
			return r;
	}
	return store_pwrite_full(fd, nh, sizeof(*nh), 0);
}

/* ---- public API ---- */

int store_check_range(uint32_t frag_size, const void *buf, uint32_t off, uint32_t len)
{
	if ((uint64_t)off + len > frag_size || (len && !buf))
		return -EINVAL;
	return 0;
}

uint64_t store_new_uuid(struct store *st)
{
	uint64_t u;
	if (getrandom(&u, sizeof(u), 0) != sizeof(u))
		u = sd_now_ns() ^ __atomic_add_fetch(&st->seq, 1, __ATOMIC_RELAXED);
	return u;
}

/* A fresh fragment header for meta (random uuid, no write id). */
void store_hdr_init(struct store *st, const struct store_meta *meta, struct store_frag_hdr *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, STORE_FRAG_MAGIC, sizeof(h->magic));
	h->format = STORE_FORMAT;
	h->block_shift = STORE_BLK_SHIFT;
	h->oid = meta->oid;
	h->idx = meta->idx;
	h->copy_policy = meta->copy_policy;
	h->nr_copies = meta->nr_copies;
	h->frag_size = meta->frag_size;
	h->version = meta->version;
	h->uuid = store_new_uuid(st);
	h->data_off = store_data_off(h->frag_size);
	store_hdr_set_lc(h, &meta->lc);
	h->crc = store_hdr_crc(h);
}

void store_hdr_set_lc(struct store_frag_hdr *h, const struct store_lc *lc)
{
	h->lc_valid = lc && lc->valid;
	memset(h->lc_delta, 0, sizeof(h->lc_delta));
	if (h->lc_valid)
		memcpy(h->lc_delta, lc->delta, sizeof(h->lc_delta));
}

void store_hdr_get_lc(const struct store_frag_hdr *h, struct store_lc *lc)
{
	memset(lc, 0, sizeof(*lc));
	if (h->lc_valid == 1) {
		lc->valid = 1;
		memcpy(lc->delta, h->lc_delta, sizeof(lc->delta));
	}
}

/* Read [off, off+len) of the open fragment fd, verifying every block. */
int store_read_range(struct store *st, int fd, const struct store_frag_hdr *h, uint8_t *dst,
		      uint32_t off, uint32_t len)
{
	int r = store_check_range(h->frag_size, dst, off, len);
	if (r || len == 0)
		return r;
	/* Aligned middle straight into dst, partial edge blocks via a bounce. */
	uint64_t end = (uint64_t)off + len;
	uint32_t b = off >> STORE_BLK_SHIFT;
	uint8_t *bounce = malloc(STORE_BLK);
	if (!bounce)
		return -ENOMEM;
	uint64_t pos = off;
	while (pos < end && !r) {
		uint64_t bstart = (uint64_t)b * STORE_BLK;
		if (pos == bstart && end >= bstart + STORE_BLK) {
			uint32_t n = (uint32_t)((end - bstart) / STORE_BLK);
			n = SD_MIN(n, 1u << 16); /* 256 MiB per call bounds the table copy */
			r = read_blocks(st, fd, h, b, n, dst + (pos - off), NULL);
			pos += (uint64_t)n * STORE_BLK;
			b += n;
		} else {
			r = read_blocks(st, fd, h, b, 1, bounce, NULL);
			uint64_t to = SD_MIN(bstart + STORE_BLK, end);
			if (!r)
				memcpy(dst + (pos - off), bounce + (pos - bstart), to - pos);
			pos = to;
			b++;
		}
	}
	free(bounce);
	return r;
}

int store_read(struct store *st, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
	       uint32_t len, uint64_t *version)
{
	return store_read_lc(st, oid, idx, buf, off, len, version, NULL);
}

int store_read_lc(struct store *st, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		  uint32_t len, uint64_t *version, struct store_lc *lc)
{
	if (!st || (len && !buf))
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	struct store_frag_hdr h;
	int r;
	pthread_rwlock_rdlock(&s->lock);
	int fd = store_open_frag(st, oid, idx, O_RDONLY, &h);
	if (fd < 0) {
		r = fd;
	} else {
		r = store_read_range(st, fd, &h, buf, off, len);
		if (r == 0 && version)
			*version = h.version;
		if (r == 0 && lc)
			store_hdr_get_lc(&h, lc);
		store_frag_close(st, oid, idx, fd);
	}
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int store_stat(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta)
{
	if (!st || !meta)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	pthread_rwlock_rdlock(&s->lock);
	int r = store_stat_locked(st, oid, idx, meta);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

/* store_stat under the stripe lock. */
int store_stat_locked(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta)
{
	struct store_frag_hdr h;
	int fd = store_open_frag(st, oid, idx, O_RDONLY, &h);
	if (fd >= 0) {
		meta->oid = h.oid;
		meta->idx = h.idx;
		meta->copy_policy = h.copy_policy;
		meta->nr_copies = h.nr_copies;
		meta->frag_size = h.frag_size;
		meta->version = h.version;
		meta->write_id = h.write_id;
		meta->wr_touched = h.wr_touched;
		meta->wr_base = h.wr_base;
		store_hdr_get_lc(&h, &meta->lc);
		meta->disk_bytes = store_disk_bytes(fd);
		store_frag_close(st, oid, idx, fd);
	}
	return fd < 0 ? fd : 0;
}

/* Holes (SEEK_HOLE) are checked against the table without reading them. */
int store_verify(struct store *st, uint64_t oid, uint8_t idx)
{
	if (!st)
		return -EINVAL;
	struct store_stripe *s = store_stripe_of(st, oid, idx);
	struct store_frag_hdr h;
	uint32_t *tab = NULL;
	uint8_t *chunk = NULL;
	const uint32_t chunk_blocks = 256;
	int r;
	pthread_rwlock_rdlock(&s->lock);
	int fd = store_open_frag(st, oid, idx, O_RDONLY, &h);
	if (fd < 0) {
		r = fd;
		goto out_unlock;
	}
	uint32_t nblk = (uint32_t)(((uint64_t)h.frag_size + STORE_BLK - 1) >> STORE_BLK_SHIFT);
	tab = malloc((size_t)nblk * 4);
	chunk = malloc((size_t)chunk_blocks * STORE_BLK);
	if (!tab || !chunk) {
		r = -ENOMEM;
		goto out;
	}
	r = store_pread_full(fd, tab, (size_t)nblk * 4, STORE_HDR_AREA);
	if (r)
		goto out;
	uint32_t b = 0;
	while (b < nblk) {
		uint64_t pos = h.data_off + (uint64_t)b * STORE_BLK;
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		uint64_t data_blk = d < 0 ? nblk : (uint64_t)(d - (off_t)h.data_off) / STORE_BLK;
		for (; b < nblk && b < data_blk; b++) {
			if (tab[b] != 0) {
				sd_err("fragment %016" PRIx64 "_%02x: block %u is a hole but has a checksum",
				       oid, idx, b);
				r = -EIO;
				goto out;
			}
		}
		if (b >= nblk)
			break;
		off_t ho = lseek(fd, (off_t)h.data_off + (off_t)b * STORE_BLK, SEEK_HOLE);
		uint64_t hole_blk = ho < 0 ? nblk
					   : ((uint64_t)(ho - (off_t)h.data_off) + STORE_BLK - 1) /
						     STORE_BLK;
		hole_blk = SD_MIN(SD_MAX(hole_blk, (uint64_t)b + 1), (uint64_t)nblk);
		while (b < hole_blk) {
			uint32_t n = (uint32_t)SD_MIN((uint64_t)chunk_blocks, hole_blk - b);
			r = read_blocks(st, fd, &h, b, n, chunk, tab + b);
			if (r)
				goto out;
			b += n;
		}
	}
	r = 0;
out:
	free(tab);
	free(chunk);
	store_frag_close(st, oid, idx, fd);
out_unlock:
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int store_for_each(struct store *st, int (*fn)(const struct store_meta *meta, void *arg),
		   void *arg)
{
	if (!st || !fn)
		return -EINVAL;
	int r = 0;
	/* Disks do not change meanwhile (store_md.c): each file is seen once. */
	pthread_rwlock_rdlock(&st->md_rw);
	for (int k = 0; r == 0 && k < st->nr_disks; k++) {
		if (st->disks[k].state != STORE_DISK_ON)
			continue;
		DIR *d = sd_opendirat(st->disks[k].fd, ".");
		if (!d) {
			r = -errno;
			break;
		}
		struct dirent *de;
		while (r == 0 && (de = readdir(d))) {
			uint64_t oid;
			uint8_t idx;
			struct store_meta m;
			if (!store_parse_name(de->d_name, &oid, &idx))
				continue;
			if (store_stat(st, oid, idx, &m))
				continue; /* removed meanwhile, or a bad header (logged) */
			r = fn(&m, arg);
		}
		closedir(d);
	}
	pthread_rwlock_unlock(&st->md_rw);
	return r;
}

int store_space(struct store *st, uint64_t *total, uint64_t *used)
{
	if (!st)
		return -EINVAL;
	uint64_t t = 0, a = 0;
	int r = store_md_space(st, &t, &a);
	if (r)
		return r;
	if (total)
		*total = t;
	if (used)
		*used = __atomic_load_n(&st->used, __ATOMIC_RELAXED);
	return 0;
}

int store_avail(struct store *st, uint64_t *avail)
{
	if (!st || !avail)
		return -EINVAL;
	uint64_t t;
	return store_md_space(st, &t, avail);
}

uint64_t store_checksum_errors(const struct store *st)
{
	return st ? __atomic_load_n(&st->csum_errors, __ATOMIC_RELAXED) : 0;
}

const char *store_dir(const struct store *st)
{
	return st->dir;
}

/* ---- test hooks (store_test.h) ---- */

void store_test_set_crash(struct store *st, enum store_crash where)
{
	st->crash = where;
}

int store_test_frag_path(const struct store *st, uint64_t oid, uint8_t idx, char *buf,
			 size_t len)
{
	char name[NAME_LEN];
	store_frag_name(oid, idx, name);
	int n = st->md ? snprintf(buf, len, "%s/%s", store_md_ring_path(st, oid), name)
		       : snprintf(buf, len, "%s/obj/%s", st->dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

uint64_t store_test_file_offset(uint32_t frag_size, uint32_t off)
{
	return store_data_off(frag_size) + off;
}
