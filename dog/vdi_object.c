/* vdi_object.c - dog vdi object location: which sheep hold an object (the inode, or data object
 * IDX) of a VDI, and whether they have it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/inode.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_wire.h"
#include "lib/util.h"

/* dog vdi object location [-s SNAP] VDI [IDX]: without IDX, the inode. */
/*
 * dog vdi track [-i IDX] [-s SNAP] NAME: where the inode (or data object
 * IDX) was placed at each epoch of the log, as Sheepdog's: "Tracking ..."
 * then per epoch "obj OID locations at epoch E, copies = N", a rule and
 * one HOST:PORT per copy or fragment. Sheepdog's dog computes placement
 * itself; here the sheep rebuilds each epoch's ring (OBJ_TRACK 0xd1).
 */
int dog_vdi_track(struct dog *d)
{
	const char *name = d->argv[0], *what = "vdi track";
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t vid = 0;
	struct sd_inode_hdr h;
	int ret = dog_vdi_lookup_snap(fd, name, d->snap, &vid);
	if (ret == SD_RES_SUCCESS)
		ret = dog_read_obj(fd, vid_to_vdi_oid(vid), &h, sizeof(h), 0);
	uint64_t oid = vid_to_vdi_oid(vid);
	bool data = d->obj_index >= 0;
	if (ret == SD_RES_SUCCESS && data) {
		uint32_t nr = dog_vdi_nr_objs((const struct sd_inode *)(const void *)&h);
		if ((uint64_t)d->obj_index >= nr) {
			close(fd);
			dog_err("%s: index %lld is past the end of %s (%u objects)", what,
				(long long)d->obj_index, name, nr);
			return DOG_EXIT_USAGE;
		}
		uint32_t owner = 0;
		ret = dog_read_obj(fd, oid, &owner, sizeof(owner),
				   sd_inode_vid_offset((uint32_t)d->obj_index));
		if (ret == SD_RES_SUCCESS && !owner) {
			close(fd);
			printf("The inode object 0x%" PRIx32 " idx %lld is not allocated\n", vid,
			       (long long)d->obj_index);
			return DOG_EXIT_SUCCESS;
		}
		oid = vid_to_data_oid(owner, (uint32_t)d->obj_index);
	}
	struct sd_cluster_info ci;
	if (ret == SD_RES_SUCCESS)
		ret = dog_cluster_info(d, &ci);
	if (ret != SD_RES_SUCCESS) {
		close(fd);
		return ret < 0 ? dog_exit_of_errno(ret)
			       : dog_fail_result(what, (uint32_t)ret, name);
	}
	unsigned width = h.nr_copies ? h.nr_copies : 1;
	if (width > 32)
		width = 32;
	if (data)
		printf("Tracking the object 0x%" PRIx64 " (the inode vid 0x%" PRIx32 " idx %lld) "
		       "with %u nodes\n",
		       oid, vid, (long long)d->obj_index, width);
	else
		printf("Tracking the inode object 0x%" PRIx64 " with %u nodes\n", oid, width);
	for (uint32_t e = 1; e <= ci.epoch; e++) {
		struct sd_wire_node w[32];
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_OBJ_TRACK);
		req.obj.oid = oid;
		req.obj.tgt_epoch = e;
		req.obj.copies = (uint8_t)width;
		req.data_length = (uint32_t)(width * sizeof(w[0]));
		ret = sd_exec(fd, &req, NULL, &rsp, w, width * sizeof(w[0]));
		if (ret < 0) {
			close(fd);
			return dog_exit_of_errno(ret);
		}
		if (rsp.result == SD_RES_NO_TAG)
			continue; /* not in this sheep's log (it joined later) */
		if (rsp.result != SD_RES_SUCCESS) {
			close(fd);
			return dog_fail_result(what, rsp.result, name);
		}
		printf("\nobj %" PRIx64 " locations at epoch %u, copies = %u\n", oid, e, width);
		printf("---------------------------------------------------\n");
		for (unsigned i = 0; i < width; i++) {
			struct sd_node n;
			sd_node_from_wire(&w[i], &n);
			if (n.port)
				printf("%s:%u\n", n.addr, n.port);
			else
				printf("(none: fewer zones than copies)\n");
		}
	}
	close(fd);
	return DOG_EXIT_SUCCESS;
}

int dog_vdi_object_location(struct dog *d)
{
	if (strcmp(d->argv[0], "location")) {
		dog_err("vdi object: unknown subcommand '%s' (want location)", d->argv[0]);
		return DOG_EXIT_USAGE;
	}
	if (d->argc < 2) {
		dog_err("vdi object location: give the VDI name (and an object index)");
		return DOG_EXIT_USAGE;
	}
	const char *name = d->argv[1];
	bool data = d->argc > 2;
	uint64_t idx = 0;
	if (data) {
		char *end;
		errno = 0;
		idx = strtoull(d->argv[2], &end, 0);
		if (errno || end == d->argv[2] || *end || idx >= SD_INODE_DATA_INDEX) {
			dog_err("vdi object location: invalid object index '%s' (0 to %u)",
				d->argv[2], SD_INODE_DATA_INDEX - 1);
			return DOG_EXIT_USAGE;
		}
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t vid = 0;
	int ret = dog_vdi_lookup_snap(fd, name, d->snap, &vid);
	if (ret != SD_RES_SUCCESS) {
		close(fd);
		return ret < 0 ? dog_exit_of_errno(ret)
			       : dog_fail_result("vdi object location", (uint32_t)ret, name);
	}
	uint64_t oid = vid_to_vdi_oid(vid);
	if (data) {
		/* The object map says which VDI owns the object (copy-on-write). */
		uint32_t owner = 0;
		ret = dog_read_obj(fd, oid, &owner, sizeof(owner),
				   sd_inode_vid_offset((uint32_t)idx));
		if (ret != SD_RES_SUCCESS) {
			close(fd);
			return ret < 0
				   ? dog_exit_of_errno(ret)
				   : dog_fail_result("vdi object location", (uint32_t)ret, name);
		}
		if (!owner) {
			printf("The inode object 0x%" PRIx32 " idx %" PRIu64 " is not allocated\n",
			       vid, idx);
			close(fd);
			return DOG_EXIT_SUCCESS;
		}
		oid = vid_to_data_oid(owner, (uint32_t)idx);
	}
	struct sd_obj_loc loc[32];
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_OBJ_LOCATION);
	req.obj.oid = oid;
	req.data_length = sizeof(loc);
	ret = sd_exec(fd, &req, NULL, &rsp, loc, sizeof(loc));
	close(fd);
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (rsp.result != SD_RES_SUCCESS)
		return dog_fail_result("vdi object location", rsp.result, name);
	uint32_t width =
	    SD_MIN((uint32_t)rsp.obj.copies, rsp.data_length / (uint32_t)sizeof(loc[0]));
	uint32_t dd = rsp.obj.reserved[0];
	if (data)
		printf("Looking for the object 0x%" PRIx64 " (vid 0x%" PRIx32 " idx %" PRIu64
		       ", %u copies) with %u nodes\n\n",
		       oid, oid_to_vid(oid), idx, width, width);
	else
		printf("Looking for the inode object 0x%" PRIx64 " with %u nodes\n\n", oid, width);
	for (uint32_t i = 0; i < width && i < 32; i++) {
		struct sd_node n;
		sd_node_from_wire(&loc[i].node, &n);
		char frag[48] = "";
		if (dd)
			snprintf(frag, sizeof(frag), ", fragment %u of %u:%u", i, dd, width - dd);
		if (!n.port)
			printf("no node holds position %u (fewer zones than the policy)\n", i);
		else if (loc[i].present)
			printf("%s:%u has the object (should be %u copies%s)%s\n", n.addr, n.port,
			       width, frag, loc[i].moved ? ", not yet moved by recovery" : "");
		else
			printf("%s:%u doesn't have the object%s\n", n.addr, n.port, frag);
	}
	return DOG_EXIT_SUCCESS;
}
