/* node.c - dog node list / info / kill / stat. */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/sd_wire.h"

/* The node list from the -a/-p sheep; prints the error and returns an exit
 * code on failure, -1 on success. */
static int fetch_nodes(const struct dog *d, struct sd_node **nodes, uint32_t *nr)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	int ret = dog_get_nodes(fd, nodes, nr, NULL);
	close(fd);
	if (ret < 0) {
		dog_err("node list: lost the connection to %s:%u: %s", d->addr, d->port,
			strerror(-ret));
		return dog_exit_of_errno(ret);
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result("node list", (uint32_t)ret, NULL);
	return -1;
}

static int node_list(struct dog *d)
{
	struct sd_node *nodes;
	uint32_t nr;
	int ret = fetch_nodes(d, &nodes, &nr);
	if (ret >= 0)
		return ret;
	if (d->json) {
		struct dog_json j;
		dog_json_init(&j, stdout);
		dog_json_obj_begin(&j, NULL);
		dog_json_arr_begin(&j, "nodes");
		for (uint32_t i = 0; i < nr; i++)
			dog_json_node(&j, (int)i, &nodes[i]);
		dog_json_arr_end(&j);
		dog_json_obj_end(&j);
		free(nodes);
		return DOG_EXIT_SUCCESS;
	}
	dog_print_node_header(stdout, d->raw);
	for (uint32_t i = 0; i < nr; i++)
		dog_print_node_row(stdout, (int)i, &nodes[i], d->raw);
	free(nodes);
	return DOG_EXIT_SUCCESS;
}

static int add_vdi_size(const struct sd_inode *ino, void *arg)
{
	if (!ino->snap_ctime)
		*(uint64_t *)arg += ino->vdi_size;
	return 0;
}

static int node_info(struct dog *d)
{
	struct sd_node *nodes;
	uint32_t nr;
	int ret = fetch_nodes(d, &nodes, &nr);
	if (ret >= 0)
		return ret;
	uint64_t total_size = 0, total_used = 0;
	int answered = 0;
	struct dog_json j;
	dog_json_init(&j, stdout);
	if (d->json) {
		dog_json_obj_begin(&j, NULL);
		dog_json_arr_begin(&j, "nodes");
	} else {
		dog_print_node_info_header(stdout, d->raw);
	}
	for (uint32_t i = 0; i < nr; i++) {
		int fd = dog_connect_to(nodes[i].addr, nodes[i].port);
		if (fd < 0)
			continue;
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, SD_OP_STAT_SHEEP);
		ret = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
		close(fd);
		if (ret < 0 || rsp.result != SD_RES_SUCCESS) {
			dog_err("node info: node %u (%s:%u) did not answer: %s", i, nodes[i].addr,
				nodes[i].port, ret < 0 ? strerror(-ret) : sd_strerror(rsp.result));
			continue;
		}
		uint64_t size = rsp.node.store_size, free_ = rsp.node.store_free;
		uint64_t used = free_ < size ? size - free_ : 0;
		if (d->json)
			dog_json_node_info(&j, (int)i, size, used);
		else
			dog_print_node_info_row(stdout, (int)i, size, used, d->raw);
		total_size += size;
		total_used += used;
		answered++;
	}
	free(nodes);
	if (!answered) {
		dog_err("node info: no node answered: is the cluster running? (dog node list)");
		return DOG_EXIT_SYSFAIL;
	}
	uint64_t vdi_total = 0;
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	if (d->json) {
		/* The total VDI size comes before the JSON closes, so a failure
		 * leaves no half document on stdout. */
		ret = dog_vdi_foreach(fd, false, NULL, add_vdi_size, &vdi_total);
		close(fd);
		if (ret)
			return ret;
		dog_json_arr_end(&j);
		dog_json_node_info(&j, -1, total_size, total_used);
		dog_json_u64(&j, "total_vdi_size", vdi_total);
		dog_json_obj_end(&j);
		return DOG_EXIT_SUCCESS;
	}
	dog_print_node_info_row(stdout, -1, total_size, total_used, d->raw);
	ret = dog_vdi_foreach(fd, false, NULL, add_vdi_size, &vdi_total);
	close(fd);
	if (ret)
		return ret;
	dog_print_total_vdi_size(stdout, vdi_total, d->raw);
	return DOG_EXIT_SUCCESS;
}

static int node_kill(struct dog *d)
{
	char *end;
	errno = 0;
	long id = strtol(d->argv[0], &end, 10);
	if (errno || end == d->argv[0] || *end || id < 0) {
		dog_err("node kill: invalid node id '%s': give the Id that dog node list shows",
			d->argv[0]);
		return DOG_EXIT_USAGE;
	}
	struct sd_node *nodes;
	uint32_t nr;
	int ret = fetch_nodes(d, &nodes, &nr);
	if (ret >= 0)
		return ret;
	if ((uint32_t)id >= nr) {
		dog_err("node kill: there is no node %ld: the cluster has %u (ids 0 to %u, see dog "
			"node list)",
			id, nr, nr ? nr - 1 : 0);
		free(nodes);
		return DOG_EXIT_MISSING;
	}
	struct sd_node n = nodes[id];
	free(nodes);
	int fd = dog_connect_to(n.addr, n.port);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_KILL_NODE);
	ret = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
	close(fd);
	/* A sheep may die before its reply leaves: a closed connection after
	 * the request went out is what success looks like then. */
	if (ret == -ECONNRESET || ret == -EPIPE)
		return DOG_EXIT_SUCCESS;
	if (ret < 0) {
		dog_err("node kill: node %ld (%s:%u): %s", id, n.addr, n.port, strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (rsp.result != SD_RES_SUCCESS)
		return dog_fail_result("node kill", rsp.result, NULL);
	return DOG_EXIT_SUCCESS;
}

/* The write-ahead log counters of each node (SD_OP_STAT). */
static int node_stat(struct dog *d)
{
	struct sd_node *nodes;
	uint32_t nr;
	int ret = fetch_nodes(d, &nodes, &nr);
	if (ret >= 0)
		return ret;
	struct dog_json j;
	dog_json_init(&j, stdout);
	if (d->json) {
		dog_json_obj_begin(&j, NULL);
		dog_json_arr_begin(&j, "nodes");
	} else if (d->raw)
		printf("id host:port syncs records batches records_per_batch max_batch log_bytes "
		       "checkpoints checkpoint_ms_total checkpoint_ms_last log_fill log_size replayed "
		       "dropped pending scrub_enabled scrub_rate scrub_passes scrub_done scrub_total "
		       "scrub_scanned scrub_bytes csum_found csum_repaired\n");
	else
		printf("  Id   Host:Port            Syncs  Records  Rec/batch  Log written  "
		       "Ckpts  Ckpt ms  Log fill  Pending  Scrub           Found  Repaired\n");
	int failed = 0;
	for (uint32_t i = 0; i < nr; i++) {
		struct sd_store_stat st;
		struct sd_req req;
		struct sd_rsp rsp;
		int fd = dog_connect_to(nodes[i].addr, nodes[i].port);
		ret = fd;
		if (fd >= 0) {
			dog_req_init(&req, SD_OP_STAT);
			req.data_length = sizeof(st);
			ret = sd_exec(fd, &req, NULL, &rsp, &st, sizeof(st));
			close(fd);
			if (ret == 0 && (rsp.result != SD_RES_SUCCESS || rsp.data_length != sizeof(st)))
				ret = -EPROTO;
		}
		if (ret) {
			dog_err("node stat: node %u (%s:%u): %s", i, nodes[i].addr, nodes[i].port,
				strerror(-ret));
			failed++;
			if (d->json) {
				dog_json_obj_begin(&j, NULL);
				dog_json_u64(&j, "id", i);
				dog_json_str(&j, "error", strerror(-ret));
				dog_json_obj_end(&j);
			}
			continue;
		}
		double per = st.batches ? (double)st.records / (double)st.batches : 0;
		if (d->json) {
			char host[96];
			snprintf(host, sizeof(host), "%s:%u", nodes[i].addr, nodes[i].port);
			dog_json_obj_begin(&j, NULL);
			dog_json_u64(&j, "id", i);
			dog_json_str(&j, "addr", host);
			dog_json_u64(&j, "syncs", st.syncs);
			dog_json_u64(&j, "records", st.records);
			dog_json_u64(&j, "batches", st.batches);
			dog_json_double(&j, "records_per_batch", per);
			dog_json_u64(&j, "max_batch", st.max_batch);
			dog_json_u64(&j, "log_bytes", st.log_bytes);
			dog_json_u64(&j, "checkpoints", st.checkpoints);
			dog_json_double(&j, "checkpoint_ms_total", (double)st.ckpt_ns_total / 1e6);
			dog_json_double(&j, "checkpoint_ms_last", (double)st.ckpt_ns_last / 1e6);
			dog_json_u64(&j, "log_fill", st.log_fill);
			dog_json_u64(&j, "log_size", st.log_size);
			dog_json_u64(&j, "replayed", st.replayed);
			dog_json_u64(&j, "dropped", st.dropped);
			dog_json_u64(&j, "pending", st.pending);
			dog_json_u64(&j, "scrub_enabled", st.scrub_enabled);
			dog_json_u64(&j, "scrub_rate", st.scrub_rate);
			dog_json_u64(&j, "scrub_passes", st.scrub_passes);
			dog_json_u64(&j, "scrub_done", st.scrub_done);
			dog_json_u64(&j, "scrub_total", st.scrub_total);
			dog_json_u64(&j, "scrub_scanned", st.scrub_scanned);
			dog_json_u64(&j, "scrub_bytes", st.scrub_bytes);
			dog_json_u64(&j, "csum_found", st.csum_found);
			dog_json_u64(&j, "csum_repaired", st.csum_repaired);
			dog_json_obj_end(&j);
			continue;
		}
		if (d->raw) {
			printf("%u %s:%u %" PRIu64 " %" PRIu64 " %" PRIu64 " %.2f %" PRIu64 " %" PRIu64
			       " %" PRIu64 " %.1f %.1f %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			       " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			       " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			       i, nodes[i].addr, nodes[i].port, st.syncs, st.records, st.batches, per,
			       st.max_batch, st.log_bytes, st.checkpoints, st.ckpt_ns_total / 1e6,
			       st.ckpt_ns_last / 1e6, st.log_fill, st.log_size, st.replayed, st.dropped,
			       st.pending, st.scrub_enabled, st.scrub_rate, st.scrub_passes,
			       st.scrub_done, st.scrub_total, st.scrub_scanned, st.scrub_bytes,
			       st.csum_found, st.csum_repaired);
			continue;
		}
		char host[96], wr[32];
		snprintf(host, sizeof(host), "%s:%u", nodes[i].addr, nodes[i].port);
		dog_size_str(st.log_bytes, false, wr, sizeof(wr));
		char scrub[32];
		if (st.scrub_enabled)
			snprintf(scrub, sizeof(scrub), "%" PRIu64 "/%" PRIu64, st.scrub_done,
				 st.scrub_total);
		else
			snprintf(scrub, sizeof(scrub), "off");
		printf("%4u   %-20s %7" PRIu64 " %8" PRIu64 " %10.1f %12s %6" PRIu64 " %8.0f %8.1f%% "
		       "%8" PRIu64 "  %-13s %6" PRIu64 " %9" PRIu64 "\n",
		       i, host, st.syncs, st.records, per, wr, st.checkpoints, st.ckpt_ns_total / 1e6,
		       st.log_size ? 100.0 * (double)st.log_fill / (double)(st.log_size / 2) : 0,
		       st.pending, scrub, st.csum_found, st.csum_repaired);
	}
	free(nodes);
	if (d->json) {
		dog_json_arr_end(&j);
		dog_json_obj_end(&j);
	}
	return failed ? DOG_EXIT_FAILURE : DOG_EXIT_SUCCESS;
}

/* dog node log level get | set LEVEL: the log level of the sheep dog talks
 * to (-a/-p), as Sheepdog's dog does. */
static int node_log(struct dog *d)
{
	int set = d->argc == 3 && !strcmp(d->argv[1], "set");
	if (strcmp(d->argv[0], "level") || (!set && (d->argc != 2 || strcmp(d->argv[1], "get")))) {
		dog_err("node log: want 'level get' or 'level set LEVEL' (emerg, alert, crit, err, "
			"warning, notice, info, debug)");
		return DOG_EXIT_USAGE;
	}
	int32_t level = 0;
	if (set) {
		int l = sd_log_level_parse(d->argv[2]);
		if (l < 0) {
			dog_err("invalid log level: %s", d->argv[2]);
			return DOG_EXIT_USAGE;
		}
		level = l;
	}
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, set ? SD_OP_SET_LOGLEVEL : SD_OP_GET_LOGLEVEL);
	if (set) {
		req.flags |= SD_FLAG_CMD_WRITE;
		req.data_length = sizeof(level);
	} else {
		req.data_length = sizeof(level);
	}
	int ret = dog_exec(d, &req, set ? &level : NULL, &rsp, set ? NULL : &level,
			   set ? 0 : sizeof(level));
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result("node log level", (uint32_t)ret, NULL);
	if (!set) {
		if (level < SD_LOG_EMERG || level > SD_LOG_DEBUG)
			return dog_fail_result("node log level", SD_RES_UNKNOWN, NULL);
		printf("%s\n", sd_log_level_name((enum sd_log_level)level));
	}
	return DOG_EXIT_SUCCESS;
}

/* dog node vnodes get | set N: the vnodes of the sheep dog talks to
 * (-a/-p), as Sheepdog's SET_VNODES / GET_VNODES (0xcc / 0xcd). A set is a
 * new epoch: every member places by the new weight, recovery moves the
 * fragments that changed hands. */
static int node_vnodes(struct dog *d)
{
	int set = d->argc == 2 && !strcmp(d->argv[0], "set");
	if (!set && (d->argc != 1 || strcmp(d->argv[0], "get"))) {
		dog_err("node vnodes: want 'get' or 'set N' (N in 1..65535)");
		return DOG_EXIT_USAGE;
	}
	int32_t v = 0;
	if (set) {
		char *end;
		long l = strtol(d->argv[1], &end, 10);
		if (end == d->argv[1] || *end || l < 1 || l > UINT16_MAX) {
			dog_err("Invalid number of vnodes '%s': must be an integer between 1 and %u",
				d->argv[1], UINT16_MAX);
			return DOG_EXIT_USAGE;
		}
		v = (int32_t)l;
	}
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, set ? SD_OP_SET_VNODES : SD_OP_GET_VNODES);
	if (set)
		req.flags |= SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(v);
	int ret = dog_exec(d, &req, set ? &v : NULL, &rsp, set ? NULL : &v, set ? 0 : sizeof(v));
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result(set ? "node vnodes set" : "node vnodes get", (uint32_t)ret,
				       NULL);
	if (!set)
		printf("%d\n", v);
	return DOG_EXIT_SUCCESS;
}

/* MD_INFO of the sheep asked into *out (freed by the caller): a dog exit code. */
static int md_fetch(struct dog *d, struct sd_md_info **out)
{
	struct sd_md_info *mi = calloc(1, sizeof(*mi));
	if (!mi)
		return DOG_EXIT_SYSFAIL;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_MD_INFO);
	req.data_length = sizeof(*mi);
	int ret = dog_exec(d, &req, NULL, &rsp, mi, sizeof(*mi));
	if (ret < 0) {
		free(mi);
		return dog_exit_of_errno(ret);
	}
	if (ret != SD_RES_SUCCESS) {
		free(mi);
		return dog_fail_result("node md info", (uint32_t)ret, NULL);
	}
	*out = mi;
	return DOG_EXIT_SUCCESS;
}

/* path without trailing slashes, absolute when it exists here. */
static void md_norm(const char *in, char *out, size_t len)
{
	char buf[PATH_MAX];
	if (realpath(in, buf))
		in = buf;
	snprintf(out, len, "%s", in);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

static bool md_has(const struct sd_md_info *mi, const char *path)
{
	for (int32_t i = 0; i < mi->nr && i < SD_MD_MAX_DISK; i++)
		if (!strncmp(mi->disk[i].path, path, sizeof(mi->disk[i].path)))
			return true;
	return false;
}

/* dog node md plug|unplug DISK[,DISK...]: checked against the sheep's
 * disks first (a clear error, nothing sent), then MD_PLUG / MD_UNPLUG. */
static int node_md_change(struct dog *d, bool plug, const char *arg)
{
	const char *what = plug ? "node md plug" : "node md unplug";
	struct sd_md_info *mi = NULL;
	int ret = md_fetch(d, &mi);
	if (ret)
		return ret;
	char *list = strdup(arg), *save = NULL;
	char (*seen)[PATH_MAX] = calloc(SD_MD_MAX_DISK, PATH_MAX);
	char *norm = calloc(1, (size_t)SD_MD_MAX_DISK * PATH_MAX);
	int n = 0;
	ret = list && seen && norm ? DOG_EXIT_SUCCESS : DOG_EXIT_SYSFAIL;
	size_t used = 0;
	for (char *t = list ? strtok_r(list, ",", &save) : NULL; !ret && t;
	     t = strtok_r(NULL, ",", &save)) {
		if (n == SD_MD_MAX_DISK) {
			dog_err("%s: at most %d disks", what, SD_MD_MAX_DISK);
			ret = DOG_EXIT_USAGE;
			break;
		}
		md_norm(t, seen[n], PATH_MAX);
		for (int j = 0; j < n && !ret; j++)
			if (!strcmp(seen[j], seen[n])) {
				dog_err("%s: %s is listed twice", what, seen[n]);
				ret = DOG_EXIT_USAGE;
			}
		if (ret)
			break;
		if (plug && md_has(mi, seen[n])) {
			dog_err("%s: %s is already a disk of this sheep", what, seen[n]);
			ret = DOG_EXIT_FAILURE;
		} else if (!plug && !md_has(mi, seen[n])) {
			dog_err("%s: %s is not a disk of this sheep (dog node md info lists them)",
				what, seen[n]);
			ret = DOG_EXIT_FAILURE;
		}
		used += (size_t)snprintf(norm + used, (size_t)SD_MD_MAX_DISK * PATH_MAX - used,
					 "%s%s", n ? "," : "", seen[n]);
		n++;
	}
	if (!ret && n == 0) {
		dog_err("%s: no disk given", what);
		ret = DOG_EXIT_USAGE;
	}
	if (!ret && !plug && n >= mi->nr) {
		dog_err("%s: cannot unplug every disk of this sheep (it has %d)", what, (int)mi->nr);
		ret = DOG_EXIT_FAILURE;
	}
	if (!ret) {
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, plug ? SD_OP_MD_PLUG : SD_OP_MD_UNPLUG);
		req.flags |= SD_FLAG_CMD_WRITE;
		req.data_length = (uint32_t)used + 1;
		int r = dog_exec(d, &req, norm, &rsp, NULL, 0);
		if (r < 0)
			ret = dog_exit_of_errno(r);
		else if (r != SD_RES_SUCCESS)
			ret = dog_fail_result(what, (uint32_t)r, NULL);
	}
	free(norm);
	free(seen);
	free(list);
	free(mi);
	return ret;
}

/* dog node md info | plug DISKS | unplug DISKS: Sheepdog's multi-disk
 * commands (MD_INFO 0xb1, MD_PLUG 0xb2, MD_UNPLUG 0xb3) on the sheep
 * asked (-a/-p). */
static int node_md(struct dog *d)
{
	const char *sub = d->argv[0];
	bool plug = !strcmp(sub, "plug");
	if (plug || !strcmp(sub, "unplug")) {
		if (d->argc != 2) {
			dog_err("node md %s: want DISK[,DISK...]", sub);
			return DOG_EXIT_USAGE;
		}
		return node_md_change(d, plug, d->argv[1]);
	}
	if (strcmp(sub, "info") || d->argc != 1) {
		dog_err("node md: want 'info', 'plug DISKS' or 'unplug DISKS'");
		return DOG_EXIT_USAGE;
	}
	struct sd_md_info *mi = NULL;
	int ret = md_fetch(d, &mi);
	if (ret)
		return ret;
	if (!d->raw)
		printf("Id\tSize\tUsed\tAvail\tUse%%\tPath\n");
	for (int32_t i = 0; i < mi->nr && i < SD_MD_MAX_DISK; i++) {
		const struct sd_md_disk *k = &mi->disk[i];
		char s[32], u[32], a[32];
		uint64_t size = k->free + k->used;
		dog_size_str(size, d->raw, s, sizeof(s));
		dog_size_str(k->used, d->raw, u, sizeof(u));
		dog_size_str(k->free, d->raw, a, sizeof(a));
		int pct = size ? (int)(k->used * 100 / size) : 0;
		printf(d->raw ? "%d %s %s %s %d%% %.*s\n" : "%2d\t%s\t%s\t%s\t%3d%%\t%.*s\n", k->idx, s,
		       u, a, pct, (int)sizeof(k->path), k->path);
	}
	free(mi);
	return DOG_EXIT_SUCCESS;
}

const struct dog_cmd dog_node_cmds[] = {
    {"node", "list", "f:", NULL, "list the nodes of the cluster", DOG_JSON_HELP, 0, 0, node_list},
    {"node", "info", "f:", NULL, "show disk use of each node", DOG_JSON_HELP, 0, 0, node_info},
    {"node", "kill", NULL, "<node id>", "stop one sheep (its Id from dog node list)", NULL, 1, 1,
     node_kill},
    {"node", "stat", "f:", NULL, "show each node's write-ahead log counters (syncs, records "
     "per group commit, checkpoints, log fill) and its scrub (progress of the pass, bad "
     "fragments found and repaired)", DOG_JSON_HELP, 0, 0, node_stat},
    /* recovery hook: dog/recovery.c */
    {"node", "recovery", "f:", "[get-throttle | set-throttle MAX [INTERVAL_MS]]",
     "show recovery progress per node, or get/set the recovery throttle", DOG_JSON_HELP, 0, 3,
     dog_node_recovery},
    {"node", "log", NULL, "level get | level set LEVEL",
     "show or set the log level of the sheep asked (-a/-p)", NULL, 2, 3, node_log},
    {"node", "md", NULL, "info | plug DISK[,DISK...] | unplug DISK[,DISK...]",
     "show, add or remove the disks (data directories) of the sheep asked (-a/-p)", NULL, 1, 2,
     node_md},
    {"node", "vnodes", NULL, "get | set N",
     "show or set the vnodes (capacity weight) of the sheep asked (-a/-p)", NULL, 1, 2,
     node_vnodes},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
