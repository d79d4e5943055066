/* group.c - membership, epochs, state snapshots for joiners and the totally ordered cluster operations. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fnv.h"
#include "lib/oid.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/sheep.h"
#include "sheep/store.h"

/*
 * Every synced member applies the same sequence of events (membership
 * changes and messages, in the driver's total order) and so holds the same
 * state. s->seq numbers those events. A joiner buffers the events it sees
 * from its own join on, until a snapshot addressed to it arrives: the
 * snapshot is the state of the sender after event K; the joiner loads it
 * and replays the buffered events numbered above K.
 */

#define CONFIG_MAGIC 0x53444346u /* "SDCF" */
#define COP_TIMEOUT_S 30
#define SNAP_EPOCH_BUDGET (256u << 10)

struct config_file {
	uint32_t magic;
	uint32_t version;
	uint64_t ctime;
	uint8_t copies, policy, shift, recovery_enabled;
	uint32_t vnodes;
} __attribute__((packed));

struct snap_hdr {
	struct cmsg_hdr h;
	struct sd_node target;
	uint64_t join_seq;
	uint64_t seq;
	uint32_t epoch;
	uint32_t nr_epochs;
	uint64_t ctime;
	uint8_t copies, policy, shift, recovery_enabled;
	uint32_t vnodes;
	uint32_t vdi_len;
	uint32_t __pad;
} __attribute__((packed));

bool sd_node_eq(const struct sd_node *a, const struct sd_node *b)
{
	return a->port == b->port && a->incarnation == b->incarnation && !strcmp(a->addr, b->addr);
}

int sheep_node_cmp(const void *a, const void *b)
{
	const struct sd_node *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);
	if (c)
		return c;
	return (int)x->port - (int)y->port;
}

int sheep_write_file(struct sheep *s, const char *path, const void *buf, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = 0;
	ssize_t n = write(fd, buf, len);
	if (n != (ssize_t)len)
		ret = n < 0 ? -errno : -EIO;
	if (!ret && !s->opt.nosync && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

static void state_path(struct sheep *s, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->opt.dir, name);
}

/* ---- views ---- */

struct sheep_view *sheep_view_get(struct sheep *s)
{
	pthread_mutex_lock(&s->state_lock);
	struct sheep_view *v = s->synced ? s->view : NULL;
	if (v)
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&s->state_lock);
	return v;
}

static void ring_put(struct sheep_ring *r)
{
	if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (r->ring)
		ring_free(r->ring);
	free(r->data);
	free(r);
}

void sheep_view_put(struct sheep_view *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	ring_put(v->cur);
	for (int i = 0; i < v->nr_hist; i++)
		ring_put(v->hist[i]);
	free(v->nodes);
	free(v);
}

struct sheep_view *sheep_view_wait_change(struct sheep *s, uint32_t old_epoch, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->state_lock);
	while (!s->stopping && (!s->synced || s->epoch == old_epoch))
		if (pthread_cond_timedwait(&s->state_cond, &s->state_lock, &ts))
			break;
	struct sheep_view *v = NULL;
	if (s->synced && s->epoch != old_epoch && s->view) {
		v = s->view;
		__atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
	}
	pthread_mutex_unlock(&s->state_lock);
	return v;
}

static struct sheep_ring *find_ring(struct sheep_view *v, uint32_t epoch)
{
	if (!v)
		return NULL;
	if (v->cur && v->cur->epoch == epoch && v->cur->ring)
		return v->cur;
	for (int i = 0; i < v->nr_hist; i++)
		if (v->hist[i]->epoch == epoch)
			return v->hist[i];
	return NULL;
}

/* The data holders of a node list, sorted, and their ring. */
static int build_ring(struct sheep *s, const struct sd_node *nodes, size_t nr, struct sd_node *data,
		      size_t *nr_data, struct ring **ring)
{
	size_t n = 0;
	for (size_t i = 0; i < nr; i++)
		if (!nodes[i].gateway && nodes[i].space > 0)
			data[n++] = nodes[i];
	qsort(data, n, sizeof(struct sd_node), sheep_node_cmp);
	*nr_data = n;
	*ring = NULL;
	if (!n)
		return 0;
	struct ring_node *pn = calloc(n, sizeof(*pn));
	if (!pn)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(pn[i].id, sizeof(pn[i].id), "%s:%u", data[i].addr, data[i].port);
		pn[i].zone = data[i].zone;
		pn[i].weight = data[i].space;
		pn[i].vnodes = s->fmt_vnodes ? (uint16_t)s->fmt_vnodes : data[i].nr_vnodes;
	}
	int ret = ring_build(pn, n, ring);
	free(pn);
	return ret;
}

static struct sheep_ring *ring_of_epoch(struct sheep *s, const struct epoch_rec *er)
{
	struct sheep_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->refs = 1;
	r->epoch = er->epoch;
	r->data = calloc(er->nr_nodes ? er->nr_nodes : 1, sizeof(struct sd_node));
	if (!r->data || build_ring(s, er->nodes, er->nr_nodes, r->data, &r->nr_data, &r->ring) ||
	    !r->ring) {
		free(r->data);
		if (r->ring)
			ring_free(r->ring);
		free(r);
		return NULL;
	}
	return r;
}

/* Build and publish the view of the current members and epoch (locked). */
static void rebuild_view(struct sheep *s)
{
	struct sheep_view *v = calloc(1, sizeof(*v));
	if (!v)
		goto fail;
	v->refs = 1;
	v->epoch = s->epoch;
	v->self_data_idx = -1;
	v->nodes = calloc(s->nr_members ? s->nr_members : 1, sizeof(struct sd_node));
	v->cur = calloc(1, sizeof(*v->cur));
	if (!v->nodes || !v->cur)
		goto fail;
	v->cur->refs = 1;
	v->cur->epoch = s->epoch;
	v->data = v->cur->data = calloc(s->nr_members ? s->nr_members : 1, sizeof(struct sd_node));
	if (!v->data)
		goto fail;
	memcpy(v->nodes, s->members, s->nr_members * sizeof(struct sd_node));
	v->nr_nodes = s->nr_members;
	qsort(v->nodes, v->nr_nodes, sizeof(struct sd_node), sheep_node_cmp);
	int ret = build_ring(s, v->nodes, v->nr_nodes, v->data, &v->nr_data, &v->ring);
	if (ret)
		sd_err("cannot build the placement ring for epoch %u: %s", s->epoch, strerror(-ret));
	uint32_t zones[SD_MAX_NODES];
	for (size_t i = 0; i < v->nr_data; i++) {
		if (sd_node_eq(&v->data[i], &s->self))
			v->self_data_idx = (int)i;
		bool seen = false;
		for (uint32_t z = 0; z < v->nr_zones; z++)
			seen |= zones[z] == v->data[i].zone;
		if (!seen && v->nr_zones < SD_MAX_NODES)
			zones[v->nr_zones++] = v->data[i].zone;
	}
	v->cur->nr_data = v->nr_data;
	v->cur->ring = v->ring;
	/* Rings of the previous epochs, newest first: where fragments are
	 * until recovery moves them. Reuse the old view's, build the rest
	 * from the epoch log (a joiner or a restarted node has no old view). */
	for (size_t k = s->nr_epochs; k > 0 && v->nr_hist < SHEEP_VIEW_HIST; k--) {
		const struct epoch_rec *er = &s->epochs[k - 1];
		if (er->epoch >= s->epoch)
			continue;
		struct sheep_ring *r = find_ring(s->view, er->epoch);
		if (r)
			__atomic_add_fetch(&r->refs, 1, __ATOMIC_ACQ_REL);
		else
			r = ring_of_epoch(s, er);
		if (r)
			v->hist[v->nr_hist++] = r;
	}
	sheep_view_put(s->view);
	s->view = v;
	pthread_cond_broadcast(&s->state_cond);
	return;
fail:
	sd_emerg("out of memory building the view of epoch %u", s->epoch);
	if (v) {
		v->refs = 1;
		sheep_view_put(v);
	}
}

/* ---- epoch log ---- */

static int epoch_log_write(struct sheep *s, const struct epoch_rec *r)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/epoch/%08u", s->opt.dir, r->epoch);
	size_t len = sizeof(struct sd_epoch_rec) + r->nr_nodes * sizeof(struct sd_node);
	char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	struct sd_epoch_rec h = {r->epoch, r->nr_nodes, r->time};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), r->nodes, r->nr_nodes * sizeof(struct sd_node));
	int ret = sheep_write_file(s, path, buf, len);
	free(buf);
	if (ret)
		sd_err("cannot log epoch %u in %s: %s", r->epoch, path, strerror(-ret));
	return ret;
}

static int epoch_add(struct sheep *s, uint32_t epoch, uint64_t t, const struct sd_node *nodes,
		     size_t nr, bool log)
{
	struct epoch_rec *n = realloc(s->epochs, (s->nr_epochs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->epochs = n;
	struct epoch_rec *r = &s->epochs[s->nr_epochs];
	r->epoch = epoch;
	r->time = t;
	r->nr_nodes = (uint32_t)nr;
	r->nodes = malloc((nr ? nr : 1) * sizeof(struct sd_node));
	if (!r->nodes)
		return -ENOMEM;
	memcpy(r->nodes, nodes, nr * sizeof(struct sd_node));
	qsort(r->nodes, nr, sizeof(struct sd_node), sheep_node_cmp);
	s->nr_epochs++;
	return log ? epoch_log_write(s, r) : 0;
}

static void epochs_clear(struct sheep *s)
{
	for (size_t i = 0; i < s->nr_epochs; i++)
		free(s->epochs[i].nodes);
	free(s->epochs);
	s->epochs = NULL;
	s->nr_epochs = 0;
}

static int epoch_cmp(const void *a, const void *b)
{
	const struct epoch_rec *x = a, *y = b;
	return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static int epoch_log_load(struct sheep *s)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/epoch", s->opt.dir);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long e = strtoul(de->d_name, &end, 10);
		if (*end || end == de->d_name || e == 0)
			continue;
		char fp[4500];
		snprintf(fp, sizeof(fp), "%s/%s", path, de->d_name);
		int fd = open(fp, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct sd_epoch_rec h;
		struct sd_node *nodes = NULL;
		if (read(fd, &h, sizeof(h)) == sizeof(h) && h.nr_nodes <= SD_MAX_NODES &&
		    h.epoch == e) {
			nodes = calloc(h.nr_nodes ? h.nr_nodes : 1, sizeof(*nodes));
			size_t want = h.nr_nodes * sizeof(*nodes);
			if (nodes && read(fd, nodes, want) == (ssize_t)want)
				epoch_add(s, h.epoch, h.time, nodes, h.nr_nodes, false);
		}
		free(nodes);
		close(fd);
	}
	closedir(d);
	if (s->nr_epochs)
		qsort(s->epochs, s->nr_epochs, sizeof(*s->epochs), epoch_cmp);
	return 0;
}

/* ---- persistence of format and VDIs ---- */

static void save_config(struct sheep *s)
{
	struct config_file c = {.magic = CONFIG_MAGIC,
				.version = 1,
				.ctime = s->ctime,
				.copies = s->def_copies,
				.policy = s->def_policy,
				.shift = s->def_shift,
				.recovery_enabled = s->recovery_enabled,
				.vnodes = s->fmt_vnodes};
	char path[4200];
	state_path(s, "config", path, sizeof(path));
	int ret = sheep_write_file(s, path, &c, sizeof(c));
	if (ret)
		sd_err("cannot save %s: %s", path, strerror(-ret));
}

static void save_vdis(struct sheep *s)
{
	char path[4200];
	state_path(s, "vdis", path, sizeof(path));
	int ret = vdi_table_save(&s->vdis, path);
	if (ret)
		sd_err("cannot save the VDI table in %s: %s", path, strerror(-ret));
}

static int load_state(struct sheep *s)
{
	char path[4200];
	state_path(s, "config", path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct config_file c;
		if (read(fd, &c, sizeof(c)) == sizeof(c) && c.magic == CONFIG_MAGIC) {
			s->ctime = c.ctime;
			s->def_copies = c.copies;
			s->def_policy = c.policy;
			s->def_shift = c.shift;
			s->recovery_enabled = c.recovery_enabled;
			s->fmt_vnodes = c.vnodes;
		} else {
			sd_warn("%s is damaged; the node starts unformatted", path);
		}
		close(fd);
	}
	state_path(s, "vdis", path, sizeof(path));
	int ret = vdi_table_load(&s->vdis, path);
	if (ret) {
		sd_err("cannot load the VDI table %s: %s", path, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/epoch", s->opt.dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	ret = epoch_log_load(s);
	if (ret)
		return ret;
	if (s->nr_epochs)
		s->epoch = s->epochs[s->nr_epochs - 1].epoch;
	sd_info("state: %s, %zu VDIs, last epoch %u", s->ctime ? "formatted" : "not formatted",
		s->vdis.nr, s->epoch);
	return 0;
}

/* ---- cluster-op waiters ---- */

static void complete_wait(struct sheep *s, uint64_t token, int result, uint32_t vid)
{
	for (struct cop_wait *w = s->waits; w; w = w->next)
		if (w->token == token) {
			w->done = 1;
			w->result = result;
			w->vid = vid;
			pthread_cond_broadcast(&s->state_cond);
			return;
		}
}

struct bcast {
	struct sheep *s;
	size_t len;
	uint64_t token;
	char msg[];
};

static void do_broadcast(void *arg)
{
	struct bcast *b = arg;
	struct sheep *s = b->s;
	int ret = s->cctx ? s->driver->broadcast(s->cctx, b->msg, b->len) : -ENOTCONN;
	if (ret) {
		sd_err("cluster broadcast failed: %s", strerror(-ret));
		if (b->token) {
			pthread_mutex_lock(&s->state_lock);
			complete_wait(s, b->token, SD_RES_SYSTEM_ERROR, 0);
			pthread_mutex_unlock(&s->state_lock);
		}
	}
	free(b);
}

/* Queue a broadcast on the loop thread. */
static int post_broadcast(struct sheep *s, const void *msg, size_t len, uint64_t token)
{
	struct bcast *b = malloc(sizeof(*b) + len);
	if (!b)
		return -ENOMEM;
	b->s = s;
	b->len = len;
	b->token = token;
	memcpy(b->msg, msg, len);
	int ret = sd_loop_call(s->loop, do_broadcast, b);
	if (ret)
		free(b);
	return ret;
}

int group_cluster_post(struct sheep *s, void *msg, size_t len)
{
	struct cmsg_hdr *h = msg;
	h->token = 0; /* no waiter */
	h->len = (uint32_t)len;
	return post_broadcast(s, msg, len, 0) ? SD_RES_NO_MEM : SD_RES_SUCCESS;
}

int group_cluster_op(struct sheep *s, void *msg, size_t len, uint32_t *vid)
{
	struct cmsg_hdr *h = msg;
	struct cop_wait w = {0};
	pthread_mutex_lock(&s->state_lock);
	if (!s->synced) {
		pthread_mutex_unlock(&s->state_lock);
		return SD_RES_WAIT_FOR_JOIN;
	}
	w.token = ++s->next_token;
	w.next = s->waits;
	s->waits = &w;
	pthread_mutex_unlock(&s->state_lock);
	h->token = w.token;
	h->len = (uint32_t)len;
	int ret = post_broadcast(s, msg, len, w.token);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += COP_TIMEOUT_S;
	pthread_mutex_lock(&s->state_lock);
	if (ret) {
		w.done = 1;
		w.result = SD_RES_NO_MEM;
	}
	while (!w.done && !s->stopping)
		if (pthread_cond_timedwait(&s->state_cond, &s->state_lock, &ts))
			break;
	for (struct cop_wait **pp = &s->waits; *pp; pp = &(*pp)->next)
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	pthread_mutex_unlock(&s->state_lock);
	if (!w.done) {
		sd_err("cluster operation %u was not delivered in %d s", h->type, COP_TIMEOUT_S);
		return s->stopping ? SD_RES_SHUTDOWN : SD_RES_SYSTEM_ERROR;
	}
	if (vid)
		*vid = w.vid;
	return w.result;
}

/* ---- applying events (loop thread, state_lock held) ---- */

static bool node_in_joiners(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner *j = s->joiners; j; j = j->next)
		if (sd_node_eq(&j->node, n))
			return true;
	return false;
}

static void remove_joiner(struct sheep *s, const struct sd_node *n)
{
	for (struct joiner **pp = &s->joiners; *pp; pp = &(*pp)->next)
		if (sd_node_eq(&(*pp)->node, n)) {
			struct joiner *j = *pp;
			*pp = j->next;
			free(j);
			return;
		}
}

/* Build the snapshot message for joiner j. */
static void *build_snapshot(struct sheep *s, const struct joiner *j, size_t *len)
{
	size_t ebytes = 0;
	uint32_t ne = 0;
	for (size_t i = s->nr_epochs; i > 0; i--) {
		size_t b = sizeof(struct sd_epoch_rec) + s->epochs[i - 1].nr_nodes * sizeof(struct sd_node);
		if (ebytes + b > SNAP_EPOCH_BUDGET)
			break;
		ebytes += b;
		ne++;
	}
	size_t cap = CLUSTER_MAX_MSG;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	struct snap_hdr *h = (struct snap_hdr *)buf;
	memset(h, 0, sizeof(*h));
	h->h.type = CMSG_SNAPSHOT;
	h->target = j->node;
	h->join_seq = j->join_seq;
	h->seq = s->seq;
	h->epoch = s->epoch;
	h->nr_epochs = ne;
	h->ctime = s->ctime;
	h->copies = s->def_copies;
	h->policy = s->def_policy;
	h->shift = s->def_shift;
	h->recovery_enabled = s->recovery_enabled;
	h->vnodes = s->fmt_vnodes;
	char *p = buf + sizeof(*h);
	/* oldest first among the last ne */
	for (size_t i = s->nr_epochs - ne; i < s->nr_epochs; i++) {
		struct sd_epoch_rec r = {s->epochs[i].epoch, s->epochs[i].nr_nodes, s->epochs[i].time};
		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
		memcpy(p, s->epochs[i].nodes, r.nr_nodes * sizeof(struct sd_node));
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	long vl = vdi_table_pack(&s->vdis, p, cap - (size_t)(p - buf));
	if (vl < 0) {
		sd_emerg("the VDI table (%zu VDIs) does not fit a cluster message: a joiner "
			 "cannot be synced", s->vdis.nr);
		free(buf);
		return NULL;
	}
	h->vdi_len = (uint32_t)vl;
	p += vl;
	*len = (size_t)(p - buf);
	h->h.len = (uint32_t)*len;
	return buf;
}

static void maybe_send_snapshots(struct sheep *s)
{
	if (!s->joiners)
		return;
	/* The oldest member that is not itself waiting sends. */
	const struct sd_node *sender = NULL;
	for (size_t i = 0; i < s->nr_members && !sender; i++)
		if (!node_in_joiners(s, &s->members[i]))
			sender = &s->members[i];
	if (!sender || !sd_node_eq(sender, &s->self))
		return;
	for (struct joiner *j = s->joiners; j; j = j->next) {
		if (j->sent)
			continue;
		size_t len;
		void *msg = build_snapshot(s, j, &len);
		if (!msg)
			continue;
		sd_info("sending state (event %llu, epoch %u) to joiner %s:%u",
			(unsigned long long)s->seq, s->epoch, j->node.addr, j->node.port);
		if (post_broadcast(s, msg, len, 0) == 0)
			j->sent = true;
		free(msg);
	}
}

static void release_locks_of(struct sheep *s, const struct sd_node *n, bool *changed)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = s->vdis.buckets[b]; e; e = e->hnext)
			if (e->locked && e->lock_port == n->port && e->lock_inc == n->incarnation &&
			    !strcmp(e->lock_addr, n->addr)) {
				e->locked = 0;
				*changed = true;
				sd_info("VDI %s (%x) unlocked: its holder %s:%u left", e->name, e->vid,
					n->addr, n->port);
			}
}

static void apply_membership(struct sheep *s, const struct sd_node *members, size_t nr,
			     const struct sd_node *changed, bool joined)
{
	s->seq++;
	struct sd_node *m = malloc((nr ? nr : 1) * sizeof(*m));
	if (!m) {
		sd_emerg("out of memory applying a membership change");
		return;
	}
	memcpy(m, members, nr * sizeof(*m));
	free(s->members);
	s->members = m;
	s->nr_members = nr;
	s->epoch++;
	epoch_add(s, s->epoch, sd_wall_seconds(), members, nr, true);
	sd_notice("epoch %u: %s:%u %s, %zu members", s->epoch, changed->addr, changed->port,
		  joined ? "joined" : "left", nr);
	if (joined && !sd_node_eq(changed, &s->self)) {
		struct joiner *j = calloc(1, sizeof(*j));
		if (j) {
			j->node = *changed;
			j->join_seq = s->seq;
			j->next = s->joiners;
			s->joiners = j;
		}
	} else if (!joined) {
		remove_joiner(s, changed);
		bool ch = false;
		release_locks_of(s, changed, &ch);
	}
	rebuild_view(s);
	maybe_send_snapshots(s);
}

static void store_wipe(struct sheep *s);

struct wipe_list {
	size_t n, cap;
	struct {
		uint64_t oid;
		uint8_t idx;
	} *v;
};

static int wipe_collect(const struct store_meta *m, void *arg)
{
	struct wipe_list *w = arg;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 1024;
		void *nv = realloc(w->v, nc * sizeof(*w->v));
		if (!nv)
			return -ENOMEM;
		w->v = nv;
		w->cap = nc;
	}
	w->v[w->n].oid = m->oid;
	w->v[w->n].idx = m->idx;
	w->n++;
	return 0;
}

static void store_wipe(struct sheep *s)
{
	if (!s->store)
		return;
	struct wipe_list w = {0};
	store_for_each(s->store, wipe_collect, &w);
	for (size_t i = 0; i < w.n; i++)
		store_remove(s->store, w.v[i].oid, w.v[i].idx);
	if (w.n)
		sd_notice("format: removed %zu old fragments", w.n);
	free(w.v);
}

static int apply_format(struct sheep *s, const struct cmsg_format *f, bool *wipe)
{
	struct ec_policy pol;
	if (ec_policy_from_wire(f->policy, f->copies, &pol))
		return SD_RES_INVALID_PARMS;
	if (f->shift < SD_MIN_BLOCK_SIZE_SHIFT || f->shift > SD_MAX_BLOCK_SIZE_SHIFT)
		return SD_RES_INVALID_PARMS;
	s->ctime = f->ctime;
	s->def_copies = f->copies;
	s->def_policy = f->policy;
	s->def_shift = f->shift;
	s->fmt_vnodes = f->vnodes;
	s->recovery_enabled = true;
	vdi_table_clear(&s->vdis);
	save_config(s);
	save_vdis(s);
	*wipe = true;
	char pb[32];
	ec_policy_format(&pol, pb, sizeof(pb));
	sd_notice("cluster formatted: policy %s, object size %u KiB", pb, (1u << f->shift) >> 10);
	return SD_RES_SUCCESS;
}

static int apply_new_vdi(struct sheep *s, const struct cmsg_vdi *m, uint32_t *vid)
{
	if (!s->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	char name[SD_MAX_VDI_LEN];
	memcpy(name, m->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	if (!name[0])
		return SD_RES_INVALID_PARMS;
	if (vdi_table_by_name(&s->vdis, name, NULL, 0))
		return SD_RES_VDI_EXIST;
	uint32_t v = vdi_table_alloc_vid(&s->vdis, sd_vid_of_name(name));
	if (!v)
		return SD_RES_FULL_VDI;
	struct vdi_entry e;
	memset(&e, 0, sizeof(e));
	e.vid = v;
	e.snapid = 1;
	e.copy_policy = m->policy;
	e.nr_copies = m->copies;
	e.shift = m->shift;
	e.size = m->size;
	e.ctime = m->ctime;
	memcpy(e.name, name, sizeof(e.name));
	int ret = vdi_table_insert(&s->vdis, &e);
	if (ret)
		return SD_RES_NO_MEM;
	save_vdis(s);
	*vid = v;
	sd_info("VDI %s created: id %x, %llu bytes", name, v, (unsigned long long)m->size);
	return SD_RES_SUCCESS;
}

static bool lock_is_sender(const struct vdi_entry *e, const struct sd_node *n, uint64_t owner)
{
	return e->lock_port == n->port && e->lock_inc == n->incarnation &&
	       !strcmp(e->lock_addr, n->addr) && e->lock_owner == owner;
}

static struct vdi_entry *first_clone(struct sheep *s, const struct vdi_entry *e);

static int apply_vdi_op(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
			uint32_t *vid)
{
	struct vdi_entry *e = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
	*vid = m->vid;
	switch (m->h.type) {
	case CMSG_DEL_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (e->locked && !lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		if (e->flags & VDI_F_PENDING)
			return SD_RES_VDI_LOCKED; /* being created: finish it first */
		if (first_clone(s, e))
			return SD_RES_VDI_WRITE; /* clones depend on it */
		e->deleted = VDI_DEL_RECLAIM;
		e->locked = 0;
		vdi_table_insert(&s->vdis, e); /* clears the in-use bit */
		save_vdis(s);
		sd_info("VDI %s (%x) deleted", e->name, e->vid);
		return SD_RES_SUCCESS;
	case CMSG_PURGE_VDI:
		if (e && e->deleted) {
			vdi_table_remove(&s->vdis, m->vid);
			save_vdis(s);
		}
		return SD_RES_SUCCESS;
	case CMSG_LOCK_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (e->locked && !lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		e->locked = 1;
		snprintf(e->lock_addr, sizeof(e->lock_addr), "%s", sender->addr);
		e->lock_port = sender->port;
		e->lock_inc = sender->incarnation;
		e->lock_owner = m->lock_owner;
		return SD_RES_SUCCESS;
	case CMSG_UNLOCK_VDI:
		if (!e || e->deleted)
			return SD_RES_NO_VDI;
		if (!e->locked)
			return SD_RES_VDI_NOT_LOCKED;
		/* owner 0 from dog's "vdi lock unlock" forces the release. */
		if (m->lock_owner && !lock_is_sender(e, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		e->locked = 0;
		return SD_RES_SUCCESS;
	}
	return SD_RES_INVALID_PARMS;
}

/* Any live clone of vid (a working VDI of another name made from it). */
static struct vdi_entry *first_clone(struct sheep *s, const struct vdi_entry *e)
{
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *c = s->vdis.buckets[b]; c; c = c->hnext)
			if (!c->deleted && c->parent == e->vid && strcmp(c->name, e->name))
				return c;
	return NULL;
}

/* A new entry in vid's family, copied from base, pending its inode. */
static int insert_follower(struct sheep *s, const struct vdi_entry *base, uint32_t start,
			   struct vdi_entry *ne, uint32_t *vid)
{
	uint32_t v = vdi_table_alloc_vid(&s->vdis, start);
	if (!v)
		return SD_RES_FULL_VDI;
	ne->vid = v;
	ne->parent = base->vid;
	ne->flags = VDI_F_PENDING;
	ne->deleted = 0;
	ne->hnext = NULL;
	if (vdi_table_insert(&s->vdis, ne))
		return SD_RES_NO_MEM;
	*vid = v;
	return SD_RES_SUCCESS;
}

/*
 * Snapshot, clone and rollback as one table change each, applied in the
 * same order on every node: the new VDI is in the table (pending) and the
 * old one frozen or deleted at once; the inode of the new one is written
 * afterwards by whoever finds it pending (vdi_snap.c), so a crash shows
 * the old state or the new one.
 */
static int apply_vdi_family(struct sheep *s, const struct sd_node *sender, const struct cmsg_vdi *m,
			    uint32_t *vid)
{
	if (!s->ctime)
		return SD_RES_WAIT_FOR_FORMAT;
	char tag[SD_MAX_VDI_TAG_LEN], name[SD_MAX_VDI_LEN];
	memcpy(tag, m->tag, sizeof(tag));
	tag[sizeof(tag) - 1] = '\0';
	memcpy(name, m->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	struct vdi_entry ne;
	int ret;
	switch (m->h.type) {
	case CMSG_VDI_SNAP: {
		struct vdi_entry *a = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
		if (!a || a->deleted || (a->flags & VDI_F_PENDING))
			return SD_RES_NO_VDI;
		if (a->flags & VDI_F_SNAPSHOT)
			return SD_RES_READONLY;
		if (tag[0] && vdi_table_by_name(&s->vdis, a->name, tag, 0))
			return SD_RES_VDI_EXIST;
		ne = *a;
		ne.snapid = a->snapid + 1;
		ne.ctime = m->ctime;
		memset(ne.tag, 0, sizeof(ne.tag));
		ret = insert_follower(s, a, a->vid + 1, &ne, vid);
		if (ret)
			return ret;
		a = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1)); /* insert may move nothing, but be safe */
		a->flags |= VDI_F_SNAPSHOT;
		memcpy(a->tag, tag, sizeof(a->tag));
		a->locked = 0; /* the writer's lock went to the new working VDI */
		sd_info("VDI %s: snapshot %u (%x%s%s), working VDI now %x", a->name, a->snapid, a->vid,
			tag[0] ? ", tag " : "", tag, *vid);
		break;
	}
	case CMSG_VDI_CLONE: {
		struct vdi_entry *b = vdi_table_find(&s->vdis, m->base_vid & (SD_NR_VDIS - 1));
		if (!b || b->deleted)
			return SD_RES_NO_BASE_VDI;
		if (!(b->flags & VDI_F_SNAPSHOT))
			return SD_RES_INVALID_PARMS;
		if (!name[0])
			return SD_RES_INVALID_PARMS;
		if (vdi_table_by_name(&s->vdis, name, NULL, 0))
			return SD_RES_VDI_EXIST;
		memset(&ne, 0, sizeof(ne));
		memcpy(ne.name, name, sizeof(ne.name));
		ne.snapid = 1;
		ne.copy_policy = m->copies ? m->policy : b->copy_policy;
		ne.nr_copies = m->copies ? m->copies : b->nr_copies;
		ne.shift = b->shift;
		ne.size = b->size;
		ne.ctime = m->ctime;
		ret = insert_follower(s, b, sd_vid_of_name(name), &ne, vid);
		if (ret)
			return ret;
		sd_info("VDI %s (%x) cloned from %s snapshot %u", name, *vid, b->name, b->snapid);
		break;
	}
	case CMSG_VDI_ROLLBACK: {
		struct vdi_entry *w = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
		struct vdi_entry *b = vdi_table_find(&s->vdis, m->base_vid & (SD_NR_VDIS - 1));
		if (!w || w->deleted || (w->flags & VDI_F_SNAPSHOT))
			return SD_RES_NO_VDI;
		if (!b || b->deleted || !(b->flags & VDI_F_SNAPSHOT) || strcmp(b->name, w->name))
			return SD_RES_NO_BASE_VDI;
		if (w->locked && !lock_is_sender(w, sender, m->lock_owner))
			return SD_RES_VDI_LOCKED;
		ne = *w;
		ne.locked = 0;
		ne.size = b->size;
		ne.copy_policy = b->copy_policy;
		ne.nr_copies = b->nr_copies;
		ne.shift = b->shift;
		ne.ctime = m->ctime;
		ret = insert_follower(s, b, w->vid + 1, &ne, vid);
		if (ret)
			return ret;
		w = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
		w->deleted = VDI_DEL_RECLAIM;
		w->locked = 0;
		vdi_table_insert(&s->vdis, w); /* clears the in-use bit */
		sd_info("VDI %s rolled back to snapshot %u: working VDI now %x (%x deleted)",
			w->name, b->snapid, *vid, w->vid);
		break;
	}
	case CMSG_VDI_READY: {
		struct vdi_entry *e = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
		if (!e)
			return SD_RES_NO_VDI;
		e->flags &= (uint8_t)~VDI_F_PENDING;
		*vid = e->vid;
		break;
	}
	case CMSG_VDI_RECLAIMED: {
		struct vdi_entry *e = vdi_table_find(&s->vdis, m->vid & (SD_NR_VDIS - 1));
		if (e && e->deleted == VDI_DEL_RECLAIM)
			e->deleted = VDI_DEL_ZOMBIE;
		vdi_table_drop_zombies(&s->vdis);
		break;
	}
	default:
		return SD_RES_INVALID_PARMS;
	}
	save_vdis(s);
	return SD_RES_SUCCESS;
}

static void shutdown_later(void *arg)
{
	struct sheep *s = arg;
	sd_loop_stop(s->loop);
}

/* Apply one message; sender's waiter (if this node) gets the result. */
static void apply_msg(struct sheep *s, const struct sd_node *sender, const void *msg, size_t len,
		      bool *wipe)
{
	s->seq++;
	struct cmsg_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, msg, sizeof(h));
	int res = SD_RES_INVALID_PARMS;
	uint32_t vid = 0;
	switch (h.type) {
	case CMSG_FORMAT:
		if (len >= sizeof(struct cmsg_format))
			res = apply_format(s, msg, wipe);
		break;
	case CMSG_NEW_VDI:
		if (len >= sizeof(struct cmsg_vdi))
			res = apply_new_vdi(s, msg, &vid);
		break;
	case CMSG_DEL_VDI:
	case CMSG_PURGE_VDI:
	case CMSG_LOCK_VDI:
	case CMSG_UNLOCK_VDI:
		if (len >= sizeof(struct cmsg_vdi))
			res = apply_vdi_op(s, sender, msg, &vid);
		break;
	case CMSG_VDI_SNAP:
	case CMSG_VDI_CLONE:
	case CMSG_VDI_ROLLBACK:
	case CMSG_VDI_READY:
	case CMSG_VDI_RECLAIMED:
		if (len >= sizeof(struct cmsg_vdi))
			res = apply_vdi_family(s, sender, msg, &vid);
		break;
	case CMSG_RECOVERY:
		if (len >= sizeof(struct cmsg_format)) {
			s->recovery_enabled = ((const struct cmsg_format *)msg)->copies != 0;
			save_config(s);
			res = SD_RES_SUCCESS;
		}
		break;
	case CMSG_SHUTDOWN:
		sd_notice("cluster shutdown requested by %s:%u", sender->addr, sender->port);
		res = SD_RES_SUCCESS;
		if (!sd_node_eq(sender, &s->self)) {
			s->stopping = 1;
			sd_loop_call(s->loop, shutdown_later, s);
		}
		break;
	case CMSG_SNAPSHOT:
		return; /* for a joiner; synced members only count it */
	default:
		sd_warn("unknown cluster message type %u from %s:%u", h.type, sender->addr,
			sender->port);
		return;
	}
	if (sd_node_eq(sender, &s->self))
		complete_wait(s, h.token, res, vid);
}

static void pending_free(struct pending_event *p)
{
	free(p->members);
	free(p->msg);
	free(p);
}

static void pending_clear(struct sheep *s)
{
	struct pending_event *p = s->pend_head;
	while (p) {
		struct pending_event *n = p->next;
		pending_free(p);
		p = n;
	}
	s->pend_head = s->pend_tail = NULL;
}

static void pending_add(struct sheep *s, struct pending_event *p)
{
	p->next = NULL;
	if (s->pend_tail)
		s->pend_tail->next = p;
	else
		s->pend_head = p;
	s->pend_tail = p;
}

/* A joiner got its snapshot: load it and replay what it buffered. */
static void apply_snapshot(struct sheep *s, const void *msg, size_t len, bool *wipe)
{
	struct snap_hdr h;
	memcpy(&h, msg, sizeof(h));
	const char *p = (const char *)msg + sizeof(h);
	const char *end = (const char *)msg + len;
	epochs_clear(s);
	for (uint32_t i = 0; i < h.nr_epochs; i++) {
		struct sd_epoch_rec r;
		if (p + sizeof(r) > end)
			return;
		memcpy(&r, p, sizeof(r));
		p += sizeof(r);
		if (r.nr_nodes > SD_MAX_NODES || p + r.nr_nodes * sizeof(struct sd_node) > end)
			return;
		epoch_add(s, r.epoch, r.time, (const struct sd_node *)(const void *)p, r.nr_nodes, true);
		p += r.nr_nodes * sizeof(struct sd_node);
	}
	if (p + h.vdi_len > end || vdi_table_unpack(&s->vdis, p, h.vdi_len)) {
		sd_emerg("state snapshot is damaged");
		return;
	}
	bool was_formatted = s->ctime != 0;
	uint64_t old_ctime = s->ctime;
	s->ctime = h.ctime;
	s->def_copies = h.copies;
	s->def_policy = h.policy;
	s->def_shift = h.shift;
	s->recovery_enabled = h.recovery_enabled;
	s->fmt_vnodes = h.vnodes;
	s->epoch = h.epoch;
	s->seq = h.seq;
	save_config(s);
	save_vdis(s);
	if (was_formatted && old_ctime != h.ctime) {
		sd_warn("this node's store belongs to another format of the cluster: wiping it");
		*wipe = true;
	}
	/* Replay the buffered events after seq h.seq. Event number of the
	 * first buffered one (our join) is h.join_seq. */
	uint64_t n = h.join_seq;
	s->synced = true;
	struct pending_event *ev = s->pend_head;
	s->pend_head = s->pend_tail = NULL;
	while (ev) {
		struct pending_event *next = ev->next;
		if (n <= h.seq) {
			if (!ev->is_msg) {
				free(s->members);
				s->members = ev->members;
				s->nr_members = ev->nr_members;
				ev->members = NULL;
			}
		} else if (ev->is_msg) {
			apply_msg(s, &ev->sender, ev->msg, ev->len, wipe);
		} else {
			apply_membership(s, ev->members, ev->nr_members, &ev->sender, ev->joined);
		}
		n++;
		pending_free(ev);
		ev = next;
	}
	rebuild_view(s);
	sd_notice("joined the cluster at epoch %u with %zu VDIs", s->epoch, s->vdis.nr);
}

static void after_unlock(struct sheep *s, bool wipe)
{
	if (wipe)
		store_wipe(s);
}

static void on_membership(void *arg, const struct sd_node *members, size_t nr,
			  const struct sd_node *changed, bool joined)
{
	struct sheep *s = arg;
	pthread_mutex_lock(&s->state_lock);
	bool alone = nr == 1 && sd_node_eq(&members[0], &s->self);
	if (!s->synced && alone) {
		/* Nobody to learn from: this node's own state is the cluster's. */
		pending_clear(s);
		s->synced = true;
		s->seq = 0;
		sd_notice("alone in the cluster: starting from local state (epoch %u)", s->epoch);
		apply_membership(s, members, nr, changed, joined);
		pthread_mutex_unlock(&s->state_lock);
		return;
	}
	if (!s->synced) {
		struct pending_event *p = calloc(1, sizeof(*p));
		if (p)
			p->members = malloc(nr * sizeof(struct sd_node));
		if (!p || !p->members) {
			sd_emerg("out of memory buffering a membership change");
			free(p);
		} else {
			memcpy(p->members, members, nr * sizeof(struct sd_node));
			p->nr_members = nr;
			p->sender = *changed;
			p->joined = joined;
			if (s->pend_head || (joined && sd_node_eq(changed, &s->self)))
				pending_add(s, p);
			else
				pending_free(p); /* before our own join: not ours to replay */
		}
		pthread_mutex_unlock(&s->state_lock);
		return;
	}
	apply_membership(s, members, nr, changed, joined);
	pthread_mutex_unlock(&s->state_lock);
}

static void on_deliver(void *arg, const struct sd_node *sender, const void *msg, size_t len)
{
	struct sheep *s = arg;
	bool wipe = false;
	struct cmsg_hdr h;
	if (len < sizeof(h))
		return;
	memcpy(&h, msg, sizeof(h));
	pthread_mutex_lock(&s->state_lock);
	if (!s->synced) {
		if (h.type == CMSG_SNAPSHOT && len >= sizeof(struct snap_hdr) && s->pend_head) {
			struct snap_hdr sh;
			memcpy(&sh, msg, sizeof(sh));
			if (sd_node_eq(&sh.target, &s->self)) {
				apply_snapshot(s, msg, len, &wipe);
				s->seq++; /* the snapshot message itself */
				pthread_mutex_unlock(&s->state_lock);
				after_unlock(s, wipe);
				return;
			}
		}
		if (s->pend_head) {
			struct pending_event *p = calloc(1, sizeof(*p));
			if (p && (p->msg = malloc(len))) {
				memcpy(p->msg, msg, len);
				p->len = len;
				p->is_msg = 1;
				p->sender = *sender;
				pending_add(s, p);
			} else {
				free(p);
				sd_emerg("out of memory buffering a cluster message");
			}
		}
		pthread_mutex_unlock(&s->state_lock);
		return;
	}
	if (h.type == CMSG_SNAPSHOT && len >= sizeof(struct snap_hdr)) {
		struct snap_hdr sh;
		memcpy(&sh, msg, sizeof(sh));
		remove_joiner(s, &sh.target);
	}
	apply_msg(s, sender, msg, len, &wipe);
	pthread_mutex_unlock(&s->state_lock);
	after_unlock(s, wipe);
}

static void on_quorum(void *arg, bool quorate)
{
	struct sheep *s = arg;
	pthread_mutex_lock(&s->state_lock);
	s->quorate = quorate;
	if (!quorate) {
		/* The driver leaves the group and joins again when quorum
		 * returns; our state may have diverged by then, so learn it
		 * anew from the quorate side's snapshot, as a joiner does. */
		s->synced = false;
		pending_clear(s);
	}
	pthread_mutex_unlock(&s->state_lock);
	if (quorate)
		sd_notice("cluster quorum regained");
	else
		sd_err("cluster quorum lost: writes are refused until it returns");
}

static const struct cluster_events group_events = {
	.membership = on_membership,
	.deliver = on_deliver,
	.quorum = on_quorum,
};

static void on_driver_fd(int fd, uint32_t events, void *arg)
{
	struct sheep *s = arg;
	int ret = s->driver->dispatch(s->cctx);
	if (ret < 0 && ret != -EAGAIN) {
		sd_emerg("cluster driver %s failed: %s; leaving", s->driver->name, strerror(-ret));
		s->stopping = 1;
		sd_loop_stop(s->loop);
	}
}

int group_init(struct sheep *s)
{
	pthread_mutex_init(&s->state_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&s->state_cond, &ca);
	pthread_condattr_destroy(&ca);
	s->quorate = true;
	s->recovery_enabled = true;
	int ret = vdi_table_init(&s->vdis);
	if (ret)
		return ret;
	return load_state(s);
}

int group_start(struct sheep *s)
{
	const char *spec = s->opt.cluster ? s->opt.cluster : "local";
	s->driver = cluster_driver_find(spec);
	if (!s->driver) {
		sd_err("unknown cluster driver '%s' (built: local%s)", spec,
#if HAVE_COROSYNC
		       ", corosync"
#else
		       ""
#endif
		);
		return -EINVAL;
	}
	int ret = s->driver->init(&s->cctx, cluster_driver_options(spec), &s->self, &group_events, s);
	if (ret) {
		sd_err("cluster driver %s: init failed: %s", s->driver->name, strerror(-ret));
		s->cctx = NULL;
		return ret;
	}
	int fd = s->driver->get_fd(s->cctx);
	if (fd >= 0 && (ret = sd_loop_add(s->loop, fd, EPOLLIN, on_driver_fd, s)))
		return ret;
	/* A restarted sheep may race the others' reaping of its dead self
	 * (local driver: -EAGAIN); try a few times before giving up. */
	for (int i = 0; i < 25; i++) {
		ret = s->driver->join(s->cctx);
		if (ret != -EAGAIN && ret != -EBUSY)
			break;
		usleep(200000);
	}
	if (ret)
		sd_err("cluster driver %s: join failed: %s", s->driver->name, strerror(-ret));
	return ret;
}

void group_stop(struct sheep *s)
{
	if (s->cctx) {
		int fd = s->driver->get_fd(s->cctx);
		if (fd >= 0)
			sd_loop_del(s->loop, fd);
		s->driver->leave(s->cctx);
		s->driver->destroy(s->cctx);
		s->cctx = NULL;
	}
	pthread_mutex_lock(&s->state_lock);
	pending_clear(s);
	while (s->joiners)
		remove_joiner(s, &s->joiners->node);
	pthread_cond_broadcast(&s->state_cond);
	pthread_mutex_unlock(&s->state_lock);
}

int group_vdi_find(struct sheep *s, uint32_t vid, struct vdi_entry *out)
{
	pthread_mutex_lock(&s->state_lock);
	struct vdi_entry *e = vdi_table_find(&s->vdis, vid);
	if (e)
		*out = *e;
	pthread_mutex_unlock(&s->state_lock);
	return e ? 0 : -ENOENT;
}

int group_vdi_lookup(struct sheep *s, const char *name, const char *tag, uint32_t snapid,
		     struct vdi_entry *out)
{
	pthread_mutex_lock(&s->state_lock);
	int ret;
	if (!s->synced) {
		ret = SD_RES_WAIT_FOR_JOIN;
	} else if (!s->ctime) {
		ret = SD_RES_WAIT_FOR_FORMAT;
	} else {
		struct vdi_entry *e = vdi_table_by_name(&s->vdis, name, tag, snapid);
		if (e) {
			*out = *e;
			ret = SD_RES_SUCCESS;
		} else if ((tag && *tag) || snapid) {
			ret = vdi_table_by_name(&s->vdis, name, NULL, 0) ? SD_RES_NO_TAG
									 : SD_RES_NO_VDI;
			if (snapid && ret == SD_RES_NO_TAG)
				ret = SD_RES_NO_VDI;
		} else {
			ret = SD_RES_NO_VDI;
		}
	}
	pthread_mutex_unlock(&s->state_lock);
	return ret;
}

uint64_t group_placement_key(struct sheep *s, uint64_t oid)
{
	if (oid & (VDI_BIT | VDI_ATTR_BIT | VDI_BTREE_BIT | LEDGER_BIT))
		return oid; /* inodes and metadata: placed by their own id */
	uint32_t vid = oid_to_vid(oid);
	pthread_mutex_lock(&s->state_lock);
	uint32_t root = vdi_table_root(&s->vdis, vid);
	pthread_mutex_unlock(&s->state_lock);
	return (oid & ~SD_VDI_MASK) | ((uint64_t)root << VDI_SPACE_SHIFT);
}

bool group_formatted(struct sheep *s)
{
	pthread_mutex_lock(&s->state_lock);
	bool f = s->ctime != 0;
	pthread_mutex_unlock(&s->state_lock);
	return f;
}

int group_cluster_info(struct sheep *s, void *buf, size_t len)
{
	pthread_mutex_lock(&s->state_lock);
	struct sd_cluster_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.ctime = s->ctime;
	ci.epoch = s->epoch;
	ci.copies = s->def_copies;
	ci.copy_policy = s->def_policy;
	ci.block_size_shift = s->def_shift;
	ci.status = s->stopping ? 2 : (s->ctime ? 0 : 1);
	ci.recovery_enabled = s->recovery_enabled;
	ci.nr_zones = s->view ? s->view->nr_zones : 0;
	size_t used = sizeof(ci);
	if (used > len) {
		pthread_mutex_unlock(&s->state_lock);
		return -EMSGSIZE;
	}
	char *p = (char *)buf + used;
	for (size_t i = s->nr_epochs; i > 0; i--) {
		const struct epoch_rec *r = &s->epochs[i - 1];
		size_t b = sizeof(struct sd_epoch_rec) + r->nr_nodes * sizeof(struct sd_node);
		if (used + b > len)
			break;
		struct sd_epoch_rec h = {r->epoch, r->nr_nodes, r->time};
		memcpy(p, &h, sizeof(h));
		memcpy(p + sizeof(h), r->nodes, r->nr_nodes * sizeof(struct sd_node));
		p += b;
		used += b;
		ci.nr_epochs++;
	}
	memcpy(buf, &ci, sizeof(ci));
	pthread_mutex_unlock(&s->state_lock);
	return (int)used;
}

struct release_arg {
	struct sheep *s;
	uint64_t owner;
};

void group_release_owner(struct sheep *s, uint64_t owner)
{
	/* Loop thread: broadcast unlocks for what this owner holds; no wait. */
	pthread_mutex_lock(&s->state_lock);
	for (int b = 0; b < VDI_HASH_BUCKETS; b++)
		for (struct vdi_entry *e = s->vdis.buckets[b]; e; e = e->hnext)
			if (e->locked && lock_is_sender(e, &s->self, owner)) {
				struct cmsg_vdi m;
				memset(&m, 0, sizeof(m));
				m.h.type = CMSG_UNLOCK_VDI;
				m.h.len = sizeof(m);
				m.vid = e->vid;
				m.lock_owner = owner;
				post_broadcast(s, &m, sizeof(m), 0);
			}
	pthread_mutex_unlock(&s->state_lock);
}
