/*
 * log.h - leveled logging to stderr, text or JSON lines.
 *
 * Every line carries the request id of the calling thread's current request
 * (set by the worker around each handler), so one request's lines can be
 * found together.  The level is checked before any formatting is done.
 * Never pass tokens, keys or passwords to these functions.
 */
#ifndef NC_LOG_H
#define NC_LOG_H

#include "core/common.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

/* Configure from strings (NULL keeps the current value). -1 if unknown. */
int log_configure(const char *level, const char *format);
/* Request id shown on this thread's lines ("" or NULL clears it). */
void log_set_request_id(const char *rid);
const char *log_request_id(void);

void log_write(enum log_level lvl, const char *fmt, ...) NC_PRINTF(2, 3);
/* A structured access line: route, status, duration. */
void log_access(const char *method, const char *route, const char *path,
		int status, double ms, const char *client);

#define log_debug(...) do { if (log_min_level <= LOG_DEBUG) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_min_level <= LOG_INFO)  log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_min_level <= LOG_WARN)  log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

/* Log and abort: for impossible states only, never for bad input. */
NC_NORETURN void fatal(const char *fmt, ...) NC_PRINTF(1, 2);

#endif
