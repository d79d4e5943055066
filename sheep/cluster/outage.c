/* outage.c - after a whole-cluster stop, serve no I/O until the members of the newest epoch any member knows of are back (Sheepdog's "Waiting for other nodes to join cluster"). */
#include <inttypes.h>
#include "sheep/cluster/group_priv.h"

/*
 * The rule (docs/architecture.md, "Whole-cluster stop"):
 *
 * A sheep that starts and finds itself alone starts from its own state,
 * which may be old: it may have stopped before the others and missed
 * writes. Each sheep therefore remembers its last epoch record (the
 * members when it last saw the membership change), or, if it stopped while
 * the cluster was already waiting, the record the cluster was waiting for
 * (DIR/outage). The first sheep enters the wait with its record. Every
 * sheep that joins a waiting cluster announces its own record in a
 * CMSG_OUTAGE message; a record with a higher epoch replaces the one the
 * cluster waits for. The wait ends, on every member in the same event,
 * when every data member of the record is a member again and every member
 * has announced (so no member still holds an unread newer record).
 * Until then client I/O, VDI lookups and recovery are refused with
 * SD_RES_WAIT_FOR_JOIN. `dog cluster recover force` ends the wait with
 * the members present.
 *
 * The VDI table goes with the record: the first sheep's table may lack
 * VDIs created (or keep VDIs deleted) while it was down, and joiners take
 * the table from the snapshot. A sheep announces the table it had before
 * joining, and the cluster adopts it with the newer record: a member of a
 * later epoch applied every VDI operation up to its stop.
 *
 * Why this proves the newest data is reachable: an acknowledged write
 * reached d+1 zones (or 2 copies) among the members of the epoch it was
 * written in; the newest epoch record any member has lists the members of
 * the last epoch in which anything could be written, every later
 * membership change having been logged by some member. With all of them
 * back, every acknowledged write's fragments are reachable again, and the
 * gateway reads the newest version among them.
 */

#define OUTAGE_MAGIC 0x5344574fu /* "SDWO" */

struct outage_hdr {
	uint32_t magic;
	uint32_t epoch;
	uint32_t nr_wait;
	uint32_t nr_ann;
} __attribute__((packed));

struct cmsg_outage {
	struct cmsg_hdr h;
	uint32_t epoch; /* of the record that follows (0 with force) */
	uint32_t nr;
	uint32_t force;
	uint32_t vdi_len; /* the sender's VDI table before it joined, after the nodes */
	/* nr struct sd_node follow, then vdi_len bytes (vdi_table_pack) */
} __attribute__((packed));

static bool same_node(const struct sd_node *a, const struct sd_node *b)
{
	return a->port == b->port && !strcmp(a->addr, b->addr);
}

static bool node_in(const struct sd_node *set, size_t nr, const struct sd_node *n)
{
	for (size_t i = 0; i < nr; i++)
		if (same_node(&set[i], n))
			return true;
	return false;
}

/* Replace *dst (nr *dst_nr) by a copy of src's data members. */
static int set_nodes(struct sd_node **dst, size_t *dst_nr, const struct sd_node *src, size_t nr,
		     bool data_only)
{
	struct sd_node *c = malloc((nr ? nr : 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nr; i++)
		if (!data_only || !src[i].gateway)
			c[k++] = src[i];
	free(*dst);
	*dst = c;
	*dst_nr = k;
	return 0;
}

static void add_announced(struct sheep *s, const struct sd_node *n)
{
	if (node_in(s->outage_ann, s->nr_outage_ann, n))
		return;
	struct sd_node *c = realloc(s->outage_ann, (s->nr_outage_ann + 1) * sizeof(*c));
	if (!c) {
		sd_emerg("out of memory recording an announced member");
		return;
	}
	c[s->nr_outage_ann++] = *n;
	s->outage_ann = c;
}

/* DIR/outage holds the record this node must not forget: the newer of its
 * own last record and the one the cluster waits for. */
static void save_file(struct sheep *s, uint32_t epoch, const struct sd_node *nodes, size_t nr)
{
	char path[4200];
	group_state_path(s, "outage", path, sizeof(path));
	size_t len = sizeof(struct outage_hdr) + nr * sizeof(struct sd_node);
	char *buf = malloc(len);
	if (!buf) {
		sd_emerg("out of memory saving %s", path);
		return;
	}
	struct outage_hdr h = {OUTAGE_MAGIC, epoch, (uint32_t)nr, 0};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), nodes, nr * sizeof(struct sd_node));
	int ret = sheep_write_file(s, path, buf, len);
	if (ret)
		sd_err("cannot save %s: %s", path, strerror(-ret));
	free(buf);
}

static void remove_file(struct sheep *s)
{
	char path[4200];
	group_state_path(s, "outage", path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		sd_err("cannot remove %s: %m", path);
}

static void save_newest(struct sheep *s)
{
	if (s->own_epoch > s->outage_epoch)
		save_file(s, s->own_epoch, s->own_nodes, s->nr_own);
	else
		save_file(s, s->outage_epoch, s->outage_wait, s->nr_outage_wait);
}

static void keep_own_vdis(struct sheep *s);
static void forget_own(struct sheep *s);

void group_outage_load(struct sheep *s)
{
	char path[4200];
	group_state_path(s, "outage", path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct outage_hdr h;
		struct sd_node *nodes = NULL;
		bool ok = read(fd, &h, sizeof(h)) == sizeof(h) && h.magic == OUTAGE_MAGIC &&
			  h.nr_wait <= SD_MAX_NODES;
		if (ok) {
			nodes = calloc(h.nr_wait ? h.nr_wait : 1, sizeof(*nodes));
			size_t want = h.nr_wait * sizeof(*nodes);
			ok = nodes && read(fd, nodes, want) == (ssize_t)want;
		}
		close(fd);
		if (ok) {
			s->own_epoch = h.epoch;
			s->own_nodes = nodes;
			s->nr_own = h.nr_wait;
			sd_info("stopped while the cluster waited for the members of epoch %u", h.epoch);
			keep_own_vdis(s);
			return;
		}
		free(nodes);
		sd_err("%s is damaged: using the last epoch record", path);
	}
	if (!s->nr_epochs)
		return;
	const struct epoch_rec *r = &s->epochs[s->nr_epochs - 1];
	if (set_nodes(&s->own_nodes, &s->nr_own, r->nodes, r->nr_nodes, true) == 0)
		s->own_epoch = r->epoch;
	keep_own_vdis(s);
}

/* The VDI table this node had before joining (its record's companion). */
static void keep_own_vdis(struct sheep *s)
{
	if (!s->own_epoch || !s->ctime || s->own_vdis)
		return;
	size_t cap = CLUSTER_MAX_MSG / 2;
	char *buf = malloc(cap);
	long n = buf ? vdi_table_pack(&s->vdis, buf, cap) : -1;
	if (n < 0) {
		free(buf);
		sd_err("cannot keep the VDI table (%zu VDIs) for a whole-cluster restart",
		       s->vdis.nr);
		return;
	}
	s->own_vdis = buf;
	s->own_vdis_len = (size_t)n;
}

bool group_outage_waiting_locked(struct sheep *s)
{
	return s->outage_epoch != 0;
}

bool group_outage_waiting(struct sheep *s)
{
	pthread_mutex_lock(&s->state_lock);
	bool w = s->outage_epoch != 0;
	pthread_mutex_unlock(&s->state_lock);
	return w;
}

static void stop_waiting(struct sheep *s, const char *why)
{
	sd_notice("%s: serving I/O (waited for the members of epoch %u)", why, s->outage_epoch);
	s->outage_epoch = 0;
	free(s->outage_wait);
	free(s->outage_ann);
	s->outage_wait = s->outage_ann = NULL;
	s->nr_outage_wait = s->nr_outage_ann = 0;
	free(s->own_vdis);
	s->own_vdis = NULL;
	s->own_vdis_len = 0;
	remove_file(s);
	pthread_cond_broadcast(&s->state_cond);
}

/* Names of the record's members still missing, for the log. */
static void missing_str(struct sheep *s, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->nr_outage_wait && used + 1 < len; i++) {
		if (node_in(s->members, s->nr_members, &s->outage_wait[i]))
			continue;
		int n = snprintf(buf + used, len - used, "%s%s:%u", used ? " " : "",
				 s->outage_wait[i].addr, s->outage_wait[i].port);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

void group_outage_check(struct sheep *s)
{
	if (!s->outage_epoch)
		return;
	size_t missing = 0, silent = 0;
	for (size_t i = 0; i < s->nr_outage_wait; i++)
		if (!node_in(s->members, s->nr_members, &s->outage_wait[i]))
			missing++;
	for (size_t i = 0; i < s->nr_members; i++)
		if (!node_in(s->outage_ann, s->nr_outage_ann, &s->members[i]))
			silent++;
	if (!missing && !silent) {
		stop_waiting(s, "every member of the newest epoch is back");
		return;
	}
	char buf[512];
	missing_str(s, buf, sizeof(buf));
	sd_notice("waiting for other nodes to join cluster: %zu of %zu members of epoch %u "
		  "missing (%s), %zu member(s) not yet synced",
		  missing, s->nr_outage_wait, s->outage_epoch, missing ? buf : "none", silent);
}

void group_outage_start(struct sheep *s)
{
	if (!s->ctime || !s->own_epoch) {
		forget_own(s);
		return;
	}
	bool others = false;
	for (size_t i = 0; i < s->nr_own && !others; i++)
		others = !same_node(&s->own_nodes[i], &s->self);
	if (!others || set_nodes(&s->outage_wait, &s->nr_outage_wait, s->own_nodes, s->nr_own,
				 false)) {
		forget_own(s);
		return;
	}
	s->outage_epoch = s->own_epoch;
	add_announced(s, &s->self);
	save_newest(s);
	forget_own(s); /* alone: its own state is the cluster's already */
	sd_notice("the cluster was stopped: this sheep may have missed writes, so no I/O is "
		  "served until the %zu members of epoch %u are back (dog cluster recover force "
		  "overrides)", s->nr_outage_wait, s->outage_epoch);
}

/* The own record matters at the first sync after start only (a later
 * re-sync, after a quorum loss, must not wait on a record from then). */
static void forget_own(struct sheep *s)
{
	s->own_epoch = 0;
	free(s->own_nodes);
	s->own_nodes = NULL;
	s->nr_own = 0;
	free(s->own_vdis);
	s->own_vdis = NULL;
	s->own_vdis_len = 0;
}

static void announce(struct sheep *s, bool force)
{
	size_t nr = force ? 0 : s->nr_own;
	size_t vl = force ? 0 : s->own_vdis_len;
	size_t len = sizeof(struct cmsg_outage) + nr * sizeof(struct sd_node) + vl;
	char *buf = calloc(1, len);
	if (!buf) {
		sd_emerg("out of memory announcing the last epoch");
		return;
	}
	struct cmsg_outage *m = (struct cmsg_outage *)buf;
	m->h.type = CMSG_OUTAGE;
	m->h.len = (uint32_t)len;
	m->epoch = force ? 0 : s->own_epoch;
	m->nr = (uint32_t)nr;
	m->force = force;
	m->vdi_len = (uint32_t)vl;
	if (nr)
		memcpy(buf + sizeof(*m), s->own_nodes, nr * sizeof(struct sd_node));
	if (vl)
		memcpy(buf + sizeof(*m) + nr * sizeof(struct sd_node), s->own_vdis, vl);
	group_post_broadcast(s, buf, len, 0);
	free(buf);
}

void group_outage_joined(struct sheep *s)
{
	if (s->outage_epoch) {
		save_newest(s);
		announce(s, false);
	}
	forget_own(s);
}

int group_outage_force(struct sheep *s)
{
	pthread_mutex_lock(&s->state_lock);
	bool w = s->outage_epoch != 0 && s->synced;
	if (w)
		announce(s, true);
	pthread_mutex_unlock(&s->state_lock);
	return w ? 1 : 0;
}

int group_apply_outage(struct sheep *s, const struct sd_node *sender, const void *msg,
		       size_t len)
{
	struct cmsg_outage m;
	if (len < sizeof(m))
		return SD_RES_INVALID_PARMS;
	memcpy(&m, msg, sizeof(m));
	if (m.nr > SD_MAX_NODES ||
	    len < sizeof(m) + m.nr * sizeof(struct sd_node) + (size_t)m.vdi_len)
		return SD_RES_INVALID_PARMS;
	if (!s->outage_epoch)
		return SD_RES_SUCCESS; /* already serving */
	if (m.force) {
		char why[160];
		snprintf(why, sizeof(why), "forced by %s:%u (dog cluster recover force)",
			 sender->addr, sender->port);
		stop_waiting(s, why);
		return SD_RES_SUCCESS;
	}
	add_announced(s, sender);
	if (m.epoch > s->outage_epoch) {
		const struct sd_node *nodes =
		    (const struct sd_node *)(const void *)((const char *)msg + sizeof(m));
		if (set_nodes(&s->outage_wait, &s->nr_outage_wait, nodes, m.nr, false) == 0) {
			sd_notice("%s:%u knows a newer epoch (%u, %u members): waiting for its "
				  "members instead of epoch %u's", sender->addr, sender->port,
				  m.epoch, m.nr, s->outage_epoch);
			s->outage_epoch = m.epoch;
		}
		const char *vt = (const char *)msg + sizeof(m) + m.nr * sizeof(struct sd_node);
		if (m.vdi_len && vdi_table_unpack(&s->vdis, vt, m.vdi_len) == 0) {
			group_save_vdis(s);
			sd_notice("took the VDI table of %s:%u (%zu VDIs), a member of epoch %u",
				  sender->addr, sender->port, s->vdis.nr, m.epoch);
		} else if (m.vdi_len) {
			sd_err("the VDI table announced by %s:%u is damaged: keeping ours",
			       sender->addr, sender->port);
		}
	}
	save_newest(s);
	group_outage_check(s);
	return SD_RES_SUCCESS;
}

size_t group_outage_pack(struct sheep *s, void *buf, size_t cap)
{
	if (!s->outage_epoch)
		return 0;
	size_t len = sizeof(struct outage_hdr) +
		     (s->nr_outage_wait + s->nr_outage_ann) * sizeof(struct sd_node);
	if (len > cap)
		return 0;
	struct outage_hdr h = {OUTAGE_MAGIC, s->outage_epoch, (uint32_t)s->nr_outage_wait,
			       (uint32_t)s->nr_outage_ann};
	char *p = buf;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, s->outage_wait, s->nr_outage_wait * sizeof(struct sd_node));
	p += s->nr_outage_wait * sizeof(struct sd_node);
	memcpy(p, s->outage_ann, s->nr_outage_ann * sizeof(struct sd_node));
	return len;
}

void group_outage_unpack(struct sheep *s, const void *buf, size_t len)
{
	struct outage_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != OUTAGE_MAGIC || h.nr_wait > SD_MAX_NODES || h.nr_ann > SD_MAX_NODES ||
	    len < sizeof(h) + (size_t)(h.nr_wait + h.nr_ann) * sizeof(struct sd_node))
		return;
	const struct sd_node *w = (const struct sd_node *)(const void *)((const char *)buf + sizeof(h));
	if (set_nodes(&s->outage_wait, &s->nr_outage_wait, w, h.nr_wait, false) ||
	    set_nodes(&s->outage_ann, &s->nr_outage_ann, w + h.nr_wait, h.nr_ann, false))
		return;
	s->outage_epoch = h.epoch;
}
