/* Bodies stream both ways with bounded memory: 100 MB uploads and downloads through the proxy
 * (Content-Length and chunked), verified byte by byte, with remora's peak RSS (VmHWM) asserted
 * under 64 MB; a slow reader must not make the proxy buffer the upstream's response; and
 * Expect: 100-continue gets 100 Continue before the body is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG          (100ull * 1024 * 1024)
#define HWM_LIMIT_KB (64l * 1024)

static harness_remora_t *g_remora;
static int g_port;
static int g_u1;
static long g_hwm_start_kb;

static int group_setup(void **state)
{
    g_u1 = harness_start_upstream("u1", NULL);
    if (g_u1 < 0)
        return -1;
    char *cluster = harness_yaml_cluster("backend", &g_u1, 1, NULL);
    harness_listener_spec_t listener = {
        .virtual_hosts = "[{name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, "
                         "route: {cluster: backend, timeout: 60s}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, &cluster, 1);
    free(cluster);
    g_remora = harness_start_remora(yaml, NULL);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    harness_proc_mem_kb(g_remora->proc->pid, NULL, &g_hwm_start_kb);
    fprintf(stderr, "remora VmHWM after start: %ld kB\n", g_hwm_start_kb);
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    long rss = 0, hwm = 0;
    if (g_remora != NULL && g_remora->proc->pid != 0 &&
        harness_proc_mem_kb(g_remora->proc->pid, &rss, &hwm) == 0)
        fprintf(stderr, "remora memory at the end: VmRSS %ld kB, VmHWM %ld kB (limit %ld kB)\n", rss, hwm,
                HWM_LIMIT_KB);
    harness_kill_all();
    return 0;
}

/* VmHWM is updated lazily by the kernel and can miss short peaks, so transfers also sample VmRSS
 * while they run (curl's progress callback, about every 10 ms). */
static void expect_bounded_sampled_rss(const harness_resp_t *resp, const char *what)
{
    fprintf(stderr, "%s: remora peak VmRSS sampled during the transfer: %ld kB (%ld samples)\n", what,
            resp->peak_rss_kb, resp->rss_samples);
    IT_ASSERT(resp->rss_samples > 0, "%s: no RSS samples taken", what);
    IT_ASSERT(resp->peak_rss_kb < HWM_LIMIT_KB, "%s: remora's RSS reached %ld kB, limit %ld kB", what,
              resp->peak_rss_kb, HWM_LIMIT_KB);
}

static void expect_bounded_memory(const char *after_what)
{
    long rss = 0, hwm = 0;
    IT_ASSERT(harness_proc_mem_kb(g_remora->proc->pid, &rss, &hwm) == 0, "cannot read /proc/%d/status",
              (int)g_remora->proc->pid);
    fprintf(stderr, "after %s: remora VmRSS %ld kB, VmHWM %ld kB\n", after_what, rss, hwm);
    IT_ASSERT(hwm < HWM_LIMIT_KB, "after %s remora's VmHWM is %ld kB, limit %ld kB", after_what, hwm,
              HWM_LIMIT_KB);
}

static void download(const char *path, const char *what)
{
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    harness_req_t req = {
        .url = url, .verify_pattern = true, .timeout_ms = 60000, .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    int rc = harness_http(&req, &resp);
    int64_t ms = harness_now_ms() - t0;
    IT_ASSERT(rc == 0, "%s: %s after %" PRIu64 " bytes", what, resp.error, resp.body_bytes);
    IT_ASSERT(resp.status == 200, "%s: status %ld", what, resp.status);
    IT_ASSERT(resp.body_bytes == BIG, "%s: got %" PRIu64 " bytes, expected %llu", what, resp.body_bytes, BIG);
    IT_ASSERT(resp.pattern_ok, "%s: content differs from the upstream's pattern", what);
    fprintf(stderr, "%s: %llu MB in %lld ms\n", what, BIG >> 20, (long long)ms);
    expect_bounded_sampled_rss(&resp, what);
    harness_resp_free(&resp);
    free(url);
    expect_bounded_memory(what);
}

static void upload(bool chunked, const char *what)
{
    char *url = harness_fmt("http://127.0.0.1:%d/sink", g_port);
    harness_req_t req = {.url = url,
                         .pattern_upload_len = BIG,
                         .chunked_upload = chunked,
                         .timeout_ms = 60000,
                         .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    int rc = harness_http(&req, &resp);
    int64_t ms = harness_now_ms() - t0;
    IT_ASSERT(rc == 0, "%s: %s", what, resp.error);
    IT_ASSERT(resp.status == 200, "%s: status %ld (%s)", what, resp.status, resp.body);
    char *want = harness_fmt("%llu 1", BIG);
    IT_ASSERT(strcmp(resp.body, want) == 0,
              "%s: the upstream reports \"%s\" (bytes, pattern ok), expected \"%s\"", what, resp.body, want);
    fprintf(stderr, "%s: %llu MB in %lld ms\n", what, BIG >> 20, (long long)ms);
    expect_bounded_sampled_rss(&resp, what);
    free(want);
    harness_resp_free(&resp);
    free(url);
    expect_bounded_memory(what);
}

static void test_download_content_length(void **state)
{
    char *path = harness_fmt("/bytes/%llu", BIG);
    download(path, "100 MB download (content-length)");
    free(path);
}

static void test_download_chunked(void **state)
{
    char *path = harness_fmt("/bytes/%llu?chunked=1", BIG);
    download(path, "100 MB download (chunked)");
    free(path);
}

static void test_upload_content_length(void **state)
{
    upload(false, "100 MB upload (content-length)");
}

static void test_upload_chunked(void **state)
{
    upload(true, "100 MB upload (chunked)");
}

/* The client reads 1 MB of a 100 MB response, then stops reading. A proxy that does not apply
 * backpressure to the upstream would pull the rest (the upstream can send it in well under a
 * second) into memory. We watch remora's RSS for a fixed observation window of 1.5 s (the window is
 * what is being measured, not a synchronisation), then read the rest and verify it. */
static void test_slow_reader_backpressure(void **state)
{
    int fd = harness_tcp_connect(g_port, 2000);
    IT_ASSERT(fd >= 0, "connect");
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    char *req = harness_fmt("GET /bytes/%llu HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", BIG);
    IT_ASSERT(harness_tcp_send(fd, req, (size_t)-1) == 0, "send");
    free(req);
    harness_buf_t buf = {0};
    harness_read_result_t rr = harness_tcp_read(fd, &buf, NULL, 1024 * 1024, 10000);
    IT_ASSERT(rr == HARNESS_READ_MATCH, "reading the first MB: %s after %zu bytes",
              harness_read_result_str(rr), buf.len);
    const char *body = strstr(buf.data, "\r\n\r\n");
    IT_ASSERT(harness_parse_status(buf.data) == 200 && body != NULL, "response head: %.200s", buf.data);
    size_t head_len = (size_t)(body - buf.data) + 4;
    uint64_t received = buf.len - head_len;
    bool ok = true;
    for (size_t i = head_len; i < buf.len && ok; i++)
        ok = buf.data[i] == (char)('a' + (i - head_len) % 26);
    IT_ASSERT(ok, "first MB differs from the pattern");
    harness_buf_free(&buf);

    long peak_rss = 0;
    int64_t end = harness_now_ms() + 1500;
    while (harness_now_ms() < end) {
        long rss = 0;
        if (harness_proc_mem_kb(g_remora->proc->pid, &rss, NULL) == 0 && rss > peak_rss)
            peak_rss = rss;
        IT_ASSERT(rss < HWM_LIMIT_KB, "remora's RSS reached %ld kB while the client was not reading", rss);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "slow reader: remora peak RSS while the client paused: %ld kB\n", peak_rss);

    /* read and verify the rest */
    char chunk[65536];
    int64_t deadline = harness_now_ms() + 30000;
    while (received < BIG && harness_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - harness_now_ms())) <= 0)
            continue;
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n > 0) {
            for (ssize_t i = 0; i < n && ok; i++)
                ok = chunk[i] == (char)('a' + (received + (uint64_t)i) % 26);
            received += (uint64_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            break;
        }
    }
    close(fd);
    IT_ASSERT(received == BIG && ok, "after the pause: %" PRIu64 " of %llu bytes, content %s", received, BIG,
              ok ? "ok" : "corrupt");
    expect_bounded_memory("slow reader");
}

static void test_expect_100_continue(void **state)
{
    int fd = harness_tcp_connect(g_port, 2000);
    IT_ASSERT(fd >= 0, "connect");
    IT_ASSERT(
        harness_tcp_send(fd,
                         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n"
                         "Connection: close\r\n\r\n",
                         (size_t)-1) == 0,
        "send headers");
    harness_buf_t buf = {0};
    harness_read_result_t rr = harness_tcp_read(fd, &buf, "\r\n\r\n", 0, 5000);
    IT_ASSERT(rr == HARNESS_READ_MATCH,
              "waiting for 100 Continue before sending the body: %s (%zu bytes: %s)",
              harness_read_result_str(rr), buf.len, buf.data);
    IT_ASSERT(harness_parse_status(buf.data) == 100, "first response should be 100 Continue, got: %.200s",
              buf.data);
    size_t interim_len = (size_t)(strstr(buf.data, "\r\n\r\n") - buf.data) + 4;
    IT_ASSERT(harness_tcp_send(fd, "hello world", 11) == 0, "send body");
    rr = harness_tcp_read(fd, &buf, NULL, 0, 5000);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET, "read final response: %s",
              harness_read_result_str(rr));
    const char *final = buf.data + interim_len;
    /* a forwarded upstream 100 Continue may precede the final response too */
    while (harness_parse_status(final) == 100 && strstr(final, "\r\n\r\n") != NULL)
        final = strstr(final, "\r\n\r\n") + 4;
    harness_msg_t msg;
    long n = harness_parse_response(final, buf.len - (size_t)(final - buf.data), false, &msg);
    IT_ASSERT(n > 0 && msg.status == 200, "final response: %.300s", final);
    IT_ASSERT(msg.body_len == 11 && memcmp(msg.body, "hello world", 11) == 0, "echoed body: %.*s",
              (int)msg.body_len, msg.body);
    harness_msg_free(&msg);
    harness_buf_free(&buf);
    close(fd);
}

int main(void)
{
    /* In an ASan build (REMORA_SANITIZE) freed memory sits in a quarantine of up to 256 MB, which
     * would make RSS meaningless; without the quarantine the bound still measures the proxy. Later
     * flags win, so a caller's ASAN_OPTIONS are kept. No effect on an uninstrumented remora. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *opts = harness_fmt("%s%squarantine_size_mb=0", asan != NULL ? asan : "",
                             asan != NULL && asan[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    free(opts);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expect_100_continue), cmocka_unit_test(test_download_content_length),
        cmocka_unit_test(test_download_chunked),    cmocka_unit_test(test_upload_content_length),
        cmocka_unit_test(test_upload_chunked),      cmocka_unit_test(test_slow_reader_backpressure),
    };
    return cmocka_run_group_tests_name("streaming", tests, group_setup, group_teardown);
}
