/* store_priv.h - private to store*.c: on-disk structs of fragment files and intent records. */
#ifndef SHEEP_STORE_PRIV_H
#define SHEEP_STORE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sheep/store/store.h"
#include "sheep/store/store_test.h"

/* The on-disk format is described at the top of store.c. */
#define STORE_BLK_SHIFT 12
#define STORE_BLK (1u << STORE_BLK_SHIFT)
#define STORE_HDR_AREA 4096u
#define STORE_FRAG_MAX (1u << 31)
#define STORE_NR_STRIPES 64
#define STORE_FRAG_MAGIC "SDFRAG1"
#define STORE_JREC_MAGIC "SDINTNT"
#define STORE_FORMAT 1
/* A journal file grown past this by a big write is truncated after use. */
#define STORE_JOURNAL_KEEP (8u << 20)

struct store_frag_hdr {
	char magic[8];        /* STORE_FRAG_MAGIC, NUL-terminated */
	uint32_t format;      /* STORE_FORMAT */
	uint32_t block_shift; /* STORE_BLK_SHIFT */
	uint64_t oid;
	uint8_t idx;
	uint8_t copy_policy;
	uint8_t nr_copies;
	uint8_t lc_valid; /* 1: lc_delta holds store_lc (0 in stores from before) */
	uint32_t frag_size;
	uint64_t version;
	uint64_t uuid;     /* random, per creation: tells a re-created fragment apart */
	uint64_t data_off; /* file offset of data block 0 */
	uint64_t write_id; /* the two-phase write that made this version (0: none) */
	/* Set only in a pending file (obj/.pend/): how store_commit() applies it. */
	uint64_t pend_expect; /* STORE_PEND_RANGE: the version it applies to */
	uint32_t pend_off, pend_len; /* STORE_PEND_RANGE: the written range */
	uint8_t pend_kind;           /* 0 none, STORE_PEND_RANGE or STORE_PEND_WHOLE */
	uint8_t pend_flags;          /* STORE_PREP_* of store_prepare_ex() */
	/* The two-phase range write that made this version (applied header)
	 * or is pending (pending header): the fragments whose bytes it
	 * changes (bit i: fragment i; 0: unknown, all), and (applied) the
	 * version it was made over. A fragment outside the mask at that
	 * base version holds the same bytes as at this one. */
	uint32_t wr_touched;
	uint64_t wr_base;
	/* store_lc of this version (applied) or of the pending write. */
	uint8_t lc_delta[16];
	uint8_t reserved[14];
	uint32_t crc; /* crc32c of these 128 bytes with crc = 0 */
} __attribute__((packed));
_Static_assert(sizeof(struct store_frag_hdr) == 128, "fragment header is 128 bytes");

#define STORE_PEND_RANGE 1 /* a range write over version pend_expect */
#define STORE_PEND_WHOLE 2 /* the whole new fragment: renamed into place */
/* pend_flags bit: a whole pending write whose bytes are in its own synced
 * file DIR/obj/.pw.<name>.<write id> (the file the commit renames), not
 * in the log; its WAL_PREPARE record carries no data. */
#define STORE_PEND_FILE 0x80

struct store_jrec {
	char magic[8]; /* STORE_JREC_MAGIC */
	uint64_t seq;
	uint32_t first_block;
	uint32_t nr_blocks;
	uint32_t crc; /* crc32c of the metadata part (this struct + tables) with crc = 0 */
	uint32_t pad;
	struct store_frag_hdr hdr; /* the fragment header as it is after the write */
} __attribute__((packed));
_Static_assert(sizeof(struct store_jrec) == 160, "intent record header is 160 bytes");

struct store_stripe {
	pthread_rwlock_t lock; /* readers shared, writers/creators/removers exclusive */
};

/* ---- the write-ahead log (store_wal.c; format at the top of that file) ---- */

#define STORE_WAL_MAGIC 0x31525753u /* "SWR1" */
#define STORE_WAL_DEFAULT_SIZE (256ull << 20)
#define STORE_WAL_MIN_SIZE (160ull << 20)
#define STORE_WAL_ZERO_AHEAD (1ull << 20)
#define STORE_WAL_LAZY_MS 200 /* an idle log syncs lazy records after this */
#define STORE_WAL_FRAG_SLOTS 4096 /* slots of store_wal_note() */
/* The longest a group commit waits for announced records (store_wal_expect). */
#define STORE_WAL_GATHER_MAX_NS 2000000ull
/* Coordinators' hints (store_wal_hint): slots by coordinator tag, and the
 * longest a group commit is held for writes a hint says are coming. */
#define STORE_WAL_HINT_SLOTS 16
#define STORE_WAL_HOLD_MAX_NS 20000000ull
#define STORE_WAL_HOLD_GAPS 8
/* The longest a durable batch is held for coordinators offering patience
 * (STORE_HINT_PATIENCE, store_wal_hold.c). */
#define STORE_WAL_BUSY_HOLD_NS 4000000ull
/* store_wal_hold.c, under the log's mu: hold a batch about to sync while
 * records are on their way; note a durable record queued. */
void store_wal_gather(struct store *st);
void store_wal_durable_queued(struct store *st);
bool store_wal_would_hold(const struct store *st);

enum store_wal_type {
	WAL_MARK = 1,    /* first record of a log file: generation start */
	WAL_WRITE = 2,   /* whole new blocks + new header of a fragment */
	WAL_CREATE = 3,  /* a whole new fragment (replaces any old one) */
	WAL_REMOVE = 4,  /* a fragment (and its pending write) removed */
	WAL_PREPARE = 5, /* a pending two-phase write, kept aside */
	WAL_ABORT = 6,   /* a pending write dropped */
	WAL_COMMIT = 7,  /* a pending whole write became the fragment */
	WAL_INSTALL = 8, /* a whole fragment, synced as DIR/obj/.tmp.<name>, renamed into place */
};

struct store_wal_rec {
	uint32_t magic; /* STORE_WAL_MAGIC */
	uint32_t hcrc;  /* crc32c of this header with hcrc = 0 */
	uint64_t gen;   /* log generation: one per checkpoint */
	uint64_t lsn;   /* consecutive within a generation */
	uint32_t type;
	uint32_t len;  /* payload bytes after this header (then zero padding to 8) */
	uint32_t dcrc; /* crc32c of the payload */
	uint32_t batch_pos; /* position in its group commit: lsn - batch_pos began it */
} __attribute__((packed));
_Static_assert(sizeof(struct store_wal_rec) == 40, "log record header is 40 bytes");

/* WAL_MARK payload */
struct store_wal_mark {
	uint64_t time_ms;  /* wall clock of the checkpoint that began the file */
	uint32_t nr_pend;  /* WAL_PREPARE records that follow, re-logged */
	uint32_t pad;
} __attribute__((packed));

/* WAL_WRITE / WAL_CREATE payload: this, crcs[n], zero[n], pad to 8, n blocks. */
struct store_wal_blocks {
	struct store_frag_hdr hdr; /* the fragment header after the write */
	uint32_t first;
	uint32_t n;
	uint64_t pend_wid; /* non-zero: this write consumed that pending write */
} __attribute__((packed));

/* WAL_PREPARE payload: this, then pend_len bytes of data. */
struct store_wal_prep {
	struct store_frag_hdr hdr; /* meta, version, write_id, pend_* fields */
	uint64_t time_ms;          /* when it was prepared (wall clock) */
} __attribute__((packed));

/* WAL_INSTALL payload: the header of the synced temp file (its uuid names
 * that file: random per creation). Supersedes every earlier record of the
 * fragment at replay (store_wal_replay.c). */
struct store_wal_install {
	struct store_frag_hdr hdr;
	uint64_t pend_wid; /* non-zero: the file was that pending whole write's */
};

/* WAL_REMOVE / WAL_ABORT / WAL_COMMIT payload */
struct store_wal_ref {
	uint64_t oid;
	uint64_t version;
	uint64_t write_id;
	uint8_t idx;
	uint8_t pad[7];
} __attribute__((packed));

/* A submitted record: the writer thread gives it gen, lsn and a place. */
struct store_wal_req {
	struct store_wal_rec rec;
	const struct iovec *iov; /* payload */
	int niov;
	int result;
	bool done;
	bool lazy;
	pthread_cond_t cond; /* signalled (under the log's mu) when done */
	struct store_wal_req *next;
};

/* ---- log records and writes (store_wal_io.c) ---- */
/* iovecs of a batch being gathered */
struct store_wal_iovs {
	struct iovec *v;
	int n, cap;
	size_t bytes;
};
size_t store_wal_padded(size_t len);
uint64_t store_wal_wall_ms(void);
uint32_t store_wal_rec_hcrc(const struct store_wal_rec *r);
/* Give r its generation and lsn and its header checksum. */
void store_wal_rec_seal(struct store_wal_rec *r, uint64_t gen, uint64_t lsn);
/* A record of type over the payload iov[0..niov) (length and crc). */
void store_wal_rec_init(struct store_wal_rec *r, uint32_t type, const struct iovec *iov, int niov);
int store_wal_iov_add(struct store_wal_iovs *b, const void *p, size_t len);
/* Add one record (sealed header, payload, padding) to b. */
int store_wal_iov_add_rec(struct store_wal_iovs *b, const struct store_wal_rec *r,
			  const struct iovec *iov, int niov);
/* pwritev all of b at off; with limit < b->bytes stop after limit bytes (a torn write). */
int store_wal_write_iovs(int fd, const struct store_wal_iovs *b, uint64_t off, size_t limit);
/* fdatasync the log (not with nosync), counted and timed. */
int store_wal_sync(struct store *st, int fd);
/* Keep zeros written ahead of end in the current file (see store_wal_io.c). */
int store_wal_extend_zeroed(struct store *st, uint64_t end);

/* A prepared two-phase write, held in memory (and in the log). */
struct store_pend {
	struct store_frag_hdr hdr;
	uint64_t time_ms;
	/* sd_now_ns() when this process prepared it; 0 when replayed or
	 * loaded (peer/sole.c dates a commit's mark with it). */
	uint64_t mono_ns;
	uint8_t *data; /* hdr.pend_len bytes */
	struct store_pend *next;
};
#define STORE_PEND_BUCKETS 1024

struct store_wal {
	char *dir;
	int fd[2];      /* wal.0, wal.1: checkpoints alternate between them */
	int cur;        /* the file being appended to */
	uint64_t size;  /* budget for both files */
	uint64_t head;  /* append offset in fd[cur] */
	uint64_t zeroed[2]; /* each file is written (zeros ahead of head) up to here */
	uint64_t gen, lsn;
	bool dead;      /* a simulated crash hit the writer: nothing more is written */
	/* A simulated crash happened: no checkpoint at close. Set by any
	 * thread whose store call met the crash (wal_set_crashed), read by
	 * the writer and close: atomic (TSan found the plain flag racing). */
	bool crashed;
	bool stop;
	bool unsynced; /* lazy records written since the last sync (under mu) */
	uint64_t unsynced_since; /* when the first of them was written (ns) */
	bool inited, running;
	bool want_ckpt;
	bool ckpt_busy; /* a checkpoint runs: inline appends wait */
	int ckpt_result;
	uint64_t ckpt_done;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, done, applied;
	struct store_wal_req *q, *qtail;
	uint64_t unapplied; /* durable records whose effect is not yet in the files */
	/* Durable records on their way (atomic, see store_wal_expect()): the
	 * writer holds its sync a little while any are. */
	int64_t expected;
	bool gathering; /* the writer waits in store_wal_gather (under mu) */
	/* A batch is being written and synced, by the writer or by a caller
	 * that found it idle (store_wal.c, lead()); one at a time (under mu). */
	bool batching;
	bool leading; /* that batch is a caller's (under mu) */
	uint64_t last_sync_ns; /* how long the last fdatasync took (under mu) */
	uint64_t lazy_inline;  /* lazy records written by their callers (under mu) */
	uint64_t gather_ns;    /* test hook: a fixed gather budget (under mu; 0: auto) */
	/* Writes the coordinators say are on their way to their prepares
	 * (store_wal_hint, under mu): per coordinator tag, the count and when
	 * it was said; the hold budget of the next batches, adapted to the
	 * gaps between durable records (store_wal.c, hold_budget()). */
	struct {
		uint32_t coming;
		uint64_t patience_ns; /* STORE_HINT_PATIENCE */
		uint64_t at_ns;
	} hint[STORE_WAL_HINT_SLOTS];
	uint64_t last_durable_ns; /* when the last durable record was queued */
	uint64_t gap_ns;          /* moving average of the gaps between them */
	uint64_t hold_ns;         /* test hook: a fixed hold budget (0: auto) */
	uint64_t busy_ns;	  /* the longest hold for patient coordinators */
	/* For measuring (SHEEP_TEST_WAL_WINDOW_US): every durable batch waits
	 * this long for more records before its sync, whatever the load, and
	 * no caller syncs its own record (lead()); 0: off. */
	uint64_t window_ns;
	/* Durability per fragment (under mu): records written so far, how
	 * many of them the last completed sync covered, and per hash slot of
	 * (oid, idx) the count after the last record of a fragment there. */
	uint64_t written_seq, synced_seq;
	uint64_t frag_seq[STORE_WAL_FRAG_SLOTS];
	/* counters (under mu) */
	struct store_stats stats;
};

static inline bool wal_crashed(const struct store_wal *w)
{
	return __atomic_load_n(&w->crashed, __ATOMIC_RELAXED);
}

static inline void wal_set_crashed(struct store_wal *w)
{
	__atomic_store_n(&w->crashed, true, __ATOMIC_RELAXED);
}

/* ---- several disks per sheep (store_md.c) ---- */
#define STORE_MD_MAX 64
#define STORE_MD_VDISK (128ull << 20) /* one ring point per 128 MiB of a disk */
enum store_disk_state { STORE_DISK_ON = 1, STORE_DISK_OFF, STORE_DISK_FAILED };
struct store_disk {
	char *path;
	int fd;         /* the directory holding its fragment files; open until close */
	uint64_t dev;   /* st_dev: disks on one filesystem count its space once */
	uint64_t space; /* its weight, fixed when first plugged (DISK/.md_size) */
	int state;      /* enum store_disk_state (atomic reads) */
};
struct store_vdisk {
	uint64_t hash;
	int disk;
};
/* One slot of the open-file cache (store_fdcache.c). */
struct store_fdslot {
	uint64_t oid;
	uint8_t idx;
	bool dead; /* forgotten while in use: closed by the last user */
	int fd;    /* -1: empty */
	int refs;  /* calls using fd now */
	uint64_t used; /* fd_tick at its last lookup (least recently used goes first) */
};
/* 256 sets of up to 4 descriptors; how many ways are used depends on the
 * process's descriptor limit (store_fdcache_init). */
#define STORE_FDCACHE_SETS 256
#define STORE_FDCACHE_WAYS 4
#define STORE_FDCACHE_SLOTS (STORE_FDCACHE_SETS * STORE_FDCACHE_WAYS)

struct store {
	char *dir;
	int objfd;  /* dir/obj */
	/* Disks (store_md.c). Without md the one disk is dir/obj (fd objfd).
	 * disks[] only grows; ring and states change with md_rw held for
	 * writing and every stripe lock taken, so a holder of either sees
	 * them stable. */
	bool md;
	int nr_disks;
	struct store_disk disks[STORE_MD_MAX];
	struct store_vdisk *ring;
	size_t ring_n;
	pthread_rwlock_t md_rw;
	int md_suspect;       /* an I/O error was seen: check the disks soon (atomic) */
	uint32_t md_checks;   /* store_md_check() calls (atomic) */
	char *md_test_eio;    /* SHEEP_TEST_MD_EIO: a file naming a disk that "fails" */
	int jdirfd; /* dir/obj/.journal (only replayed: from stores before the log) */
	int pendfd; /* dir/obj/.pend (only loaded: from stores before the log) */
	bool nosync;
	struct store_wal wal;
	pthread_mutex_t pend_mu;
	struct store_pend *pend[STORE_PEND_BUCKETS];
	uint32_t zero_crc; /* crc32c of one all-zero block */
	uint64_t used;     /* bytes on disk of all fragment files (atomic) */
	uint64_t seq;      /* intent record sequence (atomic) */
	uint64_t csum_errors; /* blocks whose crc32c did not match on read (atomic) */
	enum store_crash crash;
	struct store_stripe stripes[STORE_NR_STRIPES];
	pthread_mutex_t fd_mu; /* the open-file cache */
	struct store_fdslot fdc[STORE_FDCACHE_SLOTS];
	uint64_t fd_hits, fd_opens; /* (under fd_mu) */
	uint64_t fd_tick;           /* lookups so far (under fd_mu) */
	int fd_ways;                /* ways of each set in use, 1..STORE_FDCACHE_WAYS */
};

/* A block-aligned view of one write: the new content of blocks
 * [first, first+n) as up to three iovecs of whole blocks (bounce buffers for
 * partially covered edge blocks, the caller's buffer for the rest), with the
 * stored checksum and an all-zero flag per block. */
struct store_span {
	uint32_t first;
	uint32_t n;
	struct iovec iov[3];
	int niov;
	uint8_t *head, *tail; /* bounce blocks, or NULL */
	uint32_t *crcs;
	uint8_t *zero;
};

static inline uint64_t store_data_off(uint32_t frag_size)
{
	uint64_t nblk = ((uint64_t)frag_size + STORE_BLK - 1) >> STORE_BLK_SHIFT;
	return STORE_HDR_AREA + ((nblk * 4 + STORE_BLK - 1) & ~(uint64_t)(STORE_BLK - 1));
}

static inline size_t store_jrec_data_off(uint32_t n)
{
	size_t meta = sizeof(struct store_jrec) + (size_t)n * 5;
	return (meta + STORE_BLK - 1) & ~(size_t)(STORE_BLK - 1);
}

int store_pread_full(int fd, void *buf, size_t len, uint64_t off);
int store_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int store_pwritev_full(int fd, const struct iovec *iov, int niov, uint64_t off);
int store_hdr_check(const struct store_frag_hdr *h);
bool store_crash_at(struct store *st, enum store_crash where);
int store_apply(struct store *st, int fd, const struct store_frag_hdr *nh, uint32_t first,
		uint32_t n, const uint32_t *crcs, const uint8_t *zero, const struct iovec *iov,
		int niov, bool fresh);
uint32_t store_hdr_crc(const struct store_frag_hdr *h);
void store_frag_name(uint64_t oid, uint8_t idx, char *buf);
/* The fragment's file, from the open-file cache (store_fdcache.c), with
 * its header checked into h; give it back with store_frag_close(), never
 * close(). The caller holds the fragment's stripe lock meanwhile. */
int store_open_frag(struct store *st, uint64_t oid, uint8_t idx, int flags,
		    struct store_frag_hdr *h);
void store_frag_close(struct store *st, uint64_t oid, uint8_t idx, int fd);
/* The fragment's name now points elsewhere (renamed over, unlinked):
 * drop its cached descriptor. Called under its stripe lock (writer). */
void store_fdcache_forget(struct store *st, uint64_t oid, uint8_t idx);
void store_fdcache_init(struct store *st);
/* A cached descriptor of the fragment (a reference taken), or -1. */
int store_fdcache_get(struct store *st, uint64_t oid, uint8_t idx);
/* fd was just opened for the fragment: keep it when its slot is free
 * (a reference taken either way; store_frag_close() gives it back). */
void store_fdcache_add(struct store *st, uint64_t oid, uint8_t idx, int fd);
void store_fdcache_drop_all(struct store *st);
int store_span_prepare(struct store *st, int fd, const struct store_frag_hdr *h,
		       const uint8_t *buf, uint32_t off, uint32_t len, struct store_span *sp);
void store_span_free(struct store_span *sp);
struct store_stripe *store_stripe_of(struct store *st, uint64_t oid, uint8_t idx);
int store_check_range(uint32_t frag_size, const void *buf, uint32_t off, uint32_t len);
int store_read_range(struct store *st, int fd, const struct store_frag_hdr *h, uint8_t *dst,
		     uint32_t off, uint32_t len);
void store_hdr_init(struct store *st, const struct store_meta *meta, struct store_frag_hdr *h);
/* A header's store_lc (NULL or not valid: none). */
void store_hdr_set_lc(struct store_frag_hdr *h, const struct store_lc *lc);
void store_hdr_get_lc(const struct store_frag_hdr *h, struct store_lc *lc);
/* A random fragment uuid (per creation, and per whole rewrite: what names
 * its temp file's owner at replay). */
uint64_t store_new_uuid(struct store *st);
/* A range write covering a whole fragment of at least this size is
 * installed as a new file (store_write_locked). */
#define STORE_WHOLE_MIN (64u * 1024)
/* Log and apply a range write (new header nh) of the open fragment fd. */
int store_write_span(struct store *st, int fd, const struct store_frag_hdr *nh,
		     const struct store_span *sp, uint64_t pend_wid);
/* Log (unless replaying) and build a whole fragment from header h and
 * data [off, off+len), replacing any old one. */
int store_put_whole(struct store *st, const struct store_frag_hdr *h, const void *buf,
		    uint32_t off, uint32_t len, enum store_wal_type type, bool replaying);
int store_write_locked(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		       uint64_t new_version, uint64_t write_id, uint64_t pend_wid, uint32_t touched,
		       const struct store_lc *lc, const void *buf, uint32_t off, uint32_t len);
#define STORE_NAME_LEN 32
uint64_t store_disk_bytes(int fd);
bool store_parse_name(const char *s, uint64_t *oid, uint8_t *idx);

/* store_wal.c */
/* Open the log files; store_wal_replay() replays them, store_wal_start()
 * then checkpoints and starts the writer. */
int store_wal_open(struct store *st, const char *dir, uint64_t size);
int store_wal_start(struct store *st);
void store_wal_close(struct store *st);
/* Make the record (type, payload iov) durable in the log; on 0 the caller
 * must apply its effect and then call store_wal_applied(). */
int store_wal_append(struct store *st, uint32_t type, const struct iovec *iov, int niov);
/* Like store_wal_append(), but answered once the record is written (in
 * the page cache, so it survives the process), before it is synced: it
 * becomes durable with the next group commit, or STORE_WAL_LAZY_MS after
 * the log goes idle. For records whose loss in a power cut the layer
 * above repairs (commits of prepared writes, which stay durable). */
int store_wal_append_lazy(struct store *st, uint32_t type, const struct iovec *iov, int niov);
/* After a record of fragment (oid, idx) was appended (caller holds its
 * stripe lock): remember it for store_wal_frag_durable(). */
void store_wal_note(struct store *st, uint64_t oid, uint8_t idx);
/* Is every record of fragment (oid, idx) logged so far durable (synced)?
 * Conservative: a slot shared with another fragment may answer false. */
bool store_wal_frag_durable(struct store *st, uint64_t oid, uint8_t idx);
void store_wal_applied(struct store *st);
int store_wal_checkpoint(struct store *st);
/* Replay the log over the fragment files (at open). */
int store_wal_replay(struct store *st);

/* store_wal_replay.c */
/* Build a whole fragment (header h, blocks sp) in place of any old one,
 * without logging (replay). */
/* Replay of a WAL_INSTALL record: rename its synced temp file into place
 * when the rename was lost (the temp file's uuid is the record's). */
int store_replay_install(struct store *st, const struct store_frag_hdr *h, uint64_t pend_wid);
/* The directory holding file name of oid: the ring's, or the disk that has it. */
int store_file_dir(struct store *st, uint64_t oid, const char *name);
/* Name of the file of a file-backed pending whole write (STORE_PEND_FILE). */
#define STORE_PW_NAME_LEN 64
void store_pw_name(uint64_t oid, uint8_t idx, uint64_t write_id, char *buf);
/* Build (and sync) the file of a pending whole write whose committed
 * header is h; 0 or -errno (nothing left behind). */
int store_pw_build(struct store *st, const struct store_frag_hdr *h, const void *buf,
		   uint32_t off, uint32_t len);
/* Commit it: a WAL_INSTALL record (lazy: its WAL_PREPARE is durable)
 * naming the write, then the rename. */
int store_pw_commit(struct store *st, const struct store_frag_hdr *h);
/* Remove the file of a dropped pending whole write. */
void store_pw_unlink(struct store *st, const struct store_pend *p);
/* The committed header of pending whole write p. */
void store_pw_final_hdr(const struct store_pend *p, struct store_frag_hdr *h);
int store_replay_whole(struct store *st, const struct store_frag_hdr *h,
		       const struct store_span *sp);

/* store.c: store_stat under the stripe lock (store_stat_pending). */
int store_stat_locked(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta);

/* store_pendtab.c: the table of pending writes */
struct store_pend *store_pend_find(struct store *st, uint64_t oid, uint8_t idx);
/* store_pend.c: store_pending under the stripe lock. */
int store_pending_locked(struct store *st, uint64_t oid, uint8_t idx, struct store_pending *out);
void store_pend_put(struct store *st, struct store_pend *p);
void store_pend_drop(struct store *st, uint64_t oid, uint8_t idx, uint64_t write_id);
void store_pend_free_all(struct store *st);
/* store_pend.c */
int store_pend_load_legacy(struct store *st);
void store_pend_legacy_clear(struct store *st);

/* store_md.c */
int store_md_init(struct store *st, const struct store_config *cfg);
void store_md_close(struct store *st);
/* The directory fd holding fragment file name of oid: the disk the ring
 * gives oid, or another disk where the file still is (a move that could
 * not finish). Caller holds the fragment's stripe lock (or is replay). */
int store_md_dirfd(struct store *st, uint64_t oid, const char *name);
/* The disk the ring gives oid. */
int store_md_ring_fd(struct store *st, uint64_t oid);
/* Unlink copies of name on disks other than the one at keep_fd. */
void store_md_drop_others(struct store *st, const char *name, int keep_fd);
const char *store_md_ring_path(const struct store *st, uint64_t oid);
/* Sizes and free bytes of the filesystems of the disks in use, each once. */
int store_md_space(struct store *st, uint64_t *total, uint64_t *avail);
/* syncfs once per filesystem of the disks in use. */
int store_md_syncfs(struct store *st);
/* Note an I/O error (the disk checker looks sooner). */
void store_md_note_eio(struct store *st);

/* store_journal.c (stores from before the log) */
int store_journal_replay_all(struct store *st);

#endif
