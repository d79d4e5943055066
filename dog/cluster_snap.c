/* cluster_snap.c - dog cluster snapshot save|load|list: every VDI of the cluster copied into a
 * local directory (objects kept once by content) and brought back after a format. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dog/dog.h"
#include "ec/ec.h"
#include "lib/fnv.h"
#include "lib/inode.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

/*
 * The directory, as written by save and read by load and list:
 *   PATH/snap_log        one line per saved snapshot: "IDX TAG SECONDS"
 *                        (IDX from 1, in save order);
 *   PATH/snap/IDX        its manifest (text): "cluster COPIES POLICY SHIFT",
 *                        then per VDI "vdi VID SNAPID SNAPSHOT SIZE COPIES
 *                        POLICY SHIFT NAME TAG" (name and tag in hex, "-"
 *                        for empty) followed by "obj IDX KEY" per allocated
 *                        object, and "end";
 *   PATH/objects/KEY     an object's bytes; KEY is the FNV-1a-64 of them
 *                        in hex, with "-N" added when different bytes had
 *                        the same hash (bytes are compared before reuse).
 * A manifest is written whole (tmp + rename) before its snap_log line, so
 * an interrupted save leaves no entry that load could half-read.
 */

#define SNAP_KEY_MAX 40

struct snap_vdi {
	struct sd_inode_hdr h;
	uint32_t nr;		    /* objects covering vdi_size */
	uint32_t *map;		    /* data_vdi_id[] (save) */
	char (*keys)[SNAP_KEY_MAX]; /* per idx, "" when unallocated (load) */
};

struct snap_set {
	struct snap_vdi *v;
	size_t n, cap;
};

/* Bytes of the largest object of the set's VDIs. */
static size_t set_max_obj(const struct snap_set *s)
{
	uint8_t m = SD_MIN_BLOCK_SIZE_SHIFT;
	for (size_t i = 0; i < s->n; i++) {
		uint8_t sh = s->v[i].h.block_size_shift ? s->v[i].h.block_size_shift
							: SD_DEFAULT_BLOCK_SIZE_SHIFT;
		if (sh > m)
			m = sh;
	}
	return (size_t)1 << m;
}

static int set_add(struct snap_set *s, const struct sd_inode_hdr *h, uint32_t nr)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 16;
		struct snap_vdi *nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	struct snap_vdi *v = &s->v[s->n];
	memset(v, 0, sizeof(*v));
	v->h = *h;
	v->nr = nr;
	v->map = calloc(nr ? nr : 1, sizeof(*v->map));
	v->keys = calloc(nr ? nr : 1, sizeof(*v->keys));
	if (!v->map || !v->keys) {
		free(v->map);
		free(v->keys);
		return -ENOMEM;
	}
	s->n++;
	return 0;
}

static void set_free(struct snap_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].map);
		free(s->v[i].keys);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int collect_one(const struct sd_inode *ino, void *arg)
{
	struct snap_set *s = arg;
	uint32_t nr = dog_vdi_nr_objs(ino);
	if (set_add(s, (const struct sd_inode_hdr *)(const void *)ino, nr)) {
		dog_err("cluster snapshot: out of memory");
		return DOG_EXIT_SYSFAIL;
	}
	memcpy(s->v[s->n - 1].map, ino->data_vdi_id, nr * sizeof(uint32_t));
	return 0;
}

static void hex_of(const char *str, char *out, size_t cap)
{
	if (!str[0]) {
		snprintf(out, cap, "-");
		return;
	}
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)str; *p && k + 3 <= cap; p++, k += 2)
		snprintf(out + k, cap - k, "%02x", *p);
}

static int unhex(const char *in, char *out, size_t cap)
{
	memset(out, 0, cap);
	if (!strcmp(in, "-"))
		return 0;
	size_t n = strlen(in);
	if (n % 2 || n / 2 >= cap)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned b;
		if (sscanf(in + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = (char)b;
	}
	return 0;
}

static int read_file(const char *path, void *buf, size_t len, size_t *got)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	*got = fread(buf, 1, len, f);
	int bad = ferror(f);
	fclose(f);
	return bad ? -EIO : 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -errno;
	size_t put = fwrite(buf, 1, len, f);
	int bad = put != len || fflush(f) || fsync(fileno(f));
	if (fclose(f))
		bad = 1;
	if (bad || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* Store buf under its content key (reusing an equal object); key out. */
static int put_object(const char *dir, const char *buf, size_t len, char *cmp, char *key)
{
	uint64_t h = fnv_64a_buf(buf, len, FNV1A_64_INIT);
	for (int n = 0; n < 1000; n++) {
		char path[4200];
		if (n)
			snprintf(key, SNAP_KEY_MAX, "%016" PRIx64 "-%d", h, n);
		else
			snprintf(key, SNAP_KEY_MAX, "%016" PRIx64, h);
		snprintf(path, sizeof(path), "%s/objects/%s", dir, key);
		struct stat st;
		if (stat(path, &st))
			return write_file(path, buf, len);
		size_t got;
		if ((size_t)st.st_size == len && !read_file(path, cmp, len, &got) && got == len &&
		    !memcmp(cmp, buf, len))
			return 0; /* the same bytes are there already */
	}
	return -EEXIST;
}

struct snap_log_ent {
	uint32_t idx;
	char tag[SD_MAX_VDI_TAG_LEN];
	uint64_t time;
};

/* The entries of PATH/snap_log (none when absent); -errno on a bad file. */
static int log_read(const char *dir, struct snap_log_ent **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char path[4200], line[512];
	snprintf(path, sizeof(path), "%s/snap_log", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	size_t cap = 0;
	int ret = 0;
	while (fgets(line, sizeof(line), f)) {
		struct snap_log_ent e;
		char hex[2 * SD_MAX_VDI_TAG_LEN + 2];
		if (sscanf(line, "%" SCNu32 " %512s %" SCNu64, &e.idx, hex, &e.time) != 3 ||
		    unhex(hex, e.tag, sizeof(e.tag))) {
			ret = -EINVAL;
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			struct snap_log_ent *nv = realloc(*out, cap * sizeof(*nv));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			*out = nv;
		}
		(*out)[(*n)++] = e;
	}
	fclose(f);
	if (ret) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

static int snap_fail_save(const char *path, int rc)
{
	dog_err("Fail to save snapshot to path: %s.", path);
	return rc;
}

/* Save every object of one VDI: its manifest lines go to m. */
static int save_vdi(int fd, const char *dir, const struct snap_vdi *v, FILE *m, char *buf,
		    char *cmp, uint64_t *nobj)
{
	char name[2 * SD_MAX_VDI_LEN + 2], tag[2 * SD_MAX_VDI_TAG_LEN + 2];
	hex_of(v->h.name, name, sizeof(name));
	hex_of(v->h.tag, tag, sizeof(tag));
	uint8_t shift = v->h.block_size_shift ? v->h.block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT;
	fprintf(m, "vdi %" PRIx32 " %" PRIu32 " %d %" PRIu64 " %u %u %u %s %s\n", v->h.vdi_id,
		v->h.snap_id, v->h.snap_ctime != 0, v->h.vdi_size, v->h.nr_copies, v->h.copy_policy,
		shift, name, tag);
	uint64_t osz = 1ull << shift;
	for (uint32_t idx = 0; idx < v->nr; idx++) {
		if (!v->map[idx])
			continue;
		uint32_t len = (uint32_t)SD_MIN(osz, v->h.vdi_size - (uint64_t)idx * osz);
		int ret = dog_read_obj(fd, vid_to_data_oid(v->map[idx], idx), buf, len, 0);
		if (ret != SD_RES_SUCCESS) {
			if (ret < 0)
				dog_err("cluster snapshot save: lost the connection to sheep: %s",
					strerror(-ret));
			else
				dog_err("cluster snapshot save: object %" PRIu32 " of %s: %s", idx,
					v->h.name, sd_strerror((uint32_t)ret));
			return DOG_EXIT_SYSFAIL;
		}
		char key[SNAP_KEY_MAX];
		if ((ret = put_object(dir, buf, len, cmp, key))) {
			dog_err("cluster snapshot save: cannot write under %s: %s", dir,
				strerror(-ret));
			return DOG_EXIT_SYSFAIL;
		}
		fprintf(m, "obj %" PRIu32 " %s\n", idx, key);
		(*nobj)++;
	}
	return 0;
}

/* dog cluster snapshot save TAG PATH: every VDI (snapshots and working
 * ones) into PATH, as snapshot number (last + 1) tagged TAG. */
static int snap_save(struct dog *d, const char *tag, const char *dir)
{
	char *p;
	(void)strtol(tag, &p, 10);
	if (p != tag) {
		dog_err("Tag should not start with number.");
		return DOG_EXIT_USAGE;
	}
	if (strlen(tag) >= SD_MAX_VDI_TAG_LEN || strchr(tag, ' ')) {
		dog_err("cluster snapshot save: a tag takes 1 to 255 bytes and no space");
		return DOG_EXIT_USAGE;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/objects", dir);
	if ((mkdir(dir, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST)) {
		dog_err("cluster snapshot save: cannot create %s: %s", path, strerror(errno));
		return snap_fail_save(dir, DOG_EXIT_SYSFAIL);
	}
	snprintf(path, sizeof(path), "%s/snap", dir);
	if (mkdir(path, 0755) && errno != EEXIST) {
		dog_err("cluster snapshot save: cannot create %s: %s", path, strerror(errno));
		return snap_fail_save(dir, DOG_EXIT_SYSFAIL);
	}
	struct snap_log_ent *log;
	size_t nlog;
	if (log_read(dir, &log, &nlog)) {
		dog_err("cluster snapshot save: %s/snap_log is damaged", dir);
		return snap_fail_save(dir, DOG_EXIT_SYSFAIL);
	}
	uint32_t next = 1;
	for (size_t i = 0; i < nlog; i++) {
		if (!strcmp(log[i].tag, tag)) {
			free(log);
			dog_err("Snapshot tag has already been used for another snapshot, please, "
				"use another one.");
			return snap_fail_save(dir, DOG_EXIT_SYSFAIL);
		}
		if (log[i].idx >= next)
			next = log[i].idx + 1;
	}
	free(log);
	struct sd_cluster_info ci;
	int ret = dog_cluster_info(d, &ci);
	if (ret != SD_RES_SUCCESS || !ci.ctime) {
		dog_err("cluster snapshot save: the cluster is not formatted or not reachable");
		return snap_fail_save(dir, DOG_EXIT_SYSFAIL);
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct snap_set set = {0};
	int rc = dog_vdi_foreach(fd, true, NULL, collect_one, &set);
	char *buf = malloc(set_max_obj(&set)), *cmp = NULL;
	char *mbuf = NULL;
	size_t mlen = 0;
	FILE *m = open_memstream(&mbuf, &mlen);
	if (!rc && (!buf || !m))
		rc = DOG_EXIT_SYSFAIL;
	if (!rc && !set.n) {
		dog_err("Cannot execute. It may be caused by:");
		dog_err("1. The cluster is empty.");
		rc = DOG_EXIT_SYSFAIL;
	}
	if (!rc) {
		cmp = malloc(set_max_obj(&set));
		if (!cmp)
			rc = DOG_EXIT_SYSFAIL;
	}
	uint64_t nobj = 0;
	if (!rc) {
		fprintf(m, "cluster %u %u %u\n", ci.copies, ci.copy_policy, ci.block_size_shift);
		for (size_t i = 0; i < set.n && !rc; i++)
			rc = save_vdi(fd, dir, &set.v[i], m, buf, cmp, &nobj);
		fprintf(m, "end\n");
	}
	if (m)
		fclose(m);
	close(fd);
	if (!rc) {
		snprintf(path, sizeof(path), "%s/snap/%" PRIu32, dir, next);
		if (write_file(path, mbuf, mlen)) {
			dog_err("cluster snapshot save: cannot write %s", path);
			rc = DOG_EXIT_SYSFAIL;
		}
	}
	if (!rc) {
		char hex[2 * SD_MAX_VDI_TAG_LEN + 2];
		hex_of(tag, hex, sizeof(hex));
		snprintf(path, sizeof(path), "%s/snap_log", dir);
		FILE *f = fopen(path, "a");
		if (!f ||
		    fprintf(f, "%" PRIu32 " %s %" PRIu64 "\n", next, hex, sd_wall_seconds()) < 0 ||
		    fflush(f) || fsync(fileno(f))) {
			dog_err("cluster snapshot save: cannot write %s", path);
			rc = DOG_EXIT_SYSFAIL;
		}
		if (f)
			fclose(f);
	}
	if (!rc && d->verbose)
		printf("snapshot %" PRIu32 " (%s): %zu VDIs, %" PRIu64 " objects\n", next, tag,
		       set.n, nobj);
	free(mbuf);
	free(buf);
	free(cmp);
	set_free(&set);
	return rc ? snap_fail_save(dir, rc) : DOG_EXIT_SUCCESS;
}

static int snap_list(struct dog *d, const char *dir)
{
	struct snap_log_ent *log;
	size_t n;
	if (log_read(dir, &log, &n) || !n) {
		free(log);
		dog_err("Fail to list snapshot.");
		return DOG_EXIT_SYSFAIL;
	}
	if (!d->raw)
		printf("Index\t\tTag\t\tSnapshot Time\n");
	for (size_t i = 0; i < n; i++) {
		char ts[64];
		time_t t = (time_t)log[i].time;
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		if (d->raw)
			printf("%" PRIu32 " %s %" PRIu64 "\n", log[i].idx, log[i].tag, log[i].time);
		else
			printf("%" PRIu32 "\t\t%s\t\t%s\n", log[i].idx, log[i].tag, ts);
	}
	free(log);
	return DOG_EXIT_SUCCESS;
}

/* Parse manifest file path into set (keys filled) and the cluster defaults. */
static int manifest_read(const char *path, struct snap_set *set, unsigned def[3])
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char line[1200];
	int ret = -EINVAL;
	bool header = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned a, b, c, snap;
		uint32_t vid, snapid, idx;
		uint64_t size;
		char name[2 * SD_MAX_VDI_LEN + 2], tag[2 * SD_MAX_VDI_TAG_LEN + 2],
		    key[SNAP_KEY_MAX];
		if (!header) {
			if (sscanf(line, "cluster %u %u %u", &def[0], &def[1], &def[2]) != 3)
				break;
			header = true;
		} else if (!strcmp(line, "end\n")) {
			ret = 0;
			break;
		} else if (sscanf(line,
				  "vdi %" SCNx32 " %" SCNu32 " %u %" SCNu64 " %u %u %u %513s %513s",
				  &vid, &snapid, &snap, &size, &a, &b, &c, name, tag) == 9) {
			if (c < SD_MIN_BLOCK_SIZE_SHIFT || c > SD_MAX_BLOCK_SIZE_SHIFT ||
			    size > sd_max_vdi_size((uint8_t)c))
				break;
			struct sd_inode_hdr h;
			memset(&h, 0, sizeof(h));
			if (unhex(name, h.name, sizeof(h.name)) || unhex(tag, h.tag, sizeof(h.tag)))
				break;
			h.vdi_id = vid;
			h.snap_id = snapid;
			h.snap_ctime = snap;
			h.vdi_size = size;
			h.nr_copies = (uint8_t)a;
			h.copy_policy = (uint8_t)b;
			h.block_size_shift = (uint8_t)c;
			uint64_t nr = (size + (1ull << c) - 1) >> c;
			if (set_add(set, &h, (uint32_t)nr)) {
				ret = -ENOMEM;
				break;
			}
		} else if (sscanf(line, "obj %" SCNu32 " %39s", &idx, key) == 2) {
			if (!set->n || idx >= set->v[set->n - 1].nr || strchr(key, '/'))
				break;
			snprintf(set->v[set->n - 1].keys[idx], SNAP_KEY_MAX, "%s", key);
		} else {
			break;
		}
	}
	fclose(f);
	return ret;
}

static int by_family(const void *a, const void *b)
{
	const struct snap_vdi *x = a, *y = b;
	int c = strcmp(x->h.name, y->h.name);
	if (c)
		return c;
	/* snapshots by id, then the working VDI */
	if ((x->h.snap_ctime != 0) != (y->h.snap_ctime != 0))
		return x->h.snap_ctime ? -1 : 1;
	return x->h.snap_id < y->h.snap_id ? -1 : x->h.snap_id > y->h.snap_id;
}

/* Run a dog subcommand of table cmds with arguments argv (a copy of d). */
static int run_cmd(const struct dog *d, const struct dog_cmd *cmds, const char *name, int argc,
		   char **argv, struct dog *sub)
{
	for (const struct dog_cmd *c = cmds; c->name; c++)
		if (!strcmp(c->name, name)) {
			sub->argc = argc;
			sub->argv = argv;
			return c->run(sub);
		}
	(void)d;
	return DOG_EXIT_SYSFAIL;
}

/* Bring one saved VDI back as the state of the working VDI of its name
 * (created by the first of its family), then freeze it when it was a
 * snapshot. prev: the family's previous entry (NULL for the first). */
static int load_vdi(struct dog *d, const char *dir, const struct snap_vdi *v,
		    const struct snap_vdi *prev, char *buf)
{
	const char *what = "cluster snapshot load";
	char size[32], name[SD_MAX_VDI_LEN];
	snprintf(size, sizeof(size), "%" PRIu64, v->h.vdi_size);
	snprintf(name, sizeof(name), "%s", v->h.name);
	char *argv[3] = {name, size, NULL};
	struct dog sub = *d;
	sub.snap = NULL;
	sub.verbose = false;
	int rc;
	if (!prev) {
		if (ec_policy_from_wire(v->h.copy_policy, v->h.nr_copies, &sub.policy)) {
			dog_err("%s: VDI %s has a bad policy in the snapshot", what, name);
			return DOG_EXIT_FAILURE;
		}
		sub.have_policy = true;
		sub.block_size_shift = v->h.block_size_shift;
		sub.prealloc = false;
		sub.hyper = false;
		rc = run_cmd(d, dog_vdi_cmds, "create", 2, argv, &sub);
	} else if (v->h.vdi_size > prev->h.vdi_size) {
		rc = run_cmd(d, dog_vdi_cmds, "resize", 2, argv, &sub);
	} else {
		rc = 0;
	}
	if (rc)
		return rc;
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	uint32_t wvid;
	struct sd_inode_hdr wh;
	uint32_t *wmap = calloc(v->nr ? v->nr : 1, sizeof(*wmap));
	int ret = wmap ? dog_vdi_lookup(fd, name, &wvid) : -ENOMEM;
	if (ret == SD_RES_SUCCESS)
		ret = dog_read_obj(fd, vid_to_vdi_oid(wvid), &wh, sizeof(wh), 0);
	if (ret == SD_RES_SUCCESS && v->nr)
		ret = dog_read_obj(fd, vid_to_vdi_oid(wvid), wmap, v->nr * sizeof(*wmap),
				   sd_inode_vid_offset(0));
	uint64_t osz = 1ull << v->h.block_size_shift;
	for (uint32_t idx = 0; idx < v->nr && ret == SD_RES_SUCCESS; idx++) {
		const char *key = v->keys[idx];
		const char *was = prev && idx < prev->nr ? prev->keys[idx] : "";
		if (!strcmp(key, was))
			continue; /* unchanged since the family's previous entry */
		if (!key[0]) {
			struct sd_req req;
			struct sd_rsp rsp;
			dog_req_init(&req, SD_OP_DISCARD_OBJ);
			req.obj.oid = vid_to_data_oid(wvid, idx);
			ret = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
			if (ret == 0)
				ret = sd_res_int(rsp.result);
			continue;
		}
		uint32_t len = (uint32_t)SD_MIN(osz, v->h.vdi_size - (uint64_t)idx * osz);
		char path[4200];
		size_t got = 0;
		snprintf(path, sizeof(path), "%s/objects/%s", dir, key);
		if (read_file(path, buf, len, &got) || got != len) {
			dog_err("%s: %s is missing or short: the snapshot is damaged", what, path);
			ret = SD_RES_EIO;
			break;
		}
		bool own = wmap[idx] == wvid;
		ret = dog_write_obj(fd, vid_to_data_oid(wvid, idx), buf, len, 0, NULL, !own, 0);
		if (ret == SD_RES_SUCCESS && !own)
			ret = dog_write_obj(fd, vid_to_vdi_oid(wvid), &wvid, sizeof(wvid),
					    sd_inode_vid_offset(idx), NULL, false, 0);
	}
	close(fd);
	free(wmap);
	if (ret != SD_RES_SUCCESS)
		return ret < 0 ? DOG_EXIT_SYSFAIL : dog_fail_result(what, (uint32_t)ret, name);
	if (v->h.snap_ctime) {
		sub.snap = v->h.tag[0] ? v->h.tag : NULL;
		sub.argc = 1;
		sub.argv = argv;
		rc = dog_vdi_snapshot(&sub);
	}
	return rc;
}

/* dog cluster snapshot load TAG|IDX PATH: format the cluster with the saved
 * defaults, then bring every saved VDI back, family by family. */
static int snap_load(struct dog *d, const char *which, const char *dir)
{
	char *p;
	unsigned long want = strtoul(which, &p, 10);
	if (p == which || *p)
		want = 0;
	struct snap_log_ent *log;
	size_t nlog;
	const struct snap_log_ent *e = NULL;
	if (!log_read(dir, &log, &nlog))
		for (size_t i = 0; i < nlog && !e; i++)
			if (want ? log[i].idx == want : !strcmp(log[i].tag, which))
				e = &log[i];
	if (!e) {
		free(log);
		dog_err("Snapshot index or tag does not exist.");
		dog_err("Fail to load snapshot");
		return DOG_EXIT_SYSFAIL;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/snap/%" PRIu32, dir, e->idx);
	free(log);
	struct snap_set set = {0};
	unsigned def[3];
	int rc = DOG_EXIT_SUCCESS;
	if (manifest_read(path, &set, def)) {
		dog_err("cluster snapshot load: %s is damaged", path);
		rc = DOG_EXIT_SYSFAIL;
	}
	struct dog sub = *d;
	if (!rc && (ec_policy_from_wire((uint8_t)def[1], (uint8_t)def[0], &sub.policy) ||
		    def[2] < SD_MIN_BLOCK_SIZE_SHIFT || def[2] > SD_MAX_BLOCK_SIZE_SHIFT)) {
		dog_err("cluster snapshot load: %s has a bad cluster policy", path);
		rc = DOG_EXIT_SYSFAIL;
	}
	if (!rc) {
		sub.have_policy = true;
		sub.block_size_shift = (int)def[2];
		sub.argc = 0;
		sub.argv = NULL;
		rc = dog_cluster_format(&sub);
	}
	char *buf = rc ? NULL : malloc(set_max_obj(&set));
	if (!rc && !buf)
		rc = DOG_EXIT_SYSFAIL;
	if (!rc)
		qsort(set.v, set.n, sizeof(*set.v), by_family);
	for (size_t i = 0; i < set.n && !rc; i++) {
		const struct snap_vdi *prev =
		    i && !strcmp(set.v[i - 1].h.name, set.v[i].h.name) ? &set.v[i - 1] : NULL;
		rc = load_vdi(d, dir, &set.v[i], prev, buf);
	}
	if (!rc && d->verbose)
		printf("snapshot %s loaded: %zu VDIs\n", which, set.n);
	free(buf);
	set_free(&set);
	if (rc)
		dog_err("Fail to load snapshot");
	return rc;
}

int dog_cluster_snapshot(struct dog *d)
{
	const char *sub = d->argv[0];
	if (!strcmp(sub, "list") && d->argc == 2)
		return snap_list(d, d->argv[1]);
	if ((!strcmp(sub, "save") || !strcmp(sub, "load")) && d->argc >= 2) {
		if (d->argc < 3) {
			dog_err("Please specify the path to save snapshot.");
			return DOG_EXIT_USAGE;
		}
		return sub[1] == 'a' ? snap_save(d, d->argv[1], d->argv[2])
				     : snap_load(d, d->argv[1], d->argv[2]);
	}
	dog_err("cluster snapshot: want 'save TAG PATH', 'load TAG|IDX PATH' or 'list PATH'");
	return DOG_EXIT_USAGE;
}
