/* ops.c - what each request opcode does: client ops, the internal ops dog uses, peer ops. Runs on workers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/store/capacity.h"
#include "sheep/sheep.h"
#include "sheep/server/ops_priv.h"
#include "sheep/server/server.h"
#include "sheep/cluster/cluster.h"
#include "sheep/snap/snap.h"
#include "sheep/store/store.h"

bool ops_is_peer(uint8_t opcode)
{
	return opcode >= SD_OP_PEER_FIRST;
}

static bool op_known(uint8_t op)
{
	switch (op) {
	case SD_OP_CREATE_AND_WRITE_OBJ:
	case SD_OP_READ_OBJ:
	case SD_OP_WRITE_OBJ:
	case SD_OP_REMOVE_OBJ:
	case SD_OP_DISCARD_OBJ:
	case SD_OP_NEW_VDI:
	case SD_OP_LOCK_VDI:
	case SD_OP_RELEASE_VDI:
	case SD_OP_GET_VDI_INFO:
	case SD_OP_READ_VDIS:
	case SD_OP_FLUSH_VDI:
	case SD_OP_DEL_VDI:
	case SD_OP_GET_CLUSTER_DEFAULT:
	case SD_OP_GET_NODE_LIST:
	case SD_OP_MAKE_FS:
	case SD_OP_SHUTDOWN:
	case SD_OP_STAT_SHEEP:
	case SD_OP_STAT_CLUSTER:
	case SD_OP_KILL_NODE:
	case SD_OP_GET_OBJ_LIST:
	case SD_OP_GET_EPOCH:
	case SD_OP_ENABLE_RECOVER:
	case SD_OP_DISABLE_RECOVER:
	case SD_OP_STAT_RECOVERY: /* served by sheep/rebuild/ops.c */
	case SD_OP_GET_RECOVERY:
	case SD_OP_SET_RECOVERY:
	case SD_OP_FORCE_RECOVER:
	case SD_OP_EXIST:
	case SD_OP_PEER_READ:
	case SD_OP_PEER_WRITE:
	case SD_OP_PEER_REMOVE:
	case SD_OP_PEER_STAT:
	case SD_OP_PEER_LIST:
	case SD_OP_PEER_GW_WRITE:
	case SD_OP_PEER_COMMIT:
	case SD_OP_PEER_GEN:
	case SD_OP_PEER_COPY:
		return true;
	}
	return false;
}

int ops_check_header(const struct sd_req *hdr)
{
	if (sd_op_is_internal(hdr->opcode)) {
		if (hdr->proto_ver != SD_SHEEP_PROTO_VER)
			return SD_RES_VER_MISMATCH;
	} else if (hdr->proto_ver > SD_PROTO_VER) {
		return SD_RES_VER_MISMATCH;
	}
	if (!op_known(hdr->opcode))
		return SD_RES_NO_SUPPORT;
	return SD_RES_SUCCESS;
}

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

static int do_read_obj(struct sheep *s, struct request *r)
{
	uint32_t len = r->hdr.data_length;
	void *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	if (is_vdi_obj(r->hdr.obj.oid))
		vdi_snap_sweep(s);
	int ret = gateway_read_obj(s, r->hdr.obj.oid, buf, len, r->hdr.obj.offset);
	if (ret == SD_RES_SUCCESS)
		r->rlen = len;
	return ret;
}

static int do_write_obj(struct sheep *s, struct request *r, bool create)
{
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE))
		return SD_RES_INVALID_PARMS;
	uint64_t oid = r->hdr.obj.oid;
	uint32_t off = r->hdr.obj.offset;
	uint32_t len = r->hdr.data_length;
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
	if (!is_data_obj(oid))
		return SD_RES_INVALID_PARMS;
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
	int ret = ops_need_ready(s);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->state_lock);
	r->rsp.cluster.nr_copies = s->def_copies;
	r->rsp.cluster.copy_policy = s->def_policy;
	r->rsp.cluster.block_size_shift = s->def_shift;
	pthread_mutex_unlock(&s->state_lock);
	return SD_RES_SUCCESS;
}

/* ---- internal ops ---- */

static int do_node_list(struct sheep *s, struct request *r)
{
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return SD_RES_WAIT_FOR_JOIN;
	uint32_t len = (uint32_t)(v->nr_nodes * sizeof(struct sd_node));
	int ret = SD_RES_SUCCESS;
	if (len > r->hdr.data_length) {
		ret = SD_RES_INVALID_PARMS; /* reply buffer too small */
	} else {
		void *buf = ops_reply_buf(r, len);
		if (!buf) {
			ret = SD_RES_NO_MEM;
		} else {
			memcpy(buf, v->nodes, len);
			sheep_capacity_show_vnodes(v, buf, v->nr_nodes);
			r->rlen = len;
			r->rsp.node.nr_nodes = (uint32_t)v->nr_nodes;
			uint32_t me = 0;
			for (size_t i = 0; i < v->nr_nodes; i++)
				if (sd_node_eq(&v->nodes[i], &s->self))
					me = (uint32_t)i;
			sd_rsp_local_idx(&r->rsp) = me;
		}
	}
	sheep_view_put(v);
	return ret;
}

static int do_make_fs(struct sheep *s, struct request *r)
{
	struct cmsg_format f;
	memset(&f, 0, sizeof(f));
	f.h.type = CMSG_FORMAT;
	f.ctime = r->hdr.cluster.ctime ? r->hdr.cluster.ctime : sd_wall_seconds();
	f.copies = r->hdr.cluster.copies ? r->hdr.cluster.copies : SD_DEFAULT_COPIES;
	f.policy = r->hdr.cluster.copies ? r->hdr.cluster.copy_policy : 0;
	f.shift = r->hdr.cluster.block_size_shift ? r->hdr.cluster.block_size_shift
						   : SD_DEFAULT_BLOCK_SIZE_SHIFT;
	f.vnodes = r->hdr.cluster.nr_vnodes;
	struct ec_policy pol;
	if (ec_policy_from_wire(f.policy, f.copies, &pol) || f.shift < SD_MIN_BLOCK_SIZE_SHIFT ||
	    f.shift > SD_MAX_BLOCK_SIZE_SHIFT || f.vnodes > 65535)
		return SD_RES_INVALID_PARMS;
	if (ec_policy_is_ec(&pol) && ((1u << f.shift) % pol.d))
		return SD_RES_INVALID_PARMS;
	pthread_mutex_lock(&s->state_lock);
	bool synced = s->synced;
	pthread_mutex_unlock(&s->state_lock);
	if (!synced)
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

static int do_stat_cluster(struct sheep *s, struct request *r)
{
	uint32_t len = SD_MIN(r->hdr.data_length, 1u << 20);
	if (len < sizeof(struct sd_cluster_info))
		return SD_RES_INVALID_PARMS;
	void *buf = ops_reply_buf(r, len);
	if (!buf)
		return SD_RES_NO_MEM;
	int n = group_cluster_info(s, buf, len);
	if (n < 0)
		return SD_RES_INVALID_PARMS;
	r->rlen = (uint32_t)n;
	const struct sd_cluster_info *ci = buf;
	pthread_mutex_lock(&s->state_lock);
	bool synced = s->synced;
	pthread_mutex_unlock(&s->state_lock);
	if (!synced)
		return SD_RES_WAIT_FOR_JOIN;
	if (ci->status == 2)
		return SD_RES_SHUTDOWN;
	return ci->ctime ? SD_RES_SUCCESS : SD_RES_WAIT_FOR_FORMAT;
}

static int do_get_epoch(struct sheep *s, struct request *r)
{
	uint32_t want = r->hdr.obj.tgt_epoch;
	int ret = SD_RES_NO_TAG;
	pthread_mutex_lock(&s->state_lock);
	for (size_t i = 0; i < s->nr_epochs; i++) {
		if (s->epochs[i].epoch != want)
			continue;
		uint32_t len = s->epochs[i].nr_nodes * (uint32_t)sizeof(struct sd_node);
		if (len > r->hdr.data_length) {
			ret = SD_RES_INVALID_PARMS;
			break;
		}
		void *buf = ops_reply_buf(r, len);
		if (!buf) {
			ret = SD_RES_NO_MEM;
			break;
		}
		memcpy(buf, s->epochs[i].nodes, len);
		r->rlen = len;
		r->rsp.node.nr_nodes = s->epochs[i].nr_nodes;
		ret = SD_RES_SUCCESS;
		break;
	}
	pthread_mutex_unlock(&s->state_lock);
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

static int do_recover_toggle(struct sheep *s, struct request *r, bool on)
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

/*
 * Run one request on a worker and fill r->rsp (and r->rdata/r->rlen).
 * Guarantees: the reply echoes the request's proto_ver, opcode and id;
 * peer opcodes are served by peer_serve() with this node's epoch in the
 * reply; opcodes that need a formatted, ready cluster check it first
 * (need_ready) and answer its error without touching anything; an opcode
 * not listed answers SD_RES_NO_SUPPORT.
 */
void ops_exec(struct sheep *s, struct request *r)
{
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->rsp.proto_ver = r->hdr.proto_ver;
	r->rsp.opcode = r->hdr.opcode;
	r->rsp.id = r->hdr.id;
	r->rdata = NULL;
	r->rlen = 0;
	r->keep_text = false;
	uint8_t op = r->hdr.opcode;
	int ret;
	if (ops_is_peer(op) && op_known(op) && op != SD_OP_PEER_GW_WRITE) {
		bool sends = op == SD_OP_PEER_WRITE || op == SD_OP_PEER_COMMIT || op == SD_OP_PEER_COPY;
		uint32_t cap = sends ? 0 : r->hdr.data_length;
		void *rbuf = cap ? malloc(cap) : NULL;
		if (cap && !rbuf) {
			r->rsp.result = SD_RES_NO_MEM;
			return;
		}
		uint32_t rlen = 0;
		peer_serve(s, &r->hdr, r->data, &r->rsp, rbuf, &rlen);
		r->rdata = rbuf;
		r->rlen = rlen;
		r->rsp.proto_ver = r->hdr.proto_ver;
		r->rsp.opcode = op;
		r->rsp.id = r->hdr.id;
		r->rsp.epoch = ops_current_epoch(s);
		return;
	}
	switch (op) {
	case SD_OP_PEER_GW_WRITE: {
		uint32_t e = ops_current_epoch(s);
		if (r->hdr.epoch != e)
			ret = r->hdr.epoch < e ? SD_RES_OLD_NODE_VER : SD_RES_NEW_NODE_VER;
		else if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) && r->hdr.data_length)
			ret = SD_RES_INVALID_PARMS;
		else
			ret = gateway_write_local(s, r->hdr.obj.oid, r->data, r->hdr.data_length,
						  r->hdr.obj.offset, r->hdr.obj.copy_policy == 1);
		break;
	}
	case SD_OP_CREATE_AND_WRITE_OBJ:
	case SD_OP_WRITE_OBJ:
		ret = ops_need_ready(s);
		if (!ret)
			ret = do_write_obj(s, r, op == SD_OP_CREATE_AND_WRITE_OBJ);
		break;
	case SD_OP_READ_OBJ:
		ret = ops_need_ready(s);
		if (!ret)
			ret = do_read_obj(s, r);
		if (ret == SD_RES_SUCCESS)
			r->rsp.obj.offset = r->hdr.obj.offset;
		break;
	case SD_OP_REMOVE_OBJ:
		ret = ops_need_ready(s);
		if (!ret)
			ret = gateway_remove_obj(s, r->hdr.obj.oid);
		break;
	case SD_OP_DISCARD_OBJ:
		ret = ops_need_ready(s);
		if (!ret)
			ret = do_discard_obj(s, r);
		break;
	case SD_OP_NEW_VDI:
		ret = ops_new_vdi(s, r);
		break;
	case SD_OP_LOCK_VDI:
		ret = ops_lock_vdi(s, r);
		break;
	case SD_OP_RELEASE_VDI:
		ret = ops_release_vdi(s, r);
		break;
	case SD_OP_GET_VDI_INFO:
		ret = ops_get_vdi_info(s, r);
		break;
	case SD_OP_READ_VDIS:
		ret = ops_read_vdis(s, r);
		break;
	case SD_OP_FLUSH_VDI:
		ret = SD_RES_INVALID_PARMS;
		break;
	case SD_OP_DEL_VDI:
		ret = ops_del_vdi(s, r);
		break;
	case SD_OP_GET_CLUSTER_DEFAULT:
		ret = do_cluster_default(s, r);
		break;
	case SD_OP_GET_NODE_LIST:
		ret = do_node_list(s, r);
		break;
	case SD_OP_MAKE_FS:
		ret = do_make_fs(s, r);
		break;
	case SD_OP_SHUTDOWN:
		ret = do_shutdown(s, r);
		break;
	case SD_OP_STAT_SHEEP:
		ret = do_stat_sheep(s, r);
		break;
	case SD_OP_STAT_CLUSTER:
		ret = do_stat_cluster(s, r);
		break;
	case SD_OP_KILL_NODE:
		sd_notice("killed by request");
		r->close_after = true;
		ret = SD_RES_SUCCESS;
		break;
	case SD_OP_GET_EPOCH:
		ret = do_get_epoch(s, r);
		break;
	case SD_OP_GET_OBJ_LIST:
		ret = do_get_obj_list(s, r);
		break;
	case SD_OP_ENABLE_RECOVER:
	case SD_OP_DISABLE_RECOVER:
		ret = do_recover_toggle(s, r, op == SD_OP_ENABLE_RECOVER);
		break;
	case SD_OP_STAT_RECOVERY: /* served by sheep/rebuild/ops.c */
	case SD_OP_GET_RECOVERY:
	case SD_OP_SET_RECOVERY:
	case SD_OP_FORCE_RECOVER:
		ret = sheep_recovery_op(s, r);
		break;
	case SD_OP_EXIST:
		ret = ops_need_ready(s);
		if (!ret)
			ret = do_exist(s, r);
		break;
	default:
		ret = SD_RES_NO_SUPPORT;
	}
	r->rsp.result = (uint32_t)ret;
	r->rsp.epoch = ops_current_epoch(s);
	if (ret != SD_RES_SUCCESS && !r->keep_text) {
		if (r->rdata != r->data)
			free(r->rdata);
		r->rdata = NULL;
		r->rlen = 0;
		sd_debug("op 0x%02x id %u: %s", op, r->hdr.id, sd_strerror((uint32_t)ret));
	}
}
