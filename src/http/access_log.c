#include "http/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"

int rm_access_log_open(rm_access_log_t *log, const rm_access_log_config_t *cfgs, size_t n, char *err,
                       size_t errlen)
{
    log->fds = rm_calloc(n ? n : 1, sizeof(int));
    log->num_fds = 0;
    for (size_t i = 0; i < n; i++) {
        int fd;
        switch (cfgs[i].kind) {
        case RM_ACCESS_LOG_STDOUT:
            fd = dup(STDOUT_FILENO);
            break;
        case RM_ACCESS_LOG_STDERR:
            fd = dup(STDERR_FILENO);
            break;
        default:
            fd = open(cfgs[i].path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) {
                snprintf(err, errlen, "access log %s: %s", cfgs[i].path, strerror(errno));
                rm_access_log_close(log);
                return -1;
            }
        }
        log->fds[log->num_fds++] = fd;
    }
    return 0;
}

void rm_access_log_close(rm_access_log_t *log)
{
    for (size_t i = 0; i < log->num_fds; i++)
        close(log->fds[i]);
    free(log->fds);
    log->fds = NULL;
    log->num_fds = 0;
}

static const char *or_dash(const char *s)
{
    return (s != NULL && s[0] != '\0') ? s : "-";
}

size_t rm_access_log_format(const rm_access_log_entry_t *e, char *buf, size_t len)
{
    time_t secs = (time_t)(e->start_us / 1000000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03uZ", (unsigned)((e->start_us / 1000u) % 1000u));
    char svc[24] = "-";
    if (e->upstream_service_time_ms >= 0)
        snprintf(svc, sizeof(svc), "%lld", (long long)e->upstream_service_time_ms);
    int n =
        snprintf(buf, len, "[%s] \"%s %s %s\" %d %s %llu %llu %llu %s \"%s\" \"%s\" \"%s\" \"%s\" \"%s\"\n",
                 ts, or_dash(e->method), or_dash(e->path), or_dash(e->protocol), e->status, or_dash(e->flags),
                 (unsigned long long)e->bytes_received, (unsigned long long)e->bytes_sent,
                 (unsigned long long)e->duration_ms, svc, or_dash(e->xff), or_dash(e->user_agent),
                 or_dash(e->request_id), or_dash(e->authority), or_dash(e->upstream_host));
    if (n < 0)
        return 0;
    if ((size_t)n >= len) {
        buf[len - 2] = '\n';
        return len - 1;
    }
    return (size_t)n;
}

void rm_access_log_write(const rm_access_log_t *log, const rm_access_log_entry_t *e)
{
    if (log == NULL || log->num_fds == 0)
        return;
    char line[4096];
    size_t n = rm_access_log_format(e, line, sizeof(line));
    for (size_t i = 0; i < log->num_fds; i++) {
        ssize_t w = write(log->fds[i], line, n);
        (void)w; /* a full disk must not take the proxy down; nothing better to do here */
    }
}
