/* test_peer.c - unit tests of the peer protocol's server side (peer_serve) over a real store: write modes under crashes and races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"
#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/peer/peer.h"
#include "sheep/cluster/group_priv.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"
#include "sheep/store/store_test.h"

#define FRAG 65536u

struct fixture {
	char dir[64];
	struct sheep *s;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/sd-peer-test-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	f->s = calloc(1, sizeof(*f->s));
	f->s->cl = calloc(1, sizeof(*f->s->cl));
	pthread_mutex_init(&f->s->cl->state_lock, NULL);
	f->s->cl->synced = true;
	f->s->cl->epoch = 3;
	if (store_open(f->dir, true, &f->s->store))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->s->store);
	pthread_mutex_destroy(&f->s->cl->state_lock);
	free(f->s->cl);
	free(f->s);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

#define REQ_ID 77

/* One peer request as it arrives off the wire (id REQ_ID), served with
 * the interim channel im (may be NULL); returns the result code. */
static int peer_raw_im(struct sheep *s, uint8_t opcode, uint16_t flags, uint32_t epoch,
		       uint64_t oid, uint8_t idx, uint32_t off, const void *payload, uint32_t plen,
		       void *rbuf, uint32_t rcap, uint32_t *rlen, const struct peer_interim *im)
{
	struct sd_req req;
	memset(&req, 0, sizeof(req));
	req.proto_ver = SD_SHEEP_PROTO_VER;
	req.id = REQ_ID;
	req.opcode = opcode;
	req.flags = flags | (payload ? SD_FLAG_CMD_WRITE : 0);
	req.epoch = epoch;
	req.data_length = payload ? plen : rcap;
	req.obj.oid = oid;
	req.obj.ec_index = idx;
	req.obj.offset = off;
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	uint32_t got = 0;
	peer_serve_ex(s, &req, payload, &rsp, rbuf, &got, im);
	if (rlen)
		*rlen = got;
	return (int)rsp.result;
}

static int peer_raw(struct sheep *s, uint8_t opcode, uint16_t flags, uint32_t epoch, uint64_t oid,
		    uint8_t idx, uint32_t off, const void *payload, uint32_t plen, void *rbuf,
		    uint32_t rcap, uint32_t *rlen)
{
	return peer_raw_im(s, opcode, flags, epoch, oid, idx, off, payload, plen, rbuf, rcap, rlen,
			   NULL);
}

/* One PEER_WRITE of [off, off+len) of buf with mode, as a gateway sends it. */
static int peer_write(struct sheep *s, uint64_t oid, uint8_t idx, uint8_t mode, uint64_t version,
		      const void *buf, uint32_t off, uint32_t len)
{
	size_t plen = sizeof(struct peer_write_hdr) + len;
	char *payload = malloc(plen);
	assert_non_null(payload);
	struct peer_write_hdr wh = {.expect_version = UINT64_MAX,
				    .new_version = version,
				    .frag_size = FRAG,
				    .nr_copies = 3,
				    .mode = mode};
	memcpy(payload, &wh, sizeof(wh));
	memcpy(payload + sizeof(wh), buf, len);
	int r = peer_raw(s, SD_OP_PEER_WRITE, 0, s->cl->epoch, oid, idx, off, payload, (uint32_t)plen,
			 NULL, 0, NULL);
	free(payload);
	return r;
}

/* A REPLACE that dies before its new fragment is in place leaves the old
 * fragment whole (remove-then-create would have lost it). */
static void test_replace_interrupted_by_a_crash_keeps_the_old_fragment(void **state)
{
	struct fixture *f = *state;
	uint64_t oid = 0x00abcd0000000007ull;
	static char oldb[FRAG], newb[FRAG], back[FRAG];
	memset(oldb, 0x5a, sizeof(oldb));
	memset(newb, 0xc3, sizeof(newb));
	assert_int_equal(peer_write(f->s, oid, 1, PEER_WRITE_CREATE, 4, oldb, 0, FRAG),
			 SD_RES_SUCCESS);
	store_test_set_crash(f->s->store, STORE_CRASH_BEFORE_RENAME);
	assert_int_not_equal(peer_write(f->s, oid, 1, PEER_WRITE_REPLACE, 9, newb, 0, FRAG),
			     SD_RES_SUCCESS);
	/* what a restart finds */
	store_close(f->s->store);
	assert_int_equal(store_open(f->dir, true, &f->s->store), 0);
	uint64_t ver = 0;
	assert_int_equal(store_read(f->s->store, oid, 1, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 4);
	assert_memory_equal(back, oldb, FRAG);
	/* and a REPLACE that completes swaps it whole */
	assert_int_equal(peer_write(f->s, oid, 1, PEER_WRITE_REPLACE, 9, newb, 0, FRAG),
			 SD_RES_SUCCESS);
	assert_int_equal(store_read(f->s->store, oid, 1, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 9);
	assert_memory_equal(back, newb, FRAG);
}

struct upsert_arg {
	struct sheep *s;
	uint64_t oid;
	char byte;
	pthread_barrier_t *bar;
	int res;
};

static void *upsert_thread(void *p)
{
	struct upsert_arg *a = p;
	char buf[4096];
	memset(buf, a->byte, sizeof(buf));
	pthread_barrier_wait(a->bar);
	a->res = peer_write(a->s, a->oid, 0, PEER_WRITE_UPSERT, 2, buf, 0, sizeof(buf));
	return NULL;
}

/* Two UPSERTs of one new fragment at once (a rewrite racing recovery):
 * both succeed and the fragment holds one of them whole. */
static void test_racing_upserts_of_a_new_fragment_both_succeed(void **state)
{
	struct fixture *f = *state;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	int failed = 0;
	for (int round = 0; round < 300; round++) {
		uint64_t oid = 0x00abcd0100000000ull + (uint64_t)round;
		struct upsert_arg a = {f->s, oid, 'a', &bar, -1}, b = {f->s, oid, 'b', &bar, -1};
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, upsert_thread, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, upsert_thread, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		failed += a.res != SD_RES_SUCCESS;
		failed += b.res != SD_RES_SUCCESS;
		char back[4096];
		uint64_t ver = 0;
		assert_int_equal(store_read(f->s->store, oid, 0, back, 0, sizeof(back), &ver), 0);
		assert_int_equal(ver, 2);
		for (size_t i = 1; i < sizeof(back); i++)
			assert_int_equal(back[i], back[0]);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(failed, 0);
}

static int prepare_write(struct sheep *s, uint32_t epoch, uint64_t oid, uint64_t expect,
			 uint64_t version, uint64_t wid, const void *buf, uint32_t off, uint32_t len)
{
	char *payload = malloc(sizeof(struct peer_write_hdr) + len);
	assert_non_null(payload);
	struct peer_write_hdr wh = {.expect_version = expect,
				    .new_version = version,
				    .frag_size = FRAG,
				    .nr_copies = 3,
				    .mode = PEER_WRITE_UPDATE,
				    .write_id = wid};
	memcpy(payload, &wh, sizeof(wh));
	memcpy(payload + sizeof(wh), buf, len);
	int r = peer_raw(s, SD_OP_PEER_WRITE, SD_PEER_FLAG_PREPARE, epoch, oid, 0, off, payload,
			 (uint32_t)(sizeof(wh) + len), NULL, 0, NULL);
	free(payload);
	return r;
}

static int commit_write(struct sheep *s, uint32_t epoch, uint64_t oid, uint64_t version,
			uint64_t wid, bool abort)
{
	struct peer_commit pc = {.new_version = version, .write_id = wid, .abort = abort};
	return peer_raw(s, SD_OP_PEER_COMMIT, 0, epoch, oid, 0, 0, &pc, sizeof(pc), NULL, 0, NULL);
}

/* Prepare, probe, commit as the gateway's two-phase write does: nothing
 * changes before the commit; a commit is taken under any epoch, a prepare
 * only under the holder's; bad two-phase requests are refused. */
static void test_two_phase_write_over_the_peer_protocol(void **state)
{
	struct fixture *f = *state;
	uint64_t oid = 0x00abcd0200000001ull;
	static char base[FRAG], patch[4096], back[FRAG];
	memset(base, 0x11, sizeof(base));
	memset(patch, 0x77, sizeof(patch));
	assert_int_equal(peer_write(f->s, oid, 0, PEER_WRITE_CREATE, 5, base, 0, FRAG),
			 SD_RES_SUCCESS);
	/* Under an older epoch a prepare is refused; under ours it is kept. */
	assert_int_equal(prepare_write(f->s, 2, oid, 5, 6, 0x1234, patch, 8192, 4096),
			 SD_RES_OLD_NODE_VER);
	assert_int_equal(prepare_write(f->s, 3, oid, 4, 6, 0x1234, patch, 8192, 4096),
			 SD_RES_AGAIN); /* expects a version it does not have */
	assert_int_equal(prepare_write(f->s, 3, oid, 5, 6, 0x1234, patch, 8192, 4096),
			 SD_RES_SUCCESS);
	uint64_t ver = 0;
	assert_int_equal(store_read(f->s->store, oid, 0, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 5);
	assert_memory_equal(back, base, FRAG);
	struct peer_gen g;
	uint32_t rlen = 0;
	assert_int_equal(peer_raw(f->s, SD_OP_PEER_GEN, 0, 3, oid, 0, 0, NULL, 0, &g, sizeof(g),
				  &rlen),
			 SD_RES_SUCCESS);
	assert_int_equal(rlen, sizeof(g));
	assert_true(g.has_frag && g.has_pend);
	assert_int_equal(g.version, 5);
	assert_int_equal(g.pend_version, 6);
	assert_int_equal(g.pend_id, 0x1234);
	/* Another write cannot take the slot while this one is young. */
	assert_int_equal(prepare_write(f->s, 3, oid, 5, 6, 0x9999, patch, 0, 4096), SD_RES_AGAIN);
	/* The commit comes under a later epoch: still applied, once. */
	f->s->cl->epoch = 4;
	assert_int_equal(commit_write(f->s, 3, oid, 6, 0x1234, false), SD_RES_SUCCESS);
	assert_int_equal(commit_write(f->s, 9, oid, 6, 0x1234, false), SD_RES_SUCCESS);
	memcpy(base + 8192, patch, sizeof(patch));
	assert_int_equal(store_read(f->s->store, oid, 0, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 6);
	assert_memory_equal(back, base, FRAG);
	assert_int_equal(peer_raw(f->s, SD_OP_PEER_GEN, 0, 4, oid, 0, 0, NULL, 0, &g, sizeof(g),
				  &rlen),
			 SD_RES_SUCCESS);
	assert_true(g.has_frag && !g.has_pend);
	assert_int_equal(g.write_id, 0x1234);
	/* An aborted write never applies. */
	assert_int_equal(prepare_write(f->s, 4, oid, 6, 7, 0x55, patch, 0, 4096), SD_RES_SUCCESS);
	assert_int_equal(commit_write(f->s, 4, oid, 7, 0x55, true), SD_RES_SUCCESS);
	assert_int_equal(commit_write(f->s, 4, oid, 7, 0x55, false), SD_RES_NO_OBJ);
	assert_int_equal(store_read(f->s->store, oid, 0, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 6);
	assert_memory_equal(back, base, FRAG);
	/* Bad input: no write id, short commit payload, commit without one,
	 * a probe with no room for its answer. Nothing changes. */
	assert_int_equal(prepare_write(f->s, 4, oid, 6, 7, 0, patch, 0, 4096),
			 SD_RES_INVALID_PARMS);
	char shortp[4] = {0};
	assert_int_equal(peer_raw(f->s, SD_OP_PEER_COMMIT, 0, 4, oid, 0, 0, shortp, sizeof(shortp),
				  NULL, 0, NULL),
			 SD_RES_INVALID_PARMS);
	assert_int_equal(peer_raw(f->s, SD_OP_PEER_COMMIT, 0, 4, oid, 0, 0, NULL, 0, NULL, 64, NULL),
			 SD_RES_INVALID_PARMS);
	char tiny[8];
	assert_int_equal(peer_raw(f->s, SD_OP_PEER_GEN, 0, 4, oid, 0, 0, NULL, 0, tiny,
				  sizeof(tiny), NULL),
			 SD_RES_INVALID_PARMS);
	assert_int_equal(store_read(f->s->store, oid, 0, back, 0, FRAG, &ver), 0);
	assert_int_equal(ver, 6);
	assert_memory_equal(back, base, FRAG);
}

/* A sole read (SD_PEER_FLAG_SOLE) of 4 KiB at offset 0 at epoch; returns
 * the reply (its flags, version and token) and the bytes served. */
static struct sd_rsp sole_read(struct sheep *s, uint32_t epoch, uint64_t oid, uint8_t idx,
			       void *buf, uint32_t *rlen)
{
	struct sd_req req;
	memset(&req, 0, sizeof(req));
	req.proto_ver = SD_SHEEP_PROTO_VER;
	req.opcode = SD_OP_PEER_READ;
	req.flags = SD_PEER_FLAG_SOLE;
	req.epoch = epoch;
	req.data_length = 4096;
	req.obj.oid = oid;
	req.obj.ec_index = idx;
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	peer_serve(s, &req, NULL, &rsp, buf, rlen);
	return rsp;
}

/* PEER_GEN with flags (UNMARK, MARK with token), as a gateway sends it. */
static int peer_gen_flags(struct sheep *s, uint64_t oid, uint8_t idx, uint16_t flags,
			  uint64_t token)
{
	struct sd_req req;
	memset(&req, 0, sizeof(req));
	req.proto_ver = SD_SHEEP_PROTO_VER;
	req.opcode = SD_OP_PEER_GEN;
	req.flags = flags;
	req.epoch = s->cl->epoch;
	req.data_length = sizeof(struct peer_gen);
	req.obj.oid = oid;
	req.obj.ec_index = idx;
	req.obj.cow_oid = token;
	struct peer_gen g;
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	uint32_t got = 0;
	peer_serve(s, &req, NULL, &rsp, &g, &got);
	return (int)rsp.result;
}

/* A holder serves a sole read only while it knows its copy current: after
 * a write of this epoch; not after an unmark, nor at another epoch, nor
 * after a confirmation whose token predates an unmark; again after a
 * confirmation of a token taken after the last unmark. */
static void test_sole_read_only_of_a_copy_known_current(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	assert_int_equal(peer_sole_init(s), 0);
	uint64_t oid = 0x00abcd0000000011ull;
	static char data[FRAG], back[4096];
	memset(data, 0x6b, sizeof(data));
	uint32_t rlen = 0;
	/* unknown copy: no data, a token */
	struct sd_rsp r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_int_equal(r.result, SD_RES_SUCCESS);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	/* written at this epoch: served alone */
	assert_int_equal(peer_write(s, oid, 0, PEER_WRITE_CREATE, 5, data, 0, FRAG), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 4096);
	assert_int_equal(r.obj.offset, 5);
	assert_memory_equal(back, data, 4096);
	/* a write acknowledged without it: no longer */
	assert_int_equal(peer_gen_flags(s, oid, 0, SD_PEER_FLAG_UNMARK | SD_PEER_FLAG_ANY_EPOCH, 0),
			 SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	uint64_t tok = r.obj.peer_token;
	assert_true(tok != 0);
	assert_int_equal(r.obj.offset, 5);
	/* a token taken before a later unmark confirms nothing */
	usleep(1000);
	assert_int_equal(peer_gen_flags(s, oid, 0, SD_PEER_FLAG_UNMARK | SD_PEER_FLAG_ANY_EPOCH, 0),
			 SD_RES_SUCCESS);
	assert_int_equal(peer_gen_flags(s, oid, 0, SD_PEER_FLAG_MARK, tok), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	/* a token taken after it does */
	tok = r.obj.peer_token;
	assert_int_equal(peer_gen_flags(s, oid, 0, SD_PEER_FLAG_MARK, tok + 1), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE); /* a wrong token: refused */
	tok = r.obj.peer_token;
	assert_int_equal(peer_gen_flags(s, oid, 0, SD_PEER_FLAG_MARK, tok), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, 0, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_memory_equal(back, data, 4096);
	/* a new epoch: the mark names the old one */
	s->cl->epoch = 4;
	r = sole_read(s, 4, oid, 0, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	/* the copy changed behind the mark (another version): refused */
	assert_int_equal(peer_write(s, oid, 0, PEER_WRITE_REPLACE, 7, data, 0, FRAG), SD_RES_SUCCESS);
	r = sole_read(s, 4, oid, 0, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(store_replace(s->store,
				       &(struct store_meta){.oid = oid, .idx = 0, .nr_copies = 3,
							    .frag_size = FRAG, .version = 6},
				       data, 0, FRAG),
			 0);
	r = sole_read(s, 4, oid, 0, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	peer_sole_fini(s);
}

/* A two-phase prepare of fragment idx of a 4:2 object (copy_policy 0x22):
 * whole (mode REPLACE, the whole fragment) or a range update over expect. */
static int prepare_ec(struct sheep *s, uint64_t oid, uint8_t idx, bool whole, uint64_t expect,
		      uint64_t version, uint64_t wid, uint8_t flags, const void *buf, uint32_t off,
		      uint32_t len)
{
	char *payload = malloc(sizeof(struct peer_write_hdr) + len);
	assert_non_null(payload);
	struct peer_write_hdr wh = {.expect_version = whole ? UINT64_MAX : expect,
				    .new_version = version,
				    .frag_size = FRAG,
				    .copy_policy = 0x22,
				    .nr_copies = 6,
				    .mode = whole ? PEER_WRITE_REPLACE : PEER_WRITE_UPDATE,
				    .flags = flags,
				    .write_id = wid};
	memcpy(payload, &wh, sizeof(wh));
	memcpy(payload + sizeof(wh), buf, len);
	int r = peer_raw(s, SD_OP_PEER_WRITE, SD_PEER_FLAG_PREPARE, s->cl->epoch, oid, idx, off,
			 payload, (uint32_t)(sizeof(wh) + len), NULL, 0, NULL);
	free(payload);
	return r;
}

static int commit_ec(struct sheep *s, uint32_t epoch, uint64_t oid, uint8_t idx, uint64_t version,
		     uint64_t wid)
{
	struct peer_commit pc = {.new_version = version, .write_id = wid};
	return peer_raw(s, SD_OP_PEER_COMMIT, 0, epoch, oid, idx, 0, &pc, sizeof(pc), NULL, 0, NULL);
}

/* A sole read (sole_read) that finds the fragment not known current,
 * then the probing read's confirmation of its token: served afterwards. */
static void confirm_sole(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version)
{
	char back[4096];
	uint32_t rlen = 0;
	struct sd_rsp r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(r.obj.offset, version);
	assert_true(r.obj.peer_token != 0);
	assert_int_equal(peer_gen_flags(s, oid, idx, SD_PEER_FLAG_MARK, r.obj.peer_token),
			 SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 4096);
}

/* A sole read of an EC data fragment is served only while its holder
 * knows the fragment current: after it committed, at this epoch, an
 * early-ack write it prepared, or once a probing read confirmed it; never
 * while a prepared write (early-ack or not) is pending on it, nor after
 * one was prepared and dropped; not after a commit of a plain two-phase
 * write (it may never become the object's generation), a commit at
 * another epoch, a commit of a write prepared before an unmark, of a
 * write replayed after a restart, nor a second commit of a write already
 * applied; not once the fragment is removed. */
static void test_sole_read_of_an_ec_fragment_only_when_known_current(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	assert_int_equal(peer_sole_init(s), 0);
	uint64_t oid = 0x00abcd0300000002ull;
	const uint8_t idx = 2; /* a data fragment of 4:2 */
	static char base[FRAG], patch[4096], back[4096];
	memset(base, 0x21, sizeof(base));
	memset(patch, 0x9d, sizeof(patch));
	uint32_t rlen = 0;
	/* a whole fragment prepared, not committed: nothing to serve, no token */
	assert_int_equal(prepare_ec(s, oid, idx, true, 0, 5, 0x501, 0, base, 0, FRAG),
			 SD_RES_SUCCESS);
	struct sd_rsp r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	/* committed (a plain two-phase write): not vouched for until confirmed */
	assert_int_equal(commit_ec(s, 3, oid, idx, 5, 0x501), SD_RES_SUCCESS);
	confirm_sole(s, oid, idx, 5);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(r.obj.offset, 5);
	assert_memory_equal(back, base, 4096);
	/* an uncommitted prepared update, early-ack or not: not served, no
	 * token; dropped, it still leaves the fragment to be confirmed again */
	for (int early = 0; early < 2; early++) {
		uint64_t wid = 0x600 + (uint64_t)early;
		assert_int_equal(prepare_ec(s, oid, idx, false, 5, 6, wid, early ? PEER_WH_EARLY : 0,
					    patch, 0, sizeof(patch)),
				 SD_RES_SUCCESS);
		r = sole_read(s, 3, oid, idx, back, &rlen);
		assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
		assert_int_equal(rlen, 0);
		assert_int_equal(r.obj.peer_token, 0);
		assert_int_equal(r.obj.offset, 5);
		struct peer_commit ab = {.new_version = 6, .write_id = wid, .abort = 1};
		assert_int_equal(peer_raw(s, SD_OP_PEER_COMMIT, 0, 3, oid, idx, 0, &ab, sizeof(ab),
					  NULL, 0, NULL),
				 SD_RES_SUCCESS);
		confirm_sole(s, oid, idx, 5);
	}
	/* an early-ack write committed at this epoch: served, the new bytes */
	assert_int_equal(prepare_ec(s, oid, idx, false, 5, 6, 0x602, PEER_WH_EARLY, patch, 0,
				    sizeof(patch)),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 6, 0x602), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(r.obj.offset, 6);
	assert_memory_equal(back, patch, 4096);
	/* ... committed under another epoch (commits are taken at any):
	 * applied, not vouched for */
	assert_int_equal(prepare_ec(s, oid, idx, false, 6, 7, 0x701, PEER_WH_EARLY, base, 0, 4096),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 2, oid, idx, 7, 0x701), SD_RES_SUCCESS);
	confirm_sole(s, oid, idx, 7);
	/* ... prepared, then a write acknowledged without this fragment
	 * unmarks it, then the commit arrives: its mark (dated at the
	 * prepare) is refused */
	assert_int_equal(prepare_ec(s, oid, idx, false, 7, 8, 0x801, PEER_WH_EARLY, patch, 0, 4096),
			 SD_RES_SUCCESS);
	usleep(1000);
	assert_int_equal(peer_gen_flags(s, oid, idx, SD_PEER_FLAG_UNMARK | SD_PEER_FLAG_ANY_EPOCH, 0),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 8, 0x801), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(r.obj.offset, 8);
	/* ... prepared after the unmark and committed: served */
	usleep(1000);
	assert_int_equal(prepare_ec(s, oid, idx, false, 8, 9, 0x901, PEER_WH_EARLY, base, 0, 4096),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 9, 0x901), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_false(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(r.obj.offset, 9);
	assert_memory_equal(back, base, 4096);
	/* ... unmarked; the same commit again (already applied) marks nothing */
	assert_int_equal(peer_gen_flags(s, oid, idx, SD_PEER_FLAG_UNMARK | SD_PEER_FLAG_ANY_EPOCH, 0),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 9, 0x901), SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	/* a plain two-phase range write committed at this epoch: not vouched for */
	usleep(1000);
	assert_int_equal(prepare_ec(s, oid, idx, false, 9, 10, 0xa01, 0, patch, 0, 4096),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 10, 0xa01), SD_RES_SUCCESS);
	confirm_sole(s, oid, idx, 10);
	/* a restart with an early-ack write prepared: replayed, committed, not
	 * vouched for until confirmed */
	assert_int_equal(prepare_ec(s, oid, idx, false, 10, 11, 0xb01, PEER_WH_EARLY, base, 0, 4096),
			 SD_RES_SUCCESS);
	peer_sole_fini(s);
	store_close(s->store);
	assert_int_equal(store_open(f->dir, true, &s->store), 0);
	assert_int_equal(peer_sole_init(s), 0);
	assert_int_equal(commit_ec(s, 3, oid, idx, 11, 0xb01), SD_RES_SUCCESS);
	confirm_sole(s, oid, idx, 11);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_memory_equal(back, base, 4096);
	/* removed: gone, and its mark with it (a fragment put back at the
	 * same version, as recovery may, is not vouched for) */
	assert_int_equal(peer_raw(s, SD_OP_PEER_REMOVE, 0, 3, oid, idx, 0, NULL, 0, NULL, 0, NULL),
			 SD_RES_SUCCESS);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	assert_int_equal(store_replace(s->store,
				       &(struct store_meta){.oid = oid, .idx = idx, .copy_policy = 0x22,
							    .nr_copies = 6, .frag_size = FRAG,
							    .version = 11},
				       patch, 0, sizeof(patch)),
			 0);
	r = sole_read(s, 3, oid, idx, back, &rlen);
	assert_true(r.obj.reserved[0] & PEER_RSP_NOT_SOLE);
	assert_int_equal(rlen, 0);
	peer_sole_fini(s);
}

/* What a holder sent as the first reply of a PEER_WH_OLD prepare. */
struct interim_log {
	int n;
	bool fail; /* the send fails */
	struct sd_rsp rsp;
	char data[4096];
	uint32_t len;
};

static bool record_interim(void *ctx, const struct sd_rsp *rsp, const void *data, uint32_t len)
{
	struct interim_log *l = ctx;
	l->n++;
	l->rsp = *rsp;
	l->len = len;
	memcpy(l->data, data, len < sizeof(l->data) ? len : sizeof(l->data));
	return !l->fail;
}

/* A range-update prepare of data fragment idx with PEER_WH_OLD (early,
 * LC), served with an interim channel (im NULL: none). */
static int prepare_wh(struct sheep *s, uint64_t oid, uint8_t idx, const struct peer_write_hdr *whp,
		      const void *buf, uint32_t off, uint32_t len, struct interim_log *log)
{
	const struct peer_write_hdr wh = *whp;
	char *payload = malloc(sizeof(wh) + len);
	assert_non_null(payload);
	memcpy(payload, &wh, sizeof(wh));
	memcpy(payload + sizeof(wh), buf, len);
	struct peer_interim im = {record_interim, log};
	int r = peer_raw_im(s, SD_OP_PEER_WRITE, SD_PEER_FLAG_PREPARE, s->cl->epoch, oid, idx, off,
			    payload, (uint32_t)(sizeof(wh) + len), NULL, 0, NULL,
			    log ? &im : NULL);
	free(payload);
	return r;
}

static int prepare_old(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t expect, uint64_t version,
		       uint64_t wid, uint64_t prev, const void *buf, uint32_t off, uint32_t len,
		       struct interim_log *log)
{
	struct peer_write_hdr wh = {.expect_version = expect,
				    .new_version = version,
				    .frag_size = FRAG,
				    .copy_policy = 0x22,
				    .nr_copies = 6,
				    .mode = PEER_WRITE_UPDATE,
				    .flags = PEER_WH_EARLY | PEER_WH_OLD | PEER_WH_LC,
				    .write_id = wid,
				    .prev_write_id = prev,
				    .lc_delta = {0, 0, 3, 3}};
	return prepare_wh(s, oid, idx, &wh, buf, off, len, log);
}

/* PEER_WH_OLD where it means nothing (a whole write, no early ack, with a
 * parity delta, no bytes, a range past the fragment): no first reply,
 * nothing prepared, the fragment unchanged. */
static void test_old_bytes_first_refused_where_it_means_nothing(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	assert_int_equal(peer_sole_init(s), 0);
	uint64_t oid = 0x00abcd0500000001ull;
	const uint8_t idx = 1;
	static char base[FRAG], p1[4096], back[4096];
	memset(base, 0x44, sizeof(base));
	memset(p1, 0xee, sizeof(p1));
	assert_int_equal(prepare_ec(s, oid, idx, true, 0, 5, 0x801, 0, base, 0, FRAG),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 5, 0x801), SD_RES_SUCCESS);
	const struct peer_write_hdr good = {.expect_version = 5,
					    .new_version = 6,
					    .frag_size = FRAG,
					    .copy_policy = 0x22,
					    .nr_copies = 6,
					    .mode = PEER_WRITE_UPDATE,
					    .flags = PEER_WH_EARLY | PEER_WH_OLD,
					    .write_id = 0x802};
	struct {
		uint8_t mode, flags;
		uint32_t off, len;
	} bad[] = {
	    {PEER_WRITE_REPLACE, PEER_WH_EARLY | PEER_WH_OLD, 0, 4096},
	    {PEER_WRITE_UPSERT, PEER_WH_EARLY | PEER_WH_OLD, 0, 4096},
	    {PEER_WRITE_UPDATE, PEER_WH_OLD, 0, 4096},
	    {PEER_WRITE_UPDATE, PEER_WH_EARLY | PEER_WH_OLD | PEER_WH_DELTA, 0, 4096},
	    {PEER_WRITE_UPDATE, PEER_WH_EARLY | PEER_WH_OLD, 0, 0},
	    {PEER_WRITE_UPDATE, PEER_WH_EARLY | PEER_WH_OLD, FRAG - 100, 4096},
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct peer_write_hdr wh = good;
		wh.mode = bad[k].mode;
		wh.flags = bad[k].flags;
		struct interim_log log = {0};
		int r = prepare_wh(s, oid, idx, &wh, p1, bad[k].off, bad[k].len, &log);
		assert_int_not_equal(r, SD_RES_SUCCESS);
		assert_int_equal(log.n, 0);
		struct store_pending pp;
		assert_int_not_equal(store_pending(s->store, oid, idx, &pp), 0);
	}
	uint32_t rlen = 0;
	uint64_t ver = 0;
	assert_int_equal(peer_raw(s, SD_OP_PEER_READ, 0, 3, oid, idx, 0, NULL, 0, back,
				  sizeof(back), &rlen),
			 SD_RES_SUCCESS);
	assert_memory_equal(back, base, sizeof(back));
	assert_int_equal(store_read(s->store, oid, idx, back, 0, 8, &ver), 0);
	assert_int_equal(ver, 5);
	peer_sole_fini(s);
}

/* PEER_WH_OLD: the holder sends the range's bytes at expect_version (with
 * the version, the fragment's record and the request's id) before it
 * prepares, and commits the coordinator's previous write first as any
 * prepare does. Without an interim channel, over a pending write, at a
 * version other than expected, or when the first reply cannot be sent,
 * it sends nothing first and prepares nothing. */
static void test_old_bytes_first(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	assert_int_equal(peer_sole_init(s), 0);
	uint64_t oid = 0x00abcd0400000001ull;
	const uint8_t idx = 2;
	static char base[FRAG], p1[4096], p2[4096], back[4096];
	memset(base, 0x31, sizeof(base));
	memset(p1, 0x5a, sizeof(p1));
	memset(p2, 0xc3, sizeof(p2));
	assert_int_equal(prepare_ec(s, oid, idx, true, 0, 5, 0x701, 0, base, 0, FRAG),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 5, 0x701), SD_RES_SUCCESS);
	struct store_pending pp;
	/* no interim channel (a pool worker, a call to itself): NO_SUPPORT */
	assert_int_equal(prepare_old(s, oid, idx, 5, 6, 0x702, 0, p1, 8192, 4096, NULL),
			 SD_RES_NO_SUPPORT);
	assert_int_not_equal(store_pending(s->store, oid, idx, &pp), 0);
	/* expecting a version the fragment is not at: no first reply */
	struct interim_log log = {0};
	assert_int_equal(prepare_old(s, oid, idx, 4, 6, 0x703, 0, p1, 8192, 4096, &log),
			 SD_RES_AGAIN);
	assert_int_equal(log.n, 0);
	assert_int_not_equal(store_pending(s->store, oid, idx, &pp), 0);
	/* the first reply cannot be sent: nothing prepared */
	log = (struct interim_log){.fail = true};
	assert_int_equal(prepare_old(s, oid, idx, 5, 6, 0x704, 0, p1, 8192, 4096, &log),
			 SD_RES_NETWORK_ERROR);
	assert_int_equal(log.n, 1);
	assert_int_not_equal(store_pending(s->store, oid, idx, &pp), 0);
	/* the old bytes first, then the prepare */
	log = (struct interim_log){0};
	assert_int_equal(prepare_old(s, oid, idx, 5, 6, 0x705, 0, p1, 8192, 4096, &log),
			 SD_RES_SUCCESS);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.rsp.result, SD_RES_SUCCESS);
	assert_int_equal(log.rsp.id, REQ_ID);
	assert_int_equal(log.rsp.opcode, SD_OP_PEER_WRITE);
	assert_true(log.rsp.obj.reserved[0] & PEER_RSP_INTERIM);
	assert_false(log.rsp.obj.reserved[0] & PEER_RSP_LC); /* the whole write made none */
	assert_int_equal(log.rsp.obj.offset, 5);
	assert_int_equal(log.rsp.data_length, 4096);
	assert_int_equal(log.len, 4096);
	assert_memory_equal(log.data, base, 4096);
	assert_int_equal(store_pending(s->store, oid, idx, &pp), 0);
	assert_int_equal(pp.write_id, 0x705);
	/* over that pending write, no first reply and nothing replaced */
	log = (struct interim_log){0};
	assert_int_equal(prepare_old(s, oid, idx, 6, 7, 0x706, 0, p2, 8192, 4096, &log),
			 SD_RES_NO_SUPPORT);
	assert_int_equal(log.n, 0);
	assert_int_equal(store_pending(s->store, oid, idx, &pp), 0);
	assert_int_equal(pp.write_id, 0x705);
	/* the next write carries the commit of that one: the old bytes it
	 * gets are that write's, with its record */
	log = (struct interim_log){0};
	assert_int_equal(prepare_old(s, oid, idx, 6, 7, 0x707, 0x705, p2, 8192, 4096, &log),
			 SD_RES_SUCCESS);
	assert_int_equal(log.n, 1);
	assert_int_equal(log.rsp.obj.offset, 6);
	assert_true(log.rsp.obj.reserved[0] & PEER_RSP_LC);
	assert_int_equal(((uint8_t *)&log.rsp)[32 + 2], 3);
	assert_memory_equal(log.data, p1, 4096);
	assert_int_equal(store_pending(s->store, oid, idx, &pp), 0);
	assert_int_equal(pp.write_id, 0x707);
	assert_int_equal(commit_ec(s, 3, oid, idx, 7, 0x707), SD_RES_SUCCESS);
	uint32_t rlen = 0;
	assert_int_equal(peer_raw(s, SD_OP_PEER_READ, 0, 3, oid, idx, 8192, NULL, 0, back,
				  sizeof(back), &rlen),
			 SD_RES_SUCCESS);
	assert_int_equal(rlen, 4096);
	assert_memory_equal(back, p2, 4096);
	peer_sole_fini(s);
}

/* A range-update prepare of oid's fragment idx (4:2, early) at epoch,
 * with n commits riding on it (nr: the count the header claims). */
static int prepare_riding(struct sheep *s, uint32_t epoch, uint64_t oid, uint8_t idx,
			  uint64_t expect, uint64_t version, uint64_t wid,
			  const struct peer_commit_ent *ride, uint32_t n, uint32_t nr, const void *buf,
			  uint32_t len)
{
	struct peer_write_hdr wh = {.expect_version = expect,
				    .new_version = version,
				    .frag_size = FRAG,
				    .copy_policy = 0x22,
				    .nr_copies = 6,
				    .mode = PEER_WRITE_UPDATE,
				    .flags = PEER_WH_EARLY,
				    .write_id = wid,
				    .nr_commits = nr};
	size_t rl = n * sizeof(*ride), plen = sizeof(wh) + rl + len;
	char *payload = malloc(plen);
	assert_non_null(payload);
	memcpy(payload, &wh, sizeof(wh));
	memcpy(payload + sizeof(wh), ride, rl);
	memcpy(payload + sizeof(wh) + rl, buf, len);
	int r = peer_raw(s, SD_OP_PEER_WRITE, SD_PEER_FLAG_PREPARE, epoch, oid, idx, 0, payload,
			 (uint32_t)plen, NULL, 0, NULL);
	free(payload);
	return r;
}

/* Fragment idx of oid at version 5, filled with base. */
static void ec_frag_at_5(struct sheep *s, uint64_t oid, uint8_t idx, const void *base)
{
	assert_int_equal(prepare_ec(s, oid, idx, true, 0, 5, 0x500 + idx, 0, base, 0, FRAG),
			 SD_RES_SUCCESS);
	assert_int_equal(commit_ec(s, 3, oid, idx, 5, 0x500 + idx), SD_RES_SUCCESS);
}

/* Is (oid, idx) at version with bytes [0, 4096) = want, nothing pending? */
static void assert_applied(struct sheep *s, uint64_t oid, uint8_t idx, uint64_t version,
			   const void *want)
{
	char back[4096];
	uint64_t v = 0;
	struct store_pending pp;
	assert_int_equal(store_read(s->store, oid, idx, back, 0, sizeof(back), &v), 0);
	assert_int_equal(v, version);
	assert_memory_equal(back, want, sizeof(back));
	assert_int_equal(store_pending(s->store, oid, idx, &pp), -ENOENT);
}

/* Commits riding on a write (whdr.nr_commits, gateway/commitq.c) are
 * applied before the write, whatever becomes of it: with a prepare that
 * succeeds, one refused for its epoch; an entry naming no pending write
 * is passed over. A count the payload cannot hold (or above
 * SD_PEER_RIDE_MAX) is refused whole: nothing applied, nothing prepared. */
static void test_commits_ride_on_a_write(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	assert_int_equal(peer_sole_init(s), 0);
	const uint64_t a = 0x00abcd0400000001ull, b = 0x00abcd0400000002ull,
		       c = 0x00abcd0400000003ull;
	static char base[FRAG], pa[4096], pb[4096], pc[4096];
	memset(base, 0x11, sizeof(base));
	memset(pa, 0xa1, sizeof(pa));
	memset(pb, 0xb2, sizeof(pb));
	memset(pc, 0xc3, sizeof(pc));
	ec_frag_at_5(s, a, 0, base);
	ec_frag_at_5(s, b, 1, base);
	ec_frag_at_5(s, c, 2, base);
	/* two early writes prepared, their commits not sent */
	assert_int_equal(prepare_ec(s, a, 0, false, 5, 6, 0xa6, PEER_WH_EARLY, pa, 0, 4096),
			 SD_RES_SUCCESS);
	assert_int_equal(prepare_ec(s, b, 1, false, 5, 6, 0xb6, PEER_WH_EARLY, pb, 0, 4096),
			 SD_RES_SUCCESS);
	struct peer_commit_ent ride[3] = {
		{.oid = a, .idx = 0, .new_version = 6, .write_id = 0xa6},
		{.oid = a, .idx = 0, .new_version = 9, .write_id = 0xdead}, /* none such */
		{.oid = b, .idx = 1, .new_version = 6, .write_id = 0xb6},
	};
	/* more than the payload holds, or above the bound: refused, nothing
	 * done */
	assert_int_equal(prepare_riding(s, 3, c, 2, 5, 6, 0xc6, ride, 1, 3, pc, 0),
			 SD_RES_INVALID_PARMS);
	assert_int_equal(prepare_riding(s, 3, c, 2, 5, 6, 0xc6, ride, 3, SD_PEER_RIDE_MAX + 1, pc,
					4096),
			 SD_RES_INVALID_PARMS);
	struct store_pending pp;
	assert_int_equal(store_pending(s->store, a, 0, &pp), 0);
	assert_int_equal(pp.write_id, 0xa6);
	assert_int_equal(store_pending(s->store, b, 1, &pp), 0);
	assert_int_equal(store_pending(s->store, c, 2, &pp), -ENOENT);
	/* refused for its epoch: the riding commits are applied all the same */
	assert_int_equal(prepare_riding(s, 2, c, 2, 5, 6, 0xc6, ride, 1, 1, pc, 4096),
			 SD_RES_OLD_NODE_VER);
	assert_applied(s, a, 0, 6, pa);
	assert_int_equal(store_pending(s->store, b, 1, &pp), 0);
	assert_int_equal(store_pending(s->store, c, 2, &pp), -ENOENT);
	/* with the prepare: the rest applied (a again, and the unknown one,
	 * pass by), then the write prepared over its data */
	assert_int_equal(prepare_riding(s, 3, c, 2, 5, 6, 0xc6, ride, 3, 3, pc, 4096),
			 SD_RES_SUCCESS);
	assert_applied(s, a, 0, 6, pa);
	assert_applied(s, b, 1, 6, pb);
	assert_int_equal(store_pending(s->store, c, 2, &pp), 0);
	assert_int_equal(pp.write_id, 0xc6);
	assert_int_equal(commit_ec(s, 3, c, 2, 6, 0xc6), SD_RES_SUCCESS);
	assert_applied(s, c, 2, 6, pc);
	peer_sole_fini(s);
}

/* Probes and reads racing the commits of one fragment: thread A prepares
 * early writes k = 1.. (bytes all k) and commits each; prepared counts
 * those prepared. */
struct racer {
	struct sheep *s;
	uint64_t oid;
	int rounds;
	int prepared; /* atomic */
	int done;     /* atomic */
};

static void *race_writer(void *arg)
{
	struct racer *r = arg;
	char buf[4096];
	for (int k = 1; k <= r->rounds; k++) {
		memset(buf, k & 0xff, sizeof(buf));
		uint64_t v = 5 + (uint64_t)k;
		if (prepare_ec(r->s, r->oid, 0, false, v - 1, v, 0x1000 + (uint64_t)k, PEER_WH_EARLY,
			       buf, 0, sizeof(buf)) != SD_RES_SUCCESS)
			break;
		__atomic_store_n(&r->prepared, k, __ATOMIC_SEQ_CST);
		struct peer_commit pc = {.new_version = v, .write_id = 0x1000 + (uint64_t)k};
		if (peer_raw(r->s, SD_OP_PEER_COMMIT, 0, 3, r->oid, 0, 0, &pc, sizeof(pc), NULL, 0,
			     NULL) != SD_RES_SUCCESS)
			break;
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Fragment 0 of oid at version 5, and thread A started on it. */
static void race_start(struct sheep *s, uint64_t oid, struct racer *r, pthread_t *t)
{
	static char base[FRAG];
	assert_int_equal(peer_sole_init(s), 0);
	*r = (struct racer){.s = s, .oid = oid, .rounds = 16000};
	ec_frag_at_5(s, oid, 0, base);
	assert_int_equal(pthread_create(t, NULL, race_writer, r), 0);
}

/* Thread A done, every write of it prepared. */
static void race_end(struct racer *r, pthread_t t)
{
	pthread_join(t, NULL);
	assert_int_equal(__atomic_load_n(&r->prepared, __ATOMIC_SEQ_CST), r->rounds);
	peer_sole_fini(r->s);
}

/* A PEER_GEN or PEER_READ of fragment 0 of oid, its reply. */
static struct sd_rsp race_ask(struct sheep *s, uint8_t opcode, uint64_t oid, void *rbuf,
			      uint32_t rcap, uint32_t *got)
{
	struct sd_req req;
	memset(&req, 0, sizeof(req));
	req.proto_ver = SD_SHEEP_PROTO_VER;
	req.opcode = opcode;
	req.epoch = 3;
	req.data_length = rcap;
	req.obj.oid = oid;
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	peer_serve(s, &req, NULL, &rsp, rbuf, got);
	return rsp;
}

/* A generation probe answers as of one moment no earlier than its start:
 * never the version from before a write prepared before it was asked with
 * that write gone from the pending table (a commit landing between the
 * look at the fragment and the look at the table made a write that had
 * reached the fragment look lost: the probing coordinator left the
 * fragment behind as stale and had it rebuilt). */
static void test_a_probe_never_misses_a_write_committed_under_it(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	struct racer r;
	pthread_t t;
	race_start(s, 0x00abcd0500000001ull, &r, &t);
	int probes = 0, bad = 0;
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		uint64_t before = 5 + (uint64_t)__atomic_load_n(&r.prepared, __ATOMIC_SEQ_CST);
		struct peer_gen g;
		uint32_t got = 0;
		struct sd_rsp rsp = race_ask(s, SD_OP_PEER_GEN, r.oid, &g, sizeof(g), &got);
		assert_int_equal(rsp.result, SD_RES_SUCCESS);
		bad += g.version < before && !(g.has_pend && g.pend_version >= before);
		probes++;
	}
	race_end(&r, t);
	assert_true(probes > 100);
	assert_int_equal(bad, 0);
}

/* A read answers the bytes of a write prepared before it was asked, or
 * says such a write is pending (PEER_RSP_EARLY, the reader then settles
 * it): never the old bytes with the write gone from the table, as when a
 * commit landed between the read and the look at the table (an
 * acknowledged write read back old). */
static void test_a_read_never_misses_a_write_committed_under_it(void **state)
{
	struct fixture *f = *state;
	struct sheep *s = f->s;
	struct racer r;
	pthread_t t;
	race_start(s, 0x00abcd0500000002ull, &r, &t);
	int reads = 0, bad = 0;
	char back[4096];
	while (!__atomic_load_n(&r.done, __ATOMIC_SEQ_CST)) {
		int before = __atomic_load_n(&r.prepared, __ATOMIC_SEQ_CST);
		uint32_t got = 0;
		struct sd_rsp rsp = race_ask(s, SD_OP_PEER_READ, r.oid, back, sizeof(back), &got);
		assert_int_equal(rsp.result, SD_RES_SUCCESS);
		assert_int_equal(got, sizeof(back));
		uint64_t v = rsp.obj.offset; /* the bytes are those of version v */
		assert_true(v >= 5);
		assert_int_equal((uint8_t)back[0], (v - 5) & 0xff);
		bad += v < 5 + (uint64_t)before && !(rsp.obj.reserved[0] & PEER_RSP_EARLY);
		reads++;
	}
	race_end(&r, t);
	assert_true(reads > 100);
	assert_int_equal(bad, 0);
}

int main(void)
{
	sd_log_set_level(SD_LOG_CRIT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replace_interrupted_by_a_crash_keeps_the_old_fragment,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_upserts_of_a_new_fragment_both_succeed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_phase_write_over_the_peer_protocol, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sole_read_only_of_a_copy_known_current, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_old_bytes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_bytes_first_refused_where_it_means_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sole_read_of_an_ec_fragment_only_when_known_current,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_commits_ride_on_a_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_probe_never_misses_a_write_committed_under_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_read_never_misses_a_write_committed_under_it,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
