/* fuzz_drv.h - what the cluster-driver fuzz targets (fuzz_corosync, fuzz_zookeeper) share: input
 * chunks, and daemon callbacks that check what a driver hands up. */
#ifndef TESTS_FUZZ_FUZZ_DRV_H
#define TESTS_FUZZ_FUZZ_DRV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sd_internal.h"

static volatile uint64_t fuzz_sink; /* keeps the reads of delivered bytes */

/* What a driver hands the daemon must be well formed whatever came in. */
static inline void fuzz_on_membership(void *arg, const struct sd_node *members, size_t nr,
				      const struct sd_node *changed, bool joined)
{
	if (nr > SD_MAX_NODES || !changed || (nr && !members))
		abort();
	for (size_t i = 0; i < nr; i++)
		if (!memchr(members[i].addr, '\0', sizeof(members[i].addr)))
			abort(); /* an address the daemon would print past its end */
	if (!memchr(changed->addr, '\0', sizeof(changed->addr)))
		abort();
}

static inline void fuzz_on_deliver(void *arg, const struct sd_node *sender, const void *msg,
				   size_t len)
{
	if (!sender || (len && !msg))
		abort();
	const uint8_t *p = msg;
	uint64_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += p[i]; /* ASan: every byte said to be there is */
	fuzz_sink += sum;
}

static inline void fuzz_on_quorum(void *arg, bool quorate)
{
}

static inline struct sd_node fuzz_node_of(int k)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "127.0.0.%d", k + 1);
	n.port = 7000;
	n.zone = (uint32_t)k;
	n.nr_vnodes = 64;
	n.space = 1ull << 40;
	n.incarnation = 1;
	return n;
}

/* The next chunk of the input: a 16-bit length, then that many bytes (cut
 * to what is left). false at the end. */
static inline bool fuzz_next_chunk(const uint8_t **data, size_t *size, const uint8_t **chunk,
				   size_t *len)
{
	if (*size < 2)
		return false;
	size_t n = (size_t)(*data)[0] | (size_t)(*data)[1] << 8;
	*data += 2;
	*size -= 2;
	if (n > *size)
		n = *size;
	*chunk = *data;
	*len = n;
	*data += n;
	*size -= n;
	return true;
}

/* Bytes copied to a buffer of their own, so ASan sees reads past them. */
static inline uint8_t *fuzz_dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		abort();
	memcpy(b, p, n);
	return b;
}

#endif
