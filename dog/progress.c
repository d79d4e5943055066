/* progress.c - a one-line progress bar on stderr for long vdi reads and writes (terminals only). */
#include <stdio.h>

#include "dog/dog.h"
#include "lib/util.h"

#define PROGRESS_BAR_WIDTH 40
#define PROGRESS_PERIOD_NS 100000000ull /* redraw at most 10 times a second */

static void draw(struct dog_progress *p)
{
	uint64_t pct = p->total ? p->done * 100 / p->total : 100;
	int fill = (int)(pct * PROGRESS_BAR_WIDTH / 100);
	double secs = (double)(sd_now_ns() - p->start_ns) / 1e9;
	double mbs = secs > 0 ? (double)p->done / (1 << 20) / secs : 0;
	char bar[PROGRESS_BAR_WIDTH + 1];
	for (int i = 0; i < PROGRESS_BAR_WIDTH; i++)
		bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
	bar[PROGRESS_BAR_WIDTH] = '\0';
	fprintf(stderr, "\r%s %3u%% [%s] %.1f MB/s", p->what, (unsigned)pct, bar, mbs);
	fflush(stderr);
}

void dog_progress_start(struct dog_progress *p, bool on, const char *what, uint64_t total)
{
	p->on = on;
	p->total = total;
	p->done = 0;
	p->what = what;
	p->start_ns = p->last_ns = sd_now_ns();
}

void dog_progress_add(struct dog_progress *p, uint64_t bytes)
{
	p->done += bytes;
	if (!p->on)
		return;
	uint64_t now = sd_now_ns();
	if (now - p->last_ns < PROGRESS_PERIOD_NS)
		return;
	p->last_ns = now;
	draw(p);
}

void dog_progress_end(struct dog_progress *p)
{
	if (!p->on)
		return;
	draw(p);
	fputc('\n', stderr);
}
