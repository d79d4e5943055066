/* fuzz_store.c - fuzz target: the store's files as a crash or a bad disk may leave them (a fragment
 * file, a write-ahead log file), opened, replayed and read. */
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "sheep/store/store.h"
#include "tests/fuzz/fuzz.h"

#define OID 0x0000000100000001ull

static char dir[] = "/dev/shm/sd-fuzz-store-XXXXXX";
static bool ready;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return ftw->level ? remove(path) : 0;
}

static void rm_dir(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sd_log_open(NULL, SD_LOG_EMERG, "fuzz_store");
	if (!mkdtemp(dir))
		abort();
	atexit(rm_dir);
	ready = true;
	return 0;
}

static void put(const char *name, const uint8_t *data, size_t size)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd))
		abort();
}

/*
 * Input: a selector byte, then the file's bytes.
 *  0: fragment (OID, 0)'s file;
 *  1: a store with that fragment written, then the log file wal.0 replaced;
 *  2: the log file wal.1 of an empty store.
 * The store is opened (the log replayed), the fragment stat'ed, read and
 * verified, and the store closed. Every input starts from an empty
 * directory.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	uint8_t sel = data[0] % 3;
	data++, size--;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	struct store *st;
	struct store_config cfg = {.dir = dir, .nosync = true, .wal_size = 1};
	if (sel == 0) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/obj", dir);
		if (mkdir(p, 0755))
			abort();
		put("obj/0000000100000001_00", data, size);
	} else if (sel == 1) {
		if (store_open_config(&cfg, &st))
			abort();
		struct store_meta m = {
		    .oid = OID, .idx = 0, .nr_copies = 1, .frag_size = 65536, .version = 1};
		char buf[8192];
		memset(buf, 0x5a, sizeof(buf));
		store_create(st, &m, buf, 0, sizeof(buf));
		store_close(st);
		put("wal.0", data, size);
	} else {
		put("wal.1", data, size);
	}
	if (store_open_config(&cfg, &st))
		return 0;
	struct store_meta m;
	if (store_stat(st, OID, 0, &m) == 0) {
		static char buf[1u << 20];
		uint64_t version;
		uint32_t len = m.frag_size < sizeof(buf) ? m.frag_size : sizeof(buf);
		store_read(st, OID, 0, buf, 0, len, &version);
		store_verify(st, OID, 0);
	}
	store_close(st);
	return 0;
}
