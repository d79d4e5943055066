/* store_test.h - test-only hooks of the store: simulated crashes and where bytes live on disk. */
#ifndef SHEEP_STORE_TEST_H
#define SHEEP_STORE_TEST_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * Make the next store_write() or store_create() stop at a point as if the
 * process died there: the call returns -ECANCELED and leaves on disk (and in
 * the page cache) exactly what a crash would. The test then calls
 * store_close() and store_open() to recover. One-shot.
 */
enum store_crash {
	STORE_CRASH_NONE = 0,
	STORE_CRASH_TORN_INTENT,   /* intent record half written, not durable */
	STORE_CRASH_AFTER_INTENT,  /* intent durable, nothing applied */
	STORE_CRASH_MID_APPLY,     /* intent durable, first run of blocks applied */
	STORE_CRASH_BEFORE_RENAME, /* create: temp file complete, not renamed */
};
void store_test_set_crash(struct store *st, enum store_crash where);

/* Path of the fragment's file; 0 or -ENAMETOOLONG. */
int store_test_frag_path(const struct store *st, uint64_t oid, uint8_t idx, char *buf,
			 size_t len);
/* File offset holding byte off of a fragment of frag_size bytes. */
uint64_t store_test_file_offset(uint32_t frag_size, uint32_t off);

#endif
