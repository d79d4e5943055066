/* vdi_backup.c - dog vdi backup / restore: the objects that differ between two snapshots, as a stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dog/dog.h"
#include "lib/net.h"
#include "lib/oid.h"
#include "lib/util.h"

/*
 * Stream format (little-endian), version 1:
 *   header, 64 bytes: magic "SDECBAK1", u32 version (1), u32
 *     block_size_shift, u64 vdi_size, u32 from_snap_id (0: full backup),
 *     u32 to_snap_id, u32 nr_objs, zeros to 64;
 *   records: u32 idx, u32 kind, then for kind 0 (data) the object's bytes
 *     (object size, or what is left of the VDI for the last object);
 *     kind 1 (zero) means the object is unallocated in TO and has no bytes;
 *   end: idx 0xffffffff, kind 0.
 * A record is written for every object whose data_vdi_id entry differs
 * between FROM and TO (every allocated object of TO without -F).
 */
#define BAK_MAGIC "SDECBAK1"
#define BAK_VERSION 1
#define BAK_END 0xffffffffu

struct bak_hdr {
	char magic[8];
	uint32_t version, shift;
	uint64_t vdi_size;
	uint32_t from_snap, to_snap, nr_objs;
	uint8_t __pad[28];
} __attribute__((packed));
_Static_assert(sizeof(struct bak_hdr) == 64, "backup header is 64 bytes");

struct bak_rec {
	uint32_t idx, kind;
} __attribute__((packed));

static int full_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int full_read(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ENODATA : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* vid, header and map of snapshot snap of name (snap NULL: working VDI). */
static int load_vdi(int fd, const char *what, const char *name, const char *snap, uint32_t *vid,
		    struct sd_inode_hdr *h, uint32_t **map, uint32_t *nr)
{
	int ret = dog_vdi_lookup_snap(fd, name, snap, vid);
	if (ret == SD_RES_NO_VDI || ret == SD_RES_NO_TAG) {
		dog_err("%s: VDI %s has no snapshot %s: see dog vdi list %s", what, name,
			snap ? snap : "", name);
		return DOG_EXIT_MISSING;
	}
	if (ret == SD_RES_SUCCESS)
		ret = dog_read_obj(fd, vid_to_vdi_oid(*vid), h, sizeof(*h), 0);
	if (ret == SD_RES_SUCCESS) {
		*nr = sd_inode_nr_objs(h);
		*map = calloc(*nr ? *nr : 1, sizeof(uint32_t));
		if (!*map)
			return DOG_EXIT_SYSFAIL;
		ret = *nr ? dog_read_obj(fd, vid_to_vdi_oid(*vid), *map, *nr * 4, sd_inode_vid_offset(0))
			  : SD_RES_SUCCESS;
	}
	if (ret < 0) {
		dog_err("%s: lost the connection to sheep: %s", what, strerror(-ret));
		return DOG_EXIT_SYSFAIL;
	}
	if (ret != SD_RES_SUCCESS)
		return dog_fail_result(what, (uint32_t)ret, name);
	return 0;
}

int dog_vdi_backup(struct dog *d)
{
	const char *name = d->argv[0], *what = "vdi backup";
	if (!d->snap) {
		dog_err("%s: give the snapshot to back up with -s ID|TAG (and -F ID|TAG for the "
			"changes since an older one)", what);
		return DOG_EXIT_USAGE;
	}
	if (isatty(STDOUT_FILENO)) {
		dog_err("%s: standard output is a terminal: redirect it to a file", what);
		return DOG_EXIT_USAGE;
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct sd_inode_hdr th, fh;
	uint32_t tvid, fvid, *tmap = NULL, *fmap = NULL, tnr = 0, fnr = 0;
	char *buf = NULL;
	int rc = load_vdi(fd, what, name, d->snap, &tvid, &th, &tmap, &tnr);
	if (!rc && d->from_snap)
		rc = load_vdi(fd, what, name, d->from_snap, &fvid, &fh, &fmap, &fnr);
	if (rc)
		goto out;
	uint8_t shift = th.block_size_shift ? th.block_size_shift : SD_DEFAULT_BLOCK_SIZE_SHIFT;
	uint64_t osz = 1ull << shift;
	buf = malloc(osz);
	if (!buf) {
		rc = DOG_EXIT_SYSFAIL;
		goto out;
	}
	struct bak_hdr h = {.version = BAK_VERSION, .shift = shift, .vdi_size = th.vdi_size,
			    .from_snap = d->from_snap ? fh.snap_id : 0, .to_snap = th.snap_id,
			    .nr_objs = tnr};
	memcpy(h.magic, BAK_MAGIC, 8);
	int ret = full_write(STDOUT_FILENO, &h, sizeof(h));
	for (uint32_t idx = 0; idx < tnr && !ret && !rc; idx++) {
		uint32_t from = fmap && idx < fnr ? fmap[idx] : 0;
		if (tmap[idx] == from)
			continue;
		uint32_t len = (uint32_t)SD_MIN(osz, th.vdi_size - (uint64_t)idx * osz);
		struct bak_rec r = {idx, tmap[idx] ? 0u : 1u};
		if (tmap[idx]) {
			int res = dog_read_obj(fd, vid_to_data_oid(tmap[idx], idx), buf, len, 0);
			if (res == SD_RES_NO_OBJ) {
				memset(buf, 0, len);
				res = SD_RES_SUCCESS;
			}
			if (res != SD_RES_SUCCESS) {
				rc = res < 0 ? DOG_EXIT_SYSFAIL
					     : dog_fail_result(what, (uint32_t)res, name);
				break;
			}
		}
		ret = full_write(STDOUT_FILENO, &r, sizeof(r));
		if (!ret && tmap[idx])
			ret = full_write(STDOUT_FILENO, buf, len);
	}
	if (!ret && !rc) {
		struct bak_rec end = {BAK_END, 0};
		ret = full_write(STDOUT_FILENO, &end, sizeof(end));
	}
	if (ret && !rc) {
		dog_err("%s: cannot write the backup: %s", what, strerror(-ret));
		rc = DOG_EXIT_SYSFAIL;
	}
out:
	free(buf);
	free(tmap);
	free(fmap);
	close(fd);
	return rc;
}

int dog_vdi_restore(struct dog *d)
{
	const char *name = d->argv[0], *what = "vdi restore";
	if (!d->snap) {
		dog_err("%s: give the snapshot the backup starts from with -s ID|TAG", what);
		return DOG_EXIT_USAGE;
	}
	struct bak_hdr h;
	int ret = full_read(STDIN_FILENO, &h, sizeof(h));
	if (ret || memcmp(h.magic, BAK_MAGIC, 8) || h.version != BAK_VERSION ||
	    h.shift < SD_MIN_BLOCK_SIZE_SHIFT || h.shift > SD_MAX_BLOCK_SIZE_SHIFT) {
		dog_err("%s: standard input is not a dog vdi backup stream", what);
		return DOG_EXIT_FAILURE;
	}
	int fd = dog_connect(d);
	if (fd < 0)
		return dog_exit_of_errno(fd);
	struct sd_inode_hdr sh, wh;
	uint32_t svid, wvid, *smap = NULL, *wmap = NULL, snr = 0, wnr = 0;
	char *buf = NULL;
	int rc = load_vdi(fd, what, name, d->snap, &svid, &sh, &smap, &snr);
	if (rc)
		goto out;
	if (sh.vdi_size != h.vdi_size || (sh.block_size_shift ? sh.block_size_shift : 22) != h.shift) {
		dog_err("%s: the backup is of a %llu-byte VDI with 2^%u-byte objects; snapshot %s of "
			"%s differs", what, (unsigned long long)h.vdi_size, h.shift, d->snap, name);
		rc = DOG_EXIT_FAILURE;
		goto out;
	}
	/* The working VDI becomes the snapshot the backup starts from. */
	struct dog rb = *d;
	rc = dog_vdi_rollback(&rb);
	if (rc)
		goto out;
	rc = load_vdi(fd, what, name, NULL, &wvid, &wh, &wmap, &wnr);
	if (rc)
		goto out;
	uint64_t osz = 1ull << h.shift;
	buf = malloc(osz);
	if (!buf) {
		rc = DOG_EXIT_SYSFAIL;
		goto out;
	}
	uint64_t objs = 0;
	for (;;) {
		struct bak_rec r;
		if ((ret = full_read(STDIN_FILENO, &r, sizeof(r))))
			break;
		if (r.idx == BAK_END)
			break;
		if (r.idx >= wnr || r.kind > 1) {
			ret = -EINVAL;
			break;
		}
		uint32_t len = (uint32_t)SD_MIN(osz, h.vdi_size - (uint64_t)r.idx * osz);
		int res;
		if (r.kind == 1) {
			/* Unlink the entry; DISCARD_OBJ removes only an object
			 * of the working VDI's own, never an ancestor's. */
			struct sd_req req;
			struct sd_rsp rsp;
			dog_req_init(&req, SD_OP_DISCARD_OBJ);
			req.obj.oid = vid_to_data_oid(wvid, r.idx);
			res = sd_exec(fd, &req, NULL, &rsp, NULL, 0);
			if (res == 0)
				res = sd_res_int(rsp.result);
		} else {
			if ((ret = full_read(STDIN_FILENO, buf, len)))
				break;
			bool own = wmap[r.idx] == wvid;
			res = dog_write_obj(fd, vid_to_data_oid(wvid, r.idx), buf, len, 0, NULL, !own, 0);
			if (res == SD_RES_SUCCESS && !own)
				res = dog_write_obj(fd, vid_to_vdi_oid(wvid), &wvid, sizeof(wvid),
						    sd_inode_vid_offset(r.idx), NULL, false, 0);
		}
		if (res != SD_RES_SUCCESS) {
			rc = res < 0 ? DOG_EXIT_SYSFAIL : dog_fail_result(what, (uint32_t)res, name);
			goto out;
		}
		objs++;
	}
	if (ret) {
		dog_err("%s: the backup stream is %s after %llu objects: %s holds part of it", what,
			ret == -ENODATA ? "truncated" : "corrupt", (unsigned long long)objs, name);
		rc = DOG_EXIT_FAILURE;
	} else if (d->verbose) {
		printf("VDI %s: %llu objects restored on top of snapshot %s\n", name,
		       (unsigned long long)objs, d->snap);
	}
out:
	free(buf);
	free(smap);
	free(wmap);
	close(fd);
	return rc;
}
