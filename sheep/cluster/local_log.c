/* local_log.c - the local cluster driver's shared event log: records, appends, the log lock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crc.h"
#include "sheep/cluster/local_priv.h"

size_t lc_rec_size(uint32_t len)
{
	return (sizeof(struct rec_hdr) + (size_t)len + 7) & ~(size_t)7;
}

bool lc_same_node(const struct sd_node *a, const struct sd_node *b)
{
	return a->port == b->port && a->incarnation == b->incarnation &&
	       !strncmp(a->addr, b->addr, sizeof(a->addr));
}

int lc_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r, len -= (size_t)r, off += (uint64_t)r;
	}
	return 0;
}

int lc_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t r = pwrite(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		p += r, len -= (size_t)r, off += (uint64_t)r;
	}
	return 0;
}

void lc_member_name(const struct sd_node *n, char *buf, size_t len)
{
	char addr[sizeof(n->addr)];
	snprintf(addr, sizeof(addr), "%s", n->addr);
	for (char *c = addr; *c; c++)
		if (*c == '/' || *c == '_')
			*c = '-';
	snprintf(buf, len, "m.%s_%u_%016" PRIx64, addr, n->port, n->incarnation);
}

/* ---- the log (caller holds mu and the flock) ---- */

int lc_write_fresh_log(struct cluster_ctx *c, uint64_t id, uint64_t base, uint64_t end,
		       const void *recs, size_t len)
{
	struct log_hdr h = {.base = base, .end = end, .id = id};
	memcpy(h.magic, LOG_MAGIC, sizeof(h.magic));
	int fd = openat(c->dirfd, "log.tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = lc_pwrite_full(fd, &h, sizeof(h), 0);
	if (!r && len)
		r = lc_pwrite_full(fd, recs, len, LOG_HDR);
	close(fd);
	if (!r && renameat(c->dirfd, "log.tmp", c->dirfd, "log"))
		r = -errno;
	return r;
}

/* Make logfd the current log file (it is replaced by compaction). */
int lc_log_current(struct cluster_ctx *c)
{
	struct stat sb;
	if (fstatat(c->dirfd, "log", &sb, 0)) {
		if (errno != ENOENT)
			return -errno;
		uint64_t id;
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
		int r = lc_write_fresh_log(c, id, 0, 0, NULL, 0);
		if (r)
			return r;
		if (fstatat(c->dirfd, "log", &sb, 0))
			return -errno;
	}
	if (c->logfd >= 0 && sb.st_ino == c->log_ino)
		return 0;
	if (c->logfd >= 0)
		close(c->logfd);
	c->logfd = openat(c->dirfd, "log", O_RDWR | O_CLOEXEC);
	if (c->logfd < 0)
		return -errno;
	c->log_ino = sb.st_ino;
	return 0;
}

int lc_log_hdr_read(struct cluster_ctx *c, struct log_hdr *h)
{
	int r = lc_pread_full(c->logfd, h, sizeof(*h), 0);
	if (r)
		return r;
	if (memcmp(h->magic, LOG_MAGIC, sizeof(h->magic)) || h->end < h->base)
		return -EIO;
	return 0;
}

void lc_rec_fill(struct rec_hdr *rh, enum rec_type type, const struct sd_node *node, uint64_t lsn,
		 const void *payload, uint32_t len)
{
	memset(rh, 0, sizeof(*rh));
	rh->magic = REC_MAGIC;
	rh->type = (uint8_t)type;
	rh->len = len;
	rh->lsn = lsn;
	rh->node = *node;
	uint32_t crc = sd_crc32c(0, rh, sizeof(*rh));
	rh->crc = sd_crc32c(crc, payload, len);
}

int lc_log_append(struct cluster_ctx *c, enum rec_type type, const struct sd_node *node,
		  const void *payload, uint32_t len)
{
	struct log_hdr h;
	int r = lc_log_current(c);
	if (!r)
		r = lc_log_hdr_read(c, &h);
	if (r)
		return r;
	struct rec_hdr rh;
	lc_rec_fill(&rh, type, node, h.end, payload, len);
	uint64_t off = LOG_HDR + (h.end - h.base);
	static const uint8_t pad[8];
	size_t padlen = lc_rec_size(len) - sizeof(rh) - len;
	r = lc_pwrite_full(c->logfd, &rh, sizeof(rh), off);
	if (!r && len)
		r = lc_pwrite_full(c->logfd, payload, len, off + sizeof(rh));
	if (!r && padlen)
		r = lc_pwrite_full(c->logfd, pad, padlen, off + sizeof(rh) + len);
	if (r)
		return r;
	/* The commit point: a record past end does not exist. */
	uint64_t end = h.end + lc_rec_size(len);
	return lc_pwrite_full(c->logfd, &end, sizeof(end), offsetof(struct log_hdr, end));
}

int lc_lock_log(struct cluster_ctx *c, int op)
{
	pthread_mutex_lock(&c->mu);
	while (flock(c->lockfd, op)) {
		if (errno == EINTR)
			continue;
		int r = -errno;
		pthread_mutex_unlock(&c->mu);
		return r;
	}
	return 0;
}

void lc_unlock_log(struct cluster_ctx *c)
{
	flock(c->lockfd, LOCK_UN);
	pthread_mutex_unlock(&c->mu);
}
