/* http.h - sheep --http PORT: /metrics (Prometheus text), / (read-only dashboard), /api/status
 * (JSON). */
#ifndef SHEEP_HTTP_H
#define SHEEP_HTTP_H

#include <stddef.h>
#include <stdio.h>

struct sheep;
struct sheep_http;

/*
 * Serve HTTP on bind_addr (NULL = every address) and port from a thread
 * of its own. Off unless --http is given. A port that cannot be bound is
 * logged as a warning and the sheep runs without HTTP: it never stops
 * startup. Returns 0 (also then), or -errno when no thread could start.
 */
int sheep_http_start(struct sheep *s, const char *bind_addr, int port);
void sheep_http_stop(struct sheep *s);
/* The port actually served, or 0 when HTTP is off or the bind failed. */
int sheep_http_port(const struct sheep *s);

/* ---- http_status.c ---- */
/* The Prometheus exposition of this sheep (GET /metrics). */
void sheep_http_metrics(struct sheep *s, FILE *f);
/* The cluster as this sheep sees it, as JSON (GET /api/status); asks
 * every member over the Sheepdog protocol as dog does. */
void sheep_http_status(struct sheep *s, FILE *f);

/* ---- dashboard.c ---- */
/* The dashboard page (GET /): HTML, CSS and script in one document. */
extern const char sheep_dashboard_html[];

#endif
