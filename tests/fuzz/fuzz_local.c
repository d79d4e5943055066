/* fuzz_local.c - fuzz target: the local cluster driver's log records (what every member reads from
 * the shared log file) fed as bytes through lc_deliver_batch, no daemon and no file. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "sheep/cluster/local_priv.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_drv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* FUZZ_LOG set: the driver's log on stderr, to check what a seed reaches */
	sd_log_open(NULL, getenv("FUZZ_LOG") ? SD_LOG_DEBUG : SD_LOG_EMERG, "fuzz_local");
	return 0;
}

/* Selector bit 0: make each record's lsn and crc right (so mutations get
 * past those checks to the records' meaning). */
static void fixup(uint8_t *b, size_t size)
{
	uint64_t lsn = 0;
	size_t off = 0;
	while (off + sizeof(struct rec_hdr) <= size) {
		struct rec_hdr rh;
		memcpy(&rh, b + off, sizeof(rh));
		if (rh.len > CLUSTER_MAX_MSG)
			return;
		size_t sz = lc_rec_size(rh.len);
		if (off + sz > size)
			return;
		rh.lsn = lsn;
		rh.crc = 0;
		rh.crc = sd_crc32c(sd_crc32c(0, &rh, sizeof(rh)), b + off + sizeof(rh), rh.len);
		memcpy(b + off, &rh, sizeof(rh));
		lsn += sz;
		off += sz;
	}
}

/*
 * Input: a selector byte (bit 0: fix lsn and crc, bit 1: this sheep has
 * joined already), then the bytes of the log from position 0, delivered
 * batch by batch as read_log does (the rest of a record cut at the end of
 * a batch comes with the next).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	static struct cluster_ctx c;
	static struct sd_node members[SD_MAX_NODES];
	if (!init) {
		LLVMFuzzerInitialize(NULL, NULL);
		init = true;
	}
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	uint8_t *b = fuzz_dup_bytes(data + 1, size - 1);
	size--;
	if (sel & 1)
		fixup(b, size);
	memset(&c, 0, sizeof(c));
	memset(members, 0, sizeof(members));
	c.members = members;
	c.self = fuzz_node_of(1);
	c.ev.membership = fuzz_on_membership;
	c.ev.deliver = fuzz_on_deliver;
	c.ev.quorum = fuzz_on_quorum;
	c.dirfd = c.lockfd = c.logfd = c.memfd = c.inofd = c.timerfd = c.epfd = c.log_wd = -1;
	if (sel & 2) {
		members[0] = fuzz_node_of(0);
		members[1] = c.self;
		c.nr_members = 2;
		c.in_group = true;
	}
	/* As read_log: deliver, then go on from where it stopped. */
	while (c.pos < size) {
		uint64_t before = c.pos;
		if (lc_deliver_batch(&c, b + c.pos, size - c.pos) || c.pos == before)
			break;
		if (c.nr_members > SD_MAX_NODES)
			abort();
	}
	free(b);
	return 0;
}
