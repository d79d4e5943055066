/* fuzz_corosync.c - fuzz target: the corosync driver's member protocol fed as bytes, no corosync:
 * CPG messages (ANNOUNCE, SYNC, USER) and confchgs as cc_handle_event takes them. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_drv.h"

#if HAVE_COROSYNC
#include "sheep/cluster/corosync_priv.h"

/*
 * Corosync: this sheep is CPG process 1/1, either pending (its ANNOUNCE
 * sent, waiting for its SYNC) or an established member alone in the
 * cluster. Each chunk is one CPG event: a kind byte (bit 0: a confchg),
 * the sender's nodeid and pid (8 bytes), then for a message its bytes,
 * for a confchg three counts (members, left, joined) and the addresses
 * (12 bytes each: nodeid, pid, reason) as far as the bytes go.
 */
static void fuzz_corosync(const uint8_t *data, size_t size, bool established)
{
	static const struct cluster_events ev = {
	    .membership = fuzz_on_membership, .deliver = fuzz_on_deliver, .quorum = fuzz_on_quorum};
	/* One context, cleared per input: a calloc of its 140 KiB cost an
	 * mmap and munmap per input under ASan. */
	static struct cluster_ctx the_ctx;
	struct cluster_ctx *ctx = &the_ctx;
	memset(ctx, 0, sizeof(*ctx));
	ctx->ev = &ev;
	ctx->self = fuzz_node_of(0);
	ctx->my_nodeid = 1;
	ctx->my_pid = 1;
	ctx->cpg_fd = ctx->quorum_fd = ctx->epfd = ctx->timerfd = ctx->holdfd = -1;
	ctx->quorate = true;
	if (established) {
		ctx->state = CC_ESTABLISHED;
		ctx->members[0].nodeid = 1;
		ctx->members[0].pid = 1;
		ctx->nodes[0] = ctx->self;
		ctx->nr = 1;
	} else {
		ctx->state = CC_PENDING;
	}
	const uint8_t *chunk;
	size_t len;
	while (fuzz_next_chunk(&data, &size, &chunk, &len) && len >= 9) {
		struct cc_event *e = calloc(1, sizeof(*e));
		if (!e)
			abort();
		memcpy(&e->nodeid, chunk + 1, 4);
		memcpy(&e->pid, chunk + 5, 4);
		const uint8_t *p = chunk + 9;
		size_t n = len - 9;
		if (chunk[0] & 1) {
			e->type = CC_EV_CONFCHG;
			size_t want[3] = {0, 0, 0};
			for (int k = 0; k < 3 && n; k++, p++, n--)
				want[k] = *p % 32;
			size_t have = n / sizeof(struct cpg_address);
			e->nr_member = want[0] < have ? want[0] : have;
			have -= e->nr_member;
			e->nr_left = want[1] < have ? want[1] : have;
			have -= e->nr_left;
			e->nr_joined = want[2] < have ? want[2] : have;
			size_t total = e->nr_member + e->nr_left + e->nr_joined;
			e->addrs = calloc(total ? total : 1, sizeof(*e->addrs));
			if (!e->addrs)
				abort();
			memcpy(e->addrs, p, total * sizeof(*e->addrs));
		} else {
			e->type = CC_EV_MSG;
			e->len = n;
			e->data = fuzz_dup_bytes(p, n);
		}
		cc_handle_event(ctx, e); /* takes e */
		if (ctx->nr > SD_MAX_NODES)
			abort();
	}
	cc_evq_clear(&ctx->buffered);
	cc_evq_clear(&ctx->rx);
	cc_members_clear(ctx);
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* FUZZ_LOG set: the driver's log on stderr, to check what a seed reaches */
	sd_log_open(NULL, getenv("FUZZ_LOG") ? SD_LOG_DEBUG : SD_LOG_EMERG, "fuzz_corosync");
	return 0;
}

/* Input: a selector byte (even: this sheep pending, odd: established),
 * then the chunks fuzz_corosync() reads. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		LLVMFuzzerInitialize(NULL, NULL);
		init = true;
	}
	if (size < 1)
		return 0;
#if HAVE_COROSYNC
	fuzz_corosync(data + 1, size - 1, data[0] & 1);
#endif
	return 0;
}
