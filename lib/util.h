/* util.h - small helpers shared by every module: sizes, time, min/max, directories. */
#ifndef SD_UTIL_H
#define SD_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a)	      (sizeof(a) / sizeof((a)[0]))
#define SD_MIN(a, b)	      ((a) < (b) ? (a) : (b))
#define SD_MAX(a, b)	      ((a) > (b) ? (a) : (b))
#define SD_DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

/* Parse "4096", "10K", "20M", "4G", "1T" (also "KB", "KiB", case-insensitive;
 * binary multiples). Returns 0 or -EINVAL on junk or overflow. */
int sd_parse_size(const char *s, uint64_t *out);

/* Sheepdog 1.0 human size: "0.0 MB", "20 MB", "4.0 GB" (one decimal below 10). */
void sd_format_size(uint64_t bytes, char *buf, size_t len);

/* Monotonic and wall-clock time. */
uint64_t sd_now_ns(void);
/* The CLOCK_REALTIME time wait_ns from now: the deadline of a timed wait
 * on a condition variable with the default clock. */
void sd_realtime_in(uint64_t wait_ns, struct timespec *ts);
uint64_t sd_wall_seconds(void);
/* True at most once per period_ns (the first call included), *last_ns
 * keeping when it last was: for a message repeated by a retry loop. The
 * caller serializes calls on one *last_ns. */
bool sd_once_per(uint64_t *last_ns, uint64_t period_ns);

/* A directory stream over path relative to dirfd ("." for dirfd itself), on
 * a descriptor of its own (close-on-exec), read from the start; release it
 * with closedir(). NULL with errno set on failure, leaking nothing. */
DIR *sd_opendirat(int dirfd, const char *path);

#endif
