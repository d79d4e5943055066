/* zookeeper_watch.c - the zookeeper driver's fast failure detection: each member holds an idle TCP
 * connection to the next one's port and removes a member whose port refuses once that connection
 * dropped. */
#include "config.h"

#if HAVE_ZOOKEEPER

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/zookeeper_priv.h"

/*
 * Without this, a kill -9'd sheep stays a member until ZooKeeper expires
 * its session (timeout=MS, 5 s by default) and every member waits that
 * long for the epoch change. The kernel of a killed process closes its
 * sockets at once, so a peer holding a connection to it sees the close at
 * once:
 *
 *  - Member i keeps one idle connection to the Sheepdog port of member
 *    i+1 (the last member watches the first; the member list is the same
 *    everywhere, so every member is watched by exactly one other). The
 *    connection carries no request and costs no wakeup while idle.
 *  - When it drops, the watcher connects again at once. A refused
 *    connection means nothing listens on that address and port any more:
 *    the process is gone. Only then does the watcher delete the member's
 *    ephemeral znode. The oldest live member sees the member list change
 *    and appends the LEAVE, as it does after a session expiry, so every
 *    member applies the same LEAVE at the same queue position and the
 *    epoch changes once, in order.
 *  - Anything but a refusal (the connection is accepted again, or the
 *    attempt times out: a stopped process, a cut network, a powered-off
 *    host) proves nothing, and the session timeout decides as before.
 *    A stopped (SIGSTOP) sheep still listens: the kernel completes the
 *    handshake for it, so it is never removed this way.
 *  - Only the very first connect to a member may be refused without
 *    proving anything (a port a firewall rejects from here only). Once
 *    this node has been connected to it, every later refusal proves it
 *    gone, also after attempts that proved nothing: the confirming
 *    connect of a drop can time out (a SYN lost while the dying process
 *    closes its listener, a network cut) and the retry then be refused.
 *    Before, only the connect right after a drop counted, and such a
 *    member stayed until its session expired (tests/func/090).
 *
 * Nothing here acts on an epoch: the watcher only removes a znode whose
 * owner cannot be serving. If it were wrong (a port closed by a live
 * sheep), that sheep would apply its own LEAVE and join again as a new
 * member, the path a session expiry takes.
 */

#define WATCH_CONNECT_MS 2000 /* a pending connect this old proves nothing; retry */
#define WATCH_RETRY_MS	 1000 /* after a connect that proved nothing */
#define WATCH_MAX_FLAPS	 3    /* accepted and dropped at once, in a row */

void zk_member_prefix(const struct sd_node *node, char *buf, size_t len)
{
	char addr[sizeof(node->addr)];
	snprintf(addr, sizeof(addr), "%s", node->addr);
	for (char *p = addr; *p; p++)
		if (*p == '/' || *p == '-' || *p == '_')
			*p = '.';
	snprintf(buf, len, "m-%s_%u-", addr, node->port);
}

static void watch_close(struct cluster_ctx *c)
{
	if (c->wfd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->wfd, NULL);
		close(c->wfd);
	}
	c->wfd = -1;
	c->w_state = ZKW_IDLE;
}

/* Start a non-blocking connect to the watched member. Returns 0 (pending or
 * connected), -ECONNREFUSED (nothing listens) or another -errno. */
static int watch_connect(struct cluster_ctx *c)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	char port[8];
	snprintf(port, sizeof(port), "%u", c->w_node.port);
	if (getaddrinfo(c->w_node.addr, port, &hints, &res))
		return -EHOSTUNREACH;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = 0;
	if (fd < 0)
		r = -errno;
	else if (connect(fd, res->ai_addr, res->ai_addrlen) && errno != EINPROGRESS)
		r = -errno;
	freeaddrinfo(res);
	if (r) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.fd = fd};
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &e)) {
		r = -errno;
		close(fd);
		return r;
	}
	c->wfd = fd;
	c->w_state = ZKW_CONNECTING;
	c->w_since = sd_now_ns();
	return 0;
}

/* The watched member's port refused us: its process is gone. Remove its
 * znode (the oldest live member then buries it). */
static void watch_declare_dead(struct cluster_ctx *c)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/", c->p_members);
	size_t n = strlen(path);
	zk_member_prefix(&c->w_node, path + n, sizeof(path) - n);
	n = strlen(path);
	snprintf(path + n, sizeof(path) - n, "%010" PRIu64, c->w_id);
	int rc = zoo_delete(c->zh, path, -1);
	if (rc == ZOK)
		sd_notice("zookeeper: %s:%u (member %" PRIu64 ") closed its connection and its "
			  "port refuses: its process is gone; removed its znode",
			  c->w_node.addr, c->w_node.port, c->w_id);
	else if (rc != ZNONODE)
		sd_warn("zookeeper: cannot remove the znode of dead member %" PRIu64 ": %s",
			c->w_id, zerror(rc));
	c->w_dead = true;
	c->w_inherit = true; /* its own target is ours next, unwatched */
	watch_close(c);
}

/* A connect that proved nothing: try again in a while. */
static void watch_retry_later(struct cluster_ctx *c, const char *why)
{
	sd_debug("zookeeper: watching member %" PRIu64 ": %s; trying again in %d ms%s", c->w_id,
		 why, WATCH_RETRY_MS, c->w_confirm ? " (a refusal will prove it gone)" : "");
	watch_close(c);
	c->w_retry_after = sd_now_ns() + (uint64_t)WATCH_RETRY_MS * 1000000u;
}

/* (Re)connect: first, after the connection dropped, or after a connect that
 * proved nothing. A refusal proves the member gone unless this node never
 * reached its port (and did not inherit it from a member it removed). */
static void watch_start(struct cluster_ctx *c)
{
	c->w_confirm = c->w_inherit || (c->w_known && c->w_known_id == c->w_id);
	int r = watch_connect(c);
	if (r == -ECONNREFUSED && c->w_confirm)
		watch_declare_dead(c);
	else if (r)
		watch_retry_later(c, strerror(-r));
}

void zkw_update(struct cluster_ctx *c)
{
	bool on = false;
	uint64_t want = 0;
	size_t at = c->nr;
	if (c->in_group && c->connected && !c->want_rejoin && c->nr >= 2) {
		for (size_t i = 0; i < c->nr; i++)
			if (c->ids[i] == c->my_id)
				at = i;
		if (at < c->nr) {
			on = true;
			want = c->ids[(at + 1) % c->nr];
		}
	}
	if (on != c->w_on || want != c->w_id) {
		/* Inherited only from a target this node just removed. */
		bool inherit = c->w_dead && c->w_inherit && on;
		watch_close(c);
		c->w_on = on;
		c->w_id = want;
		c->w_dead = false;
		c->w_inherit = inherit;
		c->w_flaps = 0;
		c->w_retry_after = 0;
		if (!on)
			return;
		c->w_node = c->nodes[(at + 1) % c->nr];
		sd_debug("zookeeper: watching %s:%u (member %" PRIu64 ")", c->w_node.addr,
			 c->w_node.port, want);
	}
	/* A member that refused is dead but not yet buried; when it is, the
	 * target changes. A first connect that is refused proves nothing
	 * (a port a firewall rejects from here only): retry it later; but a
	 * target inherited from a member this node removed had no other
	 * watcher, and it refusing is taken as death (two neighbours killed
	 * together: tests/func/090), as is one this node has been connected
	 * to before (watch_start). */
	if (c->w_on && c->wfd < 0 && !c->w_dead && sd_now_ns() >= c->w_retry_after)
		watch_start(c);
}

/* The connection to the watched member: connected, dropped or refused. */
static void watch_event(struct cluster_ctx *c, short revents)
{
	if (c->w_state == ZKW_CONNECTING) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
			if (sd_now_ns() - c->w_since > (uint64_t)WATCH_CONNECT_MS * 1000000u)
				watch_retry_later(c, "no answer");
			return;
		}
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(c->wfd, SOL_SOCKET, SO_ERROR, &err, &l))
			err = errno;
		if (err == ECONNREFUSED && c->w_confirm) {
			watch_declare_dead(c);
			return;
		}
		if (err) {
			watch_retry_later(c, strerror(err));
			return;
		}
		struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c->wfd};
		epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->wfd, &e);
		c->w_state = ZKW_CONNECTED;
		c->w_inherit = false; /* it listens: from now on, as any target */
		c->w_known = true;
		c->w_known_id = c->w_id;
		return;
	}
	if (!(revents & (POLLIN | POLLRDHUP | POLLERR | POLLHUP)))
		return;
	char buf[256];
	ssize_t n = recv(c->wfd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return; /* the peer never writes on this connection; ignore it */
	/* A port that accepts and closes at once (not a sheep's) would loop
	 * here: after a few such drops, wait before trying again. */
	bool brief = sd_now_ns() - c->w_since < (uint64_t)WATCH_RETRY_MS * 1000000u;
	c->w_flaps = brief ? c->w_flaps + 1 : 0;
	watch_close(c);
	if (c->w_flaps > WATCH_MAX_FLAPS) {
		c->w_flaps = 0;
		watch_retry_later(c, "its port accepts and closes at once");
		return;
	}
	if (c->w_flaps <= 1)
		sd_info("zookeeper: the connection to %s:%u (member %" PRIu64 ") dropped; "
			"checking its port",
			c->w_node.addr, c->w_node.port, c->w_id);
	watch_start(c);
}

void zkw_dispatch(struct cluster_ctx *c)
{
	if (c->wfd >= 0) {
		struct pollfd p = {.fd = c->wfd, .events = POLLIN | POLLOUT | POLLRDHUP};
		if (poll(&p, 1, 0) >= 0)
			watch_event(c, c->w_state == ZKW_CONNECTED ? (short)(p.revents & ~POLLOUT)
								   : p.revents);
	}
	zkw_update(c);
}

void zkw_stop(struct cluster_ctx *c)
{
	watch_close(c);
	c->w_on = false;
	c->w_dead = false;
}

#endif /* HAVE_ZOOKEEPER */
