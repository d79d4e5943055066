/* store_wal_io.c - the log's records and writes: sealing, iovecs, pwritev, sync, zeros ahead. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

static const uint8_t zero_pad[8];

size_t store_wal_padded(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

uint64_t store_wal_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t store_wal_rec_hcrc(const struct store_wal_rec *r)
{
	struct store_wal_rec c = *r;
	c.hcrc = 0;
	return sd_crc32c(0, &c, sizeof(c));
}

void store_wal_rec_seal(struct store_wal_rec *r, uint64_t gen, uint64_t lsn)
{
	r->magic = STORE_WAL_MAGIC;
	r->gen = gen;
	r->lsn = lsn;
	r->hcrc = store_wal_rec_hcrc(r);
}

void store_wal_rec_init(struct store_wal_rec *r, uint32_t type, const struct iovec *iov, int niov)
{
	memset(r, 0, sizeof(*r));
	r->type = type;
	uint32_t crc = 0;
	size_t len = 0;
	for (int i = 0; i < niov; i++) {
		crc = sd_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	r->len = (uint32_t)len;
	r->dcrc = crc;
}

/* ---- writing ---- */

int store_wal_iov_add(struct store_wal_iovs *b, const void *p, size_t len)
{
	if (len == 0)
		return 0;
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 64;
		struct iovec *v = realloc(b->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = (struct iovec){(void *)p, len};
	b->bytes += len;
	return 0;
}

/* Add one record (sealed header, payload, padding) to b. */
int store_wal_iov_add_rec(struct store_wal_iovs *b, const struct store_wal_rec *r,
			  const struct iovec *iov, int niov)
{
	int e = store_wal_iov_add(b, r, sizeof(*r));
	for (int i = 0; i < niov && !e; i++)
		e = store_wal_iov_add(b, iov[i].iov_base, iov[i].iov_len);
	if (!e)
		e = store_wal_iov_add(b, zero_pad, store_wal_padded(r->len) - r->len);
	return e;
}

/* pwritev all of b at off, IOV_MAX at a time; with limit < b->bytes, stop
 * after limit bytes (a simulated torn write). */
int store_wal_write_iovs(int fd, const struct store_wal_iovs *b, uint64_t off, size_t limit)
{
	int i = 0;
	size_t done = 0;
	while (i < b->n && done < limit) {
		int cnt = b->n - i < IOV_MAX ? b->n - i : IOV_MAX;
		size_t chunk = 0;
		for (int k = 0; k < cnt; k++)
			chunk += b->v[i + k].iov_len;
		if (done + chunk > limit) { /* torn: write byte-wise up to limit */
			for (int k = 0; k < cnt && done < limit; k++) {
				size_t l = b->v[i + k].iov_len;
				if (l > limit - done)
					l = limit - done;
				int r = store_pwrite_full(fd, b->v[i + k].iov_base, l, off + done);
				if (r)
					return r;
				done += l;
			}
			return 0;
		}
		ssize_t w = pwritev(fd, &b->v[i], cnt, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if ((size_t)w != chunk) /* short write: finish it plainly */
			for (size_t got = (size_t)w, k = 0; got < chunk; k++) {
				size_t l = b->v[i + k].iov_len;
				if (got >= l) {
					got -= l;
					chunk -= l;
					done += l;
					continue;
				}
				int r = store_pwrite_full(fd, (uint8_t *)b->v[i + k].iov_base + got,
							  l - got, off + done + got);
				if (r)
					return r;
				done += l;
				chunk -= l;
				got = 0;
			}
		else
			done += chunk;
		i += cnt;
	}
	return 0;
}

int store_wal_sync(struct store *st, int fd)
{
	if (st->nosync)
		return 0;
	pthread_mutex_lock(&st->wal.mu);
	uint64_t seq = st->wal.written_seq; /* what this sync covers at least */
	pthread_mutex_unlock(&st->wal.mu);
	uint64_t t0 = sd_now_ns();
	int r = fdatasync(fd) ? -errno : 0;
	pthread_mutex_lock(&st->wal.mu);
	if (!r && seq > st->wal.synced_seq)
		st->wal.synced_seq = seq;
	st->wal.stats.syncs++;
	st->wal.last_sync_ns = sd_now_ns() - t0;
	pthread_mutex_unlock(&st->wal.mu);
	return r;
}

/*
 * Keep zeros written ahead of the append point, a MiB at a time: a sync
 * of records written inside the file's existing size is a data-only
 * fdatasync, while every append that grows the file would also commit
 * the filesystem's journal. Synced by the caller's fdatasync.
 */
int store_wal_extend_zeroed(struct store *st, uint64_t end)
{
	struct store_wal *w = &st->wal;
	static const uint8_t zeros[64 * 1024];
	if (st->nosync || end + STORE_WAL_ZERO_AHEAD / 2 <= w->zeroed[w->cur])
		return 0;
	uint64_t to = (end + 2 * STORE_WAL_ZERO_AHEAD - 1) & ~(uint64_t)(STORE_WAL_ZERO_AHEAD - 1);
	if (to > w->size / 2 + STORE_WAL_ZERO_AHEAD)
		to = w->size / 2 + STORE_WAL_ZERO_AHEAD;
	for (uint64_t o = w->zeroed[w->cur] > end ? w->zeroed[w->cur] : end; o < to;) {
		uint64_t n = to - o < sizeof(zeros) ? to - o : sizeof(zeros);
		int r = store_pwrite_full(w->fd[w->cur], zeros, n, o);
		if (r)
			return r;
		o += n;
	}
	if (to > w->zeroed[w->cur])
		w->zeroed[w->cur] = to;
	return 0;
}
