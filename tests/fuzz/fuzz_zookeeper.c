/* fuzz_zookeeper.c - fuzz target: ZooKeeper driver's znode payloads fed as bytes, no ZooKeeper: the
 * base znode, queue entries applied in order, member znode data and znode names. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_drv.h"

#if HAVE_ZOOKEEPER
#include "sheep/cluster/zookeeper_priv.h"

/*
 * ZooKeeper: the first chunk is the base znode (zkq_decode_base); each
 * later chunk starts with a kind byte: 0 a queue entry applied in order
 * (zkq_apply), 1 a member znode's data (zkq_decode_memb), 2 a znode name
 * (zkq_path_seq). This sheep is member 2.
 */
static void fuzz_zookeeper(const uint8_t *data, size_t size)
{
	/* Cleared per input: a calloc of the 96 KiB member array cost an mmap
	 * and munmap per input under ASan. */
	static struct cluster_ctx the_ctx;
	static uint64_t ids[SD_MAX_NODES];
	static struct sd_node nodes[SD_MAX_NODES];
	struct cluster_ctx *c = &the_ctx;
	memset(c, 0, sizeof(*c));
	memset(ids, 0, sizeof(ids));
	memset(nodes, 0, sizeof(nodes));
	c->ids = ids;
	c->nodes = nodes;
	c->self = fuzz_node_of(1);
	c->ev.membership = fuzz_on_membership;
	c->ev.deliver = fuzz_on_deliver;
	c->ev.quorum = fuzz_on_quorum;
	c->my_id = 2;
	c->join_seq = -1;
	c->efd = c->tfd = c->epfd = -1;
	zkq_reset(c);
	const uint8_t *chunk;
	size_t len;
	int64_t seq = 1;
	if (fuzz_next_chunk(&data, &size, &chunk, &len)) {
		uint8_t *b = fuzz_dup_bytes(chunk, len);
		if (zkq_decode_base(c, (const char *)b, len) == 0)
			seq = c->pos + 1;
		free(b);
	}
	while (fuzz_next_chunk(&data, &size, &chunk, &len) && len) {
		uint8_t kind = chunk[0];
		uint8_t *b = fuzz_dup_bytes(chunk + 1, len - 1);
		if (kind == 1) {
			int64_t pos;
			zkq_decode_memb(b, len - 1, &pos);
		} else if (kind == 2) {
			char name[1024];
			size_t n = len - 1 < sizeof(name) - 1 ? len - 1 : sizeof(name) - 1;
			memcpy(name, b, n);
			name[n] = '\0';
			int64_t s;
			zkq_path_seq(name, &s);
		} else {
			zkq_apply(c, seq++, b, len - 1);
			if (c->nr > SD_MAX_NODES)
				abort();
		}
		free(b);
	}
	free(c->undo);
	free(c->older);
}
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* FUZZ_LOG set: the driver's log on stderr, to check what a seed reaches */
	sd_log_open(NULL, getenv("FUZZ_LOG") ? SD_LOG_DEBUG : SD_LOG_EMERG, "fuzz_zookeeper");
	return 0;
}

/* Input: the chunks fuzz_zookeeper() reads. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		LLVMFuzzerInitialize(NULL, NULL);
		init = true;
	}
#if HAVE_ZOOKEEPER
	fuzz_zookeeper(data, size);
#endif
	return 0;
}
