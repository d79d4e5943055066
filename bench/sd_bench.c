/* sd_bench.c - random object reads/writes over the Sheepdog 1.0 client protocol at a queue depth,
 * against any Sheepdog-protocol server. */
/*
 * Usage: sd_bench [-a ADDR] [-p PORT] [-q QD] [-t SECS] [-b BYTES] [-o LO:HI] [-w] VDI
 *
 * Looks VDI up (GET_VDI_INFO), reads its inode header for the size and
 * object size, then keeps QD requests in flight on one connection for
 * SECS seconds: READ_OBJ (or WRITE_OBJ with -w) of BYTES (default 4096)
 * at a random BYTES-aligned offset of a random object of the VDI. Replies
 * may come back out of order (matched by id), as the protocol allows.
 * The VDI's objects must exist (create it preallocated: dog vdi create -P),
 * since WRITE_OBJ overwrites. Prints one line: "read|write QD IOPS MiB/s
 * avg_us" and exits non-zero on any error reply. -o LO:HI keeps every
 * request inside object bytes [LO, HI) (default the whole object): with
 * -o 0:1048576 on a 4:2 volume of 4 MiB objects, every write changes data
 * fragment 0, whose holder coordinates the object's writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/sd_proto.h"
#include "lib/util.h"

#define BENCH_MAX_QD 256

struct bench {
	int fd;
	uint32_t vid;
	uint64_t vdi_size;
	uint32_t obj_size;
	uint32_t bs;
	uint32_t lo, hi; /* in-object range of the requests (hi 0: the object) */
	bool write;
	uint64_t rng;
	uint8_t *wbuf;
};

static uint64_t rnd(struct bench *b)
{
	b->rng ^= b->rng << 13;
	b->rng ^= b->rng >> 7;
	b->rng ^= b->rng << 17;
	return b->rng;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One synchronous request (set-up only). */
static int exec1(int fd, struct sd_req *req, const void *wdata, void *rbuf, uint32_t rcap,
		 struct sd_rsp *rsp)
{
	req->id = 0xffffffffu;
	if (sd_write_full(fd, req, sizeof(*req)) ||
	    (wdata && sd_write_full(fd, wdata, req->data_length)))
		return -EIO;
	if (sd_read_full(fd, rsp, sizeof(*rsp)))
		return -EIO;
	if (rsp->data_length > rcap)
		return -EPROTO;
	if (rsp->data_length && sd_read_full(fd, rbuf, rsp->data_length))
		return -EIO;
	return 0;
}

static int lookup(struct bench *b, const char *name)
{
	struct sd_req req = {0};
	struct sd_rsp rsp;
	char nb[SD_MAX_VDI_LEN] = {0};
	snprintf(nb, sizeof(nb), "%s", name);
	req.opcode = SD_OP_GET_VDI_INFO;
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(nb);
	if (exec1(b->fd, &req, nb, NULL, 0, &rsp) || rsp.result != SD_RES_SUCCESS) {
		fprintf(stderr, "sd_bench: no VDI %s\n", name);
		return -1;
	}
	b->vid = sd_rsp_vdi_id(&rsp);
	uint8_t hdr[560];
	memset(&req, 0, sizeof(req));
	req.opcode = SD_OP_READ_OBJ;
	req.data_length = sizeof(hdr);
	req.obj.oid = (1ull << 63) | ((uint64_t)b->vid << 32);
	if (exec1(b->fd, &req, NULL, hdr, sizeof(hdr), &rsp) || rsp.result != SD_RES_SUCCESS) {
		fprintf(stderr, "sd_bench: cannot read the inode of %s\n", name);
		return -1;
	}
	memcpy(&b->vdi_size, hdr + 536, 8);
	uint8_t shift = hdr[555] ? hdr[555] : 22;
	b->obj_size = 1u << shift;
	return 0;
}

static void fill_req(struct bench *b, struct sd_req *req, uint32_t id)
{
	uint64_t nobj = (b->vdi_size + b->obj_size - 1) / b->obj_size;
	uint64_t idx = rnd(b) % nobj;
	uint32_t hi = b->hi ? b->hi : b->obj_size;
	uint32_t slots = (hi - b->lo) / b->bs;
	memset(req, 0, sizeof(*req));
	req->opcode = b->write ? SD_OP_WRITE_OBJ : SD_OP_READ_OBJ;
	req->flags = b->write ? SD_FLAG_CMD_WRITE : 0;
	req->id = id;
	req->data_length = b->bs;
	req->obj.oid = ((uint64_t)b->vid << 32) | idx;
	req->obj.offset = b->lo + (uint32_t)(rnd(b) % slots) * b->bs;
}

static int send_req(struct bench *b, uint32_t id)
{
	struct sd_req req;
	fill_req(b, &req, id);
	if (sd_write_full(b->fd, &req, sizeof(req)))
		return -1;
	if (b->write && sd_write_full(b->fd, b->wbuf, b->bs))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 7000, qd = 1, secs = 8, c;
	struct bench b = {.bs = 4096, .rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid()};
	while ((c = getopt(argc, argv, "a:p:q:t:b:o:wh")) != -1) {
		switch (c) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'q':
			qd = atoi(optarg);
			break;
		case 't':
			secs = atoi(optarg);
			break;
		case 'b':
			b.bs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o': {
			char *end;
			b.lo = (uint32_t)strtoul(optarg, &end, 0);
			b.hi = *end == ':' ? (uint32_t)strtoul(end + 1, &end, 0) : 0;
			if (*end || b.hi <= b.lo) {
				fprintf(stderr, "sd_bench: -o wants LO:HI with LO < HI\n");
				return 64;
			}
			break;
		}
		case 'w':
			b.write = true;
			break;
		default:
			fprintf(stderr, "usage: sd_bench [-a ADDR] [-p PORT] [-q QD] [-t SECS] [-b "
					"BYTES] [-o LO:HI] [-w] VDI\n");
			return c == 'h' ? 0 : 64;
		}
	}
	if (optind != argc - 1 || qd < 1 || qd > BENCH_MAX_QD || secs < 1 || b.bs == 0 ||
	    b.bs > (1u << 20)) {
		fprintf(stderr, "sd_bench: bad arguments (QD 1..%d, BYTES 1..1 MiB)\n",
			BENCH_MAX_QD);
		return 64;
	}
	b.fd = sd_connect(addr, (uint16_t)port, 5000);
	if (b.fd < 0) {
		fprintf(stderr, "sd_bench: cannot connect to %s:%d\n", addr, port);
		return 1;
	}
	sd_set_nodelay(b.fd);
	if (lookup(&b, argv[optind]))
		return 1;
	if (b.bs > b.obj_size || b.vdi_size == 0) {
		fprintf(stderr, "sd_bench: block larger than an object, or empty VDI\n");
		return 1;
	}
	if (b.hi > b.obj_size || (b.hi && (b.lo % b.bs || b.hi - b.lo < b.bs))) {
		fprintf(stderr,
			"sd_bench: -o range outside the %u-byte object, not aligned to "
			"%u bytes, or smaller than one block\n",
			b.obj_size, b.bs);
		return 64;
	}
	b.wbuf = malloc(b.bs);
	uint8_t *rbuf = malloc(b.bs);
	if (!b.wbuf || !rbuf)
		return 1;
	for (uint32_t i = 0; i < b.bs; i++)
		b.wbuf[i] = (uint8_t)rnd(&b);
	uint64_t sent_at[BENCH_MAX_QD];
	uint64_t start = now_ns(), end = start + (uint64_t)secs * 1000000000ull;
	uint64_t done = 0, lat_sum = 0;
	int inflight = 0;
	for (int i = 0; i < qd; i++) {
		sent_at[i] = now_ns();
		if (send_req(&b, (uint32_t)i))
			goto neterr;
		inflight++;
	}
	while (inflight > 0) {
		struct sd_rsp rsp;
		if (sd_read_full(b.fd, &rsp, sizeof(rsp)))
			goto neterr;
		if (rsp.data_length > b.bs || rsp.id >= (uint32_t)qd) {
			fprintf(stderr, "sd_bench: bad reply (id %u, %u bytes)\n", rsp.id,
				rsp.data_length);
			return 1;
		}
		if (rsp.data_length && sd_read_full(b.fd, rbuf, rsp.data_length))
			goto neterr;
		if (rsp.result != SD_RES_SUCCESS) {
			fprintf(stderr, "sd_bench: request failed: result 0x%x\n", rsp.result);
			return 1;
		}
		uint64_t t = now_ns();
		lat_sum += t - sent_at[rsp.id];
		done++;
		inflight--;
		if (t < end) {
			sent_at[rsp.id] = t;
			if (send_req(&b, rsp.id))
				goto neterr;
			inflight++;
		}
	}
	double el = (double)(now_ns() - start) / 1e9;
	printf("%s %d %.0f %.1f %.0f\n", b.write ? "write" : "read", qd, (double)done / el,
	       (double)done * b.bs / el / 1048576.0,
	       done ? (double)lat_sum / (double)done / 1000.0 : 0);
	close(b.fd);
	free(b.wbuf);
	free(rbuf);
	return 0;
neterr:
	fprintf(stderr, "sd_bench: connection lost: %s\n", strerror(errno));
	return 1;
}
