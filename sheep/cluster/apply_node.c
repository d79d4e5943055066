/* apply_node.c - a member's vnodes set at run time (dog node vnodes set): applied as a new epoch on
 * every member, kept across later membership changes, and the epoch made a placement anchor. */
#include <inttypes.h>
#include "sheep/cluster/group_priv.h"

static bool same_process(const struct sd_node *a, const struct sd_node *b)
{
	return a->port == b->port && a->incarnation == b->incarnation && !strcmp(a->addr, b->addr);
}

void group_carry_vnodes(struct sd_node *to, size_t nr, const struct sd_node *from, size_t nr_from)
{
	for (size_t i = 0; i < nr; i++)
		for (size_t k = 0; k < nr_from; k++)
			if (from[k].fixed_vnodes == SD_NODE_VNODES_SET &&
			    same_process(&to[i], &from[k])) {
				to[i].nr_vnodes = from[k].nr_vnodes;
				to[i].fixed_vnodes = SD_NODE_VNODES_SET;
				break;
			}
}

/*
 * CMSG_NODE_VNODES: the member's record takes the new count (marked set,
 * so it wins over cluster format -V) and, on a running cluster, one epoch
 * is logged with it; the ring of that epoch is built afresh from the
 * records (chain.c), so placement follows the new weights
 * and recovery moves what changed hands. The same on every member.
 */
int group_apply_node_vnodes(struct sheep *s, const struct cmsg_node_vnodes *m)
{
	if (!s->cl->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	if (s->cl->waiting)
		return SD_RES_WAIT_FOR_JOIN;
	if (m->vnodes < 1 || m->vnodes > UINT16_MAX)
		return SD_RES_INVALID_PARMS;
	struct sd_node *n = NULL;
	for (size_t i = 0; i < s->cl->nr_members && !n; i++)
		if (same_process(&s->cl->members[i], &m->node))
			n = &s->cl->members[i];
	if (!n || n->gateway)
		return SD_RES_INVALID_PARMS;
	if (n->fixed_vnodes == SD_NODE_VNODES_SET && n->nr_vnodes == m->vnodes)
		return SD_RES_SUCCESS; /* nothing changes: no epoch */
	n->nr_vnodes = (uint16_t)m->vnodes;
	n->fixed_vnodes = SD_NODE_VNODES_SET;
	if (same_process(&s->self, &m->node)) {
		s->self.nr_vnodes = n->nr_vnodes;
		s->self.fixed_vnodes = SD_NODE_VNODES_SET;
		/* Kept in DIR/vnodes: a restart of this sheep comes back with it. */
		char path[4200], buf[16];
		group_state_path(s, SHEEP_VNODES_FILE, path, sizeof(path));
		int len = snprintf(buf, sizeof(buf), "%u\n", (unsigned)n->nr_vnodes);
		int ret = sheep_write_file(s, path, buf, (size_t)len);
		if (ret)
			sd_err("cannot save %s: %s", path, strerror(-ret));
	}
	s->cl->epoch++;
	group_epoch_add(s, s->cl->epoch, sd_wall_seconds(), s->cl->members, s->cl->nr_members,
			true);
	sd_notice("epoch %u: %s:%u has %" PRIu32 " vnodes now", s->cl->epoch, m->node.addr,
		  m->node.port, m->vnodes);
	group_rebuild_view(s);
	return SD_RES_SUCCESS;
}

uint32_t group_fmt_vnodes(struct sheep *s)
{
	pthread_mutex_lock(&s->cl->state_lock);
	uint32_t v = s->cl->fmt_vnodes;
	pthread_mutex_unlock(&s->cl->state_lock);
	return v;
}

void group_self_node(struct sheep *s, struct sd_node *out)
{
	pthread_mutex_lock(&s->cl->state_lock);
	*out = s->self;
	pthread_mutex_unlock(&s->cl->state_lock);
}
