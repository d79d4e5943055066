/* store_test.h - test-only hooks of the store: simulated crashes and where bytes live on disk. */
#ifndef SHEEP_STORE_TEST_H
#define SHEEP_STORE_TEST_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * Make the next store call (or log batch, or checkpoint) that reaches the
 * point stop there as if the process died: the call returns -ECANCELED and
 * leaves on disk (and in the page cache) exactly what a crash would; the
 * log writes nothing more after TORN_INTENT, WAL_UNSYNCED and CKPT_*, and
 * store_close() then skips its checkpoint. The test calls store_close()
 * and store_open() to recover. One-shot. TORN_INTENT cuts the last record
 * of a log batch in half (the earlier ones are whole).
 */
enum store_crash {
	STORE_CRASH_NONE = 0,
	STORE_CRASH_TORN_INTENT,   /* intent record half written, not durable */
	STORE_CRASH_AFTER_INTENT,  /* intent durable, nothing applied */
	STORE_CRASH_MID_APPLY,     /* intent durable, first run of blocks applied */
	STORE_CRASH_BEFORE_RENAME, /* create: temp file complete, not renamed */
	STORE_CRASH_WAL_UNSYNCED,  /* a batch of log records written, not synced */
	STORE_CRASH_CKPT_SYNCED,   /* checkpoint: files synced, new log file not begun */
	STORE_CRASH_CKPT_TORN,     /* checkpoint: new log file half written */
	STORE_CRASH_INSTALL_LOGGED, /* create: temp synced, WAL_INSTALL durable, not renamed */
};
void store_test_set_crash(struct store *st, enum store_crash where);

/* Run a checkpoint now (the crash hooks CKPT_* apply); 0 or -errno. */
int store_test_checkpoint(struct store *st);
/* Hold each group commit up to ns while announced records are on their
 * way (store_wal_expect), instead of the last sync's time (0: back to that). */
void store_test_gather_ns(struct store *st, uint64_t ns);
/* A fixed budget for holds on hinted writes (store_wal_hint); 0: adaptive. */
void store_test_hold_ns(struct store *st, uint64_t ns);
/* The longest hold for coordinators offering patience (STORE_HINT_PATIENCE;
 * default STORE_WAL_BUSY_HOLD_NS). */
void store_test_busy_ns(struct store *st, uint64_t ns);
/* Path of the log file being appended to; 0 or -ENAMETOOLONG. */
int store_test_wal_path(const struct store *st, char *buf, size_t len);

/* How many times a fragment file was opened (open-file cache misses). */
uint64_t store_test_fd_opens(struct store *st);
/* Descriptors the open-file cache may keep open. */
int store_test_fd_capacity(struct store *st);
/* The open-file cache's set of fragment (oid, idx). */
int store_test_fd_set(uint64_t oid, uint8_t idx);

/* Path of the fragment's file; 0 or -ENAMETOOLONG. */
int store_test_frag_path(const struct store *st, uint64_t oid, uint8_t idx, char *buf,
			 size_t len);
/* File offset holding byte off of a fragment of frag_size bytes. */
uint64_t store_test_file_offset(uint32_t frag_size, uint32_t off);

#endif
