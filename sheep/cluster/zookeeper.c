/* zookeeper.c - the zookeeper cluster driver: sessions, joining, and what a lost session or ensemble means for this sheep. */
#include "config.h"

#if HAVE_ZOOKEEPER

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/zookeeper_priv.h"

/*
 * Sessions. A sheep is a member while its ZooKeeper session lives (its
 * member znode is ephemeral). Three things can happen to the connection:
 *
 *  - It drops and comes back within the session timeout (one server of
 *    the ensemble died, a short network cut): nothing changes; the client
 *    library reconnects to another server with the same session. If no
 *    server answers for a third of the timeout, the daemon is told
 *    suspend(true) and refuses I/O (with the whole ensemble gone every
 *    sheep does, so writes stop cluster-wide) until contact returns and the
 *    queue has been read up to date.
 *  - The session expires (the ensemble heard nothing for the whole
 *    timeout: a stopped or partitioned sheep). The others have buried this
 *    sheep by then, so it has left: the daemon is told quorum(false) (it
 *    drops its state and refuses I/O at once), and the driver opens a new
 *    session and joins as a new member; the daemon learns the cluster's
 *    state anew, as any joiner does, then gets quorum(true).
 *  - The process stood still (SIGSTOP, a long stall) for 2/3 of the
 *    timeout: it cannot know yet whether its session survived, so it
 *    suspends itself until a round trip to the ensemble succeeds or the
 *    expiry arrives.
 */

#define TICK_MS 500
#define PUBLISH_MS 1000
#define CONNECT_WAIT_MIN_MS 5000
#define JOIN_TRIES 20

static void session_cb(zhandle_t *zh, int type, int state, const char *path, void *arg)
{
	struct cluster_ctx *c = arg;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&c->mu);
	if (!c->zh || zh == c->zh) {
		if (state == ZOO_CONNECTED_STATE)
			c->f_connected = true;
		else if (state == ZOO_EXPIRED_SESSION_STATE)
			c->f_expired = true;
		else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE)
			c->f_disconnected = true;
	}
	pthread_mutex_unlock(&c->mu);
	uint64_t one = 1;
	if (write(c->efd, &one, sizeof(one)) < 0)
		sd_debug("zookeeper: wake: %s", strerror(errno));
}

static void zk_log_cb(const char *msg)
{
	sd_debug("zookeeper client: %s", msg);
}

/*
 * A thread that only sleeps a tenth of the session timeout at a time
 * (250 ms to 1 s; an idle sheep's wakeups count): if one of its sleeps lasts
 * 2/3 of the session timeout, the whole process stood still (SIGSTOP, a
 * frozen VM), not just a busy loop thread, and the session may have
 * expired meanwhile.
 */
#define WATCHDOG_MIN_MS 250
#define WATCHDOG_MAX_MS 1000
static void *watchdog(void *arg)
{
	struct cluster_ctx *c = arg;
	pthread_setname_np(pthread_self(), "sd_zk_watchdog");
	uint64_t last = sd_now_ns();
	uint64_t limit = (uint64_t)c->opt.timeout_ms * 2 / 3 * 1000000u;
	unsigned ms = c->opt.timeout_ms / 10;
	ms = ms < WATCHDOG_MIN_MS ? WATCHDOG_MIN_MS : ms > WATCHDOG_MAX_MS ? WATCHDOG_MAX_MS : ms;
	for (;;) {
		usleep(ms * 1000);
		uint64_t now = sd_now_ns();
		pthread_mutex_lock(&c->mu);
		bool stop = c->wd_stop;
		if (now - last > limit)
			c->f_stalled_ms = (now - last) / 1000000u;
		bool stalled = c->f_stalled_ms != 0;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			return NULL;
		if (stalled) {
			uint64_t one = 1;
			if (write(c->efd, &one, sizeof(one)) < 0)
				sd_debug("zookeeper: wake: %s", strerror(errno));
		}
		last = now;
	}
}

static unsigned suspend_ms(const struct cluster_ctx *c)
{
	unsigned ms = c->opt.timeout_ms / 3;
	return ms < 500 ? 500 : ms;
}

static int open_session(struct cluster_ctx *c)
{
	zhandle_t *zh = zookeeper_init2(c->opt.hosts, session_cb, (int)c->opt.timeout_ms, NULL, c, 0,
					zk_log_cb);
	if (!zh) {
		int r = errno ? -errno : -EIO;
		sd_err("zookeeper: cannot open a session to %s: %s", c->opt.hosts, strerror(-r));
		return r;
	}
	pthread_mutex_lock(&c->mu);
	c->zh = zh;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void close_session(struct cluster_ctx *c)
{
	zhandle_t *zh = c->zh;
	if (!zh)
		return;
	pthread_mutex_lock(&c->mu);
	c->zh = NULL;
	c->f_connected = c->f_disconnected = c->f_expired = c->f_queue = c->f_members = false;
	pthread_mutex_unlock(&c->mu);
	/* Events of the old handle find c->zh != zh (or NULL until the new
	 * one exists: open_session runs next and the flags are cleared again
	 * by dispatch before use). */
	zookeeper_close(zh);
	pthread_mutex_lock(&c->mu);
	c->f_connected = c->f_disconnected = c->f_expired = false;
	pthread_mutex_unlock(&c->mu);
	c->connected = false;
}

/* At start: wait for the first connection, so a wrong address is an error
 * the user sees at once rather than a sheep that never joins. */
static int wait_connected(struct cluster_ctx *c, unsigned ms)
{
	uint64_t end = sd_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool ok = c->f_connected, exp = c->f_expired;
		c->f_connected = c->f_disconnected = false;
		pthread_mutex_unlock(&c->mu);
		if (ok) {
			c->connected = true;
			return 0;
		}
		if (exp)
			return -ETIMEDOUT;
		uint64_t now = sd_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = c->efd, .events = POLLIN};
		int left = (int)((end - now) / 1000000u) + 1;
		if (poll(&p, 1, left > 100 ? 100 : left) > 0) {
			uint64_t x;
			if (read(c->efd, &x, sizeof(x)) < 0)
				sd_debug("zookeeper: %s", strerror(errno));
		}
	}
}

static int create_one(struct cluster_ctx *c, const char *path, const void *data, int len)
{
	int rc = zoo_create(c->zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
	if (rc == ZOK || rc == ZNODEEXISTS)
		return 0;
	sd_err("zookeeper: cannot create %s: %s", path, zerror(rc));
	return zk_err(rc);
}

/* The cluster's znodes: the path (each component), members, queue, base. */
static int ensure_paths(struct cluster_ctx *c)
{
	char p[sizeof(c->opt.path)];
	for (const char *s = strchr(c->opt.path + 1, '/');; s = strchr(s + 1, '/')) {
		size_t n = s ? (size_t)(s - c->opt.path) : strlen(c->opt.path);
		memcpy(p, c->opt.path, n);
		p[n] = '\0';
		int r = create_one(c, p, NULL, -1);
		if (r)
			return r;
		if (!s)
			break;
	}
	struct zk_base_hdr h = {.magic = ZK_BASE_MAGIC, .nr = 0, .pos = -1};
	int r = create_one(c, c->p_members, NULL, -1);
	if (!r)
		r = create_one(c, c->p_queue, NULL, -1);
	if (!r)
		r = create_one(c, c->p_base, (const char *)&h, sizeof(h));
	return r;
}

static int write_member(struct cluster_ctx *c, bool create)
{
	struct zk_memb m;
	memset(&m, 0, sizeof(m));
	m.magic = ZK_MEMB_MAGIC;
	m.pos = c->pos;
	m.node = c->self;
	if (!create) {
		int rc = zoo_set(c->zh, c->my_znode, (const char *)&m, sizeof(m), -1);
		if (rc == ZOK)
			c->published = c->pos;
		return zk_err(rc);
	}
	char path[1024];
	int64_t id;
	snprintf(path, sizeof(path), "%s/%s", c->p_members, c->prefix);
	int rc = zoo_create(c->zh, path, (const char *)&m, sizeof(m), &ZOO_OPEN_ACL_UNSAFE,
			    ZOO_EPHEMERAL_SEQUENTIAL, c->my_znode, sizeof(c->my_znode));
	if (rc != ZOK) {
		sd_err("zookeeper: cannot create this sheep's member znode: %s", zerror(rc));
		return zk_err(rc);
	}
	if (zkq_path_seq(c->my_znode, &id))
		return -EIO;
	c->my_id = (uint64_t)id;
	c->published = c->pos;
	return 0;
}

/* A restarted sheep's former self (same addr:port, session not expired
 * yet) is dead for sure: drop its znode, so the burial below counts it
 * among the dead and the others never count both. */
static int drop_former_selves(struct cluster_ctx *c)
{
	struct String_vector v = {0};
	int rc = zoo_get_children(c->zh, c->p_members, 0, &v);
	if (rc != ZOK)
		return zk_err(rc);
	int r = 0;
	size_t plen = strlen(c->prefix);
	for (int i = 0; i < v.count && !r; i++) {
		int64_t id;
		if (strncmp(v.data[i], c->prefix, plen) || zkq_path_seq(v.data[i], &id) ||
		    (uint64_t)id == c->my_id || strlen(v.data[i]) != plen + 10)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", c->p_members, v.data[i]);
		sd_notice("zookeeper: removing member %" PRId64 ", a former run of this sheep", id);
		rc = zoo_delete(c->zh, path, -1);
		if (rc != ZOK && rc != ZNONODE)
			r = zk_err(rc);
	}
	deallocate_String_vector(&v);
	return r;
}

static void kick(struct cluster_ctx *c)
{
	uint64_t one = 1;
	if (write(c->efd, &one, sizeof(one)) < 0)
		sd_debug("zookeeper: kick: %s", strerror(errno));
}

/*
 * Join: take the base (the member list at some position), register our
 * member znode (publishing that position, which keeps the entries after it
 * from being trimmed), append our JOIN, then apply silently every entry
 * between the base and our JOIN. Dispatch applies our JOIN and what follows,
 * telling the daemon. When the base moves under us (a trim raced our
 * reading) we start over from the new base; our JOIN is appended once.
 */
static int do_join(struct cluster_ctx *c)
{
	int r = ensure_paths(c);
	for (int tries = 0; !r && tries < JOIN_TRIES; tries++) {
		int ver;
		struct Stat st;
		if ((r = zkq_load_base(c, &ver)))
			break;
		if ((r = write_member(c, c->my_id == 0)))
			break;
		if (c->join_seq < 0) {
			/* Bury the dead first (a whole cluster restarted after a
			 * crash: nobody alive is left to do it), so that the
			 * members listed at our JOIN are live ones that can send
			 * us the cluster's state. */
			r = zkq_read(c, -1, false);
			if (r == -ENOENT)
				continue;
			if (r || (r = drop_former_selves(c)) || (r = zkq_bury_dead(c)))
				break;
			if ((r = zkq_append(c, ZK_JOIN, c->my_id, &c->self, NULL, 0, &c->join_seq)))
				break;
		}
		r = zkq_read(c, c->join_seq, false);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r)
			break;
		int rc = zoo_exists(c->zh, c->p_base, 0, &st);
		if (rc != ZOK) {
			r = zk_err(rc);
			break;
		}
		if (st.version != ver)
			continue;
		if (c->pos >= c->join_seq) {
			r = -EIO;
			break;
		}
		pthread_mutex_lock(&c->mu);
		c->f_queue = c->f_members = true;
		pthread_mutex_unlock(&c->mu);
		kick(c);
		c->want_rejoin = false;
		return 0;
	}
	if (!r)
		r = -EAGAIN;
	sd_err("zookeeper: cannot join the cluster at %s%s: %s", c->opt.hosts, c->opt.path,
	       strerror(-r));
	return r;
}

static void tell_left(struct cluster_ctx *c)
{
	if (c->suspended) {
		c->suspended = false; /* quorum(false) is the stronger word */
	}
	if (!c->told_unquorate) {
		c->told_unquorate = true;
		if (c->ev.quorum)
			c->ev.quorum(c->arg, false);
	}
}

static void set_suspended(struct cluster_ctx *c, bool on)
{
	if (c->suspended == on)
		return;
	c->suspended = on;
	if (c->ev.suspend)
		c->ev.suspend(c->arg, on);
}

static void on_expired(struct cluster_ctx *c)
{
	sd_err("zookeeper: session expired (the ensemble at %s heard nothing from this sheep for "
	       "%u ms): this sheep has left the cluster; it stops serving now and joins again as "
	       "a new member",
	       c->opt.hosts, c->opt.timeout_ms);
	tell_left(c);
	close_session(c);
	zkq_reset(c);
	c->my_id = 0;
	c->join_seq = -1;
	c->want_rejoin = true;
	c->disc_since = 0;
	open_session(c);
}

/*
 * Join again as a new member: first leave at once (our LEAVE, our znode
 * gone), then, after c->rejoin_after, join with a new znode. Leaving
 * before the pause matters when several sheep rejoin because nobody could
 * send them the cluster's state: while they are out, the first one back
 * finds itself alone and founds the cluster again.
 */
static void rejoin_fresh(struct cluster_ctx *c)
{
	tell_left(c);
	if (c->my_id) {
		bool member = false;
		for (size_t i = 0; i < c->nr; i++)
			member |= c->ids[i] == c->my_id;
		if (member && zkq_append(c, ZK_LEAVE, c->my_id, &c->self, NULL, 0, NULL))
			return;
		int rc = zoo_delete(c->zh, c->my_znode, -1);
		if (rc != ZOK && rc != ZNONODE)
			return; /* try again on the next tick */
		c->my_id = 0;
	}
	zkq_reset(c);
	c->join_seq = -1;
	if (sd_now_ns() < c->rejoin_after)
		return;
	c->want_rejoin = false;
	if (do_join(c) == 0)
		sd_notice("zookeeper: joined again as a new member; waiting for the cluster's state");
	else
		c->want_rejoin = true;
}

static void publish(struct cluster_ctx *c, uint64_t now)
{
	if (!c->in_group || c->pos == c->published ||
	    now - c->last_publish < (uint64_t)PUBLISH_MS * 1000000u)
		return;
	c->last_publish = now;
	if (write_member(c, false))
		sd_debug("zookeeper: cannot publish position %" PRId64, c->pos);
}

static void on_tick(struct cluster_ctx *c, uint64_t now)
{
	if (c->in_group && !c->connected && c->disc_since && !c->suspended &&
	    now - c->disc_since > (uint64_t)suspend_ms(c) * 1000000u) {
		sd_err("zookeeper: no ZooKeeper server at %s answers (for %" PRIu64 " ms): this "
		       "sheep refuses I/O until the ensemble returns",
		       c->opt.hosts, (now - c->disc_since) / 1000000u);
		set_suspended(c, true);
	}
	if (!c->zh && c->joined && open_session(c))
		return;
	if (c->connected && c->joined && c->want_rejoin && c->zh)
		rejoin_fresh(c);
	if (c->connected) {
		publish(c, now);
		zkq_trim(c);
	}
}

static int dispatch_session(struct cluster_ctx *c)
{
	uint64_t x, now = sd_now_ns();
	bool tick = read(c->tfd, &x, sizeof(x)) == (ssize_t)sizeof(x);
	while (read(c->efd, &x, sizeof(x)) == (ssize_t)sizeof(x))
		;
	pthread_mutex_lock(&c->mu);
	bool conn = c->f_connected, disc = c->f_disconnected, exp = c->f_expired;
	bool fq = c->f_queue, fm = c->f_members;
	uint64_t stalled = c->f_stalled_ms;
	c->f_connected = c->f_disconnected = c->f_expired = c->f_queue = c->f_members = false;
	c->f_stalled_ms = 0;
	pthread_mutex_unlock(&c->mu);

	if (stalled && c->in_group) {
		sd_warn("zookeeper: this process stood still for %" PRIu64 " ms (the session "
			"timeout is %u ms): refusing I/O until the ensemble confirms the session",
			stalled, c->opt.timeout_ms);
		set_suspended(c, true);
	}

	if (exp && c->joined) {
		on_expired(c);
		return 0;
	}
	if (disc && !conn && c->connected) {
		c->connected = false;
		c->disc_since = now;
		sd_warn("zookeeper: lost the connection to the ensemble; reconnecting (the session "
			"lasts %u ms without contact)", c->opt.timeout_ms);
	}
	if (conn) {
		if (!c->connected && c->disc_since)
			sd_notice("zookeeper: connected again after %" PRIu64 " ms",
				  (now - c->disc_since) / 1000000u);
		c->connected = true;
		c->disc_since = 0;
		fq = fm = true;
	}
	if (c->connected && c->joined && c->want_rejoin) {
		rejoin_fresh(c);
		return 0;
	}
	if (c->connected && c->joined) {
		int r = fq ? zkq_read(c, -1, true) : 0;
		if (r == -ENOENT) {
			sd_err("zookeeper: a queue entry this sheep had not applied is gone; it "
			       "leaves and joins again");
			c->want_rejoin = true;
			kick(c);
			return 0;
		}
		if (!r && !c->want_rejoin)
			r = zkq_check_leaves(c, fm);
		if (c->want_rejoin) {
			kick(c);
			return 0;
		}
		if (c->suspended && !r && zoo_exists(c->zh, c->p_base, 0, NULL) == ZOK) {
			sd_notice("zookeeper: the ensemble answers and this sheep is up to date "
				  "(queue entry %" PRId64 "): serving again", c->pos);
			set_suspended(c, false);
		}
	}
	if (tick)
		on_tick(c, now);
	return 0;
}

static int zk_dispatch(struct cluster_ctx *c)
{
	int r = dispatch_session(c);
	if (c->joined)
		zkw_dispatch(c);
	return r;
}

static void zk_destroy(struct cluster_ctx *c)
{
	if (!c)
		return;
	if (c->wd_running) {
		pthread_mutex_lock(&c->mu);
		c->wd_stop = true;
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->wd, NULL);
	}
	zkw_stop(c);
	close_session(c);
	int fds[] = {c->efd, c->tfd, c->epfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&c->mu);
	free(c->ids);
	free(c->nodes);
	free(c->undo);
	free(c->live);
	free(c->older);
	free(c->buf);
	free(c);
}

static int zk_init(struct cluster_ctx **out, const char *options, const struct sd_node *self,
		   const struct cluster_events *ev, void *arg)
{
	if (!out || !self || !ev)
		return -EINVAL;
	*out = NULL;
	struct cluster_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->efd = c->tfd = c->epfd = c->wfd = -1;
	pthread_mutex_init(&c->mu, NULL);
	c->self = *self;
	c->self.addr[sizeof(c->self.addr) - 1] = '\0';
	c->ev = *ev;
	c->arg = arg;
	c->join_seq = -1;
	zkq_reset(c);
	char err[256];
	int r = zk_parse_options(options, &c->opt, err, sizeof(err));
	if (r) {
		sd_err("zookeeper: %s", err);
		goto fail;
	}
	snprintf(c->p_members, sizeof(c->p_members), "%s/members", c->opt.path);
	snprintf(c->p_queue, sizeof(c->p_queue), "%s/queue", c->opt.path);
	snprintf(c->p_base, sizeof(c->p_base), "%s/base", c->opt.path);
	zk_member_prefix(&c->self, c->prefix, sizeof(c->prefix));
	c->ids = calloc(SD_MAX_NODES, sizeof(*c->ids));
	c->nodes = calloc(SD_MAX_NODES, sizeof(*c->nodes));
	c->buf = malloc(ZK_MAX_DATA + 64);
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!c->ids || !c->nodes || !c->buf) {
		r = -ENOMEM;
		goto fail;
	}
	struct itimerspec its = {{0, TICK_MS * 1000000L}, {0, TICK_MS * 1000000L}};
	struct epoll_event e1 = {.events = EPOLLIN, .data.fd = c->efd};
	struct epoll_event e2 = {.events = EPOLLIN, .data.fd = c->tfd};
	if (c->efd < 0 || c->tfd < 0 || c->epfd < 0 || timerfd_settime(c->tfd, 0, &its, NULL) ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->efd, &e1) ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->tfd, &e2)) {
		r = -errno;
		goto fail;
	}
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	if ((r = open_session(c)))
		goto fail;
	unsigned wait = c->opt.timeout_ms > CONNECT_WAIT_MIN_MS ? c->opt.timeout_ms
								: CONNECT_WAIT_MIN_MS;
	if ((r = wait_connected(c, wait))) {
		sd_err("zookeeper: no ZooKeeper server at %s answered within %u ms: is the "
		       "ensemble running and reachable? (sheep -c zookeeper:HOST:PORT[,HOST:PORT...])",
		       c->opt.hosts, wait);
		r = -ECONNREFUSED;
		goto fail;
	}
	if ((r = -pthread_create(&c->wd, NULL, watchdog, c)))
		goto fail;
	c->wd_running = true;
	const clientid_t *cid = zoo_client_id(c->zh);
	sd_notice("zookeeper: connected to %s, session 0x%llx, timeout %d ms (asked %u), cluster "
		  "path %s",
		  c->opt.hosts, cid ? (unsigned long long)cid->client_id : 0ULL,
		  zoo_recv_timeout(c->zh), c->opt.timeout_ms, c->opt.path);
	*out = c;
	return 0;
fail:
	zk_destroy(c);
	return r;
}

/* A loaded ensemble may time a request out or drop the connection while
 * we join: wait for it (a new session if ours expired) and try again, for
 * JOIN_RETRY_S at least. A repeated JOIN of ours is ignored by all. */
#define JOIN_RETRY_S 60
static int zk_join(struct cluster_ctx *c)
{
	if (c->joined)
		return -EALREADY;
	unsigned secs = c->opt.timeout_ms / 100 > JOIN_RETRY_S ? c->opt.timeout_ms / 100 : JOIN_RETRY_S;
	uint64_t end = sd_now_ns() + (uint64_t)secs * 1000000000u;
	int r;
	while ((r = do_join(c)) == -ENOTCONN || r == -ETIMEDOUT) {
		uint64_t now = sd_now_ns();
		if (now >= end)
			break;
		pthread_mutex_lock(&c->mu);
		bool expired = c->f_expired || zoo_state(c->zh) == ZOO_EXPIRED_SESSION_STATE;
		c->f_expired = false;
		pthread_mutex_unlock(&c->mu);
		sd_warn("zookeeper: the ensemble did not answer in time while joining; trying again%s",
			expired ? " with a new session" : "");
		if (expired) {
			close_session(c);
			zkq_reset(c);
			c->my_id = 0;
			c->join_seq = -1;
			if ((r = open_session(c)))
				break;
		}
		if (zoo_state(c->zh) != ZOO_CONNECTED_STATE &&
		    wait_connected(c, (unsigned)((end - now) / 1000000u)))
			break;
		c->connected = true;
	}
	if (!r)
		c->joined = true;
	return r;
}

static int zk_leave(struct cluster_ctx *c)
{
	if (!c->joined)
		return -ENOTCONN;
	if (c->connected && c->my_id) {
		if (c->in_group)
			zkq_append(c, ZK_LEAVE, c->my_id, &c->self, NULL, 0, NULL);
		zoo_delete(c->zh, c->my_znode, -1);
	}
	zkw_stop(c);
	c->joined = false;
	c->in_group = false;
	c->my_id = 0;
	return 0;
}

static int zk_broadcast(struct cluster_ctx *c, const void *msg, size_t len)
{
	if (len > CLUSTER_MAX_MSG || (len && !msg))
		return len > CLUSTER_MAX_MSG ? -EMSGSIZE : -EINVAL;
	if (sizeof(struct zk_rec) + len > ZK_MAX_DATA) {
		sd_err("zookeeper: a cluster message of %zu bytes exceeds what one znode holds "
		       "(%zu bytes)", len, (size_t)ZK_MAX_DATA - sizeof(struct zk_rec));
		return -EMSGSIZE;
	}
	if (!c->in_group || !c->connected || c->want_rejoin)
		return -ENOTCONN;
	return zkq_append(c, ZK_MSG, c->my_id, &c->self, msg, (uint32_t)len, NULL);
}

static int zk_get_fd(struct cluster_ctx *c)
{
	return c->epfd;
}

const struct cluster_driver cluster_zookeeper_driver = {
	.name = "zookeeper",
	.init = zk_init,
	.join = zk_join,
	.leave = zk_leave,
	.broadcast = zk_broadcast,
	.get_fd = zk_get_fd,
	.dispatch = zk_dispatch,
	.destroy = zk_destroy,
};

#endif /* HAVE_ZOOKEEPER */
