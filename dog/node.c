/* node.c - dog node list / info / kill. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"

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

const struct dog_cmd dog_node_cmds[] = {
    {"node", "list", "f:", NULL, "list the nodes of the cluster", DOG_JSON_HELP, 0, 0, node_list},
    {"node", "info", "f:", NULL, "show disk use of each node", DOG_JSON_HELP, 0, 0, node_info},
    {"node", "kill", NULL, "<node id>", "stop one sheep (its Id from dog node list)", NULL, 1, 1,
     node_kill},
    /* recovery hook: dog/recovery.c */
    {"node", "recovery", "f:", "[get-throttle | set-throttle MAX [INTERVAL_MS]]",
     "show recovery progress per node, or get/set the recovery throttle", DOG_JSON_HELP, 0, 3,
     dog_node_recovery},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
