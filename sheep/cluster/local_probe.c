/* local_probe.c - the local cluster driver's failure detection: a member whose file lock can be
 * taken is dead. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sheep/cluster/local_priv.h"

/* ---- members ---- */

/* Under the log lock: a member file whose flock we hold is dead; append its
 * LEAVE and remove it, unless someone did already. */
static int lc_bury(struct cluster_ctx *c, int fd, const char *name)
{
	struct stat a, b;
	struct memb_file mf;
	if (fstat(fd, &a) || fstatat(c->dirfd, name, &b, 0) || a.st_ino != b.st_ino)
		return 0; /* already removed */
	int r = 0;
	if (name[0] == 'm' && lc_pread_full(fd, &mf, sizeof(mf), 0) == 0 &&
	    !memcmp(mf.magic, MEMB_MAGIC, sizeof(mf.magic))) {
		sd_notice("local cluster: %s:%u (incarnation %" PRIx64 ") is gone", mf.node.addr,
			  mf.node.port, mf.node.incarnation);
		r = lc_log_append(c, REC_LEAVE, &mf.node, NULL, 0);
	}
	if (!r && unlinkat(c->dirfd, name, 0))
		r = -errno;
	return r;
}

/* Try-lock the member files (and joiners' temp files) of others; bury the
 * dead. joining: the caller (join) holds the log lock; every dead member is
 * buried, and a live one with self's addr:port fails it with -EADDRINUSE.
 * Otherwise (the timer) the log lock is taken per dead member. */
int lc_probe(struct cluster_ctx *c, bool joining)
{
	DIR *d = sd_opendirat(c->dirfd, ".");
	if (!d)
		return -errno;
	char prefix[160];
	size_t plen = 0;
	if (joining) {
		lc_member_name(&c->self, prefix, sizeof(prefix));
		plen = strrchr(prefix, '_') - prefix + 1; /* "m.ADDR_PORT_" */
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		if (strncmp(n, "m.", 2) && strncmp(n, "t.", 2))
			continue;
		if (!strcmp(n, c->memname))
			continue;
		int fd = openat(c->dirfd, n, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			/* alive, or held by a reaper that buries it next */
			if (joining && n[0] == 'm' && !strncmp(n, prefix, plen)) {
				sd_err("local cluster: a live sheep already uses %s:%u",
				       c->self.addr, c->self.port);
				r = -EADDRINUSE;
			}
			close(fd);
			continue;
		}
		if (joining) {
			r = lc_bury(c, fd, n);
		} else {
			r = lc_lock_log(c, LOCK_EX);
			if (!r) {
				r = lc_bury(c, fd, n);
				lc_unlock_log(c);
			}
		}
		close(fd);
	}
	closedir(d);
	return r;
}

/* Try-lock one member's file (the oldest's, from the timer); bury it when
 * its owner is dead. A missing file was buried or left already. */
static int lc_probe_member(struct cluster_ctx *c, const struct sd_node *n)
{
	char name[160];
	lc_member_name(n, name, sizeof(name));
	int fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		r = lc_lock_log(c, LOCK_EX);
		if (!r) {
			r = lc_bury(c, fd, name);
			lc_unlock_log(c);
		}
	}
	close(fd);
	return r;
}

/* Failure detection on a timer tick (see the top of the file). */
void lc_detect_failures(struct cluster_ctx *c, unsigned ms)
{
	c->probe_acc += ms;
	c->sweep_acc += ms;
	if (c->probe_acc < PROBE_MS)
		return;
	c->probe_acc = 0;
	int r = 0;
	bool oldest = c->in_group && c->nr_members && lc_same_node(&c->members[0], &c->self);
	if (oldest || c->sweep_acc >= SWEEP_MS) {
		c->sweep_acc = 0;
		r = lc_probe(c, false);
	} else if (c->in_group && c->nr_members) {
		r = lc_probe_member(c, &c->members[0]);
	}
	if (r)
		sd_warn("local cluster: failure detection: %s", strerror(-r));
}
