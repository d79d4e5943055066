/* fuzz_store.c - fuzz target: the store's files as a crash or a bad disk may leave them (a fragment
 * file, a write-ahead log file), opened, replayed and read. */
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crc.h"
#include "lib/log.h"
#include "sheep/store/store.h"
#include "sheep/store/store_priv.h"
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

static void make_template(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* FUZZ_LOG set: the store's log on stderr, to check what a seed reaches */
	sd_log_open(NULL, getenv("FUZZ_LOG") ? SD_LOG_DEBUG : SD_LOG_EMERG, "fuzz_store");
	if (!mkdtemp(dir))
		abort();
	atexit(rm_dir);
	make_template();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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

/* The files of a store holding fragment (OID, 0), made once: kinds 1, 3
 * and 4 start from a copy of them (opening and closing a store to make it
 * per input cost a thread and the log's set-up, half the time of an input). */
#define TEMPLATE_MAX 8
static struct {
	char name[64];
	uint8_t *data;
	size_t len;
} tmpl[TEMPLATE_MAX];
static int nr_tmpl;
static uint64_t tmpl_uuid;

static void keep_file(const char *name)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f || nr_tmpl == TEMPLATE_MAX)
		abort();
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	tmpl[nr_tmpl].data = malloc(n ? (size_t)n : 1);
	if (n < 0 || !tmpl[nr_tmpl].data || fread(tmpl[nr_tmpl].data, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	snprintf(tmpl[nr_tmpl].name, sizeof(tmpl[nr_tmpl].name), "%s", name);
	tmpl[nr_tmpl++].len = (size_t)n;
}

static void make_template(void)
{
	struct store *st;
	struct store_config cfg = {.dir = dir, .nosync = true, .wal_size = 1};
	if (store_open_config(&cfg, &st))
		abort();
	struct store_meta m = {
	    .oid = OID, .idx = 0, .nr_copies = 1, .frag_size = 65536, .version = 1};
	char buf[8192];
	memset(buf, 0x5a, sizeof(buf));
	if (store_create(st, &m, buf, 0, sizeof(buf)))
		abort();
	store_close(st);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_type == DT_REG)
			keep_file(de->d_name);
	if (d)
		closedir(d);
	keep_file("obj/0000000100000001_00");
	struct store_frag_hdr h;
	memcpy(&h, tmpl[nr_tmpl - 1].data, sizeof(h));
	tmpl_uuid = h.uuid;
}

/* The template store put back in the (emptied) directory; its uuid. */
static uint64_t make_fragment(void)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/obj", dir);
	if (mkdir(p, 0755))
		abort();
	for (int i = 0; i < nr_tmpl; i++)
		put(tmpl[i].name, tmpl[i].data, tmpl[i].len);
	return tmpl_uuid;
}

/*
 * With the selector's top bit, the harness makes the checksums right
 * before writing the file (so mutations get past the crc gates to the
 * logic behind them): the fragment header's crc; in an intent record also
 * the uuid (that of the fragment present), each block's checksum and the
 * record's crc.
 */
static void fixup(uint8_t kind, uint8_t *b, size_t size, uint64_t uuid)
{
	static uint32_t zero_crc;
	static const uint8_t zero[STORE_BLK];
	if (!zero_crc)
		zero_crc = sd_crc32c(0, zero, STORE_BLK);
	if (kind != 3) {
		if (size >= sizeof(struct store_frag_hdr)) {
			struct store_frag_hdr *h = (struct store_frag_hdr *)(void *)b;
			h->crc = store_hdr_crc(h);
		}
		return;
	}
	if (size < sizeof(struct store_jrec))
		return;
	struct store_jrec *r = (struct store_jrec *)(void *)b;
	r->hdr.uuid = uuid;
	r->hdr.crc = store_hdr_crc(&r->hdr);
	uint32_t n = r->nr_blocks;
	if (n > STORE_FRAG_MAX / STORE_BLK)
		return;
	size_t doff = store_jrec_data_off(n);
	if (size < doff + (size_t)n * STORE_BLK)
		return;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t c = sd_crc32c(0, b + doff + (size_t)i * STORE_BLK, STORE_BLK) ^ zero_crc;
		memcpy(b + sizeof(*r) + (size_t)i * 4, &c, 4);
	}
	r->crc = 0;
	r->crc = sd_crc32c(0, b, doff);
}

/*
 * Input: a selector byte (low bits the kind, top bit: fix the checksums,
 * see fixup()), then the file's bytes.
 *  0: fragment (OID, 0)'s file;
 *  1: a store with that fragment written, then the log file wal.0 replaced;
 *  2: the log file wal.1 of an empty store;
 *  3: a store with that fragment, and an intent journal obj/.journal/j00
 *     of a store from before the log (replayed at open);
 *  4: a store with that fragment, and a pending file obj/.pend/ of a
 *     store from before the log (loaded at open).
 * The store is opened (journals and the log replayed), the fragment
 * stat'ed, read and verified, and the store closed. Every input starts
 * from an empty directory.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	uint8_t kind = (data[0] & 0x7f) % 5;
	bool fix = data[0] & 0x80;
	data++, size--;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	struct store *st;
	struct store_config cfg = {.dir = dir, .nosync = true, .wal_size = 1};
	uint64_t uuid = 0;
	if (kind == 1 || kind == 3 || kind == 4)
		uuid = make_fragment();
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		abort();
	memcpy(b, data, size);
	if (fix)
		fixup(kind, b, size, uuid);
	char p[4200];
	if (kind == 0) {
		snprintf(p, sizeof(p), "%s/obj", dir);
		if (mkdir(p, 0755))
			abort();
		put("obj/0000000100000001_00", b, size);
	} else if (kind == 1) {
		put("wal.0", b, size);
	} else if (kind == 2) {
		put("wal.1", b, size);
	} else {
		snprintf(p, sizeof(p), "%s/obj/%s", dir, kind == 3 ? ".journal" : ".pend");
		if (mkdir(p, 0755))
			abort();
		put(kind == 3 ? "obj/.journal/j00" : "obj/.pend/0000000100000001_00", b, size);
	}
	free(b);
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
	struct store_pending pend;
	store_pending(st, OID, 0, &pend);
	store_close(st);
	return 0;
}
