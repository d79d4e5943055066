/* census.c - the objects the cluster holds whose oid matches a mask: listed from every data
 * member's store (PEER_LIST with a filter). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sd_proto.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/gateway/gateway.h"
#include "sheep/peer/peer.h"
#include "sheep/sheep.h"

static int add_oid(uint64_t **v, size_t *n, size_t *cap, uint64_t oid)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == oid)
			return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		uint64_t *nv = realloc(*v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = oid;
	return 0;
}

int gateway_list_objs(struct sheep *s, uint64_t mask, uint64_t value, uint64_t **out, size_t *nr)
{
	*out = NULL;
	*nr = 0;
	struct sheep_view *v = sheep_view_get(s);
	if (!v)
		return SD_RES_WAIT_FOR_JOIN;
	size_t cap = 0;
	int ret = SD_RES_SUCCESS;
	for (size_t i = 0; i < v->nr_data && ret == SD_RES_SUCCESS; i++) {
		uint32_t rcap = 1u << 16;
		for (;;) {
			void *buf = malloc(rcap);
			if (!buf) {
				ret = SD_RES_NO_MEM;
				break;
			}
			struct peer_call c;
			memset(&c, 0, sizeof(c));
			c.node = &v->data[i];
			c.req.opcode = SD_OP_PEER_LIST;
			c.req.flags = SD_PEER_FLAG_ANY_EPOCH;
			c.req.epoch = v->epoch;
			c.req.obj.oid = value;
			c.req.obj.cow_oid = mask;
			c.rbuf = buf;
			c.rcap = rcap;
			peer_fanout(s, &c, 1);
			if (c.result == SD_RES_NO_SPACE && rcap < SD_MAX_PAYLOAD) {
				free(buf);
				rcap *= 2;
				continue;
			}
			if (c.result == SD_RES_SUCCESS) {
				const struct peer_frag *pf = buf;
				for (size_t k = 0;
				     k < c.rlen / sizeof(*pf) && ret == SD_RES_SUCCESS; k++)
					if ((pf[k].oid & mask) == value &&
					    add_oid(out, nr, &cap, pf[k].oid))
						ret = SD_RES_NO_MEM;
			} else {
				/* A member that cannot list is not left out silently:
				 * the caller retries (a later sweep). */
				ret = c.result;
			}
			free(buf);
			break;
		}
	}
	sheep_view_put(v);
	if (ret != SD_RES_SUCCESS) {
		free(*out);
		*out = NULL;
		*nr = 0;
	}
	return ret;
}
