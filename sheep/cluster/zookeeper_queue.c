/* zookeeper_queue.c - the zookeeper driver's ordered event queue: append, apply in order, bury dead members, trim what all have applied. */
#include "config.h"

#if HAVE_ZOOKEEPER

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/zookeeper_priv.h"

#define TRIM_MIN_ENTRIES 64
#define TRIM_IDLE_MS 10000
#define TRIM_SPACING_MS 2000
#define TRIM_MAX_DELETES 256
#define UNDO_MAX 8192

int zk_err(int rc)
{
	switch (rc) {
	case ZOK: return 0;
	case ZNONODE: return -ENOENT;
	case ZNODEEXISTS: return -EEXIST;
	case ZBADVERSION: return -ESTALE;
	case ZNOTEMPTY: return -ENOTEMPTY;
	case ZCONNECTIONLOSS:
	case ZOPERATIONTIMEOUT:
	case ZINVALIDSTATE:
	case ZCLOSING: return -ENOTCONN;
	case ZSESSIONEXPIRED: return -ETIMEDOUT;
	default: return -EIO;
	}
}

/* The sequence number ZooKeeper appended to a sequential znode's name. */
int zkq_path_seq(const char *name, int64_t *seq)
{
	size_t n = strlen(name);
	if (n < 10)
		return -EINVAL;
	int64_t v = 0;
	for (size_t i = n - 10; i < n; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -EINVAL;
		v = v * 10 + (name[i] - '0');
	}
	*seq = v;
	return 0;
}

void zkq_reset(struct cluster_ctx *c)
{
	c->nr = 0;
	c->pos = -1;
	c->nr_undo = 0;
	c->undo_floor = -1;
	c->since_base = 0;
	c->in_group = false;
	c->nr_leave_sent = 0;
	c->nr_older = 0;
}

int zkq_append(struct cluster_ctx *c, uint8_t type, uint64_t id, const struct sd_node *node,
	       const void *payload, uint32_t len, int64_t *seq)
{
	size_t total = sizeof(struct zk_rec) + len;
	if (total > ZK_MAX_DATA)
		return -EMSGSIZE;
	char *buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	struct zk_rec r;
	memset(&r, 0, sizeof(r));
	r.magic = ZK_REC_MAGIC;
	r.type = type;
	r.len = len;
	r.id = id;
	if (node)
		r.node = *node;
	memcpy(buf, &r, sizeof(r));
	if (len)
		memcpy(buf + sizeof(r), payload, len);
	char path[1024], made[1024];
	snprintf(path, sizeof(path), "%s/q-", c->p_queue);
	int rc = zoo_create(c->zh, path, buf, (int)total, &ZOO_OPEN_ACL_UNSAFE,
			    ZOO_PERSISTENT_SEQUENTIAL, made, sizeof(made));
	free(buf);
	if (rc != ZOK) {
		sd_err("zookeeper: cannot append to %s: %s", c->p_queue, zerror(rc));
		return zk_err(rc);
	}
	if (seq && zkq_path_seq(made, seq))
		return -EIO;
	return 0;
}

int zkq_decode_base(struct cluster_ctx *c, const char *buf, size_t len)
{
	struct zk_base_hdr h;
	if (len < sizeof(h))
		return -EIO;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != ZK_BASE_MAGIC || h.nr > SD_MAX_NODES ||
	    len != sizeof(h) + h.nr * sizeof(struct zk_base_ent))
		return -EIO;
	zkq_reset(c);
	for (uint32_t i = 0; i < h.nr; i++) {
		struct zk_base_ent e;
		memcpy(&e, buf + sizeof(h) + i * sizeof(e), sizeof(e));
		c->ids[i] = e.id;
		c->nodes[i] = e.node;
		c->nodes[i].addr[sizeof(c->nodes[i].addr) - 1] = '\0';
	}
	c->nr = h.nr;
	c->pos = c->base_pos = c->undo_floor = h.pos;
	return 0;
}

int zkq_decode_memb(const void *buf, size_t len, int64_t *pos)
{
	struct zk_memb m;
	if (len != sizeof(m))
		return -EIO;
	memcpy(&m, buf, sizeof(m));
	if (m.magic != ZK_MEMB_MAGIC)
		return -EIO;
	*pos = m.pos;
	return 0;
}

int zkq_load_base(struct cluster_ctx *c, int *version)
{
	int len = (int)ZK_MAX_DATA;
	struct Stat st;
	int rc = zoo_get(c->zh, c->p_base, 0, c->buf, &len, &st);
	if (rc != ZOK)
		return zk_err(rc);
	if (len < 0 || zkq_decode_base(c, c->buf, (size_t)len)) {
		sd_err("zookeeper: %s is damaged (%d bytes); remove the cluster's znodes to start "
		       "afresh", c->p_base, len);
		return -EIO;
	}
	*version = st.version;
	return 0;
}

static ssize_t member_index(const struct cluster_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nr; i++)
		if (c->ids[i] == id)
			return (ssize_t)i;
	return -1;
}

static void undo_push(struct cluster_ctx *c, int64_t seq, uint64_t id, size_t index, bool joined,
		      const struct sd_node *node)
{
	if (c->nr_undo == c->cap_undo) {
		if (c->cap_undo >= UNDO_MAX) {
			/* Forget the older half: trimming to before it is off. */
			size_t half = c->nr_undo / 2;
			c->undo_floor = c->undo[half - 1].seq;
			memmove(c->undo, c->undo + half, (c->nr_undo - half) * sizeof(*c->undo));
			c->nr_undo -= half;
		} else {
			size_t cap = c->cap_undo ? c->cap_undo * 2 : 256;
			void *p = realloc(c->undo, cap * sizeof(*c->undo));
			if (!p) {
				c->undo_floor = seq;
				c->nr_undo = 0;
				return;
			}
			c->undo = p;
			c->cap_undo = cap;
		}
	}
	struct zk_undo *u = &c->undo[c->nr_undo++];
	u->seq = seq;
	u->id = id;
	u->index = (uint32_t)index;
	u->joined = joined;
	u->node = *node;
}

static void forget_leave_sent(struct cluster_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nr_leave_sent; i++)
		if (c->leave_sent[i] == id) {
			c->leave_sent[i] = c->leave_sent[--c->nr_leave_sent];
			return;
		}
}

/* Drop id from the members older than us; true when none is left. */
static bool forget_older(struct cluster_ctx *c, uint64_t id)
{
	for (size_t k = 0; k < c->nr_older; k++)
		if (c->older[k] == id) {
			c->older[k] = c->older[--c->nr_older];
			return c->nr_older == 0;
		}
	return false;
}

/* Apply queue entry seq to the member list; tell the daemon once our own
 * JOIN has been applied. */
int zkq_apply(struct cluster_ctx *c, int64_t seq, const void *data, size_t len)
{
	struct zk_rec r;
	c->pos = seq;
	c->since_base++;
	if (len < sizeof(r))
		goto bad;
	memcpy(&r, data, sizeof(r));
	if (r.magic != ZK_REC_MAGIC || r.len != len - sizeof(r))
		goto bad;
	r.node.addr[sizeof(r.node.addr) - 1] = '\0';
	ssize_t i = member_index(c, r.id);
	switch (r.type) {
	case ZK_JOIN:
		if (i >= 0 || c->nr >= SD_MAX_NODES)
			return 0;
		undo_push(c, seq, r.id, c->nr, true, &r.node);
		c->ids[c->nr] = r.id;
		c->nodes[c->nr++] = r.node;
		if (!c->in_group && r.id == c->my_id) {
			c->in_group = true;
			/* Those listed before us owe us the cluster's state. */
			c->nr_older = 0;
			uint64_t *o = realloc(c->older, c->nr * sizeof(*o));
			if (o) {
				c->older = o;
				memcpy(o, c->ids, (c->nr - 1) * sizeof(*o));
				c->nr_older = c->nr - 1;
			}
			sd_notice("zookeeper: joined as member %" PRIu64 " (%zu members, queue entry %" PRId64 ")",
				  r.id, c->nr, seq);
		} else if (c->in_group) {
			sd_info("zookeeper: %s:%u joined (member %" PRIu64 "), %zu members", r.node.addr,
				r.node.port, r.id, c->nr);
		}
		if (c->in_group && c->ev.membership)
			c->ev.membership(c->arg, c->nodes, c->nr, &r.node, true);
		if (c->in_group && r.id == c->my_id && c->told_unquorate) {
			c->told_unquorate = false;
			if (c->ev.quorum)
				c->ev.quorum(c->arg, true);
		}
		return 0;
	case ZK_LEAVE: {
		if (i < 0)
			return 0;
		struct sd_node gone = c->nodes[i];
		undo_push(c, seq, r.id, (size_t)i, false, &gone);
		memmove(&c->ids[i], &c->ids[i + 1], (c->nr - (size_t)i - 1) * sizeof(c->ids[0]));
		memmove(&c->nodes[i], &c->nodes[i + 1], (c->nr - (size_t)i - 1) * sizeof(c->nodes[0]));
		c->nr--;
		forget_leave_sent(c, r.id);
		if (!c->in_group)
			return 0;
		if (c->nr_older && forget_older(c, r.id)) {
			/* Every member that could have sent us the cluster's
			 * state left without a word since our JOIN (they were
			 * the stale sessions of a crashed cluster): we never
			 * got it. Join again after a random pause, so that one
			 * of several such joiners finds itself alone. */
			sd_warn("zookeeper: every member listed before this sheep left before "
				"sending the cluster's state; joining again");
			c->in_group = false;
			c->want_rejoin = true;
			uint64_t now = sd_now_ns();
			c->rejoin_after = now + (200 + (now / 1000 + (uint64_t)getpid()) % 1300) * 1000000u;
			return 0;
		}
		if (r.id == c->my_id) {
			/* Someone buried us: our session ended as far as the
			 * ensemble knows. Whatever we hold is stale now. */
			sd_err("zookeeper: this sheep was removed from the cluster (its session "
			       "ended); it stops serving and joins again as a new member");
			c->in_group = false;
			c->want_rejoin = true;
			return 0;
		}
		sd_info("zookeeper: %s:%u left (member %" PRIu64 "), %zu members", gone.addr, gone.port,
			r.id, c->nr);
		if (c->ev.membership)
			c->ev.membership(c->arg, c->nodes, c->nr, &gone, false);
		return 0;
	}
	case ZK_MSG:
		if (c->nr_older && i >= 0)
			for (size_t k = 0; k < c->nr_older; k++)
				if (c->older[k] == r.id)
					c->nr_older = 0; /* an older member spoke: stop watching */
		if (i >= 0 && c->in_group && c->ev.deliver)
			c->ev.deliver(c->arg, &c->nodes[i], (const char *)data + sizeof(r), r.len);
		return 0;
	}
bad:
	sd_err("zookeeper: queue entry %" PRId64 " is malformed (%zu bytes); skipped", seq, len);
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void zk_watch_cb(zhandle_t *zh, int type, int state, const char *path, void *arg);

/* The sorted sequence numbers of the queue's entries above pos. */
static int list_queue(struct cluster_ctx *c, bool watch, int64_t **out, size_t *n)
{
	struct String_vector v = {0};
	int rc = watch ? zoo_wget_children(c->zh, c->p_queue, zk_watch_cb, c, &v)
		       : zoo_get_children(c->zh, c->p_queue, 0, &v);
	if (rc != ZOK)
		return zk_err(rc);
	int64_t *s = malloc(((size_t)v.count + 1) * sizeof(*s));
	size_t k = 0;
	if (!s) {
		deallocate_String_vector(&v);
		return -ENOMEM;
	}
	for (int i = 0; i < v.count; i++) {
		int64_t q;
		if (!strncmp(v.data[i], "q-", 2) && !zkq_path_seq(v.data[i], &q) && q > c->pos)
			s[k++] = q;
	}
	deallocate_String_vector(&v);
	qsort(s, k, sizeof(*s), cmp_i64);
	*out = s;
	*n = k;
	return 0;
}

/*
 * Apply every queue entry above pos (and below `below` when >= 0), in
 * order. -ENOENT: an entry vanished before we read it (trimmed past us).
 * watch: leave a watch that wakes dispatch when entries are added.
 */
int zkq_read(struct cluster_ctx *c, int64_t below, bool watch)
{
	int64_t *s;
	size_t n;
	int r = list_queue(c, watch, &s, &n);
	if (r)
		return r;
	for (size_t i = 0; i < n && !r && !c->want_rejoin; i++) {
		if (below >= 0 && s[i] >= below)
			break;
		if (s[i] <= c->pos)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/q-%010" PRId64, c->p_queue, s[i]);
		int len = (int)ZK_MAX_DATA;
		int rc = zoo_get(c->zh, path, 0, c->buf, &len, NULL);
		if (rc != ZOK) {
			r = zk_err(rc);
			break;
		}
		zkq_apply(c, s[i], c->buf, len < 0 ? 0 : (size_t)len);
	}
	free(s);
	return r;
}

static void zk_watch_cb(zhandle_t *zh, int type, int state, const char *path, void *arg)
{
	struct cluster_ctx *c = arg;
	if (type != ZOO_CHILD_EVENT || !path)
		return; /* session events reach the handle's own watcher too */
	pthread_mutex_lock(&c->mu);
	if (zh == c->zh) {
		if (!strcmp(path, c->p_queue))
			c->f_queue = true;
		else if (!strcmp(path, c->p_members))
			c->f_members = true;
	}
	pthread_mutex_unlock(&c->mu);
	uint64_t one = 1;
	if (write(c->efd, &one, sizeof(one)) < 0)
		sd_debug("zookeeper: wake: %s", strerror(errno));
}

static int list_members(struct cluster_ctx *c, bool watch)
{
	struct String_vector v = {0};
	int rc = watch ? zoo_wget_children(c->zh, c->p_members, zk_watch_cb, c, &v)
		       : zoo_get_children(c->zh, c->p_members, 0, &v);
	if (rc != ZOK)
		return zk_err(rc);
	uint64_t *l = realloc(c->live, ((size_t)v.count + 1) * sizeof(*l));
	if (!l) {
		deallocate_String_vector(&v);
		return -ENOMEM;
	}
	c->live = l;
	c->nr_live = 0;
	for (int i = 0; i < v.count; i++) {
		int64_t q;
		if (!zkq_path_seq(v.data[i], &q))
			c->live[c->nr_live++] = (uint64_t)q;
	}
	deallocate_String_vector(&v);
	return 0;
}

static bool is_live(const struct cluster_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nr_live; i++)
		if (c->live[i] == id)
			return true;
	return false;
}

static bool leave_was_sent(const struct cluster_ctx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nr_leave_sent; i++)
		if (c->leave_sent[i] == id)
			return true;
	return false;
}

/* Append a LEAVE for every member without a live znode (in c->live). */
static int bury(struct cluster_ctx *c)
{
	for (size_t i = 0; i < c->nr; i++) {
		if (is_live(c, c->ids[i]) || leave_was_sent(c, c->ids[i]))
			continue;
		sd_notice("zookeeper: %s:%u (member %" PRIu64 ") lost its session; removing it",
			  c->nodes[i].addr, c->nodes[i].port, c->ids[i]);
		int r = zkq_append(c, ZK_LEAVE, c->ids[i], &c->nodes[i], NULL, 0, NULL);
		if (r)
			return r;
		if (c->nr_leave_sent < sizeof(c->leave_sent) / sizeof(c->leave_sent[0]))
			c->leave_sent[c->nr_leave_sent++] = c->ids[i];
	}
	return 0;
}

/* A joiner, before its JOIN: bury every member whose znode is gone. */
int zkq_bury_dead(struct cluster_ctx *c)
{
	int r = list_members(c, false);
	return r ? r : bury(c);
}

/*
 * The oldest member with a live znode buries the others that lost theirs:
 * it appends a LEAVE for each (a LEAVE of a non-member is ignored by all,
 * so a second one from a new leader is harmless). The member listing is
 * taken again before deciding, as our last one may predate a JOIN.
 */
int zkq_check_leaves(struct cluster_ctx *c, bool refresh)
{
	if (!c->in_group || !c->connected)
		return 0;
	int r = 0;
	if (refresh || !c->live) {
		if ((r = list_members(c, true)))
			return r;
	}
	for (int pass = 0; pass < 2; pass++) {
		size_t lead = c->nr, dead = 0;
		for (size_t i = 0; i < c->nr; i++) {
			if (is_live(c, c->ids[i])) {
				if (lead == c->nr)
					lead = i;
			} else if (!leave_was_sent(c, c->ids[i])) {
				dead++;
			}
		}
		if (lead == c->nr || c->ids[lead] != c->my_id || !dead)
			return 0;
		if (pass == 0 && (r = list_members(c, true)))
			return r;
	}
	return bury(c);
}

/* The member list as it stood right after entry t (t >= undo_floor). */
static int members_at(const struct cluster_ctx *c, int64_t t, struct zk_base_ent *out, size_t *nr)
{
	if (t < c->undo_floor)
		return -ERANGE;
	size_t n = c->nr;
	for (size_t i = 0; i < n; i++) {
		out[i].id = c->ids[i];
		out[i].node = c->nodes[i];
	}
	for (size_t k = c->nr_undo; k > 0 && c->undo[k - 1].seq > t; k--) {
		const struct zk_undo *u = &c->undo[k - 1];
		if (u->joined) {
			if (u->index >= n || out[u->index].id != u->id)
				return -EIO;
			memmove(&out[u->index], &out[u->index + 1], (n - u->index - 1) * sizeof(*out));
			n--;
		} else {
			if (u->index > n || n >= SD_MAX_NODES)
				return -EIO;
			memmove(&out[u->index + 1], &out[u->index], (n - u->index) * sizeof(*out));
			out[u->index].id = u->id;
			out[u->index].node = u->node;
			n++;
		}
	}
	*nr = n;
	return 0;
}

/* Lowest position any live member has published, -1 when unsure. */
static int64_t min_published(struct cluster_ctx *c)
{
	struct String_vector a = {0}, b = {0};
	int64_t lo = c->pos;
	if (zoo_get_children(c->zh, c->p_members, 0, &a) != ZOK)
		return -1;
	for (int i = 0; i < a.count && lo >= 0; i++) {
		char path[1024];
		struct zk_memb m;
		int len = sizeof(m);
		int64_t pos;
		snprintf(path, sizeof(path), "%s/%s", c->p_members, a.data[i]);
		int rc = zoo_get(c->zh, path, 0, (char *)&m, &len, NULL);
		if (rc == ZNONODE)
			continue; /* gone: what it read no longer matters */
		if (rc != ZOK || len < 0 || zkq_decode_memb(&m, (size_t)len, &pos))
			lo = -1;
		else if (pos < lo)
			lo = pos;
	}
	/* A member created meanwhile may have read the base before we
	 * looked: do nothing this round. */
	if (lo >= 0 && zoo_get_children(c->zh, c->p_members, 0, &b) == ZOK) {
		for (int i = 0; i < b.count; i++) {
			bool seen = false;
			for (int j = 0; j < a.count && !seen; j++)
				seen = !strcmp(a.data[j], b.data[i]);
			if (!seen)
				lo = -1;
		}
	} else {
		lo = -1;
	}
	deallocate_String_vector(&a);
	deallocate_String_vector(&b);
	return lo;
}

/*
 * The oldest member drops the entries every live member has applied: in
 * one multi-op it moves the base to T (with the member list after T) and
 * deletes the entries <= T, so a joiner reading the base and then the
 * queue never misses an entry (it retries when one vanishes under it).
 */
void zkq_trim(struct cluster_ctx *c)
{
	uint64_t now = sd_now_ns();
	if (!c->in_group || !c->connected || !c->nr || c->ids[0] != c->my_id || !c->since_base ||
	    now - c->last_trim < (uint64_t)TRIM_SPACING_MS * 1000000u ||
	    (c->since_base < TRIM_MIN_ENTRIES &&
	     now - c->last_trim < (uint64_t)TRIM_IDLE_MS * 1000000u))
		return;
	c->last_trim = now;
	int64_t t = min_published(c);
	if (t < 0 || t <= c->base_pos)
		return;
	int64_t *s = NULL;
	size_t n = 0;
	int64_t saved = c->pos;
	c->pos = -1; /* list everything */
	int r = list_queue(c, false, &s, &n);
	c->pos = saved;
	if (r)
		return;
	size_t k = 0;
	while (k < n && s[k] <= t && k < TRIM_MAX_DELETES)
		k++;
	if (k < n && s[k] <= t)
		t = s[k - 1];
	struct zk_base_ent *ents = malloc(SD_MAX_NODES * sizeof(*ents) + sizeof(struct zk_base_hdr));
	zoo_op_t *ops = calloc(k + 1, sizeof(*ops));
	zoo_op_result_t *res = calloc(k + 1, sizeof(*res));
	char(*paths)[1024] = calloc(k + 1, sizeof(*paths));
	size_t nr = 0;
	struct Stat st;
	int blen = (int)ZK_MAX_DATA;
	struct zk_base_hdr cur;
	if (!ents || !ops || !res || !paths || members_at(c, t, ents, &nr) ||
	    zoo_get(c->zh, c->p_base, 0, c->buf, &blen, &st) != ZOK || blen < (int)sizeof(cur))
		goto out;
	memcpy(&cur, c->buf, sizeof(cur));
	if (cur.magic != ZK_BASE_MAGIC || cur.pos >= t) {
		c->base_pos = cur.pos; /* another member trimmed further */
		goto out;
	}
	char *data = malloc(sizeof(struct zk_base_hdr) + nr * sizeof(*ents));
	if (!data)
		goto out;
	struct zk_base_hdr h = {.magic = ZK_BASE_MAGIC, .nr = (uint32_t)nr, .pos = t};
	memcpy(data, &h, sizeof(h));
	memcpy(data + sizeof(h), ents, nr * sizeof(*ents));
	zoo_set_op_init(&ops[0], c->p_base, data, (int)(sizeof(h) + nr * sizeof(*ents)), st.version,
			NULL);
	for (size_t i = 0; i < k; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/q-%010" PRId64, c->p_queue, s[i]);
		zoo_delete_op_init(&ops[i + 1], paths[i], -1);
	}
	int rc = zoo_multi(c->zh, (int)k + 1, ops, res);
	free(data);
	if (rc == ZOK) {
		size_t keep = 0;
		for (size_t i = 0; i < c->nr_undo; i++)
			if (c->undo[i].seq > t)
				c->undo[keep++] = c->undo[i];
		c->nr_undo = keep;
		if (c->undo_floor < t)
			c->undo_floor = t;
		c->base_pos = t;
		c->since_base = 0;
		sd_debug("zookeeper: trimmed %zu queue entries up to %" PRId64, k, t);
	} else {
		sd_debug("zookeeper: trim to %" PRId64 " not done: %s", t, zerror(rc));
	}
out:
	free(ents);
	free(ops);
	free(res);
	free(paths);
	free(s);
}

#endif /* HAVE_ZOOKEEPER */
