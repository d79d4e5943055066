/* track.c - where placement put an object at a past epoch (dog vdi track): the ring of that epoch
 * rebuilt from the epoch log, as every member has it. */
#include "sheep/cluster/group_priv.h"
#include "sheep/cluster/ring.h"

int group_epoch_holders(struct sheep *s, uint32_t x, uint64_t oid, int width, struct sd_node *out)
{
	if (width < 1 || width > 32)
		return SD_RES_INVALID_PARMS;
	uint64_t key = group_placement_key(s, oid);
	memset(out, 0, (size_t)width * sizeof(*out));
	pthread_mutex_lock(&s->cl->state_lock);
	bool logged = false;
	for (size_t i = 0; i < s->cl->nr_epochs && !logged; i++)
		logged = s->cl->epochs[i].epoch == x;
	struct sheep_ring *r = NULL;
	int ret = -ENOENT;
	if (logged) {
		ret = group_chain_ring(s, s->cl->view, x, true, NULL, 0, &r);
		if (ret == -ENOENT) /* the log lacks the chain's start: the anchor ring */
			ret = group_chain_ring(s, NULL, x, false, NULL, 0, &r);
	}
	pthread_mutex_unlock(&s->cl->state_lock);
	if (!logged)
		return SD_RES_NO_TAG;
	if (ret)
		return ret == -ENOMEM ? SD_RES_NO_MEM : SD_RES_EIO;
	if (r->ring) {
		int idx[32];
		int n = ring_locate(r->ring, key, width, idx);
		for (int i = 0; i < width && i < n; i++)
			if (idx[i] >= 0 && (size_t)idx[i] < r->nr_data)
				out[i] = r->data[idx[i]];
	}
	group_ring_put(r);
	return SD_RES_SUCCESS;
}
