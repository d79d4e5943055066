/* http.h - sheep --http PORT: /metrics (Prometheus text), / (read-only dashboard), /api/status
 * (JSON). */
#ifndef SHEEP_HTTP_H
#define SHEEP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sheep;
struct sheep_http;
struct sheep_metrics;

/*
 * Serve HTTP on bind_addr (NULL = every address) and port from a thread
 * of its own. Off unless --http is given. A port that cannot be bound is
 * logged as a warning and the sheep runs without HTTP: it never stops
 * startup. Returns 0 (also then), or -errno when no thread could start.
 */
int sheep_http_start(struct sheep *s, const char *bind_addr, int port);
void sheep_http_stop(struct sheep *s);

/* ---- http_status.c ---- */
/* The Prometheus exposition of this sheep (GET /metrics). */
void sheep_http_metrics(struct sheep *s, FILE *f);
/* The cluster as this sheep sees it, as JSON (GET /api/status); asks
 * every member over the Sheepdog protocol as dog does. http_port: the
 * port being served, shown in "self". */
void sheep_http_status(struct sheep *s, int http_port, FILE *f);

/* ---- http_metrics.c ---- */
/* Opcode name in metric labels ("read_obj", "peer_write"...), or NULL for
 * one this sheep does not know. */
const char *sheep_http_op_name(uint8_t opcode);

/* What a scrape adds that lives outside the counters (filled by http_status.c). */
struct sheep_http_state {
	const char *version, *addr;
	uint16_t port;
	uint32_t zone;
	uint32_t epoch;
	uint32_t members, zones;
	bool formatted, recovery_enabled;
	uint64_t capacity, free_bytes, own_bytes; /* store (capacity.c); 0 for a gateway */
	uint64_t checksum_errors, checksum_repairs;
	/* fragments found bad here and repaired since (scrub/scrub.h), and the scrub */
	uint64_t csum_found, csum_repaired;
	bool scrub_enabled;
	uint64_t scrub_rate, scrub_passes, scrub_scanned, scrub_bytes, scrub_done, scrub_total;
	/* the store's write-ahead log (store_get_stats); all 0 for a gateway */
	uint64_t wal_syncs, wal_records, wal_batches, wal_bytes, wal_max_batch;
	uint64_t wal_checkpoints, wal_ckpt_ns, wal_fill, wal_size;
	uint32_t vdis;
	bool have_recovery;
	uint32_t rec_epoch;
	const char *rec_status;
	uint64_t rec_total, rec_done, rec_failed, rec_copied, rec_rebuilt, rec_reused;
	uint64_t rec_bytes_read, rec_bytes_written, rec_elapsed_ms, rec_degraded, rec_lost;
};
/* The Prometheus text exposition (version 0.0.4) of m and st. */
void sheep_http_render_metrics(const struct sheep_metrics *m, const struct sheep_http_state *st,
			       FILE *f);

/* ---- dashboard.c ---- */
/* The dashboard page (GET /): HTML, CSS and script in one document. */
extern const char sheep_dashboard_html[];

#endif
