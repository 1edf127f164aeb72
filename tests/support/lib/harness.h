/* Integration-test harness: temp dirs, child processes, readiness waits, HTTP and raw TCP clients,
 * and starting the test upstream and remora itself.
 *
 * Conventions:
 * - Nothing here calls cmocka; functions return 0 / a value on success and -1 / NULL on failure,
 *   after printing a message to stderr that says what was being waited for and why it failed
 *   (with the tail of the child's stderr when a child is involved). Tests assert on the result.
 * - Every wait takes a deadline in milliseconds; waits poll (short naps between checks) and never
 *   assume that a fixed delay is enough.
 * - Every spawned process is registered; harness_kill_all() (call it from teardown) and an atexit
 *   hook kill and reap whatever is left. Children also get PR_SET_PDEATHSIG(SIGKILL).
 * - Strings returned as `char *` are malloc'd and owned by the caller unless said otherwise.
 * - Single-threaded use only; the exception is the background load (harness_load_*), whose threads
 *   use only the HTTP client. */
#ifndef REMORA_TEST_HARNESS_H
#define REMORA_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- misc ---- */

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t harness_now_ms(void);

/* printf into a new malloc'd string (aborts on OOM). */
char *harness_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Counts non-overlapping occurrences of needle in haystack. */
size_t harness_count(const char *haystack, const char *needle);

/* ---- files ---- */

/* The per-process temp dir (created on first use under $TMPDIR or /tmp; removed at exit unless
 * REMORA_KEEP_TMP=1 is set). Returned string is owned by the harness. */
const char *harness_tmpdir(void);

/* A new path "<tmpdir>/<name>" (not created). */
char *harness_path(const char *name);

/* Writes len bytes (len == (size_t)-1: strlen) to path atomically (temp + rename). */
int harness_write_file(const char *path, const char *data, size_t len);

/* Reads a whole file; NULL if missing. *len_out optional. The result is NUL-terminated. */
char *harness_read_file(const char *path, size_t *len_out);

/* Waits until path exists and is non-empty. */
int harness_wait_file(const char *path, int timeout_ms);

/* Waits until the file has at least min_lines complete ('\n'-terminated) lines; returns the
 * contents (caller frees) or NULL on timeout. */
char *harness_wait_file_lines(const char *path, size_t min_lines, int timeout_ms);

/* ---- processes ---- */

typedef struct harness_proc {
    pid_t pid;       /* 0 once reaped */
    int exit_status; /* raw waitpid status, valid when reaped */
    char name[64];
    char stdout_path[512];
    char stderr_path[512];
} harness_proc_t;

/* Spawns argv[0] (a path) with argv, the current environment plus env_extra ("K=V", NULL-terminated,
 * may be NULL), stdout/stderr redirected to <tmpdir>/<name>.stdout/.stderr. The returned handle is
 * owned by the harness (valid until harness_kill_all). */
harness_proc_t *harness_spawn(const char *name, char *const argv[], char *const env_extra[]);

/* true while the process has not been reaped and has not exited (reaps it if it has). */
bool harness_proc_alive(harness_proc_t *p);

/* Waits up to timeout_ms for the process to exit. Returns 0 and sets *status (raw waitpid status;
 * may be NULL) if it exited, -1 on timeout. */
int harness_proc_wait(harness_proc_t *p, int timeout_ms, int *status);

/* Sends sig, then waits up to timeout_ms; if still alive, SIGKILLs and reaps it.
 * Returns 0 if it exited within the deadline (status set), -1 if it had to be killed. */
int harness_proc_terminate(harness_proc_t *p, int sig, int timeout_ms, int *status);

/* Stops every background load still running (harness_load_start), then kills (SIGKILL) and reaps every
 * process still running. Safe to call repeatedly. */
void harness_kill_all(void);

/* Prints the last max_bytes of a process's stderr to our stderr (for failure diagnostics). */
void harness_dump_stderr(const harness_proc_t *p, size_t max_bytes);

/* Prints the stderr tails of all remora processes and running control planes (called by IT_ASSERT on
 * failure). */
void harness_on_failure(void);

/* VmRSS / VmHWM in kB from /proc/<pid>/status (either pointer may be NULL). */
int harness_proc_mem_kb(pid_t pid, long *rss_kb, long *hwm_kb);

/* ---- HTTP client (libcurl) ---- */

typedef struct {
    const char *method; /* default "GET" ("POST" if a body is given) */
    const char *url;    /* required */
    const void *body;   /* request body, body_len bytes; NULL: none */
    size_t body_len;
    uint64_t pattern_upload_len; /* >0: upload this many pattern bytes (generated on the fly) */
    bool chunked_upload;         /* send the body with Transfer-Encoding: chunked */
    const char *const *headers;  /* extra "Name: value" lines, NULL-terminated; may be NULL */
    int timeout_ms;              /* whole-transfer timeout; default 10000 */
    bool verify_pattern;         /* don't store the body; count it and check it is the pattern */
    bool http10;                 /* send HTTP/1.0 */
    bool http2;                  /* HTTP/2 with prior knowledge (h2c) */
    pid_t watch_rss_pid;         /* >0: sample this process\'s VmRSS during the transfer */
} harness_req_t;

typedef struct {
    int curl_code;   /* CURLE_OK (0) when the transfer completed */
    char error[256]; /* curl's error text when curl_code != 0 */
    long status;     /* final HTTP status, 0 if none */
    char *body;      /* NUL-terminated (unless verify_pattern) */
    size_t body_len;
    uint64_t body_bytes; /* bytes of body received (also with verify_pattern) */
    bool pattern_ok;     /* with verify_pattern: every byte matched */
    char *headers;       /* raw header block(s) of the response, NUL-terminated */
    double total_s;      /* transfer time */
    long num_connects;   /* new connections curl opened for this transfer */
    long peak_rss_kb;    /* with watch_rss_pid: highest VmRSS sampled (about every 10 ms) */
    long rss_samples;
} harness_resp_t;

/* A reusable client: requests on the same client reuse its keep-alive connection. */
typedef struct harness_client harness_client_t;
harness_client_t *harness_client_new(void);
void harness_client_free(harness_client_t *c);
int harness_client_do(harness_client_t *c, const harness_req_t *req, harness_resp_t *resp);

/* One request on a fresh connection. Returns 0 when a response was received (any status),
 * -1 on a transport error (resp->curl_code / resp->error say which). */
int harness_http(const harness_req_t *req, harness_resp_t *resp);
/* Convenience: GET url. */
int harness_http_get(const char *url, harness_resp_t *resp);

void harness_resp_free(harness_resp_t *resp);

/* Value of the (last) response header `name` (case-insensitive), malloc'd; NULL if absent. */
char *harness_resp_header(const harness_resp_t *resp, const char *name);

/* ---- raw TCP ---- */

/* Polls until something accepts connections on 127.0.0.1:port (a server started by the test that
 * has no readiness file). 0, or -1 on timeout. */
int harness_wait_port(int port, int timeout_ms);

/* Connects to 127.0.0.1:port; returns the fd or -1. */
int harness_tcp_connect(int port, int timeout_ms);

/* Sends all bytes (len (size_t)-1: strlen). 0 on success, -1 on error (e.g. peer reset). */
int harness_tcp_send(int fd, const void *data, size_t len);

typedef enum {
    HARNESS_READ_MATCH = 0, /* the stop condition was met */
    HARNESS_READ_EOF = 1,   /* the peer closed the connection (FIN) */
    HARNESS_READ_RESET = 2, /* the connection was reset (ECONNRESET) */
    HARNESS_READ_TIMEOUT = 3,
    HARNESS_READ_ERROR = 4,
} harness_read_result_t;

typedef struct {
    char *data; /* NUL-terminated */
    size_t len;
    size_t cap;
} harness_buf_t;

void harness_buf_free(harness_buf_t *b);

/* Appends what arrives to *out until: `until` (if non-NULL) appears in the accumulated data, or
 * at least min_bytes (if >0) have been accumulated, or the peer closes, or the deadline passes.
 * With neither condition, reads until close. */
harness_read_result_t harness_tcp_read(int fd, harness_buf_t *out, const char *until, size_t min_bytes,
                                       int timeout_ms);

/* Connect, send request, read until the peer closes (or timeout). Returns the read result
 * (EOF or RESET are "closed"), or HARNESS_READ_ERROR if connecting failed. */
harness_read_result_t harness_tcp_exchange(int port, const char *request, size_t len, int timeout_ms,
                                           harness_buf_t *out);

/* Status code of the first HTTP/1.x status line in data, -1 if none. */
int harness_parse_status(const char *data);

const char *harness_read_result_str(harness_read_result_t r);

/* One HTTP/1.x response parsed from raw bytes. Pointers point into the parsed data. */
typedef struct {
    int status;
    const char *head; /* status line + headers, head_len bytes (without the final CRLF CRLF) */
    size_t head_len;
    const char *body; /* de-chunked bodies are copied into body_copy */
    size_t body_len;
    char *body_copy; /* malloc'd when the body was chunked; free with harness_msg_free */
    bool chunked;
    bool has_content_length;
} harness_msg_t;

/* Parses one response at data[0..len). is_head: the request was HEAD (no body).
 * Returns the bytes consumed, 0 if incomplete, -1 if malformed. A response without CL or chunked
 * (and with a body-bearing status) is delimited by the end of the data (close-delimited). */
long harness_parse_response(const char *data, size_t len, bool is_head, harness_msg_t *msg);
void harness_msg_free(harness_msg_t *msg);

/* Value of header `name` in msg->head (case-insensitive), malloc'd; NULL if absent. */
char *harness_msg_header(const harness_msg_t *msg, const char *name);

/* Loopback ports that fail in known ways, for upstream error tests. The returned fds must stay
 * open for as long as the port is used (close them with harness_close_fds).
 * refused: a bound, non-listening socket: connects get ECONNREFUSED and nobody else can take the
 *   port. blackhole: a listener with backlog 0 whose queue is filled: further SYNs are dropped, so
 *   connects time out. Return the port, -1 on failure. */
int harness_refused_port(int fds_out[1]);
int harness_blackhole_port(int fds_out[2]);
void harness_close_fds(int *fds, size_t n);

/* ---- access log (Envoy default format) ---- */

typedef struct {
    char method[16];
    char path[1024];
    char protocol[16];
    int status;
    char flags[64];
    uint64_t bytes_received;
    uint64_t bytes_sent;
    char duration[32];
    char upstream_time[32];
    char request_id[128];
    char authority[256];
    char upstream_host[128];
} harness_access_entry_t;

/* Waits until a line of the file contains needle; returns that line (malloc'd, without '\n') or
 * NULL on timeout. */
char *harness_wait_line_containing(const char *path, const char *needle, int timeout_ms);

/* Parses `[START] "METHOD PATH PROTO" STATUS FLAGS RX TX DURATION UPSTREAM_TIME "XFF" "UA" "REQ_ID"
 * "AUTHORITY" "UPSTREAM_HOST"`. 0 on success, -1 if the line does not have that shape. */
int harness_parse_access_line(const char *line, harness_access_entry_t *e);

/* ---- the test upstream ---- */

/* Starts remora-test-upstream --id name on 127.0.0.1:0 and returns its port (-1 on failure).
 * *proc_out (optional) receives the process handle. */
int harness_start_upstream(const char *name, harness_proc_t **proc_out);
/* The same with extra command-line arguments (NULL-terminated), e.g. {"--fail-status", "503", NULL}. */
int harness_start_upstream_args(const char *name, const char *const *extra_args, harness_proc_t **proc_out);

/* ---- bootstrap YAML ---- */

/* One listener with an http_connection_manager and the router filter. */
typedef struct {
    const char *name;            /* default "ingress" */
    const char *stat_prefix;     /* default "ingress_http" */
    const char *access_log_path; /* NULL: no access log */
    /* extra HttpConnectionManager fields, one "key: value" per line (flow style for nested values),
     * e.g. "request_headers_timeout: 1s\ncommon_http_protocol_options: {idle_timeout: 1s}"; may be NULL */
    const char *hcm_extra;
    /* route_config.virtual_hosts as a YAML flow sequence; NULL: one vhost "*" with prefix "/" to
     * cluster "backend" (timeout 2s) */
    const char *virtual_hosts;
    /* filter_chains[0].transport_socket as a YAML flow mapping; NULL: plaintext */
    const char *transport_socket;
} harness_listener_spec_t;

/* A STATIC ROUND_ROBIN cluster as a flow mapping, endpoints 127.0.0.1:ports[i] (n may be 0).
 * connect_timeout NULL: "1s". */
char *harness_yaml_cluster(const char *name, const int *ports, size_t n, const char *connect_timeout);

/* A whole bootstrap: admin on 127.0.0.1:0, the listeners on 127.0.0.1:0, the clusters (flow
 * mappings as made by harness_yaml_cluster). */
char *harness_yaml_bootstrap(const harness_listener_spec_t *listeners, size_t num_listeners,
                             char *const *clusters, size_t num_clusters);

/* ---- remora ---- */

#define HARNESS_MAX_LISTENERS 16

typedef struct {
    harness_proc_t *proc;
    char config_path[512];
    char admin_path[512];
    char admin[64];     /* "127.0.0.1:PORT" */
    char admin_url[96]; /* "http://127.0.0.1:PORT" */
    size_t num_listeners;
    struct {
        char name[128];
        int port;
    } listeners[HARNESS_MAX_LISTENERS];
} harness_remora_t;

/* Path of a binary in $REMORA_BIN_DIR (caller frees). */
char *harness_bin(const char *name);

/* Writes yaml to <tmpdir>/remora-<n>.yaml, runs `remora -c FILE --admin-address-path F
 * [extra_args...]` (extra_args NULL-terminated, may be NULL), waits for F, polls /ready until 200,
 * and reads /listeners. NULL on failure (with remora's stderr tail printed). The handle is owned
 * by the harness; its process is killed by harness_kill_all. */
harness_remora_t *harness_start_remora(const char *yaml, const char *const *extra_args);

/* Port of the listener named `name`, or of the first listener if name is NULL; -1 if unknown. */
int harness_listener_port(const harness_remora_t *r, const char *name);

/* GET http://<admin><path>; returns 0 with resp filled, -1 on transport failure. */
int harness_admin_get(const harness_remora_t *r, const char *path, harness_resp_t *resp);

/* One stat from GET /stats ("name: value" lines). 0 when found, -1 otherwise. */
int harness_stat(const char *admin, const char *name, uint64_t *value);
/* The stat's value, 0 when it does not exist (yet) or the admin does not answer. */
uint64_t harness_stat_or_zero(const char *admin, const char *name);

typedef enum {
    HARNESS_EQ,
    HARNESS_GE,
    HARNESS_LE,
} harness_cmp_t;

/* Polls /stats until the stat `name` compares to value (a missing stat never satisfies the
 * predicate). 0 on success, -1 on timeout (prints the last value seen). */
int harness_wait_stat(const char *admin, const char *name, harness_cmp_t cmp, uint64_t value, int timeout_ms);

/* Starts remora like harness_start_remora, but returns as soon as the admin address is known: remora
 * may still be PRE_INITIALIZING (its listeners are then unknown: num_listeners is 0). NULL on failure.
 * The handle is owned by the harness. */
harness_remora_t *harness_spawn_remora(const char *yaml, const char *const *extra_args);

/* Polls /ready until it answers 200, then reads /listeners into r. 0, or -1 on timeout (or if remora
 * exited), with the last /ready answer and remora's stderr tail printed. */
int harness_remora_wait_ready(harness_remora_t *r, int timeout_ms);

/* A loopback TCP port that was free a moment ago (bound to 127.0.0.1:0, then closed), for a server
 * that must be started after its clients are configured. -1 on failure. Another process could take
 * the port in between; the server's start then fails with "address in use". */
int harness_free_port(void);

/* Polls GET http://<admin><path> until its body contains needle (present) or no longer contains it
 * (!present). 0, or -1 on timeout (after printing the last status and body, truncated). */
int harness_wait_admin_body(const char *admin, const char *path, const char *needle, bool present,
                            int timeout_ms);

/* ---- dynamic configuration: remora-cp and remora-cpctl ---- */

/* Top-level bootstrap YAML for a node that gets its clusters over ADS: `node: {id: node_id, cluster:
 * it}` and dynamic_resources with ads_config on the static cluster "xds_cluster" and cds_config
 * ads. cds_extra: more cds_config fields in flow style ("initial_fetch_timeout: 30s"), may be NULL.
 * Prepend it to a harness_yaml_bootstrap() whose clusters include
 * harness_yaml_cluster("xds_cluster", &cp_port, 1, NULL). */
char *harness_yaml_ads(const char *node_id, const char *cds_extra);

typedef struct {
    harness_proc_t *proc;
    int port;
    char address[64];        /* "127.0.0.1:PORT", for remora-cpctl --server */
    char snapshot_path[512]; /* the snapshot file it serves (remora-cp reloads it when it changes) */
    char port_file[512];
} harness_cp_t;

/* Writes snapshot_yaml to <tmpdir>/cp-<n>.yaml and runs `remora-cp --listen 127.0.0.1:port --snapshot
 * FILE --port-file F` (port 0: any free port); waits (10 s) for the port file. NULL on failure (with
 * remora-cp's stderr tail printed). The handle is owned by the harness; the process is killed by
 * harness_kill_all. To restart a control plane on the same port, stop it and pass its port. */
harness_cp_t *harness_start_cp(const char *snapshot_yaml, int port);

/* One finished command. out and err are NUL-terminated, malloc'd. */
typedef struct {
    int exit_code; /* 0..255; -1 when it did not exit normally (signal, timeout, could not run) */
    char *out;
    char *err;
} harness_cmd_t;

void harness_cmd_free(harness_cmd_t *cmd);

/* Runs `$REMORA_BIN_DIR/remora-cpctl --server SERVER ARGS...` (the variadic strings, NULL-terminated)
 * and captures its stdout and stderr into *cmd. Kills it if it has not exited within timeout_ms.
 * Returns cmd->exit_code. Safe while load threads run (the child only calls async-signal-safe
 * functions before exec). */
int harness_cpctl(const char *server, int timeout_ms, harness_cmd_t *cmd, ...) __attribute__((sentinel));

/* Runs a cpctl mutation (add-endpoint, set-weight, upsert-cluster, ...: ARGS... NULL-terminated) and
 * returns the snapshot version it printed ("version N"), or -1 (after printing cpctl's output) when
 * the command failed. */
long harness_cp_mutate(const char *server, ...) __attribute__((sentinel));

/* `remora-cpctl wait-ack --node NODE --version V --timeout T`: 0 once the node has ACKed >= V for every
 * type it subscribed to; -1 (after printing cpctl's answer, which carries a NACK message or how far the
 * node got) otherwise. */
int harness_cp_wait_ack(const char *server, const char *node, long version, int timeout_ms);

/* ---- background HTTP load ---- */

/* Threads that send GETs back-to-back (or paced) over keep-alive connections and count the outcome.
 * Every load is bounded by a request count AND a duration so that it cannot run away under slow
 * sanitizer builds. Start, snapshot, wait and stop from one (the test's) thread. */
typedef struct {
    const char *url;       /* required, copied */
    const char *host;      /* Host header value (routes by virtual host), copied; NULL: from the URL */
    int connections;       /* threads, one keep-alive connection each; default 1 */
    int rate_per_s;        /* per connection; 0: back-to-back */
    uint64_t max_requests; /* over all connections; default 100000 */
    int max_duration_ms;   /* default 60000 */
    int timeout_ms;        /* per request; default 10000 */
} harness_load_spec_t;

#define HARNESS_LOAD_MAX_IDS 16

typedef struct {
    uint64_t completed;        /* requests finished: responses + transport errors */
    uint64_t ok;               /* 2xx responses */
    uint64_t bad_status;       /* responses with another status */
    uint64_t transport_errors; /* no response (reset, timeout, connect failure, ...) */
    uint64_t no_id;            /* responses without x-upstream-id */
    size_t num_ids;
    struct {
        char id[64];
        uint64_t count;
    } ids[HARNESS_LOAD_MAX_IDS]; /* responses per x-upstream-id */
    char first_failure[384];     /* what the first failed request got, "" if none */
    char last_failure[384];
    bool running;           /* false once every thread has ended (stopped, or a bound was reached) */
    int64_t elapsed_ms;     /* since the start */
    uint64_t last_ok_at_ms; /* elapsed_ms of the last completion of a 2xx response */
} harness_load_stats_t;

typedef struct harness_load harness_load_t;

/* Starts the threads. NULL on failure. */
harness_load_t *harness_load_start(const harness_load_spec_t *spec);

/* A consistent copy of the counters. */
void harness_load_snapshot(harness_load_t *l, harness_load_stats_t *out);

/* Waits until at least `completed` requests have finished. 0, or -1 on timeout or when the load ended
 * before (a bound was reached). */
int harness_load_wait(harness_load_t *l, uint64_t completed, int timeout_ms);

/* Stops and joins the threads (each finishes its current request), fills *final (may be NULL) and
 * frees l. NULL is a no-op. */
void harness_load_stop(harness_load_t *l, harness_load_stats_t *final);

/* Stops every load still running (for a test's teardown, after a failed check left one behind). */
void harness_load_stop_all(void);

/* Responses from upstream `id` in s (0 if none). */
uint64_t harness_load_id_count(const harness_load_stats_t *s, const char *id);

#endif
