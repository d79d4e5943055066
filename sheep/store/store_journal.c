/* store_journal.c - replay of the per-stripe intent journals of stores from before the write-ahead log. */
/*
 * Stores written before the log (store_wal.c) had one journal file per
 * lock stripe, DIR/obj/.journal/jNN, holding at most one record at offset
 * 0. They are replayed at open (before the log) and emptied:
 *   [0, 160)               struct store_jrec: magic "SDINTNT", seq, first
 *                          block, block count n, crc32c of the metadata part,
 *                          and the whole new fragment header (new version)
 *   [160, 160 + 4n)        the new stored checksum of each block
 *   [160 + 4n, 160 + 5n)   1 where the block is all zeros (punched on apply)
 *   [D, D + 4096n)         the new content of the n blocks, D = round_up(160 + 5n, 4096)
 * A record is live when its magic is present, its metadata crc matches and
 * every block matches its checksum: a record torn by a crash fails one of
 * these and is ignored (it was never applied, since applying waits for the
 * record to be durable). A live record is the latest write of its fragment
 * (writes of a stripe are serialised and share the file), so applying it
 * again at open is always right, unless the fragment was removed or
 * re-created since (uuid differs): then it is dropped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sheep/store/store_priv.h"

/* Replay the record of one journal file, if live; then empty the file. */
static int replay_one(struct store *st, int jfd, const char *jname)
{
	struct stat sb;
	struct store_jrec rec;
	uint8_t *map = MAP_FAILED, *meta = NULL;
	size_t need = 0;
	int fd = -1, r = 0;
	if (fstat(jfd, &sb))
		return -errno;
	if ((uint64_t)sb.st_size < sizeof(rec))
		goto clear;
	if ((r = store_pread_full(jfd, &rec, sizeof(rec), 0)))
		return r;
	if (memcmp(rec.magic, STORE_JREC_MAGIC, sizeof(rec.magic)))
		goto clear; /* dead or garbage */
	uint32_t n = rec.nr_blocks;
	if (n > STORE_FRAG_MAX / STORE_BLK || store_hdr_check(&rec.hdr) ||
	    (uint64_t)rec.first_block + n >
		    ((uint64_t)rec.hdr.frag_size + STORE_BLK - 1) / STORE_BLK)
		goto torn;
	size_t doff = store_jrec_data_off(n);
	need = doff + (size_t)n * STORE_BLK;
	if ((uint64_t)sb.st_size < need)
		goto torn;
	map = mmap(NULL, need, PROT_READ, MAP_SHARED, jfd, 0);
	meta = malloc(doff);
	if (map == MAP_FAILED || !meta) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(meta, map, doff);
	((struct store_jrec *)meta)->crc = 0;
	if (sd_crc32c(0, meta, doff) != rec.crc)
		goto torn;
	const uint32_t *crcs = (const uint32_t *)(meta + sizeof(rec));
	const uint8_t *zero = meta + sizeof(rec) + (size_t)n * 4;
	const uint8_t *data = map + doff;
	for (uint32_t i = 0; i < n; i++)
		if ((sd_crc32c(0, data + (size_t)i * STORE_BLK, STORE_BLK) ^ st->zero_crc) != crcs[i])
			goto torn;

	char name[32];
	snprintf(name, sizeof(name), "%016" PRIx64 "_%02x", rec.hdr.oid, rec.hdr.idx);
	fd = openat(store_md_dirfd(st, rec.hdr.oid, name), name, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			r = -errno;
			goto out;
		}
		sd_info("intent %s: fragment %s was removed since, dropped", jname, name);
		goto clear;
	}
	struct store_frag_hdr cur;
	if (store_pread_full(fd, &cur, sizeof(cur), 0) == 0 && store_hdr_check(&cur) == 0 &&
	    cur.uuid != rec.hdr.uuid) {
		sd_info("intent %s: fragment %s was re-created since, dropped", jname, name);
		goto clear;
	}
	/* A header that fails its check here was torn by this very record. */
	struct iovec iov = {(void *)data, (size_t)n * STORE_BLK};
	r = store_apply(st, fd, &rec.hdr, rec.first_block, n, crcs, zero, &iov, n ? 1 : 0, false);
	if (r) {
		sd_err("intent %s: cannot apply to %s: %s", jname, name, strerror(-r));
		goto out;
	}
	sd_notice("replayed interrupted write of %s (blocks %u+%u, version %" PRIu64 ")", name,
		  rec.first_block, n, rec.hdr.version);
	goto clear;
torn:
	sd_info("intent %s: incomplete record (write never applied), dropped", jname);
clear:
	if (ftruncate(jfd, 0) || (!st->nosync && fdatasync(jfd)))
		r = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (map != MAP_FAILED)
		munmap(map, need);
	free(meta);
	return r;
}

int store_journal_replay_all(struct store *st)
{
	DIR *d = sd_opendirat(st->jdirfd, ".");
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] != 'j')
			continue;
		int jfd = openat(st->jdirfd, de->d_name, O_RDWR | O_CLOEXEC);
		if (jfd < 0) {
			r = -errno;
			break;
		}
		r = replay_one(st, jfd, de->d_name);
		close(jfd);
	}
	closedir(d);
	return r;
}
