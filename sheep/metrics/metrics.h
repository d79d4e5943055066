/* metrics.h - a sheep's counters and latency histograms, and their Prometheus text form (sheep
 * --http). */
#ifndef SHEEP_METRICS_H
#define SHEEP_METRICS_H

#include <stdbool.h>
#include <stdint.h>

/* Latency buckets (upper bounds, seconds): 100 us .. 2.5 s, then +Inf. */
#define SHEEP_METRICS_NR_BUCKETS 14

enum sheep_metrics_proto { SM_PROTO_SHEEPDOG, SM_PROTO_NBD, SM_NR_PROTO };
enum sheep_metrics_dir { SM_READ, SM_WRITE, SM_NR_DIR };

/* A redundancy policy as a counter index: the EC policy byte (1..255), or
 * 256 + N for N copies (copy_policy 0). sheep_metrics_policy() makes one. */
#define SM_NR_POLICY (256 + 32)

struct sheep_metrics_hist {
	uint64_t bucket[SHEEP_METRICS_NR_BUCKETS + 1]; /* not cumulative; last = +Inf */
	uint64_t count;
	uint64_t sum_ns;
};

/*
 * Every counter is updated with relaxed atomics from any thread and read
 * the same way: a scrape sees each value whole, not a snapshot of all.
 */
struct sheep_metrics {
	uint64_t req[256];	 /* requests served, by opcode (client and peer) */
	uint64_t req_err[256];	 /* of which answered with a result other than SUCCESS */
	uint64_t bytes_in[256];	 /* request payload bytes, by opcode */
	uint64_t bytes_out[256]; /* reply payload bytes, by opcode */
	struct sheep_metrics_hist lat[SM_NR_PROTO][SM_NR_DIR]; /* client reads and writes */
	uint64_t nbd_bytes[SM_NR_DIR];
	/* client object bytes by protocol and the VDI's policy (NBD reads and
	 * writes; Sheepdog-protocol READ_OBJ, WRITE_OBJ, CREATE_AND_WRITE_OBJ) */
	uint64_t pol_bytes[SM_NR_PROTO][SM_NR_DIR][SM_NR_POLICY];
	uint64_t nbd_errors;
	uint64_t degraded_reads; /* reads that decoded missing fragments */
	uint64_t decode_bytes;	 /* bytes rebuilt by those decodes */
	uint64_t sole_reads;	 /* reads served by one copy or EC data fragment alone */
	uint64_t probed_reads;	 /* ... that probed every holder instead */
	uint64_t start_wall;	 /* seconds since the epoch when the sheep started */
};

void sheep_metrics_init(struct sheep_metrics *m);
/* One Sheepdog-protocol request done (worker thread). The recording calls
 * do nothing when m is NULL (a struct sheep built by a unit test). */
void sheep_metrics_request(struct sheep_metrics *m, uint8_t opcode, uint32_t result,
			   uint32_t bytes_in, uint32_t bytes_out, uint64_t ns);
/* A Sheepdog-protocol object read or write of bytes on a VDI of policy pol. */
void sheep_metrics_sd_policy(struct sheep_metrics *m, enum sheep_metrics_dir dir, unsigned pol,
			     uint32_t bytes);
/* The counter index of a VDI's policy (inode copy_policy, nr_copies). */
unsigned sheep_metrics_policy(uint8_t copy_policy, uint8_t nr_copies);
/* One NBD read or write done on a VDI of policy pol; err is its -errno or 0. */
void sheep_metrics_nbd(struct sheep_metrics *m, enum sheep_metrics_dir dir, unsigned pol,
		       uint32_t bytes, int err, uint64_t ns);
/* A read decoded nr fragments' ranges, bytes in all. */
void sheep_metrics_degraded(struct sheep_metrics *m, uint64_t bytes);
/* A replicated read was served by one copy alone (sole) or probed all. */
void sheep_metrics_sole_read(struct sheep_metrics *m, bool sole);

#endif
