/* ack.c - the acknowledgement rule of a write: how many fragments or copies must be durable, counted over the calls made. */
#include "sheep/gateway/gateway_priv.h"

/* ---- the acknowledgement rule (DESIGN.md data path, step 6) ---- */

int gw_ack_threshold(const struct gw_obj *o)
{
	if (o->ec)
		return o->d + 1;
	return o->width >= 2 ? 2 : 1;
}

/*
 * The acknowledgement rule counts failure domains, not fragments: two
 * fragments in one zone (a node that still holds an old position's
 * fragment next to its own, while that position has no home) are lost
 * together, so they count once (issue 14). Returns the distinct zones of
 * the calls that succeeded; *retry gets a retry code if any call had one.
 */
int gw_count_acks(struct gw_obj *o, struct peer_call *calls, int n, int *retry)
{
	int ok = 0;
	uint32_t zones[GW_MAX_CALLS];
	*retry = 0;
	for (int i = 0; i < n; i++) {
		if (!calls[i].node)
			continue;
		if (calls[i].result == SD_RES_SUCCESS) {
			bool seen = false;
			for (int z = 0; z < ok && !seen; z++)
				seen = zones[z] == calls[i].node->zone;
			if (!seen)
				zones[ok++] = calls[i].node->zone;
		}
		else if (gw_res_is_retry(calls[i].result))
			*retry = calls[i].result;
		else
			sd_info("write of %016llx fragment %d on %s:%u: %s",
				(unsigned long long)o->oid, calls[i].req.obj.ec_index,
				calls[i].node->addr, calls[i].node->port, sd_strerror(calls[i].result));
	}
	return ok;
}

/* The distinct zones of nodes[0..n) (NULL entries skipped). */
int gw_zones_of(const struct sd_node *const *nodes, int n)
{
	uint32_t zones[GW_MAX_CALLS];
	int nz = 0;
	for (int i = 0; i < n && nz < GW_MAX_CALLS; i++) {
		if (!nodes[i])
			continue;
		bool seen = false;
		for (int z = 0; z < nz && !seen; z++)
			seen = zones[z] == nodes[i]->zone;
		if (!seen)
			zones[nz++] = nodes[i]->zone;
	}
	return nz;
}

/* Refuse before writing anything when the writable fragments (targets[i]
 * not NULL: the node position i would be written on) span fewer zones than
 * the ack rule needs: a write that cannot be acknowledged changes nothing.
 * Counting fragments here let a write on five fragments in four zones go
 * out, be applied, and be refused (110 "v reads back every byte"). */
int gw_precheck_targets(struct gw_obj *o, const struct sd_node *const *targets)
{
	int zones = gw_zones_of(targets, o->width);
	if (zones >= gw_ack_threshold(o))
		return SD_RES_SUCCESS;
	sd_err("write of %016llx refused before writing: its writable fragments reach %d "
	       "zone(s) for %d fragments, %d needed to keep redundancy", (unsigned long long)o->oid,
	       zones, o->width, gw_ack_threshold(o));
	return SD_RES_EIO;
}

int gw_ack_result(struct gw_obj *o, int ok, int retry)
{
	o->acked_all = !retry && ok == o->width;
	if (retry)
		return retry;
	if (ok >= gw_ack_threshold(o))
		return SD_RES_SUCCESS;
	sd_err("write of %016llx reached %d zone(s) for %d fragments, %d needed to keep "
	       "redundancy: not acknowledged", (unsigned long long)o->oid, ok, o->width, gw_ack_threshold(o));
	return SD_RES_EIO;
}
