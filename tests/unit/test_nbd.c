/* test_nbd.c - NBD export and vdi_io against an in-memory gateway: handshake, I/O, allocation, locks, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/inode.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/nbd/nbd.h"
#include "sheep/nbd/nbd_proto.h"
#include "sheep/nbd/vdi_io.h"

/* ---- an in-memory gateway: objects in a list, VDIs in a table ---------- */

#define OBJ_SHIFT 20 /* 1 MiB objects keep the test small */
#define OBJ_SIZE (1u << OBJ_SHIFT)
#define MAX_VDIS 8

struct fake_obj {
	struct fake_obj *next;
	uint64_t oid;
	uint32_t size;
	char *data;
};

struct fake_vdi {
	char name[SD_MAX_VDI_LEN];
	char tag[SD_MAX_VDI_TAG_LEN];
	uint32_t snapid;
	uint32_t vid;
	uint64_t lock_owner;
};

struct sheep {
	pthread_mutex_t lock;
	struct fake_obj *objs;
	struct fake_vdi vdis[MAX_VDIS];
	int nr_vdis;
	int double_creates; /* create of an object that exists: a vdi_io bug */
	int data_read_delay_ms;
	bool copy_local;  /* gateway_copy_obj copies (else: not possible here) */
	int local_copies; /* copies it made */
	struct nbd_server *nbd;
};

static struct fake_obj *find_obj(struct sheep *s, uint64_t oid)
{
	for (struct fake_obj *o = s->objs; o; o = o->next)
		if (o->oid == oid)
			return o;
	return NULL;
}

static uint32_t obj_size_of(uint64_t oid)
{
	return is_vdi_obj(oid) ? SD_INODE_SIZE : OBJ_SIZE;
}

static struct fake_obj *new_obj(struct sheep *s, uint64_t oid)
{
	struct fake_obj *o = calloc(1, sizeof(*o));
	o->oid = oid;
	o->size = obj_size_of(oid);
	o->data = calloc(1, o->size);
	o->next = s->objs;
	s->objs = o;
	return o;
}

int gateway_read_obj(struct sheep *s, uint64_t oid, void *buf, uint32_t len, uint32_t off)
{
	if (is_data_obj(oid) && s->data_read_delay_ms)
		usleep(s->data_read_delay_ms * 1000);
	pthread_mutex_lock(&s->lock);
	struct fake_obj *o = find_obj(s, oid);
	int ret = SD_RES_NO_OBJ;
	if (o && (uint64_t)off + len <= o->size) {
		memcpy(buf, o->data + off, len);
		ret = SD_RES_SUCCESS;
	} else if (o) {
		ret = SD_RES_INVALID_PARMS;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_write_obj(struct sheep *s, uint64_t oid, const void *buf, uint32_t len, uint32_t off,
		      bool create)
{
	pthread_mutex_lock(&s->lock);
	struct fake_obj *o = find_obj(s, oid);
	int ret = SD_RES_SUCCESS;
	if (create && o)
		s->double_creates++;
	if (!o && create)
		o = new_obj(s, oid);
	if (!o)
		ret = SD_RES_NO_OBJ;
	else if ((uint64_t)off + len > o->size)
		ret = SD_RES_INVALID_PARMS;
	else
		memcpy(o->data + off, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_copy_obj(struct sheep *s, uint64_t src, uint64_t dst)
{
	pthread_mutex_lock(&s->lock);
	struct fake_obj *o = s->copy_local ? find_obj(s, src) : NULL;
	int ret = SD_RES_NO_SUPPORT;
	if (o && !find_obj(s, dst)) {
		struct fake_obj *n = new_obj(s, dst);
		memcpy(n->data, o->data, o->size);
		s->local_copies++;
		ret = SD_RES_SUCCESS;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_remove_obj(struct sheep *s, uint64_t oid)
{
	pthread_mutex_lock(&s->lock);
	int ret = SD_RES_NO_OBJ;
	for (struct fake_obj **pp = &s->objs; *pp; pp = &(*pp)->next) {
		if ((*pp)->oid == oid) {
			struct fake_obj *o = *pp;
			*pp = o->next;
			free(o->data);
			free(o);
			ret = SD_RES_SUCCESS;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_vdi_lookup(struct sheep *s, const char *name, uint32_t snapid, const char *tag,
		       uint32_t *vid)
{
	bool found_name = false;
	for (int i = 0; i < s->nr_vdis; i++) {
		struct fake_vdi *v = &s->vdis[i];
		if (strcmp(v->name, name))
			continue;
		found_name = true;
		if (tag && *tag ? !strcmp(v->tag, tag) : v->snapid == snapid) {
			*vid = v->vid;
			return SD_RES_SUCCESS;
		}
	}
	return found_name && tag && *tag ? SD_RES_NO_TAG : SD_RES_NO_VDI;
}

static struct fake_vdi *vdi_of(struct sheep *s, uint32_t vid)
{
	for (int i = 0; i < s->nr_vdis; i++)
		if (s->vdis[i].vid == vid)
			return &s->vdis[i];
	return NULL;
}

int gateway_vdi_lock(struct sheep *s, uint32_t vid, uint64_t owner)
{
	pthread_mutex_lock(&s->lock);
	struct fake_vdi *v = vdi_of(s, vid);
	int ret = SD_RES_SUCCESS;
	if (!v)
		ret = SD_RES_NO_VDI;
	else if (v->lock_owner && v->lock_owner != owner)
		ret = SD_RES_VDI_LOCKED;
	else
		v->lock_owner = owner;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_vdi_unlock(struct sheep *s, uint32_t vid, uint64_t owner)
{
	pthread_mutex_lock(&s->lock);
	struct fake_vdi *v = vdi_of(s, vid);
	int ret = SD_RES_SUCCESS;
	if (!v || v->lock_owner != owner)
		ret = SD_RES_VDI_NOT_LOCKED;
	else
		v->lock_owner = 0;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_vdi_lock_held(struct sheep *s, uint32_t vid, uint64_t owner)
{
	pthread_mutex_lock(&s->lock);
	struct fake_vdi *v = vdi_of(s, vid);
	int ret = !v ? SD_RES_NO_VDI
		     : (v->snapid || v->lock_owner == owner) ? SD_RES_SUCCESS : SD_RES_VDI_LOCKED;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int gateway_read_vdis(struct sheep *s, void *bitmap, size_t len)
{
	memset(bitmap, 0, len);
	for (int i = 0; i < s->nr_vdis; i++)
		((uint8_t *)bitmap)[s->vdis[i].vid / 8] |= (uint8_t)(1u << (s->vdis[i].vid % 8));
	return SD_RES_SUCCESS;
}

struct nbd_server **gateway_nbd_slot(struct sheep *s)
{
	return &s->nbd;
}

/* Create a VDI of size bytes; snapid/tag non-zero make it a snapshot. */
static void add_vdi(struct sheep *s, const char *name, uint32_t vid, uint64_t size,
		    uint32_t snapid, const char *tag)
{
	struct fake_vdi *v = &s->vdis[s->nr_vdis++];
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->tag, sizeof(v->tag), "%s", tag ? tag : "");
	v->snapid = snapid;
	v->vid = vid;
	struct fake_obj *o = new_obj(s, vid_to_vdi_oid(vid));
	struct sd_inode *ino = (struct sd_inode *)o->data;
	snprintf(ino->name, sizeof(ino->name), "%s", name);
	ino->vdi_size = size;
	ino->block_size_shift = OBJ_SHIFT;
	ino->vdi_id = vid;
	ino->snap_id = snapid ? snapid : 1;
	ino->snap_ctime = snapid ? 12345 : 0;
}

static uint32_t inode_entry(struct sheep *s, uint32_t vid, uint32_t idx)
{
	uint32_t e = 0;
	assert_int_equal(gateway_read_obj(s, vid_to_vdi_oid(vid), &e, 4, sd_inode_vid_offset(idx)),
			 SD_RES_SUCCESS);
	return e;
}

static struct sheep *fake;
static int nbd_port;

#define VOL_VID 0x100
#define VOL_SIZE (8ull * OBJ_SIZE)

static int setup(void **state)
{
	fake = calloc(1, sizeof(*fake));
	pthread_mutex_init(&fake->lock, NULL);
	add_vdi(fake, "vol", VOL_VID, VOL_SIZE, 0, NULL);
	add_vdi(fake, "vol", 0x0ff, VOL_SIZE, 1, "before");
	add_vdi(fake, "other", 0x200, 3 * OBJ_SIZE + 512, 0, NULL);
	add_vdi(fake, "big", 0x400, 48ull * OBJ_SIZE, 0, NULL);
	assert_int_equal(nbd_start(fake, "127.0.0.1", 0), 0);
	nbd_port = nbd_server_port(fake->nbd);
	assert_true(nbd_port > 0);
	return 0;
}

static int teardown(void **state)
{
	nbd_stop(fake);
	assert_null(fake->nbd);
	while (fake->objs) {
		struct fake_obj *o = fake->objs;
		fake->objs = o->next;
		free(o->data);
		free(o);
	}
	free(fake);
	return 0;
}

/* ---- a small NBD client ------------------------------------------------- */

struct client {
	int fd;
	uint64_t size;
	uint16_t tflags;
	uint32_t rep_type; /* last option reply type */
	char msg[512];
};

static int cl_connect(struct client *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = sd_connect("127.0.0.1", (uint16_t)nbd_port, 2000);
	assert_true(c->fd >= 0);
	sd_set_timeout(c->fd, 5000);
	uint8_t hello[18];
	assert_int_equal(sd_read_full(c->fd, hello, 18), 0);
	uint64_t m;
	memcpy(&m, hello, 8);
	assert_true(be64toh(m) == NBD_INIT_MAGIC);
	memcpy(&m, hello + 8, 8);
	assert_true(be64toh(m) == NBD_OPTS_MAGIC);
	assert_int_equal(hello[17] & 3, 3);
	uint32_t cf = htobe32(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	assert_int_equal(sd_write_full(c->fd, &cf, 4), 0);
	return 0;
}

static void cl_send_opt(struct client *c, uint32_t opt, const void *data, uint32_t len)
{
	struct nbd_opt_hdr h = {htobe64(NBD_OPTS_MAGIC), htobe32(opt), htobe32(len)};
	assert_int_equal(sd_write_full(c->fd, &h, sizeof(h)), 0);
	if (len)
		assert_int_equal(sd_write_full(c->fd, data, len), 0);
}

/* Read one option reply; payload into buf (up to cap). Returns its length. */
static uint32_t cl_read_rep(struct client *c, uint32_t opt, void *buf, uint32_t cap)
{
	struct nbd_opt_reply r;
	assert_int_equal(sd_read_full(c->fd, &r, sizeof(r)), 0);
	assert_true(be64toh(r.magic) == NBD_REP_MAGIC);
	assert_int_equal(be32toh(r.option), opt);
	c->rep_type = be32toh(r.type);
	uint32_t len = be32toh(r.length);
	assert_true(len <= cap);
	assert_int_equal(sd_read_full(c->fd, buf, len), 0);
	return len;
}

/* NBD_OPT_GO (or INFO); returns the final reply type. */
static uint32_t cl_go(struct client *c, const char *name, uint32_t opt)
{
	uint8_t buf[600];
	uint32_t n = (uint32_t)strlen(name), be = htobe32(n);
	memcpy(buf, &be, 4);
	memcpy(buf + 4, name, n);
	memset(buf + 4 + n, 0, 2);
	cl_send_opt(c, opt, buf, n + 6);
	for (;;) {
		uint8_t rep[600];
		uint32_t len = cl_read_rep(c, opt, rep, sizeof(rep));
		if (c->rep_type == NBD_REP_INFO) {
			uint16_t t;
			memcpy(&t, rep, 2);
			if (be16toh(t) == NBD_INFO_EXPORT) {
				assert_int_equal(len, 12);
				uint64_t sz;
				uint16_t fl;
				memcpy(&sz, rep + 2, 8);
				memcpy(&fl, rep + 10, 2);
				c->size = be64toh(sz);
				c->tflags = be16toh(fl);
			}
			continue;
		}
		memcpy(c->msg, rep, len);
		c->msg[len] = '\0';
		return c->rep_type;
	}
}

static void cl_open(struct client *c, const char *name)
{
	cl_connect(c);
	assert_int_equal(cl_go(c, name, NBD_OPT_GO), NBD_REP_ACK);
}

/* Open a write export that a vanished client held: the server notices the
 * close on its own time (a loaded machine may take longer than any fixed
 * sleep), so retry for up to 5 s while the lock is still held. */
static void cl_open_after_release(struct client *c, const char *name)
{
	for (int i = 0; i < 100; i++) {
		cl_connect(c);
		uint32_t rep = cl_go(c, name, NBD_OPT_GO);
		if (rep == NBD_REP_ACK)
			return;
		assert_int_equal(rep, NBD_REP_ERR_POLICY); /* the lock, nothing else */
		close(c->fd);
		usleep(50 * 1000);
	}
	fail_msg("the write lock of '%s' was not released within 5 s", name);
}

static void cl_send_req(struct client *c, uint16_t type, uint16_t flags, uint64_t handle,
			uint64_t off, uint32_t len)
{
	struct nbd_request rq = {htobe32(NBD_REQUEST_MAGIC), htobe16(flags), htobe16(type), handle,
				 htobe64(off), htobe32(len)};
	assert_int_equal(sd_write_full(c->fd, &rq, sizeof(rq)), 0);
}

/* Read a reply header; returns the error, handle in *handle. */
static uint32_t cl_read_reply(struct client *c, uint64_t *handle)
{
	struct nbd_simple_reply r;
	assert_int_equal(sd_read_full(c->fd, &r, sizeof(r)), 0);
	assert_int_equal(be32toh(r.magic), NBD_SIMPLE_REPLY_MAGIC);
	*handle = r.handle;
	return be32toh(r.error);
}

static uint32_t cl_io(struct client *c, uint16_t type, uint16_t flags, uint64_t off, uint32_t len,
		      void *buf)
{
	uint64_t h;
	cl_send_req(c, type, flags, 77, off, len);
	if (type == NBD_CMD_WRITE)
		assert_int_equal(sd_write_full(c->fd, buf, len), 0);
	uint32_t err = cl_read_reply(c, &h);
	assert_true(h == 77);
	if (type == NBD_CMD_READ && err == 0)
		assert_int_equal(sd_read_full(c->fd, buf, len), 0);
	return err;
}

static void cl_close(struct client *c)
{
	cl_send_req(c, NBD_CMD_DISC, 0, 0, 0, 0);
	char b;
	/* The server closes after DISC. */
	assert_true(read(c->fd, &b, 1) <= 0);
	close(c->fd);
}

/* The server noticed c is gone when a read on it ends. */
static bool closed_by_server(int fd)
{
	char b[64];
	ssize_t n;
	while ((n = read(fd, b, sizeof(b))) > 0)
		;
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_zero(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

/* ---- tests -------------------------------------------------------------- */

static void test_go_reports_size_and_only_flags_that_hold(void **state)
{
	struct client c;
	cl_open(&c, "vol");
	assert_true(c.size == VOL_SIZE);
	assert_true(c.tflags & NBD_FLAG_HAS_FLAGS);
	assert_true(c.tflags & NBD_FLAG_SEND_FLUSH);
	assert_true(c.tflags & NBD_FLAG_SEND_FUA);
	assert_true(c.tflags & NBD_FLAG_SEND_TRIM);
	assert_true(c.tflags & NBD_FLAG_SEND_WRITE_ZEROES);
	assert_false(c.tflags & NBD_FLAG_READ_ONLY);
	assert_false(c.tflags & NBD_FLAG_CAN_MULTI_CONN);
	cl_close(&c);

	cl_open(&c, "other");
	assert_true(c.size == 3ull * OBJ_SIZE + 512);
	cl_close(&c);
}

static void test_unwritten_reads_zero_and_unaligned_write_spanning_objects_reads_back(void **state)
{
	struct client c;
	uint32_t len = 5000;
	uint64_t off = OBJ_SIZE - 1000;
	char *w = malloc(len), *r = malloc(OBJ_SIZE);

	cl_open(&c, "vol");
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, OBJ_SIZE, r), 0);
	assert_true(all_zero(r, OBJ_SIZE));
	fill(w, len, 1);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, off, len, w), 0);
	assert_int_equal(cl_io(&c, NBD_CMD_FLUSH, 0, 0, 0, NULL), 0);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, off - 7, len + 14, r), 0);
	assert_true(all_zero(r, 7));
	assert_memory_equal(r + 7, w, len);
	assert_true(all_zero(r + 7 + len, 7));

	/* Objects 0 and 1 are allocated and recorded in the inode; 2 is not. */
	assert_int_equal(inode_entry(fake, VOL_VID, 0), VOL_VID);
	assert_int_equal(inode_entry(fake, VOL_VID, 1), VOL_VID);
	assert_int_equal(inode_entry(fake, VOL_VID, 2), 0);
	char *o = malloc(OBJ_SIZE);
	assert_int_equal(gateway_read_obj(fake, vid_to_data_oid(VOL_VID, 1), o, OBJ_SIZE, 0),
			 SD_RES_SUCCESS);
	assert_memory_equal(o, w + 1000, len - 1000);
	assert_true(all_zero(o + len - 1000, OBJ_SIZE - (len - 1000)));
	assert_int_equal(fake->double_creates, 0);
	cl_close(&c);

	/* A fresh connection (fresh inode map) reads the same bytes. */
	cl_open(&c, "vol");
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, off, len, r), 0);
	assert_memory_equal(r, w, len);
	cl_close(&c);
	free(o);
	free(w);
	free(r);
}

static void test_trim_and_write_zeroes_free_whole_objects_and_zero_partial_ranges(void **state)
{
	struct client c;
	size_t len = 4 * OBJ_SIZE;
	char *w = malloc(len), *r = malloc(len);
	uint64_t base = 4ull * OBJ_SIZE; /* objects 4..7 */

	cl_open(&c, "vol");
	fill(w, len, 2);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, base, (uint32_t)len, w), 0);
	for (uint32_t i = 4; i < 8; i++)
		assert_int_equal(inode_entry(fake, VOL_VID, i), VOL_VID);

	/* TRIM object 5 whole plus 100 bytes of 6: 5 is freed, 6 untouched. */
	assert_int_equal(cl_io(&c, NBD_CMD_TRIM, 0, base + OBJ_SIZE, OBJ_SIZE + 100, NULL), 0);
	assert_int_equal(inode_entry(fake, VOL_VID, 5), 0);
	assert_null(find_obj(fake, vid_to_data_oid(VOL_VID, 5)));
	assert_int_equal(inode_entry(fake, VOL_VID, 6), VOL_VID);

	/* WRITE_ZEROES: 300 bytes inside 4 zeroed in place; 7 whole freed. */
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE_ZEROES, 0, base + 1000, 300, NULL), 0);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE_ZEROES, 0, base + 3 * OBJ_SIZE, OBJ_SIZE, NULL), 0);
	assert_int_equal(inode_entry(fake, VOL_VID, 7), 0);
	assert_null(find_obj(fake, vid_to_data_oid(VOL_VID, 7)));
	/* NO_HOLE keeps object 6 allocated but zero. */
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE,
			       base + 2 * OBJ_SIZE, OBJ_SIZE, NULL),
			 0);
	assert_int_equal(inode_entry(fake, VOL_VID, 6), VOL_VID);

	memcpy(r, w, len);
	memset(r + 1000, 0, 300);
	memset(r + OBJ_SIZE, 0, 3 * OBJ_SIZE);
	char *got = malloc(len);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, base, (uint32_t)len, got), 0);
	assert_memory_equal(got, r, len);
	cl_close(&c);
	free(got);
	free(w);
	free(r);
}

static void test_second_writer_refused_with_message_and_readonly_attach_allowed(void **state)
{
	struct client a, b, ro;
	char buf[512] = "x";

	cl_open(&a, "other");
	cl_connect(&b);
	assert_int_equal(cl_go(&b, "other", NBD_OPT_GO), NBD_REP_ERR_POLICY);
	assert_non_null(strstr(b.msg, "locked"));
	/* INFO does not lock and still works. */
	assert_int_equal(cl_go(&b, "other", NBD_OPT_INFO), NBD_REP_ACK);
	assert_int_equal(cl_go(&b, "other:ro", NBD_OPT_GO), NBD_REP_ACK);
	assert_true(b.tflags & NBD_FLAG_READ_ONLY);
	assert_true(b.tflags & NBD_FLAG_CAN_MULTI_CONN);
	assert_false(b.tflags & NBD_FLAG_SEND_TRIM);
	assert_int_equal(cl_io(&b, NBD_CMD_WRITE, 0, 0, sizeof(buf), buf), NBD_EPERM);
	assert_int_equal(cl_io(&b, NBD_CMD_TRIM, 0, 0, 512, NULL), NBD_EPERM);

	/* The writer's data is visible to the read-only attach at once. */
	fill(buf, sizeof(buf), 3);
	assert_int_equal(cl_io(&a, NBD_CMD_WRITE, 0, 2 * OBJ_SIZE, sizeof(buf), buf), 0);
	char got[512];
	assert_int_equal(cl_io(&b, NBD_CMD_READ, 0, 2 * OBJ_SIZE, sizeof(got), got), 0);
	assert_memory_equal(got, buf, sizeof(buf));
	cl_close(&b);

	/* Disconnecting releases the lock. */
	cl_close(&a);
	usleep(100 * 1000);
	cl_open(&ro, "other");
	cl_close(&ro);
}

static void test_snapshot_exports_are_read_only_by_id_and_tag(void **state)
{
	struct client c;
	cl_open(&c, "vol@1");
	assert_true(c.tflags & NBD_FLAG_READ_ONLY);
	char buf[512] = {0};
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, 0, sizeof(buf), buf), NBD_EPERM);
	cl_close(&c);
	cl_open(&c, "vol@before");
	assert_true(c.tflags & NBD_FLAG_READ_ONLY);
	cl_close(&c);
	cl_connect(&c);
	assert_int_equal(cl_go(&c, "vol@nosuch", NBD_OPT_GO), NBD_REP_ERR_UNKNOWN);
	assert_int_equal(cl_go(&c, "nosuch", NBD_OPT_GO), NBD_REP_ERR_UNKNOWN);
	assert_non_null(strstr(c.msg, "no VDI named 'nosuch'"));
	assert_int_equal(cl_go(&c, "@x", NBD_OPT_GO), NBD_REP_ERR_INVALID);
	close(c.fd);
}

static void test_unknown_options_get_unsup_list_names_every_vdi_and_abort_is_acked(void **state)
{
	struct client c;
	char rep[600];
	cl_connect(&c);
	/* NBD_OPT_EXTENDED_HEADERS (11): not offered. */
	cl_send_opt(&c, 11, NULL, 0);
	cl_read_rep(&c, 11, rep, sizeof(rep));
	assert_int_equal(c.rep_type, NBD_REP_ERR_UNSUP);
	cl_send_opt(&c, 0x4242, "junk", 4);
	cl_read_rep(&c, 0x4242, rep, sizeof(rep));
	assert_int_equal(c.rep_type, NBD_REP_ERR_UNSUP);
	cl_send_opt(&c, NBD_OPT_STARTTLS, NULL, 0);
	cl_read_rep(&c, NBD_OPT_STARTTLS, rep, sizeof(rep));
	assert_int_equal(c.rep_type, NBD_REP_ERR_UNSUP);
	/* Malformed GO: name length beyond the option. */
	uint8_t bad[6] = {0, 0, 1, 0, 0, 0};
	cl_send_opt(&c, NBD_OPT_GO, bad, sizeof(bad));
	cl_read_rep(&c, NBD_OPT_GO, rep, sizeof(rep));
	assert_int_equal(c.rep_type, NBD_REP_ERR_INVALID);

	cl_send_opt(&c, NBD_OPT_LIST, NULL, 0);
	int seen = 0;
	for (;;) {
		uint32_t len = cl_read_rep(&c, NBD_OPT_LIST, rep, sizeof(rep) - 1);
		if (c.rep_type == NBD_REP_ACK)
			break;
		assert_int_equal(c.rep_type, NBD_REP_SERVER);
		rep[len] = '\0';
		if (!strcmp(rep + 4, "vol"))
			seen |= 1;
		if (!strcmp(rep + 4, "vol@1"))
			seen |= 2;
		if (!strcmp(rep + 4, "other"))
			seen |= 4;
	}
	assert_int_equal(seen, 7);
	/* Negotiation still works after all that. */
	assert_int_equal(cl_go(&c, "vol", NBD_OPT_INFO), NBD_REP_ACK);
	cl_send_opt(&c, NBD_OPT_ABORT, NULL, 0);
	cl_read_rep(&c, NBD_OPT_ABORT, rep, sizeof(rep));
	assert_int_equal(c.rep_type, NBD_REP_ACK);
	assert_true(closed_by_server(c.fd));
	close(c.fd);
}

static void expect_closed_after(const void *bytes, size_t len, bool after_hello)
{
	int fd = sd_connect("127.0.0.1", (uint16_t)nbd_port, 2000);
	assert_true(fd >= 0);
	sd_set_timeout(fd, 5000);
	if (after_hello) {
		uint8_t hello[18];
		assert_int_equal(sd_read_full(fd, hello, 18), 0);
	}
	if (len)
		assert_int_equal(sd_write_full(fd, bytes, len), 0);
	assert_true(closed_by_server(fd));
	close(fd);
}

static void test_garbage_handshakes_are_closed_and_the_server_keeps_serving(void **state)
{
	char junk[256];
	fill(junk, sizeof(junk), 9);
	expect_closed_after(junk, sizeof(junk), false);
	uint32_t badflags = htobe32(0x80);
	expect_closed_after(&badflags, 4, true);
	/* Good flags, then an option with a bad magic. */
	uint8_t b[4 + 16] = {0, 0, 0, 1};
	memcpy(b + 4, "NOTMAGIC", 8);
	expect_closed_after(b, sizeof(b), true);
	/* An option claiming 1 GiB of data. */
	struct nbd_opt_hdr h = {htobe64(NBD_OPTS_MAGIC), htobe32(NBD_OPT_GO), htobe32(1u << 30)};
	memcpy(b + 4, &h, 16);
	expect_closed_after(b, sizeof(b), true);
	/* EXPORT_NAME of an unknown export: no error reply exists, so close. */
	struct client c;
	cl_connect(&c);
	cl_send_opt(&c, NBD_OPT_EXPORT_NAME, "nosuch", 6);
	assert_true(closed_by_server(c.fd));
	close(c.fd);
	/* EXPORT_NAME of a good one works (old clients). */
	cl_connect(&c);
	cl_send_opt(&c, NBD_OPT_EXPORT_NAME, "vol", 3);
	uint8_t ans[10];
	assert_int_equal(sd_read_full(c.fd, ans, 10), 0);
	uint64_t sz;
	memcpy(&sz, ans, 8);
	assert_true(be64toh(sz) == VOL_SIZE);
	cl_close(&c);

	cl_open(&c, "vol");
	cl_close(&c);
}

static void test_out_of_range_oversize_and_unknown_requests_get_errors(void **state)
{
	struct client c;
	char buf[4096];
	char before[4096], after[4096];

	cl_open(&c, "other"); /* 3 objects + 512 bytes */
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, sizeof(before), before), 0);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, c.size - 100, 200, buf), NBD_EINVAL);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, UINT64_MAX - 10, 100, buf), NBD_EINVAL);
	fill(buf, sizeof(buf), 4);
	/* Out-of-range write: the payload is consumed, ENOSPC, nothing written. */
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, c.size - 100, sizeof(buf), buf), NBD_ENOSPC);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE_ZEROES, 0, c.size, 1, NULL), NBD_ENOSPC);
	assert_int_equal(cl_io(&c, NBD_CMD_TRIM, 0, c.size + 1, 1, NULL), NBD_EINVAL);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, NBD_MAX_REQUEST + 1, buf), NBD_EINVAL);
	assert_int_equal(cl_io(&c, NBD_CMD_CACHE, 0, 0, 512, NULL), NBD_EINVAL);
	assert_int_equal(cl_io(&c, 99, 0, 0, 512, NULL), NBD_EINVAL);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0x40, 0, 512, buf), NBD_EINVAL);
	/* Still serving on the same connection, data unchanged. */
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, sizeof(after), after), 0);
	assert_memory_equal(before, after, sizeof(before));

	/* An oversize write gets EINVAL and the connection is closed. */
	uint64_t h;
	cl_send_req(&c, NBD_CMD_WRITE, 0, 5, 0, NBD_MAX_REQUEST + 1);
	assert_int_equal(cl_read_reply(&c, &h), NBD_EINVAL);
	assert_true(closed_by_server(c.fd));
	close(c.fd);

	/* A bad request magic closes too. */
	cl_open(&c, "other");
	uint32_t junk[7] = {0xdeadbeef};
	assert_int_equal(sd_write_full(c.fd, junk, sizeof(junk)), 0);
	assert_true(closed_by_server(c.fd));
	close(c.fd);
	usleep(100 * 1000);

	cl_open(&c, "other");
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, sizeof(after), after), 0);
	assert_memory_equal(before, after, sizeof(before));
	cl_close(&c);
}

static void test_client_vanishing_mid_write_changes_nothing_and_releases_the_lock(void **state)
{
	struct client c;
	char before[8192], after[8192], w[8192];

	cl_open(&c, "other");
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, OBJ_SIZE, sizeof(before), before), 0);
	cl_send_req(&c, NBD_CMD_WRITE, 0, 1, OBJ_SIZE, sizeof(w));
	fill(w, sizeof(w), 5);
	assert_int_equal(sd_write_full(c.fd, w, sizeof(w) / 2), 0);
	close(c.fd);

	cl_open_after_release(&c, "other"); /* the lock is free again */
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, OBJ_SIZE, sizeof(after), after), 0);
	assert_memory_equal(before, after, sizeof(before));
	/* Vanish with reads in flight: replies go nowhere, the server lives. */
	for (int i = 0; i < 8; i++)
		cl_send_req(&c, NBD_CMD_READ, 0, i, 0, OBJ_SIZE);
	close(c.fd);
	cl_open_after_release(&c, "other");
	cl_close(&c);
}

static void test_requests_on_one_connection_are_served_in_parallel(void **state)
{
	struct client c;
	char *buf = malloc(4096);
	int n = 8;

	cl_open(&c, "vol");
	for (int i = 0; i < n; i++) {
		fill(buf, 4096, 10 + i);
		assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, (uint64_t)i * OBJ_SIZE, 4096, buf), 0);
	}
	fake->data_read_delay_ms = 200;
	uint64_t t0 = sd_now_ns();
	for (int i = 0; i < n; i++)
		cl_send_req(&c, NBD_CMD_READ, 0, 1000 + i, (uint64_t)i * OBJ_SIZE, 4096);
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		uint64_t h;
		assert_int_equal(cl_read_reply(&c, &h), 0);
		assert_true(h >= 1000 && h < 1000u + n);
		assert_int_equal(sd_read_full(c.fd, buf, 4096), 0);
		char want[4096];
		fill(want, 4096, 10 + (unsigned)(h - 1000));
		assert_memory_equal(buf, want, 4096);
		seen |= 1u << (h - 1000);
	}
	uint64_t ms = (sd_now_ns() - t0) / 1000000;
	fake->data_read_delay_ms = 0;
	assert_int_equal(seen, (1u << n) - 1);
	/* Serially this is 1600 ms; in parallel about 200. */
	assert_true(ms < 1000);
	cl_close(&c);
	free(buf);
}

static void test_write_to_inherited_object_copies_it_and_leaves_the_parent_alone(void **state)
{
	/* "child" inherits object 0 from the "vol@1" snapshot (vid 0xff). */
	char *parent = malloc(OBJ_SIZE), *got = malloc(OBJ_SIZE);
	fill(parent, OBJ_SIZE, 6);
	assert_int_equal(gateway_write_obj(fake, vid_to_data_oid(0x0ff, 0), parent, OBJ_SIZE, 0, true),
			 SD_RES_SUCCESS);
	add_vdi(fake, "child", 0x300, 2 * OBJ_SIZE, 0, NULL);
	uint32_t pv = 0x0ff;
	gateway_write_obj(fake, vid_to_vdi_oid(0x300), &pv, 4, sd_inode_vid_offset(0), false);

	struct client c;
	cl_open(&c, "child");
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, OBJ_SIZE, got), 0);
	assert_memory_equal(got, parent, OBJ_SIZE);
	char w[1000];
	fill(w, sizeof(w), 7);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, 5000, sizeof(w), w), 0);
	assert_int_equal(inode_entry(fake, 0x300, 0), 0x300);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, 0, OBJ_SIZE, got), 0);
	assert_memory_equal(got, parent, 5000);
	assert_memory_equal(got + 5000, w, sizeof(w));
	assert_memory_equal(got + 6000, parent + 6000, OBJ_SIZE - 6000);
	/* The snapshot's object is untouched; trimming the child only unlinks. */
	assert_int_equal(gateway_read_obj(fake, vid_to_data_oid(0x0ff, 0), got, OBJ_SIZE, 0),
			 SD_RES_SUCCESS);
	assert_memory_equal(got, parent, OBJ_SIZE);
	cl_close(&c);
	free(parent);
	free(got);
}

static void test_copy_on_write_uses_the_holders_copy_when_it_can(void **state)
{
	char *parent = malloc(OBJ_SIZE), *got = malloc(OBJ_SIZE);
	fill(parent, OBJ_SIZE, 9);
	assert_int_equal(gateway_write_obj(fake, vid_to_data_oid(0x0fe, 1), parent, OBJ_SIZE, 0, true),
			 SD_RES_SUCCESS);
	add_vdi(fake, "child2", 0x301, 2 * OBJ_SIZE, 0, NULL);
	uint32_t pv = 0x0fe;
	gateway_write_obj(fake, vid_to_vdi_oid(0x301), &pv, 4, sd_inode_vid_offset(1), false);
	fake->copy_local = true;
	fake->local_copies = 0;
	struct client c;
	cl_open(&c, "child2");
	char w[4096];
	fill(w, sizeof(w), 8);
	assert_int_equal(cl_io(&c, NBD_CMD_WRITE, 0, OBJ_SIZE + 8192, sizeof(w), w), 0);
	fake->copy_local = false;
	assert_int_equal(fake->local_copies, 1);
	assert_int_equal(inode_entry(fake, 0x301, 1), 0x301);
	assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, OBJ_SIZE, OBJ_SIZE, got), 0);
	assert_memory_equal(got, parent, 8192);
	assert_memory_equal(got + 8192, w, sizeof(w));
	assert_memory_equal(got + 8192 + sizeof(w), parent + 8192 + sizeof(w),
			    OBJ_SIZE - 8192 - sizeof(w));
	assert_int_equal(gateway_read_obj(fake, vid_to_data_oid(0x0fe, 1), got, OBJ_SIZE, 0),
			 SD_RES_SUCCESS);
	assert_memory_equal(got, parent, OBJ_SIZE);
	cl_close(&c);
	free(parent);
	free(got);
}

/* Real clients against the same server, when installed. */
static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_qemu_io_and_nbdinfo_work_against_the_export(void **state)
{
	char cmd[1024];
	if (run("command -v qemu-io >/dev/null && command -v nbdinfo >/dev/null") != 0) {
		skip();
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "qemu-io -f raw -c 'write -P 0xab 1000 70000' -c 'read -P 0xab 1000 70000' "
		 "-c 'read -P 0 71000 1000' -c 'write -z 0 1048576' -c 'read -P 0 0 1048576' "
		 "nbd://127.0.0.1:%d/other >/dev/null",
		 nbd_port);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "nbdinfo nbd://127.0.0.1:%d/other | grep -q 'export-size: %llu'", nbd_port,
		 3ull * OBJ_SIZE + 512);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "nbdinfo --list nbd://127.0.0.1:%d | grep -q 'export=\"vol@1\"'",
		 nbd_port);
	assert_int_equal(run(cmd), 0);
}

static void test_fio_nbdcopy_and_a_misbehaving_client_against_the_export(void **state)
{
	char cmd[2048];
	const char *top = getenv("SD_TOP") ? getenv("SD_TOP") : ".";
	if (run("command -v fio >/dev/null && fio --enghelp=nbd >/dev/null 2>&1 && "
		"command -v nbdcopy >/dev/null && command -v python3 >/dev/null") != 0) {
		skip();
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "fio --name=v --ioengine=nbd --uri=nbd://127.0.0.1:%d/big --rw=randwrite "
		 "--bsrange=4k-128k --size=40M --iodepth=16 --verify=crc32c --verify_fatal=1 --verify_state_save=0 "
		 "--output=/dev/null >/dev/null 2>&1",
		 nbd_port);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "set -e; d=$(mktemp -d); head -c 30000000 /dev/urandom >$d/a; "
		 "nbdcopy $d/a nbd://127.0.0.1:%d/big; nbdcopy nbd://127.0.0.1:%d/big:ro $d/b; "
		 "cmp -n 30000000 $d/a $d/b; rm -rf $d",
		 nbd_port, nbd_port);
	assert_int_equal(run(cmd), 0);
	static const char *cases[] = {"garbage",	  "bad-flags",	       "bad-opt-magic",
				      "huge-opt",	  "unknown-opts",      "bad-go",
				      "bad-requests",	  "vanish-mid-write",  "vanish-mid-header",
				      "vanish-in-handshake", "bad-magic"};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(cmd, sizeof(cmd), "python3 %s/tests/func/nbd_badclient.py 127.0.0.1 %d big %s >/dev/null",
			 top, nbd_port, cases[i]);
		assert_int_equal(run(cmd), 0);
	}
	usleep(200 * 1000);
	/* After all that, the first 30 MB still hold what nbdcopy put there:
	 * compare a connection's read with the object store directly. */
	struct client c;
	cl_open(&c, "big");
	char *a = malloc(OBJ_SIZE), *b = malloc(OBJ_SIZE);
	for (uint32_t i = 0; i < 28; i++) {
		assert_int_equal(cl_io(&c, NBD_CMD_READ, 0, (uint64_t)i * OBJ_SIZE, OBJ_SIZE, a), 0);
		assert_int_equal(gateway_read_obj(fake, vid_to_data_oid(0x400, i), b, OBJ_SIZE, 0),
				 SD_RES_SUCCESS);
		assert_memory_equal(a, b, OBJ_SIZE);
	}
	cl_close(&c);
	free(a);
	free(b);
	assert_int_equal(fake->double_creates, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_go_reports_size_and_only_flags_that_hold),
		cmocka_unit_test(test_unwritten_reads_zero_and_unaligned_write_spanning_objects_reads_back),
		cmocka_unit_test(test_trim_and_write_zeroes_free_whole_objects_and_zero_partial_ranges),
		cmocka_unit_test(test_second_writer_refused_with_message_and_readonly_attach_allowed),
		cmocka_unit_test(test_snapshot_exports_are_read_only_by_id_and_tag),
		cmocka_unit_test(test_unknown_options_get_unsup_list_names_every_vdi_and_abort_is_acked),
		cmocka_unit_test(test_garbage_handshakes_are_closed_and_the_server_keeps_serving),
		cmocka_unit_test(test_out_of_range_oversize_and_unknown_requests_get_errors),
		cmocka_unit_test(test_client_vanishing_mid_write_changes_nothing_and_releases_the_lock),
		cmocka_unit_test(test_requests_on_one_connection_are_served_in_parallel),
		cmocka_unit_test(test_write_to_inherited_object_copies_it_and_leaves_the_parent_alone),
		cmocka_unit_test(test_copy_on_write_uses_the_holders_copy_when_it_can),
		cmocka_unit_test(test_qemu_io_and_nbdinfo_work_against_the_export),
		cmocka_unit_test(test_fio_nbdcopy_and_a_misbehaving_client_against_the_export),
	};
	cmocka_set_message_output(CM_OUTPUT_TAP);
	sd_log_open(NULL, SD_LOG_WARNING, "test_nbd");
	return cmocka_run_group_tests(tests, setup, teardown);
}
