/* slowsync.c - LD_PRELOAD shim for benchmarks: every fsync/fdatasync/syncfs takes SLOWSYNC_US
 * microseconds longer, as on a disk whose cache flush is that slow. */
/*
 * The disk of the machine the benchmarks run on may flush its cache in
 * 0.15 ms; a SATA SSD takes about 1-5 ms, a disk 5-15 ms. How often the
 * sheep sync, and what it costs them, depends on that time: with the
 * shim (bench/nbd_bench.sh --sync-delay US) the group commit can be
 * measured as it behaves on such a disk. The call does the real sync
 * first, then sleeps: the data is as durable as without the shim, and the
 * sleeping thread uses no CPU, as a thread waiting for a device would not.
 * Build: cc -shared -fPIC -O2 -Wall -Wextra -Werror -o slowsync.so
 * slowsync.c -ldl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_us = -1;

static void slow(void)
{
	if (delay_us < 0) {
		const char *e = getenv("SLOWSYNC_US");
		delay_us = e ? strtol(e, NULL, 10) : 0;
		if (delay_us < 0)
			delay_us = 0;
	}
	struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
	int saved = errno;
	while (delay_us && nanosleep(&ts, &ts) && errno == EINTR)
		;
	errno = saved;
}

/* The real call (looked up once into *real), then the delay. */
static int slow_sync(int (**real)(int), const char *name, int fd)
{
	if (!*real)
		*real = (int (*)(int))dlsym(RTLD_NEXT, name);
	int r = (*real)(fd);
	slow();
	return r;
}

int fsync(int fd)
{
	static int (*real)(int);
	return slow_sync(&real, "fsync", fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	return slow_sync(&real, "fdatasync", fd);
}

int syncfs(int fd)
{
	static int (*real)(int);
	return slow_sync(&real, "syncfs", fd);
}
