/* fuzz_cluster.c - fuzz target: cluster messages as every driver delivers them (group_on_deliver),
 * a joiner's state snapshot, and the state files a sheep loads at start (config, VDI table, epoch
 * log). */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/event.h"
#include "lib/log.h"
#include "sheep/cluster/group_priv.h"
#include "sheep/sheep.h"
#include "sheep/vdi/vdi.h"
#include "tests/fuzz/fuzz.h"

static struct sheep *fs;
static char dir[] = "/dev/shm/sd-fuzz-cluster-XXXXXX";

static struct sd_node node_of(int k)
{
	struct sd_node n;
	memset(&n, 0, sizeof(n));
	snprintf(n.addr, sizeof(n.addr), "127.0.0.%d", k + 1);
	n.port = 7000;
	n.zone = (uint32_t)k;
	n.nr_vnodes = 64;
	n.space = 1ull << 40;
	n.incarnation = 1;
	return n;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw);

/* The directory goes when the process ends. */
static void rm_dir(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sd_log_open(NULL, SD_LOG_EMERG, "fuzz_cluster");
	fs = calloc(1, sizeof(*fs));
	if (!fs || !mkdtemp(dir) || sd_loop_create(&fs->loop))
		abort();
	atexit(rm_dir);
	fs->opt.dir = dir;
	fs->opt.nosync = true;
	fs->self = node_of(0);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return ftw->level ? remove(path) : 0;
}

/* Free everything group_init and the applies made. */
static void state_free(void)
{
	struct cluster_state *c = fs->cl;
	group_pending_clear(fs);
	while (c->joiners)
		group_remove_joiner(fs, &c->joiners->node);
	group_epochs_clear(fs);
	vdi_table_free(&c->vdis);
	free(c->members);
	sheep_view_put(c->view);
	pthread_mutex_destroy(&c->state_lock);
	pthread_cond_destroy(&c->state_cond);
	free(c);
	fs->cl = NULL;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f))
		abort();
}

/*
 * Input: a selector byte, then the bytes.
 *  0: a cluster message to a synced member formatted by the seed state
 *     (what every driver hands group_on_deliver);
 *  1: a CMSG_SNAPSHOT addressed to a joiner (group_apply_snapshot);
 *  2, 3, 4: the config file, the VDI table file, epoch 1's log record,
 *     loaded as at start (group_init).
 * The store directory is emptied before each input.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fs)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	uint8_t sel = data[0] % 5;
	/* Most messages carry this build's SNAP_WIRE where a snapshot or an
	 * offer has it, so that the rest of them is read; some keep theirs. */
	bool stamp = !(data[0] & 0x80);
	data++, size--;
	fs->stopping = 0; /* a refused snapshot stops the sheep */
	fs->exit_status = 0;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (sel == 2)
		write_file("config", data, size);
	if (sel == 3)
		write_file("vdis", data, size);
	if (sel == 4) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/epoch", dir);
		if (mkdir(p, 0755))
			abort();
		write_file("epoch/00000001", data, size);
	}
	uint8_t *msg = malloc(size ? size : 1);
	if (!msg)
		abort();
	memcpy(msg, data, size);
	if (stamp && size >= sizeof(struct snap_hdr)) {
		uint32_t wire = group_wire(fs);
		memcpy(msg + offsetof(struct snap_hdr, wire), &wire, sizeof(wire));
	}
	if (group_init(fs) == 0 && sel <= 1) {
		bool wipe = false;
		struct sd_node sender = node_of(1);
		if (sel == 0) {
			/* A formatted, synced member of a two-node cluster. */
			struct sd_node m[2] = {node_of(0), node_of(1)};
			pthread_mutex_lock(&fs->cl->state_lock);
			fs->cl->synced = true;
			group_apply_membership(fs, m, 2, &m[1], true);
			pthread_mutex_unlock(&fs->cl->state_lock);
			struct cmsg_format f = {.h = {.type = CMSG_FORMAT, .len = sizeof(f)},
						.ctime = 1,
						.copies = 2,
						.policy = 0x21,
						.shift = 22};
			group_on_deliver(fs, &fs->self, &f, sizeof(f));
			group_on_deliver(fs, &sender, msg, size);
		} else if (size >= sizeof(struct snap_hdr)) {
			pthread_mutex_lock(&fs->cl->state_lock);
			group_apply_snapshot(fs, msg, size, &wipe);
			pthread_mutex_unlock(&fs->cl->state_lock);
		}
	}
	free(msg);
	if (fs->cl)
		state_free();
	return 0;
}
