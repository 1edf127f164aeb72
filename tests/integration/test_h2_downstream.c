/* HTTP/2 from the client side (h2c with prior knowledge) to HTTP/1.1 upstreams: one plaintext
 * listener serves both protocols; h2 requests are translated (pseudo-headers -> request line and
 * Host, DATA -> Content-Length or chunked, chunked trailers -> HTTP/2 trailers); nghttp multiplexes
 * streams and sees the configured SETTINGS; 100 MB bodies go both ways with remora's RSS bounded;
 * a client uploading to an upstream that stops reading is stalled by flow control instead of being
 * buffered; the abuse cases (tests/integration/h2_abuse.py with python3-h2) end the offending
 * connection with GOAWAY while other connections keep working. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG          (100ull * 1024 * 1024)
#define HWM_LIMIT_KB (64l * 1024)

static harness_remora_t *g_remora;
static int g_port;
static int g_u1;
static int g_stall_fd = -1; /* a listening socket nobody accepts or reads: the "stalled" upstream */
static int g_stall_port;
static char *g_log_path;

static int listen_never_read(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, len) != 0 || listen(fd, 16) != 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    g_stall_fd = fd;
    return ntohs(sin.sin_port);
}

static int group_setup(void **state)
{
    (void)state;
    g_u1 = harness_start_upstream("u1", NULL);
    g_stall_port = listen_never_read();
    if (g_u1 < 0 || g_stall_port < 0)
        return -1;
    char *clusters[2] = {harness_yaml_cluster("backend", &g_u1, 1, NULL),
                         harness_yaml_cluster("stalled", &g_stall_port, 1, NULL)};
    g_log_path = harness_path("access.log");
    harness_listener_spec_t listener = {
        .access_log_path = g_log_path,
        .hcm_extra =
            "http2_protocol_options: {max_concurrent_streams: 50, initial_stream_window_size: 65535, "
            "initial_connection_window_size: 1048576}\n"
            "max_request_headers_kb: 8\n"
            "request_headers_timeout: 2s",
        .virtual_hosts = "[{name: all, domains: [\"*\"], routes: ["
                         "{match: {prefix: \"/stalled\"}, route: {cluster: stalled, timeout: 0s}}, "
                         "{match: {prefix: \"/\"}, route: {cluster: backend, timeout: 60s}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 2);
    free(clusters[0]);
    free(clusters[1]);
    g_remora = harness_start_remora(yaml, NULL);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    long rss = 0, hwm = 0;
    if (g_remora != NULL && g_remora->proc->pid != 0 &&
        harness_proc_mem_kb(g_remora->proc->pid, &rss, &hwm) == 0)
        fprintf(stderr, "remora memory at the end: VmRSS %ld kB, VmHWM %ld kB (limit %ld kB)\n", rss, hwm,
                HWM_LIMIT_KB);
    harness_kill_all();
    if (g_stall_fd >= 0)
        close(g_stall_fd);
    free(g_log_path);
    return 0;
}

static uint64_t stat_of(const char *name)
{
    uint64_t v = 0;
    IT_ASSERT(harness_stat(g_remora->admin, name, &v) == 0, "stat %s missing", name);
    return v;
}

/* A plain h2 GET that must succeed: proves the listener still serves other connections. */
static void expect_h2_get_ok(const char *what)
{
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    harness_req_t req = {.url = url, .http2 = true};
    harness_resp_t resp;
    int rc = harness_http(&req, &resp);
    IT_ASSERT(rc == 0 && resp.status == 200, "%s: h2 GET failed: rc %d status %ld %s", what, rc, resp.status,
              resp.error);
    harness_resp_free(&resp);
    free(url);
}

static void test_h2c_and_h1_on_one_listener(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/headers?x=1", g_port);
    const char *const hdrs[] = {"X-Custom: a", "Cookie: a=1", "Cookie: b=2", NULL};
    harness_req_t req = {.url = url, .http2 = true, .headers = hdrs};
    harness_resp_t resp;
    IT_ASSERT(harness_http(&req, &resp) == 0, "h2 GET: %s", resp.error);
    IT_ASSERT(resp.status == 200, "status %ld", resp.status);
    IT_ASSERT(strstr(resp.headers, "HTTP/2 200") != NULL, "not answered over HTTP/2: %s", resp.headers);
    /* The upstream saw an HTTP/1.1 request line, a Host from :authority and no pseudo-headers. */
    IT_ASSERT(strncmp(resp.body, "GET /headers?x=1 HTTP/1.1\r\n", 27) == 0, "request line: %s", resp.body);
    char *host = harness_fmt("host: 127.0.0.1:%d\r\n", g_port);
    IT_ASSERT(strstr(resp.body, host) != NULL, "no Host from :authority: %s", resp.body);
    IT_ASSERT(strstr(resp.body, ":authority") == NULL && strstr(resp.body, ":path") == NULL,
              "pseudo-header leaked upstream: %s", resp.body);
    IT_ASSERT(strstr(resp.body, "x-custom: a\r\n") != NULL, "custom header lost: %s", resp.body);
    IT_ASSERT(strstr(resp.body, "x-forwarded-proto: http") != NULL, "x-forwarded-proto: %s", resp.body);
    free(host);
    harness_resp_free(&resp);

    harness_req_t req1 = {.url = url};
    IT_ASSERT(harness_http(&req1, &resp) == 0 && resp.status == 200, "h1 GET on the same listener: %s",
              resp.error);
    IT_ASSERT(strstr(resp.headers, "HTTP/1.1 200") != NULL, "h1 answer: %s", resp.headers);
    harness_resp_free(&resp);
    free(url);

    IT_ASSERT(harness_wait_stat(g_remora->admin, "http.ingress_http.downstream_cx_http2_total", HARNESS_GE, 1,
                                10000) == 0,
              "h2 connection not counted");
    IT_ASSERT(stat_of("http.ingress_http.downstream_cx_http1_total") >= 1, "h1 connection not counted");
    IT_ASSERT(stat_of("http.ingress_http.downstream_rq_http2_total") >= 1, "h2 request not counted");
    char *line = harness_wait_line_containing(g_log_path, "\"GET /headers?x=1 HTTP/2\"", 10000);
    IT_ASSERT(line != NULL, "no access log line with protocol HTTP/2");
    free(line);
}

static void test_h2_cookie_crumbs_joined(void **state)
{
    (void)state;
    /* nghttp sends every cookie as its own field (as HTTP/2 allows); an HTTP/1.1 upstream must get one
     * Cookie line joined with "; " (RFC 9113 8.2.3). */
    char *url = harness_fmt("http://127.0.0.1:%d/headers", g_port);
    char *out = harness_path("nghttp-cookie.out");
    char *cmd = harness_fmt("nghttp -H 'cookie: a=1' -H 'cookie: b=2' '%s' > '%s' 2>&1", url, out);
    int rc = system(cmd);
    IT_ASSERT(rc == 0, "nghttp failed (%d)", rc);
    char *body = harness_read_file(out, NULL);
    IT_ASSERT(body != NULL && strstr(body, "cookie: a=1; b=2\r\n") != NULL, "cookies not joined: %s",
              body ? body : "(none)");
    free(body);
    free(cmd);
    free(out);
    free(url);
}

static void test_nghttp_multiplexes_with_configured_settings(void **state)
{
    (void)state;
    uint64_t cx_before = stat_of("http.ingress_http.downstream_cx_http2_total");
    char *url = harness_fmt("http://127.0.0.1:%d/delay/50", g_port);
    char *out = harness_path("nghttp-multi.out");
    /* Ten URLs on one connection, all in flight at once (-m repeats the request). */
    char *cmd = harness_fmt("nghttp -nv -m 10 '%s' > '%s' 2>&1", url, out);
    int rc = system(cmd);
    IT_ASSERT(rc == 0, "nghttp failed (%d)", rc);
    char *log = harness_read_file(out, NULL);
    IT_ASSERT(log != NULL, "no nghttp output");
    IT_ASSERT(strstr(log, "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):50") != NULL, "max_concurrent_streams: %s",
              log);
    IT_ASSERT(strstr(log, "SETTINGS_INITIAL_WINDOW_SIZE(0x04):65535") != NULL, "initial window: %s", log);
    IT_ASSERT(strstr(log, "SETTINGS_MAX_HEADER_LIST_SIZE(0x06):8192") != NULL, "header list size: %s", log);
    size_t ok = harness_count(log, ":status: 200");
    IT_ASSERT(ok == 10, "%zu of 10 streams answered 200", ok);
    IT_ASSERT(stat_of("http.ingress_http.downstream_cx_http2_total") == cx_before + 1,
              "the ten streams did not share one connection");
    free(log);
    free(cmd);
    free(out);
    free(url);
}

static void test_h1_chunked_trailers_become_h2_trailers(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/bytes/1000?chunked=1&trailers=1", g_port);
    char *out = harness_path("nghttp-trailers.out");
    char *cmd = harness_fmt("nghttp -nv '%s' > '%s' 2>&1", url, out);
    IT_ASSERT(system(cmd) == 0, "nghttp failed");
    char *log = harness_read_file(out, NULL);
    IT_ASSERT(log != NULL && strstr(log, "x-bytes-sent: 1000") != NULL, "trailer missing: %s", log);
    /* The trailer arrives in a HEADERS frame that ends the stream, after the DATA. */
    const char *tr = strstr(log, "x-bytes-sent: 1000");
    IT_ASSERT(strstr(tr, "END_STREAM | END_HEADERS") != NULL, "trailers not in a final HEADERS frame: %s",
              log);
    IT_ASSERT(strstr(log, "transfer-encoding") == NULL, "connection-specific header forwarded: %s", log);
    IT_ASSERT(stat_of("http.ingress_http.http2.trailers") >= 1, "trailers not counted");
    free(log);
    free(cmd);
    free(out);
    free(url);
}

static void test_h2_large_download_bounded(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/bytes/%llu", g_port, BIG);
    harness_req_t req = {.url = url,
                         .http2 = true,
                         .verify_pattern = true,
                         .timeout_ms = 120000,
                         .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    IT_ASSERT(harness_http(&req, &resp) == 0, "download: %s after %" PRIu64 " bytes", resp.error,
              resp.body_bytes);
    IT_ASSERT(resp.status == 200 && resp.body_bytes == BIG && resp.pattern_ok,
              "download: status %ld, %" PRIu64 " bytes, pattern %d", resp.status, resp.body_bytes,
              resp.pattern_ok);
    fprintf(stderr, "h2 download 100 MB in %lld ms, peak VmRSS %ld kB (%ld samples)\n",
            (long long)(harness_now_ms() - t0), resp.peak_rss_kb, resp.rss_samples);
    IT_ASSERT(resp.rss_samples > 0 && resp.peak_rss_kb < HWM_LIMIT_KB, "RSS %ld kB", resp.peak_rss_kb);
    harness_resp_free(&resp);
    free(url);
}

static void upload(bool known_length, const char *what)
{
    char *url = harness_fmt("http://127.0.0.1:%d/sink", g_port);
    /* chunked_upload with HTTP/2 means "no content-length": DATA frames until END_STREAM, which the
     * proxy forwards to the HTTP/1.1 upstream with chunked encoding. */
    harness_req_t req = {.url = url,
                         .http2 = true,
                         .pattern_upload_len = BIG,
                         .chunked_upload = !known_length,
                         .timeout_ms = 120000,
                         .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    IT_ASSERT(harness_http(&req, &resp) == 0, "%s: %s", what, resp.error);
    IT_ASSERT(resp.status == 200, "%s: status %ld", what, resp.status);
    char *want = harness_fmt("%llu 1", BIG);
    IT_ASSERT(strcmp(resp.body, want) == 0, "%s: upstream saw %s, expected %s", what, resp.body, want);
    fprintf(stderr, "%s: 100 MB in %lld ms, peak VmRSS %ld kB (%ld samples)\n", what,
            (long long)(harness_now_ms() - t0), resp.peak_rss_kb, resp.rss_samples);
    IT_ASSERT(resp.rss_samples > 0 && resp.peak_rss_kb < HWM_LIMIT_KB, "%s: RSS %ld kB", what,
              resp.peak_rss_kb);
    free(want);
    harness_resp_free(&resp);
    free(url);
}

static void test_h2_large_upload_bounded(void **state)
{
    (void)state;
    upload(true, "h2 upload with content-length");
    upload(false, "h2 upload without content-length");
}

/* Runs tests/integration/h2_abuse.py CASE against the listener; returns its stdout (caller frees)
 * after asserting it exited 0. */
static char *run_abuse_arg(const char *casename, const char *extra);

static char *run_abuse(const char *casename)
{
    return run_abuse_arg(casename, NULL);
}

/* extra: a fourth argument for the cases that need one (NULL: none). */
static char *run_abuse_arg(const char *casename, const char *extra)
{
    const char *src = getenv("REMORA_SOURCE_DIR");
    IT_ASSERT(src != NULL, "REMORA_SOURCE_DIR not set");
    char *script = harness_fmt("%s/tests/integration/h2_abuse.py", src);
    char *port = harness_fmt("%d", g_port);
    char *name = harness_fmt("abuse-%s", casename);
    char *argv[] = {"/usr/bin/python3", script, (char *)casename, "127.0.0.1", port, (char *)extra, NULL};
    harness_proc_t *p = harness_spawn(name, argv, NULL);
    IT_ASSERT(p != NULL, "cannot run %s", script);
    int status = 0;
    IT_ASSERT(harness_proc_wait(p, 120000, &status) == 0, "%s did not finish", casename);
    char *out = harness_read_file(p->stdout_path, NULL);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        harness_dump_stderr(p, 4000);
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed: %s", casename, out ? out : "");
    fprintf(stderr, "%s: %s", casename, out ? out : "");
    free(script);
    free(port);
    free(name);
    return out;
}

static void test_upload_to_stalled_upstream_is_flow_controlled(void **state)
{
    (void)state;
    long rss0 = 0;
    harness_proc_mem_kb(g_remora->proc->pid, &rss0, NULL);
    /* The script uploads up to 256 MB to an upstream that never reads and reports how far it got
     * before the windows stayed closed (no WINDOW_UPDATE for a while). */
    char *out = run_abuse("stall_upload");
    unsigned long long sent = 0;
    IT_ASSERT(sscanf(out, "sent %llu", &sent) == 1, "unexpected output: %s", out);
    /* What can be in flight: the client's windows (64 KiB stream, 1 MiB connection), remora's buffer
     * limit (1 MiB) and the kernel's socket buffers on both legs (a few MB on loopback). */
    IT_ASSERT(sent < 32ull * 1024 * 1024, "client sent %llu bytes to an upstream that reads nothing", sent);
    long rss = 0;
    harness_proc_mem_kb(g_remora->proc->pid, &rss, NULL);
    IT_ASSERT(rss < HWM_LIMIT_KB, "remora RSS %ld kB (was %ld kB)", rss, rss0);
    free(out);
    expect_h2_get_ok("after the stalled upload");
}

static void abuse_case(const char *casename, const char *stat, const char *what)
{
    uint64_t before = stat ? stat_of(stat) : 0;
    char *out = run_abuse(casename);
    IT_ASSERT(strstr(out, "closed") != NULL, "%s: connection not closed: %s", what, out);
    if (stat != NULL)
        IT_ASSERT(harness_wait_stat(g_remora->admin, stat, HARNESS_GE, before + 1, 10000) == 0,
                  "%s: %s not counted", what, stat);
    free(out);
    expect_h2_get_ok(what);
    long rss = 0;
    harness_proc_mem_kb(g_remora->proc->pid, &rss, NULL);
    IT_ASSERT(rss < HWM_LIMIT_KB, "%s: remora RSS %ld kB", what, rss);
}

static void test_abuse_rapid_reset(void **state)
{
    (void)state;
    abuse_case("rapid_reset", "http.ingress_http.http2.rapid_reset", "rapid reset");
}

static void test_abuse_continuation_flood(void **state)
{
    (void)state;
    abuse_case("continuation_flood", "http.ingress_http.downstream_cx_protocol_error", "CONTINUATION flood");
}

static void test_abuse_ping_flood(void **state)
{
    (void)state;
    abuse_case("ping_flood", "http.ingress_http.http2.outbound_control_flood", "PING flood");
}

static void test_abuse_settings_flood(void **state)
{
    (void)state;
    abuse_case("settings_flood", "http.ingress_http.http2.outbound_control_flood", "SETTINGS flood");
}

static void test_abuse_empty_data_flood(void **state)
{
    (void)state;
    abuse_case("empty_data_flood", "http.ingress_http.http2.inbound_empty_frames_flood", "empty DATA flood");
}

static void test_abuse_hpack_bomb(void **state)
{
    (void)state;
    abuse_case("hpack_bomb", "http.ingress_http.http2.header_overflow", "HPACK bomb");
}

static void test_oversized_header_list_gets_431(void **state)
{
    (void)state;
    uint64_t before = stat_of("http.ingress_http.http2.header_overflow");
    char *out = run_abuse("oversized_headers");
    /* Over the limit but not absurdly: that stream is refused, the connection carries on. */
    IT_ASSERT(strstr(out, "status 431") != NULL, "no 431: %s", out);
    IT_ASSERT(strstr(out, "second 200") != NULL, "connection unusable after the 431: %s", out);
    IT_ASSERT(stat_of("http.ingress_http.http2.header_overflow") >= before + 1,
              "header_overflow not counted");
    free(out);
}

static void test_max_concurrent_streams_enforced(void **state)
{
    (void)state;
    /* 80 streams at once, after acknowledging SETTINGS that allow 50: nghttp2 treats the excess as a
     * connection error (RFC 9113 5.1.2 allows that or refusing the streams): GOAWAY PROTOCOL_ERROR. */
    char *out = run_abuse("too_many_streams");
    IT_ASSERT(strstr(out, "closed goaway=1") != NULL, "expected GOAWAY PROTOCOL_ERROR: %s", out);
    free(out);
    expect_h2_get_ok("after too many streams");
}

static void test_slow_reader_closes_the_window(void **state)
{
    (void)state;
    /* A client that never acknowledges DATA gets one stream window (64 KiB here) of a 200 MB
     * response; the upstream is paused instead of remora buffering the rest. */
    char *pid = harness_fmt("%d", (int)g_remora->proc->pid);
    char *out = run_abuse_arg("stall_download", pid);
    unsigned long long received = 0;
    long rss = 0;
    IT_ASSERT(sscanf(out, "received %llu rss_kb %ld", &received, &rss) == 2, "unexpected output: %s", out);
    IT_ASSERT(received > 0 && received <= 65535, "client received %llu bytes without acknowledging any",
              received);
    IT_ASSERT(rss > 0 && rss < HWM_LIMIT_KB, "remora RSS %ld kB while the client stalls", rss);
    free(out);
    free(pid);
    expect_h2_get_ok("after the stalled download");
}

static void test_open_header_block_times_out(void **state)
{
    (void)state;
    /* HEADERS without END_HEADERS and nothing after: the connection is closed after
     * request_headers_timeout (2 s here) instead of being held forever. */
    abuse_case("slow_headers", "http.ingress_http.downstream_rq_header_timeout", "open header block");
}

/* Last: shuts remora down (SIGTERM, graceful). */
static void test_drain_sends_goaway_and_finishes_streams(void **state)
{
    (void)state;
    char *arg = harness_fmt("%d@%s", (int)g_remora->proc->pid, g_remora->admin);
    char *out = run_abuse_arg("drain", arg);
    free(arg);
    /* GOAWAY with NO_ERROR naming stream 1, and stream 1 still answered. */
    IT_ASSERT(strstr(out, "goaway 0 last 1 status 200") != NULL, "unexpected: %s", out);
    int status = 0;
    IT_ASSERT(harness_proc_wait(g_remora->proc, 20000, &status) == 0, "remora did not exit after draining");
    IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "remora exit status %d", status);
    free(out);
}

int main(void)
{
    /* As in test_streaming.c: without ASan's quarantine, RSS in a sanitizer build still measures the
     * proxy's buffering. No effect on an uninstrumented remora. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *opts = harness_fmt("%s%squarantine_size_mb=0", asan != NULL ? asan : "",
                             asan != NULL && asan[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    free(opts);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h2c_and_h1_on_one_listener),
        cmocka_unit_test(test_h2_cookie_crumbs_joined),
        cmocka_unit_test(test_nghttp_multiplexes_with_configured_settings),
        cmocka_unit_test(test_h1_chunked_trailers_become_h2_trailers),
        cmocka_unit_test(test_h2_large_download_bounded),
        cmocka_unit_test(test_h2_large_upload_bounded),
        cmocka_unit_test(test_upload_to_stalled_upstream_is_flow_controlled),
        cmocka_unit_test(test_abuse_rapid_reset),
        cmocka_unit_test(test_abuse_continuation_flood),
        cmocka_unit_test(test_abuse_ping_flood),
        cmocka_unit_test(test_abuse_settings_flood),
        cmocka_unit_test(test_abuse_empty_data_flood),
        cmocka_unit_test(test_abuse_hpack_bomb),
        cmocka_unit_test(test_oversized_header_list_gets_431),
        cmocka_unit_test(test_max_concurrent_streams_enforced),
        cmocka_unit_test(test_slow_reader_closes_the_window),
        cmocka_unit_test(test_open_header_block_times_out),
        cmocka_unit_test(test_drain_sends_goaway_and_finishes_streams),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
