/* fuzz_peer.c - fuzz target: one peer request (48-byte header, payload) served on a real store, as
 * sheep's do_peer hands it to peer_serve. */
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sd_proto.h"
#include "sheep/cluster/group_priv.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"
#include "sheep/store/store.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_EPOCH     5
#define FUZZ_MAX_REPLY (8u << 20) /* larger reads are left out, for speed */

static struct sheep *fs;
static char dir[] = "/dev/shm/sd-fuzz-peer-XXXXXX";

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* The store goes when the process ends. */
static void rm_store(void)
{
	store_close(fs->store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->cl = calloc(1, sizeof(*fs->cl))) || !mkdtemp(dir))
		abort();
	pthread_mutex_init(&fs->cl->state_lock, NULL);
	fs->cl->synced = true;
	fs->cl->epoch = FUZZ_EPOCH;
	if (store_open(dir, true, &fs->store))
		abort();
	atexit(rm_store);
	return 0;
}

/*
 * Input: a struct sd_req, then the payload. As conn.c frames it: a
 * data_length over SD_MAX_PAYLOAD is refused before anything runs, and a
 * payload is read only for SD_FLAG_CMD_WRITE (its length is the rest of the
 * input). The epoch is this node's unless its top bit is set, so most
 * inputs reach the store.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fs)
		LLVMFuzzerInitialize(NULL, NULL);
	struct sd_req req;
	if (size < sizeof(req))
		return 0;
	memcpy(&req, data, sizeof(req));
	data += sizeof(req);
	size -= sizeof(req);
	if (!(req.epoch & 0x80000000u))
		req.epoch = FUZZ_EPOCH;
	const void *payload = NULL;
	if (req.flags & SD_FLAG_CMD_WRITE) {
		if (size > SD_MAX_PAYLOAD)
			return 0;
		req.data_length = (uint32_t)size;
		payload = size ? data : NULL;
	}
	if (req.data_length > SD_MAX_PAYLOAD)
		return 0;
	uint8_t op = req.opcode;
	bool sends = op == SD_OP_PEER_WRITE || op == SD_OP_PEER_COMMIT || op == SD_OP_PEER_COPY ||
		     op == SD_OP_PEER_COMMIT_BATCH;
	uint32_t cap = sends ? 0 : req.data_length;
	if (cap > FUZZ_MAX_REPLY)
		return 0;
	void *rbuf = cap ? malloc(cap) : NULL;
	if (cap && !rbuf)
		return 0;
	struct sd_rsp rsp;
	memset(&rsp, 0, sizeof(rsp));
	uint32_t rlen = 0;
	peer_serve(fs, &req, payload, &rsp, rbuf, &rlen);
	if (rlen > cap)
		abort(); /* a reply longer than the buffer it was written into */
	free(rbuf);
	return 0;
}
