/* copy.c - copy-on-write without moving data: each holder copies its own fragment of a snapshot object under the new object id. */
#include "sheep/gateway/gateway_priv.h"

/* The holder-local copy of gateway_copy_obj under view v; NO_SUPPORT when
 * it does not apply, *made set when some fragment of dst may exist. */
static int copy_local(struct sheep *s, struct sheep_view *v, uint64_t src, uint64_t dst, bool *made)
{
	struct gw_obj so, dob;
	int ret = gw_obj_init(s, v, src, &so);
	if (ret == SD_RES_SUCCESS)
		ret = gw_obj_init(s, v, dst, &dob);
	if (ret != SD_RES_SUCCESS)
		return ret;
	if (!so.frozen || is_vdi_obj(src) || so.width != dob.width ||
	    so.meta_policy != dob.meta_policy || so.obj_size != dob.obj_size)
		return SD_RES_NO_SUPPORT;
	for (int i = 0; i < so.width; i++)
		if (!so.holder[i] || so.holder[i] != dob.holder[i])
			return SD_RES_NO_SUPPORT;
	struct frag_state st[GW_MAX_WIDTH] = {{0}};
	ret = gw_probe(&so, st);
	if (ret != SD_RES_SUCCESS)
		return ret;
	uint64_t vmax, ver = gw_choose_version(st, so.width, so.d, &vmax);
	if (!ver || ver != vmax)
		return SD_RES_NO_SUPPORT;
	for (int i = 0; i < so.width; i++)
		if (st[i].res != SD_RES_SUCCESS || st[i].version != ver || st[i].has_pend ||
		    so.loc[i] != so.holder[i])
			return SD_RES_NO_SUPPORT; /* not every fragment current at its holder */
	struct peer_call calls[GW_MAX_WIDTH];
	uint64_t want[GW_MAX_WIDTH]; /* each fragment's own version (lastchg.c) */
	for (int i = 0; i < so.width; i++) {
		want[i] = st[i].real;
		gw_call_init(&dob, &calls[i], i, SD_OP_PEER_COPY);
		calls[i].req.obj.cow_oid = src;
		calls[i].req.flags = SD_FLAG_CMD_WRITE;
		calls[i].wbuf = &want[i];
		calls[i].wlen = sizeof(want[i]);
	}
	*made = true;
	gw_fanout(&dob, calls, so.width);
	for (int i = 0; i < so.width; i++)
		if (calls[i].result != SD_RES_SUCCESS) {
			sd_debug("%016llx: local copy of fragment %d failed: %s",
				 (unsigned long long)dst, i, sd_strerror((uint32_t)calls[i].result));
			return gw_res_is_retry(calls[i].result) ? calls[i].result : SD_RES_NO_SUPPORT;
		}
	return SD_RES_SUCCESS;
}

int gateway_copy_obj(struct sheep *s, uint64_t src, uint64_t dst)
{
	int ret = SD_RES_NO_SUPPORT;
	bool made = false;
	/* Benchmark hook: SHEEP_TEST_NO_LOCAL_COPY=1 measures the slow path
	 * (whole object read and written through the gateway), Sheepdog's. */
	const char *off = getenv("SHEEP_TEST_NO_LOCAL_COPY");
	if (off && *off == '1')
		return SD_RES_NO_SUPPORT;
	/* Two layouts (vdi alter-copy): the stored ids are not the client's. */
	if (gw_vdi_layered(s, src) || gw_vdi_layered(s, dst))
		return SD_RES_NO_SUPPORT;
	gw_obj_lock(s, dst, true);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct sheep_view *v = sheep_view_get(s);
		if (!v) {
			ret = SD_RES_WAIT_FOR_JOIN;
			break;
		}
		ret = copy_local(s, v, src, dst, &made);
		sheep_view_put(v);
		if (!gw_res_is_retry(ret))
			break;
		usleep(20000);
	}
	gw_obj_unlock(s, dst, true);
	if (ret != SD_RES_SUCCESS && made) {
		int r = gateway_remove_obj(s, dst);
		if (r != SD_RES_SUCCESS && r != SD_RES_NO_OBJ)
			sd_warn("%016llx: removing a partial local copy failed: %s",
				(unsigned long long)dst, sd_strerror((uint32_t)r));
	}
	if (ret != SD_RES_SUCCESS && ret != SD_RES_NO_SUPPORT)
		ret = SD_RES_NO_SUPPORT; /* the caller's slow path will say what is wrong */
	return ret;
}
