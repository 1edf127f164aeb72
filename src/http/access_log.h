/* Access log sinks. Each sink is an fd (stdout, stderr or a file opened O_APPEND); a line is
 * written with a single write(2) so concurrent workers never interleave lines. */
#ifndef RM_HTTP_ACCESS_LOG_H
#define RM_HTTP_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct {
    int *fds;
    size_t num_fds;
} rm_access_log_t;

/* What one request leaves in the log (Envoy's default format fields). Strings may be NULL ("-"). */
typedef struct {
    uint64_t start_us; /* wall clock */
    const char *method;
    const char *path;
    const char *protocol;
    int status;
    const char *flags; /* "-" or comma-separated Envoy flags */
    uint64_t bytes_received;
    uint64_t bytes_sent;
    uint64_t duration_ms;
    int64_t upstream_service_time_ms; /* -1 when none */
    const char *xff;
    const char *user_agent;
    const char *request_id;
    const char *authority;
    const char *upstream_host;
} rm_access_log_entry_t;

/* Opens the sinks of a config. Returns 0, or -1 with err naming the file that failed. */
int rm_access_log_open(rm_access_log_t *log, const rm_access_log_config_t *cfgs, size_t n, char *err,
                       size_t errlen);
void rm_access_log_close(rm_access_log_t *log);
void rm_access_log_write(const rm_access_log_t *log, const rm_access_log_entry_t *e);
/* Formats the line (with trailing newline) into buf; returns its length (truncated to len-1). */
size_t rm_access_log_format(const rm_access_log_entry_t *e, char *buf, size_t len);

#endif
