/* cluster_format.c - dog cluster format: MAKE_FS with the default policy, object size, vnodes and
 * flags (also run by cluster snapshot load). */
#include <stdio.h>
#include <string.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/sd_wire.h"
#include "lib/util.h"

int dog_cluster_format(struct dog *d)
{
	struct ec_policy pol;
	if (d->have_policy) {
		pol = d->policy;
	} else if (ec_policy_parse("3", &pol) < 0) {
		dog_err("cluster format: cannot build the default policy");
		return DOG_EXIT_FAILURE;
	}
	struct sd_req req;
	struct sd_rsp rsp;
	char text[1024] = "";
	dog_req_init(&req, SD_OP_MAKE_FS);
	req.cluster.ctime = sd_wall_seconds() << 32; /* Sheepdog's (s << 32) | ns */
	req.cluster.copies = (uint8_t)ec_policy_width(&pol);
	req.cluster.copy_policy = ec_policy_byte(&pol);
	req.cluster.block_size_shift =
	    (uint8_t)(d->block_size_shift >= 0 ? d->block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT);
	req.cluster.nr_vnodes = (uint16_t)d->nr_vnodes;
	if (d->strict)
		req.cluster.flags |= SD_CLUSTER_FLAG_STRICT;
	if (d->recycle_vid)
		req.cluster.flags |= SD_CLUSTER_FLAG_RECYCLE_VID;
	/* Sheepdog sends the backend's name and prints it before it asks;
	 * this project has one. */
	char store[SD_STORE_LEN] = "plain";
	req.flags |= SD_FLAG_CMD_WRITE;
	req.data_length = sizeof(store);
	printf("using backend plain store\n");
	fflush(stdout);
	int ret = dog_exec(d, &req, store, &rsp, text, sizeof(text) - 1);
	if (ret < 0)
		return dog_exit_of_errno(ret);
	if (ret != SD_RES_SUCCESS) {
		if (rsp.data_length && text[0]) {
			dog_err("cluster format: %.*s", (int)rsp.data_length, text);
			return dog_exit_of_result((uint32_t)ret);
		}
		return dog_fail_result("cluster format", (uint32_t)ret, NULL);
	}
	if (d->verbose) {
		char p[16];
		ec_policy_format(&pol, p, sizeof(p));
		printf("cluster formatted with policy %s, object size %u MiB\n", p,
		       1u << (req.cluster.block_size_shift - 20));
	}
	return DOG_EXIT_SUCCESS;
}
