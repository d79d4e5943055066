/* vdi_attr.c - dog vdi setattr / getattr: a VDI's key-value attributes in attribute objects, found
 * by the sheep (GET_VDI_ATTR), as Sheepdog 1.0's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/sd_wire.h"
#include "lib/util.h"

/* Ask the sheep for the attribute object of (vdi, key); flags CREAT, EXCL,
 * DEL. The SD_RES_* result; *oid on success. */
static int find_attr(struct dog *d, const char *vdi, const char *key, uint32_t value_len,
		     uint16_t flags, uint64_t *oid)
{
	struct sd_vdi_attr a;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", vdi);
	snprintf(a.key, sizeof(a.key), "%s", key);
	a.value_len = value_len;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_GET_VDI_ATTR);
	req.flags = SD_FLAG_CMD_WRITE | flags;
	req.data_length = sizeof(a);
	int ret = dog_exec(d, &req, &a, &rsp, NULL, 0);
	if (ret < 0)
		return ret;
	if (ret == SD_RES_SUCCESS)
		*oid = sd_vid_to_attr_oid(sd_rsp_vdi_id(&rsp), rsp.vdi_hdr.attr_id);
	return ret;
}

static int attr_fail(const char *what, int ret, const char *vdi, const char *key)
{
	if (ret < 0) {
		dog_err("vdi %s: %s", what, strerror(-ret));
		return dog_exit_of_errno(ret);
	}
	if (ret == SD_RES_NO_OBJ) {
		dog_err("Attribute '%s' not found", key);
		return DOG_EXIT_MISSING;
	}
	if (ret == SD_RES_VDI_EXIST) {
		dog_err("Attribute '%s' already exists", key);
		return DOG_EXIT_EXISTS;
	}
	return dog_fail_result(what, (uint32_t)ret, vdi);
}

/* dog vdi setattr [-d] [-x] VDI KEY [VALUE]: VALUE, or stdin when absent. */
int dog_vdi_setattr(struct dog *d)
{
	const char *vdi = d->argv[0], *key = d->argv[1];
	if (strlen(vdi) >= SD_MAX_VDI_LEN || !key[0] || strlen(key) >= SD_MAX_VDI_ATTR_KEY_LEN) {
		dog_err("vdi setattr: the VDI name and key take 1 to 255 bytes");
		return DOG_EXIT_USAGE;
	}
	char *value = malloc(SD_MAX_VDI_ATTR_VALUE_LEN + 1);
	if (!value)
		return DOG_EXIT_SYSFAIL;
	size_t len = 0;
	if (d->argc > 2) {
		len = strlen(d->argv[2]);
		if (len <= SD_MAX_VDI_ATTR_VALUE_LEN)
			memcpy(value, d->argv[2], len);
	} else if (!d->attr_delete) {
		ssize_t n;
		while (len <= SD_MAX_VDI_ATTR_VALUE_LEN &&
		       (n = read(0, value + len, SD_MAX_VDI_ATTR_VALUE_LEN + 1 - len)) > 0)
			len += (size_t)n;
	}
	if (len > SD_MAX_VDI_ATTR_VALUE_LEN) {
		dog_err("vdi setattr: the value is too big (at most %u bytes)",
			SD_MAX_VDI_ATTR_VALUE_LEN);
		free(value);
		return DOG_EXIT_USAGE;
	}
	uint16_t flags = d->attr_delete ? SD_FLAG_CMD_DEL : SD_FLAG_CMD_CREAT;
	if (d->attr_excl)
		flags |= SD_FLAG_CMD_EXCL;
	uint64_t oid = 0;
	int ret = find_attr(d, vdi, key, (uint32_t)len, flags, &oid);
	if (ret != SD_RES_SUCCESS) {
		free(value);
		return attr_fail("setattr", ret, vdi, key);
	}
	if (!d->attr_delete && len) {
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_WRITE_OBJ);
		req.flags = SD_FLAG_CMD_WRITE;
		req.obj.oid = oid;
		req.obj.offset = SD_ATTR_OBJ_SIZE;
		req.data_length = (uint32_t)len;
		ret = dog_exec(d, &req, value, &rsp, NULL, 0);
		if (ret != SD_RES_SUCCESS) {
			free(value);
			return attr_fail("setattr", ret, vdi, key);
		}
	}
	free(value);
	return DOG_EXIT_SUCCESS;
}

/* dog vdi getattr VDI KEY: the value, as stored, on stdout. */
int dog_vdi_getattr(struct dog *d)
{
	const char *vdi = d->argv[0], *key = d->argv[1];
	uint64_t oid = 0;
	int ret = find_attr(d, vdi, key, 0, 0, &oid);
	if (ret != SD_RES_SUCCESS)
		return attr_fail("getattr", ret, vdi, key);
	size_t cap = SD_ATTR_OBJ_SIZE + SD_MAX_VDI_ATTR_VALUE_LEN;
	char *buf = malloc(cap);
	if (!buf)
		return DOG_EXIT_SYSFAIL;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_READ_OBJ);
	req.obj.oid = oid;
	req.data_length = (uint32_t)cap;
	ret = dog_exec(d, &req, NULL, &rsp, buf, cap);
	if (ret != SD_RES_SUCCESS) {
		free(buf);
		return attr_fail("getattr", ret, vdi, key);
	}
	struct sd_vdi_attr a;
	memcpy(&a, buf, sizeof(a));
	size_t n = SD_MIN((size_t)a.value_len, (size_t)SD_MAX_VDI_ATTR_VALUE_LEN);
	int rc =
	    fwrite(buf + SD_ATTR_OBJ_SIZE, 1, n, stdout) == n ? DOG_EXIT_SUCCESS : DOG_EXIT_SYSFAIL;
	free(buf);
	return rc;
}
