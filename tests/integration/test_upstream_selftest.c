/* Self-test of remora-test-upstream, without remora: the routes the proxy tests rely on, pipelining,
 * keep-alive connection numbering, and survival when clients vanish at awkward moments. */
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_port;
static harness_proc_t *g_proc;

static int group_setup(void **state)
{
    g_port = harness_start_upstream("self", &g_proc);
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    return 0;
}

static void get(const char *path, harness_resp_t *resp)
{
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    int rc = harness_http_get(url, resp);
    free(url);
    IT_ASSERT(rc == 0, "GET %s: %s", path, resp->error);
}

static void test_help(void **state)
{
    char *bin = harness_bin("remora-test-upstream");
    char *argv[] = {bin, "--help", NULL};
    harness_proc_t *p = harness_spawn("upstream-help", argv, NULL);
    int status;
    IT_ASSERT(p != NULL && harness_proc_wait(p, 5000, &status) == 0, "--help did not exit");
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "--help exit status");
    char *out = harness_read_file(p->stdout_path, NULL);
    IT_ASSERT(out != NULL && strstr(out, "--port-file") != NULL && strstr(out, "/close-mid") != NULL,
              "--help text: %s", out ? out : "(none)");
    free(out);
    free(bin);
}

static void test_routes(void **state)
{
    harness_resp_t r;
    get("/status/418", &r);
    char *id = harness_resp_header(&r, "x-upstream-id");
    char *conn = harness_resp_header(&r, "x-upstream-conn");
    IT_ASSERT(r.status == 418 && id != NULL && strcmp(id, "self") == 0 && conn != NULL && atoi(conn) > 0,
              "/status/418: %ld id %s conn %s", r.status, id, conn);
    free(id);
    free(conn);
    harness_resp_free(&r);

    get("/bytes/100?chunked=1", &r);
    char *te = harness_resp_header(&r, "transfer-encoding");
    IT_ASSERT(r.status == 200 && r.body_len == 100 && te != NULL && strcmp(te, "chunked") == 0 &&
                  memcmp(r.body, "abcdefghijklmnopqrstuvwxyzabcd", 30) == 0,
              "/bytes/100?chunked=1: %ld, %zu bytes, te %s", r.status, r.body_len, te);
    free(te);
    harness_resp_free(&r);

    get("/headers?x=1", &r);
    IT_ASSERT(strncmp(r.body, "GET /headers?x=1 HTTP/1.1\r\n", 27) == 0, "/headers body: %s", r.body);
    harness_resp_free(&r);

    get("/nope", &r);
    IT_ASSERT(r.status == 404, "/nope: %ld", r.status);
    harness_resp_free(&r);

    char *url = harness_fmt("http://127.0.0.1:%d/sink", g_port);
    harness_req_t bad = {.url = url, .body = "abcX", .body_len = 4};
    IT_ASSERT(harness_http(&bad, &r) == 0 && strcmp(r.body, "4 0") == 0, "/sink with a non-pattern body: %s",
              r.body);
    harness_resp_free(&r);
    harness_req_t good = {.url = url, .pattern_upload_len = 1000001, .chunked_upload = true};
    IT_ASSERT(harness_http(&good, &r) == 0 && strcmp(r.body, "1000001 1") == 0, "/sink chunked pattern: %s",
              r.body);
    harness_resp_free(&r);
    free(url);

    int64_t t0 = harness_now_ms();
    get("/delay/200", &r);
    IT_ASSERT(r.status == 200 && harness_now_ms() - t0 >= 200, "/delay/200 answered after %lld ms",
              (long long)(harness_now_ms() - t0));
    harness_resp_free(&r);
}

static void test_failure_routes(void **state)
{
    harness_buf_t b = {0};
    const char *req = "GET /reset HTTP/1.1\r\nHost: x\r\n\r\n";
    harness_read_result_t rr = harness_tcp_exchange(g_port, req, strlen(req), 3000, &b);
    IT_ASSERT((rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET) && b.len == 0, "/reset: %s, %zu bytes",
              harness_read_result_str(rr), b.len);
    harness_buf_free(&b);

    req = "GET /garbage HTTP/1.1\r\nHost: x\r\n\r\n";
    rr = harness_tcp_exchange(g_port, req, strlen(req), 3000, &b);
    IT_ASSERT(rr == HARNESS_READ_EOF && strcmp(b.data, "NOT HTTP AT ALL\r\n\r\n") == 0, "/garbage: %s",
              b.data);
    harness_buf_free(&b);

    req = "GET /close-mid HTTP/1.1\r\nHost: x\r\n\r\n";
    rr = harness_tcp_exchange(g_port, req, strlen(req), 3000, &b);
    const char *body = strstr(b.data, "\r\n\r\n");
    IT_ASSERT(rr == HARNESS_READ_EOF && harness_parse_status(b.data) == 200 &&
                  strstr(b.data, "content-length: 1000") && body != NULL &&
                  strcmp(body + 4, "0123456789") == 0,
              "/close-mid: %s", b.data);
    harness_buf_free(&b);
}

static void test_pipelining_and_keepalive(void **state)
{
    const char *reqs =
        "GET /delay/100 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "GET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    harness_buf_t b = {0};
    harness_read_result_t rr = harness_tcp_exchange(g_port, reqs, strlen(reqs), 5000, &b);
    IT_ASSERT(rr == HARNESS_READ_EOF, "pipeline: %s", harness_read_result_str(rr));
    int want[] = {200, 200, 202};
    size_t off = 0;
    char first_conn[16] = "";
    for (int i = 0; i < 3; i++) {
        harness_msg_t m;
        long n = harness_parse_response(b.data + off, b.len - off, false, &m);
        IT_ASSERT(n > 0 && m.status == want[i], "pipelined response %d: %.200s", i, b.data + off);
        if (i == 1)
            IT_ASSERT(m.chunked && m.body_len == 3 && memcmp(m.body, "abc", 3) == 0, "chunked echo");
        char *conn = harness_msg_header(&m, "x-upstream-conn");
        if (i == 0)
            snprintf(first_conn, sizeof(first_conn), "%s", conn);
        IT_ASSERT(strcmp(conn, first_conn) == 0, "one connection, one serial: %s vs %s", conn, first_conn);
        free(conn);
        harness_msg_free(&m);
        off += (size_t)n;
    }
    harness_buf_free(&b);
}

/* Clients vanish mid-request-body, mid-delay, mid-download and with a half-sent head; the
 * upstream keeps serving and its memory stays small. */
static void test_survives_vanishing_clients(void **state)
{
    for (int i = 0; i < 20; i++) {
        int fd = harness_tcp_connect(g_port, 2000);
        IT_ASSERT(fd >= 0, "connect");
        const char *msgs[] = {
            "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabcdef",
            "GET /delay/5000 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /bytes/100000000 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /status/200 HTTP/1.1\r\nHo",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        };
        harness_tcp_send(fd, msgs[i % 5], (size_t)-1);
        if (i % 5 == 2) {
            harness_buf_t b = {0};
            harness_tcp_read(fd, &b, NULL, 100000, 3000);
            harness_buf_free(&b);
        }
        if (i % 2 == 0) { /* abortive close (RST) half of the time */
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fd);
    }
    harness_resp_t r;
    get("/status/200", &r);
    IT_ASSERT(r.status == 200, "upstream still serving: %ld", r.status);
    harness_resp_free(&r);
    IT_ASSERT(harness_proc_alive(g_proc), "the upstream died");
    long rss = 0;
    IT_ASSERT(harness_proc_mem_kb(g_proc->pid, &rss, NULL) == 0 && rss < 32 * 1024, "upstream RSS %ld kB",
              rss);
}

static void test_port_file_and_sigterm(void **state)
{
    char *pf = harness_path("sigterm.port");
    char *bin = harness_bin("remora-test-upstream");
    char *argv[] = {bin, "--listen", "127.0.0.1:0", "--id", "t", "--port-file", pf, NULL};
    harness_proc_t *p = harness_spawn("upstream-sigterm", argv, NULL);
    IT_ASSERT(p != NULL && harness_wait_file(pf, 5000) == 0, "port file");
    char *s = harness_read_file(pf, NULL);
    IT_ASSERT(s != NULL && atoi(s) > 0 && s[strlen(s) - 1] == '\n', "port file content: %s",
              s ? s : "(none)");
    free(s);
    int status;
    IT_ASSERT(harness_proc_terminate(p, SIGTERM, 3000, &status) == 0 && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 0,
              "SIGTERM exit");
    char *bad_argv[] = {bin, "--listen", "nonsense", NULL};
    p = harness_spawn("upstream-badarg", bad_argv, NULL);
    IT_ASSERT(p != NULL && harness_proc_wait(p, 3000, &status) == 0 && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 2,
              "bad --listen should exit 2");
    free(bin);
    free(pf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_failure_routes),
        cmocka_unit_test(test_pipelining_and_keepalive),
        cmocka_unit_test(test_survives_vanishing_clients),
        cmocka_unit_test(test_port_file_and_sigterm),
    };
    return cmocka_run_group_tests_name("upstream_selftest", tests, group_setup, group_teardown);
}
