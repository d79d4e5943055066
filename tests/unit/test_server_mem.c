/* test_server_mem.c - unit test of the daemon's malloc policy (server/mem.c): what an idle sheep
 * keeps after its trim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sheep/server/server.h"

#define BUF	(4u << 20) /* an object buffer */
#define WORKERS 8
/* kB of anonymous memory the trim may leave: one worker arena's top, which
 * is 4 MiB, or 8 MiB when two workers of that arena held their buffers at
 * once (glibc then keeps a top below its trim threshold, twice the 4 MiB
 * raise; seen on a loaded CI machine: 8392 kB). Three tops (4 arenas) are
 * at least 12 MiB. */
#define KEEP_MAX (10 << 10)

static _Thread_local void *volatile sink; /* per worker: no shared write for TSan to see */

static long rss_anon_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "RssAnon:", 8))
			kb = atol(line + 8);
	if (f)
		fclose(f);
	return kb;
}

/* One 4 MiB buffer written and freed, as a gateway or peer worker does. */
static void use_buffer(void)
{
	char *p = malloc(BUF);
	assert_non_null(p);
	volatile char *v = p; /* every page written (a memset before free is a dead store) */
	for (size_t off = 0; off < BUF; off += 4096)
		v[off] = 0x5a;
	sink = p;
	free(p);
}

static pthread_barrier_t used, trimmed;

/* A worker: its I/O, then it stays alive and idle (sheep's pools do). */
static void *worker(void *arg)
{
	for (int i = 0; i < 4; i++)
		use_buffer();
	pthread_barrier_wait(&used);
	pthread_barrier_wait(&trimmed);
	return arg;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* A sanitizer's allocator replaces glibc's (quarantine, its own arenas):
 * there is no glibc policy to measure, only that the calls are harmless
 * with the same workers running. */
static void test_idle_sheep_keeps_at_most_one_worker_arena_top(void **state)
{
	(void)server_mem_bound();
	pthread_t t[WORKERS];
	pthread_barrier_init(&used, NULL, WORKERS + 1);
	pthread_barrier_init(&trimmed, NULL, WORKERS + 1);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	pthread_barrier_wait(&used);
	server_mem_trim();
	print_message("RssAnon %ld kB after the trim (sanitizer allocator: not checked)\n",
		      rss_anon_kb());
	pthread_barrier_wait(&trimmed);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
}
#else
/* Eight workers (more than the arenas: each new thread takes a new arena
 * while there are fewer than the maximum) end their I/O with a 4 MiB
 * buffer freed onto the top of their arena. The trim gives back the main
 * arena's top and free pages, not another arena's top: with 4 arenas 12
 * MiB stayed (3 tops), with SERVER_MEM_ARENAS = 2 one top, about 4 MiB. */
static void test_idle_sheep_keeps_at_most_one_worker_arena_top(void **state)
{
	assert_int_equal(server_mem_bound(), 0);
	use_buffer(); /* mmapped: raises the mmap and trim thresholds, as in sheep */
	pthread_t t[WORKERS];
	pthread_barrier_init(&used, NULL, WORKERS + 1);
	pthread_barrier_init(&trimmed, NULL, WORKERS + 1);
	for (int i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
	pthread_barrier_wait(&used);
	long before = rss_anon_kb();
	server_mem_trim();
	long after = rss_anon_kb();
	print_message("RssAnon %ld kB after the I/O, %ld kB after the trim\n", before, after);
	pthread_barrier_wait(&trimmed);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	assert_true(before >= (long)(BUF >> 10)); /* the buffers were resident */
	assert_true(after >= 0 && after < KEEP_MAX);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle_sheep_keeps_at_most_one_worker_arena_top),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
