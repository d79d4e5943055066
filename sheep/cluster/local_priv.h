/* local_priv.h - what the files of the local cluster driver share: the on-disk records, the
 * context, the log and probe helpers. */
#ifndef SHEEP_CLUSTER_LOCAL_PRIV_H
#define SHEEP_CLUSTER_LOCAL_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sheep/cluster/cluster.h"

/* The files and the protocol are described at the top of local.c. */
#define DEFAULT_PATH "/tmp/sheepdog-local"
#define LOG_MAGIC    "SDLOCAL1"
#define MEMB_MAGIC   "SDMEMB1"
#define REC_MAGIC    0x4c434f4cu /* "LOCL" */
#define LOG_HDR	     64u
#define PROBE_MS     200
#define SWEEP_MS     5000 /* every member probes every file at least this often */
#define POLL_MS	     50	  /* the timer without inotify */
#define COMPACT_MIN  (1u << 20)
#define READ_BATCH   (4u << 20)

enum rec_type { REC_JOIN = 1, REC_LEAVE = 2, REC_MSG = 3 };

struct log_hdr {
	char magic[8];
	uint64_t base;
	uint64_t end;
	uint64_t id; /* random per log; kept by compaction */
	uint8_t pad[32];
} __attribute__((packed));
_Static_assert(sizeof(struct log_hdr) == LOG_HDR, "log header is 64 bytes");

struct rec_hdr {
	uint32_t magic;
	uint8_t type;
	uint8_t pad[3];
	uint32_t len; /* payload bytes */
	uint32_t crc; /* crc32c of header (crc = 0) and payload */
	uint64_t lsn;
	struct sd_node node;
} __attribute__((packed));
_Static_assert(sizeof(struct rec_hdr) == 120, "record header is 120 bytes");

struct memb_file {
	char magic[8];
	uint64_t pos;
	struct sd_node node;
} __attribute__((packed));

struct cluster_ctx {
	char dir[PATH_MAX - 64];
	struct sd_node self;
	struct cluster_events ev;
	void *arg;
	pthread_mutex_t mu; /* flock does not exclude threads sharing lockfd */
	int dirfd, lockfd, logfd, memfd;
	ino_t log_ino;
	int inofd, timerfd, epfd;      /* inofd -1: polling */
	int log_wd;		       /* inotify watch of the log file, or -1 */
	ino_t watched_ino;	       /* the log inode log_wd watches */
	unsigned tick_ms;	       /* timer period */
	unsigned probe_acc, sweep_acc; /* ms since the last probe, sweep */
	char memname[160];
	bool joined;   /* join() done, leave() not */
	bool in_group; /* own JOIN delivered */
	uint64_t pos, published, last_base, last_end;
	uint64_t log_id; /* of the log we joined */
	struct sd_node *members;
	size_t nr_members;
};

/* local.c: the records of want bytes of the log read at c->pos, checked
 * (magic, lsn, length, crc) and delivered in order, c->pos moved past each;
 * a record cut at the end waits for the next batch. 0, or -EIO at the
 * first bad record (the ones before it delivered). Pure: fuzzed. */
int lc_deliver_batch(struct cluster_ctx *c, const uint8_t *buf, size_t want);

/* local_log.c: records, the shared log and its lock (caller holds mu and
 * the flock for the log functions). */
size_t lc_rec_size(uint32_t len);
bool lc_same_node(const struct sd_node *a, const struct sd_node *b);
int lc_pread_full(int fd, void *buf, size_t len, uint64_t off);
int lc_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
void lc_member_name(const struct sd_node *n, char *buf, size_t len);
int lc_write_fresh_log(struct cluster_ctx *c, uint64_t id, uint64_t base, uint64_t end,
		       const void *recs, size_t len);
int lc_log_current(struct cluster_ctx *c);
int lc_log_hdr_read(struct cluster_ctx *c, struct log_hdr *h);
void lc_rec_fill(struct rec_hdr *rh, enum rec_type type, const struct sd_node *node, uint64_t lsn,
		 const void *payload, uint32_t len);
int lc_log_append(struct cluster_ctx *c, enum rec_type type, const struct sd_node *node,
		  const void *payload, uint32_t len);
int lc_lock_log(struct cluster_ctx *c, int op);
void lc_unlock_log(struct cluster_ctx *c);

/* local_probe.c: failure detection (try-locks of member files). */
int lc_probe(struct cluster_ctx *c, bool joining);
void lc_detect_failures(struct cluster_ctx *c, unsigned ms);

#endif
