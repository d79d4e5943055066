/* epoch.c - the epoch log on disk and in memory, and the persisted format and VDI table. */
#include "sheep/cluster/group_priv.h"

/* ---- epoch log ---- */

int group_epoch_log_write(struct sheep *s, const struct epoch_rec *r)
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

int group_epoch_add(struct sheep *s, uint32_t epoch, uint64_t t, const struct sd_node *nodes,
		     size_t nr, bool log)
{
	struct epoch_rec *n = realloc(s->cl->epochs, (s->cl->nr_epochs + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->cl->epochs = n;
	struct epoch_rec *r = &s->cl->epochs[s->cl->nr_epochs];
	r->epoch = epoch;
	r->time = t;
	r->nr_nodes = (uint32_t)nr;
	r->nodes = malloc((nr ? nr : 1) * sizeof(struct sd_node));
	if (!r->nodes)
		return -ENOMEM;
	memcpy(r->nodes, nodes, nr * sizeof(struct sd_node));
	qsort(r->nodes, nr, sizeof(struct sd_node), sheep_node_cmp);
	s->cl->nr_epochs++;
	return log ? group_epoch_log_write(s, r) : 0;
}

/* Forget the whole epoch history, in memory and on disk (a format). */
void group_epoch_log_reset(struct sheep *s)
{
	char path[4200];
	for (size_t i = 0; i < s->cl->nr_epochs; i++) {
		snprintf(path, sizeof(path), "%s/epoch/%08u", s->opt.dir, s->cl->epochs[i].epoch);
		if (unlink(path) < 0 && errno != ENOENT)
			sd_warn("cannot remove %s: %s", path, strerror(errno));
	}
	group_epochs_clear(s);
}

/* Add epoch r (its nodes copied), or replace the record of the same epoch;
 * the history stays sorted. Logged on disk when log. */
int group_epoch_put(struct sheep *s, uint32_t epoch, uint64_t t, const struct sd_node *nodes,
		    size_t nr, bool log)
{
	for (size_t i = 0; i < s->cl->nr_epochs; i++) {
		if (s->cl->epochs[i].epoch != epoch)
			continue;
		struct sd_node *n = malloc((nr ? nr : 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memcpy(n, nodes, nr * sizeof(*n));
		qsort(n, nr, sizeof(*n), sheep_node_cmp);
		free(s->cl->epochs[i].nodes);
		s->cl->epochs[i].nodes = n;
		s->cl->epochs[i].nr_nodes = (uint32_t)nr;
		s->cl->epochs[i].time = t;
		return log ? group_epoch_log_write(s, &s->cl->epochs[i]) : 0;
	}
	int ret = group_epoch_add(s, epoch, t, nodes, nr, log);
	if (!ret)
		qsort(s->cl->epochs, s->cl->nr_epochs, sizeof(*s->cl->epochs), group_epoch_cmp);
	return ret;
}

void group_epochs_clear(struct sheep *s)
{
	for (size_t i = 0; i < s->cl->nr_epochs; i++)
		free(s->cl->epochs[i].nodes);
	free(s->cl->epochs);
	s->cl->epochs = NULL;
	s->cl->nr_epochs = 0;
}

int group_epoch_cmp(const void *a, const void *b)
{
	const struct epoch_rec *x = a, *y = b;
	return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

int group_epoch_log_load(struct sheep *s)
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
			if (nodes && read(fd, nodes, want) == (ssize_t)want) {
				/* addresses end within their field whatever the file
				 * held: they are sorted and compared as strings
				 * (snapshots are checked instead, snap_epochs_check) */
				for (uint32_t k = 0; k < h.nr_nodes; k++)
					nodes[k].addr[sizeof(nodes[k].addr) - 1] = '\0';
				group_epoch_add(s, h.epoch, h.time, nodes, h.nr_nodes, false);
			}
		}
		free(nodes);
		close(fd);
	}
	closedir(d);
	if (s->cl->nr_epochs)
		qsort(s->cl->epochs, s->cl->nr_epochs, sizeof(*s->cl->epochs), group_epoch_cmp);
	return 0;
}

/* ---- persistence of format and VDIs ---- */

void group_save_config(struct sheep *s)
{
	struct config_file c = {.magic = CONFIG_MAGIC,
				.version = 2,
				.flags = s->cl->fmt_flags,
				.ctime = s->cl->ctime,
				.copies = s->cl->def_copies,
				.policy = s->cl->def_policy,
				.shift = s->cl->def_shift,
				.recovery_enabled = s->cl->recovery_enabled,
				.vnodes = s->cl->fmt_vnodes};
	char path[4200];
	group_state_path(s, "config", path, sizeof(path));
	int ret = sheep_write_file(s, path, &c, sizeof(c));
	if (ret)
		sd_err("cannot save %s: %s", path, strerror(-ret));
}

void group_save_vdis(struct sheep *s)
{
	char path[4200];
	group_state_path(s, "vdis", path, sizeof(path));
	int ret = vdi_table_save(&s->cl->vdis, path);
	if (ret)
		sd_err("cannot save the VDI table in %s: %s", path, strerror(-ret));
}

int group_load_state(struct sheep *s)
{
	char path[4200];
	group_state_path(s, "config", path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		struct config_file c;
		memset(&c, 0, sizeof(c));
		ssize_t n = read(fd, &c, sizeof(c));
		if ((n == sizeof(c) || n == (ssize_t)CONFIG_V1_SIZE) && c.magic == CONFIG_MAGIC) {
			s->cl->fmt_flags = n == sizeof(c) ? c.flags : 0;
			s->cl->ctime = c.ctime;
			s->cl->def_copies = c.copies;
			s->cl->def_policy = c.policy;
			s->cl->def_shift = c.shift;
			s->cl->recovery_enabled = c.recovery_enabled;
			s->cl->fmt_vnodes = c.vnodes;
		} else {
			sd_warn("%s is damaged; the node starts unformatted", path);
		}
		close(fd);
	}
	group_state_path(s, "vdis", path, sizeof(path));
	int ret = vdi_table_load(&s->cl->vdis, path);
	if (ret) {
		sd_err("cannot load the VDI table %s: %s", path, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/epoch", s->opt.dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	ret = group_epoch_log_load(s);
	if (ret)
		return ret;
	if (s->cl->nr_epochs)
		s->cl->epoch = s->cl->epochs[s->cl->nr_epochs - 1].epoch;
	sd_info("state: %s, %zu VDIs, last epoch %u", s->cl->ctime ? "formatted" : "not formatted",
		s->cl->vdis.nr, s->cl->epoch);
	return 0;
}
