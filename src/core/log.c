#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static _Atomic int current_level = RM_LOG_INFO;

static const char *const level_names[] = {
#define RM_LOG_NAME(e, s) s,
    RM_LOG_LEVELS(RM_LOG_NAME)
#undef RM_LOG_NAME
};

void rm_log_set_level(rm_log_level_t level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

rm_log_level_t rm_log_get_level(void)
{
    return (rm_log_level_t)atomic_load_explicit(&current_level, memory_order_relaxed);
}

int rm_log_level_parse(const char *name, rm_log_level_t *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (rm_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(name, "warn") == 0) {
        *out = RM_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *rm_log_level_name(rm_log_level_t level)
{
    if ((size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
        return "unknown";
    return level_names[level];
}

void rm_log_write(rm_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    /* One fprintf per line so lines from different threads do not interleave. */
    fprintf(stderr, "[%s.%03ld][%s][%s:%d] %s\n", ts, (long)(tv.tv_usec / 1000), rm_log_level_name(level),
            base, line, msg);
}
