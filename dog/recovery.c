/* recovery.c - dog's recovery commands: node recovery [get-throttle|set-throttle], cluster recover
 * enable|disable|force. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/sd_wire.h"
#include "lib/net.h"
#include "lib/inode.h"
#include "lib/oid.h"
#include "lib/util.h"

static int nodes_of(struct dog *d, struct sd_node **nodes, uint32_t *nr, const char *what)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	int ret = dog_get_nodes(fd, nodes, nr, NULL);
	close(fd);
	if (ret < 0) {
		dog_err("%s: lost the connection to %s:%u: %s", what, d->addr, d->port,
			strerror(-ret));
		return dog_exit_of_errno(ret);
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result(what, (uint32_t)ret, NULL);
	return -1;
}

/* One internal op to one node; SD_RES_* or -errno. */
static int node_exec(const struct sd_node *n, uint8_t opcode, const void *wbuf, uint32_t wlen,
		     void *rbuf, uint32_t rlen)
{
	int fd = dog_connect_to(n->addr, n->port);
	if (fd < 0)
		return fd;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, opcode);
	if (wlen) {
		req.flags |= SD_FLAG_CMD_WRITE;
		req.data_length = wlen;
	} else {
		req.data_length = rlen;
	}
	int ret = sd_exec(fd, &req, wbuf, &rsp, rbuf, rlen);
	close(fd);
	if (ret < 0)
		return ret;
	return sd_res_int(rsp.result);
}

static const char *status_name(uint8_t st)
{
	switch (st) {
	case SD_RECOVERY_IDLE:
		return "idle";
	case SD_RECOVERY_RUNNING:
		return "running";
	case SD_RECOVERY_DONE:
		return "done";
	case SD_RECOVERY_REFUSED:
		return "refused";
	case SD_RECOVERY_DISABLED:
		return "disabled";
	case SD_RECOVERY_PLANNING:
		return "planning";
	}
	return "unknown";
}

static double percent(const struct sd_recovery_state *st)
{
	if (!st->total)
		return st->status == SD_RECOVERY_DONE ? 100.0 : 0.0;
	return 100.0 * (double)st->done / (double)st->total;
}

static bool still_recovering(const struct sd_recovery_state *st)
{
	return st->status == SD_RECOVERY_RUNNING || st->status == SD_RECOVERY_PLANNING ||
	       st->status == SD_RECOVERY_REFUSED || st->status == SD_RECOVERY_DISABLED;
}

static void print_detail(int id, const struct sd_recovery_state *st, bool raw)
{
	if (raw) {
		printf("node %d epoch %u status %s done %llu total %llu failed %llu reused %llu "
		       "copied %llu rebuilt %llu read %llu written %llu ms %llu rounds %u "
		       "cluster_done %u degraded %llu lost %llu dropped %llu\n",
		       id, st->epoch, status_name(st->status), (unsigned long long)st->done,
		       (unsigned long long)st->total, (unsigned long long)st->failed,
		       (unsigned long long)st->reused, (unsigned long long)st->copied,
		       (unsigned long long)st->rebuilt, (unsigned long long)st->bytes_read,
		       (unsigned long long)st->bytes_written, (unsigned long long)st->elapsed_ms,
		       st->rounds, st->cluster_done, (unsigned long long)st->degraded,
		       (unsigned long long)st->lost, (unsigned long long)st->dropped);
		return;
	}
	printf("  node %d: epoch %u %s, %llu/%llu fragments (reused %llu, copied %llu, rebuilt "
	       "%llu, failed %llu), read %.1f MB, wrote %.1f MB, %.1f s, %u round(s)%s\n",
	       id, st->epoch, status_name(st->status), (unsigned long long)st->done,
	       (unsigned long long)st->total, (unsigned long long)st->reused,
	       (unsigned long long)st->copied, (unsigned long long)st->rebuilt,
	       (unsigned long long)st->failed, (double)st->bytes_read / 1e6,
	       (double)st->bytes_written / 1e6, (double)st->elapsed_ms / 1e3, st->rounds,
	       st->cluster_done ? ", cluster complete" : "");
	if (st->degraded || st->lost)
		printf("  node %d: %llu object(s) below full redundancy, %llu lost\n", id,
		       (unsigned long long)st->degraded, (unsigned long long)st->lost);
}

/* The objects the nodes' recovery plans call lost, each once, with the VDI
 * it belongs to and the nodes that name it. */
struct lost_obj {
	uint64_t oid;
	char vdi[SD_MAX_VDI_LEN + 16];
	char by[128];
};

struct lost_list {
	struct lost_obj v[64];
	size_t n;
	uint64_t unnamed; /* lost objects past what the nodes named */
};

static int lost_name_vdi(const struct sd_inode *ino, void *arg)
{
	struct lost_list *l = arg;
	for (size_t i = 0; i < l->n; i++)
		if (oid_to_vid(l->v[i].oid) == ino->vdi_id) {
			if (ino->snap_ctime)
				snprintf(l->v[i].vdi, sizeof(l->v[i].vdi), "%.*s snapshot %u",
					 (int)sizeof(ino->name), ino->name, ino->snap_id);
			else
				snprintf(l->v[i].vdi, sizeof(l->v[i].vdi), "%.*s",
					 (int)sizeof(ino->name), ino->name);
		}
	return 0;
}

static void lost_collect(struct dog *d, struct lost_list *l, const struct sd_recovery_state *st,
			 const int *res, uint32_t nr)
{
	l->n = 0;
	l->unnamed = 0;
	for (uint32_t i = 0; i < nr; i++) {
		if (res[i] != SD_RES_SUCCESS || !st[i].lost)
			continue;
		uint64_t named = SD_MIN(st[i].lost, (uint64_t)SD_RECOVERY_LOST_NAMED);
		l->unnamed = SD_MAX(l->unnamed, st[i].lost - named);
		for (uint64_t k = 0; k < named; k++) {
			size_t j = 0;
			while (j < l->n && l->v[j].oid != st[i].lost_oids[k])
				j++;
			if (j == l->n) {
				if (l->n == sizeof(l->v) / sizeof(l->v[0])) {
					l->unnamed++;
					continue;
				}
				memset(&l->v[j], 0, sizeof(l->v[j]));
				l->v[j].oid = st[i].lost_oids[k];
				l->n++;
			}
			size_t o = strlen(l->v[j].by);
			snprintf(l->v[j].by + o, sizeof(l->v[j].by) - o, "%s%u", o ? " " : "", i);
		}
	}
	if (!l->n)
		return;
	int fd = dog_connect(d);
	if (fd >= 0) {
		dog_vdi_foreach(fd, false, NULL, lost_name_vdi, l);
		close(fd);
	}
}

/* On stderr, like the nodes' messages: stdout stays Sheepdog's table. */
static void lost_print(const struct lost_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct lost_obj *o = &l->v[i];
		char what[64];
		if (is_data_obj(o->oid))
			snprintf(what, sizeof(what), "data object %u", oid_to_idx(o->oid));
		else
			snprintf(what, sizeof(what), "%s", is_vdi_obj(o->oid) ? "inode" : "metadata");
		fprintf(stderr, "  lost object %016" PRIx64 " (VDI %s, %s): too few consistent "
			"fragments to rebuild (node%s %s)\n", o->oid, o->vdi[0] ? o->vdi : "?", what,
			strchr(o->by, ' ') ? "s" : "", o->by);
	}
	if (l->unnamed)
		fprintf(stderr, "  and %" PRIu64 " more lost object(s)\n", l->unnamed);
}

/* node recovery --json: every node, recovering or not (dog(8)); a node
 * that did not answer is reported with "error" and makes the exit code 2. */
static int recovery_json(const struct sd_node *nodes, uint32_t nr, struct sd_recovery_state *st,
			 const int *res)
{
	struct dog_json j;
	int exit_code = DOG_EXIT_SUCCESS;
	dog_json_init(&j, stdout);
	dog_json_obj_begin(&j, NULL);
	dog_json_arr_begin(&j, "nodes");
	for (uint32_t i = 0; i < nr; i++) {
		if (res[i] != SD_RES_SUCCESS) {
			dog_err("node recovery: node %u (%s:%u): %s", i, nodes[i].addr,
				nodes[i].port, res[i] < 0 ? strerror(-res[i]) : "request failed");
			dog_json_obj_begin(&j, NULL);
			dog_json_i64(&j, "id", (int)i);
			dog_json_str(&j, "error",
				     res[i] < 0 ? strerror(-res[i]) : sd_strerror((uint32_t)res[i]));
			dog_json_obj_end(&j);
			exit_code = DOG_EXIT_SYSFAIL;
			continue;
		}
		st[i].message[sizeof(st[i].message) - 1] = '\0';
		dog_json_recovery(&j, (int)i, &nodes[i], &st[i], status_name(st[i].status),
				  percent(&st[i]), still_recovering(&st[i]));
	}
	dog_json_arr_end(&j);
	dog_json_obj_end(&j);
	return exit_code;
}

/* dog node recovery: the nodes still recovering, with their progress. */
static int recovery_show(struct dog *d)
{
	struct sd_node *nodes;
	uint32_t nr;
	int ret = nodes_of(d, &nodes, &nr, "node recovery");
	if (ret >= 0)
		return ret;
	struct sd_recovery_state *st = calloc(nr ? nr : 1, sizeof(*st));
	int *res = calloc(nr ? nr : 1, sizeof(*res));
	if (!st || !res) {
		free(st);
		free(res);
		free(nodes);
		dog_err("node recovery: out of memory");
		return DOG_EXIT_SYSFAIL;
	}
	for (uint32_t i = 0; i < nr; i++) {
		/* Sheepdog's 24 bytes, then this project's detail (sd_wire.h). */
		struct sd_wire_recovery w;
		memset(&w, 0, sizeof(w));
		res[i] = node_exec(&nodes[i], SD_OP_STAT_RECOVERY, NULL, 0, &w, sizeof(w));
		st[i] = w.ext;
	}
	if (d->json) {
		ret = recovery_json(nodes, nr, st, res);
		free(st);
		free(res);
		free(nodes);
		return ret;
	}

	if (!d->raw)
		printf("Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       "
		       "Progress\n");
	int exit_code = DOG_EXIT_SUCCESS;
	for (uint32_t i = 0; i < nr; i++) {
		char hp[96];
		snprintf(hp, sizeof(hp), "%s:%u", nodes[i].addr, nodes[i].port);
		if (res[i] != SD_RES_SUCCESS) {
			dog_err("node recovery: node %u (%s): %s", i, hp,
				res[i] < 0 ? strerror(-res[i]) : "request failed");
			exit_code = DOG_EXIT_SYSFAIL;
			continue;
		}
		if (!still_recovering(&st[i]))
			continue;
		if (d->raw)
			printf("%u %s %d %u %.1f %s\n", i, hp, nodes[i].nr_vnodes, nodes[i].zone,
			       percent(&st[i]), status_name(st[i].status));
		else
			printf("%4u   %-20s\t%2d%11u%14.1f%%\n", i, hp, nodes[i].nr_vnodes,
			       nodes[i].zone, percent(&st[i]));
	}
	for (uint32_t i = 0; i < nr; i++) {
		if (res[i] != SD_RES_SUCCESS)
			continue;
		st[i].message[sizeof(st[i].message) - 1] = '\0';
		if (d->verbose)
			print_detail((int)i, &st[i], d->raw);
		/* On stderr: stdout stays Sheepdog's table, which scripts wait to
		 * see empty (header only) once recovery is done, also when
		 * redundancy is the best the zones allow. */
		if (st[i].message[0])
			fprintf(stderr, "  node %u: %s\n", i, st[i].message);
	}
	struct lost_list *lost = malloc(sizeof(*lost));
	if (lost) {
		lost_collect(d, lost, st, res, nr);
		lost_print(lost);
		free(lost);
	}
	free(st);
	free(res);
	free(nodes);
	return exit_code;
}

static int parse_u32_arg(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int recovery_get_throttle(struct dog *d)
{
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct sd_req req;
	struct sd_rsp rsp;
	struct sd_wire_throttle w = {0};
	dog_req_init(&req, SD_OP_GET_RECOVERY);
	req.data_length = sizeof(w);
	int ret = sd_exec(fd, &req, NULL, &rsp, &w, sizeof(w));
	close(fd);
	struct sd_recovery_throttle t = {w.max_exec_count, (uint32_t)w.queue_work_interval};
	if (ret < 0) {
		dog_err("node recovery get-throttle: %s", strerror(-ret));
		return dog_exit_of_errno(ret);
	}
	if (rsp.result != SD_RES_SUCCESS)
		return dog_fail_result("node recovery get-throttle", rsp.result, NULL);
	if (d->json)
		printf("{\n  \"max\": %u,\n  \"interval_ms\": %u\n}\n", t.max, t.interval_ms);
	else if (d->raw)
		printf("%u %u\n", t.max, t.interval_ms);
	else
		printf("max %u, interval %u ms\n", t.max, t.interval_ms);
	return DOG_EXIT_SUCCESS;
}

static int recovery_set_throttle(struct dog *d)
{
	struct sd_wire_throttle t = {0};
	uint32_t max = 0, interval = 0;
	/* "0 0" (as Sheepdog accepts) means no throttle: the sheep's default
	 * pace. MAX 0 with an interval would mean nothing ever runs: refused. */
	if (d->argc < 2 || parse_u32_arg(d->argv[1], 1024, &max) ||
	    (d->argc > 2 && parse_u32_arg(d->argv[2], 3600000, &interval)) ||
	    (max == 0 && interval != 0)) {
		dog_err("node recovery set-throttle: want MAX (1..1024) [INTERVAL_MS "
			"(0..3600000)], or 0 0 for no throttle");
		return DOG_EXIT_USAGE;
	}
	t.max_exec_count = max;
	t.queue_work_interval = interval;
	struct sd_node *nodes;
	uint32_t nr;
	int ret = nodes_of(d, &nodes, &nr, "node recovery set-throttle");
	if (ret >= 0)
		return ret;
	int exit_code = DOG_EXIT_SUCCESS;
	for (uint32_t i = 0; i < nr; i++) {
		int r = node_exec(&nodes[i], SD_OP_SET_RECOVERY, &t, sizeof(t), NULL, 0);
		if (r != SD_RES_SUCCESS) {
			dog_err("node recovery set-throttle: node %u (%s:%u): %s", i, nodes[i].addr,
				nodes[i].port, r < 0 ? strerror(-r) : "refused");
			exit_code = r < 0 ? DOG_EXIT_SYSFAIL : DOG_EXIT_FAILURE;
		}
	}
	free(nodes);
	if (exit_code == DOG_EXIT_SUCCESS)
		printf("max (%u), interval (%u)\n", max, interval);
	return exit_code;
}

int dog_node_recovery(struct dog *d)
{
	if (d->argc == 0)
		return recovery_show(d);
	if (!strcmp(d->argv[0], "get-throttle") && d->argc == 1)
		return recovery_get_throttle(d);
	if (!strcmp(d->argv[0], "set-throttle"))
		return recovery_set_throttle(d);
	dog_err("node recovery: unknown subcommand '%s' (want get-throttle or set-throttle)",
		d->argv[0]);
	return DOG_EXIT_USAGE;
}

int dog_cluster_recover(struct dog *d)
{
	const char *what = d->argv[0];
	uint8_t opcode;
	if (!strcmp(what, "enable"))
		opcode = SD_OP_ENABLE_RECOVER;
	else if (!strcmp(what, "disable"))
		opcode = SD_OP_DISABLE_RECOVER;
	else if (!strcmp(what, "force"))
		opcode = SD_OP_FORCE_RECOVER;
	else {
		dog_err("cluster recover: unknown action '%s' (want enable, disable or force)",
			what);
		return DOG_EXIT_USAGE;
	}
	if (opcode != SD_OP_FORCE_RECOVER) {
		/* Cluster-wide: one sheep broadcasts it. */
		struct sd_req req;
		struct sd_rsp rsp;
		dog_req_init(&req, opcode);
		int ret = dog_exec(d, &req, NULL, &rsp, NULL, 0);
		if (ret < 0)
			return dog_exit_of_errno(ret);
		if (ret != SD_RES_SUCCESS)
			return dog_fail_result("cluster recover", (uint32_t)ret, NULL);
		return DOG_EXIT_SUCCESS;
	}
	struct sd_node *nodes;
	uint32_t nr;
	int ret = nodes_of(d, &nodes, &nr, "cluster recover force");
	if (ret >= 0)
		return ret;
	int exit_code = DOG_EXIT_SUCCESS;
	for (uint32_t i = 0; i < nr; i++) {
		int r = node_exec(&nodes[i], SD_OP_FORCE_RECOVER, NULL, 0, NULL, 0);
		if (r != SD_RES_SUCCESS) {
			dog_err("cluster recover force: node %u (%s:%u): %s", i, nodes[i].addr,
				nodes[i].port, r < 0 ? strerror(-r) : "refused");
			exit_code = r < 0 ? DOG_EXIT_SYSFAIL : DOG_EXIT_FAILURE;
		}
	}
	free(nodes);
	return exit_code;
}
