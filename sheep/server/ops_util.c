/* ops_util.c - request payload and reply helpers shared by the op handlers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/log.h"
#include "lib/oid.h"
#include "lib/util.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/rebuild/rebuild.h"
#include "sheep/sheep.h"
#include "sheep/server/server.h"
#include "sheep/cluster/cluster.h"
#include "sheep/snap/snap.h"
#include "sheep/store/store.h"

#include "sheep/server/ops_priv.h"

/* A payload that must be a NUL-terminated name of at most 255 bytes. */
int ops_get_name(const struct request *r, size_t at, char *out, size_t cap)
{
	out[0] = '\0';
	if (!r->data || r->hdr.data_length <= at)
		return at ? 0 : -EINVAL;
	size_t avail = SD_MIN((size_t)r->hdr.data_length - at, cap);
	const char *p = (const char *)r->data + at;
	size_t n = strnlen(p, avail);
	if (n == avail)
		return -EINVAL; /* not terminated within the field */
	memcpy(out, p, n + 1);
	return 0;
}

void *ops_reply_buf(struct request *r, uint32_t len)
{
	void *b = calloc(1, len ? len : 1);
	if (b)
		r->rdata = b;
	return b;
}

uint32_t ops_current_epoch(struct sheep *s)
{
	return group_epoch(s);
}

int ops_need_ready(struct sheep *s)
{
	struct group_status st;
	group_status(s, &st);
	/* Without quorum this node may be the small side of a partition:
	 * serving I/O could diverge from the side that carries on. */
	return !st.quorate ? SD_RES_HALT
	       : !st.synced || st.waiting ? SD_RES_WAIT_FOR_JOIN
	       : !st.ctime ? SD_RES_WAIT_FOR_FORMAT
			   : 0;
}


/* Put a NUL-terminated explanation in the reply payload (dog prints it). */
void ops_reply_text(struct request *r, const char *msg)
{
	size_t n = strlen(msg) + 1;
	char *t = malloc(n);
	if (!t)
		return;
	memcpy(t, msg, n);
	if (r->rdata != r->data)
		free(r->rdata);
	r->rdata = t;
	r->rlen = (uint32_t)n;
	r->keep_rdata = true;
}

