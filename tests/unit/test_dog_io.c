/* test_dog_io.c - dog's VDI read/write engine against an in-process object server speaking the
 * client protocol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"

/*
 * The server keeps one VDI in memory: its inode and its data objects. It
 * checks what a well-behaved client must do (no request crossing an object
 * boundary, no payload above SD_MAX_PAYLOAD, no WRITE_OBJ to an object that
 * was never created) and counts requests, so the tests can assert on the
 * bytes stored and on how dog got them there.
 */
#define VID	 0x7c2b25u
#define SHIFT	 20u
#define OBJ	 (1u << SHIFT)
#define VDI_SIZE (64ull << 20)
#define NR_OBJS	 (VDI_SIZE / OBJ)

struct server {
	int lfd;
	uint16_t port;
	pthread_t tid;
	pthread_mutex_t lock;
	struct sd_inode *ino;
	uint8_t *objs[NR_OBJS];
	int creates, writes, data_reads, inode_writes;
	int violations;
	uint32_t eio_idx; /* reads of this object fail with EIO (or ~0) */
	int lock_refusals; /* LOCK_VDI answers VDI_LOCKED this many times first */
	int lock_tries;
};

static struct server srv;

static int handle(struct server *s, int fd)
{
	struct sd_req req;
	if (sd_read_full(fd, &req, sizeof(req)))
		return -1;
	uint8_t *data = NULL;
	if ((req.flags & SD_FLAG_CMD_WRITE) && req.data_length) {
		if (req.data_length > SD_MAX_PAYLOAD)
			return -1;
		data = malloc(req.data_length);
		if (sd_read_full(fd, data, req.data_length)) {
			free(data);
			return -1;
		}
	}
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	rsp.proto_ver = req.proto_ver;
	rsp.opcode = req.opcode;
	rsp.id = req.id;
	uint8_t *out = NULL;
	uint32_t out_len = 0;
	uint64_t oid = req.obj.oid;
	uint32_t off = req.obj.offset, len = req.data_length;

	pthread_mutex_lock(&s->lock);
	switch (req.opcode) {
	case SD_OP_RELEASE_VDI: /* dog vdi write holds the lock while it writes */
		rsp.result = SD_RES_SUCCESS;
		break;
	case SD_OP_GET_VDI_LOCKS: /* nobody holds a lock (any holder let go) */
		rsp.result = SD_RES_SUCCESS;
		break;
	case SD_OP_LOCK_VDI:
		s->lock_tries++;
		if (s->lock_refusals > 0) {
			s->lock_refusals--;
			rsp.result = SD_RES_VDI_LOCKED;
			break;
		}
		/* fall through */
	case SD_OP_GET_VDI_INFO:
		if (data && !strcmp((char *)data, "disk")) {
			sd_rsp_vdi_id(&rsp) = VID;
			rsp.result = SD_RES_SUCCESS;
		} else {
			rsp.result = SD_RES_NO_VDI;
		}
		break;
	case SD_OP_READ_OBJ:
		if (oid == vid_to_vdi_oid(VID)) {
			if ((uint64_t)off + len > SD_INODE_SIZE) {
				s->violations++;
				rsp.result = SD_RES_INVALID_PARMS;
				break;
			}
			out = (uint8_t *)s->ino + off;
			out_len = len;
		} else {
			uint32_t idx = oid_to_idx(oid);
			if (oid_to_vid(oid) != VID || idx >= NR_OBJS || off + (uint64_t)len > OBJ) {
				s->violations++;
				rsp.result = SD_RES_INVALID_PARMS;
				break;
			}
			s->data_reads++;
			if (idx == s->eio_idx) {
				rsp.result = SD_RES_EIO;
				break;
			}
			if (!s->objs[idx]) {
				rsp.result = SD_RES_NO_OBJ;
				break;
			}
			out = s->objs[idx] + off;
			out_len = len;
		}
		rsp.result = SD_RES_SUCCESS;
		break;
	case SD_OP_CREATE_AND_WRITE_OBJ:
	case SD_OP_WRITE_OBJ:
		if (oid == vid_to_vdi_oid(VID)) {
			if ((uint64_t)off + len > SD_INODE_SIZE) {
				s->violations++;
				rsp.result = SD_RES_INVALID_PARMS;
				break;
			}
			memcpy((uint8_t *)s->ino + off, data, len);
			s->inode_writes++;
			rsp.result = SD_RES_SUCCESS;
			break;
		} else {
			uint32_t idx = oid_to_idx(oid);
			bool create = req.opcode == SD_OP_CREATE_AND_WRITE_OBJ;
			if (oid_to_vid(oid) != VID || idx >= NR_OBJS || off + (uint64_t)len > OBJ ||
			    (!create && !s->objs[idx]) || req.obj.copies != s->ino->nr_copies) {
				s->violations++;
				rsp.result = SD_RES_INVALID_PARMS;
				break;
			}
			if (create) {
				s->creates++;
				if (!s->objs[idx])
					s->objs[idx] = calloc(1, OBJ);
			} else {
				s->writes++;
			}
			memcpy(s->objs[idx] + off, data, len);
			rsp.result = SD_RES_SUCCESS;
		}
		break;
	default:
		rsp.result = SD_RES_NO_SUPPORT;
	}
	rsp.data_length = rsp.result == SD_RES_SUCCESS ? out_len : 0;
	/* Reply from a copy taken under the lock: another connection may write
	 * the object, or the next test free it, while this reply is sent. */
	uint8_t *copy = rsp.data_length ? malloc(rsp.data_length) : NULL;
	if (copy)
		memcpy(copy, out, rsp.data_length);
	pthread_mutex_unlock(&s->lock);
	free(data);
	int ret = 0;
	if (rsp.data_length && !copy)
		ret = -1;
	else if (sd_write_full(fd, &rsp, sizeof(rsp)) ||
		 (rsp.data_length && sd_write_full(fd, copy, rsp.data_length)))
		ret = -1;
	free(copy);
	return ret;
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	while (handle(&srv, fd) == 0)
		;
	close(fd);
	return NULL;
}

static void *accept_thread(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, conn_thread, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static int server_start(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.lock, NULL);
	/* An ephemeral port: never collides with a concurrent run. */
	srv.lfd = sd_listen("127.0.0.1", 0, 64);
	if (srv.lfd < 0)
		return -1;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(srv.lfd, (struct sockaddr *)&sa, &sl);
	srv.port = ntohs(sa.sin_port);
	pthread_create(&srv.tid, NULL, accept_thread, &srv);
	return 0;
}

/* A fresh, empty VDI before each test. */
static int vdi_reset(void **state)
{
	(void)state;
	pthread_mutex_lock(&srv.lock);
	free(srv.ino);
	srv.ino = calloc(1, sizeof(*srv.ino));
	strcpy(srv.ino->name, "disk");
	srv.ino->vdi_size = VDI_SIZE;
	srv.ino->vdi_id = VID;
	srv.ino->nr_copies = 6;
	srv.ino->copy_policy = 0x22;
	srv.ino->block_size_shift = SHIFT;
	for (size_t i = 0; i < NR_OBJS; i++) {
		free(srv.objs[i]);
		srv.objs[i] = NULL;
	}
	srv.creates = srv.writes = srv.data_reads = srv.inode_writes = srv.violations = 0;
	srv.eio_idx = ~0u;
	srv.lock_refusals = srv.lock_tries = 0;
	pthread_mutex_unlock(&srv.lock);
	return 0;
}

static struct dog dog_for_server(void)
{
	struct dog d;
	memset(&d, 0, sizeof(d));
	d.prog = "dog";
	d.addr = "127.0.0.1";
	d.port = srv.port;
	d.block_size_shift = -1;
	return d;
}

/* A temp file holding len bytes of buf, positioned at 0. */
static int file_with(const void *buf, size_t len)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	int fd = dup(fileno(f));
	fclose(f);
	if (len)
		assert_int_equal(sd_write_full(fd, buf, len), 0);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static uint8_t *file_bytes(int fd, size_t len)
{
	uint8_t *b = calloc(1, len + 1);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)len);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(sd_read_full(fd, b, len), 0);
	return b;
}

static void fill_random(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static void test_unaligned_write_reads_back_and_allocates_only_touched_objects(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	const uint64_t off = 3 * OBJ + 7;
	const size_t len = 10 * OBJ + 123;
	uint8_t *data = malloc(len);
	fill_random(data, len, 42);
	int in = file_with(data, len);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, off, len, true), 0);
	close(in);
	assert_int_equal(srv.violations, 0);
	/* objects 3..13 touched, each created once and pointed at by the inode */
	for (uint32_t i = 0; i < NR_OBJS; i++) {
		bool touched = i >= 3 && i <= 13;
		assert_int_equal(srv.objs[i] != NULL, touched);
		assert_int_equal(srv.ino->data_vdi_id[i], touched ? VID : 0);
	}
	assert_int_equal(srv.creates, 11);
	assert_int_equal(srv.inode_writes, 11);

	int out = file_with(NULL, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_READ, out, 0, 0, false), 0);
	uint8_t *got = file_bytes(out, VDI_SIZE);
	close(out);
	uint8_t *want = calloc(1, VDI_SIZE);
	memcpy(want + off, data, len);
	assert_memory_equal(got, want, VDI_SIZE);
	/* unallocated objects came back as zeros without being asked for */
	assert_int_equal(srv.data_reads, 11);
	free(got);
	free(want);
	free(data);
}

static void test_overwrite_uses_write_obj_and_keeps_neighbours(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	uint8_t *a = malloc(2 * OBJ), *b = malloc(1000);
	fill_random(a, 2 * OBJ, 1);
	fill_random(b, 1000, 2);
	int in = file_with(a, 2 * OBJ);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, 0, 0, false), 0);
	close(in);
	/* a length-less write stops at EOF of its input */
	assert_int_equal(srv.creates, 2);
	in = file_with(b, 1000);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, OBJ - 500, 1000, true), 0);
	close(in);
	assert_int_equal(srv.creates, 2);
	assert_int_equal(srv.writes, 2); /* split at the object boundary */
	memcpy(a + OBJ - 500, b, 1000);
	int out = file_with(NULL, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_READ, out, 0, 2 * OBJ, true), 0);
	uint8_t *got = file_bytes(out, 2 * OBJ);
	close(out);
	assert_memory_equal(got, a, 2 * OBJ);
	assert_int_equal(srv.violations, 0);
	free(got);
	free(a);
	free(b);
}

/* Another dog write held the lock when this one asked, and let go before
 * this one looked at who held it (044 failed so once): the write asks
 * again and goes on, instead of failing with "VDI is locked". */
static void test_write_asks_again_when_the_lock_holder_let_go(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	uint8_t *a = malloc(OBJ);
	fill_random(a, OBJ, 7);
	srv.lock_refusals = 2;
	int in = file_with(a, OBJ);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, 0, OBJ, true), 0);
	close(in);
	assert_int_equal(srv.lock_tries, 3);
	int out = file_with(NULL, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_READ, out, 0, OBJ, true), 0);
	uint8_t *got = file_bytes(out, OBJ);
	close(out);
	assert_memory_equal(got, a, OBJ);
	assert_int_equal(srv.violations, 0);
	free(got);
	free(a);
}

/* Sheepdog's dog: a write starting beyond the end is refused and stores
 * nothing; one running past the end stores what fits and exits 0. */
static void test_write_past_end_stops_at_end_beyond_is_refused(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	uint8_t buf[4096];
	fill_random(buf, sizeof(buf), 11);
	int in = file_with(buf, sizeof(buf));
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, VDI_SIZE + 1, 0, false),
			 DOG_EXIT_FAILURE);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, VDI_SIZE, 1, true),
			 DOG_EXIT_FAILURE);
	assert_int_equal(srv.creates + srv.writes + srv.inode_writes, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, VDI_SIZE - 100, 4096, true), 0);
	close(in);
	int out = file_with(NULL, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_READ, out, VDI_SIZE - 100, 4096, true), 0);
	assert_int_equal(lseek(out, 0, SEEK_END), 100);
	uint8_t *got = file_bytes(out, 100);
	close(out);
	assert_memory_equal(got, buf, 100);
	free(got);
	assert_int_equal(dog_vdi_io(&d, "nosuch", DOG_IO_READ, 1, 0, 0, false), DOG_EXIT_MISSING);
}

static void test_failed_read_stops_output_at_last_good_byte(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	size_t len = 8 * OBJ;
	uint8_t *data = malloc(len);
	fill_random(data, len, 7);
	int in = file_with(data, len);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_WRITE, in, 0, len, true), 0);
	close(in);
	srv.eio_idx = 5;
	int out = file_with(NULL, 0);
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_READ, out, 0, len, true), DOG_EXIT_SYSFAIL);
	off_t got_len = lseek(out, 0, SEEK_END);
	assert_true(got_len <= (off_t)(5 * OBJ));
	uint8_t *got = file_bytes(out, (size_t)got_len);
	close(out);
	assert_memory_equal(got, data, (size_t)got_len);
	free(got);
	free(data);
}

static void test_prealloc_creates_every_object_as_zeros(void **state)
{
	(void)state;
	struct dog d = dog_for_server();
	assert_int_equal(dog_vdi_io(&d, "disk", DOG_IO_ZERO, -1, 0, VDI_SIZE, true), 0);
	assert_int_equal(srv.creates, (int)NR_OBJS);
	for (uint32_t i = 0; i < NR_OBJS; i++) {
		assert_non_null(srv.objs[i]);
		assert_int_equal(srv.ino->data_vdi_id[i], VID);
	}
	assert_int_equal(srv.violations, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(
		test_unaligned_write_reads_back_and_allocates_only_touched_objects, vdi_reset),
	    cmocka_unit_test_setup(test_overwrite_uses_write_obj_and_keeps_neighbours, vdi_reset),
	    cmocka_unit_test_setup(test_write_asks_again_when_the_lock_holder_let_go, vdi_reset),
	    cmocka_unit_test_setup(test_write_past_end_stops_at_end_beyond_is_refused,
				   vdi_reset),
	    cmocka_unit_test_setup(test_failed_read_stops_output_at_last_good_byte, vdi_reset),
	    cmocka_unit_test_setup(test_prealloc_creates_every_object_as_zeros, vdi_reset),
	};
	return cmocka_run_group_tests(tests, server_start, NULL);
}
