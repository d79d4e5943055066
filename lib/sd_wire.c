/* sd_wire.c - conversions between this project's structs and Sheepdog 1.0's wire layouts (sd_wire.h). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/sd_wire.h"

void sd_node_to_wire(const struct sd_node *n, struct sd_wire_node *w)
{
	memset(w, 0, sizeof(*w));
	if (strchr(n->addr, ':'))
		inet_pton(AF_INET6, n->addr, w->addr);
	else
		inet_pton(AF_INET, n->addr, w->addr + 12);
	w->port = n->port;
	w->nbd_port = n->nbd_port;
	w->sd_flags = (uint8_t)((n->gateway ? SD_WIRE_NODE_GATEWAY : 0) |
				(n->fixed_vnodes ? SD_WIRE_NODE_FIXED_VNODES : 0));
	w->nr_vnodes = n->nr_vnodes;
	w->zone = n->zone;
	w->space = n->space;
}

void sd_node_from_wire(const struct sd_wire_node *w, struct sd_node *n)
{
	static const uint8_t zero[12];
	memset(n, 0, sizeof(*n));
	if (!memcmp(w->addr, zero, sizeof(zero)))
		inet_ntop(AF_INET, w->addr + 12, n->addr, sizeof(n->addr));
	else
		inet_ntop(AF_INET6, w->addr, n->addr, sizeof(n->addr));
	n->port = w->port;
	n->nbd_port = w->nbd_port;
	n->gateway = (w->sd_flags & SD_WIRE_NODE_GATEWAY) != 0;
	n->fixed_vnodes = (w->sd_flags & SD_WIRE_NODE_FIXED_VNODES) != 0;
	n->nr_vnodes = w->nr_vnodes;
	n->zone = w->zone;
	n->space = w->space;
}

int sd_stat_cluster_epoch(const void *buf, size_t len, uint32_t i, struct sd_epoch_rec *e,
			  struct sd_node *nodes)
{
	if ((size_t)i >= len / SD_EPOCH_LOG_SIZE)
		return -1;
	const char *p = (const char *)buf + (size_t)i * SD_EPOCH_LOG_SIZE;
	struct sd_epoch_log_hdr h;
	memcpy(&h, p, sizeof(h));
	if (h.nr_nodes > SD_WIRE_MAX_NODES)
		return -1;
	e->epoch = h.epoch;
	e->nr_nodes = h.nr_nodes;
	e->time = h.time;
	for (uint32_t k = 0; k < h.nr_nodes; k++) {
		struct sd_wire_node w;
		memcpy(&w, p + sizeof(h) + (size_t)k * sizeof(w), sizeof(w));
		sd_node_from_wire(&w, &nodes[k]);
	}
	return 0;
}

void sd_stat_cluster_summary(const void *buf, size_t len, uint32_t result,
			     struct sd_cluster_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->recovery_enabled = 1;
	ci->status = result == SD_RES_SUCCESS	      ? 0
		     : result == SD_RES_WAIT_FOR_FORMAT ? 1
		     : result == SD_RES_SHUTDOWN	      ? 2
		     : result == SD_RES_WAIT_FOR_JOIN   ? 3
							: 1;
	if (len < SD_EPOCH_LOG_SIZE)
		return;
	struct sd_epoch_log_hdr h;
	memcpy(&h, buf, sizeof(h));
	ci->ctime = h.ctime >> 32;
	ci->epoch = h.epoch;
	ci->copies = h.nr_copies;
	ci->copy_policy = h.copy_policy;
	ci->block_size_shift = h.block_size_shift;
	ci->recovery_enabled = !h.disable_recovery;
	ci->nr_epochs = (uint32_t)(len / SD_EPOCH_LOG_SIZE);
	ci->flags = h.flags;
	uint32_t zones[SD_WIRE_MAX_NODES], nz = 0;
	for (uint32_t k = 0; k < h.nr_nodes && k < SD_WIRE_MAX_NODES; k++) {
		struct sd_wire_node w;
		memcpy(&w, (const char *)buf + sizeof(h) + (size_t)k * sizeof(w), sizeof(w));
		if (!w.nr_vnodes && !w.space)
			continue; /* gateway only */
		bool seen = false;
		for (uint32_t z = 0; z < nz; z++)
			seen |= zones[z] == w.zone;
		if (!seen)
			zones[nz++] = w.zone;
	}
	ci->nr_zones = nz;
}
