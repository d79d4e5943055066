/* log.c - the logger behind log.h: one line per call, timestamped, under a mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/* The logger is process-wide by nature (like stderr); it is the one piece of
 * mutable state lib/ keeps. */
static struct {
	pthread_mutex_t lock;
	FILE *fp;
	enum sd_log_level level;
	char ident[32];
} logger = {PTHREAD_MUTEX_INITIALIZER, NULL, SD_LOG_INFO, "sd"};

static const char *const level_names[] = {"emerg",   "alert",  "crit", "err",
					  "warning", "notice", "info", "debug"};

int sd_log_open(const char *path, enum sd_log_level level, const char *ident)
{
	FILE *fp = NULL;
	if (path) {
		fp = fopen(path, "ae");
		if (!fp)
			return -errno;
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&logger.lock);
	if (logger.fp)
		fclose(logger.fp);
	logger.fp = fp;
	logger.level = level;
	if (ident)
		snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
	pthread_mutex_unlock(&logger.lock);
	return 0;
}

void sd_log_close(void)
{
	pthread_mutex_lock(&logger.lock);
	if (logger.fp)
		fclose(logger.fp);
	logger.fp = NULL;
	pthread_mutex_unlock(&logger.lock);
}

void sd_log_set_level(enum sd_log_level level)
{
	__atomic_store_n(&logger.level, level, __ATOMIC_RELAXED);
}

enum sd_log_level sd_log_get_level(void)
{
	return __atomic_load_n(&logger.level, __ATOMIC_RELAXED);
}

int sd_log_level_parse(const char *s)
{
	for (int i = 0; i <= SD_LOG_DEBUG; i++)
		if (!strcasecmp(s, level_names[i]))
			return i;
	if (!strcasecmp(s, "error"))
		return SD_LOG_ERR;
	if (!strcasecmp(s, "warn"))
		return SD_LOG_WARNING;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	return -1;
}

const char *sd_log_level_name(enum sd_log_level level)
{
	if ((int)level < 0 || level > SD_LOG_DEBUG)
		return "?";
	return level_names[level];
}

void sd_log_write(enum sd_log_level level, const char *func, int line, const char *fmt, ...)
{
	if (level > sd_log_get_level())
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	char ts[32];
	strftime(ts, sizeof(ts), "%b %d %H:%M:%S", &tm);

	int saved = errno;
	pthread_mutex_lock(&logger.lock);
	FILE *fp = logger.fp ? logger.fp : stderr;
	fprintf(fp, "%s.%06ld %s[%d] %s %s(%d) %s\n", ts, (long)tv.tv_usec, logger.ident,
		(int)getpid(), level_names[level], func, line, msg);
	pthread_mutex_unlock(&logger.lock);
	errno = saved;
}
