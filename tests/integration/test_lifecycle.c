/* Process lifecycle and admin: --mode validate on good and bad files, SIGTERM drain (in-flight
 * request completes, no new connections, /ready 503, exit 0), POST /quitquitquit, and the contents
 * of /clusters, /stats and /ready. Each test starts its own remora. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_u1, g_u2, g_u3;

static int group_setup(void **state)
{
    g_u1 = harness_start_upstream("u1", NULL);
    g_u2 = harness_start_upstream("u2", NULL);
    g_u3 = harness_start_upstream("u3", NULL);
    return g_u1 > 0 && g_u2 > 0 && g_u3 > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    return 0;
}

/* Kills the remoras a test started (the upstreams stay for the next test). */
static int test_teardown(void **state)
{
    harness_remora_t *r = *state;
    if (r != NULL && r->proc->pid != 0)
        harness_proc_terminate(r->proc, SIGKILL, 2000, NULL);
    *state = NULL;
    return 0;
}

static char *default_yaml(void)
{
    char *clusters[2] = {
        harness_yaml_cluster("backend", (int[]){g_u1, g_u2}, 2, NULL),
        harness_yaml_cluster("other", &g_u3, 1, NULL),
    };
    harness_listener_spec_t listener = {0};
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 2);
    free(clusters[0]);
    free(clusters[1]);
    return yaml;
}

/* ---- --mode validate ---- */

typedef struct {
    int exit_code; /* -1: did not exit normally */
    char *err;     /* stderr */
} validate_result_t;

static void run_validate(const char *yaml, const char *file_name, validate_result_t *out)
{
    char *path = harness_path(file_name);
    if (yaml != NULL)
        IT_ASSERT(harness_write_file(path, yaml, (size_t)-1) == 0, "write %s", path);
    char *bin = harness_bin("remora");
    char *argv[] = {bin, "--mode", "validate", "-c", path, NULL};
    harness_proc_t *p = harness_spawn(file_name, argv, NULL);
    IT_ASSERT(p != NULL, "spawn remora --mode validate");
    int status;
    IT_ASSERT(harness_proc_wait(p, 5000, &status) == 0,
              "remora --mode validate -c %s still running after 5 s", path);
    out->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    out->err = harness_read_file(p->stderr_path, NULL);
    if (out->err == NULL)
        out->err = strdup("");
    free(bin);
    free(path);
}

static void test_validate_good_file(void **state)
{
    char *yaml = default_yaml();
    validate_result_t r;
    run_validate(yaml, "good.yaml", &r);
    IT_ASSERT(r.exit_code == 0, "a valid bootstrap: exit %d, stderr: %s", r.exit_code, r.err);
    free(r.err);
    free(yaml);
}

static void test_validate_bad_duration(void **state)
{
    char *clusters[1] = {harness_yaml_cluster("backend", &g_u1, 1, "banana")};
    harness_listener_spec_t listener = {0};
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 1);
    validate_result_t r;
    run_validate(yaml, "bad-duration.yaml", &r);
    IT_ASSERT(r.exit_code == 1, "connect_timeout: banana: exit %d, expected 1", r.exit_code);
    IT_ASSERT(strstr(r.err, "static_resources.clusters[0].connect_timeout") != NULL,
              "stderr should name static_resources.clusters[0].connect_timeout; it says: %s", r.err);
    free(r.err);
    free(yaml);
    free(clusters[0]);
}

static void test_validate_unknown_field(void **state)
{
    char *clusters[2] = {
        harness_yaml_cluster("backend", &g_u1, 1, NULL),
        harness_fmt(
            "{name: second, type: STATIC, connect_timeout: 1s, bogus_field: 7, load_assignment: "
            "{cluster_name: second, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
            "{address: 127.0.0.1, port_value: %d}}}}]}]}}",
            g_u2),
    };
    harness_listener_spec_t listener = {0};
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 2);
    validate_result_t r;
    run_validate(yaml, "unknown-field.yaml", &r);
    IT_ASSERT(r.exit_code == 1, "an unknown field: exit %d, expected 1", r.exit_code);
    IT_ASSERT(strstr(r.err, "static_resources.clusters[1].bogus_field") != NULL,
              "stderr should name static_resources.clusters[1].bogus_field; it says: %s", r.err);
    free(r.err);
    free(yaml);
    free(clusters[0]);
    free(clusters[1]);
}

static void test_validate_syntax_error_and_missing_file(void **state)
{
    validate_result_t r;
    run_validate("admin: {address: [unclosed\nstatic_resources: {\n", "syntax.yaml", &r);
    IT_ASSERT(r.exit_code == 1 && r.err[0] != '\0', "YAML syntax error: exit %d, stderr \"%s\"", r.exit_code,
              r.err);
    free(r.err);
    run_validate(NULL, "does-not-exist.yaml", &r);
    IT_ASSERT(r.exit_code == 1 && strstr(r.err, "does-not-exist.yaml") != NULL,
              "missing file: exit %d, stderr should name the file: \"%s\"", r.exit_code, r.err);
    free(r.err);
}

/* ---- signals and /quitquitquit ---- */

static harness_remora_t *start_default(void **state, const char *const *args)
{
    char *yaml = default_yaml();
    harness_remora_t *r = harness_start_remora(yaml, args);
    free(yaml);
    IT_ASSERT(r != NULL, "remora did not start");
    *state = r;
    return r;
}

/* Opens a connection and sends GET /delay/<ms>; waits until the proxy has it in flight upstream. */
static int start_inflight_request(harness_remora_t *r, int ms)
{
    int fd = harness_tcp_connect(harness_listener_port(r, "ingress"), 2000);
    IT_ASSERT(fd >= 0, "connect to the listener");
    char *req = harness_fmt("GET /delay/%d HTTP/1.1\r\nHost: d\r\n\r\n", ms);
    IT_ASSERT(harness_tcp_send(fd, req, (size_t)-1) == 0, "send");
    free(req);
    IT_ASSERT(harness_wait_stat(r->admin, "cluster.backend.upstream_rq_active", HARNESS_EQ, 1, 3000) == 0,
              "the /delay request never became active upstream");
    return fd;
}

/* true when a new connection to port is refused, or accepted and closed without any response. */
static bool listener_rejects_new_connection(int port)
{
    int fd = harness_tcp_connect(port, 500);
    if (fd < 0)
        return true;
    harness_buf_t buf = {0};
    harness_tcp_send(fd, "GET /status/200 HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n", (size_t)-1);
    harness_read_result_t rr = harness_tcp_read(fd, &buf, NULL, 0, 300);
    bool rejected = (rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET) && buf.len == 0;
    bool served = harness_parse_status(buf.data) == 200;
    harness_buf_free(&buf);
    close(fd);
    return rejected && !served;
}

static void test_sigterm_drains_inflight_request(void **state)
{
    const char *args[] = {"--drain-time-s", "3", NULL};
    harness_remora_t *r = start_default(state, args);
    int port = harness_listener_port(r, "ingress");
    int fd = start_inflight_request(r, 1500);
    int64_t t_signal = harness_now_ms();
    IT_ASSERT(kill(r->proc->pid, SIGTERM) == 0, "kill SIGTERM");

    /* no new connections: within 1 s (while the 1.5 s request is still in flight) */
    bool stopped = false;
    while (!stopped && harness_now_ms() - t_signal < 1000)
        stopped = listener_rejects_new_connection(port);
    IT_ASSERT(stopped, "after SIGTERM the listener still serves new connections");

    harness_buf_t buf = {0};
    harness_msg_t m;
    long n = 0;
    int64_t deadline = harness_now_ms() + 5000;
    while (n <= 0 && harness_now_ms() < deadline) {
        harness_read_result_t rr =
            harness_tcp_read(fd, &buf, NULL, buf.len + 1, (int)(deadline - harness_now_ms()));
        n = harness_parse_response(buf.data, buf.len, false, &m);
        if (n <= 0 && rr != HARNESS_READ_MATCH)
            break;
    }
    close(fd);
    IT_ASSERT(n > 0 && m.status == 200 && m.body_len == 13 && memcmp(m.body, "delayed 1500\n", 13) == 0,
              "the in-flight request must complete after SIGTERM; got: %.200s",
              buf.data ? buf.data : "(nothing)");
    harness_msg_free(&m);
    harness_buf_free(&buf);

    int status;
    IT_ASSERT(harness_proc_wait(r->proc, 10000, &status) == 0, "remora did not exit within 10 s of SIGTERM");
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit after SIGTERM: %s %d",
              WIFEXITED(status) ? "status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_sigterm_ready_503_while_draining(void **state)
{
    const char *args[] = {"--drain-time-s", "3", NULL};
    harness_remora_t *r = start_default(state, args);
    harness_resp_t resp;
    IT_ASSERT(harness_admin_get(r, "/ready", &resp) == 0 && resp.status == 200 &&
                  strcmp(resp.body, "LIVE\n") == 0,
              "/ready before SIGTERM: %ld \"%s\"", resp.status, resp.body);
    harness_resp_free(&resp);
    int fd = start_inflight_request(r, 1500);
    IT_ASSERT(kill(r->proc->pid, SIGTERM) == 0, "kill SIGTERM");
    long last = 0;
    int64_t deadline = harness_now_ms() + 1000;
    while (last != 503 && harness_now_ms() < deadline) {
        if (harness_admin_get(r, "/ready", &resp) == 0)
            last = resp.status;
        harness_resp_free(&resp);
    }
    close(fd);
    IT_ASSERT(last == 503, "/ready while draining: last status %ld (0 = no answer), expected 503", last);
}

static void test_quitquitquit(void **state)
{
    harness_remora_t *r = start_default(state, NULL);
    char *url = harness_fmt("%s/quitquitquit", r->admin_url);
    harness_req_t req = {.url = url, .method = "POST", .body = "", .body_len = 0};
    harness_resp_t resp;
    int rc = harness_http(&req, &resp);
    IT_ASSERT(rc == 0 && resp.status == 200, "POST /quitquitquit: %ld %s", resp.status, resp.error);
    harness_resp_free(&resp);
    free(url);
    int status;
    IT_ASSERT(harness_proc_wait(r->proc, 5000, &status) == 0,
              "remora did not exit within 5 s of /quitquitquit");
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit after /quitquitquit: %s %d",
              WIFEXITED(status) ? "status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- admin contents ---- */

static bool has_line(const char *body, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = strstr(body, line); p != NULL; p = strstr(p + 1, line))
        if ((p == body || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static void test_admin_clusters_and_stats(void **state)
{
    const char *args[] = {"--workers", "1", "--log-level", "warning", NULL};
    harness_remora_t *r = start_default(state, args);

    /* --admin-address-path holds exactly "127.0.0.1:PORT" */
    char *addr = harness_read_file(r->admin_path, NULL);
    size_t alen = addr != NULL ? strcspn(addr, "\n") : 0;
    IT_ASSERT(addr != NULL && strncmp(addr, "127.0.0.1:", 10) == 0 && atoi(addr + 10) > 0 &&
                  (addr[alen] == '\0' || strcmp(addr + alen, "\n") == 0),
              "admin address file should hold 127.0.0.1:PORT, holds \"%s\"", addr ? addr : "(nothing)");
    free(addr);
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", harness_listener_port(r, "ingress"));
    for (int i = 0; i < 4; i++) {
        harness_resp_t resp;
        IT_ASSERT(harness_http_get(url, &resp) == 0 && resp.status == 200, "request %d: %ld %s", i,
                  resp.status, resp.error);
        harness_resp_free(&resp);
    }
    free(url);

    /* /clusters: per-host lines; round robin gave each backend host 2 requests */
    char *want[] = {
        harness_fmt("backend::127.0.0.1:%d::health_flags::healthy", g_u1),
        harness_fmt("backend::127.0.0.1:%d::health_flags::healthy", g_u2),
        harness_fmt("other::127.0.0.1:%d::health_flags::healthy", g_u3),
        harness_fmt("backend::127.0.0.1:%d::rq_total::2", g_u1),
        harness_fmt("backend::127.0.0.1:%d::rq_total::2", g_u2),
        harness_fmt("other::127.0.0.1:%d::rq_total::0", g_u3),
        harness_fmt("backend::127.0.0.1:%d::cx_active::1", g_u1),
        harness_fmt("backend::127.0.0.1:%d::cx_active::1", g_u2),
        harness_fmt("other::127.0.0.1:%d::cx_active::0", g_u3),
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    harness_resp_t resp = {0};
    size_t missing = nwant;
    int64_t deadline = harness_now_ms() + 3000;
    while (missing > 0 && harness_now_ms() < deadline) {
        harness_resp_free(&resp);
        IT_ASSERT(harness_admin_get(r, "/clusters", &resp) == 0 && resp.status == 200, "GET /clusters: %ld",
                  resp.status);
        missing = 0;
        for (size_t i = 0; i < nwant; i++)
            missing += !has_line(resp.body, want[i]);
    }
    for (size_t i = 0; i < nwant; i++) {
        IT_ASSERT(has_line(resp.body, want[i]), "/clusters lacks the line \"%s\"; it says:\n%s", want[i],
                  resp.body);
        free(want[i]);
    }
    harness_resp_free(&resp);

    /* /stats */
    struct {
        const char *name;
        uint64_t value;
    } stats[] = {
        {"cluster_manager.active_clusters", 2},
        {"cluster.backend.upstream_rq_total", 4},
        {"cluster.backend.upstream_rq_2xx", 4},
        {"cluster.backend.upstream_rq_active", 0},
        {"cluster.backend.upstream_cx_total", 2},
        {"cluster.backend.upstream_cx_active", 2},
        {"cluster.backend.upstream_cx_connect_fail", 0},
        {"cluster.other.upstream_rq_total", 0},
        {"http.ingress_http.downstream_rq_total", 4},
        {"http.ingress_http.downstream_rq_2xx", 4},
        {"http.ingress_http.downstream_rq_4xx", 0},
        {"http.ingress_http.downstream_rq_5xx", 0},
        {"http.ingress_http.no_route", 0},
        {"http.ingress_http.downstream_cx_active", 0},
    };
    for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
        IT_ASSERT(harness_wait_stat(r->admin, stats[i].name, HARNESS_EQ, stats[i].value, 3000) == 0,
                  "stat %s should be %llu", stats[i].name, (unsigned long long)stats[i].value);

    IT_ASSERT(harness_admin_get(r, "/stats", &resp) == 0 && resp.status == 200, "GET /stats");
    const char *line = resp.body;
    int lines = 0;
    while (*line != '\0') {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        const char *sep = memmem(line, len, ": ", 2);
        IT_ASSERT(sep != NULL && sep > line, "/stats line not \"name: value\": %.*s", (int)len, line);
        lines++;
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    IT_ASSERT(lines >= (int)(sizeof(stats) / sizeof(stats[0])), "/stats has only %d lines", lines);
    harness_resp_free(&resp);

    IT_ASSERT(harness_admin_get(r, "/ready", &resp) == 0 && resp.status == 200 &&
                  strcmp(resp.body, "LIVE\n") == 0,
              "/ready: %ld \"%s\"", resp.status, resp.body);
    harness_resp_free(&resp);

    /* --log-level warning: no info lines */
    char *log = harness_read_file(r->proc->stderr_path, NULL);
    IT_ASSERT(log != NULL && strstr(log, "][info][") == NULL && strstr(log, "][debug][") == NULL,
              "with --log-level warning remora logged info/debug lines:\n%s", log ? log : "");
    free(log);

    char *want_listener = harness_fmt("ingress::127.0.0.1:%d", harness_listener_port(r, "ingress"));
    IT_ASSERT(harness_admin_get(r, "/listeners", &resp) == 0 && has_line(resp.body, want_listener),
              "/listeners should list \"%s\": %s", want_listener, resp.body);
    free(want_listener);
    harness_resp_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_validate_good_file, test_teardown),
        cmocka_unit_test_teardown(test_validate_bad_duration, test_teardown),
        cmocka_unit_test_teardown(test_validate_unknown_field, test_teardown),
        cmocka_unit_test_teardown(test_validate_syntax_error_and_missing_file, test_teardown),
        cmocka_unit_test_teardown(test_admin_clusters_and_stats, test_teardown),
        cmocka_unit_test_teardown(test_quitquitquit, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_drains_inflight_request, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_ready_503_while_draining, test_teardown),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, group_setup, group_teardown);
}
