/* Leveled logging to stderr. The level is process-wide and may be changed at run time (admin
 * /logging); reads and writes of it are atomic. */
#ifndef RM_CORE_LOG_H
#define RM_CORE_LOG_H

#define RM_LOG_LEVELS(X)                                                                                     \
    X(TRACE, "trace")                                                                                        \
    X(DEBUG, "debug")                                                                                        \
    X(INFO, "info")                                                                                          \
    X(WARN, "warning")                                                                                       \
    X(ERROR, "error")                                                                                        \
    X(CRITICAL, "critical")                                                                                  \
    X(OFF, "off")

typedef enum {
#define RM_LOG_ENUM(e, s) RM_LOG_##e,
    RM_LOG_LEVELS(RM_LOG_ENUM)
#undef RM_LOG_ENUM
} rm_log_level_t;

void rm_log_set_level(rm_log_level_t level);
rm_log_level_t rm_log_get_level(void);
/* Parses "info", "debug", ... (also "warn"); returns 0 or -1 if unknown. */
int rm_log_level_parse(const char *name, rm_log_level_t *out);
const char *rm_log_level_name(rm_log_level_t level);

void rm_log_write(rm_log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define rm_log(level, ...)                                                                                   \
    do {                                                                                                     \
        if ((level) >= rm_log_get_level())                                                                   \
            rm_log_write((level), __FILE__, __LINE__, __VA_ARGS__);                                          \
    } while (0)

#define RM_LOG_TRACE(...)    rm_log(RM_LOG_TRACE, __VA_ARGS__)
#define RM_LOG_DEBUG(...)    rm_log(RM_LOG_DEBUG, __VA_ARGS__)
#define RM_LOG_INFO(...)     rm_log(RM_LOG_INFO, __VA_ARGS__)
#define RM_LOG_WARN(...)     rm_log(RM_LOG_WARN, __VA_ARGS__)
#define RM_LOG_ERROR(...)    rm_log(RM_LOG_ERROR, __VA_ARGS__)
#define RM_LOG_CRITICAL(...) rm_log(RM_LOG_CRITICAL, __VA_ARGS__)

#endif
