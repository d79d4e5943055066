/* util.c - small helpers of the daemon kept with the membership code: node comparison, atomic file writes, state paths. */
#include "sheep/cluster/group_priv.h"

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

void group_state_path(struct sheep *s, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", s->opt.dir, name);
}
