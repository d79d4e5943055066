/* format_json.c - dog's JSON forms of vdi list, node list/info, cluster info and node recovery
 * (the schema dog(8) documents; same numbers as the tables, raw units). */
#include <string.h>

#include "dog/dog.h"

void dog_json_vdi_row(struct dog_json *j, const struct dog_vdi_row *r)
{
	char copies[16];
	dog_policy_str(r->copy_policy, r->nr_copies, copies, sizeof(copies));
	dog_json_obj_begin(j, NULL);
	dog_json_str(j, "name", r->name);
	dog_json_str(j, "type", r->type == 's' ? "snapshot" : r->type == 'c' ? "clone" : "working");
	dog_json_u64(j, "snap_id", r->snap_id);
	dog_json_str(j, "tag", r->tag);
	dog_json_u64(j, "vdi_id", r->vid);
	dog_json_u64(j, "size", r->size);
	dog_json_u64(j, "used", r->used);
	dog_json_u64(j, "shared", r->shared);
	dog_json_u64(j, "ctime", r->ctime);
	dog_json_str(j, "policy", copies);
	dog_json_u64(j, "copy_policy", r->copy_policy);
	dog_json_u64(j, "nr_copies", r->nr_copies);
	dog_json_u64(j, "block_size_shift", r->block_size_shift);
	dog_json_obj_end(j);
}

/* Members every node object carries: host, port, "host:port", vnodes, zone. */
static void node_members(struct dog_json *j, const struct sd_node *n)
{
	char hp[96];
	if (strchr(n->addr, ':'))
		snprintf(hp, sizeof(hp), "[%.64s]:%u", n->addr, n->port);
	else
		snprintf(hp, sizeof(hp), "%.64s:%u", n->addr, n->port);
	dog_json_strn(j, "host", n->addr, sizeof(n->addr));
	dog_json_u64(j, "port", n->port);
	dog_json_str(j, "addr", hp);
	dog_json_u64(j, "vnodes", n->nr_vnodes);
	dog_json_u64(j, "zone", n->zone);
	dog_json_u64(j, "nbd_port", n->nbd_port);
	dog_json_u64(j, "space", n->space);
	dog_json_bool(j, "gateway", n->gateway != 0);
}

void dog_json_node(struct dog_json *j, int id, const struct sd_node *n)
{
	dog_json_obj_begin(j, NULL);
	dog_json_i64(j, "id", id);
	node_members(j, n);
	dog_json_obj_end(j);
}

void dog_json_node_info(struct dog_json *j, int id, uint64_t size, uint64_t used)
{
	uint64_t avail = used < size ? size - used : 0;
	if (id >= 0) {
		dog_json_obj_begin(j, NULL);
		dog_json_i64(j, "id", id);
	} else {
		dog_json_obj_begin(j, "total");
	}
	dog_json_u64(j, "size", size);
	dog_json_u64(j, "used", used);
	dog_json_u64(j, "avail", avail);
	dog_json_u64(j, "use_percent", size ? used * 100 / size : 0);
	dog_json_obj_end(j);
}

void dog_json_epoch(struct dog_json *j, const struct sd_epoch_rec *e, const struct sd_node *nodes)
{
	dog_json_obj_begin(j, NULL);
	dog_json_u64(j, "epoch", e->epoch);
	dog_json_u64(j, "time", e->time);
	dog_json_arr_begin(j, "nodes");
	for (uint32_t i = 0; i < e->nr_nodes; i++) {
		dog_json_obj_begin(j, NULL);
		node_members(j, &nodes[i]);
		dog_json_obj_end(j);
	}
	dog_json_arr_end(j);
	dog_json_obj_end(j);
}

void dog_json_recovery(struct dog_json *j, int id, const struct sd_node *n,
		       const struct sd_recovery_state *st, const char *status, double percent,
		       bool recovering)
{
	dog_json_obj_begin(j, NULL);
	dog_json_i64(j, "id", id);
	node_members(j, n);
	dog_json_bool(j, "recovering", recovering);
	dog_json_str(j, "status", status);
	dog_json_double(j, "progress", percent);
	dog_json_u64(j, "epoch", st->epoch);
	dog_json_u64(j, "done", st->done);
	dog_json_u64(j, "total", st->total);
	dog_json_u64(j, "failed", st->failed);
	dog_json_u64(j, "reused", st->reused);
	dog_json_u64(j, "copied", st->copied);
	dog_json_u64(j, "rebuilt", st->rebuilt);
	dog_json_u64(j, "bytes_read", st->bytes_read);
	dog_json_u64(j, "bytes_written", st->bytes_written);
	dog_json_u64(j, "elapsed_ms", st->elapsed_ms);
	dog_json_u64(j, "rounds", st->rounds);
	dog_json_bool(j, "cluster_done", st->cluster_done != 0);
	dog_json_u64(j, "degraded", st->degraded);
	dog_json_u64(j, "lost", st->lost);
	dog_json_arr_begin(j, "lost_oids");
	for (uint64_t k = 0; k < st->lost && k < SD_RECOVERY_LOST_NAMED; k++) {
		char oid[24];
		snprintf(oid, sizeof(oid), "%016llx", (unsigned long long)st->lost_oids[k]);
		dog_json_str(j, NULL, oid);
	}
	dog_json_arr_end(j);
	dog_json_u64(j, "dropped", st->dropped);
	dog_json_strn(j, "message", st->message, sizeof(st->message));
	dog_json_obj_end(j);
}
