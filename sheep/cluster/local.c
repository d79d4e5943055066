/* local.c - the `local` cluster driver: sheep on one machine share a directory holding a totally ordered event log. */
/*
 * Files in the shared directory (option path=, default /tmp/sheepdog-local;
 * when path names something that is not a directory, PATH.d is used):
 *
 *   lock          flock()ed: exclusive to append or compact the log, shared
 *                 to read it
 *   log           64-byte header {magic "SDLOCAL1", base, end, random id} then
 *                 records; a member stops (dispatch fails) if the id changes
 *                 under it (log removed). Positions are logical (lsn): the record at lsn L is at
 *                 file offset 64 + L - base. A record is {magic, type
 *                 JOIN/LEAVE/MSG, payload length, crc32c, lsn, struct
 *                 sd_node (joining, leaving or sending node)} + payload,
 *                 padded to 8 bytes. An append writes the record past end,
 *                 then moves end: a writer killed in between leaves nothing.
 *   m.ADDR_PORT_INCARNATION  one per member: {magic, u64 lsn read up to,
 *                 struct sd_node}. Its owner holds an exclusive flock on it
 *                 for life; the kernel drops it when the process dies, which
 *                 is how the others notice a death.
 *
 * Every member reads the same log in the same order, so all see the same
 * sequence of JOIN, LEAVE and MSG (virtual synchrony); the member list is
 * the JOIN order minus LEAVEs, oldest first. A joiner replays the log from
 * base silently up to its own JOIN, which it delivers with the full list.
 * Failure detection (timerfd): every 200 ms the oldest member try-locks
 * every other member file and the others try-lock the oldest's; every
 * member also sweeps all files every 5 s (a stopped oldest member must not
 * hide the deaths of the others for longer). The first to get a lock
 * appends a LEAVE for it and removes the file, both under the log lock
 * (LEAVEs of non-members are ignored, so a repeat is harmless). Probing
 * every file from every member every tick was O(N^2) opens and flocks per
 * tick for the machine.
 * A joiner first buries every dead member (LEAVE, file removed), its own
 * former self included, and only then appends its JOIN; a live member with
 * its addr:port makes join fail. So the members listed at a JOIN were all
 * alive when it was appended (a file a reaper holds locked at that moment
 * is buried by that reaper right after). After every member was killed at
 * once (a power loss), the first sheep back is alone at its own JOIN and
 * starts from its own state; a later one learns the state from it. A JOIN
 * listing dead members instead made two restarted sheep each wait for the
 * other's snapshot: neither alone, neither synced, forever.
 *
 * Compaction: once the log holds more than 1 MiB past base and every member
 * has read it all, a member rewrites it as one synthetic JOIN per current
 * member ending at the same lsn and renames it over the old one.
 *
 * Wake-ups: an inotify watch on the log file (appends) and on the
 * directory for renames (a compacted log, a member file put in place).
 * Member files are not watched: every member rewrites its read position
 * after each batch, and waking every member for that was N^2 wake-ups (and
 * shared flocks starving the exclusive one of a joiner) per record. When
 * no inotify instance can be had (fs.inotify.max_user_instances, 128 per
 * user by default, is shared by everything the user runs), the driver
 * logs it and polls the log header every 50 ms instead, without the lock
 * when nothing is new.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/cluster.h"
#include "sheep/cluster/local_priv.h"

static void publish_pos(struct cluster_ctx *c)
{
	if (c->memfd < 0 || c->published == c->pos)
		return;
	if (lc_pwrite_full(c->memfd, &c->pos, sizeof(c->pos), offsetof(struct memb_file, pos)) == 0)
		c->published = c->pos;
}

/* ---- delivery ---- */

static ssize_t member_index(struct cluster_ctx *c, const struct sd_node *n)
{
	for (size_t i = 0; i < c->nr_members; i++)
		if (lc_same_node(&c->members[i], n))
			return (ssize_t)i;
	return -1;
}

static void process(struct cluster_ctx *c, const struct rec_hdr *rh, const uint8_t *payload)
{
	ssize_t i = member_index(c, &rh->node);
	switch (rh->type) {
	case REC_JOIN:
		if (i >= 0 || c->nr_members >= SD_MAX_NODES)
			return;
		c->members[c->nr_members++] = rh->node;
		if (!c->in_group && lc_same_node(&rh->node, &c->self))
			c->in_group = true; /* our own join: the first thing we deliver */
		if (c->in_group && c->ev.membership)
			c->ev.membership(c->arg, c->members, c->nr_members, &rh->node, true);
		return;
	case REC_LEAVE:
		if (i < 0)
			return;
		memmove(&c->members[i], &c->members[i + 1],
			(c->nr_members - (size_t)i - 1) * sizeof(c->members[0]));
		c->nr_members--;
		if (c->in_group && c->ev.membership)
			c->ev.membership(c->arg, c->members, c->nr_members, &rh->node, false);
		if (lc_same_node(&rh->node, &c->self))
			c->in_group = false;
		return;
	case REC_MSG:
		if (i >= 0 && c->in_group && c->ev.deliver)
			c->ev.deliver(c->arg, &rh->node, payload, rh->len);
		return;
	}
}

int lc_deliver_batch(struct cluster_ctx *c, const uint8_t *buf, size_t want)
{
	size_t off = 0;
	if (want < sizeof(struct rec_hdr))
		return -EIO;
	while (off + sizeof(struct rec_hdr) <= want) {
		struct rec_hdr rh;
		memcpy(&rh, buf + off, sizeof(rh));
		size_t sz = lc_rec_size(rh.len);
		if (rh.magic != REC_MAGIC || rh.lsn != c->pos || rh.len > CLUSTER_MAX_MSG)
			return -EIO;
		if (off + sz > want)
			return off == 0 ? -EIO : 0; /* ends inside a record; else the rest next batch */
		uint32_t crc = rh.crc;
		rh.crc = 0;
		if (sd_crc32c(sd_crc32c(0, &rh, sizeof(rh)), buf + off + sizeof(rh), rh.len) != crc)
			return -EIO;
		/* The members list is handed up and printed: an address that a
		 * damaged log left unterminated must not run past its field
		 * (fuzz_local; the other drivers terminate theirs too). */
		rh.node.addr[sizeof(rh.node.addr) - 1] = '\0';
		c->pos += sz;
		process(c, &rh, buf + off + sizeof(rh));
		off += sz;
	}
	return 0;
}

/* Without the lock: true when the log is the one we read and ends where
 * we are. An append moves end after writing the record, and wakes us (or
 * the next poll finds it), so a stale answer only delays to that wake-up. */
static bool log_unchanged(struct cluster_ctx *c)
{
	struct stat sb;
	struct log_hdr h;
	if (c->logfd < 0 || fstatat(c->dirfd, "log", &sb, 0) || sb.st_ino != c->log_ino)
		return false;
	if (lc_pread_full(c->logfd, &h, sizeof(h), 0) || memcmp(h.magic, LOG_MAGIC, sizeof(h.magic)))
		return false;
	return h.id == c->log_id && h.end == c->pos;
}

/* Read records [pos, end) in batches and deliver them, outside the lock. */
static int read_log(struct cluster_ctx *c)
{
	uint8_t *buf = NULL;
	int r = 0;
	if (log_unchanged(c))
		return 0;
	for (;;) {
		struct log_hdr h;
		r = lc_lock_log(c, LOCK_SH);
		if (r)
			break;
		r = lc_log_current(c);
		if (!r)
			r = lc_log_hdr_read(c, &h);
		if (!r && (h.id != c->log_id || c->pos < h.base || c->pos > h.end)) {
			/* removed and started afresh, or compacted past us */
			sd_err("local cluster: %s/log no longer holds position %" PRIu64
			       " (it spans %" PRIu64 "..%" PRIu64 ")",
			       c->dir, c->pos, h.base, h.end);
			r = -EIO;
		}
		size_t want = 0;
		if (!r) {
			c->last_base = h.base;
			c->last_end = h.end;
			want = (size_t)(h.end - c->pos);
			if (want > READ_BATCH) {
				struct rec_hdr rh;
				r = lc_pread_full(c->logfd, &rh, sizeof(rh), LOG_HDR + c->pos - h.base);
				want = r ? 0 : SD_MAX((size_t)READ_BATCH, lc_rec_size(rh.len));
				want = want > h.end - c->pos ? (size_t)(h.end - c->pos) : want;
			}
		}
		if (!r && want) {
			free(buf);
			buf = malloc(want);
			r = buf ? lc_pread_full(c->logfd, buf, want, LOG_HDR + c->pos - h.base) : -ENOMEM;
		}
		lc_unlock_log(c);
		if (r || !want)
			break;
		r = lc_deliver_batch(c, buf, want);
		if (r) {
			sd_err("local cluster: bad record at lsn %" PRIu64 " in %s/log", c->pos,
			       c->dir);
			break;
		}
		publish_pos(c);
	}
	free(buf);
	return r;
}

/* Rewrite the log as synthetic JOINs of the current members once everyone
 * has read it all (see the top of the file). Best effort. */
static void maybe_compact(struct cluster_ctx *c)
{
	if (!c->in_group || c->last_end - c->last_base < COMPACT_MIN || c->pos != c->last_end)
		return;
	pthread_mutex_lock(&c->mu);
	if (flock(c->lockfd, LOCK_EX | LOCK_NB)) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct log_hdr h;
	uint8_t *recs = NULL;
	DIR *d = NULL;
	if (lc_log_current(c) || lc_log_hdr_read(c, &h) || h.end != c->pos)
		goto out;
	if (!(d = sd_opendirat(c->dirfd, ".")))
		goto out;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct memb_file mf;
		if (strncmp(de->d_name, "m.", 2))
			continue;
		int fd = openat(c->dirfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		int r = lc_pread_full(fd, &mf, sizeof(mf), 0);
		close(fd);
		if (r || mf.pos != h.end)
			goto out; /* someone has not read it all yet */
	}
	size_t one = lc_rec_size(0), len = one * c->nr_members;
	recs = calloc(1, len ? len : 1);
	if (!recs)
		goto out;
	uint64_t base = h.end - len;
	for (size_t i = 0; i < c->nr_members; i++)
		lc_rec_fill((struct rec_hdr *)(recs + i * one), REC_JOIN, &c->members[i],
			 base + i * one, NULL, 0);
	if (lc_write_fresh_log(c, h.id, base, h.end, recs, len) == 0) {
		sd_debug("local cluster: compacted log from %" PRIu64 " bytes", h.end - h.base);
		c->last_base = base;
		lc_log_current(c);
	}
out:
	if (d)
		closedir(d);
	free(recs);
	flock(c->lockfd, LOCK_UN);
	pthread_mutex_unlock(&c->mu);
}

/* Keep the inotify watch on the current log file (compaction replaces it;
 * the directory watch reports the rename). */
static void watch_log(struct cluster_ctx *c)
{
	struct stat sb;
	char path[sizeof(c->dir) + 8];
	if (c->inofd < 0 || fstatat(c->dirfd, "log", &sb, 0) ||
	    (c->log_wd >= 0 && sb.st_ino == c->watched_ino))
		return;
	snprintf(path, sizeof(path), "%s/log", c->dir);
	int wd = inotify_add_watch(c->inofd, path, IN_MODIFY);
	if (wd < 0) {
		sd_warn("local cluster: cannot watch %s: %s (the 200 ms timer reads it)", path,
			strerror(errno));
		return;
	}
	if (c->log_wd >= 0 && c->log_wd != wd)
		inotify_rm_watch(c->inofd, c->log_wd);
	c->log_wd = wd;
	c->watched_ino = sb.st_ino; /* a rename since the add: its event wakes us again */
}

/* ---- the driver ---- */

static int parse_options(const char *opts, char *dir, size_t len)
{
	const char *path = DEFAULT_PATH;
	char tmp[PATH_MAX];
	if (opts && *opts) {
		if (strncmp(opts, "path=", 5) || !opts[5] || strchr(opts, ',')) {
			sd_err("local cluster: unknown option '%s' (the only one is path=DIR)", opts);
			return -EINVAL;
		}
		path = opts + 5;
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		snprintf(tmp, sizeof(tmp), "%s.d", path); /* a Sheepdog shm file path */
		path = tmp;
	}
	if (snprintf(dir, len, "%s", path) >= (int)len) {
		sd_err("local cluster: path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static void local_destroy(struct cluster_ctx *c)
{
	if (!c)
		return;
	int fds[] = {c->dirfd, c->lockfd, c->logfd, c->memfd, c->inofd, c->timerfd, c->epfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&c->mu);
	free(c->members);
	free(c);
}

static int local_init(struct cluster_ctx **out, const char *options, const struct sd_node *self,
		      const struct cluster_events *ev, void *arg)
{
	if (!out || !self || !ev)
		return -EINVAL;
	struct cluster_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dirfd = c->lockfd = c->logfd = c->memfd = c->inofd = c->timerfd = c->epfd = -1;
	c->log_wd = -1;
	pthread_mutex_init(&c->mu, NULL);
	c->self = *self;
	c->self.addr[sizeof(c->self.addr) - 1] = '\0';
	c->ev = *ev;
	c->arg = arg;
	int r = parse_options(options, c->dir, sizeof(c->dir));
	if (r)
		goto fail;
	c->members = calloc(SD_MAX_NODES, sizeof(*c->members));
	if (!c->members) {
		r = -ENOMEM;
		goto fail;
	}
	if (mkdir(c->dir, 0755) && errno != EEXIST) {
		r = -errno;
		sd_err("local cluster: cannot create %s: %s", c->dir, strerror(errno));
		goto fail;
	}
	c->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0) {
		r = -errno;
		sd_err("local cluster: cannot open %s: %s", c->dir, strerror(errno));
		goto fail;
	}
	c->lockfd = openat(c->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->lockfd < 0 || c->timerfd < 0 || c->epfd < 0) {
		r = -errno;
		goto fail;
	}
	/* Appends to the log and renames in the directory wake the loop (the
	 * log watch is added by watch_log()); the timer paces failure
	 * detection, and polls the log when inotify cannot be had. */
	c->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->inofd >= 0 && inotify_add_watch(c->inofd, c->dir, IN_MOVED_TO | IN_CREATE) < 0) {
		close(c->inofd);
		c->inofd = -1;
	}
	if (c->inofd < 0) {
		r = -errno;
		if (r != -EMFILE && r != -ENFILE && r != -ENOSPC && r != -ENOMEM)
			goto fail;
		sd_warn("local cluster: no inotify for %s (%s; fs.inotify.max_user_instances and "
			"max_user_watches are per user): polling the log every %d ms instead",
			c->dir, strerror(-r), POLL_MS);
		r = 0;
	}
	c->tick_ms = c->inofd >= 0 ? PROBE_MS : POLL_MS;
	struct itimerspec its = {{0, c->tick_ms * 1000000L}, {0, c->tick_ms * 1000000L}};
	struct epoll_event e1 = {.events = EPOLLIN, .data.fd = c->inofd};
	struct epoll_event e2 = {.events = EPOLLIN, .data.fd = c->timerfd};
	if (timerfd_settime(c->timerfd, 0, &its, NULL) ||
	    (c->inofd >= 0 && epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->inofd, &e1)) ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->timerfd, &e2)) {
		r = -errno;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	local_destroy(c);
	return r;
}

/* Under the log lock: bury every dead member (a dead former self among
 * them), publish our member file (locked for life), then append our JOIN.
 * So a JOIN never lists a member that was dead when it was appended (see
 * the top of the file). */
static int join_once(struct cluster_ctx *c)
{
	int r = lc_lock_log(c, LOCK_EX);
	if (r)
		return r;
	struct log_hdr h;
	char tmp[170];
	int fd = -1;
	lc_member_name(&c->self, c->memname, sizeof(c->memname));
	snprintf(tmp, sizeof(tmp), "t.%s", c->memname + 2);
	if ((r = lc_probe(c, true)))
		goto out;
	if ((r = lc_log_current(c)) || (r = lc_log_hdr_read(c, &h)))
		goto out;
	fd = openat(c->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
		r = -errno;
		goto out;
	}
	struct memb_file mf = {.pos = h.base, .node = c->self};
	memcpy(mf.magic, MEMB_MAGIC, sizeof(mf.magic));
	if ((r = lc_pwrite_full(fd, &mf, sizeof(mf), 0)))
		goto out;
	if (renameat(c->dirfd, tmp, c->dirfd, c->memname)) {
		r = -errno;
		goto out;
	}
	/* From here a death of ours is noticed, even before the JOIN exists. */
	r = lc_log_append(c, REC_JOIN, &c->self, NULL, 0);
	if (r) {
		unlinkat(c->dirfd, c->memname, 0);
		goto out;
	}
	c->memfd = fd;
	fd = -1;
	c->pos = c->published = h.base;
	c->log_id = h.id;
	c->nr_members = 0;
	c->in_group = false;
	c->joined = true;
out:
	if (fd >= 0) {
		unlinkat(c->dirfd, tmp, 0);
		close(fd);
	}
	lc_unlock_log(c);
	return r;
}

/*
 * A member's failure detector try-locks a dead member's file (or a
 * joiner's temp file) and then waits for the log lock to bury it. A
 * quickly restarted sheep, holding the log lock, finds its dead former
 * self locked by that reaper (looks alive: EADDRINUSE) or its own temp
 * file locked (EAGAIN). Both clear once the log lock is let go, so join
 * retries for a bounded time: 5 s for EAGAIN, 1 s for EADDRINUSE (a
 * really live sheep on our addr:port is still refused, a second later).
 */
#define JOIN_RETRY_MS 5000
#define JOIN_INUSE_MS 1000
static int local_join(struct cluster_ctx *c)
{
	if (c->joined)
		return -EALREADY;
	uint64_t t0 = sd_now_ns();
	int r;
	for (;;) {
		r = join_once(c);
		uint64_t ms = (sd_now_ns() - t0) / 1000000;
		if (!((r == -EAGAIN && ms < JOIN_RETRY_MS) || (r == -EADDRINUSE && ms < JOIN_INUSE_MS)))
			break;
		usleep(50000);
	}
	if (r)
		sd_err("local cluster: cannot join in %s: %s", c->dir, strerror(-r));
	else
		watch_log(c);
	return r;
}

static int local_leave(struct cluster_ctx *c)
{
	if (!c->joined)
		return -ENOTCONN;
	int r = lc_lock_log(c, LOCK_EX);
	if (r)
		return r;
	r = lc_log_append(c, REC_LEAVE, &c->self, NULL, 0);
	if (!r) {
		unlinkat(c->dirfd, c->memname, 0);
		close(c->memfd);
		c->memfd = -1;
		c->joined = false;
	}
	lc_unlock_log(c);
	return r;
}

static int local_broadcast(struct cluster_ctx *c, const void *msg, size_t len)
{
	if (len > CLUSTER_MAX_MSG || (len && !msg))
		return len > CLUSTER_MAX_MSG ? -EMSGSIZE : -EINVAL;
	if (!c->joined)
		return -ENOTCONN;
	int r = lc_lock_log(c, LOCK_EX);
	if (r)
		return r;
	r = lc_log_append(c, REC_MSG, &c->self, msg, (uint32_t)len);
	lc_unlock_log(c);
	return r;
}

static int local_get_fd(struct cluster_ctx *c)
{
	return c->epfd;
}

static int local_dispatch(struct cluster_ctx *c)
{
	char evbuf[4096] __attribute__((aligned(8)));
	while (c->inofd >= 0 && read(c->inofd, evbuf, sizeof(evbuf)) > 0)
		;
	watch_log(c);
	uint64_t ticks = 0;
	if (read(c->timerfd, &ticks, sizeof(ticks)) != sizeof(ticks))
		ticks = 0;
	if (ticks && c->joined)
		lc_detect_failures(c, (unsigned)(ticks * c->tick_ms));
	if (!c->joined && !c->in_group)
		return 0;
	int r = read_log(c);
	if (ticks)
		maybe_compact(c);
	return r;
}

bool cluster_local_polling(const struct cluster_ctx *c)
{
	return c->inofd < 0;
}

const struct cluster_driver cluster_local_driver = {
	.name = "local",
	.init = local_init,
	.join = local_join,
	.leave = local_leave,
	.broadcast = local_broadcast,
	.get_fd = local_get_fd,
	.dispatch = local_dispatch,
	.destroy = local_destroy,
};
