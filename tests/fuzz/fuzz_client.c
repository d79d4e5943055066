/* fuzz_client.c - fuzz target: client requests (Sheepdog 1.0 header + payload, every opcode the
 * server serves) run through ops_check_header and ops_exec on a real one-node sheep in-process. */
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/event.h"
#include "lib/log.h"
#include "lib/sd_wire.h"
#include "lib/work.h"
#include "sheep/cluster/cluster.h"
#include "sheep/gateway/gateway.h"
#include "sheep/metrics/metrics.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/scrub/scrub.h"
#include "sheep/server/server.h"
#include "sheep/sheep.h"
#include "sheep/snap/snap.h"
#include "sheep/store/store.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_REQS 8
/* Reads above this are left out, for speed (MD_INFO needs 258 KiB). */
#define FUZZ_MAX_LEN (320u << 10)

static struct sheep sheep_state;
static struct sheep *fs;
static char dir[] = "/dev/shm/sd-fuzz-client-XXXXXX";
static char cluster_spec[sizeof(dir) + 32];
static pthread_t loop_thread;
static bool trace; /* FUZZ_CLIENT_TRACE set: each request's result on stderr */

static void *run_loop(void *arg)
{
	sd_loop_run(fs->loop);
	return NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* Stop the sheep as main() does, then remove its directory. */
static void stop_sheep(void)
{
	atomic_store(&fs->stopping, true);
	sd_loop_stop(fs->loop);
	pthread_join(loop_thread, NULL);
	sheep_scrub_stop(fs);
	sheep_recovery_stop(fs);
	group_stop(fs);
	sd_wq_destroy(fs->gw_wq);
	sd_wq_destroy(fs->peer_wq);
	sd_wq_destroy(fs->fwd_wq);
	sheep_scrub_fini(fs);
	gateway_fini(fs);
	vdi_snap_fini(fs);
	store_close(fs->store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * One request as conn.c hands it to a worker: the payload, read only with
 * SD_FLAG_CMD_WRITE, is a buffer of exactly data_length bytes; ops_exec
 * runs it; the reply is freed as request_done frees it. Returns the
 * result. A read's reply longer than its data_length (the client's
 * buffer: a Sheepdog client reads at most that and the stream goes out of
 * step) is a finding.
 */
static uint32_t run_one(const struct sd_req *hdr, const void *payload)
{
	if (ops_check_header(hdr) != SD_RES_SUCCESS)
		return SD_RES_INVALID_PARMS;
	struct request *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	r->s = fs;
	r->owner = (1ull << 62) | 1;
	r->hdr = *hdr;
	if ((hdr->flags & SD_FLAG_CMD_WRITE) && hdr->data_length) {
		r->data = malloc(hdr->data_length);
		if (!r->data)
			abort();
		memcpy(r->data, payload, hdr->data_length);
		r->data_cap = hdr->data_length;
	}
	ops_exec(fs, r);
	uint32_t res = r->rsp.result;
	if (trace)
		fprintf(stderr, "fuzz_client: op %#x len %u: result %#x, reply %u bytes\n",
			hdr->opcode, hdr->data_length, res, r->rlen);
	if (r->rlen && !r->rdata)
		abort(); /* a reply length without a reply */
	if (r->rlen > hdr->data_length && !(hdr->flags & SD_FLAG_CMD_WRITE))
		abort(); /* more than the client's buffer holds (a write's
			  * reply may be larger: SCRUB answers counters) */
	if (r->rsp.opcode != hdr->opcode || r->rsp.id != hdr->id)
		abort(); /* ops_exec's guarantee */
	void *reply = r->rdata;
	if (r->data != reply)
		free(r->data);
	free(reply);
	free(r);
	return res;
}

static void must(const struct sd_req *hdr, const void *payload, const char *what)
{
	uint32_t res = run_one(hdr, payload);
	if (res != SD_RES_SUCCESS) {
		fprintf(stderr, "fuzz_client: %s: result %#x\n", what, res);
		abort();
	}
}

/*
 * A one-node cluster, set up as main()'s setup() does (store, pools,
 * gateway, snapshot sweep, group with the local driver in the temp
 * directory, recovery and scrub), formatted with one copy, holding a 64 MiB
 * VDI "fuzz" (mkseeds.py computes its id from the name, as the sheep does).
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fs = &sheep_state;
	trace = getenv("FUZZ_CLIENT_TRACE") != NULL;
	sd_log_open(NULL, SD_LOG_EMERG, "fuzz_client");
	if (!mkdtemp(dir))
		abort();
	snprintf(cluster_spec, sizeof(cluster_spec), "local:path=%s/cluster", dir);
	fs->listen_fd = -1;
	fs->lock_fd = -1;
	fs->opt.dir = dir;
	fs->opt.nosync = true;
	fs->opt.cluster = cluster_spec;
	fs->opt.threads = 4;
	fs->opt.nbd_port = -1;
	struct store_config cfg = {.dir = dir, .nosync = true, .wal_size = 1};
	if (store_open_config(&cfg, &fs->store))
		abort();
	snprintf(fs->self.addr, sizeof(fs->self.addr), "127.0.0.1");
	fs->self.port = 7000;
	fs->self.nr_vnodes = 64;
	fs->self.space = 1ull << 40;
	fs->self.incarnation = (uint64_t)getpid();
	fs->metrics = calloc(1, sizeof(*fs->metrics));
	if (!fs->metrics)
		abort();
	sheep_metrics_init(fs->metrics);
	if (sd_loop_create(&fs->loop) || sd_wq_create("sd_gw", 4, fs->loop, &fs->gw_wq) ||
	    sd_wq_create("sd_peer", 4, fs->loop, &fs->peer_wq) ||
	    sd_wq_create("sd_fwd", 2, fs->loop, &fs->fwd_wq) || gateway_init(fs) ||
	    vdi_snap_init(fs) || group_init(fs))
		abort();
	fs->frag_busy = sheep_recovery_busy;
	fs->frag_bad = sheep_recovery_report_bad;
	fs->frag_csum_bad = sheep_scrub_report_bad;
	struct sheep_scrub_opts so = {0};
	if (sheep_scrub_start(fs, &so) || group_start(fs))
		abort();
	struct sd_recovery_throttle t = {0};
	if (sheep_recovery_start(fs, &t))
		abort();
	if (pthread_create(&loop_thread, NULL, run_loop, NULL))
		abort();
	atexit(stop_sheep);
	struct group_status st;
	for (int i = 0; i < 1000; i++) {
		group_status(fs, &st);
		if (st.synced)
			break;
		usleep(10000);
	}
	struct sd_req h;
	memset(&h, 0, sizeof(h));
	h.proto_ver = SD_SHEEP_PROTO_VER;
	h.opcode = SD_OP_MAKE_FS;
	h.cluster.copies = 1;
	h.cluster.block_size_shift = 22;
	must(&h, NULL, "format");
	memset(&h, 0, sizeof(h));
	h.proto_ver = SD_PROTO_VER;
	h.opcode = SD_OP_NEW_VDI;
	h.flags = SD_FLAG_CMD_WRITE;
	h.data_length = SD_MAX_VDI_LEN;
	h.vdi.vdi_size = 64ull << 20;
	h.vdi.copies = 1;
	char name[SD_MAX_VDI_LEN] = "fuzz";
	must(&h, name, "vdi create");
	return 0;
}

/*
 * Input: up to FUZZ_MAX_REQS requests, each a struct sd_req then, when it
 * has SD_FLAG_CMD_WRITE, its payload (data_length is cut to the bytes
 * left). Run one after the other on the same sheep, so a request can act
 * on what an earlier one made. The sheep's state carries over between
 * inputs (a server's does too); SHUTDOWN is not run (it stops the sheep
 * for good) and the log level is put back after each input.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fs)
		LLVMFuzzerInitialize(NULL, NULL);
	for (int n = 0; n < FUZZ_MAX_REQS && size >= sizeof(struct sd_req); n++) {
		struct sd_req req;
		memcpy(&req, data, sizeof(req));
		data += sizeof(req);
		size -= sizeof(req);
		const void *payload = NULL;
		if (req.flags & SD_FLAG_CMD_WRITE) {
			if (req.data_length > size)
				req.data_length = (uint32_t)size;
			payload = data;
			data += req.data_length;
			size -= req.data_length;
		}
		/* conn.c refuses these before anything runs */
		if (req.data_length > SD_MAX_PAYLOAD || req.opcode == SD_OP_SHUTDOWN)
			continue;
		if (!(req.flags & SD_FLAG_CMD_WRITE) && req.data_length > FUZZ_MAX_LEN)
			continue;
		run_one(&req, payload);
	}
	sd_log_set_level(SD_LOG_EMERG);
	return 0;
}
