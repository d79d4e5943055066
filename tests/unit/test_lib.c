/* test_lib.c - unit tests of lib/: header layout, VDI ids, crc32c, sizes, framed I/O, dir streams, the event loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "lib/crc.h"
#include "lib/event.h"
#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_proto.h"
#include "lib/sd_wire.h"
#include "lib/util.h"

static void test_vid_of_name_matches_reference_vector(void **state)
{
	(void)state;
	assert_int_equal(sd_vid_of_name("test"), 0x7c2b25);
	assert_true(vid_to_vdi_oid(0x7c2b25) == 0x807c2b2500000000ULL);
	assert_int_equal(oid_to_vid(vid_to_data_oid(0x7c2b25, 17)), 0x7c2b25);
	assert_int_equal(oid_to_idx(vid_to_data_oid(0x7c2b25, 17)), 17);
	assert_true(is_data_obj(vid_to_data_oid(1, 2)));
	assert_false(is_data_obj(vid_to_vdi_oid(1)));
}

static void test_crc32c_check_value_and_chaining(void **state)
{
	(void)state;
	const char *s = "123456789";
	assert_int_equal(sd_crc32c(0, s, 9), 0xe3069283);
	uint32_t c = sd_crc32c(0, s, 4);
	assert_int_equal(sd_crc32c(c, s + 4, 5), 0xe3069283);
	assert_int_equal(sd_crc32c(0, s, 0), 0);
}

static void test_parse_size_accepts_suffixes_rejects_junk(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(sd_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(sd_parse_size("10M", &v), 0);
	assert_true(v == 10ull << 20);
	assert_int_equal(sd_parse_size("4G", &v), 0);
	assert_true(v == 4ull << 30);
	assert_int_equal(sd_parse_size("1tb", &v), 0);
	assert_true(v == 1ull << 40);
	assert_int_equal(sd_parse_size("2KiB", &v), 0);
	assert_true(v == 2048);
	assert_int_equal(sd_parse_size("", &v), -EINVAL);
	assert_int_equal(sd_parse_size("-1", &v), -EINVAL);
	assert_int_equal(sd_parse_size("12X", &v), -EINVAL);
	assert_int_equal(sd_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(sd_parse_size("16777216T", &v), -EINVAL);
}

static void test_format_size_like_sheepdog(void **state)
{
	(void)state;
	char b[32];
	sd_format_size(0, b, sizeof(b));
	assert_string_equal(b, "0.0 MB");
	sd_format_size(20ull << 20, b, sizeof(b));
	assert_string_equal(b, "20 MB");
	sd_format_size(4ull << 30, b, sizeof(b));
	assert_string_equal(b, "4.0 GB");
	sd_format_size(100ull << 30, b, sizeof(b));
	assert_string_equal(b, "100 GB");
}

static void test_exec_round_trip_over_socketpair(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct sd_rsp canned = {.opcode = SD_OP_READ_OBJ, .id = 7, .data_length = 5};
	canned.result = SD_RES_SUCCESS;
	/* Pre-load the reply so one thread suffices. */
	assert_int_equal(sd_write_full(sv[1], &canned, sizeof(canned)), 0);
	assert_int_equal(sd_write_full(sv[1], "hello", 5), 0);
	struct sd_req req = {.proto_ver = SD_PROTO_VER, .opcode = SD_OP_READ_OBJ, .id = 7,
			     .data_length = 5};
	struct sd_rsp rsp;
	char buf[8] = {0};
	assert_int_equal(sd_exec(sv[0], &req, NULL, &rsp, buf, sizeof(buf)), 0);
	assert_int_equal(rsp.id, 7);
	assert_memory_equal(buf, "hello", 5);
	struct sd_req echoed;
	assert_int_equal(sd_read_full(sv[1], &echoed, sizeof(echoed)), 0);
	assert_memory_equal(&echoed, &req, sizeof(req));
	/* A reply longer than the buffer is refused. */
	canned.data_length = 100;
	assert_int_equal(sd_write_full(sv[1], &canned, sizeof(canned)), 0);
	assert_int_equal(sd_exec(sv[0], &req, NULL, &rsp, buf, sizeof(buf)), -EMSGSIZE);
	close(sv[1]);
	/* Peer gone: a transport error, not a crash. */
	assert_true(sd_read_full(sv[0], buf, 1) < 0);
	close(sv[0]);
}

static void test_strerror_knows_every_code(void **state)
{
	(void)state;
	assert_string_equal(sd_strerror(SD_RES_NO_OBJ), "No object found");
	assert_string_equal(sd_strerror(0x7777), "Invalid error code");
}

/* Every result code of lib/sd_proto.h, with the -errno it converts to and the
 * code that -errno converts back to (written out here, not derived). */
static const struct {
	int res, err, back;
} conv_cases[] = {
	{SD_RES_SUCCESS, 0, SD_RES_SUCCESS},
	{SD_RES_UNKNOWN, -EIO, SD_RES_EIO},
	{SD_RES_NO_OBJ, -ENOENT, SD_RES_NO_OBJ},
	{SD_RES_EIO, -EIO, SD_RES_EIO},
	{SD_RES_VDI_EXIST, -EEXIST, SD_RES_VDI_EXIST},
	{SD_RES_INVALID_PARMS, -EINVAL, SD_RES_INVALID_PARMS},
	{SD_RES_SYSTEM_ERROR, -EIO, SD_RES_EIO},
	{SD_RES_VDI_LOCKED, -EBUSY, SD_RES_VDI_LOCKED},
	{SD_RES_NO_VDI, -ENOENT, SD_RES_NO_OBJ},
	{SD_RES_NO_BASE_VDI, -ENOENT, SD_RES_NO_OBJ},
	{SD_RES_VDI_READ, -EIO, SD_RES_EIO},
	{SD_RES_VDI_WRITE, -EIO, SD_RES_EIO},
	{SD_RES_BASE_VDI_READ, -EIO, SD_RES_EIO},
	{SD_RES_BASE_VDI_WRITE, -EIO, SD_RES_EIO},
	{SD_RES_NO_TAG, -ENOENT, SD_RES_NO_OBJ},
	{SD_RES_STARTUP, -EAGAIN, SD_RES_AGAIN},
	{SD_RES_VDI_NOT_LOCKED, -ENOLCK, SD_RES_VDI_NOT_LOCKED},
	{SD_RES_SHUTDOWN, -ESHUTDOWN, SD_RES_SHUTDOWN},
	{SD_RES_NO_MEM, -ENOMEM, SD_RES_NO_MEM},
	{SD_RES_FULL_VDI, -ENOSPC, SD_RES_NO_SPACE},
	{SD_RES_VER_MISMATCH, -EPROTO, SD_RES_VER_MISMATCH},
	{SD_RES_NO_SPACE, -ENOSPC, SD_RES_NO_SPACE},
	{SD_RES_WAIT_FOR_FORMAT, -EAGAIN, SD_RES_AGAIN},
	{SD_RES_WAIT_FOR_JOIN, -EAGAIN, SD_RES_AGAIN},
	{SD_RES_JOIN_FAILED, -ECONNREFUSED, SD_RES_JOIN_FAILED},
	{SD_RES_HALT, -ESHUTDOWN, SD_RES_SHUTDOWN},
	{SD_RES_READONLY, -EROFS, SD_RES_READONLY},
	{SD_RES_OLD_NODE_VER, -EPROTO, SD_RES_VER_MISMATCH},
	{SD_RES_NEW_NODE_VER, -EPROTO, SD_RES_VER_MISMATCH},
	{SD_RES_NOT_FORMATTED, -EAGAIN, SD_RES_AGAIN},
	{SD_RES_NETWORK_ERROR, -EHOSTUNREACH, SD_RES_NETWORK_ERROR},
	{SD_RES_NO_STORE, -ENODEV, SD_RES_NO_STORE},
	{SD_RES_NO_SUPPORT, -EOPNOTSUPP, SD_RES_NO_SUPPORT},
	{SD_RES_NODE_IN_RECOVERY, -EAGAIN, SD_RES_AGAIN},
	{SD_RES_KILLED, -ESHUTDOWN, SD_RES_SHUTDOWN},
	{SD_RES_AGAIN, -EAGAIN, SD_RES_AGAIN},
};

static void test_errno_converter_covers_every_code(void **state)
{
	(void)state;
	size_t n = sizeof(conv_cases) / sizeof(conv_cases[0]);
	/* The table above lists every code sd_strerror knows: count them. */
	size_t known = 0;
	for (int r = 0; r < 0x100; r++)
		if (strcmp(sd_strerror((uint32_t)r), "Invalid error code") != 0)
			known++;
	assert_int_equal(known, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(sd_res_to_errno(conv_cases[i].res), conv_cases[i].err);
		assert_int_equal(sd_errno_to_res(conv_cases[i].err), conv_cases[i].back);
	}
	/* Unknown either way: an I/O error, never success. */
	assert_int_equal(sd_res_to_errno(0x7777), -EIO);
	assert_int_equal(sd_res_to_errno(-1), -EIO);
	assert_int_equal(sd_errno_to_res(-EXDEV), SD_RES_EIO);
	assert_int_equal(sd_errno_to_res(-ESTALE), SD_RES_AGAIN);
	assert_int_equal(sd_errno_to_res(-ERANGE), SD_RES_INVALID_PARMS);
	/* Every errno maps to a failure code sd_strerror knows. */
	for (int e = 1; e < 134; e++) {
		int r = sd_errno_to_res(-e);
		assert_int_not_equal(r, SD_RES_SUCCESS);
		assert_string_not_equal(sd_strerror((uint32_t)r), "Invalid error code");
	}
}

/* Open descriptors of this process (to prove nothing leaks). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Sheepdog 1.0's 80-byte node: IPv4 in the last 4 address bytes, fields
 * at their offsets, our extras in its padding, and back again. */
static void test_wire_node_has_sheepdog_layout_and_round_trips(void **state)
{
	(void)state;
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "10.1.2.3");
	n.port = 7001;
	n.nbd_port = 10809;
	n.zone = 0x01020304;
	n.space = 0x1122334455667788ull;
	n.nr_vnodes = 128;
	n.gateway = 1;
	struct sd_wire_node w;
	sd_node_to_wire(&n, &w);
	const uint8_t *b = (const uint8_t *)&w;
	for (int i = 0; i < 36; i++)
		assert_int_equal(b[i], 0); /* rb_node and the IPv4-mapped prefix */
	assert_memory_equal(b + 36, "\x0a\x01\x02\x03", 4);
	assert_int_equal(b[40] | b[41] << 8, 7001);
	assert_int_equal(b[64] | b[65] << 8, 128);
	assert_int_equal(b[68], 0x04);
	assert_int_equal(b[72], 0x88);
	assert_int_equal(b[79], 0x11);
	struct sd_node back;
	sd_node_from_wire(&w, &back);
	assert_string_equal(back.addr, "10.1.2.3");
	assert_int_equal(back.port, 7001);
	assert_int_equal(back.nbd_port, 10809);
	assert_int_equal(back.zone, n.zone);
	assert_true(back.space == n.space);
	assert_int_equal(back.gateway, 1);
	snprintf(n.addr, sizeof(n.addr), "fd00::1");
	sd_node_to_wire(&n, &w);
	sd_node_from_wire(&w, &back);
	assert_string_equal(back.addr, "fd00::1");
	assert_int_equal(SD_EPOCH_LOG_SIZE, 491568);
}

static void test_opendirat_lists_from_the_start_and_fails_cleanly(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_lib.XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(mkdirat(dfd, "sub", 0755), 0);
	int f = openat(dfd, "sub/a", O_WRONLY | O_CREAT, 0644);
	assert_true(f >= 0);
	close(f);
	f = openat(dfd, "file", O_WRONLY | O_CREAT, 0644);
	assert_true(f >= 0);
	close(f);
	int fds = count_fds();

	/* Twice: each stream reads from the start (its own descriptor). */
	for (int pass = 0; pass < 2; pass++) {
		DIR *d = sd_opendirat(dfd, ".");
		assert_non_null(d);
		int seen = 0;
		struct dirent *de;
		while ((de = readdir(d)))
			seen |= !strcmp(de->d_name, "sub") ? 1 : !strcmp(de->d_name, "file") ? 2 : 0;
		assert_int_equal(seen, 3);
		closedir(d);
	}
	DIR *d = sd_opendirat(dfd, "sub");
	assert_non_null(d);
	int found = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		found |= !strcmp(de->d_name, "a");
	assert_true(found);
	closedir(d);

	errno = 0;
	assert_null(sd_opendirat(dfd, "missing"));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(sd_opendirat(dfd, "file"));
	assert_int_equal(errno, ENOTDIR);
	errno = 0;
	assert_null(sd_opendirat(-1, "."));
	assert_int_equal(errno, EBADF);
	assert_int_equal(count_fds(), fds);

	unlinkat(dfd, "sub/a", 0);
	unlinkat(dfd, "sub", AT_REMOVEDIR);
	unlinkat(dfd, "file", 0);
	close(dfd);
	rmdir(dir);
}

struct loop_seen {
	struct sd_loop *loop;
	uint32_t events;
	int calls;
};

static void loop_seen_fn(int fd, uint32_t events, void *arg)
{
	(void)fd;
	struct loop_seen *ls = arg;
	ls->events = events;
	ls->calls++;
	sd_loop_stop(ls->loop);
}

/* sd_loop_mod with the events an fd already has makes no epoll_ctl (a
 * connection asks after every request and reply); a change does, and the
 * loop then reports the new events. */
/* sd_once_per: the first call says yes, a repeat within the period no,
 * one after it yes again. */
static void test_once_per_says_yes_once_per_period(void **state)
{
	uint64_t last = 0;
	assert_true(sd_once_per(&last, 60000000000ull));
	assert_true(last != 0);
	for (int i = 0; i < 100; i++)
		assert_false(sd_once_per(&last, 60000000000ull));
	uint64_t short_last = 0;
	assert_true(sd_once_per(&short_last, 1000000ull));
	usleep(2000);
	assert_true(sd_once_per(&short_last, 1000000ull));
}

static void test_loop_mod_same_events_costs_no_syscall(void **state)
{
	(void)state;
	struct sd_loop *loop;
	assert_int_equal(sd_loop_create(&loop), 0);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct loop_seen ls = {.loop = loop};
	assert_int_equal(sd_loop_add(loop, sv[0], EPOLLIN | EPOLLRDHUP, loop_seen_fn, &ls), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sd_loop_mod(loop, sv[0], EPOLLIN | EPOLLRDHUP), 0);
	assert_int_equal(sd_loop_mods(loop), 0);
	/* A change reaches epoll: the socket is writable, so the loop says so. */
	assert_int_equal(sd_loop_mod(loop, sv[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP), 0);
	assert_int_equal(sd_loop_mods(loop), 1);
	assert_int_equal(sd_loop_run(loop), 0);
	assert_int_equal(ls.calls, 1);
	assert_true(ls.events & EPOLLOUT);
	/* Back to reading only: no EPOLLOUT once data is there to read. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(sd_loop_mod(loop, sv[0], EPOLLIN | EPOLLRDHUP), 0);
	assert_int_equal(sd_loop_mods(loop), 2);
	assert_int_equal(write(sv[1], "x", 1), 1);
	sd_loop_destroy(loop);
	assert_int_equal(sd_loop_create(&loop), 0);
	ls = (struct loop_seen){.loop = loop};
	assert_int_equal(sd_loop_add(loop, sv[0], EPOLLIN | EPOLLRDHUP, loop_seen_fn, &ls), 0);
	assert_int_equal(sd_loop_run(loop), 0);
	assert_int_equal(ls.calls, 1);
	assert_true(ls.events & EPOLLIN);
	assert_false(ls.events & EPOLLOUT);
	/* An fd the loop does not watch. */
	assert_int_equal(sd_loop_mod(loop, sv[1], EPOLLIN), -ENOENT);
	assert_int_equal(sd_loop_del(loop, sv[0]), 0);
	sd_loop_destroy(loop);
	close(sv[0]);
	close(sv[1]);
}

/* sd_loop_call writes the eventfd only when the queue was empty (the loop
 * reads it before it takes the queue): calls from another thread, in
 * bursts and one by one while the loop runs, each run once, in order,
 * and none waits for a wake that never comes (that would hang here). */
struct call_seen {
	struct sd_loop *loop;
	int next, total, bad;
};

static void call_seen_fn(void *arg)
{
	struct call_seen *cs = arg;
	cs->next++;
	if (cs->next == cs->total)
		sd_loop_stop(cs->loop);
}

static void *call_thread(void *arg)
{
	struct call_seen *cs = arg;
	for (int i = 0; i < cs->total; i++) {
		if (sd_loop_call(cs->loop, call_seen_fn, cs))
			cs->bad++;
		if (i % 64 == 0)
			usleep(200); /* let the loop drain and sleep now and then */
	}
	return NULL;
}

static void test_loop_call_from_threads_none_lost(void **state)
{
	(void)state;
	struct sd_loop *loop;
	assert_int_equal(sd_loop_create(&loop), 0);
	struct call_seen cs = {.loop = loop, .total = 20000};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, call_thread, &cs), 0);
	assert_int_equal(sd_loop_run(loop), 0);
	pthread_join(t, NULL);
	assert_int_equal(cs.bad, 0);
	assert_int_equal(cs.next, cs.total);
	sd_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vid_of_name_matches_reference_vector),
		cmocka_unit_test(test_crc32c_check_value_and_chaining),
		cmocka_unit_test(test_parse_size_accepts_suffixes_rejects_junk),
		cmocka_unit_test(test_format_size_like_sheepdog),
		cmocka_unit_test(test_exec_round_trip_over_socketpair),
		cmocka_unit_test(test_strerror_knows_every_code),
		cmocka_unit_test(test_errno_converter_covers_every_code),
		cmocka_unit_test(test_once_per_says_yes_once_per_period),
		cmocka_unit_test(test_opendirat_lists_from_the_start_and_fails_cleanly),
		cmocka_unit_test(test_wire_node_has_sheepdog_layout_and_round_trips),
		cmocka_unit_test(test_loop_mod_same_events_costs_no_syscall),
		cmocka_unit_test(test_loop_call_from_threads_none_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
