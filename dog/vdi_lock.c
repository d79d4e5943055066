/* vdi_lock.c - dog vdi lock list / unlock, and the lock dog vdi write holds while it writes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_proto.h"

#define DOG_MAX_LOCKS 4096
#define SD_CLIENT_OWNER (1ull << 62) /* sheep's tag on client-connection lock owners */

/* Every lock of the cluster; *n entries in *out (malloc'd). SD_RES_* or -errno. */
static int get_locks(int fd, struct sd_vdi_lock **out, uint32_t *n)
{
	size_t len = DOG_MAX_LOCKS * sizeof(struct sd_vdi_lock);
	struct sd_vdi_lock *l = calloc(DOG_MAX_LOCKS, sizeof(*l));
	if (!l)
		return -ENOMEM;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_GET_VDI_LOCKS);
	req.data_length = (uint32_t)len;
	int ret = sd_exec(fd, &req, NULL, &rsp, l, len);
	if (ret < 0 || rsp.result != SD_RES_SUCCESS) {
		free(l);
		return ret < 0 ? ret : sd_res_int(rsp.result);
	}
	*out = l;
	*n = rsp.data_length / (uint32_t)sizeof(*l);
	return SD_RES_SUCCESS;
}

/* Who holds a lock, in words. */
static void holder_str(const struct sd_vdi_lock *l, char *buf, size_t len)
{
	if ((l->owner >> 62) == 1)
		snprintf(buf, len, "a Sheepdog-protocol client of sheep %s:%u", l->addr, l->port);
	else
		snprintf(buf, len, "an NBD writer attached through sheep %s:%u", l->addr, l->port);
}

/* The name of VDI vid ("" if unreadable). */
static void vdi_name(int fd, uint32_t vid, char *name, size_t len)
{
	char hdr[SD_MAX_VDI_LEN];
	name[0] = '\0';
	if (dog_read_obj(fd, vid_to_vdi_oid(vid), hdr, sizeof(hdr), 0) == SD_RES_SUCCESS) {
		hdr[sizeof(hdr) - 1] = '\0';
		snprintf(name, len, "%s", hdr);
	}
}

static int lock_list(struct dog *d, int fd)
{
	struct sd_vdi_lock *l;
	uint32_t n;
	int ret = get_locks(fd, &l, &n);
	if (ret != SD_RES_SUCCESS) {
		if (ret < 0) {
			dog_err("vdi lock list: lost the connection to sheep: %s", strerror(-ret));
			return DOG_EXIT_SYSFAIL;
		}
		return dog_fail_result("vdi lock list", (uint32_t)ret, NULL);
	}
	if (!d->raw)
		printf("VDI                              Id      Holder (sheep)         Kind    Owner\n");
	for (uint32_t i = 0; i < n; i++) {
		char name[SD_MAX_VDI_LEN], where[96];
		vdi_name(fd, l[i].vid, name, sizeof(name));
		snprintf(where, sizeof(where), "%s:%u", l[i].addr, l[i].port);
		const char *kind = (l[i].owner >> 62) == 1 ? "client" : "nbd";
		uint64_t id = l[i].owner & ~SD_CLIENT_OWNER;
		if (d->raw)
			printf("%s %" PRIx32 " %s %s %" PRIu64 "\n", name, l[i].vid, where, kind, id);
		else
			printf("%-32s %-7" PRIx32 " %-22s %-7s %" PRIu64 "\n", name, l[i].vid, where,
			       kind, id);
	}
	free(l);
	return DOG_EXIT_SUCCESS;
}

static int lock_unlock(struct dog *d, int fd, const char *name)
{
	uint32_t vid;
	int ret = dog_vdi_lookup(fd, name, &vid);
	if (ret == SD_RES_SUCCESS) {
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_FORCE_UNLOCK_VDI);
		req.vdi.base_vdi_id = vid;
		ret = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
		if (ret == 0)
			ret = sd_res_int(rsp.result);
	}
	if (ret == SD_RES_VDI_NOT_LOCKED) {
		dog_err("vdi lock unlock: VDI %s is not locked", name);
		return DOG_EXIT_FAILURE;
	}
	if (ret < 0) {
		dog_err("vdi lock unlock: lost the connection to sheep: %s", strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result("vdi lock unlock", (uint32_t)ret, name);
	return DOG_EXIT_SUCCESS;
}

int dog_vdi_lock_cmd(struct dog *d)
{
	const char *sub = d->argv[0];
	bool list = !strcmp(sub, "list"), unlock = !strcmp(sub, "unlock");
	if ((!list && !unlock) || (list && d->argc != 1) || (unlock && d->argc != 2)) {
		dog_err("vdi lock: want 'list' or 'unlock <vdiname>'");
		return DOG_EXIT_USAGE;
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	int rc = list ? lock_list(d, fd) : lock_unlock(d, fd, d->argv[1]);
	close(fd);
	return rc;
}

/* SD_RES_* of one LOCK_VDI request, or -errno. */
static int try_lock(int fd, const char *name)
{
	char buf[SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN];
	memset(buf, 0, sizeof(buf));
	strncpy(buf, name, SD_MAX_VDI_LEN - 1);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_LOCK_VDI);
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(buf);
	int ret = sd_exec(fd, &req, buf, &rsp, NULL, 0);
	return ret < 0 ? ret : sd_res_int(rsp.result);
}

/* Who holds name's lock: *client is set when it is a Sheepdog-protocol
 * client (another dog write), holder describes it. Returns false when the
 * list shows no holder (it let go since), or could not be read. */
static bool lock_holder(int fd, const char *name, bool *client, char *holder, size_t len)
{
	uint32_t vid;
	struct sd_vdi_lock *l;
	uint32_t n;
	bool found = false;
	*client = false;
	snprintf(holder, len, "another client");
	if (dog_vdi_lookup(fd, name, &vid) != SD_RES_SUCCESS ||
	    get_locks(fd, &l, &n) != SD_RES_SUCCESS)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (l[i].vid == vid) {
			holder_str(&l[i], holder, len);
			*client = (l[i].owner >> 62) == 1;
			found = true;
		}
	free(l);
	return found;
}

int dog_vdi_take_lock(int fd, const char *what, const char *name)
{
	char holder[160];
	bool client = false;
	/* A holder that lets go between the refusal and the look at the list
	 * (another dog write ending) is tried again: a few rounds, each one
	 * a new refusal by a new holder. */
	for (int round = 0; round < 8; round++) {
		int ret = try_lock(fd, name);
		if (ret < 0) {
			dog_err("%s: lost the connection to sheep: %s", what, strerror(-ret));
			return DOG_EXIT_SYSFAIL;
		}
		if (ret == SD_RES_SUCCESS)
			return DOG_EXIT_SUCCESS;
		if (ret != SD_RES_VDI_LOCKED)
			return dog_fail_result(what, (uint32_t)ret, name);
		/* Another dog write holds it: write alongside it, as Sheepdog
		 * 1.0's dog writes do (the sheep lets clients write under a
		 * client's lock); an NBD writer (a VM) holds it until it
		 * detaches: say so at once. */
		if (lock_holder(fd, name, &client, holder, sizeof(holder)))
			break;
	}
	if (client)
		return DOG_EXIT_SUCCESS;
	dog_err("%s: VDI %s is locked: %s has it open for writing; detach it first (or, if "
		"the holder is gone, break the lock with: dog vdi lock unlock %s)",
		what, name, holder, name);
	return DOG_EXIT_FAILURE;
}
