/* Integration-test harness; see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_PROCS        64
#define MAX_REMORAS      16
#define POLL_INTERVAL_MS 10
#define PATTERN_PERIOD   26
#define PATTERN_WINDOW   (64 * 1024)

static harness_proc_t *g_procs[MAX_PROCS];
static size_t g_num_procs;
static harness_remora_t *g_remoras[MAX_REMORAS];
#define MAX_CPS 16
static harness_cp_t *g_cps[MAX_CPS];
static size_t g_num_cps;
static unsigned g_cp_serial;
static size_t g_num_remoras;
static unsigned g_remora_serial;
static char g_tmpdir[256];
static bool g_atexit_installed;
static char g_pattern[PATTERN_WINDOW + PATTERN_PERIOD];

/* ---- misc ---- */

int64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A short pause between two checks of a polled condition (never a synchronisation by itself). */
static void nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

char *harness_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

size_t harness_count(const char *haystack, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    if (haystack == NULL || nl == 0)
        return 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + nl, needle))
        n++;
    return n;
}

static void pattern_init(void)
{
    if (g_pattern[0] == 'a')
        return;
    for (size_t i = 0; i < sizeof(g_pattern); i++)
        g_pattern[i] = (char)('a' + i % PATTERN_PERIOD);
}

/* ---- files ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void at_exit_cleanup(void)
{
    harness_kill_all();
    if (g_tmpdir[0] != '\0') {
        const char *keep = getenv("REMORA_KEEP_TMP");
        if (keep != NULL && strcmp(keep, "1") == 0)
            fprintf(stderr, "harness: keeping %s\n", g_tmpdir);
        else
            nftw(g_tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void install_atexit(void)
{
    if (!g_atexit_installed) {
        g_atexit_installed = true;
        atexit(at_exit_cleanup);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        pattern_init();
    }
}

const char *harness_tmpdir(void)
{
    if (g_tmpdir[0] == '\0') {
        install_atexit();
        const char *base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = "/tmp";
        snprintf(g_tmpdir, sizeof(g_tmpdir), "%s/remora-it-XXXXXX", base);
        if (mkdtemp(g_tmpdir) == NULL) {
            fprintf(stderr, "harness: mkdtemp %s: %s\n", g_tmpdir, strerror(errno));
            abort();
        }
    }
    return g_tmpdir;
}

char *harness_path(const char *name)
{
    return harness_fmt("%s/%s", harness_tmpdir(), name);
}

int harness_write_file(const char *path, const char *data, size_t len)
{
    if (len == (size_t)-1)
        len = strlen(data);
    char *tmp = harness_fmt("%s.tmp", path);
    int rc = -1;
    FILE *f = fopen(tmp, "wb");
    if (f != NULL) {
        size_t w = fwrite(data, 1, len, f);
        if (fclose(f) == 0 && w == len && rename(tmp, path) == 0)
            rc = 0;
    }
    if (rc != 0)
        fprintf(stderr, "harness: cannot write %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

char *harness_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                abort();
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

int harness_wait_file(const char *path, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0)
            return 0;
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s did not appear within %d ms\n", path, timeout_ms);
            return -1;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
}

char *harness_wait_file_lines(const char *path, size_t min_lines, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    size_t seen = 0;
    for (;;) {
        char *s = harness_read_file(path, NULL);
        if (s != NULL) {
            seen = harness_count(s, "\n");
            if (seen >= min_lines)
                return s;
            free(s);
        }
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s has %zu lines, wanted %zu within %d ms\n", path, seen, min_lines,
                    timeout_ms);
            return NULL;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
}

/* ---- processes ---- */

harness_proc_t *harness_spawn(const char *name, char *const argv[], char *const env_extra[])
{
    install_atexit();
    if (g_num_procs >= MAX_PROCS) {
        fprintf(stderr, "harness: too many processes\n");
        return NULL;
    }
    harness_proc_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->stdout_path, sizeof(p->stdout_path), "%s/%s.stdout", harness_tmpdir(), name);
    snprintf(p->stderr_path, sizeof(p->stderr_path), "%s/%s.stderr", harness_tmpdir(), name);

    /* build envp before forking: only async-signal-safe calls in the child */
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env] != NULL)
        n_env++;
    while (env_extra != NULL && env_extra[n_extra] != NULL)
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof(char *));
    if (envp == NULL)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n_extra; i++)
        envp[k++] = env_extra[i];
    for (size_t i = 0; i < n_env; i++) {
        bool overridden = false;
        const char *eq = strchr(environ[i], '=');
        size_t kl = eq != NULL ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        for (size_t j = 0; j < n_extra; j++)
            if (strncmp(environ[i], env_extra[j], kl) == 0)
                overridden = true;
        if (!overridden)
            envp[k++] = environ[i];
    }
    envp[k] = NULL;

    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        free(envp);
        free(p);
        return NULL;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY);
        int out = open(p->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        int err = open(p->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execve(argv[0], argv, envp);
        static const char msg[] = "harness: execve failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    free(envp);
    p->pid = pid;
    g_procs[g_num_procs++] = p;
    return p;
}

static bool reap(harness_proc_t *p, bool block)
{
    if (p->pid == 0)
        return true;
    int st;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
        p->exit_status = r == p->pid ? st : 0;
        p->pid = 0;
        return true;
    }
    return false;
}

bool harness_proc_alive(harness_proc_t *p)
{
    return !reap(p, false);
}

int harness_proc_wait(harness_proc_t *p, int timeout_ms, int *status)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        if (reap(p, false)) {
            if (status != NULL)
                *status = p->exit_status;
            return 0;
        }
        if (harness_now_ms() >= deadline)
            return -1;
        nap_ms(5);
    }
}

int harness_proc_terminate(harness_proc_t *p, int sig, int timeout_ms, int *status)
{
    if (p->pid != 0)
        kill(p->pid, sig);
    if (harness_proc_wait(p, timeout_ms, status) == 0)
        return 0;
    fprintf(stderr, "harness: %s (pid %d) still running %d ms after signal %d; killing it\n", p->name,
            (int)p->pid, timeout_ms, sig);
    kill(p->pid, SIGKILL);
    reap(p, true);
    if (status != NULL)
        *status = p->exit_status;
    return -1;
}

void harness_kill_all(void)
{
    harness_load_stop_all();
    for (size_t i = 0; i < g_num_procs; i++) {
        harness_proc_t *p = g_procs[i];
        if (p->pid != 0) {
            kill(p->pid, SIGKILL);
            reap(p, true);
        }
        free(p);
    }
    g_num_procs = 0;
    for (size_t i = 0; i < g_num_remoras; i++)
        free(g_remoras[i]);
    g_num_remoras = 0;
    for (size_t i = 0; i < g_num_cps; i++)
        free(g_cps[i]);
    g_num_cps = 0;
}

void harness_dump_stderr(const harness_proc_t *p, size_t max_bytes)
{
    size_t len;
    char *s = harness_read_file(p->stderr_path, &len);
    if (s == NULL)
        return;
    const char *start = len > max_bytes ? s + len - max_bytes : s;
    fprintf(stderr, "---- last %zu bytes of %s stderr (%s) ----\n%s\n---- end ----\n",
            len > max_bytes ? max_bytes : len, p->name, p->stderr_path, start);
    free(s);
}

void harness_on_failure(void)
{
    for (size_t i = 0; i < g_num_remoras; i++) {
        harness_proc_t *p = g_remoras[i]->proc;
        if (p == NULL)
            continue;
        if (!harness_proc_alive(p)) {
            int st = p->exit_status;
            fprintf(stderr, "%s is not running: %s %d%s\n", p->name,
                    WIFSIGNALED(st) ? "killed by signal" : "exit status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), WCOREDUMP(st) ? " (core dumped)" : "");
        }
        harness_dump_stderr(p, 3000);
    }
    for (size_t i = 0; i < g_num_cps; i++) {
        harness_proc_t *p = g_cps[i]->proc;
        if (p != NULL && harness_proc_alive(p))
            harness_dump_stderr(p, 1500);
    }
    fprintf(stderr, "(temp dir %s; set REMORA_KEEP_TMP=1 to keep it)\n", g_tmpdir);
}

int harness_proc_mem_kb(pid_t pid, long *rss_kb, long *hwm_kb)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *s = harness_read_file(path, NULL);
    if (s == NULL)
        return -1;
    int found = 0;
    const char *p;
    if ((p = strstr(s, "VmRSS:")) != NULL) {
        if (rss_kb != NULL)
            *rss_kb = strtol(p + 6, NULL, 10);
        found++;
    }
    if ((p = strstr(s, "VmHWM:")) != NULL) {
        if (hwm_kb != NULL)
            *hwm_kb = strtol(p + 6, NULL, 10);
        found++;
    }
    free(s);
    return found == 2 ? 0 : -1;
}

/* ---- HTTP client ---- */

struct harness_client {
    CURL *curl;
};

typedef struct {
    const harness_req_t *req;
    harness_resp_t *resp;
    size_t body_cap;
    size_t hdr_len;
    size_t hdr_cap;
    uint64_t upload_off;
    int64_t last_sample_ms;
} xfer_t;

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap == 0 ? 4096 : *cap;
        while (nc < *len + n + 1)
            nc *= 2;
        *buf = realloc(*buf, nc);
        if (*buf == NULL)
            abort();
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    if (x->req->verify_pattern) {
        const char *p = data;
        size_t left = n;
        while (left > 0 && x->resp->pattern_ok) {
            size_t k = left < PATTERN_WINDOW ? left : PATTERN_WINDOW;
            if (memcmp(p, g_pattern + (x->resp->body_bytes + (uint64_t)(p - data)) % PATTERN_PERIOD, k) != 0)
                x->resp->pattern_ok = false;
            p += k;
            left -= k;
        }
    } else {
        append(&x->resp->body, &x->resp->body_len, &x->body_cap, data, n);
    }
    x->resp->body_bytes += n;
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t n = size * nmemb;
    append(&x->resp->headers, &x->hdr_len, &x->hdr_cap, data, n);
    return n;
}

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
    xfer_t *x = arg;
    size_t cap = size * nmemb;
    const harness_req_t *r = x->req;
    uint64_t total = r->pattern_upload_len > 0 ? r->pattern_upload_len : r->body_len;
    if (x->upload_off >= total)
        return 0;
    uint64_t left = total - x->upload_off;
    size_t n = left < cap ? (size_t)left : cap;
    if (r->pattern_upload_len > 0) {
        size_t done = 0;
        while (done < n) {
            size_t k = n - done < PATTERN_WINDOW ? n - done : PATTERN_WINDOW;
            memcpy(dst + done, g_pattern + (x->upload_off + done) % PATTERN_PERIOD, k);
            done += k;
        }
    } else {
        memcpy(dst, (const char *)r->body + x->upload_off, n);
    }
    x->upload_off += n;
    return n;
}

/* curl progress callback: samples the watched process's RSS while the transfer runs. */
static int xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    xfer_t *x = arg;
    int64_t now = harness_now_ms();
    if (now - x->last_sample_ms >= 10) {
        x->last_sample_ms = now;
        long rss = 0;
        if (harness_proc_mem_kb(x->req->watch_rss_pid, &rss, NULL) == 0) {
            x->resp->rss_samples++;
            if (rss > x->resp->peak_rss_kb)
                x->resp->peak_rss_kb = rss;
        }
    }
    return 0;
}

harness_client_t *harness_client_new(void)
{
    install_atexit();
    harness_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        abort();
    return c;
}

void harness_client_free(harness_client_t *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

int harness_client_do(harness_client_t *c, const harness_req_t *req, harness_resp_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    xfer_t x = {.req = req, .resp = resp};
    resp->pattern_ok = true;
    CURL *h = c->curl;
    curl_easy_reset(h);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     req->http2    ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                     : req->http10 ? (long)CURL_HTTP_VERSION_1_0
                                   : (long)CURL_HTTP_VERSION_1_1);

    if (req->watch_rss_pid > 0) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }

    bool has_body = req->body != NULL || req->pattern_upload_len > 0;
    const char *method = req->method != NULL ? req->method : (has_body ? "POST" : "GET");
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (has_body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        uint64_t total = req->pattern_upload_len > 0 ? req->pattern_upload_len : req->body_len;
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         req->chunked_upload ? (curl_off_t)-1 : (curl_off_t)total);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    struct curl_slist *hdrs = NULL;
    bool caller_expect = false;
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        hdrs = curl_slist_append(hdrs, req->headers[i]);
        if (strncasecmp(req->headers[i], "expect:", 7) == 0)
            caller_expect = true;
    }
    if (!caller_expect) /* no implicit Expect: 100-continue, unless the test asks for it */
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (req->chunked_upload)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    resp->curl_code = (int)rc;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &resp->total_s);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &resp->num_connects);
    if (resp->body == NULL) {
        resp->body = calloc(1, 1);
        if (resp->body == NULL)
            abort();
    }
    if (resp->headers == NULL) {
        resp->headers = calloc(1, 1);
        if (resp->headers == NULL)
            abort();
    }
    if (rc != CURLE_OK) {
        snprintf(resp->error, sizeof(resp->error), "%.100s: %.140s", curl_easy_strerror(rc), errbuf);
        return -1;
    }
    return 0;
}

int harness_http(const harness_req_t *req, harness_resp_t *resp)
{
    harness_client_t *c = harness_client_new();
    int rc = harness_client_do(c, req, resp);
    harness_client_free(c);
    return rc;
}

int harness_http_get(const char *url, harness_resp_t *resp)
{
    harness_req_t req = {.url = url};
    return harness_http(&req, resp);
}

void harness_resp_free(harness_resp_t *resp)
{
    free(resp->body);
    free(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
}

char *harness_resp_header(const harness_resp_t *resp, const char *name)
{
    if (resp->headers == NULL)
        return NULL;
    size_t nl = strlen(name);
    char *found = NULL;
    const char *line = resp->headers;
    while (*line != '\0') {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            const char *end = line + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            free(found);
            found = strndup(v, (size_t)(end - v));
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return found;
}

/* ---- raw TCP ---- */

int harness_wait_port(int port, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = fd >= 0 ? connect(fd, (struct sockaddr *)&sin, sizeof(sin)) : -1;
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            return 0;
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: nothing accepts connections on port %d after %d ms\n", port,
                    timeout_ms);
            return -1;
        }
        nap_ms(20);
    }
}

int harness_tcp_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (errno != EINPROGRESS) {
            fprintf(stderr, "harness: connect 127.0.0.1:%d: %s\n", port, strerror(errno));
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t el = sizeof(err);
        if (poll(&pfd, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
            err != 0) {
            fprintf(stderr, "harness: connect 127.0.0.1:%d: %s\n", port,
                    err != 0 ? strerror(err) : "timeout");
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int harness_tcp_send(int fd, const void *data, size_t len)
{
    if (len == (size_t)-1)
        len = strlen(data);
    const char *p = data;
    int64_t deadline = harness_now_ms() + 10000;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = (int)(deadline - harness_now_ms());
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (left <= 0 || poll(&pfd, 1, left) < 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

void harness_buf_free(harness_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

harness_read_result_t harness_tcp_read(int fd, harness_buf_t *out, const char *until, size_t min_bytes,
                                       int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    if (out->data == NULL) {
        out->cap = 0;
        out->len = 0;
        append(&out->data, &out->len, &out->cap, "", 0);
    }
    for (;;) {
        if (until != NULL && strstr(out->data, until) != NULL)
            return HARNESS_READ_MATCH;
        if (min_bytes > 0 && out->len >= min_bytes)
            return HARNESS_READ_MATCH;
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0)
            return HARNESS_READ_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left);
        if (pr < 0 && errno != EINTR)
            return HARNESS_READ_ERROR;
        if (pr <= 0)
            continue;
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            /* keep data NUL-safe for strstr: embedded NULs just end the string view early */
            append(&out->data, &out->len, &out->cap, buf, (size_t)n);
            continue;
        }
        if (n == 0)
            return HARNESS_READ_EOF;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        return errno == ECONNRESET ? HARNESS_READ_RESET : HARNESS_READ_ERROR;
    }
}

harness_read_result_t harness_tcp_exchange(int port, const char *request, size_t len, int timeout_ms,
                                           harness_buf_t *out)
{
    int fd = harness_tcp_connect(port, timeout_ms);
    if (fd < 0)
        return HARNESS_READ_ERROR;
    harness_tcp_send(fd, request, len); /* a peer may close early; what it answered still counts */
    harness_read_result_t r = harness_tcp_read(fd, out, NULL, 0, timeout_ms);
    close(fd);
    return r;
}

int harness_parse_status(const char *data)
{
    if (data == NULL || strncmp(data, "HTTP/1.", 7) != 0 || data[8] != ' ')
        return -1;
    char *end;
    long code = strtol(data + 9, &end, 10);
    if (end != data + 12 || code < 100 || code > 999)
        return -1;
    return (int)code;
}

const char *harness_read_result_str(harness_read_result_t r)
{
    switch (r) {
    case HARNESS_READ_MATCH:
        return "match";
    case HARNESS_READ_EOF:
        return "eof";
    case HARNESS_READ_RESET:
        return "reset";
    case HARNESS_READ_TIMEOUT:
        return "timeout";
    case HARNESS_READ_ERROR:
        return "error";
    }
    return "?";
}

/* ---- raw response parsing ---- */

static const char *find_crlf2(const char *data, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n')
            return data + i;
    return NULL;
}

static char *header_in_block(const char *head, size_t head_len, const char *name)
{
    size_t nl = strlen(name);
    char *found = NULL;
    const char *p = head;
    const char *end = head + head_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            free(found);
            found = strndup(v, (size_t)(ve - v));
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return found;
}

char *harness_msg_header(const harness_msg_t *msg, const char *name)
{
    return header_in_block(msg->head, msg->head_len, name);
}

void harness_msg_free(harness_msg_t *msg)
{
    free(msg->body_copy);
    msg->body_copy = NULL;
}

long harness_parse_response(const char *data, size_t len, bool is_head, harness_msg_t *msg)
{
    memset(msg, 0, sizeof(*msg));
    const char *hend = find_crlf2(data, len);
    if (hend == NULL)
        return 0;
    char line[16];
    size_t ll = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, data, ll);
    line[ll] = '\0';
    msg->status = harness_parse_status(line);
    if (msg->status < 0)
        return -1;
    msg->head = data;
    msg->head_len = (size_t)(hend - data);
    size_t pos = msg->head_len + 4;
    if (is_head || msg->status < 200 || msg->status == 204 || msg->status == 304) {
        msg->body = data + pos;
        return (long)pos;
    }
    char *te = harness_msg_header(msg, "transfer-encoding");
    char *cl = harness_msg_header(msg, "content-length");
    msg->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    msg->has_content_length = cl != NULL;
    long result;
    if (msg->chunked) {
        size_t cap = 0, blen = 0;
        char *body = NULL;
        append(&body, &blen, &cap, "", 0);
        result = 0;
        for (;;) {
            const char *eol = memmem(data + pos, len - pos, "\r\n", 2);
            if (eol == NULL)
                break; /* incomplete */
            unsigned long long sz = strtoull(data + pos, NULL, 16);
            pos = (size_t)(eol - data) + 2;
            if (sz == 0) {
                /* trailers until an empty line */
                const char *tend = memmem(data + pos - 2, len - (pos - 2), "\r\n\r\n", 4);
                if (tend == NULL)
                    break;
                pos = (size_t)(tend - data) + 4;
                result = (long)pos;
                break;
            }
            if (len - pos < sz + 2)
                break;
            append(&body, &blen, &cap, data + pos, (size_t)sz);
            pos += (size_t)sz + 2;
        }
        if (result > 0) {
            msg->body_copy = body;
            msg->body = body;
            msg->body_len = blen;
        } else {
            free(body);
        }
    } else if (cl != NULL) {
        unsigned long long n = strtoull(cl, NULL, 10);
        if (len - pos < n) {
            result = 0;
        } else {
            msg->body = data + pos;
            msg->body_len = (size_t)n;
            result = (long)(pos + n);
        }
    } else {
        msg->body = data + pos;
        msg->body_len = len - pos;
        result = (long)len;
    }
    free(te);
    free(cl);
    return result;
}

int harness_refused_port(int fds_out[1])
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t sl = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        fprintf(stderr, "harness: refused port: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fds_out[0] = fd;
    return ntohs(sin.sin_port);
}

int harness_blackhole_port(int fds_out[2])
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    socklen_t sl = sizeof(sin);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 0) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0) {
        fprintf(stderr, "harness: blackhole port: %s\n", strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    int port = ntohs(sin.sin_port);
    /* one completed connection fills a backlog-0 accept queue */
    int filler = harness_tcp_connect(port, 1000);
    if (filler < 0) {
        close(lfd);
        return -1;
    }
    /* check that a further connect really hangs */
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = connect(probe, (struct sockaddr *)&sin, sizeof(sin));
    bool hangs = false;
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = probe, .events = POLLOUT};
        hangs = poll(&pfd, 1, 200) == 0;
    }
    close(probe);
    if (!hangs) {
        fprintf(stderr, "harness: blackhole port %d accepts connections; cannot simulate a connect timeout\n",
                port);
        close(filler);
        close(lfd);
        return -1;
    }
    fds_out[0] = lfd;
    fds_out[1] = filler;
    return port;
}

void harness_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* ---- access log ---- */

char *harness_wait_line_containing(const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    for (;;) {
        char *s = harness_read_file(path, NULL);
        if (s != NULL) {
            const char *hit = strstr(s, needle);
            if (hit != NULL) {
                const char *start = hit;
                while (start > s && start[-1] != '\n')
                    start--;
                const char *end = strchr(hit, '\n');
                if (end != NULL) { /* only complete lines */
                    char *line = strndup(start, (size_t)(end - start));
                    free(s);
                    return line;
                }
            }
            free(s);
        }
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: no line containing \"%s\" in %s within %d ms\n", needle, path,
                    timeout_ms);
            return NULL;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
}

/* Copies the next "quoted" field; returns the position after the closing quote or NULL. */
static const char *quoted(const char *p, char *dst, size_t cap)
{
    while (*p == ' ')
        p++;
    if (*p != '"')
        return NULL;
    p++;
    const char *end = strchr(p, '"');
    if (end == NULL)
        return NULL;
    size_t n = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return end + 1;
}

int harness_parse_access_line(const char *line, harness_access_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    const char *p = strchr(line, ']');
    if (line[0] != '[' || p == NULL)
        return -1;
    char req[1200];
    p = quoted(p + 1, req, sizeof(req));
    if (p == NULL)
        return -1;
    /* "METHOD PATH PROTOCOL" */
    char *sp1 = strchr(req, ' ');
    char *sp2 = sp1 != NULL ? strrchr(req, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 == sp1)
        return -1;
    *sp1 = '\0';
    *sp2 = '\0';
    snprintf(e->method, sizeof(e->method), "%.15s", req);
    snprintf(e->path, sizeof(e->path), "%.1023s", sp1 + 1);
    snprintf(e->protocol, sizeof(e->protocol), "%.15s", sp2 + 1);
    unsigned long long rx, tx;
    int consumed = 0;
    if (sscanf(p, " %d %63s %llu %llu %31s %31s%n", &e->status, e->flags, &rx, &tx, e->duration,
               e->upstream_time, &consumed) != 6)
        return -1;
    e->bytes_received = rx;
    e->bytes_sent = tx;
    p += consumed;
    char xff[256], ua[256];
    if ((p = quoted(p, xff, sizeof(xff))) == NULL || (p = quoted(p, ua, sizeof(ua))) == NULL ||
        (p = quoted(p, e->request_id, sizeof(e->request_id))) == NULL ||
        (p = quoted(p, e->authority, sizeof(e->authority))) == NULL ||
        (p = quoted(p, e->upstream_host, sizeof(e->upstream_host))) == NULL)
        return -1;
    return 0;
}

/* ---- binaries ---- */

char *harness_bin(const char *name)
{
    const char *dir = getenv("REMORA_BIN_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "build/bin";
    return harness_fmt("%s/%s", dir, name);
}

int harness_start_upstream(const char *name, harness_proc_t **proc_out)
{
    return harness_start_upstream_args(name, NULL, proc_out);
}

int harness_start_upstream_args(const char *name, const char *const *extra_args, harness_proc_t **proc_out)
{
    char *bin = harness_bin("remora-test-upstream");
    char *pname = harness_fmt("upstream-%s", name);
    char *port_file = harness_fmt("%s/%s.port", harness_tmpdir(), pname);
    unlink(port_file);
    char *argv[32] = {bin, "--listen", "127.0.0.1:0", "--id", (char *)name, "--port-file", port_file};
    size_t argc = 7;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && argc < 31; i++)
        argv[argc++] = (char *)extra_args[i];
    argv[argc] = NULL;
    harness_proc_t *p = harness_spawn(pname, argv, NULL);
    int port = -1;
    if (p != NULL) {
        int64_t deadline = harness_now_ms() + 5000;
        for (;;) {
            char *s = harness_read_file(port_file, NULL);
            if (s != NULL) {
                port = atoi(s);
                free(s);
                break;
            }
            if (!harness_proc_alive(p) || harness_now_ms() >= deadline) {
                fprintf(stderr, "harness: upstream %s did not write %s (%s)\n", name, port_file,
                        harness_proc_alive(p) ? "timeout" : "exited");
                harness_dump_stderr(p, 2000);
                break;
            }
            nap_ms(5);
        }
    }
    if (proc_out != NULL)
        *proc_out = p;
    free(bin);
    free(pname);
    free(port_file);
    return port > 0 ? port : -1;
}

/* ---- bootstrap YAML ---- */

char *harness_yaml_cluster(const char *name, const int *ports, size_t n, const char *connect_timeout)
{
    char *eps = harness_fmt("%s", "");
    for (size_t i = 0; i < n; i++) {
        char *next =
            harness_fmt("%s%s{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}",
                        eps, i > 0 ? ", " : "", ports[i]);
        free(eps);
        eps = next;
    }
    char *c = harness_fmt("{name: %s, type: STATIC, connect_timeout: %s, lb_policy: ROUND_ROBIN, "
                          "load_assignment: {cluster_name: %s, endpoints: [{lb_endpoints: [%s]}]}}",
                          name, connect_timeout != NULL ? connect_timeout : "1s", name, eps);
    free(eps);
    return c;
}

/* Appends fmt output to *acc. */
static void cat(char **acc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cat(char **acc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *part = NULL;
    if (vasprintf(&part, fmt, ap) < 0)
        abort();
    va_end(ap);
    char *next = harness_fmt("%s%s", *acc, part);
    free(*acc);
    free(part);
    *acc = next;
}

char *harness_yaml_bootstrap(const harness_listener_spec_t *listeners, size_t num_listeners,
                             char *const *clusters, size_t num_clusters)
{
    char *y = harness_fmt("%s", "admin:\n"
                                "  address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n"
                                "static_resources:\n"
                                "  listeners:\n");
    for (size_t i = 0; i < num_listeners; i++) {
        const harness_listener_spec_t *l = &listeners[i];
        cat(&y,
            "  - name: %s\n"
            "    address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n"
            "    filter_chains:\n"
            "    - filters:\n"
            "      - name: envoy.filters.network.http_connection_manager\n"
            "        typed_config:\n"
            "          \"@type\": "
            "type.googleapis.com/"
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n"
            "          stat_prefix: %s\n",
            l->name != NULL ? l->name : "ingress", l->stat_prefix != NULL ? l->stat_prefix : "ingress_http");
        if (l->access_log_path != NULL)
            cat(&y,
                "          access_log:\n"
                "          - name: envoy.access_loggers.file\n"
                "            typed_config:\n"
                "              \"@type\": "
                "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
                "              path: %s\n",
                l->access_log_path);
        if (l->hcm_extra != NULL) {
            const char *p = l->hcm_extra;
            while (*p != '\0') {
                const char *eol = strchr(p, '\n');
                int len = eol != NULL ? (int)(eol - p) : (int)strlen(p);
                if (len > 0)
                    cat(&y, "          %.*s\n", len, p);
                p += len;
                if (*p == '\n')
                    p++;
            }
        }
        cat(&y,
            "          route_config:\n"
            "            virtual_hosts: %s\n"
            "          http_filters:\n"
            "          - name: envoy.filters.http.router\n"
            "            typed_config:\n"
            "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n",
            l->virtual_hosts != NULL ? l->virtual_hosts
                                     : "[{name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, "
                                       "route: {cluster: backend, timeout: 2s}}]}]");
        if (l->transport_socket != NULL)
            cat(&y, "      transport_socket: %s\n", l->transport_socket);
    }
    cat(&y, "  clusters:\n");
    for (size_t i = 0; i < num_clusters; i++)
        cat(&y, "  - %s\n", clusters[i]);
    return y;
}

/* ---- remora ---- */

static int read_admin_address(const char *path, char *admin, size_t cap)
{
    char *s = harness_read_file(path, NULL);
    if (s == NULL)
        return -1;
    size_t n = strcspn(s, "\r\n \t");
    s[n] = '\0';
    const char *colon = strrchr(s, ':');
    int rc = -1;
    if (colon != NULL && atoi(colon + 1) > 0 && n < cap) {
        memcpy(admin, s, n + 1);
        rc = 0;
    }
    free(s);
    return rc;
}

static int parse_listeners(harness_remora_t *r, const char *body)
{
    r->num_listeners = 0;
    const char *line = body;
    while (*line != '\0' && r->num_listeners < HARNESS_MAX_LISTENERS) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        char buf[512];
        if (len < sizeof(buf)) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            char *sep = strstr(buf, "::");
            char *colon = strrchr(buf, ':');
            if (sep != NULL && colon != NULL && colon > sep + 1) {
                *sep = '\0';
                char *name = r->listeners[r->num_listeners].name;
                size_t nlen = strnlen(buf, sizeof(r->listeners[0].name) - 1);
                memcpy(name, buf, nlen);
                name[nlen] = '\0';
                r->listeners[r->num_listeners].port = atoi(colon + 1);
                if (r->listeners[r->num_listeners].port > 0)
                    r->num_listeners++;
            }
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return r->num_listeners > 0 ? 0 : -1;
}

static bool remora_exited(harness_remora_t *r, const char *waiting_for)
{
    if (harness_proc_alive(r->proc))
        return false;
    int st = r->proc->exit_status;
    fprintf(stderr, "harness: remora exited (%s %d) while waiting for %s\n",
            WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), waiting_for);
    harness_dump_stderr(r->proc, 4000);
    return true;
}

/* Spawns remora and waits until deadline for its admin address file. */
static harness_remora_t *spawn_remora(const char *yaml, const char *const *extra_args, int64_t deadline)
{
    install_atexit();
    if (g_num_remoras >= MAX_REMORAS) {
        fprintf(stderr, "harness: too many remora instances\n");
        return NULL;
    }
    harness_remora_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    unsigned serial = ++g_remora_serial;
    snprintf(r->config_path, sizeof(r->config_path), "%s/remora-%u.yaml", harness_tmpdir(), serial);
    snprintf(r->admin_path, sizeof(r->admin_path), "%s/remora-%u.admin", harness_tmpdir(), serial);
    unlink(r->admin_path);
    if (harness_write_file(r->config_path, yaml, (size_t)-1) != 0) {
        free(r);
        return NULL;
    }
    char *bin = harness_bin("remora");
    char *argv[64];
    size_t n = 0;
    argv[n++] = bin;
    argv[n++] = "-c";
    argv[n++] = r->config_path;
    argv[n++] = "--admin-address-path";
    argv[n++] = r->admin_path;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 63; i++)
        argv[n++] = (char *)extra_args[i];
    argv[n] = NULL;
    char pname[32];
    snprintf(pname, sizeof(pname), "remora-%u", serial);
    r->proc = harness_spawn(pname, argv, NULL);
    free(bin);
    if (r->proc == NULL) {
        free(r);
        return NULL;
    }
    g_remoras[g_num_remoras++] = r; /* owned by the harness from here on */

    /* re-read the file each round in case it was caught half-written */
    for (;;) {
        if (remora_exited(r, "the admin address file"))
            return NULL;
        if (read_admin_address(r->admin_path, r->admin, sizeof(r->admin)) == 0) {
            snprintf(r->admin_url, sizeof(r->admin_url), "http://%s", r->admin);
            return r;
        }
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: remora did not write its admin address to %s in time\n", r->admin_path);
            harness_dump_stderr(r->proc, 4000);
            return NULL;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
}

static int wait_ready(harness_remora_t *r, int64_t deadline, int timeout_ms)
{
    long last_status = 0;
    char last_body[64] = "";
    for (;;) {
        if (remora_exited(r, "/ready to answer 200"))
            return -1;
        harness_resp_t resp;
        char *url = harness_fmt("%s/ready", r->admin_url);
        harness_req_t req = {.url = url, .timeout_ms = 1000};
        int rc = harness_http(&req, &resp);
        last_status = resp.status;
        snprintf(last_body, sizeof(last_body), "%.*s", (int)strcspn(resp.body, "\r\n"), resp.body);
        harness_resp_free(&resp);
        free(url);
        if (rc == 0 && last_status == 200)
            break;
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: remora not ready within %d ms (last /ready answer: %ld \"%s\")\n",
                    timeout_ms, last_status, last_body);
            harness_dump_stderr(r->proc, 4000);
            return -1;
        }
        nap_ms(POLL_INTERVAL_MS);
    }

    harness_resp_t resp;
    if (harness_admin_get(r, "/listeners", &resp) != 0 || resp.status != 200 ||
        parse_listeners(r, resp.body) != 0) {
        fprintf(stderr, "harness: cannot learn listener ports from %s/listeners (status %ld, body \"%s\")\n",
                r->admin_url, resp.status, resp.body != NULL ? resp.body : "");
        harness_resp_free(&resp);
        harness_dump_stderr(r->proc, 4000);
        return -1;
    }
    harness_resp_free(&resp);
    return 0;
}

harness_remora_t *harness_start_remora(const char *yaml, const char *const *extra_args)
{
    int64_t deadline = harness_now_ms() + 10000;
    harness_remora_t *r = spawn_remora(yaml, extra_args, deadline);
    if (r == NULL || wait_ready(r, deadline, 10000) != 0)
        return NULL;
    return r;
}

harness_remora_t *harness_spawn_remora(const char *yaml, const char *const *extra_args)
{
    return spawn_remora(yaml, extra_args, harness_now_ms() + 10000);
}

int harness_remora_wait_ready(harness_remora_t *r, int timeout_ms)
{
    return wait_ready(r, harness_now_ms() + timeout_ms, timeout_ms);
}

int harness_listener_port(const harness_remora_t *r, const char *name)
{
    if (r == NULL || r->num_listeners == 0)
        return -1;
    if (name == NULL)
        return r->listeners[0].port;
    for (size_t i = 0; i < r->num_listeners; i++)
        if (strcmp(r->listeners[i].name, name) == 0)
            return r->listeners[i].port;
    return -1;
}

int harness_admin_get(const harness_remora_t *r, const char *path, harness_resp_t *resp)
{
    char *url = harness_fmt("%s%s", r->admin_url, path);
    harness_req_t req = {.url = url, .timeout_ms = 5000};
    int rc = harness_http(&req, resp);
    free(url);
    return rc;
}

static int stat_from_body(const char *body, const char *name, uint64_t *value)
{
    size_t nl = strlen(name);
    const char *line = body;
    while (line != NULL && *line != '\0') {
        if (strncmp(line, name, nl) == 0 && line[nl] == ':' && line[nl + 1] == ' ') {
            *value = strtoull(line + nl + 2, NULL, 10);
            return 0;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

uint64_t harness_stat_or_zero(const char *admin, const char *name)
{
    uint64_t v = 0;
    return harness_stat(admin, name, &v) == 0 ? v : 0;
}

int harness_stat(const char *admin, const char *name, uint64_t *value)
{
    char *url = harness_fmt("http://%s/stats", admin);
    harness_req_t req = {.url = url, .timeout_ms = 5000};
    harness_resp_t resp;
    int rc = harness_http(&req, &resp);
    free(url);
    if (rc == 0 && resp.status == 200)
        rc = stat_from_body(resp.body, name, value);
    else
        rc = -1;
    harness_resp_free(&resp);
    return rc;
}

static bool cmp_ok(uint64_t v, harness_cmp_t cmp, uint64_t want)
{
    switch (cmp) {
    case HARNESS_EQ:
        return v == want;
    case HARNESS_GE:
        return v >= want;
    case HARNESS_LE:
        return v <= want;
    }
    return false;
}

int harness_wait_stat(const char *admin, const char *name, harness_cmp_t cmp, uint64_t value, int timeout_ms)
{
    int64_t deadline = harness_now_ms() + timeout_ms;
    bool seen = false;
    uint64_t last = 0;
    for (;;) {
        uint64_t v;
        if (harness_stat(admin, name, &v) == 0) {
            seen = true;
            last = v;
            if (cmp_ok(v, cmp, value))
                return 0;
        }
        if (harness_now_ms() >= deadline) {
            static const char *ops[] = {"==", ">=", "<="};
            if (seen)
                fprintf(stderr, "harness: stat %s stayed at %llu, wanted %s %llu within %d ms\n", name,
                        (unsigned long long)last, ops[cmp], (unsigned long long)value, timeout_ms);
            else
                fprintf(stderr, "harness: stat %s never appeared in http://%s/stats within %d ms\n", name,
                        admin, timeout_ms);
            return -1;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
}

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    if (port < 0)
        fprintf(stderr, "harness: cannot find a free port: %s\n", strerror(errno));
    return port;
}

int harness_wait_admin_body(const char *admin, const char *path, const char *needle, bool present,
                            int timeout_ms)
{
    char *url = harness_fmt("http://%s%s", admin, path);
    int64_t deadline = harness_now_ms() + timeout_ms;
    int rc = -1;
    for (;;) {
        harness_req_t req = {.url = url, .timeout_ms = 5000};
        harness_resp_t resp;
        bool ok = harness_http(&req, &resp) == 0 && resp.status == 200 &&
                  (strstr(resp.body, needle) != NULL) == present;
        if (ok) {
            harness_resp_free(&resp);
            rc = 0;
            break;
        }
        if (harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: %s %s \"%s\" within %d ms; last answer %ld: %.2000s\n", url,
                    present ? "did not come to contain" : "still contains", needle, timeout_ms, resp.status,
                    resp.body != NULL ? resp.body : resp.error);
            harness_resp_free(&resp);
            break;
        }
        harness_resp_free(&resp);
        nap_ms(POLL_INTERVAL_MS);
    }
    free(url);
    return rc;
}

/* ---- dynamic configuration: remora-cp and remora-cpctl ---- */

char *harness_yaml_ads(const char *node_id, const char *cds_extra)
{
    return harness_fmt("node: {id: %s, cluster: it}\n"
                       "dynamic_resources:\n"
                       "  ads_config: {api_type: GRPC, transport_api_version: V3,\n"
                       "               grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]}\n"
                       "  cds_config: {ads: {}, resource_api_version: V3%s%s}\n",
                       node_id, cds_extra != NULL ? ", " : "", cds_extra != NULL ? cds_extra : "");
}

harness_cp_t *harness_start_cp(const char *snapshot_yaml, int port)
{
    install_atexit();
    if (g_num_cps >= MAX_CPS) {
        fprintf(stderr, "harness: too many control planes\n");
        return NULL;
    }
    harness_cp_t *cp = calloc(1, sizeof(*cp));
    if (cp == NULL)
        abort();
    unsigned serial = ++g_cp_serial;
    snprintf(cp->snapshot_path, sizeof(cp->snapshot_path), "%s/cp-%u.yaml", harness_tmpdir(), serial);
    snprintf(cp->port_file, sizeof(cp->port_file), "%s/cp-%u.port", harness_tmpdir(), serial);
    unlink(cp->port_file);
    if (harness_write_file(cp->snapshot_path, snapshot_yaml, (size_t)-1) != 0) {
        free(cp);
        return NULL;
    }
    char *bin = harness_bin("remora-cp");
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port > 0 ? port : 0);
    char *argv[] = {bin,           "--listen",    listen, "--snapshot", cp->snapshot_path,
                    "--port-file", cp->port_file, NULL};
    char pname[32];
    snprintf(pname, sizeof(pname), "cp-%u", serial);
    cp->proc = harness_spawn(pname, argv, NULL);
    free(bin);
    if (cp->proc == NULL) {
        free(cp);
        return NULL;
    }
    g_cps[g_num_cps++] = cp; /* owned by the harness from here on */
    int64_t deadline = harness_now_ms() + 10000;
    for (;;) {
        char *s = harness_read_file(cp->port_file, NULL);
        if (s != NULL) {
            cp->port = atoi(s);
            free(s);
            if (cp->port > 0 && (port <= 0 || cp->port == port))
                break;
            fprintf(stderr, "harness: %s wrote port %d to %s, expected %d\n", pname, cp->port, cp->port_file,
                    port);
            harness_dump_stderr(cp->proc, 2000);
            return NULL;
        }
        if (!harness_proc_alive(cp->proc) || harness_now_ms() >= deadline) {
            fprintf(stderr, "harness: remora-cp on %s did not write %s (%s)\n", listen, cp->port_file,
                    harness_proc_alive(cp->proc) ? "timeout" : "it exited");
            harness_dump_stderr(cp->proc, 2000);
            return NULL;
        }
        nap_ms(POLL_INTERVAL_MS);
    }
    snprintf(cp->address, sizeof(cp->address), "127.0.0.1:%d", cp->port);
    return cp;
}

void harness_cmd_free(harness_cmd_t *cmd)
{
    free(cmd->out);
    free(cmd->err);
    cmd->out = NULL;
    cmd->err = NULL;
}

/* Runs argv (argv[0] a path) with stdout and stderr captured; see harness_cpctl. */
static int run_captured(char *const argv[], int timeout_ms, harness_cmd_t *cmd)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->exit_code = -1;
    size_t cap[2] = {0, 0}, len[2] = {0, 0};
    char *buf[2] = {NULL, NULL};
    append(&buf[0], &len[0], &cap[0], "", 0);
    append(&buf[1], &len[1], &cap[1], "", 0);
    cmd->out = buf[0];
    cmd->err = buf[1];
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        execve(argv[0], argv, environ);
        static const char msg[] = "harness: execve failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd pfd[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int open_fds = 2;
    int64_t deadline = harness_now_ms() + timeout_ms;
    bool timed_out = false;
    while (open_fds > 0) {
        int left = (int)(deadline - harness_now_ms());
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int n = poll(pfd, 2, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            char chunk[4096];
            ssize_t r = read(pfd[i].fd, chunk, sizeof(chunk));
            if (r > 0) {
                append(&buf[i], &len[i], &cap[i], chunk, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    cmd->out = buf[0];
    cmd->err = buf[1];
    if (timed_out) {
        fprintf(stderr, "harness: %s did not finish within %d ms; killing it\n", argv[0], timeout_ms);
        kill(pid, SIGKILL);
    }
    int st = 0;
    pid_t r;
    do {
        r = waitpid(pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    if (r == pid && WIFEXITED(st) && !timed_out)
        cmd->exit_code = WEXITSTATUS(st);
    return cmd->exit_code;
}

#define MAX_CMD_ARGS 48

static int cpctl_v(const char *server, int timeout_ms, harness_cmd_t *cmd, va_list ap)
{
    char *bin = harness_bin("remora-cpctl");
    char *argv[MAX_CMD_ARGS + 4];
    size_t n = 0;
    argv[n++] = bin;
    argv[n++] = "--server";
    argv[n++] = (char *)server;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (n >= MAX_CMD_ARGS) {
            fprintf(stderr, "harness: too many remora-cpctl arguments\n");
            free(bin);
            memset(cmd, 0, sizeof(*cmd));
            cmd->exit_code = -1;
            return -1;
        }
        argv[n++] = (char *)a;
    }
    argv[n] = NULL;
    int rc = run_captured(argv, timeout_ms, cmd);
    free(bin);
    return rc;
}

int harness_cpctl(const char *server, int timeout_ms, harness_cmd_t *cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    int rc = cpctl_v(server, timeout_ms, cmd, ap);
    va_end(ap);
    return rc;
}

long harness_cp_mutate(const char *server, ...)
{
    harness_cmd_t cmd;
    va_list ap;
    va_start(ap, server);
    int rc = cpctl_v(server, 15000, &cmd, ap);
    va_end(ap);
    long version = -1;
    if (rc == 0 && strncmp(cmd.out, "version ", 8) == 0) {
        char *end;
        version = strtol(cmd.out + 8, &end, 10);
        if (end == cmd.out + 8 || version <= 0)
            version = -1;
    }
    if (version < 0)
        fprintf(stderr, "harness: remora-cpctl mutation failed (exit %d): stdout \"%s\" stderr \"%s\"\n", rc,
                cmd.out, cmd.err);
    harness_cmd_free(&cmd);
    return version;
}

int harness_cp_wait_ack(const char *server, const char *node, long version, int timeout_ms)
{
    char v[32], t[32];
    snprintf(v, sizeof(v), "%ld", version);
    snprintf(t, sizeof(t), "%dms", timeout_ms);
    harness_cmd_t cmd;
    int rc = harness_cpctl(server, timeout_ms + 10000, &cmd, "wait-ack", "--node", node, "--version", v,
                           "--timeout", t, (char *)NULL);
    if (rc != 0)
        fprintf(stderr, "harness: node %s did not ACK version %ld (remora-cpctl exit %d): %s%s\n", node,
                version, rc, cmd.out, cmd.err);
    harness_cmd_free(&cmd);
    return rc == 0 ? 0 : -1;
}

/* ---- background HTTP load ---- */

#define MAX_LOADS 8

typedef struct load_thread load_thread_t;

struct harness_load {
    char *url;
    char *host_header; /* "Host: ..." or NULL */
    int connections;
    int rate_per_s;
    uint64_t max_requests;
    int max_duration_ms;
    int timeout_ms;
    int64_t start_ms;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled on every completion and when a thread ends */
    uint64_t claimed;  /* requests started (for max_requests) */
    int live_threads;
    harness_load_stats_t st;
    load_thread_t *threads;
};

struct load_thread {
    harness_load_t *load;
    harness_client_t *client;
    pthread_t tid;
    bool started;
};

static harness_load_t *g_loads[MAX_LOADS];

static void load_record(harness_load_t *l, int rc, const harness_resp_t *resp)
{
    char *id = rc == 0 ? harness_resp_header(resp, "x-upstream-id") : NULL;
    int64_t at = harness_now_ms() - l->start_ms;
    pthread_mutex_lock(&l->mu);
    harness_load_stats_t *s = &l->st;
    s->completed++;
    char what[384] = "";
    if (rc != 0) {
        s->transport_errors++;
        snprintf(what, sizeof(what), "at %lld ms: no response (%s; status %ld)", (long long)at, resp->error,
                 resp->status);
    } else if (resp->status >= 200 && resp->status < 300) {
        s->ok++;
        s->last_ok_at_ms = (uint64_t)at;
    } else {
        s->bad_status++;
        snprintf(what, sizeof(what), "at %lld ms: status %ld from %s, body \"%.120s\"", (long long)at,
                 resp->status, id != NULL ? id : "(no x-upstream-id)", resp->body);
    }
    if (what[0] != '\0') {
        if (s->first_failure[0] == '\0')
            snprintf(s->first_failure, sizeof(s->first_failure), "%s", what);
        snprintf(s->last_failure, sizeof(s->last_failure), "%s", what);
    }
    if (rc == 0 && id == NULL) {
        s->no_id++;
    } else if (id != NULL) {
        size_t i;
        for (i = 0; i < s->num_ids; i++)
            if (strcmp(s->ids[i].id, id) == 0)
                break;
        if (i == s->num_ids && s->num_ids < HARNESS_LOAD_MAX_IDS) {
            snprintf(s->ids[i].id, sizeof(s->ids[i].id), "%s", id);
            s->num_ids++;
        }
        if (i < s->num_ids)
            s->ids[i].count++;
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    free(id);
}

static void *load_main(void *arg)
{
    load_thread_t *t = arg;
    harness_load_t *l = t->load;
    const char *headers[] = {l->host_header, NULL};
    int64_t interval_ns = l->rate_per_s > 0 ? 1000000000LL / l->rate_per_s : 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        if (atomic_load(&l->stop) || harness_now_ms() - l->start_ms >= l->max_duration_ms)
            break;
        pthread_mutex_lock(&l->mu);
        bool go = l->claimed < l->max_requests;
        if (go)
            l->claimed++;
        pthread_mutex_unlock(&l->mu);
        if (!go)
            break;
        harness_req_t req = {
            .url = l->url, .headers = l->host_header != NULL ? headers : NULL, .timeout_ms = l->timeout_ms};
        harness_resp_t resp;
        int rc = harness_client_do(t->client, &req, &resp);
        load_record(l, rc, &resp);
        harness_resp_free(&resp);
        if (interval_ns > 0) {
            /* pacing (the rate), not synchronisation: the schedule never waits on the system under test */
            next.tv_nsec += interval_ns;
            while (next.tv_nsec >= 1000000000L) {
                next.tv_nsec -= 1000000000L;
                next.tv_sec++;
            }
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
                next = now; /* behind schedule: no burst to catch up */
            else
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
                }
        }
    }
    pthread_mutex_lock(&l->mu);
    if (--l->live_threads == 0)
        l->st.running = false;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

harness_load_t *harness_load_start(const harness_load_spec_t *spec)
{
    install_atexit();
    size_t slot = 0;
    while (slot < MAX_LOADS && g_loads[slot] != NULL)
        slot++;
    if (spec->url == NULL || slot == MAX_LOADS) {
        fprintf(stderr, "harness: %s\n", spec->url == NULL ? "load without a url" : "too many loads");
        return NULL;
    }
    harness_load_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        abort();
    l->url = harness_fmt("%s", spec->url);
    l->host_header = spec->host != NULL ? harness_fmt("Host: %s", spec->host) : NULL;
    l->connections = spec->connections > 0 ? spec->connections : 1;
    l->rate_per_s = spec->rate_per_s > 0 ? spec->rate_per_s : 0;
    l->max_requests = spec->max_requests > 0 ? spec->max_requests : 100000;
    l->max_duration_ms = spec->max_duration_ms > 0 ? spec->max_duration_ms : 60000;
    l->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : 10000;
    atomic_init(&l->stop, false);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->threads = calloc((size_t)l->connections, sizeof(*l->threads));
    if (l->threads == NULL)
        abort();
    l->start_ms = harness_now_ms();
    l->st.running = true;
    g_loads[slot] = l;
    for (int i = 0; i < l->connections; i++) {
        load_thread_t *t = &l->threads[i];
        t->load = l;
        t->client = harness_client_new(); /* here: curl's global init is not thread-safe */
        pthread_mutex_lock(&l->mu);
        l->live_threads++;
        pthread_mutex_unlock(&l->mu);
        if (pthread_create(&t->tid, NULL, load_main, t) != 0) {
            fprintf(stderr, "harness: pthread_create failed\n");
            pthread_mutex_lock(&l->mu);
            if (--l->live_threads == 0)
                l->st.running = false;
            pthread_mutex_unlock(&l->mu);
            harness_load_stop(l, NULL);
            return NULL;
        }
        t->started = true;
    }
    return l;
}

void harness_load_snapshot(harness_load_t *l, harness_load_stats_t *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    pthread_mutex_unlock(&l->mu);
    out->elapsed_ms = harness_now_ms() - l->start_ms;
}

int harness_load_wait(harness_load_t *l, uint64_t completed, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_nsec -= 1000000000L;
        until.tv_sec++;
    }
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    while (l->st.completed < completed) {
        if (!l->st.running || rc == ETIMEDOUT)
            break;
        rc = pthread_cond_timedwait(&l->cv, &l->mu, &until);
    }
    uint64_t have = l->st.completed;
    bool running = l->st.running;
    pthread_mutex_unlock(&l->mu);
    if (have >= completed)
        return 0;
    fprintf(stderr, "harness: load on %s: %llu requests completed, waited for %llu (%s)\n", l->url,
            (unsigned long long)have, (unsigned long long)completed,
            running ? "timeout" : "the load ended: a bound was reached");
    return -1;
}

void harness_load_stop(harness_load_t *l, harness_load_stats_t *final)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, true);
    for (int i = 0; i < l->connections; i++) {
        if (l->threads[i].started)
            pthread_join(l->threads[i].tid, NULL);
        harness_client_free(l->threads[i].client);
    }
    if (final != NULL)
        harness_load_snapshot(l, final);
    for (size_t i = 0; i < MAX_LOADS; i++)
        if (g_loads[i] == l)
            g_loads[i] = NULL;
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l->threads);
    free(l->url);
    free(l->host_header);
    free(l);
}

void harness_load_stop_all(void)
{
    for (size_t i = 0; i < MAX_LOADS; i++)
        if (g_loads[i] != NULL)
            harness_load_stop(g_loads[i], NULL);
}

uint64_t harness_load_id_count(const harness_load_stats_t *s, const char *id)
{
    for (size_t i = 0; i < s->num_ids; i++)
        if (strcmp(s->ids[i].id, id) == 0)
            return s->ids[i].count;
    return 0;
}
