/* vdi_alter.c - dog vdi alter-copy: change a VDI's redundancy policy online, and show how far a
 * change is. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/sd_internal.h"

static int alter_status(int fd, uint32_t vid, struct sd_alter_status *st)
{
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_ALTER_STATUS);
	req.vdi.base_vdi_id = vid;
	req.data_length = sizeof(*st);
	memset(st, 0, sizeof(*st));
	int ret = sd_exec(fd, &req, NULL, &rsp, st, sizeof(*st));
	if (ret < 0)
		return ret;
	return sd_res_int(rsp.result);
}

static void print_status(FILE *f, const char *name, const struct sd_alter_status *st)
{
	char cur[32], tgt[32];
	dog_policy_str(st->copy_policy, st->copies, cur, sizeof(cur));
	if (!st->converting) {
		fprintf(f, "%s: policy %s\n", name, cur);
		return;
	}
	dog_policy_str(st->target_policy, st->target_copies, tgt, sizeof(tgt));
	uint32_t done = st->mark < st->nr_objs ? st->mark : st->nr_objs;
	fprintf(f, "%s: converting %s -> %s: %u of %u objects (%u%%)\n", name, cur, tgt, done,
		st->nr_objs, st->nr_objs ? (unsigned)((uint64_t)done * 100 / st->nr_objs) : 100);
}

static int lost(int ret)
{
	dog_err("vdi alter-copy: lost the connection to sheep: %s", strerror(-ret));
	return DOG_EXIT_SYSFAIL;
}

/*
 * With -c: ask for the change (refused, with the sheep's reason, when the
 * VDI is unknown or a snapshot, the policy is the current one or needs
 * more zones than the cluster has), then wait for the cluster to finish
 * it, printing progress lines on stderr when it is a terminal; interrupted
 * (Ctrl-C), the conversion goes on in the cluster. Without -c: print
 * where the VDI's policy stands.
 */
int dog_vdi_alter_copy(struct dog *d)
{
	const char *name = d->argv[0];
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t vid;
	int ret = dog_vdi_lookup_snap(fd, name, d->snap, &vid);
	if (ret < 0) {
		close(fd);
		return lost(ret);
	}
	if (ret != SD_RES_SUCCESS) {
		close(fd);
		return dog_fail_result("vdi alter-copy", (uint32_t)ret, name);
	}
	struct sd_alter_status st;
	if (!d->have_policy) {
		ret = alter_status(fd, vid, &st);
		close(fd);
		if (ret < 0)
			return lost(ret);
		if (ret != SD_RES_SUCCESS)
			return dog_fail_result("vdi alter-copy", (uint32_t)ret, name);
		print_status(stdout, name, &st);
		return DOG_EXIT_SUCCESS;
	}
	char text[512];
	memset(text, 0, sizeof(text));
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_ALTER_VDI_COPY);
	req.vdi_state.new_vid = vid;
	req.vdi_state.copies = (uint8_t)ec_policy_width(&d->policy);
	req.vdi_state.copy_policy = ec_policy_byte(&d->policy);
	ret = sd_exec(fd, &req, NULL, &rsp, text, sizeof(text) - 1);
	if (ret < 0) {
		close(fd);
		return lost(ret);
	}
	if (rsp.result != SD_RES_SUCCESS) {
		close(fd);
		if (rsp.data_length && text[0]) {
			dog_err("vdi alter-copy: %s: %s", name, text);
			return dog_exit_of_result(rsp.result);
		}
		return dog_fail_result("vdi alter-copy", rsp.result, name);
	}
	bool tty = isatty(2);
	time_t last = 0;
	for (;;) {
		ret = alter_status(fd, vid, &st);
		if (ret < 0) {
			close(fd);
			return lost(ret);
		}
		if (ret != SD_RES_SUCCESS) {
			close(fd);
			return dog_fail_result("vdi alter-copy", (uint32_t)ret, name);
		}
		if (!st.converting)
			break;
		if (tty && time(NULL) != last) {
			print_status(stderr, name, &st);
			last = time(NULL);
		}
		usleep(200000);
	}
	close(fd);
	char pb[32];
	dog_policy_str(st.copy_policy, st.copies, pb, sizeof(pb));
	printf("VDI %s: policy now %s\n", name, pb);
	return DOG_EXIT_SUCCESS;
}
