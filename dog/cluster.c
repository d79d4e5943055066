/* cluster.c - dog cluster info / shutdown and the cluster command table (format: cluster_format.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/sd_wire.h"
#include "lib/util.h"

/* As many epoch logs as one reply may carry (about 136). */
#define STAT_CLUSTER_REPLY_MAX ((uint32_t)(SD_MAX_PAYLOAD / SD_EPOCH_LOG_SIZE * SD_EPOCH_LOG_SIZE))

/* Walk the epoch logs of a STAT_CLUSTER reply (Sheepdog's layout,
 * sd_wire.h): fn for each well-formed one, stopping at the first that is not. */
static void for_each_epoch(char *buf, size_t len, uint32_t nr_epochs,
			   void (*fn)(const struct sd_epoch_rec *e, const struct sd_node *nodes,
				      void *arg),
			   void *arg)
{
	struct sd_node *nodes = calloc(SD_WIRE_MAX_NODES, sizeof(*nodes));
	if (!nodes)
		return;
	for (uint32_t i = 0; i < nr_epochs; i++) {
		struct sd_epoch_rec e;
		if (sd_stat_cluster_epoch(buf, len, i, &e, nodes))
			break;
		fn(&e, nodes, arg);
	}
	free(nodes);
}

static void print_epoch(const struct sd_epoch_rec *e, const struct sd_node *nodes, void *arg)
{
	dog_print_epoch(stdout, e, nodes, *(const bool *)arg);
}

static void json_epoch(const struct sd_epoch_rec *e, const struct sd_node *nodes, void *arg)
{
	dog_json_epoch(arg, e, nodes);
}

/* cluster info --json: status, defaults and epoch history (dog(8)). */
static int cluster_info_json(const struct sd_rsp *rsp, const struct sd_cluster_info *ci, char *buf,
			     size_t len)
{
	struct dog_json j;
	dog_json_init(&j, stdout);
	dog_json_obj_begin(&j, NULL);
	bool ok = rsp->result == SD_RES_SUCCESS;
	dog_json_str(&j, "status", ok ? "running" : sd_strerror(rsp->result));
	dog_json_u64(&j, "result", rsp->result);
	dog_json_bool(&j, "recovery_enabled", !ci || ci->recovery_enabled);
	if (ci) {
		char p[16];
		dog_policy_str(ci->copy_policy, ci->copies, p, sizeof(p));
		dog_json_u64(&j, "ctime", ci->ctime);
		dog_json_u64(&j, "epoch", ci->epoch);
		if (ci->ctime)
			dog_json_str(&j, "policy", p);
		else
			dog_json_null(&j, "policy");
		dog_json_u64(&j, "copy_policy", ci->copy_policy);
		dog_json_u64(&j, "nr_copies", ci->copies);
		dog_json_u64(&j, "block_size_shift", ci->block_size_shift);
		dog_json_u64(&j, "nr_zones", ci->nr_zones);
	}
	dog_json_arr_begin(&j, "epochs");
	if (ci)
		for_each_epoch(buf, len, ci->nr_epochs, json_epoch, &j);
	dog_json_arr_end(&j);
	dog_json_obj_end(&j);
	return DOG_EXIT_SUCCESS;
}

static int cluster_info(struct dog *d)
{
	char *buf = calloc(1, STAT_CLUSTER_REPLY_MAX);
	if (!buf)
		return DOG_EXIT_SYSFAIL;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_STAT_CLUSTER);
	req.data_length = STAT_CLUSTER_REPLY_MAX;
	int ret = dog_exec(d, &req, NULL, &rsp, buf, STAT_CLUSTER_REPLY_MAX);
	if (ret < 0) {
		free(buf);
		return dog_exit_of_errno(ret);
	}
	struct sd_cluster_info ci;
	size_t len = rsp.data_length;
	sd_stat_cluster_summary(buf, len, rsp.result, &ci);
	bool have_info = len >= SD_EPOCH_LOG_SIZE;
	if (d->json) {
		int r = cluster_info_json(&rsp, have_info ? &ci : NULL, buf, len);
		free(buf);
		return r;
	}
	dog_print_cluster_status(stdout, rsp.result, &ci, d->raw);
	if (d->verbose && have_info && rsp.result == SD_RES_SUCCESS) {
		char p[16];
		dog_policy_str(ci.copy_policy, ci.copies, p, sizeof(p));
		/* Sheepdog's wording: "N copies", or "d:p redundancy policy". */
		if (ci.copy_policy)
			printf("Cluster store: plain with %s redundancy policy\n", p);
		else
			printf("Cluster store: plain with %u copies\n", ci.copies);
		printf("Cluster object size: %u MiB (block size shift %u)\n",
		       ci.block_size_shift >= 20 ? 1u << (ci.block_size_shift - 20) : 0,
		       ci.block_size_shift);
		printf("Cluster zones: %u\n", ci.nr_zones);
		printf("Cluster epoch: %u\n", ci.epoch);
	}
	if (have_info && ci.ctime) {
		dog_print_cluster_ctime(stdout, ci.ctime, d->raw);
		dog_print_epoch_header(stdout, d->raw);
	}
	if (have_info)
		for_each_epoch(buf, len, ci.nr_epochs, print_epoch, &d->raw);
	free(buf);
	return DOG_EXIT_SUCCESS;
}

static int cluster_shutdown(struct dog *d)
{
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_SHUTDOWN);
	int ret = dog_exec(d, &req, NULL, &rsp, NULL, 0);
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result("cluster shutdown", (uint32_t)ret, NULL);
	return DOG_EXIT_SUCCESS;
}

const struct dog_cmd dog_cluster_cmds[] = {
    {"cluster", "format", "c:z:V:tR", NULL,
     "format the cluster and set its default redundancy policy",
     "  -c, --copies          default redundancy: N copies (1..31) or d:p erasure code\n"
     "                        (d in 2,4,8,16, p in 1..15); 3 when absent\n"
     "  -z, --block_size_shift  default object size 2^N bytes, N in 20..31 (22)\n"
     "  -V, --vnodes N        fixed vnodes per node (default: by capacity); a bare\n"
     "                        -V (Sheepdog's --fixedvnodes) means 128\n"
     "  -t, --strict          refuse writes while there are fewer zones than the\n"
     "                        written object's policy is wide\n"
     "  -R, --recyclevid      let deleted VDIs' ids be taken again (default: a\n"
     "                        deleted VDI's id stays taken)\n",
     0, 0, dog_cluster_format},
    {"cluster", "info", "f:", NULL, "show cluster status, creation time and epoch history",
     DOG_JSON_HELP, 0, 0, cluster_info},
    {"cluster", "shutdown", NULL, NULL, "stop every sheep of the cluster", NULL, 0, 0,
     cluster_shutdown},
    /* recovery hook: dog/recovery.c */
    {"cluster", "recover", NULL, "enable|disable|force",
     "allow or stop data recovery cluster-wide, or replan it now on every node", NULL, 1, 1,
     dog_cluster_recover},
    {"cluster", "check", NULL, NULL, "dog vdi check of every VDI, snapshots and clones included",
     NULL, 0, 0, dog_cluster_check},
    {"cluster", "scrub", NULL, "[start [RATE] | stop | status]",
     "start (at RATE bytes/s, K/M/G allowed), stop or show the background scrub of\n"
     "    every node: progress, bad fragments found and repaired",
     NULL, 0, 2, dog_cluster_scrub},
    {"cluster", "snapshot", NULL, "save TAG PATH | load TAG|IDX PATH | list PATH",
     "copy every VDI of the cluster into directory PATH, bring a copy back (after a format), "
     "or list the copies",
     NULL, 2, 3, dog_cluster_snapshot},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
