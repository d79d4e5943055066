/* common.c - dog's client side of the protocol: connect, exchange, object and VDI helpers, error
 * texts. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/sd_wire.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

#define DOG_CONNECT_TIMEOUT_MS 5000

void dog_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int dog_connect_to(const char *addr, uint16_t port)
{
	int fd = sd_connect(addr, port, DOG_CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		const char *fmt = strchr(addr, ':')
				      ? "cannot connect to [%s]:%u: %s: is sheep running?"
				      : "cannot connect to %s:%u: %s: is sheep running?";
		dog_err(fmt, addr, port, strerror(-fd));
	}
	return fd;
}

int dog_connect(const struct dog *d)
{
	return dog_connect_to(d->addr, d->port);
}

void dog_req_init(struct sd_req *req, uint8_t opcode)
{
	memset(req, 0, sizeof(*req));
	req->proto_ver = sd_op_is_internal(opcode) ? SD_SHEEP_PROTO_VER : SD_PROTO_VER;
	req->opcode = opcode;
}

int dog_exec(const struct dog *d, struct sd_req *req, const void *data, struct sd_rsp *rsp,
	     void *rbuf, size_t rlen)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return fd;
	int ret = sd_exec(fd, req, data, rsp, rbuf, rlen);
	close(fd);
	if (ret < 0) {
		dog_err("lost the connection to %s:%u: %s: is sheep still running?", d->addr,
			d->port, strerror(-ret));
		return ret;
	}
	return sd_res_int(rsp->result);
}

int dog_exit_of_errno(int err)
{
	(void)err;
	return DOG_EXIT_SYSFAIL;
}

int dog_exit_of_result(uint32_t result)
{
	switch (result) {
	case SD_RES_SUCCESS:
		return DOG_EXIT_SUCCESS;
	case SD_RES_VDI_EXIST:
		return DOG_EXIT_EXISTS;
	case SD_RES_NO_VDI:
	case SD_RES_NO_OBJ:
	case SD_RES_NO_TAG:
	case SD_RES_NO_BASE_VDI:
		return DOG_EXIT_MISSING;
	case SD_RES_NO_SPACE:
	case SD_RES_FULL_VDI:
		return DOG_EXIT_FULL;
	case SD_RES_EIO:
	case SD_RES_SYSTEM_ERROR:
	case SD_RES_NETWORK_ERROR:
	case SD_RES_NO_MEM:
	case SD_RES_HALT:
		return DOG_EXIT_SYSFAIL;
	default:
		return DOG_EXIT_FAILURE;
	}
}

const char *dog_result_hint(uint32_t result)
{
	switch (result) {
	case SD_RES_NOT_FORMATTED:
	case SD_RES_WAIT_FOR_FORMAT:
		return "cluster is not formatted: run dog cluster format";
	case SD_RES_WAIT_FOR_JOIN:
		return "the cluster is waiting for nodes to join: start the missing sheep";
	case SD_RES_HALT:
		return "not enough nodes are alive to serve I/O: restart the failed sheep (dog "
		       "node list)";
	case SD_RES_EIO:
	case SD_RES_NETWORK_ERROR:
		return "too many nodes down or failing? check dog node list and the sheep logs";
	case SD_RES_NO_VDI:
		return "see dog vdi list";
	case SD_RES_VDI_EXIST:
		return "pick another name, or delete it first with dog vdi delete";
	case SD_RES_NO_SPACE:
		return "the stores are full: add nodes or delete VDIs";
	case SD_RES_FULL_VDI:
		return "delete unused VDIs";
	case SD_RES_SHUTDOWN:
		return "the cluster is shutting down: restart the sheep";
	case SD_RES_VER_MISMATCH:
		return "dog and sheep come from different versions";
	case SD_RES_VDI_LOCKED:
		return "another client holds the VDI";
	case SD_RES_STARTUP:
	case SD_RES_AGAIN:
		return "try again in a moment";
	default:
		return NULL;
	}
}

int dog_fail_result(const char *what, uint32_t result, const char *name)
{
	const char *hint = dog_result_hint(result);
	const char *reason = sd_strerror(result);
	if (result == SD_RES_NOT_FORMATTED || result == SD_RES_WAIT_FOR_FORMAT) {
		dog_err("%s: %s", what, hint);
	} else if (name && result == SD_RES_NO_VDI) {
		dog_err("%s: VDI %s not found: %s", what, name, hint);
	} else if (name && result == SD_RES_VDI_EXIST) {
		dog_err("%s: VDI %s already exists: %s", what, name, hint);
	} else if (hint) {
		dog_err("%s: %s: %s", what, reason, hint);
	} else {
		dog_err("%s: %s", what, reason);
	}
	return dog_exit_of_result(result);
}

int dog_vdi_lookup(int fd, const char *name, uint32_t *vid)
{
	char buf[SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN];
	memset(buf, 0, sizeof(buf));
	strncpy(buf, name, SD_MAX_VDI_LEN - 1);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_GET_VDI_INFO);
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(buf);
	int ret = sd_exec(fd, &req, buf, &rsp, NULL, 0);
	if (ret < 0)
		return ret;
	if (rsp.result == SD_RES_SUCCESS)
		*vid = sd_rsp_vdi_id(&rsp);
	return sd_res_int(rsp.result);
}

bool dog_snap_is_id(const char *snap, uint32_t *id)
{
	if (!snap || !*snap || strlen(snap) > 10)
		return false;
	uint64_t v = 0;
	for (const char *p = snap; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (!v || v > UINT32_MAX)
		return false;
	*id = (uint32_t)v;
	return true;
}

int dog_vdi_lookup_snap(int fd, const char *name, const char *snap, uint32_t *vid)
{
	char buf[SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN];
	memset(buf, 0, sizeof(buf));
	strncpy(buf, name, SD_MAX_VDI_LEN - 1);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_GET_VDI_INFO);
	req.flags = SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(buf);
	uint32_t id;
	if (snap && dog_snap_is_id(snap, &id))
		req.vdi.snapid = id;
	else if (snap)
		strncpy(buf + SD_MAX_VDI_LEN, snap, SD_MAX_VDI_TAG_LEN - 1);
	int ret = sd_exec(fd, &req, buf, &rsp, NULL, 0);
	if (ret < 0)
		return ret;
	if (rsp.result == SD_RES_SUCCESS)
		*vid = sd_rsp_vdi_id(&rsp);
	return sd_res_int(rsp.result);
}

int dog_read_obj(int fd, uint64_t oid, void *buf, uint32_t len, uint32_t off)
{
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_READ_OBJ);
	req.data_length = len;
	req.obj.oid = oid;
	req.obj.offset = off;
	int ret = sd_exec(fd, &req, NULL, &rsp, buf, len);
	if (ret < 0)
		return ret;
	if (rsp.result == SD_RES_SUCCESS && rsp.data_length < len)
		memset((char *)buf + rsp.data_length, 0, len - rsp.data_length);
	return sd_res_int(rsp.result);
}

int dog_write_obj(int fd, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
		  const struct sd_inode *ino, bool create, uint64_t cow_oid)
{
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, create ? SD_OP_CREATE_AND_WRITE_OBJ : SD_OP_WRITE_OBJ);
	req.flags = SD_FLAG_CMD_WRITE | (cow_oid ? SD_FLAG_CMD_COW : 0);
	req.data_length = len;
	req.obj.oid = oid;
	req.obj.cow_oid = cow_oid;
	req.obj.offset = off;
	if (ino) {
		req.obj.copies = ino->nr_copies;
		req.obj.copy_policy = ino->copy_policy;
	}
	int ret = sd_exec(fd, &req, buf, &rsp, NULL, 0);
	if (ret < 0)
		return ret;
	return sd_res_int(rsp.result);
}

int dog_read_vdi_bitmap(int fd, uint8_t **bitmap)
{
	size_t len = SD_NR_VDIS / 8;
	uint8_t *bm = calloc(1, len);
	if (!bm)
		return -ENOMEM;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_READ_VDIS);
	req.data_length = (uint32_t)len;
	int ret = sd_exec(fd, &req, NULL, &rsp, bm, len);
	if (ret < 0 || rsp.result != SD_RES_SUCCESS) {
		free(bm);
		return ret < 0 ? ret : sd_res_int(rsp.result);
	}
	*bitmap = bm;
	return SD_RES_SUCCESS;
}

/* GET_NODE_LIST in Sheepdog's 80-byte layout (sd_wire.h), converted. */
int dog_get_nodes(int fd, struct sd_node **nodes, uint32_t *nr, uint32_t *local_idx)
{
	size_t len = SD_WIRE_MAX_NODES * sizeof(struct sd_wire_node);
	struct sd_wire_node *w = calloc(SD_WIRE_MAX_NODES, sizeof(*w));
	struct sd_node *n = calloc(SD_WIRE_MAX_NODES, sizeof(*n));
	if (!w || !n) {
		free(w);
		free(n);
		return -ENOMEM;
	}
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_GET_NODE_LIST);
	req.data_length = (uint32_t)len;
	int ret = sd_exec(fd, &req, NULL, &rsp, w, len);
	if (ret < 0 || rsp.result != SD_RES_SUCCESS) {
		free(w);
		free(n);
		return ret < 0 ? ret : sd_res_int(rsp.result);
	}
	uint32_t count = rsp.data_length / sizeof(struct sd_wire_node);
	if (rsp.node.nr_nodes < count)
		count = rsp.node.nr_nodes;
	for (uint32_t i = 0; i < count; i++)
		sd_node_from_wire(&w[i], &n[i]);
	free(w);
	*nodes = n;
	*nr = count;
	if (local_idx)
		*local_idx = sd_rsp_local_idx(&rsp);
	return SD_RES_SUCCESS;
}

/* STAT_CLUSTER's newest epoch log only, as a summary (sd_wire.h). */
int dog_cluster_info(const struct dog *d, struct sd_cluster_info *ci)
{
	int fd = sd_connect(d->addr, d->port, DOG_CONNECT_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	void *buf = calloc(1, SD_EPOCH_LOG_SIZE);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_STAT_CLUSTER);
	req.data_length = (uint32_t)SD_EPOCH_LOG_SIZE;
	int ret = sd_exec(fd, &req, NULL, &rsp, buf, SD_EPOCH_LOG_SIZE);
	close(fd);
	if (ret >= 0)
		sd_stat_cluster_summary(buf, rsp.data_length, rsp.result, ci);
	free(buf);
	return ret < 0 ? ret : sd_res_int(rsp.result);
}

int dog_read_inode_hdr(int fd, uint32_t vid, struct sd_inode *ino)
{
	int ret = dog_read_obj(fd, vid_to_vdi_oid(vid), ino, SD_INODE_HEADER_SIZE, 0);
	if (ret != SD_RES_SUCCESS)
		return ret;
	ino->name[SD_MAX_VDI_LEN - 1] = '\0';
	ino->tag[SD_MAX_VDI_TAG_LEN - 1] = '\0';
	uint8_t shift = dog_inode_shift(ino);
	if (shift < SD_MIN_BLOCK_SIZE_SHIFT || shift > SD_MAX_BLOCK_SIZE_SHIFT)
		return -EBADMSG; /* no sheep writes such an inode */
	return SD_RES_SUCCESS;
}

uint8_t dog_inode_shift(const struct sd_inode *ino)
{
	return ino->block_size_shift ? ino->block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT;
}

uint32_t dog_vdi_nr_objs(const struct sd_inode *ino)
{
	/* 0 for a header no sheep writes (bad shift, size past the map) */
	return sd_inode_nr_objs((const struct sd_inode_hdr *)(const void *)ino);
}

int dog_vdi_foreach(int fd, bool with_map, void (*start)(void *arg),
		    int (*fn)(const struct sd_inode *ino, void *arg), void *arg)
{
	uint8_t *bm;
	int ret = dog_read_vdi_bitmap(fd, &bm);
	if (ret < 0) {
		dog_err("cannot read the VDI list: %s: is sheep still running?", strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result("cannot read the VDI list", (uint32_t)ret, NULL);
	if (start)
		start(arg);
	/* The whole inode is 12 MiB but sparse: only the pages read are touched. */
	struct sd_inode *ino = malloc(sizeof(*ino));
	if (!ino) {
		free(bm);
		return DOG_EXIT_SYSFAIL;
	}
	int rc = 0;
	for (uint32_t vid = 0; vid < SD_NR_VDIS && !rc; vid++) {
		if (!bm[vid / 8]) {
			vid |= 7;
			continue;
		}
		if (!(bm[vid / 8] & (1u << (vid % 8))))
			continue;
		ret = dog_read_inode_hdr(fd, vid, ino);
		if (ret == SD_RES_NO_OBJ || ret == SD_RES_NO_VDI)
			continue; /* deleted meanwhile */
		if (ret != SD_RES_SUCCESS) {
			dog_err("cannot read the inode of VDI %x: %s", vid,
				ret < 0 ? strerror(-ret) : sd_strerror((uint32_t)ret));
			if (ret < 0 && ret != -EBADMSG) {
				rc = DOG_EXIT_SYSFAIL;
				break;
			}
			continue;
		}
		if (!ino->name[0])
			continue; /* a deleted VDI keeps its id in the bitmap */
		if (with_map) {
			uint32_t n = dog_vdi_nr_objs(ino);
			ret =
			    n ? dog_read_obj(fd, vid_to_vdi_oid(vid), ino->data_vdi_id,
					     n * (uint32_t)sizeof(uint32_t), sd_inode_vid_offset(0))
			      : SD_RES_SUCCESS;
			if (ret != SD_RES_SUCCESS) {
				dog_err("cannot read the object map of VDI %s: %s", ino->name,
					ret < 0 ? strerror(-ret) : sd_strerror((uint32_t)ret));
				if (ret < 0) {
					rc = DOG_EXIT_SYSFAIL;
					break;
				}
				continue;
			}
		}
		rc = fn(ino, arg);
	}
	free(ino);
	free(bm);
	return rc;
}
