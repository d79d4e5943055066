/* mem.c - the daemon's malloc policy: how many arenas, and the periodic trim that gives an idle
 * sheep's buffers back. */
#include <malloc.h>

#include "sheep/server/server.h"

/*
 * glibc gives each of up to 8 x cores threads an arena and raises its mmap
 * threshold (up to 32 MiB) after the first large free, so the 1-4 MiB
 * fragment and object buffers of the gateway, peer and recovery threads
 * come from the arenas and stay resident there after use: 33 MiB per idle
 * sheep after 32 MiB written to 8 sheep, 94-121 MiB after 256 MiB to 6.
 *
 * malloc_trim() gives back the free pages inside every arena and the top
 * of the main arena, but not the top of another arena: that shrinks only
 * on a free in that arena once the top passes the trim threshold, which
 * the same raise sets to twice the mmap threshold (8 MiB after a 4 MiB
 * buffer). So an idle sheep keeps up to 8 MiB per extra arena: with four
 * arenas 24 MiB plus its base, and 085's 30 MiB target was missed (32 MiB)
 * whenever three worker arenas ended their last I/O with a buffer on top.
 * Two arenas bound that to one top; unit/test_server_mem measures it
 * (3 extra arenas kept 12 MiB after the trim, 1 keeps 4). A fixed 256 KiB
 * mmap threshold bounded it too, but cost 2x on writes and 5x on reads (a
 * page fault per page of every buffer).
 */
int server_mem_bound(void)
{
	return mallopt(M_ARENA_MAX, SERVER_MEM_ARENAS) == 1 ? 0 : -1;
}

void server_mem_trim(void)
{
	malloc_trim(0);
}
