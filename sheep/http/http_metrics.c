/* http_metrics.c - the Prometheus text exposition (0.0.4) of a sheep's counters and state, for GET
 * /metrics. */
#include <inttypes.h>
#include <string.h>

#include "lib/sd_proto.h"
#include "sheep/http/http.h"
#include "sheep/metrics/metrics.h"
#include "sheep/peer/peer.h"

/* The bucket bounds of metrics.c, as Prometheus prints them (seconds). */
static const char *const bucket_le[SHEEP_METRICS_NR_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025",  "0.05",	 "0.1",	   "0.25",  "0.5",    "1",     "2.5",
};

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

const char *sheep_http_op_name(uint8_t opcode)
{
	switch (opcode) {
	case SD_OP_CREATE_AND_WRITE_OBJ:
		return "create_and_write_obj";
	case SD_OP_READ_OBJ:
		return "read_obj";
	case SD_OP_WRITE_OBJ:
		return "write_obj";
	case SD_OP_REMOVE_OBJ:
		return "remove_obj";
	case SD_OP_DISCARD_OBJ:
		return "discard_obj";
	case SD_OP_NEW_VDI:
		return "new_vdi";
	case SD_OP_LOCK_VDI:
		return "lock_vdi";
	case SD_OP_RELEASE_VDI:
		return "release_vdi";
	case SD_OP_GET_VDI_INFO:
		return "get_vdi_info";
	case SD_OP_READ_VDIS:
		return "read_vdis";
	case SD_OP_FLUSH_VDI:
		return "flush_vdi";
	case SD_OP_DEL_VDI:
		return "del_vdi";
	case SD_OP_GET_CLUSTER_DEFAULT:
		return "get_cluster_default";
	case SD_OP_GET_NODE_LIST:
		return "get_node_list";
	case SD_OP_MAKE_FS:
		return "make_fs";
	case SD_OP_SHUTDOWN:
		return "shutdown";
	case SD_OP_STAT_SHEEP:
		return "stat_sheep";
	case SD_OP_STAT_CLUSTER:
		return "stat_cluster";
	case SD_OP_FORCE_RECOVER:
		return "force_recover";
	case SD_OP_STAT_RECOVERY:
		return "stat_recovery";
	case SD_OP_KILL_NODE:
		return "kill_node";
	case SD_OP_ENABLE_RECOVER:
		return "enable_recover";
	case SD_OP_DISABLE_RECOVER:
		return "disable_recover";
	case SD_OP_GET_RECOVERY:
		return "get_recovery";
	case SD_OP_SET_RECOVERY:
		return "set_recovery";
	case SD_OP_PEER_READ:
		return "peer_read";
	case SD_OP_PEER_WRITE:
		return "peer_write";
	case SD_OP_PEER_REMOVE:
		return "peer_remove";
	case SD_OP_PEER_STAT:
		return "peer_stat";
	case SD_OP_PEER_LIST:
		return "peer_list";
	case SD_OP_PEER_GW_WRITE:
		return "peer_gw_write";
	case SD_OP_PEER_COMMIT:
		return "peer_commit";
	case SD_OP_PEER_COMMIT_BATCH:
		return "peer_commit_batch";
	case SD_OP_PEER_GEN:
		return "peer_gen";
	}
	return NULL;
}

/* "HELP" and "TYPE" lines of one metric family. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One per-opcode counter family; op_0xNN labels opcodes without a name. */
static void per_op(FILE *f, const char *name, const char *help, const uint64_t *v,
		   const char *extra)
{
	family(f, name, "counter", help);
	for (int op = 0; op < 256; op++) {
		uint64_t n = LOAD(&v[op]);
		if (!n)
			continue;
		const char *nm = sheep_http_op_name((uint8_t)op);
		char buf[16];
		if (!nm) {
			snprintf(buf, sizeof(buf), "op_0x%02x", op);
			nm = buf;
		}
		fprintf(f, "%s{op=\"%s\"%s} %" PRIu64 "\n", name, nm, extra, n);
	}
}

static void hist(FILE *f, const char *name, const char *labels, const struct sheep_metrics_hist *h)
{
	uint64_t cum = 0;
	for (int b = 0; b < SHEEP_METRICS_NR_BUCKETS; b++) {
		cum += LOAD(&h->bucket[b]);
		fprintf(f, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels, bucket_le[b],
			cum);
	}
	cum += LOAD(&h->bucket[SHEEP_METRICS_NR_BUCKETS]);
	fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	fprintf(f, "%s_sum{%s} %.9f\n", name, labels, (double)LOAD(&h->sum_ns) / 1e9);
	fprintf(f, "%s_count{%s} %" PRIu64 "\n", name, labels, LOAD(&h->count));
}

/* A label value: backslash, quote and newline escaped. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

static void gauge(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %" PRIu64 "\n", name, v);
}

/* One counter family of client bytes by policy and direction (non-zero only). */
static void policy_bytes(FILE *f, const struct sheep_metrics *m, int proto, const char *name,
			 const char *help)
{
	family(f, name, "counter", help);
	for (int d = 0; d < SM_NR_DIR; d++)
		for (unsigned p = 1; p < SM_NR_POLICY; p++) {
			uint64_t n = LOAD(&m->pol_bytes[proto][d][p]);
			if (!n)
				continue;
			char pol[16];
			if (p < 256)
				snprintf(pol, sizeof(pol), "%u:%u", (p >> 4) * 2, p & 15);
			else
				snprintf(pol, sizeof(pol), "%u", p - 256);
			fprintf(f, "%s{policy=\"%s\",op=\"%s\"} %" PRIu64 "\n", name, pol,
				d == SM_READ ? "read" : "write", n);
		}
}

void sheep_http_render_metrics(const struct sheep_metrics *m, const struct sheep_http_state *st,
			       FILE *f)
{
	family(f, "sheep_info", "gauge", "This sheep: version, address, zone (value 1).");
	fputs("sheep_info{version=\"", f);
	label_value(f, st->version);
	fputs("\",addr=\"", f);
	label_value(f, st->addr);
	fprintf(f, "\",port=\"%u\",zone=\"%u\"} 1\n", st->port, st->zone);
	gauge(f, "sheep_start_time_seconds", "When this sheep started, seconds since the epoch.",
	      m->start_wall);
	gauge(f, "sheep_epoch", "Current membership epoch.", st->epoch);
	gauge(f, "sheep_members", "Sheep in the cluster as this one sees it.", st->members);
	gauge(f, "sheep_zones", "Distinct zones among the data-holding members.", st->zones);
	gauge(f, "sheep_cluster_formatted", "1 once the cluster is formatted.", st->formatted);
	gauge(f, "sheep_recovery_enabled", "1 when recovery is enabled cluster-wide.",
	      st->recovery_enabled);
	gauge(f, "sheep_vdis", "VDIs (volumes and snapshots) in the cluster.", st->vdis);
	gauge(f, "sheep_store_capacity_bytes",
	      "Capacity this sheep offers (-s, else its filesystem).", st->capacity);
	gauge(f, "sheep_store_free_bytes", "What this sheep can still store.", st->free_bytes);
	gauge(f, "sheep_store_used_bytes", "Bytes of this sheep's fragment files.", st->own_bytes);
	/* One family: the unlabelled sample counts blocks (since start), the
	 * labelled ones fragments (scrub/scrub.h). */
	counter(f, "sheep_checksum_errors_total",
		"Checksum errors here: unlabelled, blocks whose crc32c did not match on read; "
		"state=found, fragments found bad (client reads, the scrub, dog vdi check); "
		"state=repaired, of those, fragments verified good again after their repair.",
		st->checksum_errors);
	fprintf(f, "sheep_checksum_errors_total{state=\"found\"} %" PRIu64 "\n", st->csum_found);
	fprintf(f, "sheep_checksum_errors_total{state=\"repaired\"} %" PRIu64 "\n",
		st->csum_repaired);
	gauge(f, "sheep_scrub_enabled", "1 when the background scrub runs.", st->scrub_enabled);
	gauge(f, "sheep_scrub_rate_bytes", "Bytes per second the scrub reads at most.",
	      st->scrub_rate);
	counter(f, "sheep_scrub_passes_total", "Complete scrub passes over this sheep's store.",
		st->scrub_passes);
	counter(f, "sheep_scrub_fragments_total", "Fragments the scrub verified.",
		st->scrub_scanned);
	counter(f, "sheep_scrub_bytes_total", "Bytes the scrub verified.", st->scrub_bytes);
	gauge(f, "sheep_scrub_pass_done", "Fragments verified in the current pass.",
	      st->scrub_done);
	gauge(f, "sheep_scrub_pass_total", "Fragments the current pass walks.", st->scrub_total);
	counter(f, "sheep_checksum_repairs_total",
		"Objects re-planned for repair after a checksum mismatch here (the bad fragment "
		"is rebuilt from the other holders).",
		st->checksum_repairs);
	counter(f, "sheep_wal_syncs_total",
		"fdatasyncs of the write-ahead log (one per group commit).", st->wal_syncs);
	counter(f, "sheep_wal_records_total", "Records written to the write-ahead log.",
		st->wal_records);
	counter(f, "sheep_wal_batches_total", "Group commits: one write and one sync each.",
		st->wal_batches);
	counter(f, "sheep_wal_bytes_total", "Bytes written to the write-ahead log.", st->wal_bytes);
	gauge(f, "sheep_wal_max_batch_records", "Most records in one group commit.",
	      st->wal_max_batch);
	counter(f, "sheep_wal_checkpoints_total",
		"Checkpoints: fragment files synced, the log started afresh.", st->wal_checkpoints);
	family(f, "sheep_wal_checkpoint_seconds_total", "counter", "Time spent in checkpoints.");
	fprintf(f, "sheep_wal_checkpoint_seconds_total %.6f\n", (double)st->wal_ckpt_ns / 1e9);
	gauge(f, "sheep_wal_fill_bytes", "Bytes of the current log file.", st->wal_fill);
	gauge(f, "sheep_wal_size_bytes", "The log's budget (both files).", st->wal_size);

	per_op(f, "sheep_requests_total", "Sheepdog-protocol requests served, by operation.",
	       m->req, "");
	per_op(f, "sheep_request_errors_total", "Requests answered with an error, by operation.",
	       m->req_err, "");
	per_op(f, "sheep_request_bytes_total", "Payload bytes received, by operation.", m->bytes_in,
	       ",dir=\"in\"");
	/* Same family: the replies' bytes. */
	for (int op = 0; op < 256; op++) {
		uint64_t n = LOAD(&m->bytes_out[op]);
		const char *nm = sheep_http_op_name((uint8_t)op);
		if (n && nm)
			fprintf(f, "sheep_request_bytes_total{op=\"%s\",dir=\"out\"} %" PRIu64 "\n",
				nm, n);
		else if (n)
			fprintf(f,
				"sheep_request_bytes_total{op=\"op_0x%02x\",dir=\"out\"} %" PRIu64
				"\n",
				op, n);
	}

	family(f, "sheep_client_latency_seconds", "histogram",
	       "Client read and write latency, Sheepdog protocol (read_obj, write_obj) and NBD.");
	static const char *const proto[SM_NR_PROTO] = {"sheepdog", "nbd"};
	static const char *const dir[SM_NR_DIR] = {"read", "write"};
	for (int p = 0; p < SM_NR_PROTO; p++)
		for (int d = 0; d < SM_NR_DIR; d++) {
			char labels[64];
			snprintf(labels, sizeof(labels), "proto=\"%s\",op=\"%s\"", proto[p],
				 dir[d]);
			hist(f, "sheep_client_latency_seconds", labels, &m->lat[p][d]);
		}
	family(f, "sheep_nbd_bytes_total", "counter", "Bytes read and written over NBD.");
	fprintf(f, "sheep_nbd_bytes_total{op=\"read\"} %" PRIu64 "\n",
		LOAD(&m->nbd_bytes[SM_READ]));
	fprintf(f, "sheep_nbd_bytes_total{op=\"write\"} %" PRIu64 "\n",
		LOAD(&m->nbd_bytes[SM_WRITE]));
	policy_bytes(f, m, SM_PROTO_NBD, "sheep_nbd_policy_bytes_total",
		     "Bytes read and written over NBD, by the VDI's redundancy policy.");
	policy_bytes(f, m, SM_PROTO_SHEEPDOG, "sheep_request_policy_bytes_total",
		     "Object bytes read and written by Sheepdog-protocol clients (READ_OBJ, "
		     "WRITE_OBJ, CREATE_AND_WRITE_OBJ), by the VDI's redundancy policy.");
	counter(f, "sheep_nbd_errors_total", "NBD reads and writes that failed.",
		LOAD(&m->nbd_errors));
	counter(f, "sheep_degraded_reads_total",
		"Reads that decoded the range of a missing or bad fragment.",
		LOAD(&m->degraded_reads));
	counter(f, "sheep_decode_bytes_total", "Bytes those degraded reads rebuilt.",
		LOAD(&m->decode_bytes));
	counter(f, "sheep_sole_reads_total", "Reads served by one copy or EC data fragment alone.",
		LOAD(&m->sole_reads));
	counter(f, "sheep_probed_reads_total",
		"Reads that probed every holder (no copy or fragment known current).",
		LOAD(&m->probed_reads));

	if (!st->have_recovery)
		return;
	family(f, "sheep_recovery_info", "gauge", "Recovery on this sheep: status (value 1).");
	fprintf(f, "sheep_recovery_info{status=\"%s\"} 1\n", st->rec_status);
	gauge(f, "sheep_recovery_epoch", "Epoch of this sheep's current recovery plan.",
	      st->rec_epoch);
	gauge(f, "sheep_recovery_fragments", "Fragments this sheep must hold under the plan.",
	      st->rec_total);
	gauge(f, "sheep_recovery_fragments_done", "Of which in place.", st->rec_done);
	gauge(f, "sheep_recovery_fragments_failed", "Of which failed this round.", st->rec_failed);
	gauge(f, "sheep_recovery_fragments_copied", "Copied from a holder of the same fragment.",
	      st->rec_copied);
	gauge(f, "sheep_recovery_fragments_rebuilt", "Rebuilt by decoding.", st->rec_rebuilt);
	gauge(f, "sheep_recovery_fragments_reused", "Already here and valid.", st->rec_reused);
	gauge(f, "sheep_recovery_read_bytes", "Bytes read from peers by this plan.",
	      st->rec_bytes_read);
	gauge(f, "sheep_recovery_written_bytes", "Bytes written here by this plan.",
	      st->rec_bytes_written);
	gauge(f, "sheep_recovery_elapsed_ms", "Time this plan has run.", st->rec_elapsed_ms);
	gauge(f, "sheep_recovery_degraded_objects", "Objects below full redundancy.",
	      st->rec_degraded);
	gauge(f, "sheep_recovery_lost_objects", "Objects that cannot be rebuilt.", st->rec_lost);
}
