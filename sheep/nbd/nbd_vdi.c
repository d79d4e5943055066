/* nbd_vdi.c - the NBD export's backend over VDIs: export names, write locks, I/O through vdi_io; nbd_start/nbd_stop. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/metrics/metrics.h"
#include "sheep/nbd/nbd.h"
#include "sheep/nbd/nbd_proto.h"
#include "sheep/nbd/vdi_io.h"
#include "sheep/sheep.h"

#define NBD_RO_SUFFIX ":ro"
#define NBD_HANDOVER_SUFFIX ":handover"

struct nbd_export {
	struct vdi_io *v;
	struct sheep_metrics *metrics; /* the sheep's, for latency and bytes */
	unsigned policy;	       /* the VDI's, as a metrics index */
};

/*
 * "NAME" -> working VDI, writable; "NAME:ro" -> working VDI, read-only;
 * "NAME@DIGITS" -> snapshot by id; "NAME@TAG" -> snapshot by tag.
 */
static int parse_name(const char *export, char *name, size_t nlen, uint32_t *snapid, char *tag,
		      size_t tlen, bool *readonly, bool *handover)
{
	size_t n = strlen(export);
	const char *at;

	*snapid = 0;
	tag[0] = '\0';
	*readonly = false;
	*handover = false;
	if (n > strlen(NBD_RO_SUFFIX) && !strcmp(export + n - strlen(NBD_RO_SUFFIX), NBD_RO_SUFFIX)) {
		*readonly = true;
		n -= strlen(NBD_RO_SUFFIX);
	} else if (n > strlen(NBD_HANDOVER_SUFFIX) &&
		   !strcmp(export + n - strlen(NBD_HANDOVER_SUFFIX), NBD_HANDOVER_SUFFIX)) {
		*handover = true;
		n -= strlen(NBD_HANDOVER_SUFFIX);
	}
	at = memrchr(export, '@', n);
	size_t base = at ? (size_t)(at - export) : n;
	if (base == 0 || base >= nlen)
		return -EINVAL;
	memcpy(name, export, base);
	name[base] = '\0';
	if (!at)
		return 0;

	const char *sel = at + 1;
	size_t slen = n - base - 1;
	if (slen == 0 || slen >= tlen)
		return -EINVAL;
	if (*handover)
		return -EINVAL; /* snapshots are read-only */
	*readonly = true;
	bool digits = true;
	for (size_t i = 0; i < slen; i++)
		if (sel[i] < '0' || sel[i] > '9')
			digits = false;
	if (digits && slen <= 9) {
		*snapid = (uint32_t)strtoul(sel, NULL, 10);
		if (*snapid == 0)
			return -EINVAL;
	} else {
		memcpy(tag, sel, slen);
		tag[slen] = '\0';
	}
	return 0;
}

static int vdi_open(void *arg, const char *export, bool probe, uint64_t owner,
		    struct nbd_export **out, struct nbd_export_info *info, char *msg, size_t msglen)
{
	struct sheep *s = arg;
	char name[SD_MAX_VDI_LEN], tag[SD_MAX_VDI_TAG_LEN];
	uint32_t snapid;
	bool readonly, handover;
	struct vdi_io *v;

	*out = NULL;
	if (parse_name(export, name, sizeof(name), &snapid, tag, sizeof(tag), &readonly,
		       &handover) < 0) {
		snprintf(msg, msglen,
			 "bad export name '%s': want NAME, NAME:ro, NAME:handover, NAME@SNAPID or "
			 "NAME@TAG", export);
		return -EINVAL;
	}
	unsigned flags = (readonly || probe) ? 0 : VDI_IO_WRITE;
	if (handover && !probe)
		flags |= VDI_IO_HANDOVER;
	int res = vdi_io_open(s, name, snapid, tag, flags, owner, &v);
	if (res != SD_RES_SUCCESS) {
		if (res == SD_RES_VDI_LOCKED)
			snprintf(msg, msglen,
				 "VDI '%s' is locked: another client has it attached for writing; "
				 "attach '%s" NBD_RO_SUFFIX "' for read-only access, or '%s"
				 NBD_HANDOVER_SUFFIX "' as a live migration's destination",
				 name, name, name);
		else if (res == SD_RES_NO_TAG || (res == SD_RES_NO_VDI && (snapid || tag[0])))
			snprintf(msg, msglen, "VDI '%s' has no snapshot '%s'", name,
				 strchr(export, '@') + 1);
		else if (res == SD_RES_NO_VDI)
			snprintf(msg, msglen, "no VDI named '%s'", name);
		else
			snprintf(msg, msglen, "cannot open VDI '%s': %s", name, sd_strerror(res));
		return sd_res_to_errno(res);
	}

	struct nbd_export *e = malloc(sizeof(*e));
	if (!e) {
		vdi_io_close(v);
		return -ENOMEM;
	}
	e->v = v;
	e->metrics = s->metrics;
	struct vdi_io_info vi;
	vdi_io_get_info(v, &vi);
	e->policy = sheep_metrics_policy(vi.copy_policy, vi.nr_copies);
	info->size = vi.size;
	info->readonly = readonly || vi.snapshot;
	*out = e;
	return 0;
}

static void vdi_close(struct nbd_export *e)
{
	if (!e)
		return;
	vdi_io_close(e->v);
	free(e);
}

static int vdi_read(struct nbd_export *e, void *buf, uint32_t len, uint64_t off)
{
	uint64_t t0 = sd_now_ns();
	int ret = sd_res_to_errno(vdi_io_read(e->v, buf, len, off));
	sheep_metrics_nbd(e->metrics, SM_READ, e->policy, len, ret, sd_now_ns() - t0);
	return ret;
}

static int vdi_write(struct nbd_export *e, const void *buf, uint32_t len, uint64_t off)
{
	uint64_t t0 = sd_now_ns();
	int ret = sd_res_to_errno(vdi_io_write(e->v, buf, len, off));
	sheep_metrics_nbd(e->metrics, SM_WRITE, e->policy, len, ret, sd_now_ns() - t0);
	return ret;
}

static int vdi_zero(struct nbd_export *e, uint32_t len, uint64_t off, bool may_free)
{
	return sd_res_to_errno(vdi_io_zero(e->v, len, off, may_free));
}

static int vdi_trim(struct nbd_export *e, uint32_t len, uint64_t off)
{
	return sd_res_to_errno(vdi_io_trim(e->v, len, off));
}

/* base:allocation: unallocated objects are holes that read as zeros. */
static int vdi_block_status(struct nbd_export *e, uint32_t len, uint64_t off,
			    struct nbd_extent *ext, uint32_t max, uint32_t *n)
{
	struct vdi_io_extent *ve = calloc(max, sizeof(*ve));
	if (!ve)
		return -ENOMEM;
	int ret = sd_res_to_errno(vdi_io_map(e->v, len, off, ve, max, n));
	for (uint32_t i = 0; ret == 0 && i < *n; i++)
		ext[i] = (struct nbd_extent){
			.length = ve[i].length,
			.flags = ve[i].allocated ? 0 : (NBD_STATE_HOLE | NBD_STATE_ZERO),
		};
	free(ve);
	return ret;
}

/* Every VDI: working ones by name, snapshots as NAME@SNAPID. */
static int vdi_list(void *arg, int (*cb)(void *cbarg, const char *name), void *cbarg)
{
	struct sheep *s = arg;
	size_t blen = SD_NR_VDIS / 8;
	uint8_t *bitmap = malloc(blen);
	uint8_t hdr[SD_INODE_HEADER_SIZE];
	int ret;

	if (!bitmap)
		return -ENOMEM;
	ret = sd_res_to_errno(gateway_read_vdis(s, bitmap, blen));
	for (uint32_t vid = 1; ret == 0 && vid < SD_NR_VDIS; vid++) {
		if (!(bitmap[vid / 8] & (1u << (vid % 8))))
			continue;
		if (gateway_read_obj(s, vid_to_vdi_oid(vid), hdr, sizeof(hdr), 0) != SD_RES_SUCCESS)
			continue; /* deleted meanwhile, or unreadable: not listable */
		char name[SD_MAX_VDI_LEN + 16];
		uint64_t snap_ctime;
		uint32_t snap_id;
		memcpy(&snap_ctime, hdr + offsetof(struct sd_inode, snap_ctime), 8);
		memcpy(&snap_id, hdr + offsetof(struct sd_inode, snap_id), 4);
		char vname[SD_MAX_VDI_LEN];
		memcpy(vname, hdr, sizeof(vname));
		vname[sizeof(vname) - 1] = '\0';
		if (!vname[0])
			continue; /* a deleted VDI keeps its bit with an empty name */
		if (snap_ctime)
			snprintf(name, sizeof(name), "%s@%" PRIu32, vname, snap_id);
		else
			snprintf(name, sizeof(name), "%s", vname);
		ret = cb(cbarg, name);
	}
	free(bitmap);
	return ret;
}

static const struct nbd_backend nbd_vdi_backend = {
	.open = vdi_open,
	.close = vdi_close,
	.read = vdi_read,
	.write = vdi_write,
	.zero = vdi_zero,
	.trim = vdi_trim,
	.block_status = vdi_block_status,
	.list = vdi_list,
};

int nbd_start(struct sheep *s, const char *bind_addr, int port)
{
	struct nbd_server **slot = gateway_nbd_slot(s);
	if (*slot)
		return -EALREADY;
	return nbd_server_start(&nbd_vdi_backend, s, bind_addr, port, slot); /* caller logs */
}

void nbd_stop(struct sheep *s)
{
	struct nbd_server **slot = gateway_nbd_slot(s);
	nbd_server_stop(*slot);
	*slot = NULL;
}
