/* metrics.c - a sheep's request counters and latency histograms (relaxed atomics, any thread). */
#include <inttypes.h>
#include <string.h>

#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/metrics/metrics.h"

/* Bucket upper bounds in nanoseconds (http_metrics.c prints them as seconds). */
static const uint64_t bucket_ns[SHEEP_METRICS_NR_BUCKETS] = {
    100000,   250000,	500000,	   1000000,   2500000,	 5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000,
};

#define ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

void sheep_metrics_init(struct sheep_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->start_wall = sd_wall_seconds();
}

static void hist_add(struct sheep_metrics_hist *h, uint64_t ns)
{
	int b = 0;
	while (b < SHEEP_METRICS_NR_BUCKETS && ns > bucket_ns[b])
		b++;
	ADD(&h->bucket[b], 1);
	ADD(&h->count, 1);
	ADD(&h->sum_ns, ns);
}

void sheep_metrics_request(struct sheep_metrics *m, uint8_t opcode, uint32_t result,
			   uint32_t bytes_in, uint32_t bytes_out, uint64_t ns)
{
	if (!m)
		return;
	ADD(&m->req[opcode], 1);
	if (result != SD_RES_SUCCESS)
		ADD(&m->req_err[opcode], 1);
	ADD(&m->bytes_in[opcode], bytes_in);
	ADD(&m->bytes_out[opcode], bytes_out);
	if (opcode == SD_OP_READ_OBJ)
		hist_add(&m->lat[SM_PROTO_SHEEPDOG][SM_READ], ns);
	else if (opcode == SD_OP_WRITE_OBJ || opcode == SD_OP_CREATE_AND_WRITE_OBJ)
		hist_add(&m->lat[SM_PROTO_SHEEPDOG][SM_WRITE], ns);
}

unsigned sheep_metrics_policy(uint8_t copy_policy, uint8_t nr_copies)
{
	return copy_policy ? copy_policy : 256u + (nr_copies < 32 ? nr_copies : 31);
}

void sheep_metrics_nbd(struct sheep_metrics *m, enum sheep_metrics_dir dir, unsigned pol,
		       uint32_t bytes, int err, uint64_t ns)
{
	if (!m)
		return;
	hist_add(&m->lat[SM_PROTO_NBD][dir], ns);
	if (err) {
		ADD(&m->nbd_errors, 1);
		return;
	}
	ADD(&m->nbd_bytes[dir], bytes);
	if (pol < SM_NR_POLICY)
		ADD(&m->pol_bytes[SM_PROTO_NBD][dir][pol], bytes);
}

void sheep_metrics_sd_policy(struct sheep_metrics *m, enum sheep_metrics_dir dir, unsigned pol,
			     uint32_t bytes)
{
	if (m && pol < SM_NR_POLICY)
		ADD(&m->pol_bytes[SM_PROTO_SHEEPDOG][dir][pol], bytes);
}

void sheep_metrics_degraded(struct sheep_metrics *m, uint64_t bytes)
{
	if (!m)
		return;
	ADD(&m->degraded_reads, 1);
	ADD(&m->decode_bytes, bytes);
}

void sheep_metrics_sole_read(struct sheep_metrics *m, bool sole)
{
	if (!m)
		return;
	ADD(sole ? &m->sole_reads : &m->probed_reads, 1);
}
