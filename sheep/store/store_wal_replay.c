/* store_wal_replay.c - replay of the store's write-ahead log at open: pick the live file, apply its records in order, report what was dropped. */
/*
 * Records are absolute (whole blocks with their checksums and the whole
 * new header, whole files, removals, pending writes), so replaying them
 * in order over fragment files that are at any state between the last
 * checkpoint and the crash gives the state after the last durable record.
 * A WAL_INSTALL record names a whole fragment written (and synced) as a
 * temp file instead of carrying its bytes: it supersedes every earlier
 * record of its fragment (a first pass finds the last one of each), whose
 * effects on the file are skipped (their effects on pending writes are
 * not), and its replay redoes the rename if that was lost.
 *
 * Where replay stops: the first record failing its checks. Records after
 * it of the same generation are counted and dropped. When one of them
 * belongs to a later group commit than the bad record, the bad record
 * had been synced and acknowledged (a batch is written only after the
 * previous one is synced), so the log was damaged after the fact, and
 * the dropped records may already be in the fragment files: replaying
 * only up to the damage would leave those fragments mixing two states,
 * so every fragment a dropped record names is removed (every fragment
 * changed since the checkpoint when a damaged record names none), to be
 * rebuilt from its peers by recovery. Damage within the last group
 * commit is a torn write (never acknowledged, never applied) and is just
 * dropped, unless a fragment file is already at the exact state its
 * record makes (applied, so acknowledged, then damaged): that fragment is
 * removed too. Nothing half-replayed is ever served.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

struct wal_map {
	const uint8_t *p;
	uint64_t size;
};

static size_t padded(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

/* The header at off if it is sound and of generation gen (any when 0). */
static const struct store_wal_rec *rec_hdr_at(const struct wal_map *m, uint64_t off, uint64_t gen)
{
	if (off + sizeof(struct store_wal_rec) > m->size)
		return NULL;
	struct store_wal_rec r;
	memcpy(&r, m->p + off, sizeof(r));
	if (r.magic != STORE_WAL_MAGIC)
		return NULL;
	uint32_t want = r.hcrc;
	r.hcrc = 0;
	if (sd_crc32c(0, &r, sizeof(r)) != want || (gen && r.gen != gen))
		return NULL;
	return (const struct store_wal_rec *)(m->p + off);
}

/* The whole record at off: sound header, lsn, payload within the file and
 * matching its crc. */
static const struct store_wal_rec *rec_at(const struct wal_map *m, uint64_t off, uint64_t gen,
					  uint64_t lsn)
{
	const struct store_wal_rec *r = rec_hdr_at(m, off, gen);
	if (!r || r->lsn != lsn || off + sizeof(*r) + padded(r->len) > m->size)
		return NULL;
	if (sd_crc32c(0, m->p + off + sizeof(*r), r->len) != r->dcrc)
		return NULL;
	return r;
}

static uint64_t rec_next(const struct store_wal_rec *r, uint64_t off)
{
	return off + sizeof(*r) + padded(r->len);
}

/* A file is a log candidate when its mark and re-logged pending writes are
 * whole; 0 (and the mark's generation in *gen) if so. */
static int check_file(const struct wal_map *m, uint64_t *gen, uint64_t *mark_ms)
{
	const struct store_wal_rec *r = rec_at(m, 0, 0, 0);
	if (!r || r->type != WAL_MARK || r->len < sizeof(struct store_wal_mark))
		return -1;
	struct store_wal_mark mk;
	memcpy(&mk, r + 1, sizeof(mk));
	uint64_t g = r->gen, off = rec_next(r, 0);
	for (uint32_t i = 1; i <= mk.nr_pend; i++) {
		const struct store_wal_rec *p = rec_at(m, off, g, i);
		if (!p || p->type != WAL_PREPARE)
			return -1;
		off = rec_next(p, off);
	}
	*gen = g;
	*mark_ms = mk.time_ms;
	return 0;
}

static int replay_blocks(struct store *st, const struct store_wal_rec *r, bool create, bool sup)
{
	const uint8_t *pl = (const uint8_t *)(r + 1);
	struct store_wal_blocks wb;
	if (r->len < sizeof(wb))
		return -EIO;
	memcpy(&wb, pl, sizeof(wb));
	size_t mlen = padded(sizeof(wb) + (size_t)wb.n * 5);
	if (store_hdr_check(&wb.hdr) ||
	    (uint64_t)wb.first + wb.n > ((uint64_t)wb.hdr.frag_size + STORE_BLK - 1) / STORE_BLK ||
	    mlen + (uint64_t)wb.n * STORE_BLK != r->len)
		return -EIO;
	const uint32_t *crcs = (const uint32_t *)(pl + sizeof(wb));
	const uint8_t *zero = pl + sizeof(wb) + (size_t)wb.n * 4;
	struct iovec iov = {(void *)(pl + mlen), (size_t)wb.n * STORE_BLK};
	if (wb.pend_wid)
		store_pend_drop(st, wb.hdr.oid, wb.hdr.idx, wb.pend_wid);
	if (sup) /* a later WAL_INSTALL makes the whole file */
		return 0;
	if (create) {
		struct store_span sp = {.first = wb.first, .n = wb.n, .niov = wb.n ? 1 : 0,
					.crcs = (uint32_t *)crcs, .zero = (uint8_t *)zero};
		sp.iov[0] = iov;
		return store_replay_whole(st, &wb.hdr, &sp);
	}
	char name[STORE_NAME_LEN];
	store_frag_name(wb.hdr.oid, wb.hdr.idx, name);
	int fd = openat(store_md_dirfd(st, wb.hdr.oid, name), name, O_RDWR | O_CLOEXEC);
	if (fd < 0) /* removed by a later record (replayed next) */
		return errno == ENOENT ? 0 : -errno;
	int e = store_apply(st, fd, &wb.hdr, wb.first, wb.n, crcs, zero, &iov, wb.n ? 1 : 0, false);
	close(fd);
	return e;
}

/* Replay record r; sup: a later WAL_INSTALL of its fragment supersedes
 * it, so only its effect on the pending table is replayed. */
static int replay_one(struct store *st, const struct store_wal_rec *r, bool sup)
{
	const uint8_t *pl = (const uint8_t *)(r + 1);
	struct store_wal_ref ref;
	switch (r->type) {
	case WAL_MARK:
		return 0;
	case WAL_WRITE:
		return replay_blocks(st, r, false, sup);
	case WAL_CREATE:
		return replay_blocks(st, r, true, sup);
	case WAL_INSTALL: {
		struct store_wal_install ins;
		if (r->len != sizeof(ins))
			return -EIO;
		memcpy(&ins, pl, sizeof(ins));
		if (store_hdr_check(&ins.hdr))
			return -EIO;
		int e = sup ? 0 : store_replay_install(st, &ins.hdr, ins.pend_wid);
		if (ins.pend_wid) /* that pending write was committed */
			store_pend_drop(st, ins.hdr.oid, ins.hdr.idx, ins.pend_wid);
		return e;
	}
	case WAL_PREPARE: {
		struct store_wal_prep pr;
		if (r->len < sizeof(pr))
			return -EIO;
		memcpy(&pr, pl, sizeof(pr));
		bool file = pr.hdr.pend_kind == STORE_PEND_WHOLE && (pr.hdr.pend_flags & STORE_PEND_FILE);
		if (store_hdr_check(&pr.hdr) || r->len != sizeof(pr) + (file ? 0 : pr.hdr.pend_len))
			return -EIO;
		struct store_pend *p = calloc(1, sizeof(*p));
		if (!p || (!file && !(p->data = malloc(pr.hdr.pend_len + 1)))) {
			free(p);
			return -ENOMEM;
		}
		p->hdr = pr.hdr;
		p->time_ms = pr.time_ms;
		if (!file)
			memcpy(p->data, pl + sizeof(pr), pr.hdr.pend_len);
		store_pend_put(st, p);
		return 0;
	}
	case WAL_REMOVE:
	case WAL_ABORT:
	case WAL_COMMIT:
		if (r->len != sizeof(ref))
			return -EIO;
		memcpy(&ref, pl, sizeof(ref));
		break;
	default:
		return -EIO;
	}
	if (r->type == WAL_ABORT) {
		store_pend_drop(st, ref.oid, ref.idx, ref.write_id);
		return 0;
	}
	if (r->type == WAL_REMOVE) {
		char name[STORE_NAME_LEN];
		store_frag_name(ref.oid, ref.idx, name);
		store_pend_drop(st, ref.oid, ref.idx, 0);
		if (sup)
			return 0;
		store_fdcache_forget(st, ref.oid, ref.idx);
		if (unlinkat(store_md_dirfd(st, ref.oid, name), name, 0) && errno != ENOENT)
			return -errno;
		return 0;
	}
	/* WAL_COMMIT: the pending whole write becomes the fragment. */
	struct store_pend *p = store_pend_find(st, ref.oid, ref.idx);
	if (!p || p->hdr.write_id != ref.write_id || p->hdr.pend_kind != STORE_PEND_WHOLE)
		return 0; /* already superseded */
	if (sup) {
		store_pend_drop(st, ref.oid, ref.idx, ref.write_id);
		return 0;
	}
	struct store_frag_hdr h = p->hdr;
	h.pend_kind = 0;
	h.pend_expect = 0;
	h.pend_off = h.pend_len = 0;
	h.pend_flags = 0;
	h.crc = store_hdr_crc(&h);
	int e = store_put_whole(st, &h, p->data, p->hdr.pend_off, p->hdr.pend_len, WAL_COMMIT, true);
	store_pend_drop(st, ref.oid, ref.idx, ref.write_id);
	return e;
}

/* Fragments to take out after replay (see the top). */
struct quar {
	struct store_wal_ref *v;
	int n, cap;
	bool all; /* a damaged record named no fragment: every recent one */
};

static void quar_add(struct quar *q, uint64_t oid, uint8_t idx)
{
	if (q->n == q->cap) {
		int cap = q->cap ? q->cap * 2 : 16;
		struct store_wal_ref *v = realloc(q->v, (size_t)cap * sizeof(*v));
		if (!v) {
			q->all = true;
			return;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = (struct store_wal_ref){.oid = oid, .idx = idx};
}

/* The fragment header a record carries, when it carries a sound one. */
static bool rec_frag(const struct store_wal_rec *r, uint64_t avail, struct store_frag_hdr *h,
		     uint64_t *oid, uint8_t *idx)
{
	const uint8_t *pl = (const uint8_t *)(r + 1);
	if ((r->type == WAL_WRITE || r->type == WAL_CREATE || r->type == WAL_PREPARE ||
	     r->type == WAL_INSTALL) &&
	    avail >= sizeof(*h) && r->len >= sizeof(*h)) {
		memcpy(h, pl, sizeof(*h));
		if (store_hdr_check(h))
			return false;
		*oid = h->oid;
		*idx = h->idx;
		return true;
	}
	if ((r->type == WAL_REMOVE || r->type == WAL_ABORT || r->type == WAL_COMMIT) &&
	    r->len == sizeof(struct store_wal_ref) && avail >= r->len &&
	    sd_crc32c(0, pl, r->len) == r->dcrc) {
		struct store_wal_ref ref;
		memcpy(&ref, pl, sizeof(ref));
		memset(h, 0, sizeof(*h));
		*oid = ref.oid;
		*idx = ref.idx;
		return true;
	}
	return false;
}

/* Is the fragment file at the state record header h made (applied)? */
static bool frag_is_at(struct store *st, const struct store_frag_hdr *h)
{
	char name[STORE_NAME_LEN];
	store_frag_name(h->oid, h->idx, name);
	int fd = openat(store_md_dirfd(st, h->oid, name), name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct store_frag_hdr cur;
	bool at = store_pread_full(fd, &cur, sizeof(cur), 0) == 0 && cur.uuid == h->uuid &&
		  cur.version == h->version && cur.write_id == h->write_id;
	close(fd);
	return at;
}

/*
 * Replay stops at off (expecting lsn). Before anything is replayed, look
 * at what follows: count the records dropped, say so, and choose the
 * fragments to take out. Damage before a later group commit: every
 * fragment the dropped records name (all changed since the checkpoint
 * when one names none). Damage in the last group commit only: a torn
 * write, never applied, unless a fragment already is at the state its
 * record makes (an applied record damaged afterwards): that one.
 */
static void analyse_damage(struct store *st, const struct wal_map *m, uint64_t gen, uint64_t off,
			   uint64_t lsn, struct quar *q)
{
	uint64_t dropped = 0, later_batch = 0, unknown = 0;
	struct store_frag_hdr h;
	uint64_t oid;
	uint8_t idx;
	struct {
		struct store_frag_hdr h;
		uint64_t oid;
		uint8_t idx;
		bool blocks;
	} *seen = NULL;
	int nseen = 0, capseen = 0;
	for (uint64_t o = off; o + sizeof(struct store_wal_rec) <= m->size; o += 8) {
		const struct store_wal_rec *r = rec_hdr_at(m, o, gen);
		if (!r || r->lsn < lsn)
			continue;
		dropped++;
		if (r->lsn - r->batch_pos > lsn)
			later_batch++;
		uint64_t avail = m->size - o - sizeof(*r);
		if (rec_frag(r, avail, &h, &oid, &idx)) {
			if (nseen == capseen) {
				capseen = capseen ? capseen * 2 : 16;
				void *v = realloc(seen, (size_t)capseen * sizeof(*seen));
				if (!v) {
					q->all = true;
					break;
				}
				seen = v;
			}
			seen[nseen].h = h;
			seen[nseen].oid = oid;
			seen[nseen].idx = idx;
			seen[nseen].blocks = r->type == WAL_WRITE || r->type == WAL_CREATE ||
					     r->type == WAL_INSTALL;
			nseen++;
		} else {
			unknown++;
		}
		o = rec_next(r, o) - 8;
	}
	if (!dropped) {
		if (off + 4 <= m->size && ((const struct store_wal_rec *)(m->p + off))->magic ==
						  STORE_WAL_MAGIC && !rec_hdr_at(m, off, 0))
			sd_notice("log: a torn record at offset %" PRIu64 " (never acknowledged) "
				  "dropped", off);
		free(seen);
		return;
	}
	st->wal.stats.dropped = dropped;
	if (later_batch) {
		sd_err("log: record lsn %" PRIu64 " at offset %" PRIu64 " is damaged; %" PRIu64
		       " record(s) from there on dropped, %" PRIu64 " of them acknowledged later: "
		       "the fragments they touch are rebuilt from peers", lsn, off, dropped,
		       later_batch);
		for (int i = 0; i < nseen; i++)
			quar_add(q, seen[i].oid, seen[i].idx);
		if (unknown)
			q->all = true;
	} else {
		int applied = 0;
		for (int i = 0; i < nseen; i++)
			if (seen[i].blocks && frag_is_at(st, &seen[i].h)) {
				quar_add(q, seen[i].oid, seen[i].idx);
				applied++;
			}
		if (applied)
			sd_err("log: %" PRIu64 " record(s) of the last group commit (lsn %" PRIu64
			       " on) damaged after they were applied: %d fragment(s) rebuilt from "
			       "peers", dropped, lsn, applied);
		else
			sd_notice("log: %" PRIu64 " record(s) of the last group commit (lsn %" PRIu64
				  " on, never acknowledged) torn and dropped", dropped, lsn);
	}
	free(seen);
}

/* Take out the chosen fragments (and, with q->all, every fragment file
 * changed since since_ms): recovery rebuilds them from their peers. */
static void quarantine(struct store *st, const struct quar *q, uint64_t since_ms)
{
	int n = 0;
	store_fdcache_drop_all(st);
	for (int i = 0; i < q->n; i++) {
		char name[STORE_NAME_LEN];
		store_frag_name(q->v[i].oid, q->v[i].idx, name);
		store_pend_drop(st, q->v[i].oid, q->v[i].idx, 0);
		if (unlinkat(store_md_dirfd(st, q->v[i].oid, name), name, 0) == 0) {
			sd_warn("log damaged: removed fragment %s; recovery rebuilds it", name);
			n++;
		}
	}
	for (int k = 0; q->all && k < st->nr_disks; k++) {
		int dfd = st->disks[k].fd;
		DIR *d = st->disks[k].state == STORE_DISK_ON ? sd_opendirat(dfd, ".") : NULL;
		struct dirent *de;
		while (d && (de = readdir(d))) {
			struct stat sb;
			if (de->d_name[0] == '.' || fstatat(dfd, de->d_name, &sb, 0))
				continue;
			uint64_t mt = (uint64_t)sb.st_mtim.tv_sec * 1000 +
				      (uint64_t)sb.st_mtim.tv_nsec / 1000000;
			if (mt + 2000 >= since_ms && unlinkat(dfd, de->d_name, 0) == 0) {
				sd_warn("log damaged: removed fragment %s (changed since the last "
					"checkpoint); recovery rebuilds it", de->d_name);
				n++;
			}
		}
		if (d)
			closedir(d);
	}
	if (n)
		sd_warn("log damaged: %d fragment(s) removed", n);
}

/* The last WAL_INSTALL of each fragment in the log (sorted by fragment):
 * earlier records of that fragment must not touch its file. */
struct inst {
	uint64_t oid, lsn;
	uint8_t idx;
};

struct installs {
	struct inst *v;
	int n, cap;
};

static int inst_cmp(const void *a, const void *b)
{
	const struct inst *x = a, *y = b;
	if (x->oid != y->oid)
		return x->oid < y->oid ? -1 : 1;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

static int inst_add(struct installs *in, const struct store_wal_rec *r, uint64_t lsn)
{
	struct store_wal_install ins;
	if (r->type != WAL_INSTALL || r->len != sizeof(ins))
		return 0;
	memcpy(&ins, r + 1, sizeof(ins));
	if (in->n == in->cap) {
		int cap = in->cap ? in->cap * 2 : 64;
		void *v = realloc(in->v, (size_t)cap * sizeof(*in->v));
		if (!v)
			return -ENOMEM;
		in->v = v;
		in->cap = cap;
	}
	in->v[in->n++] = (struct inst){.oid = ins.hdr.oid, .idx = ins.hdr.idx, .lsn = lsn};
	return 0;
}

/* Is record r (at lsn) superseded by a later WAL_INSTALL of its fragment? */
static bool inst_supersedes(const struct installs *in, const struct store_wal_rec *r,
			    uint64_t lsn)
{
	struct store_frag_hdr h;
	struct inst key = {.lsn = UINT64_MAX};
	if (!in->n || r->type == WAL_PREPARE || r->type == WAL_ABORT || r->type == WAL_MARK ||
	    !rec_frag(r, r->len, &h, &key.oid, &key.idx))
		return false;
	/* the last entry of the fragment: the greatest lsn */
	int lo = 0, hi = in->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (inst_cmp(&in->v[mid], &key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && in->v[lo - 1].oid == key.oid && in->v[lo - 1].idx == key.idx &&
	       in->v[lo - 1].lsn > lsn;
}

static int map_file(int fd, struct wal_map *m)
{
	struct stat sb;
	m->p = NULL;
	m->size = 0;
	if (fstat(fd, &sb))
		return -errno;
	if (sb.st_size == 0)
		return 0;
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->p = p;
	m->size = (uint64_t)sb.st_size;
	return 0;
}

int store_wal_replay(struct store *st)
{
	struct store_wal *w = &st->wal;
	struct wal_map m[2];
	uint64_t gen[2] = {0, 0}, mark_ms[2] = {0, 0};
	int best = -1, r = 0;
	for (int i = 0; i < 2; i++) {
		if ((r = map_file(w->fd[i], &m[i]))) {
			if (i)
				munmap((void *)m[0].p, m[0].size);
			return r;
		}
		if (check_file(&m[i], &gen[i], &mark_ms[i]) == 0 && (best < 0 || gen[i] > gen[best]))
			best = i;
	}
	if (best < 0) { /* a new log: the first checkpoint begins wal.0 */
		w->cur = 1;
		w->gen = 0;
		goto out;
	}
	w->cur = best;
	w->gen = gen[best];
	/* Where replay will stop, and what to make of what follows. */
	uint64_t off = 0, lsn = 0, n = 0;
	const struct store_wal_rec *rec;
	struct installs in = {0};
	while ((rec = rec_at(&m[best], off, gen[best], lsn))) {
		if ((r = inst_add(&in, rec, lsn)) != 0) {
			free(in.v);
			goto out;
		}
		off = rec_next(rec, off);
		lsn++;
	}
	if (in.n)
		qsort(in.v, (size_t)in.n, sizeof(*in.v), inst_cmp);
	uint64_t end_lsn = lsn;
	struct quar q = {0};
	analyse_damage(st, &m[best], gen[best], off, end_lsn, &q);
	for (off = 0, lsn = 0; lsn < end_lsn; lsn++, n++) {
		rec = rec_at(&m[best], off, gen[best], lsn);
		r = rec ? replay_one(st, rec, inst_supersedes(&in, rec, lsn)) : -EIO;
		if (r) {
			sd_err("log: cannot replay record lsn %" PRIu64 ": %s", lsn, strerror(-r));
			free(q.v);
			free(in.v);
			goto out;
		}
		off = rec_next(rec, off);
	}
	free(in.v);
	w->lsn = lsn ? lsn - 1 : 0;
	w->stats.replayed = n;
	if (q.n || q.all)
		quarantine(st, &q, mark_ms[best]);
	free(q.v);
	if (n > 1)
		sd_notice("log: replayed %" PRIu64 " record(s) of generation %" PRIu64, n, gen[best]);
out:
	for (int i = 0; i < 2; i++)
		if (m[i].p)
			munmap((void *)m[i].p, m[i].size);
	return r;
}
