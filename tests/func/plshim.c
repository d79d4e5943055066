/* plshim.c - LD_PRELOAD shim for power-loss tests: logs the old bytes of every unsynced write under a directory, so pl_rollback.py can forget them after a "power off". */
/*
 * With PLSHIM_DIR=D and PLSHIM_UNDO=U in the environment, every write to
 * a regular file under D (pwrite, pwritev, write, writev, ftruncate,
 * fallocate) first appends an undo record to U/undo.<pid>: the file's
 * device and inode, the range, the bytes it held there and its size
 * before. fsync/fdatasync of a file appends a SYNC record for it;
 * syncfs/sync a SYNCALL. After every process is killed (the "power
 * off"), pl_rollback.py undoes, newest first, every record of a file
 * after that file's last sync: the files are left as a disk that lost
 * its volatile cache would leave them. Namespace operations (create,
 * rename, unlink, mkdir) are taken as durable at once, which is kinder
 * than a real disk for them; file contents are modelled exactly.
 * One mutex orders all tracked writes of the process with their undo
 * records. Build: cc -shared -fPIC -O2 -Wall -Wextra -Werror -o
 * plshim.so plshim.c -ldl -pthread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PL_MAGIC 0x4c50554eu /* "NUPL" */
enum { PL_WRITE = 1, PL_SYNC = 2, PL_SYNCALL = 3 };

struct pl_rec {
	uint32_t magic, type;
	uint64_t dev, ino;
	uint64_t off, len;  /* PL_WRITE: the range about to change; len old bytes follow.
			     * PL_SYNC*: off = records logged before the sync began:
			     * only those are durable by it */
	uint64_t old_size;  /* PL_WRITE: the file's size before */
} __attribute__((packed));

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int undo_fd = -1;
static char root[PATH_MAX];
static size_t root_len;
static int inited;
static uint64_t nrec; /* records logged so far (under mu) */

static ssize_t (*r_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*r_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*r_write)(int, const void *, size_t);
static ssize_t (*r_writev)(int, const struct iovec *, int);
static int (*r_ftruncate)(int, off_t);
static int (*r_fallocate)(int, int, off_t, off_t);
static int (*r_fsync)(int);
static int (*r_fdatasync)(int);
static int (*r_syncfs)(int);

static void init(void)
{
	if (inited)
		return;
	r_pwrite = dlsym(RTLD_NEXT, "pwrite");
	r_pwritev = dlsym(RTLD_NEXT, "pwritev");
	r_write = dlsym(RTLD_NEXT, "write");
	r_writev = dlsym(RTLD_NEXT, "writev");
	r_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	r_fallocate = dlsym(RTLD_NEXT, "fallocate");
	r_fsync = dlsym(RTLD_NEXT, "fsync");
	r_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	r_syncfs = dlsym(RTLD_NEXT, "syncfs");
	const char *d = getenv("PLSHIM_DIR"), *u = getenv("PLSHIM_UNDO");
	if (d && u && realpath(d, root)) {
		root_len = strlen(root);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/undo.%d", u, (int)getpid());
		int (*r_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
		undo_fd = r_open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	}
	inited = 1;
}

/* Is fd a regular file under the root? Its stat in *sb. */
static int tracked(int fd, struct stat *sb)
{
	if (undo_fd < 0 || fd == undo_fd || fstat(fd, sb) || !S_ISREG(sb->st_mode))
		return 0;
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = 0;
	return (size_t)n > root_len && !strncmp(path, root, root_len) && path[root_len] == '/';
}

static void put(const void *p, size_t len)
{
	const char *c = p;
	while (len) {
		ssize_t w = r_write(undo_fd, c, len);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			abort(); /* a lost undo record would make the test lie */
		}
		c += w;
		len -= (size_t)w;
	}
}

/* Log the old bytes of [off, off+len) of fd (under mu). */
static void log_write(int fd, const struct stat *sb, uint64_t off, uint64_t len)
{
	struct pl_rec r = {.magic = PL_MAGIC, .type = PL_WRITE, .dev = sb->st_dev,
			   .ino = sb->st_ino, .off = off, .old_size = (uint64_t)sb->st_size};
	uint64_t have = off < (uint64_t)sb->st_size ? (uint64_t)sb->st_size - off : 0;
	r.len = len < have ? len : have;
	char *old = malloc(r.len ? r.len : 1);
	if (!old)
		abort();
	uint64_t got = 0;
	while (got < r.len) {
		ssize_t n = pread(fd, old + got, r.len - got, (off_t)(off + got));
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	if (got < r.len)
		memset(old + got, 0, r.len - got);
	put(&r, sizeof(r));
	put(old, r.len);
	nrec++;
	free(old);
}

static uint64_t sync_start(void)
{
	pthread_mutex_lock(&mu);
	uint64_t n = nrec;
	pthread_mutex_unlock(&mu);
	return n;
}

static void log_sync(int type, const struct stat *sb, uint64_t before)
{
	struct pl_rec r = {.magic = PL_MAGIC, .type = (uint32_t)type, .off = before};
	if (sb) {
		r.dev = sb->st_dev;
		r.ino = sb->st_ino;
	}
	put(&r, sizeof(r));
	nrec++;
}

static size_t iov_len(const struct iovec *iov, int n)
{
	size_t t = 0;
	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_pwrite(fd, buf, len, off);
	pthread_mutex_lock(&mu);
	log_write(fd, &sb, (uint64_t)off, len);
	ssize_t r = r_pwrite(fd, buf, len, off);
	pthread_mutex_unlock(&mu);
	return r;
}
ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off) __attribute__((alias("pwrite")));

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_pwritev(fd, iov, n, off);
	pthread_mutex_lock(&mu);
	log_write(fd, &sb, (uint64_t)off, iov_len(iov, n));
	ssize_t r = r_pwritev(fd, iov, n, off);
	pthread_mutex_unlock(&mu);
	return r;
}
ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off) __attribute__((alias("pwritev")));

ssize_t write(int fd, const void *buf, size_t len)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_write(fd, buf, len);
	pthread_mutex_lock(&mu);
	off_t pos = (fcntl(fd, F_GETFL) & O_APPEND) ? sb.st_size : lseek(fd, 0, SEEK_CUR);
	log_write(fd, &sb, (uint64_t)pos, len);
	ssize_t r = r_write(fd, buf, len);
	pthread_mutex_unlock(&mu);
	return r;
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_writev(fd, iov, n);
	pthread_mutex_lock(&mu);
	off_t pos = (fcntl(fd, F_GETFL) & O_APPEND) ? sb.st_size : lseek(fd, 0, SEEK_CUR);
	log_write(fd, &sb, (uint64_t)pos, iov_len(iov, n));
	ssize_t r = r_writev(fd, iov, n);
	pthread_mutex_unlock(&mu);
	return r;
}

int ftruncate(int fd, off_t len)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_ftruncate(fd, len);
	pthread_mutex_lock(&mu);
	/* Shrinking loses [len, size): keep those bytes. */
	uint64_t from = (uint64_t)len, size = (uint64_t)sb.st_size;
	log_write(fd, &sb, from < size ? from : size, from < size ? size - from : 0);
	int r = r_ftruncate(fd, len);
	pthread_mutex_unlock(&mu);
	return r;
}
int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int fallocate(int fd, int mode, off_t off, off_t len)
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return r_fallocate(fd, mode, off, len);
	pthread_mutex_lock(&mu);
	log_write(fd, &sb, (uint64_t)off, (uint64_t)len);
	int r = r_fallocate(fd, mode, off, len);
	pthread_mutex_unlock(&mu);
	return r;
}
int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

static int do_sync(int fd, int (*real)(int))
{
	init();
	struct stat sb;
	if (!tracked(fd, &sb))
		return real(fd);
	/* Logged after the sync returns (a power cut during it keeps the
	 * writes undone, as a disk may), covering only the writes logged
	 * before it began. */
	uint64_t before = sync_start();
	int r = real(fd);
	if (r == 0) {
		pthread_mutex_lock(&mu);
		log_sync(PL_SYNC, &sb, before);
		pthread_mutex_unlock(&mu);
	}
	return r;
}

int fsync(int fd)
{
	return do_sync(fd, r_fsync ? r_fsync : (init(), r_fsync));
}

int fdatasync(int fd)
{
	return do_sync(fd, r_fdatasync ? r_fdatasync : (init(), r_fdatasync));
}

int syncfs(int fd)
{
	init();
	uint64_t before = sync_start();
	int r = r_syncfs(fd);
	if (r == 0 && undo_fd >= 0) {
		pthread_mutex_lock(&mu);
		log_sync(PL_SYNCALL, NULL, before);
		pthread_mutex_unlock(&mu);
	}
	return r;
}
