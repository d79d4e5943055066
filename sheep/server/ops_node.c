/* ops_node.c - SET_VNODES / GET_VNODES (0xcc / 0xcd, Sheepdog 1.0's): the vnodes of the sheep
 * asked, changed through a cluster message so every member places by them; MD_INFO (0xb1): its data
 * directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sd_wire.h"

#include "lib/log.h"
#include "lib/sd_proto.h"
#include "sheep/cluster/cluster.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/store/capacity.h"
#include "sheep/store/store.h"
#include "sheep/server/ops_priv.h"
#include "sheep/server/server.h"
#include "sheep/sheep.h"

/* SET_VNODES: payload int32 vnodes, 1..65535, for this sheep. A gateway
 * holds nothing (INVALID_PARMS); before the format WAIT_FOR_FORMAT. */
int ops_set_vnodes(struct sheep *s, struct request *r)
{
	int32_t v;
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || r->hdr.data_length != sizeof(v) || !r->data)
		return SD_RES_INVALID_PARMS;
	memcpy(&v, r->data, sizeof(v));
	if (v < 1 || v > UINT16_MAX || s->opt.gateway)
		return SD_RES_INVALID_PARMS;
	struct cmsg_node_vnodes m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_NODE_VNODES;
	group_self_node(s, &m.node);
	m.vnodes = (uint32_t)v;
	return group_cluster_op(s, &m, sizeof(m), NULL);
}

/* MD_INFO (0xb1): this sheep's data directory as Sheepdog's one-disk
 * answer (sd_wire.h). A gateway has none (nr 0). */
int ops_md_info(struct sheep *s, struct request *r)
{
	if (r->hdr.data_length < sizeof(struct sd_md_info))
		return SD_RES_INVALID_PARMS;
	struct sd_md_info *mi = ops_reply_buf(r, sizeof(*mi));
	if (!mi)
		return SD_RES_NO_MEM;
	struct store_md_disk *d = s->store ? calloc(SD_MD_MAX_DISK, sizeof(*d)) : NULL;
	int n = d ? store_md_info(s->store, d, SD_MD_MAX_DISK) : 0;
	if (n == 1 && !s->opt.nr_md_disks) {
		/* One directory: its capacity as node info shows it. */
		uint64_t size = 0, free_bytes = 0;
		if (sheep_capacity(s, &size, &free_bytes)) {
			free(d);
			return SD_RES_EIO;
		}
		d[0].avail = free_bytes;
		d[0].used = size > free_bytes ? size - free_bytes : 0;
	}
	for (int i = 0; i < n; i++) {
		/* Sheepdog's: free and the bytes of the store's objects there. */
		mi->disk[i].idx = i;
		mi->disk[i].free = d[i].avail;
		mi->disk[i].used = d[i].used;
		snprintf(mi->disk[i].path, sizeof(mi->disk[i].path), "%s", d[i].path);
	}
	mi->nr = n;
	free(d);
	r->rlen = sizeof(*mi);
	return SD_RES_SUCCESS;
}

/* MD_PLUG / MD_UNPLUG (0xb2 / 0xb3, Sheepdog's): payload "DISK[,DISK...]".
 * The disks change (store_md.c: checked first, nothing changes on an
 * error) and recovery replans, as Sheepdog's kick_recover(): fragments
 * that could not be moved off an unplugged disk come from peers. */
int ops_md_plug(struct sheep *s, struct request *r)
{
	bool plug = r->hdr.opcode == SD_OP_MD_PLUG;
	if (!s->store)
		return SD_RES_NO_SUPPORT;
	if (!(r->hdr.flags & SD_FLAG_CMD_WRITE) || !r->data || r->hdr.data_length < 2 ||
	    r->hdr.data_length > 64 * 4096)
		return SD_RES_INVALID_PARMS;
	char *list = strndup(r->data, r->hdr.data_length);
	if (!list)
		return SD_RES_NO_MEM;
	const char *paths[64];
	int n = 0, ret = 0;
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n == 64) {
			ret = -E2BIG;
			break;
		}
		paths[n++] = t;
	}
	uint64_t moved = 0;
	if (!ret)
		ret = plug ? store_md_plug(s->store, paths, n, &moved)
			   : store_md_unplug(s->store, paths, n, &moved);
	free(list);
	if (ret) {
		sd_warn("md %s: refused: %s", plug ? "plug" : "unplug", strerror(-ret));
		return ret == -ENOMEM ? SD_RES_NO_MEM : SD_RES_INVALID_PARMS;
	}
	sheep_recovery_kick(s);
	return SD_RES_SUCCESS;
}

/* OBJ_TRACK (sd_wire.h): oid's holders at epoch tgt_epoch. */
int ops_obj_track(struct sheep *s, struct request *r)
{
	int width = r->hdr.obj.copies;
	struct sd_node n[32];
	if (width < 1 || width > 32 ||
	    r->hdr.data_length < (uint32_t)width * sizeof(struct sd_wire_node))
		return SD_RES_INVALID_PARMS;
	int ret = group_epoch_holders(s, r->hdr.obj.tgt_epoch, r->hdr.obj.oid, width, n);
	if (ret != SD_RES_SUCCESS)
		return ret;
	struct sd_wire_node *out = ops_reply_buf(r, (uint32_t)width * sizeof(*out));
	if (!out)
		return SD_RES_NO_MEM;
	for (int i = 0; i < width; i++)
		if (n[i].port)
			sd_node_to_wire(&n[i], &out[i]);
	r->rlen = (uint32_t)width * sizeof(*out);
	r->rsp.obj.copies = (uint8_t)width;
	return SD_RES_SUCCESS;
}

/* GET_VNODES: reply int32, the vnodes this sheep has in the ring now (its
 * set or fixed count, cluster format -V's, or the one its capacity gives). */
int ops_get_vnodes(struct sheep *s, struct request *r)
{
	int32_t v = 0;
	if (r->hdr.data_length < sizeof(v))
		return SD_RES_INVALID_PARMS;
	struct sheep_view *view = sheep_view_get(s);
	if (!view)
		return SD_RES_WAIT_FOR_JOIN;
	uint32_t fmt_vnodes = group_fmt_vnodes(s);
	for (size_t i = 0; i < view->nr_nodes; i++)
		if (sd_node_eq(&view->nodes[i], &s->self)) {
			struct sd_node n = view->nodes[i];
			sheep_capacity_show_vnodes(view, &n, 1);
			v = n.fixed_vnodes == SD_NODE_VNODES_SET ? n.nr_vnodes
			    : fmt_vnodes && !n.gateway		 ? (int32_t)fmt_vnodes
								 : n.nr_vnodes;
			if (n.gateway)
				v = 0;
		}
	sheep_view_put(view);
	void *buf = ops_reply_buf(r, sizeof(v));
	if (!buf)
		return SD_RES_NO_MEM;
	memcpy(buf, &v, sizeof(v));
	r->rlen = sizeof(v);
	return SD_RES_SUCCESS;
}
