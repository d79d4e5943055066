/* ops_alter.c - vdi alter-copy's two ops: start (or resume) a VDI's policy change, and report how
 * far it is. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ec/ec.h"
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/sd_wire.h"
#include "sheep/cluster/cluster.h"
#include "sheep/gateway/gateway.h"
#include "sheep/server/ops_priv.h"
#include "sheep/server/server.h"
#include "sheep/sheep.h"

static int refuse(struct request *r, int res, const char *msg)
{
	ops_reply_text(r, msg);
	return res;
}

/*
 * Checked here before the table changes, so a refusal changes nothing:
 * the VDI exists and is not a snapshot, the target is a valid policy for
 * its object size and differs from the current one, and the cluster has
 * a zone for each copy or fragment (a conversion to a policy the cluster
 * cannot place would leave the data less redundant than it was), and no
 * VM state is saved in it (vmstate objects are not converted, and would
 * be read with the new policy afterwards).
 */
int ops_alter_vdi_copy(struct sheep *s, struct request *r)
{
	uint32_t vid = r->hdr.vdi_state.new_vid & (SD_NR_VDIS - 1);
	uint8_t copies = r->hdr.vdi_state.copies, policy = r->hdr.vdi_state.copy_policy;
	char msg[256], want[32], have[32];
	struct vdi_entry e;
	if (group_vdi_find(s, vid, &e) || e.deleted)
		return SD_RES_NO_VDI;
	if (e.flags & VDI_F_SNAPSHOT)
		return refuse(r, SD_RES_READONLY,
			      "a snapshot is read-only: its policy never changes");
	if (e.flags & VDI_F_PENDING)
		return SD_RES_NO_VDI;
	struct ec_policy pol, cur;
	if (!copies || ec_policy_from_wire(policy, copies, &pol))
		return refuse(r, SD_RES_INVALID_PARMS, "invalid policy");
	ec_policy_format(&pol, want, sizeof(want));
	if (ec_policy_from_wire(e.copy_policy, e.nr_copies, &cur) == 0)
		ec_policy_format(&cur, have, sizeof(have));
	else
		snprintf(have, sizeof(have), "?");
	if (ec_policy_is_ec(&pol) && ((1u << e.shift) % pol.d)) {
		snprintf(msg, sizeof(msg), "policy %s does not divide the %u-byte objects", want,
			 1u << e.shift);
		return refuse(r, SD_RES_INVALID_PARMS, msg);
	}
	bool conv = e.flags & VDI_F_CONVERTING;
	if (!conv && e.nr_copies == copies && e.copy_policy == policy) {
		snprintf(msg, sizeof(msg), "the VDI's policy is already %s", want);
		return refuse(r, SD_RES_INVALID_PARMS, msg);
	}
	if (conv && (e.alt_copies != copies || e.alt_policy != policy)) {
		struct ec_policy t;
		char tb[32] = "?";
		if (ec_policy_from_wire(e.alt_policy, e.alt_copies, &t) == 0)
			ec_policy_format(&t, tb, sizeof(tb));
		snprintf(msg, sizeof(msg),
			 "a conversion from %s to %s is in progress: let it finish", have, tb);
		return refuse(r, SD_RES_VDI_LOCKED, msg);
	}
	uint64_t vmstate = 0;
	int ret = gateway_read_obj(s, vid_to_vdi_oid(vid), &vmstate, sizeof(vmstate),
				   (uint32_t)offsetof(struct sd_inode, vm_state_size));
	if (ret != SD_RES_SUCCESS)
		return ret;
	if (vmstate)
		return refuse(r, SD_RES_INVALID_PARMS,
			      "the VDI holds saved VM state (savevm), which is not converted: "
			      "delete it first");
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return SD_RES_WAIT_FOR_JOIN;
	uint32_t zones = v->nr_zones;
	sheep_view_put(v);
	unsigned width = ec_policy_width(&pol);
	if (zones < width) {
		snprintf(msg, sizeof(msg),
			 "policy %s places %u %s in distinct zones, cluster has %u: add zones or "
			 "choose a narrower policy",
			 want, width, ec_policy_is_ec(&pol) ? "fragments" : "copies", zones);
		return refuse(r, SD_RES_INVALID_PARMS, msg);
	}
	struct cmsg_vdi m;
	memset(&m, 0, sizeof(m));
	m.h.type = CMSG_VDI_ALTER;
	m.vid = vid;
	m.copies = copies;
	m.policy = ec_policy_is_ec(&pol) ? policy : 0;
	m.snapshot = CMSG_ALTER_START;
	ret = group_cluster_op(s, &m, sizeof(m), NULL);
	if (ret == SD_RES_SUCCESS)
		sd_info("VDI %s (%x): policy %s -> %s requested", e.name, vid, have, want);
	return ret;
}

int ops_alter_status(struct sheep *s, struct request *r)
{
	struct vdi_entry e;
	uint32_t vid = r->hdr.vdi.base_vdi_id & (SD_NR_VDIS - 1);
	if (group_vdi_find(s, vid, &e) || e.deleted)
		return SD_RES_NO_VDI;
	if (r->hdr.data_length < sizeof(struct sd_alter_status))
		return SD_RES_INVALID_PARMS;
	struct sd_alter_status *st = ops_reply_buf(r, sizeof(*st));
	if (!st)
		return SD_RES_NO_MEM;
	st->vid = vid;
	st->converting = (e.flags & VDI_F_CONVERTING) ? 1 : 0;
	st->copies = e.nr_copies;
	st->copy_policy = e.copy_policy;
	if (st->converting) {
		st->target_copies = e.alt_copies;
		st->target_policy = e.alt_policy;
	}
	st->mark = e.conv_mark;
	st->nr_objs = (uint32_t)((e.size + (1ull << e.shift) - 1) >> e.shift);
	r->rlen = sizeof(*st);
	return SD_RES_SUCCESS;
}
