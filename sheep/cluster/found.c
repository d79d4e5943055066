/* found.c - no joiner waits forever: the joiners a state snapshot carries, and the oldest joiner
 * founding the cluster when no synced member is left. */
#include "sheep/cluster/group_priv.h"

/*
 * The rule (docs/architecture.md, "Joiners"): the oldest member that is not
 * itself a joiner sends every joiner its snapshot; every synced member must
 * therefore hold the same list of joiners, and some member must always be
 * synced while any is waiting.
 *
 * 1. A snapshot carries the sender's other joiners (node and the event
 *    number of its join). The target starts from that list, then replays
 *    the events it buffered: joins add joiners, snapshots delivered to
 *    others remove them (group_apply_msg). Without it a joiner synced by a
 *    snapshot built after a second joiner's join never learnt that the
 *    second one waits, and if the sender died then, nobody sent it a
 *    snapshot (issue 14).
 * 2. If every synced member leaves while joiners wait, the oldest member
 *    left founds the cluster from its own disk state, exactly as a node
 *    alone does (a formatted one waits for the nodes of its newest epoch,
 *    and the others offer their states), and sends the others their
 *    snapshots. It knows it may: every other member joined after it, so it
 *    saw every snapshot addressed to them (the driver delivers one total
 *    order, and a member's messages before its leave); none of them got
 *    one. Before, the two joiners waited for each other forever.
 */

/* Forget joiner n (no longer waiting: synced, left, or rejoining). */
void group_remove_joiner(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner **pp = &s->cl->joiners; *pp; pp = &(*pp)->next)
		if (sd_node_eq(&(*pp)->node, n)) {
			struct joiner *j = *pp;
			*pp = j->next;
			free(j);
			return;
		}
}

/* Pack the joiners other than target (snap_joiner records) into buf;
 * returns the bytes used, 0 with *nr = 0 when they do not fit. */
size_t group_pack_joiners(struct sheep *s, const struct sd_node *target, void *buf, size_t cap,
			  uint16_t *nr)
{
	size_t used = 0;
	uint16_t n = 0;
	for (struct joiner *j = s->cl->joiners; j; j = j->next) {
		if (sd_node_eq(&j->node, target))
			continue;
		struct snap_joiner r;
		memset(&r, 0, sizeof(r));
		r.node = j->node;
		r.join_seq = j->join_seq;
		if (used + sizeof(r) > cap || n == UINT16_MAX) {
			sd_emerg("the joiners do not fit a state snapshot");
			*nr = 0;
			return 0;
		}
		memcpy((char *)buf + used, &r, sizeof(r));
		used += sizeof(r);
		n++;
	}
	*nr = n;
	return used;
}

/* A joiner's list from a snapshot's nr records at p (len bytes there):
 * 0, or -EINVAL when they do not fit (nothing changed). */
int group_unpack_joiners(struct sheep *s, const void *p, size_t len, uint16_t nr)
{
	if ((size_t)nr * sizeof(struct snap_joiner) > len)
		return -EINVAL;
	while (s->cl->joiners)
		group_remove_joiner(s, &s->cl->joiners->node);
	/* In the sender's order (newest first), as group_maybe_send_snapshots
	 * walks it. */
	struct joiner **tail = &s->cl->joiners;
	for (uint16_t i = 0; i < nr; i++) {
		struct snap_joiner r;
		memcpy(&r, (const char *)p + (size_t)i * sizeof(r), sizeof(r));
		r.node.addr[sizeof(r.node.addr) - 1] = '\0';
		struct joiner *j = calloc(1, sizeof(*j));
		if (!j) {
			sd_emerg("out of memory taking the joiners of a snapshot");
			return 0;
		}
		j->node = r.node;
		j->join_seq = r.join_seq;
		*tail = j;
		tail = &j->next;
	}
	return 0;
}

/* A snapshot addressed to one of members[] among the buffered events. */
static bool snapshot_seen_for(struct sheep *s, const struct sd_node *members, size_t nr)
{
	for (struct pending_event *p = s->cl->pend_head; p; p = p->next) {
		struct snap_hdr h;
		if (!p->is_msg || p->len < sizeof(h))
			continue;
		memcpy(&h, p->msg, sizeof(h));
		if (h.h.type != CMSG_SNAPSHOT)
			continue;
		for (size_t i = 0; i < nr; i++)
			if (sd_node_eq(&h.target, &members[i]))
				return true;
	}
	return false;
}

/* Whether this unsynced node, now that the members are members[], founds
 * the cluster (rule 2): it is the oldest member (alone, or every member
 * older than it has left) and no other member got a snapshot since its own
 * join. */
bool group_may_found(struct sheep *s, const struct sd_node *members, size_t nr)
{
	if (!nr || !sd_node_eq(&members[0], &s->self))
		return false;
	return nr == 1 || !snapshot_seen_for(s, members + 1, nr - 1);
}

/* Make every other member of members[] a joiner of the founding node, with
 * its join numbered as the founder numbers the events it buffered (its own
 * join is 1), and return the number of buffered events: the founder's seq
 * before it applies the current event. */
uint64_t group_found_joiners(struct sheep *s, const struct sd_node *members, size_t nr)
{
	while (s->cl->joiners)
		group_remove_joiner(s, &s->cl->joiners->node);
	uint64_t n = 0;
	for (struct pending_event *p = s->cl->pend_head; p; p = p->next) {
		n++;
		if (p->is_msg || !p->joined || sd_node_eq(&p->sender, &s->self))
			continue;
		bool member = false;
		for (size_t i = 1; i < nr && !member; i++)
			member = sd_node_eq(&p->sender, &members[i]);
		if (!member)
			continue;
		group_remove_joiner(s, &p->sender); /* (a rejoin has a new incarnation) */
		struct joiner *j = calloc(1, sizeof(*j));
		if (!j) {
			sd_emerg("out of memory recording a joiner");
			continue;
		}
		j->node = p->sender;
		j->join_seq = n;
		j->next = s->cl->joiners;
		s->cl->joiners = j;
	}
	return n;
}
