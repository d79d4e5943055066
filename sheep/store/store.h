/* store.h - the local object store: one file per object fragment, checksummed, versioned, crash-atomic. */
#ifndef SHEEP_STORE_H
#define SHEEP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A fragment is identified by (oid, idx): idx is the erasure-code fragment
 * index 0..d+p-1, or the copy number's placement position for a replicated
 * object (each copy holder stores idx = its position). Each fragment has a
 * fixed size set at creation (object size / d for EC, object size for
 * copies), a version (u64, set by the gateway: higher = newer) and a crc32c
 * per block so a partial read can be verified without reading the whole
 * fragment. Unwritten ranges read as zeros and take no disk space.
 *
 * Every mutation is first a record in the store's write-ahead log
 * (store_wal.c): one writer thread syncs all records that arrived while
 * the previous sync ran with one write and one fdatasync (group commit),
 * then each call applies its effect to the fragment file without a sync
 * of its own; a checkpoint syncs the fragment files and starts the log
 * afresh.
 *
 * Guarantees (unless opened with nosync):
 *  - every call that returns 0 is durable (its log record is synced),
 *    except store_commit() and store_abort(): their record is written
 *    (a killed process loses nothing) and synced by the next group commit
 *    or at most 200 ms later; a power cut before that leaves the prepared
 *    write pending again, which its coordinator's rules finish;
 *  - a crash at any point of store_write() leaves the fragment wholly at the
 *    old version and content or wholly at the new one (log replay);
 *  - creation is atomic: a fragment either exists complete or not at all;
 *  - a read whose block checksum does not match returns -EIO, never data.
 * All functions are thread-safe; writes to one fragment are serialised
 * inside the store. Errors are 0 or -errno.
 */

struct store;

/*
 * Last-changed versions of an EC object's data fragments (docs/
 * architecture.md, "Unchanged fragments"), kept in the header of every
 * fragment a range write made: data fragment k of the object, at the
 * generation this fragment's version names, last changed at version
 * (version - delta[k]). A data fragment at that version holds the bytes
 * of that generation; the write sends it nothing. valid = 0: no record
 * (a fragment written whole, or by a sheep from before: every data
 * fragment of its generation is at its version).
 */
#define STORE_LC_MAX 16
struct store_lc {
	uint8_t valid;
	uint8_t delta[STORE_LC_MAX];
};

struct store_meta {
	uint64_t oid;
	uint8_t idx;
	uint8_t copy_policy; /* policy byte of the object's VDI (0 = copies) */
	uint8_t nr_copies;   /* copies, or d+p */
	uint32_t frag_size;
	uint64_t version;
	uint64_t write_id;   /* two-phase write that made this version, 0 if none (stat only) */
	/* Two-phase range writes: prepare (in): the fragments the write
	 * changes (bit i: fragment i; 0: unknown). Stat (out): those of the
	 * write that made this version and the version it was made over. */
	uint32_t wr_touched;
	uint64_t wr_base;
	uint64_t disk_bytes; /* bytes this fragment occupies on disk */
	/* Create and prepare (in), stat (out): the last-changed versions of
	 * the object's data fragments at this version (store_lc). A store
	 * call that changes the version without one clears it. */
	struct store_lc lc;
};

/* Open (creating if needed) the store under dir (objects in dir/obj/, the
 * log in dir/wal.0 and dir/wal.1), replaying the log. */
int store_open(const char *dir, bool nosync, struct store **out);

struct store_config {
	const char *dir;
	bool nosync;
	const char *wal_dir; /* NULL: dir */
	uint64_t wal_size;   /* bytes for both log files; 0: 256 MiB */
	/* Sheepdog's multi-disk store (sheep DIR,DISK1,DISK2): fragment files
	 * spread over these directories by capacity with a consistent hash of
	 * the object id; dir keeps the log and the node's state. NULL or
	 * nr_disks 0: the fragments live in dir/obj. */
	const char *const *disks;
	int nr_disks;
};
int store_open_config(const struct store_config *cfg, struct store **out);

/* Counters of the write-ahead log since open. */
struct store_stats {
	uint64_t syncs;         /* fdatasyncs of the log */
	uint64_t records;       /* records written */
	uint64_t batches;       /* group commits (one write + one sync each) */
	uint64_t log_bytes;     /* bytes written to the log */
	uint64_t max_batch;     /* most records in one batch */
	uint64_t checkpoints;
	uint64_t ckpt_ns_total; /* time spent in checkpoints */
	uint64_t ckpt_ns_last;
	uint64_t log_fill;      /* bytes of the current log file */
	uint64_t log_size;      /* budget of both files */
	uint64_t replayed;      /* records replayed at open */
	uint64_t dropped;       /* records found corrupt or torn at open */
	uint64_t pending;       /* prepared writes held now */
	uint64_t holds;         /* group commits held for records on their way */
	uint64_t led;           /* group commits written by their caller (writer idle) */
};
int store_get_stats(struct store *st, struct store_stats *out);

/*
 * Group commit hints. A request that will log a durable record (a peer
 * write or prepare) is announced when it arrives (store_wal_expect(st, 1)
 * on the thread that received it); the thread that runs it claims the
 * announcement (store_wal_claim) before calling the store, and the first
 * durable record it logs takes it back; store_wal_unclaim() afterwards
 * takes it back when none was logged (an error, a refused write). While
 * announced records are on their way, the log writer holds its next sync
 * a little (at most as long as its last sync took, and 2 ms) so that they
 * share it. Only a hint: a wrong count costs time, never durability.
 */
void store_wal_expect(struct store *st, int delta);
void store_wal_claim(struct store *st);
void store_wal_unclaim(struct store *st);
/*
 * A coordinator's hint, carried by its peer writes (prepares, replicated
 * writes, version bumps): hint = tag << 24 | patience << 16 | coming,
 * where tag (8 bits) names the coordinator and coming counts its other
 * writes that hold their object lock and have not sent their prepares
 * yet (they will, within a read round). While any coordinator's latest
 * hint says writes are coming, the log writer holds a sync that has
 * durable records queued, for a bounded time adapted to the gaps between
 * durable records (at most STORE_WAL_HOLD_MAX_NS), so that they share
 * it. Patience (STORE_HINT_PATIENCE_UNIT_NS units) says the coordinator
 * has other writes in flight (a client keeps a queue of them) and its
 * records may wait this long for company: while a coordinator's latest
 * hint offers some, the writer holds every durable batch for more
 * records (the least patience offered, at most STORE_WAL_BUSY_HOLD_NS),
 * and no caller syncs its own record. A hint of 0 (a lone write: QD1)
 * never holds anything. Only a hint: a wrong one costs time, never
 * durability.
 */
#define STORE_HINT_COMING	    0xffffu
#define STORE_HINT_PATIENCE_SHIFT   16
#define STORE_HINT_PATIENCE_MAX	    0xffu
#define STORE_HINT_PATIENCE_UNIT_NS 64000u
void store_wal_hint(struct store *st, uint32_t hint);
void store_close(struct store *st);

/* Create fragment (oid, idx) of frag_size bytes at version, with buf
 * written at [off, off+len) and zeros elsewhere. -EEXIST if present. */
int store_create(struct store *st, const struct store_meta *meta, const void *buf, uint32_t off,
		 uint32_t len);

/* Like store_create(), but an existing fragment (oid, idx) is replaced in
 * one atomic step (rename over it): a crash leaves the old one or the new
 * one, never neither. For whole-fragment rewrites (recovery, re-encode). */
int store_replace(struct store *st, const struct store_meta *meta, const void *buf, uint32_t off,
		  uint32_t len);

/* Write [off, off+len) and set the version to new_version. When
 * expect_version != STORE_ANY_VERSION and differs from the stored one,
 * nothing is written and -ESTALE is returned. len may be 0 (a version bump
 * only). -ENOENT if absent; -EINVAL when the range passes frag_size. */
#define STORE_ANY_VERSION UINT64_MAX
int store_write(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		uint64_t new_version, const void *buf, uint32_t off, uint32_t len);
/* store_write() that sets the fragment's store_lc to *lc (NULL: none). */
int store_write_lc(struct store *st, uint64_t oid, uint8_t idx, uint64_t expect_version,
		   uint64_t new_version, const struct store_lc *lc, const void *buf, uint32_t off,
		   uint32_t len);

/* Read [off, off+len); the fragment's version goes to *version if not NULL.
 * -ENOENT absent, -EIO checksum mismatch, -EINVAL range. */
int store_read(struct store *st, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
	       uint32_t len, uint64_t *version);
/* store_read(), and the fragment's store_lc to *lc (may be NULL). */
int store_read_lc(struct store *st, uint64_t oid, uint8_t idx, void *buf, uint32_t off,
		  uint32_t len, uint64_t *version, struct store_lc *lc);

/*
 * Two-phase writes: the intent record of DESIGN.md invariant 2, per
 * fragment. store_prepare() checks a write as store_write() (range, with
 * expect_version) or store_replace() (whole) would and makes it durable
 * aside, in obj/.pend/<name>, without touching the fragment: a crash
 * after it leaves the fragment as it was plus the pending record.
 * store_commit() applies the pending write (range: through the intent
 * journal; whole: one rename) and stamps the fragment with write_id;
 * store_abort() drops it. One pending slot per fragment: a prepare
 * finding another write's record younger than grace_ms answers -EBUSY
 * (its writer is presumably about to commit), an older one is replaced.
 *
 * meta->version is the version the write makes. Range writes take
 * whole = false and expect_version (STORE_ANY_VERSION: any). Errors as
 * store_write(); store_commit() answers 0 when the fragment is already at
 * (new_version, write_id), -ENOENT when no such write is pending, -ESTALE
 * when the fragment moved from the version the write expects.
 */
int store_prepare(struct store *st, const struct store_meta *meta, bool whole,
		  uint64_t expect_version, uint64_t write_id, uint32_t grace_ms, const void *buf,
		  uint32_t off, uint32_t len);
/*
 * store_prepare() with flags: STORE_PREP_EARLY marks a write its
 * coordinator may acknowledge before committing it (the early-ack
 * two-phase write, docs/architecture.md). Such a record is never replaced
 * by another write's prepare, however old: it may hold an acknowledged
 * write, so only a commit or an abort ends it (-EBUSY meanwhile). The flag
 * is logged with the record and reported by store_pending().
 */
#define STORE_PREP_EARLY 0x01
/*
 * STORE_PREP_LAZY: a version-only prepare (len 0) of a fragment the write
 * does not change. When every record of the fragment logged so far is
 * durable, the PREPARE is written but not waited on (synced by the next
 * group commit): a power cut may lose it, leaving the fragment at
 * expect_version, durable, whose bytes the new version shares; the
 * coordinator's decision rule counts such a fragment (docs/architecture.md,
 * "untouched fragments"). Otherwise it is made durable as usual.
 */
#define STORE_PREP_LAZY 0x02
int store_prepare_ex(struct store *st, const struct store_meta *meta, bool whole,
		     uint64_t expect_version, uint64_t write_id, uint32_t grace_ms, uint8_t flags,
		     const void *buf, uint32_t off, uint32_t len);
int store_commit(struct store *st, uint64_t oid, uint8_t idx, uint64_t new_version,
		 uint64_t write_id);
int store_abort(struct store *st, uint64_t oid, uint8_t idx, uint64_t write_id);

struct store_pending {
	uint64_t new_version;
	uint64_t write_id;
	uint64_t expect_version; /* STORE_ANY_VERSION for a whole write */
	uint64_t age_ms;
	uint8_t flags; /* STORE_PREP_* */
	uint32_t touched; /* meta->wr_touched of its prepare */
	struct store_lc lc; /* meta->lc of its prepare */
	/* When this process prepared it (sd_now_ns()); 0 when it was
	 * replayed from the log at open. */
	uint64_t prep_ns;
};
/* The write pending on (oid, idx): 0, or -ENOENT when there is none. */
int store_pending(struct store *st, uint64_t oid, uint8_t idx, struct store_pending *out);

int store_stat(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta);
/* Both at one moment (a commit cannot fall between them): store_stat's
 * result; *has_pend says whether pend was filled. */
int store_stat_pending(struct store *st, uint64_t oid, uint8_t idx, struct store_meta *meta,
		       struct store_pending *pend, bool *has_pend);
int store_remove(struct store *st, uint64_t oid, uint8_t idx);

/* Verify every block checksum of a fragment: 0, -EIO or -ENOENT. */
int store_verify(struct store *st, uint64_t oid, uint8_t idx);

/* Call fn for every fragment held (order unspecified); stop early and
 * return fn's value when it returns non-zero. */
int store_for_each(struct store *st, int (*fn)(const struct store_meta *meta, void *arg),
		   void *arg);

/* Capacity of the filesystem holding the store and bytes used by it. */
int store_space(struct store *st, uint64_t *total, uint64_t *used);
/* Free bytes of the filesystems holding the store's disks (each once). */
int store_avail(struct store *st, uint64_t *avail);
/* Blocks whose checksum did not match when read, since the store opened. */
uint64_t store_checksum_errors(const struct store *st);

/*
 * Several disks (store_md.c). store_md_info() fills out[0..max) with the
 * disks in use and returns their count. store_md_plug() adds directories
 * (created if absent) and store_md_unplug() takes disks out; both check
 * every path first (-EINVAL: none given or a path too long, -EEXIST:
 * already in use or twice in the list, -ENOENT: not a disk of this store,
 * -EBUSY: it would leave no disk, -ENOTSUP: a store without disks listed)
 * and change nothing on an error; then reads and writes wait while the
 * fragments whose disk changed move (rename on one filesystem, copy, sync
 * and unlink across), and a fragment that cannot be read from an
 * unplugged disk is left out: recovery fetches it from peers. On success
 * *moved counts the fragments moved (may be NULL).
 * store_md_check() looks at every disk in use (its directory still there
 * and writable, the SHEEP_TEST_MD_EIO hook) and takes out the failed
 * ones without moving anything; it returns how many it took out (the
 * caller then has recovery fetch what they held). The last disk is never
 * taken out (-EBUSY when it fails).
 */
struct store_md_disk {
	char path[4096];
	uint64_t space; /* its weight in the ring */
	uint64_t used;  /* bytes of its fragment files */
	uint64_t avail; /* free bytes of its filesystem */
	uint32_t nr_frags;
};
int store_md_info(struct store *st, struct store_md_disk *out, int max);
int store_md_plug(struct store *st, const char *const *paths, int n, uint64_t *moved);
int store_md_unplug(struct store *st, const char *const *paths, int n, uint64_t *moved);
int store_md_check(struct store *st);
/* The disk the ring gives oid (an index into store_md_info()'s list). */
int store_md_disk_of(struct store *st, uint64_t oid);

/* Where the store keeps per-node state files (epoch log, config): dir. */
const char *store_dir(const struct store *st);

#endif
