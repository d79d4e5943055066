/* ops.c - what each request opcode does: client ops, the internal ops dog uses, peer ops. Runs on workers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/sd_wire.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/scrub/scrub.h"
#include "sheep/store/capacity.h"
#include "sheep/sheep.h"
#include "sheep/server/ops_priv.h"
#include "sheep/server/server.h"
#include "sheep/cluster/cluster.h"
#include "sheep/snap/snap.h"
#include "sheep/store/store.h"

/* Object size of the object oid belongs to (0 when its VDI is unknown). */
static uint32_t obj_size_of(struct sheep *s, uint64_t oid)
{
	if (is_vdi_obj(oid))
		return SD_INODE_SIZE;
	struct vdi_entry e;
	if (group_vdi_find(s, oid_to_vid(oid), &e))
		return 0;
	return 1u << e.shift;
}

/* ---- object ops ---- */

/* A client names a data object by VDI and index only: the layout bit
 * (lib/oid.h) is the gateway's, never a client's. */
static bool client_oid_bad(uint64_t oid)
{
	return is_data_obj(oid) && (oid & SD_LAYOUT_BIT);
}

static int do_read_obj(struct sheep *s, struct request *r)
{
	uint32_t len = r->hdr.data_length;
	if (client_oid_bad(r->hdr.obj.oid))
		return SD_RES_INVALID_PARMS;
	void *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	if (is_vdi_obj(r->hdr.obj.oid))
		vdi_snap_sweep(s);
	int ret = gateway_read_obj(s, r->hdr.obj.oid, buf, len, r->hdr.obj.offset);
	if (ret == SD_RES_SUCCESS) {
		r->rlen = len;
		r->rsp.obj.offset = r->hdr.obj.offset;
	}
	return ret;
}

/*
 * One lock for every writer: a client write to a data object of a VDI
 * locked by an NBD writer (on any sheep) is refused (SD_RES_VDI_LOCKED).
 * A lock held by a Sheepdog-protocol client (dog takes it on one
 * connection and writes on several others) keeps NBD writers out but not
 * other such clients: concurrent dog writes of one volume run side by side.
 */
static int client_may_write(struct sheep *s, uint64_t oid)
{
	struct vdi_entry e;
	if (!is_data_obj(oid) || group_vdi_find(s, oid_to_vid(oid), &e) || !e.locked)
		return SD_RES_SUCCESS;
	bool client_lock = (e.lock_owner >> 62) == 1;
	/* Sheepdog-protocol writers (dog) do not exclude each other, as in
	 * Sheepdog 1.0: only an NBD writer's lock refuses them. */
	if (client_lock)
		return SD_RES_SUCCESS;
	sd_info("refusing a client write to %" PRIx64 ": VDI %" PRIx32
		" is locked by %s:%u (owner %" PRIx64 ")",
		oid, e.vid, e.lock_addr, e.lock_port, e.lock_owner);
	return SD_RES_VDI_LOCKED;
}

static int write_obj(struct sheep *s, struct request *r, bool create)
{
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE))
		return SD_RES_INVALID_PARMS;
	uint64_t oid = r->hdr.obj.oid;
	if (client_oid_bad(oid) || client_oid_bad(r->hdr.obj.cow_oid))
		return SD_RES_INVALID_PARMS;
	int lr = client_may_write(s, oid);
	if (lr != SD_RES_SUCCESS)
		return lr;
	uint32_t off = r->hdr.obj.offset;
	uint32_t len = r->hdr.data_length;
	/* Attribute objects are created by GET_VDI_ATTR alone (as Sheepdog's
	 * sheep does); clients only write an existing one's value. */
	if (create && (oid & SD_TYPE_MASK) == VDI_ATTR_BIT)
		return SD_RES_NO_SUPPORT;
	if (create && (r->hdr.flags & SD_FLAG_CMD_COW) && r->hdr.obj.cow_oid) {
		/* Copy-on-write from the snapshot's object, then overlay. */
		uint32_t osz = obj_size_of(s, oid);
		if (!osz || (uint64_t)off + len > osz)
			return osz ? SD_RES_INVALID_PARMS : SD_RES_NO_VDI;
		if (is_data_obj(oid) && gateway_copy_obj(s, r->hdr.obj.cow_oid, oid) == SD_RES_SUCCESS)
			return gateway_write_obj(s, oid, r->data, len, off, false);
		char *whole = malloc(osz);
		if (!whole)
			return SD_RES_NO_MEM;
		int ret = gateway_read_obj(s, r->hdr.obj.cow_oid, whole, osz, 0);
		if (ret == SD_RES_NO_OBJ) {
			memset(whole, 0, osz);
			ret = SD_RES_SUCCESS;
		}
		if (ret == SD_RES_SUCCESS) {
			memcpy(whole + off, r->data, len);
			ret = gateway_write_obj(s, oid, whole, osz, 0, true);
		}
		free(whole);
		return ret;
	}
	return gateway_write_obj(s, oid, r->data, len, off, create);
}

static int do_discard_obj(struct sheep *s, struct request *r)
{
	uint64_t oid = r->hdr.obj.oid;
	if (!is_data_obj(oid) || client_oid_bad(oid))
		return SD_RES_INVALID_PARMS;
	int lr = client_may_write(s, oid);
	if (lr != SD_RES_SUCCESS)
		return lr;
	uint32_t zero = 0;
	int ret = gateway_write_obj(s, vid_to_vdi_oid(oid_to_vid(oid)), &zero, sizeof(zero),
				    sd_inode_vid_offset(oid_to_idx(oid)), false);
	if (ret != SD_RES_SUCCESS)
		return ret;
	ret = gateway_remove_obj(s, oid);
	return ret == SD_RES_NO_OBJ ? SD_RES_SUCCESS : ret;
}

static int do_cluster_default(struct sheep *s, struct request *r)
{
	struct group_status st;
	group_status(s, &st);
	r->rsp.cluster.nr_copies = st.def_copies;
	r->rsp.cluster.copy_policy = st.def_policy;
	r->rsp.cluster.block_size_shift = st.def_shift;
	return SD_RES_SUCCESS;
}

/* ---- internal ops ---- */

/* GET_NODE_LIST: the members as Sheepdog's 80-byte nodes (sd_wire.h),
 * sorted as `dog node list` shows them; rsp->node.nr_nodes and the
 * answering node's index (local_idx, rsp byte 24). */
static int do_node_list(struct sheep *s, struct request *r)
{
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return SD_RES_WAIT_FOR_JOIN;
	size_t nr = SD_MIN(v->nr_nodes, (size_t)SD_WIRE_MAX_NODES);
	uint32_t len = (uint32_t)(nr * sizeof(struct sd_wire_node));
	int ret = SD_RES_SUCCESS;
	struct sd_node *tmp = calloc(nr ? nr : 1, sizeof(*tmp));
	if (len > r->hdr.data_length) {
		ret = SD_RES_INVALID_PARMS; /* reply buffer too small */
	} else if (!tmp) {
		ret = SD_RES_NO_MEM;
	} else {
		struct sd_wire_node *buf = ops_reply_buf(r, len);
		if (!buf) {
			ret = SD_RES_NO_MEM;
		} else {
			memcpy(tmp, v->nodes, nr * sizeof(*tmp));
			sheep_capacity_show_vnodes(v, tmp, nr);
			for (size_t i = 0; i < nr; i++)
				sd_node_to_wire(&tmp[i], &buf[i]);
			r->rlen = len;
			r->rsp.node.nr_nodes = (uint32_t)nr;
			uint32_t me = 0;
			for (size_t i = 0; i < nr; i++)
				if (sd_node_eq(&v->nodes[i], &s->self))
					me = (uint32_t)i;
			sd_rsp_local_idx(&r->rsp) = me;
		}
	}
	free(tmp);
	sheep_view_put(v);
	return ret;
}

static int do_make_fs(struct sheep *s, struct request *r)
{
	struct cmsg_format f;
	memset(&f, 0, sizeof(f));
	f.h.type = CMSG_FORMAT;
	/* Sheepdog's ctime: (seconds << 32) | nanoseconds. */
	f.ctime = r->hdr.cluster.ctime >> 32 ? r->hdr.cluster.ctime >> 32 : sd_wall_seconds();
	if (r->hdr.data_length && (r->hdr.flags & SD_FLAG_CMD_WRITE) && r->data) {
		/* The store backend's name (Sheepdog's dog sends it): "plain",
		 * or "tree" which is stored as plain here. */
		char name[SD_STORE_LEN + 1] = "";
		memcpy(name, r->data, SD_MIN(r->hdr.data_length, (uint32_t)SD_STORE_LEN));
		if (name[0] && strcmp(name, "plain") && strcmp(name, "tree"))
			return SD_RES_NO_STORE;
	}
	f.copies = r->hdr.cluster.copies ? r->hdr.cluster.copies : SD_DEFAULT_COPIES;
	f.policy = r->hdr.cluster.copies ? r->hdr.cluster.copy_policy : 0;
	f.shift = r->hdr.cluster.block_size_shift ? r->hdr.cluster.block_size_shift
						   : SD_DEFAULT_BLOCK_SIZE_SHIFT;
	f.vnodes = r->hdr.cluster.nr_vnodes;
	f.flags = (uint8_t)((r->hdr.cluster.flags &
			     (SD_CLUSTER_FLAG_STRICT | SD_CLUSTER_FLAG_RECYCLE_VID)) |
			    SD_CLUSTER_FLAG_JOIN_ANCHORS);
	struct ec_policy pol;
	if (ec_policy_from_wire(f.policy, f.copies, &pol) || f.shift < SD_MIN_BLOCK_SIZE_SHIFT ||
	    f.shift > SD_MAX_BLOCK_SIZE_SHIFT || f.vnodes > 65535)
		return SD_RES_INVALID_PARMS;
	if (ec_policy_is_ec(&pol) && ((1u << f.shift) % pol.d))
		return SD_RES_INVALID_PARMS;
	struct group_status st;
	group_status(s, &st);
	if (!st.synced)
		return SD_RES_WAIT_FOR_JOIN;
	return group_cluster_op(s, &f, sizeof(f), NULL);
}

struct count_ctx {
	uint64_t n;
};

static int count_one(const struct store_meta *m, void *arg)
{
	(void)m;
	((struct count_ctx *)arg)->n++;
	return 0;
}

static int do_stat_sheep(struct sheep *s, struct request *r)
{
	if (!s->store) {
		r->rsp.node.store_size = 0;
		r->rsp.node.store_free = 0;
		return SD_RES_SUCCESS;
	}
	uint64_t size = 0, free_bytes = 0;
	int ret = sheep_capacity(s, &size, &free_bytes);
	if (ret)
		return sd_errno_to_res(ret);
	struct count_ctx cc = {0};
	store_for_each(s->store, count_one, &cc);
	r->rsp.node.store_size = size;
	r->rsp.node.store_free = free_bytes;
	r->rsp.node.nr_nodes = (uint32_t)cc.n;
	return SD_RES_SUCCESS;
}

/* STAT, and SCRUB's answer: the counters in a struct sd_store_stat. A
 * read asks with room for it (data_length is the client's buffer); a
 * SCRUB change sends its control and reads the counters back. */
static int do_store_stat(struct sheep *s, struct request *r)
{
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) && r->hdr.data_length < sizeof(struct sd_store_stat))
		return SD_RES_INVALID_PARMS;
	struct store_stats ss = {0};
	struct sd_store_stat *o = ops_reply_buf(r, sizeof(*o));
	if (!o)
		return SD_RES_NO_MEM;
	if (s->store)
		store_get_stats(s->store, &ss);
	*o = (struct sd_store_stat){.syncs = ss.syncs,
				    .records = ss.records,
				    .batches = ss.batches,
				    .log_bytes = ss.log_bytes,
				    .max_batch = ss.max_batch,
				    .checkpoints = ss.checkpoints,
				    .ckpt_ns_total = ss.ckpt_ns_total,
				    .ckpt_ns_last = ss.ckpt_ns_last,
				    .log_fill = ss.log_fill,
				    .log_size = ss.log_size,
				    .replayed = ss.replayed,
				    .dropped = ss.dropped,
				    .pending = ss.pending};
	sheep_scrub_stat(s, o);
	r->rlen = sizeof(*o);
	return SD_RES_SUCCESS;
}

/* SCRUB (lib/sd_internal.h): change the background scrub (with a payload),
 * then answer its counters as STAT does. */
static int do_scrub(struct sheep *s, struct request *r)
{
	struct sd_scrub_ctl ctl = {.action = SD_SCRUB_STATUS};
	if (r->hdr.flags & SD_FLAG_CMD_WRITE) {
		if (r->hdr.data_length != sizeof(ctl) || !r->data)
			return SD_RES_INVALID_PARMS;
		memcpy(&ctl, r->data, sizeof(ctl));
	}
	int ret = sheep_scrub_ctl(s, &ctl);
	if (ret != SD_RES_SUCCESS)
		return ret;
	return do_store_stat(s, r);
}

/* CHECK_OBJ (lib/sd_internal.h): check and repair every copy or fragment
 * of obj.oid (gateway/check.c). */
static int do_check_obj(struct sheep *s, struct request *r)
{
	if (r->hdr.data_length < sizeof(struct sd_check_obj))
		return SD_RES_INVALID_PARMS;
	struct sd_check_obj *out = ops_reply_buf(r, sizeof(*out));
	if (!out)
		return SD_RES_NO_MEM;
	memset(out, 0, sizeof(*out));
	int ret = gateway_check_obj(s, r->hdr.obj.oid, out);
	if (ret == SD_RES_SUCCESS)
		r->rlen = sizeof(*out);
	return ret;
}

/* STAT_CLUSTER: Sheepdog's epoch logs, newest first, as many as the
 * request's data_length holds (sd_wire.h); the status in the result. */
static int do_stat_cluster(struct sheep *s, struct request *r)
{
	/* 0 asks for the status alone (Sheepdog's dog before the format);
	 * room for less than one record is a mistake. */
	if (r->hdr.data_length && r->hdr.data_length < SD_EPOCH_LOG_SIZE)
		return SD_RES_INVALID_PARMS;
	uint32_t max = SD_MIN(r->hdr.data_length, SD_MAX_PAYLOAD) / (uint32_t)SD_EPOCH_LOG_SIZE;
	struct group_status st;
	group_status(s, &st);
	uint32_t n = SD_MIN(max, (uint32_t)st.nr_epochs);
	void *buf = ops_reply_buf(r, (uint32_t)(n * SD_EPOCH_LOG_SIZE));
	if (!buf)
		return SD_RES_NO_MEM;
	int status = 0;
	r->rlen = (uint32_t)group_cluster_info(s, buf, n * SD_EPOCH_LOG_SIZE, &status);
	r->keep_rdata = true; /* dog shows the history with the status */
	group_status(s, &st);
	if (!st.synced)
		return SD_RES_WAIT_FOR_JOIN;
	return status == 2 ? SD_RES_SHUTDOWN
	       : status == 3 ? SD_RES_WAIT_FOR_JOIN
	       : status == 1 ? SD_RES_WAIT_FOR_FORMAT
			     : SD_RES_SUCCESS;
}

/* GET_LOGLEVEL / SET_LOGLEVEL: this sheep's log level as an int32 (Sheepdog's
 * 0 emerg .. 7 debug), read or changed at run time. */
static int do_loglevel(struct sheep *s, struct request *r)
{
	int32_t level;
	if (r->hdr.opcode == SD_OP_SET_LOGLEVEL) {
		if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || r->hdr.data_length != sizeof(level) ||
		    !r->data)
			return SD_RES_INVALID_PARMS;
		memcpy(&level, r->data, sizeof(level));
		if (level < SD_LOG_EMERG || level > SD_LOG_DEBUG)
			return SD_RES_INVALID_PARMS;
		sd_log_set_level((enum sd_log_level)level);
		sd_notice("log level set to %s", sd_log_level_name((enum sd_log_level)level));
		return SD_RES_SUCCESS;
	}
	if (r->hdr.data_length < sizeof(level))
		return SD_RES_INVALID_PARMS;
	void *buf = ops_reply_buf(r, sizeof(level));
	if (!buf)
		return SD_RES_NO_MEM;
	level = (int32_t)sd_log_get_level();
	memcpy(buf, &level, sizeof(level));
	r->rlen = sizeof(level);
	return SD_RES_SUCCESS;
}

/* OBJ_LOCATION (sd_wire.h): each position's holder of obj.oid and
 * whether it has its fragment, as the gateway probes them. */
static int do_obj_location(struct sheep *s, struct request *r)
{
	struct gateway_loc loc[32];
	int width = 0, d = 0;
	bool ec = false;
	int ret = gateway_locate_obj(s, r->hdr.obj.oid, loc, 32, &width, &ec, &d);
	if (ret != SD_RES_SUCCESS)
		return ret;
	uint32_t len = (uint32_t)width * (uint32_t)sizeof(struct sd_obj_loc);
	if (r->hdr.data_length < len)
		return SD_RES_INVALID_PARMS;
	struct sd_obj_loc *out = ops_reply_buf(r, len);
	if (!out)
		return SD_RES_NO_MEM;
	for (int i = 0; i < width; i++) {
		sd_node_to_wire(&loc[i].node, &out[i].node);
		out[i].present = loc[i].present;
		out[i].moved = loc[i].moved;
		out[i].version = loc[i].version;
	}
	r->rlen = len;
	r->rsp.obj.copies = (uint8_t)width;
	r->rsp.obj.reserved[0] = (uint8_t)(ec ? d : 0);
	return SD_RES_SUCCESS;
}

/* GET_EPOCH: the nodes of epoch tgt_epoch (80 bytes each), then the
 * epoch's start time as a u64, as Sheepdog's; NO_TAG when not logged. */
static int do_get_epoch(struct sheep *s, struct request *r)
{
	struct sd_node *nodes;
	size_t nr_nodes;
	uint64_t t;
	int ret = group_epoch_nodes(s, r->hdr.obj.tgt_epoch, &nodes, &nr_nodes, &t);
	if (ret)
		return ret == -ENOENT ? SD_RES_NO_TAG : SD_RES_NO_MEM;
	uint32_t nr = SD_MIN((uint32_t)nr_nodes, (uint32_t)SD_WIRE_MAX_NODES);
	uint32_t len = nr * (uint32_t)sizeof(struct sd_wire_node) + (uint32_t)sizeof(uint64_t);
	char *buf = len > r->hdr.data_length ? NULL : ops_reply_buf(r, len);
	ret = len > r->hdr.data_length ? SD_RES_INVALID_PARMS : !buf ? SD_RES_NO_MEM : SD_RES_SUCCESS;
	if (ret == SD_RES_SUCCESS) {
		for (uint32_t k = 0; k < nr; k++) {
			struct sd_wire_node w;
			sd_node_to_wire(&nodes[k], &w);
			memcpy(buf + (size_t)k * sizeof(w), &w, sizeof(w));
		}
		memcpy(buf + (size_t)nr * sizeof(struct sd_wire_node), &t, sizeof(t));
		r->rlen = len;
		r->rsp.node.nr_nodes = nr;
	}
	free(nodes);
	return ret;
}

struct oid_list {
	uint64_t *v;
	size_t n, cap;
};

static int list_oid(const struct store_meta *m, void *arg)
{
	struct oid_list *l = arg;
	for (size_t i = l->n; i > 0 && i + 8 > l->n; i--)
		if (l->v[i - 1] == m->oid)
			return 0; /* fragments of one object are usually adjacent */
	if (l->n == l->cap)
		return -ENOSPC;
	l->v[l->n++] = m->oid;
	return 0;
}

static int do_get_obj_list(struct sheep *s, struct request *r)
{
	if (!s->store)
		return SD_RES_NO_STORE;
	uint32_t len = r->hdr.data_length;
	void *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	struct oid_list l = {.v = buf, .cap = len / sizeof(uint64_t)};
	int ret = store_for_each(s->store, list_oid, &l);
	if (ret == -ENOSPC)
		return SD_RES_NO_SPACE;
	if (ret)
		return sd_errno_to_res(ret);
	r->rlen = (uint32_t)(l.n * sizeof(uint64_t));
	return SD_RES_SUCCESS;
}

static int recover_toggle(struct sheep *s, bool on)
{
	struct cmsg_format f;
	memset(&f, 0, sizeof(f));
	f.h.type = CMSG_RECOVERY;
	f.copies = on;
	return group_cluster_op(s, &f, sizeof(f), NULL);
}

static int do_exist(struct sheep *s, struct request *r)
{
	char b;
	if (client_oid_bad(r->hdr.obj.oid))
		return SD_RES_INVALID_PARMS;
	int ret = gateway_read_obj(s, r->hdr.obj.oid, &b, 1, 0);
	return ret;
}

static int do_shutdown(struct sheep *s, struct request *r)
{
	struct cmsg_format f;
	memset(&f, 0, sizeof(f));
	f.h.type = CMSG_SHUTDOWN;
	int ret = group_cluster_op(s, &f, sizeof(f), NULL);
	if (ret == SD_RES_SUCCESS)
		r->close_after = true;
	return ret;
}

static int do_write_obj(struct sheep *s, struct request *r)
{
	return write_obj(s, r, false);
}

static int do_create_and_write_obj(struct sheep *s, struct request *r)
{
	return write_obj(s, r, true);
}

static int do_remove_obj(struct sheep *s, struct request *r)
{
	if (client_oid_bad(r->hdr.obj.oid))
		return SD_RES_INVALID_PARMS;
	return gateway_remove_obj(s, r->hdr.obj.oid);
}

static int do_flush_vdi(struct sheep *s, struct request *r)
{
	return SD_RES_INVALID_PARMS; /* as before the table: nothing to flush */
}

static int do_kill_node(struct sheep *s, struct request *r)
{
	sd_notice("killed by request");
	r->close_after = true;
	return SD_RES_SUCCESS;
}

static int do_enable_recover(struct sheep *s, struct request *r)
{
	return recover_toggle(s, true);
}

static int do_disable_recover(struct sheep *s, struct request *r)
{
	return recover_toggle(s, false);
}

/* A gateway write forwarded to this node as the object's write
 * coordinator: only in the epoch the gateway placed it in. */
#define GW_VDI_WAIT_MS 5000

static int do_peer_gw_write(struct sheep *s, struct request *r)
{
	uint32_t e = ops_current_epoch(s);
	if (r->hdr.epoch != e)
		return r->hdr.epoch < e ? SD_RES_OLD_NODE_VER : SD_RES_NEW_NODE_VER;
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) && r->hdr.data_length)
		return SD_RES_INVALID_PARMS;
	/* The gateway knew the VDI; this node may not have applied the
	 * message that made it yet (the inode's first write follows its
	 * creation at once): wait for it rather than answer NO_VDI. */
	if (group_vdi_wait(s, oid_to_vid(r->hdr.obj.oid), GW_VDI_WAIT_MS))
		return SD_RES_NO_VDI;
	if (r->hdr.flags & SD_PEER_FLAG_CONVERT)
		return r->hdr.data_length ? SD_RES_INVALID_PARMS
					  : gateway_convert_local(s, r->hdr.obj.oid);
	return gateway_write_local(s, r->hdr.obj.oid, r->data, r->hdr.data_length,
				   r->hdr.obj.offset, r->hdr.flags & SD_PEER_FLAG_CREATE);
}

/* Fragment I/O on the local store (peer/serve.c). Its reply payload is
 * sent even with an error: a generation probe answers NO_OBJ with what it
 * found. */
static int do_peer(struct sheep *s, struct request *r)
{
	uint8_t op = r->hdr.opcode;
	bool sends = op == SD_OP_PEER_WRITE || op == SD_OP_PEER_COMMIT || op == SD_OP_PEER_COPY ||
		     op == SD_OP_PEER_COMMIT_BATCH;
	uint32_t cap = sends ? 0 : r->hdr.data_length;
	void *rbuf = cap ? malloc(cap) : NULL;
	if (cap && !rbuf)
		return SD_RES_NO_MEM;
	uint32_t rlen = 0;
	struct peer_interim im = {r->interim, r};
	peer_serve_ex(s, &r->hdr, r->data, &r->rsp, rbuf, &rlen, r->interim ? &im : NULL);
	r->rdata = rbuf;
	r->rlen = rlen;
	r->keep_rdata = true;
	return (int)r->rsp.result;
}

/*
 * The operation table, indexed by opcode: adding an op is adding a row.
 * An opcode without a row answers SD_RES_NO_SUPPORT before its payload is
 * read. kind says who sends the op and which pool runs it (server.h);
 * ready: the op is refused with ops_need_ready()'s answer (HALT without
 * quorum, WAIT_FOR_JOIN before this node synced, WAIT_FOR_FORMAT before
 * the cluster is formatted) before its handler runs.
 */
#define OP(code, k, rdy, handler) [code] = {.name = #code, .kind = k, .ready = rdy, .fn = handler}
static const struct sd_op ops_table[256] = {
	/* client object I/O through the gateway (QEMU's protocol) */
	OP(SD_OP_CREATE_AND_WRITE_OBJ, OPS_CLIENT, true, do_create_and_write_obj),
	OP(SD_OP_READ_OBJ, OPS_CLIENT, true, do_read_obj),
	OP(SD_OP_WRITE_OBJ, OPS_CLIENT, true, do_write_obj),
	OP(SD_OP_REMOVE_OBJ, OPS_CLIENT, true, do_remove_obj),
	OP(SD_OP_DISCARD_OBJ, OPS_CLIENT, true, do_discard_obj),
	OP(SD_OP_EXIST, OPS_CLIENT, true, do_exist),
	/* decided by a message in the cluster driver's total order */
	OP(SD_OP_NEW_VDI, OPS_CLUSTER, true, ops_new_vdi),
	OP(SD_OP_LOCK_VDI, OPS_CLUSTER, true, ops_lock_vdi),
	OP(SD_OP_RELEASE_VDI, OPS_CLUSTER, true, ops_release_vdi),
	OP(SD_OP_FORCE_UNLOCK_VDI, OPS_CLUSTER, true, ops_force_unlock_vdi),
	OP(SD_OP_ALTER_VDI_COPY, OPS_CLUSTER, true, ops_alter_vdi_copy),
	OP(SD_OP_ALTER_STATUS, OPS_LOCAL, true, ops_alter_status),
	OP(SD_OP_DEL_VDI, OPS_CLUSTER, true, ops_del_vdi),
	OP(SD_OP_MAKE_FS, OPS_CLUSTER, false, do_make_fs),
	OP(SD_OP_SHUTDOWN, OPS_CLUSTER, false, do_shutdown),
	OP(SD_OP_ENABLE_RECOVER, OPS_CLUSTER, false, do_enable_recover),
	OP(SD_OP_DISABLE_RECOVER, OPS_CLUSTER, false, do_disable_recover),
	OP(SD_OP_SET_VNODES, OPS_CLUSTER, false, ops_set_vnodes),
	OP(SD_OP_GET_VNODES, OPS_LOCAL, false, ops_get_vnodes),
	OP(SD_OP_MD_INFO, OPS_LOCAL, false, ops_md_info),
	OP(SD_OP_MD_PLUG, OPS_LOCAL, false, ops_md_plug),
	OP(SD_OP_MD_UNPLUG, OPS_LOCAL, false, ops_md_plug),
	OP(SD_OP_OBJ_TRACK, OPS_LOCAL, true, ops_obj_track),
	/* answered from this node's own state */
	OP(SD_OP_GET_VDI_INFO, OPS_LOCAL, true, ops_get_vdi_info),
	OP(SD_OP_GET_VDI_LOCKS, OPS_LOCAL, true, ops_get_vdi_locks),
	OP(SD_OP_READ_VDIS, OPS_LOCAL, false, ops_read_vdis),
	OP(SD_OP_FLUSH_VDI, OPS_LOCAL, false, do_flush_vdi),
	OP(SD_OP_GET_CLUSTER_DEFAULT, OPS_LOCAL, false, do_cluster_default), /* zeros before format */
	OP(SD_OP_READ_DEL_VDIS, OPS_LOCAL, false, ops_read_del_vdis),
	OP(SD_OP_GET_VDI_ATTR, OPS_LOCAL, true, ops_get_vdi_attr),
	OP(SD_OP_OBJ_LOCATION, OPS_LOCAL, true, do_obj_location),
	OP(SD_OP_CHECK_OBJ, OPS_CLIENT, true, do_check_obj),
	OP(SD_OP_SCRUB, OPS_LOCAL, false, do_scrub),
	OP(SD_OP_GET_NODE_LIST, OPS_LOCAL, false, do_node_list),
	OP(SD_OP_STAT_SHEEP, OPS_LOCAL, false, do_stat_sheep),
	OP(SD_OP_STAT_CLUSTER, OPS_LOCAL, false, do_stat_cluster),
	OP(SD_OP_STAT, OPS_LOCAL, false, do_store_stat),
	OP(SD_OP_GET_LOGLEVEL, OPS_LOCAL, false, do_loglevel),
	OP(SD_OP_SET_LOGLEVEL, OPS_LOCAL, false, do_loglevel),
	OP(SD_OP_KILL_NODE, OPS_LOCAL, false, do_kill_node),
	OP(SD_OP_GET_OBJ_LIST, OPS_LOCAL, false, do_get_obj_list),
	OP(SD_OP_GET_EPOCH, OPS_LOCAL, false, do_get_epoch),
	OP(SD_OP_STAT_RECOVERY, OPS_LOCAL, false, sheep_recovery_op), /* sheep/rebuild/ops.c */
	OP(SD_OP_GET_RECOVERY, OPS_LOCAL, false, sheep_recovery_op),
	OP(SD_OP_SET_RECOVERY, OPS_LOCAL, false, sheep_recovery_op),
	OP(SD_OP_FORCE_RECOVER, OPS_LOCAL, false, sheep_recovery_op),
	/* sheep to sheep (sheep/peer/peer.h) */
	OP(SD_OP_PEER_READ, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_WRITE, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_REMOVE, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_STAT, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_LIST, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_COMMIT, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_COMMIT_BATCH, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_GEN, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_COPY, OPS_PEER, false, do_peer),
	OP(SD_OP_PEER_GW_WRITE, OPS_FORWARD, false, do_peer_gw_write),
};
#undef OP

const struct sd_op *ops_lookup(uint8_t opcode)
{
	const struct sd_op *o = &ops_table[opcode];
	return o->fn ? o : NULL;
}

int ops_check_header(const struct sd_req *hdr)
{
	if (sd_op_is_internal(hdr->opcode)) {
		if (hdr->proto_ver != SD_SHEEP_PROTO_VER)
			return SD_RES_VER_MISMATCH;
	} else if (hdr->proto_ver > SD_PROTO_VER) {
		return SD_RES_VER_MISMATCH;
	}
	if (!ops_lookup(hdr->opcode))
		return SD_RES_NO_SUPPORT;
	return SD_RES_SUCCESS;
}

/*
 * Run one request on a worker and fill r->rsp (and r->rdata/r->rlen).
 * Guarantees: the reply echoes the request's proto_ver, opcode and id and
 * carries this node's epoch; an op whose row says ready is refused with
 * ops_need_ready()'s answer without touching anything; an opcode without a
 * row answers SD_RES_NO_SUPPORT; on an error the reply payload is dropped
 * unless the handler set keep_rdata (an explanation, a probe's answer).
 */
void ops_exec(struct sheep *s, struct request *r)
{
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->rdata = NULL;
	r->rlen = 0;
	r->keep_rdata = false;
	const struct sd_op *o = ops_lookup(r->hdr.opcode);
	int ret = !o ? SD_RES_NO_SUPPORT : o->ready ? ops_need_ready(s) : SD_RES_SUCCESS;
	if (ret == SD_RES_SUCCESS)
		ret = o->fn(s, r);
	r->rsp.proto_ver = r->hdr.proto_ver;
	r->rsp.opcode = r->hdr.opcode;
	r->rsp.id = r->hdr.id;
	r->rsp.result = (uint32_t)ret;
	r->rsp.epoch = ops_current_epoch(s);
	if (ret != SD_RES_SUCCESS && !r->keep_rdata) {
		if (r->rdata != r->data)
			free(r->rdata);
		r->rdata = NULL;
		r->rlen = 0;
		sd_debug("op %s id %u: %s", o ? o->name : "?", r->hdr.id,
			 sd_strerror((uint32_t)ret));
	}
}
