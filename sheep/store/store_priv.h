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
	uint8_t pad0;
	uint32_t frag_size;
	uint64_t version;
	uint64_t uuid;     /* random, per creation: tells a re-created fragment apart */
	uint64_t data_off; /* file offset of data block 0 */
	uint64_t write_id; /* the two-phase write that made this version (0: none) */
	/* Set only in a pending file (obj/.pend/): how store_commit() applies it. */
	uint64_t pend_expect; /* STORE_PEND_RANGE: the version it applies to */
	uint32_t pend_off, pend_len; /* STORE_PEND_RANGE: the written range */
	uint8_t pend_kind;           /* 0 none, STORE_PEND_RANGE or STORE_PEND_WHOLE */
	uint8_t reserved[43];
	uint32_t crc; /* crc32c of these 128 bytes with crc = 0 */
} __attribute__((packed));
_Static_assert(sizeof(struct store_frag_hdr) == 128, "fragment header is 128 bytes");

#define STORE_PEND_RANGE 1 /* a range write over version pend_expect */
#define STORE_PEND_WHOLE 2 /* the whole new fragment: renamed into place */

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
	int jfd;               /* this stripe's intent journal */
};

struct store {
	char *dir;
	int objfd;  /* dir/obj */
	int jdirfd; /* dir/obj/.journal */
	int pendfd; /* dir/obj/.pend: prepared two-phase writes, one per fragment */
	bool nosync;
	uint32_t zero_crc; /* crc32c of one all-zero block */
	uint64_t used;     /* bytes on disk of all fragment files (atomic) */
	uint64_t seq;      /* intent record sequence (atomic) */
	uint64_t csum_errors; /* blocks whose crc32c did not match on read (atomic) */
	enum store_crash crash;
	struct store_stripe stripes[STORE_NR_STRIPES];
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

/* store_journal.c */
int store_journal_write(struct store *st, int jfd, const struct store_frag_hdr *nh,
			const struct store_span *sp);
void store_journal_clear(struct store *st, int jfd, const struct store_span *sp);
int store_journal_replay_all(struct store *st);

#endif
