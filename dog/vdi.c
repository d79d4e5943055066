/* vdi.c - dog vdi create / list / delete / read / write / resize, and the walk over all VDIs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

#define REPLY_TEXT_MAX 1024

/* The name argument of a vdi subcommand: non-empty, fits the inode. */
static int check_name(const char *what, const char *name)
{
	if (!name[0] || strlen(name) >= SD_MAX_VDI_LEN) {
		dog_err("%s: invalid VDI name '%s': give 1 to %d characters", what, name,
			SD_MAX_VDI_LEN - 1);
		return DOG_EXIT_USAGE;
	}
	return 0;
}

static int parse_size_arg(const char *what, const char *label, const char *s, uint64_t *out)
{
	if (sd_parse_size(s, out) < 0) {
		dog_err("%s: invalid %s '%s': give bytes, or a number with K, M, G or T", what,
			label, s);
		return DOG_EXIT_USAGE;
	}
	return 0;
}

/* What a policy asks of the cluster's zones, and what the cluster has. */
struct zone_need {
	bool known; /* the cluster said how many zones it has */
	uint32_t zones, width, min_ack;
	char policy[16];
};

static struct zone_need zone_need_of(const struct dog *d, uint8_t copies, uint8_t copy_policy)
{
	struct zone_need zn;
	memset(&zn, 0, sizeof(zn));
	struct ec_policy pol;
	if (ec_policy_from_wire(copy_policy, copies, &pol) < 0)
		return zn;
	ec_policy_format(&pol, zn.policy, sizeof(zn.policy));
	zn.width = (uint32_t)ec_policy_width(&pol);
	/* DESIGN.md's acknowledgement rule: d+1 fragments, or 2 copies. */
	zn.min_ack = ec_policy_is_ec(&pol) ? pol.d + 1u : (pol.copies >= 2 ? 2u : 1u);
	struct sd_cluster_info ci;
	if (dog_cluster_info(d, &ci) == SD_RES_SUCCESS && ci.nr_zones) {
		zn.known = true;
		zn.zones = ci.nr_zones;
	}
	return zn;
}

static int vdi_create(struct dog *d)
{
	const char *name = d->argv[0];
	uint64_t size;
	int ret = check_name("vdi create", name);
	if (ret)
		return ret;
	if ((ret = parse_size_arg("vdi create", "size", d->argv[1], &size)))
		return ret;
	if (!size) {
		dog_err("vdi create: the size must be more than 0");
		return DOG_EXIT_USAGE;
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint8_t copies, copy_policy, shift;
	if (!d->have_policy || d->block_size_shift < 0) {
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_GET_CLUSTER_DEFAULT);
		ret = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
		if (ret < 0) {
			dog_err("vdi create: lost the connection to sheep: %s", strerror(-ret));
			close(fd);
			return DOG_EXIT_SYSFAIL;
		}
		if (rsp.result != SD_RES_SUCCESS) {
			close(fd);
			return dog_fail_result("vdi create", rsp.result, name);
		}
		copies = rsp.cluster.nr_copies;
		copy_policy = rsp.cluster.copy_policy;
		shift = rsp.cluster.block_size_shift;
		if (!copies)
			copies = SD_DEFAULT_COPIES, copy_policy = 0;
		if (!shift)
			shift = SD_DEFAULT_BLOCK_SIZE_SHIFT;
	} else {
		copies = 0, copy_policy = 0, shift = SD_DEFAULT_BLOCK_SIZE_SHIFT;
	}
	if (d->have_policy) {
		copies = (uint8_t)ec_policy_width(&d->policy);
		copy_policy = ec_policy_byte(&d->policy);
	}
	if (d->block_size_shift >= 0)
		shift = (uint8_t)d->block_size_shift;
	/* -y (Sheepdog's hyper volume, more than 2^20 objects in a B-tree
	 * inode): this inode maps 2^20 objects, so the object size grows
	 * instead until the volume fits (up to 2 PiB with 2 GiB objects). */
	while (d->hyper && size > sd_max_vdi_size(shift) && shift < SD_MAX_BLOCK_SIZE_SHIFT)
		shift++;
	if (size > sd_max_vdi_size(shift)) {
		char max[32];
		sd_format_size(sd_max_vdi_size(shift), max, sizeof(max));
		dog_err("vdi create: VDI size is too large: the maximum with %u-byte objects is %s "
			"(raise -z, or -y to let the object size follow the volume's)",
			1u << shift, max);
		close(fd);
		return DOG_EXIT_FAILURE;
	}
	char buf[SD_MAX_VDI_LEN];
	char text[REPLY_TEXT_MAX];
	memset(buf, 0, sizeof(buf));
	memset(text, 0, sizeof(text));
	strncpy(buf, name, sizeof(buf) - 1);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_NEW_VDI);
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(buf);
	req.vdi.vdi_size = size;
	req.vdi.copies = copies;
	req.vdi.copy_policy = copy_policy;
	req.vdi.block_size_shift = shift;
	ret = sd_exec(fd, &req, buf, &rsp, text, sizeof(text) - 1);
	close(fd);
	if (ret < 0) {
		dog_err("vdi create: lost the connection to sheep: %s", strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	/* A sheep may explain itself in the reply payload: an error when
	 * refused, a warning when accepted. Otherwise dog explains a policy
	 * wider than the cluster's zones itself. */
	struct zone_need zn = zone_need_of(d, copies, copy_policy);
	if (rsp.result != SD_RES_SUCCESS) {
		/* Sheepdog's line first; this project's explanation follows. */
		dog_err("Failed to create VDI %s: %s", name, sd_strerror(rsp.result));
		if (rsp.data_length && text[0]) {
			dog_err("vdi create: %s", text);
			return dog_exit_of_result(rsp.result);
		}
		if (rsp.result == SD_RES_INVALID_PARMS && zn.known && zn.zones < zn.min_ack) {
			dog_err("vdi create: policy %s needs at least %u zones to accept writes, "
				"cluster has %u: start sheep in more zones (sheep -z) or choose a "
				"narrower policy with -c",
				zn.policy, zn.min_ack, zn.zones);
			return DOG_EXIT_FAILURE;
		}
		return dog_fail_result("vdi create", rsp.result, name);
	}
	if (rsp.data_length && text[0])
		dog_err("warning: %s", text);
	else if (zn.known && zn.zones < zn.width)
		dog_err("warning: policy %s places %u %s in distinct zones but the cluster has %u: "
			"redundancy stays reduced until more zones join",
			zn.policy, zn.width, copy_policy ? "fragments" : "copies", zn.zones);
	if (d->verbose)
		printf("VDI %s created, id %x\n", name, sd_rsp_vdi_id(&rsp));
	if (d->prealloc)
		return dog_vdi_io(d, name, DOG_IO_ZERO, -1, 0, size, true);
	return DOG_EXIT_SUCCESS;
}

struct list_arg {
	const struct dog *d;
	const char *name;
	struct dog_json j;
	bool started;
};

static int list_one(const struct sd_inode *ino, void *arg)
{
	struct list_arg *la = arg;
	if (la->name && strcmp(la->name, ino->name))
		return 0;
	uint32_t n = dog_vdi_nr_objs(ino), mine = 0, shared = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (ino->data_vdi_id[i] == ino->vdi_id)
			mine++;
		else if (ino->data_vdi_id[i])
			shared++;
	}
	uint8_t shift = dog_inode_shift(ino);
	const struct sd_inode_hdr *h = (const struct sd_inode_hdr *)(const void *)ino;
	bool snap = sd_inode_is_snapshot(h);
	struct dog_vdi_row r = {
	    .type = snap ? 's' : (sd_inode_is_clone(h) ? 'c' : ' '),
	    .name = ino->name,
	    .snap_id = snap ? ino->snap_id : 0,
	    .size = ino->vdi_size,
	    .used = (uint64_t)mine << shift,
	    .shared = (uint64_t)shared << shift,
	    .ctime = dog_inode_seconds(ino->create_time),
	    .vid = ino->vdi_id,
	    .nr_copies = ino->nr_copies,
	    .copy_policy = ino->copy_policy,
	    .tag = ino->tag,
	    .block_size_shift = shift,
	};
	if (la->d->json)
		dog_json_vdi_row(&la->j, &r);
	else
		dog_print_vdi_row(stdout, &r, la->d->raw);
	return 0;
}

static void list_header(void *arg)
{
	struct list_arg *la = arg;
	la->started = true;
	if (la->d->json) {
		dog_json_obj_begin(&la->j, NULL);
		dog_json_arr_begin(&la->j, "vdis");
	} else {
		dog_print_vdi_header(stdout, la->d->raw);
	}
}

static int vdi_list(struct dog *d)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct list_arg la = {.d = d, .name = d->argc ? d->argv[0] : NULL};
	dog_json_init(&la.j, stdout);
	/* The header comes once the cluster answered: an unformatted cluster
	 * gives just the error. */
	int ret = dog_vdi_foreach(fd, true, list_header, list_one, &la);
	close(fd);
	if (d->json && la.started && !ret) {
		dog_json_arr_end(&la.j);
		dog_json_obj_end(&la.j);
	}
	return ret;
}

static int vdi_delete(struct dog *d)
{
	const char *name = d->argv[0];
	int ret = check_name("vdi delete", name);
	if (ret)
		return ret;
	if (d->snap && strlen(d->snap) >= SD_MAX_VDI_TAG_LEN) {
		dog_err("vdi delete: tag too long: at most %d bytes", SD_MAX_VDI_TAG_LEN - 1);
		return DOG_EXIT_USAGE;
	}
	char buf[SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN], text[REPLY_TEXT_MAX];
	memset(buf, 0, sizeof(buf));
	memset(text, 0, sizeof(text));
	strncpy(buf, name, SD_MAX_VDI_LEN - 1);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_DEL_VDI);
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(buf);
	uint32_t id;
	if (d->snap && dog_snap_is_id(d->snap, &id))
		req.vdi.snapid = id;
	else if (d->snap)
		strncpy(buf + SD_MAX_VDI_LEN, d->snap, SD_MAX_VDI_TAG_LEN - 1);
	ret = dog_exec(d, &req, buf, &rsp, text, sizeof(text) - 1);
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS) {
		if (rsp.data_length && text[0]) {
			dog_err("vdi delete: %s", text);
			return DOG_EXIT_FAILURE;
		}
		if (d->snap && (ret == SD_RES_NO_VDI || ret == SD_RES_NO_TAG)) {
			dog_err("vdi delete: VDI %s has no snapshot %s: see dog vdi list %s", name,
				d->snap, name);
			return DOG_EXIT_MISSING;
		}
		return dog_fail_result("vdi delete", (uint32_t)ret, name);
	}
	return DOG_EXIT_SUCCESS;
}

/* [off [len]] of vdi read / write. */
static int io_args(struct dog *d, const char *what, uint64_t *off, uint64_t *len, bool *len_given)
{
	int ret = check_name(what, d->argv[0]);
	if (ret)
		return ret;
	*off = 0;
	*len = 0;
	*len_given = false;
	if (d->argc > 1 && (ret = parse_size_arg(what, "offset", d->argv[1], off)))
		return ret;
	if (d->argc > 2) {
		if ((ret = parse_size_arg(what, "length", d->argv[2], len)))
			return ret;
		*len_given = true;
	}
	return 0;
}

static int vdi_read(struct dog *d)
{
	uint64_t off, len;
	bool len_given;
	int ret = io_args(d, "vdi read", &off, &len, &len_given);
	if (ret)
		return ret;
	return dog_vdi_io(d, d->argv[0], DOG_IO_READ, STDOUT_FILENO, off, len, len_given);
}

static int vdi_write(struct dog *d)
{
	uint64_t off, len;
	bool len_given;
	int ret = io_args(d, "vdi write", &off, &len, &len_given);
	if (ret)
		return ret;
	if (d->snap) {
		dog_err("vdi write: snapshot %s of %s is read-only: write the working VDI, or "
			"clone the snapshot (dog vdi clone -s %s %s NEWNAME) and write the clone",
			d->snap, d->argv[0], d->snap, d->argv[0]);
		return DOG_EXIT_FAILURE;
	}
	return dog_vdi_io(d, d->argv[0], DOG_IO_WRITE, STDIN_FILENO, off, len, len_given);
}

static int vdi_resize(struct dog *d)
{
	const char *name = d->argv[0];
	uint64_t size;
	int ret = check_name("vdi resize", name);
	if (ret)
		return ret;
	if ((ret = parse_size_arg("vdi resize", "size", d->argv[1], &size)))
		return ret;
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t vid;
	struct sd_inode *ino = malloc(sizeof(*ino)); /* sparse: only the header is touched */
	if (!ino) {
		close(fd);
		return DOG_EXIT_SYSFAIL;
	}
	ret = dog_vdi_lookup(fd, name, &vid);
	if (ret == SD_RES_SUCCESS)
		ret = dog_read_inode_hdr(fd, vid, ino);
	if (ret != SD_RES_SUCCESS)
		goto fail;
	uint8_t shift = dog_inode_shift(ino);
	if (size < ino->vdi_size) {
		char cur[32];
		sd_format_size(ino->vdi_size, cur, sizeof(cur));
		dog_err("vdi resize: shrinking VDIs is not supported: %s is %s", name, cur);
		ret = DOG_EXIT_FAILURE;
		goto out;
	}
	if (size > sd_max_vdi_size(shift)) {
		char max[32];
		sd_format_size(sd_max_vdi_size(shift), max, sizeof(max));
		dog_err("vdi resize: new VDI size is too large: the maximum for %s is %s", name,
			max);
		ret = DOG_EXIT_FAILURE;
		goto out;
	}
	ret = dog_write_obj(fd, vid_to_vdi_oid(vid), &size, sizeof(size),
			    (uint32_t)offsetof(struct sd_inode, vdi_size), ino, false, 0);
	if (ret != SD_RES_SUCCESS)
		goto fail;
	ret = DOG_EXIT_SUCCESS;
	goto out;
fail:
	if (ret == -EBADMSG) {
		dog_err("vdi resize: the inode of %s is not valid (object size shift outside 20..31)",
			name);
		ret = DOG_EXIT_FAILURE;
	} else if (ret < 0) {
		dog_err("vdi resize: lost the connection to sheep: %s", strerror(-ret));
		ret = DOG_EXIT_SYSFAIL;
	} else {
		ret = dog_fail_result("vdi resize", (uint32_t)ret, name);
	}
out:
	free(ino);
	close(fd);
	return ret;
}

const struct dog_cmd dog_vdi_cmds[] = {
    {"vdi", "create", "c:Pz:y", "<vdiname> <size>", "create a thin-provisioned VDI",
     "  -c, --copies          N copies (1..31) or d:p erasure code (d in 2,4,8,16,\n"
     "                        p in 1..15); the cluster default when absent\n"
     "  -P, --prealloc        allocate (write zeros to) every object now\n"
     "  -z, --block_size_shift  object size 2^N bytes, N in 20..31 (cluster default)\n"
     "  -y, --hyper           a volume larger than 2^20 objects of that size: the\n"
     "                        object size grows until it fits (up to 2 PiB)\n",
     2, 2, vdi_create},
    {"vdi", "list", "f:", "[vdiname]", "list VDIs, snapshots (s) and clones (c)", DOG_JSON_HELP,
     0, 1, vdi_list},
    {"vdi", "delete", "s:", "<vdiname>",
     "delete a VDI, or one snapshot of it; frees the objects nothing else uses",
     "  -s, --snapshot        the snapshot to delete (id or tag); the working VDI when absent\n",
     1, 1, vdi_delete},
    {"vdi", "read", "s:", "<vdiname> [<offset> [<len>]]",
     "write a VDI's bytes to stdout (to the end when len is absent)",
     "  -s, --snapshot        read this snapshot (id or tag) instead of the working VDI\n", 1,
     3, vdi_read},
    {"vdi", "write", "s:", "<vdiname> [<offset> [<len>]]",
     "store stdin in a VDI (until EOF or len bytes)",
     "  -s, --snapshot        refused: snapshots are read-only\n", 1, 3, vdi_write},
    {"vdi", "snapshot", "s:", "<vdiname>",
     "freeze the working VDI as a read-only snapshot (no data is copied)",
     "  -s, --snapshot        a tag naming the snapshot (at most 255 bytes)\n", 1, 1,
     dog_vdi_snapshot},
    {"vdi", "clone", "s:c:", "<src vdiname> <new vdiname>",
     "a writable VDI sharing a snapshot's objects (copied on first write)",
     "  -s, --snapshot        the snapshot to clone (id or tag); required\n"
     "  -c, --copies          policy of the objects the clone writes (default: the\n"
     "                        snapshot's)\n",
     2, 2, dog_vdi_clone},
    {"vdi", "rollback", "s:", "<vdiname>",
     "replace the working VDI by a snapshot's contents (the old one is deleted)",
     "  -s, --snapshot        the snapshot to go back to (id or tag); required\n", 1, 1,
     dog_vdi_rollback},
    {"vdi", "tree", NULL, "", "show snapshots and clones as a tree", NULL, 0, 0, dog_vdi_tree},
    {"vdi", "check", "s:", "<vdiname>",
     "read every copy and fragment of a VDI's objects, check checksums, versions and parity,\n"
     "    and repair what is wrong from the good ones (exit 1: damage left unrepaired)",
     "  -s, --snapshot        check this snapshot (id or tag) instead of the working VDI\n"
     "  -r, --raw             the summary as numbers: objects found fixed unrepairable\n"
     "                        unreachable\n",
     1, 1, dog_vdi_check},
    {"vdi", "backup", "s:F:", "<vdiname>",
     "write the objects that differ between two snapshots to stdout",
     "  -s, --snapshot        the snapshot to back up (id or tag); required\n"
     "  -F, --from            an older snapshot: only what changed since (default: all)\n",
     1, 1, dog_vdi_backup},
    {"vdi", "restore", "s:", "<vdiname>",
     "roll back to a snapshot and apply a backup from stdin on top of it",
     "  -s, --snapshot        the snapshot the backup starts from (its -F); required\n", 1, 1,
     dog_vdi_restore},
    {"vdi", "resize", NULL, "<vdiname> <new size>", "grow a VDI", NULL, 2, 2, vdi_resize},
    {"vdi", "setattr", "dx", "<vdiname> <key> [<value>]",
     "set a key-value attribute of a VDI (value from stdin when absent)",
     "  -d, --delete          delete the attribute\n"
     "  -x, --exclusive       fail if the attribute exists\n", 2, 3, dog_vdi_setattr},
    {"vdi", "object", "s:", "location <vdiname> [<index>]",
     "show which sheep hold the inode, or data object INDEX, and whether they have it",
     "  -s, --snapshot        the snapshot's object (id or tag)\n", 2, 3,
     dog_vdi_object_location},
    {"vdi", "track", "i:s:", "<vdiname>",
     "show where the inode, or data object -i INDEX, was placed at each epoch",
     "  -i, --index           the data object INDEX instead of the inode\n"
     "  -s, --snapshot        the snapshot's object (id or tag)\n",
     1, 1, dog_vdi_track},
    {"vdi", "getattr", NULL, "<vdiname> <key>", "print a VDI attribute's value", NULL, 2, 2,
     dog_vdi_getattr},
    {"vdi", "lock", NULL, "list | unlock <vdiname>",
     "list the VDI write locks (NBD writers, clients), or break a stale one", NULL, 1, 2,
     dog_vdi_lock_cmd},
    {"vdi", "alter-copy", "c:s:", "<vdiname>",
     "change a VDI's redundancy policy online (copies <-> erasure code), or show the change",
     "  -c, --copies          the new policy: N copies or D:P fragments (none: show where\n"
     "                        the VDI's policy and a running conversion stand)\n"
     "  -s, --snapshot        a snapshot (refused: snapshots are read-only)\n",
     1, 1, dog_vdi_alter_copy},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
