// SPDX-License-Identifier: Apache-2.0
/* common/log.c: the process-wide logger (Firecracker's levels and options). */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file; /* NULL means stderr */
static enum log_level log_level = LOG_WARN;
static bool log_show_level;
static bool log_show_origin;
static char log_module[32];
static char log_id[65] = "anonymous-instance";

static const char *const level_names[] = {
        [LOG_OFF] = "Off",   [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
        [LOG_INFO] = "Info", [LOG_DEBUG] = "Debug", [LOG_TRACE] = "Trace",
};

void log_configure(enum log_level level, bool show_level, bool show_origin, const char *module)
{
	pthread_mutex_lock(&log_lock);
	log_level = level;
	log_show_level = show_level;
	log_show_origin = show_origin;
	snprintf(log_module, sizeof(log_module), "%s", module ? module : "");
	pthread_mutex_unlock(&log_lock);
}

void log_set_file(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	pthread_mutex_unlock(&log_lock);
}

int log_fileno(void)
{
	FILE *f = __atomic_load_n(&log_file, __ATOMIC_ACQUIRE);
	return f ? fileno(f) : STDERR_FILENO;
}

const char *log_instance_id(void)
{
	return log_id;
}

void log_set_instance_id(const char *id)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_id, sizeof(log_id), "%s", id);
	pthread_mutex_unlock(&log_lock);
}

enum log_level log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "Warn") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_msg(enum log_level level, const char *module, const char *file, int line, const char *fmt,
             ...)
{
	if (level == LOG_OFF || level > log_get_level())
		return;

	char body[1024], head[256], ts[48];
	struct timespec t;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	pthread_mutex_lock(&log_lock);
	if (log_module[0] && strcmp(log_module, module) != 0) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	int n = snprintf(head, sizeof(head), "%s.%09ld [%s:%s]", ts, t.tv_nsec, log_id, module);
	if (log_show_level && n > 0 && (size_t)n < sizeof(head))
		n += snprintf(head + n, sizeof(head) - n, ":%s", level_names[level]);
	if (log_show_origin && n > 0 && (size_t)n < sizeof(head)) {
		const char *base = strrchr(file, '/');
		snprintf(head + n, sizeof(head) - n, ":%s:%d", base ? base + 1 : file, line);
	}
	FILE *out = log_file ? log_file : stderr;
	fprintf(out, "%s %s\n", head, body);
	fflush(out);
	pthread_mutex_unlock(&log_lock);
}
