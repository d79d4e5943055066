/* ops_priv.h - what the files of the request dispatch (ops.c, ops_vdi.c, ops_util.c) share. */
#ifndef SHEEP_SERVER_OPS_PRIV_H
#define SHEEP_SERVER_OPS_PRIV_H

#include <stddef.h>
#include <stdint.h>

struct sheep;
struct request;

/* ops_util.c */
/* A NUL-terminated name of at most cap - 1 bytes at payload offset at:
 * 0, or -EINVAL (an absent field past offset 0 reads as ""). */
int ops_get_name(const struct request *r, size_t at, char *out, size_t cap);
/* A zeroed reply payload of len bytes, owned by the request. */
void *ops_reply_buf(struct request *r, uint32_t len);
uint32_t ops_current_epoch(struct sheep *s);
/* 0 when the node may serve I/O, else the SD_RES_* saying why not. */
int ops_need_ready(struct sheep *s);
/* Put a NUL-terminated explanation in the reply payload (dog prints it). */
void ops_reply_text(struct request *r, const char *msg);

/* ops_alter.c: vdi alter-copy (ALTER_VDI_COPY, ALTER_STATUS) */
int ops_alter_vdi_copy(struct sheep *s, struct request *r);
int ops_alter_status(struct sheep *s, struct request *r);

/* ops_vdi.c: the VDI ops (NEW, GET_INFO, LOCK, RELEASE, READ_VDIS, DEL) */
int ops_new_vdi(struct sheep *s, struct request *r);
int ops_get_vdi_info(struct sheep *s, struct request *r);
int ops_lock_vdi(struct sheep *s, struct request *r);
int ops_release_vdi(struct sheep *s, struct request *r);
int ops_get_vdi_attr(struct sheep *s, struct request *r);
int ops_get_vdi_locks(struct sheep *s, struct request *r);
int ops_force_unlock_vdi(struct sheep *s, struct request *r);
int ops_read_del_vdis(struct sheep *s, struct request *r);
int ops_read_vdis(struct sheep *s, struct request *r);
int ops_del_vdi(struct sheep *s, struct request *r);

/* ops_node.c: SET_VNODES, GET_VNODES */
int ops_set_vnodes(struct sheep *s, struct request *r);
int ops_get_vnodes(struct sheep *s, struct request *r);
int ops_md_info(struct sheep *s, struct request *r);
int ops_md_plug(struct sheep *s, struct request *r);
int ops_obj_track(struct sheep *s, struct request *r);

#endif
