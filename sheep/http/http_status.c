/* http_status.c - what sheep --http shows: this sheep's metrics state, and the cluster (nodes,
 * VDIs, recovery) gathered over the Sheepdog protocol as dog does. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ec/ec.h"
#include "lib/inode.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_internal.h"
#include "lib/sd_proto.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "lib/version.h"
#include "sheep/cluster/cluster.h"
#include "sheep/store/capacity.h"
#include "sheep/http/http.h"
#include "sheep/metrics/metrics.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"

#define STATUS_TIMEOUT_MS 2000
#define STAT_CLUSTER_MAX  ((uint32_t)SD_EPOCH_LOG_SIZE) /* the newest epoch log */

static void req_init(struct sd_req *req, uint8_t opcode, uint32_t len)
{
	memset(req, 0, sizeof(*req));
	req->proto_ver = sd_op_is_internal(opcode) ? SD_SHEEP_PROTO_VER : SD_PROTO_VER;
	req->opcode = opcode;
	req->data_length = len;
}

/* One request to addr:port on a fresh connection. SD_RES_* or -errno. */
static int ask(const char *addr, uint16_t port, struct sd_req *req, struct sd_rsp *rsp, void *buf,
	       size_t len)
{
	int fd = sd_connect(addr, port, STATUS_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	int ret = sd_exec(fd, req, NULL, rsp, buf, len);
	close(fd);
	return ret < 0 ? ret : sd_res_int(rsp->result);
}

static int ask_self(struct sheep *s, struct sd_req *req, struct sd_rsp *rsp, void *buf, size_t len)
{
	return ask(s->self.addr, s->self.port, req, rsp, buf, len);
}

static const char *rec_status_name(uint8_t st)
{
	static const char *const names[] = {"idle",    "running",  "done",
					    "refused", "disabled", "planning"};
	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

void sheep_http_metrics(struct sheep *s, FILE *f)
{
	struct sheep_http_state st = {
	    .version = sd_version(),
	    .addr = s->self.addr,
	    .port = s->self.port,
	    .zone = s->self.zone,
	};
	struct group_status gs;
	group_status(s, &gs);
	st.epoch = gs.epoch;
	st.members = gs.nr_nodes;
	st.zones = gs.nr_zones;
	st.formatted = gs.ctime != 0;
	st.recovery_enabled = gs.recovery_enabled;
	st.vdis = (uint32_t)gs.nr_vdis;
	if (s->store) {
		uint64_t fs = 0;
		sheep_capacity(s, &st.capacity, &st.free_bytes);
		store_space(s->store, &fs, &st.own_bytes);
		st.checksum_errors = store_checksum_errors(s->store);
		/* The scrub's counters, as dog node stat gets them (the scrub
		 * sits above http/). */
		struct sd_store_stat sst;
		struct sd_req sreq;
		struct sd_rsp srsp;
		memset(&sst, 0, sizeof(sst));
		req_init(&sreq, SD_OP_STAT, sizeof(sst));
		ask_self(s, &sreq, &srsp, &sst, sizeof(sst));
		st.csum_found = sst.csum_found;
		st.csum_repaired = sst.csum_repaired;
		st.scrub_enabled = sst.scrub_enabled != 0;
		st.scrub_rate = sst.scrub_rate;
		st.scrub_passes = sst.scrub_passes;
		st.scrub_scanned = sst.scrub_scanned;
		st.scrub_bytes = sst.scrub_bytes;
		st.scrub_done = sst.scrub_done;
		st.scrub_total = sst.scrub_total;
		struct store_stats ws;
		if (store_get_stats(s->store, &ws) == 0) {
			st.wal_syncs = ws.syncs;
			st.wal_records = ws.records;
			st.wal_batches = ws.batches;
			st.wal_bytes = ws.log_bytes;
			st.wal_max_batch = ws.max_batch;
			st.wal_checkpoints = ws.checkpoints;
			st.wal_ckpt_ns = ws.ckpt_ns_total;
			st.wal_fill = ws.log_fill;
			st.wal_size = ws.log_size;
		}
	}
	struct sd_wire_recovery wr;
	struct sd_recovery_state rs;
	struct sd_req req;
	struct sd_rsp rsp;
	req_init(&req, SD_OP_STAT_RECOVERY, sizeof(wr));
	memset(&wr, 0, sizeof(wr));
	int rres = s->store ? ask_self(s, &req, &rsp, &wr, sizeof(wr)) : -1;
	rs = wr.ext;
	if (rres == SD_RES_SUCCESS) {
		st.have_recovery = true;
		st.rec_epoch = rs.epoch;
		st.rec_status = rec_status_name(rs.status);
		st.rec_total = rs.total;
		st.rec_done = rs.done;
		st.rec_failed = rs.failed;
		st.rec_copied = rs.copied;
		st.rec_rebuilt = rs.rebuilt;
		st.rec_reused = rs.reused;
		st.rec_bytes_read = rs.bytes_read;
		st.rec_bytes_written = rs.bytes_written;
		st.rec_elapsed_ms = rs.elapsed_ms;
		st.rec_degraded = rs.degraded;
		st.rec_lost = rs.lost;
		st.checksum_repairs = rs.repairs;
	}
	sheep_http_render_metrics(s->metrics, &st, f);
}

/* ---- /api/status ---- */

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else if (*p == '<')
			fputs("\\u003c", f); /* never "</script>" inside a page */
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void policy_str(uint8_t copy_policy, uint8_t nr_copies, char *buf, size_t len)
{
	struct ec_policy pol;
	if (ec_policy_from_wire(copy_policy, nr_copies, &pol) < 0)
		snprintf(buf, len, "?");
	else
		ec_policy_format(&pol, buf, len);
}

/* Nodes: membership from this sheep, size and use from each (STAT_SHEEP),
 * recovery from each (STAT_RECOVERY), like dog node info / recovery. */
static void status_nodes(FILE *f, const struct sd_node *nodes, uint32_t nr)
{
	uint64_t tsize = 0, tfree = 0;
	fputs(",\"nodes\":[", f);
	for (uint32_t i = 0; i < nr; i++) {
		const struct sd_node *n = &nodes[i];
		char addr[sizeof(n->addr) + 1];
		snprintf(addr, sizeof(addr), "%.*s", (int)sizeof(n->addr), n->addr);
		fprintf(f, "%s{\"id\":%u,\"host\":", i ? "," : "", i);
		jstr(f, addr);
		fprintf(f,
			",\"port\":%u,\"zone\":%u,\"vnodes\":%u,\"nbd_port\":%u,\"space\":%" PRIu64
			",\"gateway\":%s",
			n->port, n->zone, n->nr_vnodes, n->nbd_port, n->space,
			n->gateway ? "true" : "false");
		struct sd_req req;
		struct sd_rsp rsp;
		req_init(&req, SD_OP_STAT_SHEEP, 0);
		if (ask(addr, n->port, &req, &rsp, NULL, 0) == SD_RES_SUCCESS) {
			uint64_t size = rsp.node.store_size, fr = rsp.node.store_free;
			fprintf(f, ",\"size\":%" PRIu64 ",\"used\":%" PRIu64 ",\"avail\":%" PRIu64,
				size, fr < size ? size - fr : 0, fr);
			tsize += size;
			tfree += fr < size ? fr : size;
		} else {
			fputs(",\"size\":null,\"used\":null,\"avail\":null", f);
		}
		struct sd_wire_recovery wr;
		memset(&wr, 0, sizeof(wr));
		req_init(&req, SD_OP_STAT_RECOVERY, sizeof(wr));
		int rres = ask(addr, n->port, &req, &rsp, &wr, sizeof(wr));
		struct sd_recovery_state rs = wr.ext;
		if (rres == SD_RES_SUCCESS) {
			double pct = rs.total ? 100.0 * (double)rs.done / (double)rs.total
					      : (rs.status == SD_RECOVERY_DONE ? 100.0 : 0.0);
			bool busy =
			    rs.status == SD_RECOVERY_RUNNING || rs.status == SD_RECOVERY_PLANNING ||
			    rs.status == SD_RECOVERY_REFUSED || rs.status == SD_RECOVERY_DISABLED;
			rs.message[sizeof(rs.message) - 1] = '\0';
			fprintf(
			    f,
			    ",\"recovery\":{\"status\":\"%s\",\"recovering\":%s,\"epoch\":%u,"
			    "\"progress\":%.1f,\"done\":%" PRIu64 ",\"total\":%" PRIu64
			    ",\"copied\":%" PRIu64 ",\"rebuilt\":%" PRIu64 ",\"failed\":%" PRIu64
			    ",\"bytes_written\":%" PRIu64 ",\"message\":",
			    rec_status_name(rs.status), busy ? "true" : "false", rs.epoch, pct,
			    rs.done, rs.total, rs.copied, rs.rebuilt, rs.failed, rs.bytes_written);
			jstr(f, rs.message);
			fputc('}', f);
		} else {
			fputs(",\"recovery\":null", f);
		}
		fputc('}', f);
	}
	fprintf(f, "],\"total\":{\"size\":%" PRIu64 ",\"used\":%" PRIu64 ",\"avail\":%" PRIu64 "}",
		tsize, tsize - tfree, tfree);
}

/* VDIs: the in-use bitmap, then each inode's header and object map (dog's
 * vdi list: used = objects of its own, shared = objects of an ancestor). */
static void status_vdis(struct sheep *s, FILE *f)
{
	size_t blen = SD_NR_VDIS / 8;
	uint8_t *bm = calloc(1, blen);
	struct sd_inode *ino = malloc(sizeof(*ino));
	uint64_t total = 0;
	fputs(",\"vdis\":[", f);
	int fd = -1;
	if (!bm || !ino)
		goto out;
	fd = sd_connect(s->self.addr, s->self.port, STATUS_TIMEOUT_MS);
	if (fd < 0)
		goto out;
	struct sd_req req;
	struct sd_rsp rsp;
	req_init(&req, SD_OP_READ_VDIS, (uint32_t)blen);
	if (sd_exec(fd, &req, NULL, &rsp, bm, blen) < 0 || rsp.result != SD_RES_SUCCESS)
		goto out;
	bool first = true;
	for (uint32_t vid = 0; vid < SD_NR_VDIS; vid++) {
		if (!bm[vid / 8]) {
			vid |= 7;
			continue;
		}
		if (!(bm[vid / 8] & (1u << (vid % 8))))
			continue;
		req_init(&req, SD_OP_READ_OBJ, SD_INODE_HEADER_SIZE);
		req.obj.oid = vid_to_vdi_oid(vid);
		if (sd_exec(fd, &req, NULL, &rsp, ino, SD_INODE_HEADER_SIZE) < 0)
			break;
		if (rsp.result != SD_RES_SUCCESS)
			continue;
		ino->name[SD_MAX_VDI_LEN - 1] = '\0';
		ino->tag[SD_MAX_VDI_TAG_LEN - 1] = '\0';
		if (!ino->name[0])
			continue;
		uint8_t shift =
		    ino->block_size_shift ? ino->block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT;
		uint64_t nobj = SD_DIV_ROUND_UP(ino->vdi_size, 1ull << shift);
		uint32_t n = nobj > SD_INODE_DATA_INDEX ? SD_INODE_DATA_INDEX : (uint32_t)nobj;
		uint32_t mine = 0, shared = 0;
		if (n) {
			req_init(&req, SD_OP_READ_OBJ, n * 4u);
			req.obj.oid = vid_to_vdi_oid(vid);
			req.obj.offset = sd_inode_vid_offset(0);
			if (sd_exec(fd, &req, NULL, &rsp, ino->data_vdi_id, n * 4u) < 0)
				break;
			if (rsp.result != SD_RES_SUCCESS)
				continue;
			if (rsp.data_length < n * 4u)
				memset((char *)ino->data_vdi_id + rsp.data_length, 0,
				       n * 4u - rsp.data_length);
			for (uint32_t i = 0; i < n; i++) {
				if (ino->data_vdi_id[i] == ino->vdi_id)
					mine++;
				else if (ino->data_vdi_id[i])
					shared++;
			}
		}
		char pol[16];
		policy_str(ino->copy_policy, ino->nr_copies, pol, sizeof(pol));
		bool snap = ino->snap_ctime != 0;
		uint64_t ct = ino->create_time >> 32 ? ino->create_time >> 32 : ino->create_time;
		fputs(first ? "{\"name\":" : ",{\"name\":", f);
		first = false;
		jstr(f, ino->name);
		fputs(",\"tag\":", f);
		jstr(f, ino->tag);
		fprintf(f,
			",\"type\":\"%s\",\"vdi_id\":%u,\"snap_id\":%u,\"size\":%" PRIu64
			",\"used\":%" PRIu64 ",\"shared\":%" PRIu64
			",\"policy\":\"%s\",\"block_size_shift\":%u,\"ctime\":%" PRIu64 "}",
			snap		     ? "snapshot"
			: ino->parent_vdi_id ? "clone"
					     : "working",
			ino->vdi_id, snap ? ino->snap_id : 0, ino->vdi_size,
			(uint64_t)mine << shift, (uint64_t)shared << shift, pol, shift, ct);
		if (!snap)
			total += ino->vdi_size;
	}
out:
	if (fd >= 0)
		close(fd);
	free(bm);
	free(ino);
	fprintf(f, "],\"total_vdi_size\":%" PRIu64, total);
}

void sheep_http_status(struct sheep *s, int http_port, FILE *f)
{
	fputs("{\"version\":", f);
	jstr(f, sd_version());
	fputs(",\"self\":{\"host\":", f);
	jstr(f, s->self.addr);
	fprintf(f, ",\"port\":%u,\"zone\":%u,\"http_port\":%d}", s->self.port, s->self.zone,
		http_port);
	fprintf(f, ",\"time\":%" PRIu64, sd_wall_seconds());

	char *buf = calloc(1, STAT_CLUSTER_MAX);
	struct sd_req req;
	struct sd_rsp rsp;
	struct sd_cluster_info ci;
	memset(&ci, 0, sizeof(ci));
	int res = -ENOMEM;
	if (buf) {
		req_init(&req, SD_OP_STAT_CLUSTER, STAT_CLUSTER_MAX);
		res = ask_self(s, &req, &rsp, buf, STAT_CLUSTER_MAX);
		if (res >= 0)
			sd_stat_cluster_summary(buf, rsp.data_length, rsp.result, &ci);
	}
	free(buf);
	fputs(",\"status\":", f);
	jstr(f, res == SD_RES_SUCCESS ? "running"
		: res < 0	      ? strerror(-res)
				      : sd_strerror((uint32_t)res));
	char pol[16] = "";
	if (ci.ctime)
		policy_str(ci.copy_policy, ci.copies, pol, sizeof(pol));
	fprintf(f,
		",\"epoch\":%u,\"ctime\":%" PRIu64 ",\"policy\":\"%s\",\"recovery_enabled\":%s,"
		"\"nr_zones\":%u",
		ci.epoch, ci.ctime, pol, ci.recovery_enabled ? "true" : "false", ci.nr_zones);

	struct sd_node *nodes = calloc(SD_MAX_NODES, sizeof(*nodes));
	struct sd_wire_node *wn = calloc(SD_MAX_NODES, sizeof(*wn));
	uint32_t nr = 0;
	if (nodes && wn) {
		req_init(&req, SD_OP_GET_NODE_LIST, SD_MAX_NODES * sizeof(*wn));
		if (ask_self(s, &req, &rsp, wn, SD_MAX_NODES * sizeof(*wn)) == SD_RES_SUCCESS)
			nr = SD_MIN(rsp.node.nr_nodes, (uint32_t)SD_MAX_NODES);
		for (uint32_t i = 0; i < nr; i++)
			sd_node_from_wire(&wn[i], &nodes[i]);
		status_nodes(f, nodes, nr);
	}
	free(wn);
	free(nodes);
	if (res == SD_RES_SUCCESS)
		status_vdis(s, f);
	else
		fputs(",\"vdis\":[],\"total_vdi_size\":0", f);
	fputs("}\n", f);
}
