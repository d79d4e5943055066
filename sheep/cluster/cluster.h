/* cluster.h - the membership driver interface: join, leave, totally ordered broadcast. */
#ifndef SHEEP_CLUSTER_H
#define SHEEP_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "lib/sd_internal.h"

/* struct sd_node lives in lib/sd_internal.h: dog shows it too. */

/*
 * What a driver tells the daemon. Both callbacks run on the event-loop
 * thread from cluster_driver.dispatch(). Every member sees the same sequence
 * of membership changes and messages, interleaved in the same order
 * (virtual synchrony): that total order is what cluster-wide operations
 * (format, VDI create/delete/lock) rely on, since each node applies them
 * deterministically in delivery order. A sender gets its own messages back.
 */
struct cluster_events {
	/* members: the whole agreed member list after the change, in the same
	 * order on every node (oldest member first). changed: the node that
	 * joined (joined = true) or left/failed (joined = false). The first
	 * call a node gets is its own join, listing itself. */
	void (*membership)(void *arg, const struct sd_node *members, size_t nr_members,
			   const struct sd_node *changed, bool joined);
	void (*deliver)(void *arg, const struct sd_node *sender, const void *msg, size_t len);
	/* The driver lost contact with the membership service or quorum
	 * (corosync). The node must stop accepting writes until it returns. */
	void (*quorum)(void *arg, bool quorate);
};

struct cluster_ctx;

struct cluster_driver {
	const char *name;
	/* options: the text after "name:" in sheep -c (e.g. "path=/tmp/x"),
	 * or "". Returns 0 or -errno; errors are logged with what to do. */
	int (*init)(struct cluster_ctx **ctx, const char *options, const struct sd_node *self,
		    const struct cluster_events *ev, void *arg);
	int (*join)(struct cluster_ctx *ctx);
	int (*leave)(struct cluster_ctx *ctx);
	/* Totally ordered broadcast of up to CLUSTER_MAX_MSG bytes. The message
	 * is delivered to every current member, sender included, or to none
	 * (sender failed before the driver accepted it). */
	int (*broadcast)(struct cluster_ctx *ctx, const void *msg, size_t len);
	/* An fd the event loop polls for readability; then call dispatch(). */
	int (*get_fd)(struct cluster_ctx *ctx);
	int (*dispatch)(struct cluster_ctx *ctx);
	void (*destroy)(struct cluster_ctx *ctx);
};

#define CLUSTER_MAX_MSG (1u << 20)

/* Look a driver up by the name before any ':' in spec ("local",
 * "local:path=/x", "corosync"). NULL when unknown or not built. */
const struct cluster_driver *cluster_driver_find(const char *spec);
/* The options part of spec ("" when none). */
const char *cluster_driver_options(const char *spec);

extern const struct cluster_driver cluster_local_driver;
#if HAVE_COROSYNC
extern const struct cluster_driver cluster_corosync_driver;
#endif

#endif
