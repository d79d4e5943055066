/* vdi_check.c - dog vdi check / dog cluster check (every copy and fragment of a VDI's objects
 * checked and repaired by a sheep, CHECK_OBJ) and dog cluster scrub (the background scrub). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/inode.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/sd_internal.h"
#include "lib/util.h"

struct check_tot {
	uint64_t objects, found, fixed, unrepairable, unreachable;
};

static const char *problem_name(uint8_t p, bool ec, int idx, int d)
{
	switch (p) {
	case SD_CHECK_MISSING:
		return "missing";
	case SD_CHECK_CHECKSUM:
		return "checksum mismatch in";
	case SD_CHECK_STALE:
		return "stale";
	case SD_CHECK_MISMATCH:
		return !ec	  ? "inconsistent replica"
		       : idx >= d ? "parity mismatch in"
				  : "data mismatch in";
	}
	return "?";
}

/* CHECK_OBJ of one object through the sheep on fd; prints what was found. */
static int check_one(int fd, uint64_t oid, struct check_tot *t)
{
	struct sd_check_obj *c = calloc(1, sizeof(*c));
	if (!c)
		return DOG_EXIT_SYSFAIL;
	struct sd_req req;
	struct sd_rsp rsp;
	dog_req_init(&req, SD_OP_CHECK_OBJ);
	req.obj.oid = oid;
	req.data_length = sizeof(*c);
	int ret = sd_exec(fd, &req, NULL, &rsp, c, sizeof(*c));
	t->objects++;
	if (ret < 0) {
		free(c);
		dog_err("check of %016" PRIx64 ": lost the connection: %s", oid, strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (rsp.result == SD_RES_NO_OBJ) {
		/* Sheepdog's words for an object no node has. */
		fprintf(stderr, "no node has %016" PRIx64 "\n", oid);
		t->found++;
		t->unrepairable++;
		free(c);
		return 0;
	}
	if (rsp.result != SD_RES_SUCCESS || rsp.data_length < sizeof(*c)) {
		dog_err("failed to check %016" PRIx64 ": %s", oid,
			sd_strerror(rsp.result ? rsp.result : SD_RES_EIO));
		t->unrepairable++;
		free(c);
		return 0;
	}
	bool ec = c->d != 0;
	bool said = false;
	for (int i = 0; i < c->width && i < SD_CHECK_MAX_WIDTH; i++) {
		const struct sd_check_frag *f = &c->frag[i];
		c->frag[i].addr[sizeof(f->addr) - 1] = '\0';
		if (f->problem == SD_CHECK_OK || f->problem == SD_CHECK_NO_HOME)
			continue;
		if (f->problem == SD_CHECK_UNREACHABLE) {
			fprintf(stderr, "%016" PRIx64 ", copy index %d: %s:%u did not answer\n",
				oid, i, f->addr, f->port);
			t->unreachable++;
			continue;
		}
		t->found++;
		said = true;
		char ver[64] = "";
		if (f->problem == SD_CHECK_STALE)
			snprintf(ver, sizeof(ver), " (version %" PRIu64 ", not %" PRIu64 ")",
				 f->version, c->version);
		if (f->fixed) {
			t->fixed++;
			printf("fixed %s %016" PRIx64 ", copy index %d on %s:%u%s\n",
			       problem_name(f->problem, ec, i, c->d), oid, i, f->addr, f->port,
			       ver);
		} else {
			fprintf(stderr,
				"failed to repair %s %016" PRIx64 ", copy index %d on %s:%u%s\n",
				problem_name(f->problem, ec, i, c->d), oid, i, f->addr, f->port,
				ver);
		}
	}
	if (c->unrepairable) {
		t->unrepairable++;
		if (!said)
			fprintf(stderr, "object %016" PRIx64 " is inconsistent\n", oid);
	}
	free(c);
	return 0;
}

/* Every object of one VDI (ino with its object map): the inode, then each
 * allocated data object (a snapshot's, for a copy-on-write entry). */
static int check_vdi(int fd, const struct sd_inode *ino, struct check_tot *t)
{
	int rc = check_one(fd, vid_to_vdi_oid(ino->vdi_id), t);
	uint32_t n = dog_vdi_nr_objs(ino);
	for (uint32_t idx = 0; idx < n && !rc; idx++)
		if (ino->data_vdi_id[idx])
			rc = check_one(fd, vid_to_data_oid(ino->data_vdi_id[idx], idx), t);
	if (!rc)
		printf("finish check&repair %s\n", ino->name);
	return rc;
}

static int check_summary(const struct dog *d, const struct check_tot *t, int rc)
{
	if (d->raw)
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", t->objects,
		       t->found, t->fixed, t->unrepairable, t->unreachable);
	else
		printf("%" PRIu64 " object(s) checked: %" PRIu64 " problem(s) found, %" PRIu64
		       " fixed, %" PRIu64 " unrepairable, %" PRIu64 " holder(s) unreachable\n",
		       t->objects, t->found, t->fixed, t->unrepairable, t->unreachable);
	if (rc)
		return rc;
	return t->unrepairable ? DOG_EXIT_FAILURE : DOG_EXIT_SUCCESS;
}

/* Read the header and object map of VDI vid. */
static int read_inode(int fd, uint32_t vid, struct sd_inode *ino)
{
	int ret = dog_read_inode_hdr(fd, vid, ino);
	if (ret != SD_RES_SUCCESS)
		return ret;
	uint32_t n = dog_vdi_nr_objs(ino);
	return n ? dog_read_obj(fd, vid_to_vdi_oid(vid), ino->data_vdi_id,
				n * (uint32_t)sizeof(uint32_t), sd_inode_vid_offset(0))
		 : SD_RES_SUCCESS;
}

/* dog vdi check [-s SNAP] NAME */
int dog_vdi_check(struct dog *d)
{
	const char *name = d->argv[0];
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t vid = 0;
	int ret = dog_vdi_lookup_snap(fd, name, d->snap, &vid);
	if (ret != SD_RES_SUCCESS) {
		close(fd);
		return ret < 0 ? dog_exit_of_errno(ret)
			       : dog_fail_result("vdi check", (uint32_t)ret, name);
	}
	struct sd_inode *ino = malloc(sizeof(*ino)); /* sparse: only the map read is touched */
	if (!ino) {
		close(fd);
		return DOG_EXIT_SYSFAIL;
	}
	ret = read_inode(fd, vid, ino);
	if (ret != SD_RES_SUCCESS) {
		/* Sheepdog's words when the inode cannot be read. */
		dog_err("FATAL: no inode objects: %s",
			ret < 0 ? strerror(-ret) : sd_strerror((uint32_t)ret));
		free(ino);
		close(fd);
		return ret < 0 && ret != -EBADMSG ? DOG_EXIT_SYSFAIL : DOG_EXIT_FAILURE;
	}
	struct check_tot t = {0};
	int rc = check_vdi(fd, ino, &t);
	free(ino);
	close(fd);
	return check_summary(d, &t, rc);
}

struct cluster_check {
	int fd;
	struct check_tot t;
	uint32_t vdis;
};

static int cluster_check_one(const struct sd_inode *ino, void *arg)
{
	struct cluster_check *cc = arg;
	cc->vdis++;
	return check_vdi(cc->fd, ino, &cc->t);
}

/* dog cluster check: every VDI, snapshots and clones included. */
int dog_cluster_check(struct dog *d)
{
	struct cluster_check cc = {.fd = dog_connect(d)};
	if (cc.fd < 0)
		return dog_exit_of_errno(cc.fd);
	int rc = dog_vdi_foreach(cc.fd, true, NULL, cluster_check_one, &cc);
	close(cc.fd);
	if (!d->raw)
		printf("%u VDI(s): ", cc.vdis);
	return check_summary(d, &cc.t, rc);
}

/* dog cluster scrub [start [RATE] | stop | status]: on every node. */
int dog_cluster_scrub(struct dog *d)
{
	struct sd_scrub_ctl ctl = {.action = SD_SCRUB_STATUS};
	const char *verb = d->argc ? d->argv[0] : "status";
	if (!strcmp(verb, "start")) {
		ctl.action = SD_SCRUB_START;
		uint64_t rate = 0;
		if (d->argc > 1 && (sd_parse_size(d->argv[1], &rate) || !rate)) {
			dog_err("cluster scrub start: invalid rate '%s' (bytes per second, K/M/G "
				"allowed)",
				d->argv[1]);
			return DOG_EXIT_USAGE;
		}
		ctl.rate = rate;
	} else if (!strcmp(verb, "stop")) {
		ctl.action = SD_SCRUB_STOP;
	} else if (strcmp(verb, "status")) {
		dog_err("cluster scrub: want start [RATE], stop or status");
		return DOG_EXIT_USAGE;
	}
	if ((ctl.action != SD_SCRUB_START && d->argc > 1) || d->argc > 2) {
		dog_err("cluster scrub: too many arguments");
		return DOG_EXIT_USAGE;
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct sd_node *nodes;
	uint32_t nr;
	int ret = dog_get_nodes(fd, &nodes, &nr, NULL);
	close(fd);
	if (ret != SD_RES_SUCCESS)
		return ret < 0 ? dog_exit_of_errno(ret)
			       : dog_fail_result("cluster scrub", (uint32_t)ret, NULL);
	if (d->raw)
		printf(
		    "id host:port enabled rate passes done total scanned bytes found repaired\n");
	else
		printf("  Id   Host:Port            Scrub  Rate/s     Passes  Progress       "
		       "Found  Repaired\n");
	int failed = 0;
	for (uint32_t i = 0; i < nr; i++) {
		struct sd_store_stat st;
		struct sd_req req;
		struct sd_rsp rsp;
		int nfd = dog_connect_to(nodes[i].addr, nodes[i].port);
		ret = nfd;
		if (nfd >= 0) {
			dog_req_init(&req, SD_OP_SCRUB);
			if (ctl.action != SD_SCRUB_STATUS) {
				req.flags = SD_FLAG_CMD_WRITE;
				req.data_length = sizeof(ctl);
			} else {
				req.data_length = sizeof(st);
			}
			memset(&st, 0, sizeof(st));
			ret = sd_exec(nfd, &req, ctl.action != SD_SCRUB_STATUS ? &ctl : NULL, &rsp,
				      &st, sizeof(st));
			close(nfd);
			if (ret == 0 && rsp.result == SD_RES_NO_STORE)
				continue; /* a gateway-only sheep has nothing to scrub */
			if (ret == 0 && rsp.result != SD_RES_SUCCESS) {
				dog_err("cluster scrub: node %u (%s:%u): %s", i, nodes[i].addr,
					nodes[i].port, sd_strerror(rsp.result));
				failed++;
				continue;
			}
		}
		if (ret) {
			dog_err("cluster scrub: node %u (%s:%u): %s", i, nodes[i].addr,
				nodes[i].port, strerror(-ret));
			failed++;
			continue;
		}
		if (d->raw) {
			printf("%u %s:%u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			       " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			       i, nodes[i].addr, nodes[i].port, st.scrub_enabled, st.scrub_rate,
			       st.scrub_passes, st.scrub_done, st.scrub_total, st.scrub_scanned,
			       st.scrub_bytes, st.csum_found, st.csum_repaired);
			continue;
		}
		char host[96], rate[32], prog[32];
		snprintf(host, sizeof(host), "%s:%u", nodes[i].addr, nodes[i].port);
		dog_size_str(st.scrub_rate, false, rate, sizeof(rate));
		snprintf(prog, sizeof(prog), "%" PRIu64 "/%" PRIu64, st.scrub_done, st.scrub_total);
		printf("%4u   %-20s %-5s %8s %8" PRIu64 "  %-13s %6" PRIu64 " %9" PRIu64 "\n", i,
		       host, st.scrub_enabled ? "on" : "off", rate, st.scrub_passes, prog,
		       st.csum_found, st.csum_repaired);
	}
	free(nodes);
	return failed ? DOG_EXIT_FAILURE : DOG_EXIT_SUCCESS;
}
