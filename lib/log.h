/* log.h - leveled, thread-safe logging to a file or stderr. */
#ifndef SD_LOG_H
#define SD_LOG_H

#include <stdarg.h>

enum sd_log_level {
	SD_LOG_EMERG = 0,
	SD_LOG_ALERT,
	SD_LOG_CRIT,
	SD_LOG_ERR,
	SD_LOG_WARNING,
	SD_LOG_NOTICE,
	SD_LOG_INFO,
	SD_LOG_DEBUG,
};

/* Send log lines to path (appended), or to stderr when path is NULL.
 * Returns 0 or -errno. Lines below level are dropped. */
int sd_log_open(const char *path, enum sd_log_level level, const char *ident);
void sd_log_close(void);
void sd_log_set_level(enum sd_log_level level);
enum sd_log_level sd_log_get_level(void);
/* "debug", "info", ... or "7", "6", ...; returns -1 when unknown. */
int sd_log_level_parse(const char *s);
const char *sd_log_level_name(enum sd_log_level level);

void sd_log_write(enum sd_log_level level, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define sd_emerg(fmt, ...)  sd_log_write(SD_LOG_EMERG, __func__, __LINE__, fmt, ##__VA_ARGS__)
#define sd_err(fmt, ...)    sd_log_write(SD_LOG_ERR, __func__, __LINE__, fmt, ##__VA_ARGS__)
#define sd_warn(fmt, ...)   sd_log_write(SD_LOG_WARNING, __func__, __LINE__, fmt, ##__VA_ARGS__)
#define sd_notice(fmt, ...) sd_log_write(SD_LOG_NOTICE, __func__, __LINE__, fmt, ##__VA_ARGS__)
#define sd_info(fmt, ...)   sd_log_write(SD_LOG_INFO, __func__, __LINE__, fmt, ##__VA_ARGS__)
#define sd_debug(fmt, ...)                                                                         \
	do {                                                                                       \
		if (sd_log_get_level() >= SD_LOG_DEBUG)                                            \
			sd_log_write(SD_LOG_DEBUG, __func__, __LINE__, fmt, ##__VA_ARGS__);        \
	} while (0)

#endif
