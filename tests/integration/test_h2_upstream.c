/* HTTP/2 towards the upstream: h1->h2 and h2->h2 through clusters that select HTTP/2 the Envoy way
 * (typed_extension_protocol_options HttpProtocolOptions explicit_http_config, and the older
 * cluster-level http2_protocol_options), against nghttpd (Debian's nghttp2-server) as the origin:
 * bodies both ways with bounded RSS, trailers end to end, streams multiplexed over few connections
 * (a new one only at max_concurrent_streams), GOAWAY drained gracefully (python3-h2 origin that
 * sends GOAWAY with every answer), and gRPC through the proxy with real grpc C-core peers: remora-cp
 * (server) with remora-cpctl (unary calls, also an error status) and a second remora whose ADS
 * stream (bidirectional streaming) runs through the first one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG          (64ull * 1024 * 1024)
#define HWM_LIMIT_KB (64l * 1024)
#define H2_OPTS                                                                                              \
    "typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: "            \
    "{\"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, "               \
    "explicit_http_config: {http2_protocol_options: {max_concurrent_streams: %d}}}}"

static harness_remora_t *g_remora;
static int g_port;
static int g_origin; /* nghttpd */
static int g_goaway; /* h2_upstream.py */
static harness_cp_t *g_cp;
static int g_refused_fd[1] = {-1};
static char *g_docroot;

/* A harness cluster (flow mapping) with extra fields appended. */
static char *cluster_with(const char *name, int port, const char *extra)
{
    char *c = harness_yaml_cluster(name, &port, 1, NULL);
    size_t n = strlen(c);
    c[n - 1] = '\0'; /* drop the closing brace */
    char *out = harness_fmt("%s, %s}", c, extra);
    free(c);
    return out;
}

static int write_pattern_file(const char *path, uint64_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    char buf[26 * 2520]; /* a multiple of 26: every block continues the pattern */
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + i % 26);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        if (fwrite(buf, 1, n, f) != n) {
            fclose(f);
            return -1;
        }
        off += n;
    }
    return fclose(f);
}

static int start_nghttpd(void)
{
    g_docroot = harness_path("docroot");
    mkdir(g_docroot, 0755);
    char *small = harness_fmt("%s/small", g_docroot);
    char *big = harness_fmt("%s/big", g_docroot);
    int rc = harness_write_file(small, "hello from nghttpd\n", (size_t)-1) | write_pattern_file(big, BIG);
    free(small);
    free(big);
    if (rc != 0)
        return -1;
    int port = harness_free_port();
    char *p = harness_fmt("%d", port);
    char *argv[] = {"/usr/sbin/nghttpd",      "--no-tls", "-d", g_docroot, "--trailer",
                    "x-origin-trailer: done", p,          NULL};
    harness_proc_t *proc = harness_spawn("nghttpd", argv, NULL);
    free(p);
    if (proc == NULL)
        return -1;
    return harness_wait_port(port, 10000) == 0 ? port : -1;
}

static int start_goaway_origin(void)
{
    const char *src = getenv("REMORA_SOURCE_DIR");
    char *script = harness_fmt("%s/tests/integration/h2_upstream.py", src ? src : ".");
    char *port_file = harness_path("goaway.port");
    char *argv[] = {"/usr/bin/python3", script, port_file, NULL};
    harness_proc_t *proc = harness_spawn("h2-goaway-origin", argv, NULL);
    int port = -1;
    if (proc != NULL && harness_wait_file(port_file, 10000) == 0) {
        char *s = harness_read_file(port_file, NULL);
        port = s ? atoi(s) : -1;
        free(s);
    }
    free(script);
    free(port_file);
    return port;
}

static int group_setup(void **state)
{
    (void)state;
    g_origin = start_nghttpd();
    g_goaway = start_goaway_origin();
    /* "cdsh2" selects HTTP/2 over CDS (remora-cp passes typed_extension_protocol_options through). */
    char *snap = harness_fmt("clusters:\n"
                             "- name: through\n"
                             "  connect_timeout: 1s\n"
                             "  endpoints:\n"
                             "  - {address: 127.0.0.1:9}\n"
                             "- name: cdsh2\n"
                             "  connect_timeout: 1s\n"
                             "  " H2_OPTS "\n"
                             "  endpoints:\n"
                             "  - {address: 127.0.0.1:%d}\n",
                             10, g_origin);
    g_cp = harness_start_cp(snap, 0);
    free(snap);
    if (g_origin < 0 || g_goaway < 0 || g_cp == NULL)
        return -1;
    int refused = harness_refused_port(g_refused_fd);
    if (refused < 0)
        return -1;
    char *opts1 = harness_fmt(H2_OPTS, 100);
    char *opts2 = harness_fmt(H2_OPTS, 2);
    char *clusters[] = {
        cluster_with("h2", g_origin, opts1),
        cluster_with("h2narrow", g_origin, opts2),
        /* the older cluster-level field */
        cluster_with("goaway", g_goaway, "http2_protocol_options: {}"),
        cluster_with("cp", g_cp->port, opts1),
        cluster_with("h2dead", refused, opts1),
    };
    harness_listener_spec_t listener = {
        .virtual_hosts =
            "[{name: narrow, domains: [\"narrow\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "
            "h2narrow, timeout: 60s}}]},"
            " {name: dead, domains: [\"dead\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "
            "h2dead}}]},"
            " {name: goaway, domains: [\"goaway\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "
            "goaway, timeout: 10s}}]},"
            " {name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: h2, "
            "timeout: 60s}}]}]",
    };
    harness_listener_spec_t grpc = {
        .name = "grpc",
        .stat_prefix = "grpc",
        /* Long-lived streams (ADS): no route timeout. */
        .virtual_hosts =
            "[{name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: cp, "
            "timeout: 0s}}]}]",
    };
    harness_listener_spec_t listeners[] = {listener, grpc};
    char *yaml = harness_yaml_bootstrap(listeners, 2, clusters, sizeof(clusters) / sizeof(clusters[0]));
    for (size_t i = 0; i < sizeof(clusters) / sizeof(clusters[0]); i++)
        free(clusters[i]);
    free(opts1);
    free(opts2);
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
        fprintf(stderr, "remora memory at the end: VmRSS %ld kB, VmHWM %ld kB\n", rss, hwm);
    harness_kill_all();
    harness_close_fds(g_refused_fd, 1);
    free(g_docroot);
    return 0;
}

static uint64_t stat_of(const char *name)
{
    uint64_t v = 0;
    IT_ASSERT(harness_stat(g_remora->admin, name, &v) == 0, "stat %s missing", name);
    return v;
}

static void get_small(bool h2)
{
    char *url = harness_fmt("http://127.0.0.1:%d/small", g_port);
    harness_req_t req = {.url = url, .http2 = h2};
    harness_resp_t resp;
    IT_ASSERT(harness_http(&req, &resp) == 0, "%s GET: %s", h2 ? "h2" : "h1", resp.error);
    IT_ASSERT(resp.status == 200, "status %ld: %s", resp.status, resp.body);
    IT_ASSERT(strcmp(resp.body, "hello from nghttpd\n") == 0, "body: %s", resp.body);
    char *server = harness_resp_header(&resp, "server");
    IT_ASSERT(server != NULL && strstr(server, "nghttpd") != NULL, "not served by nghttpd: %s",
              server ? server : "(none)");
    free(server);
    IT_ASSERT(strstr(resp.headers, h2 ? "HTTP/2 200" : "HTTP/1.1 200") != NULL, "downstream protocol: %s",
              resp.headers);
    harness_resp_free(&resp);
    free(url);
}

static void test_h1_to_h2_and_h2_to_h2(void **state)
{
    (void)state;
    get_small(false);
    get_small(true);
    IT_ASSERT(stat_of("cluster.h2.upstream_rq_2xx") >= 2, "requests not counted on the h2 cluster");
}

static void test_trailers_h2_to_h2(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/small", g_port);
    char *out = harness_path("nghttp-trailer.out");
    char *cmd = harness_fmt("nghttp -nv '%s' > '%s' 2>&1", url, out);
    IT_ASSERT(system(cmd) == 0, "nghttp failed");
    char *log = harness_read_file(out, NULL);
    IT_ASSERT(log != NULL, "no nghttp output");
    const char *t = strstr(log, "x-origin-trailer: done");
    IT_ASSERT(t != NULL, "the origin's trailer did not arrive: %s", log);
    IT_ASSERT(strstr(t, "END_STREAM | END_HEADERS") != NULL, "trailer not in the final HEADERS frame: %s",
              log);
    free(log);
    free(cmd);
    free(out);
    free(url);
}

static void big_download(bool h2)
{
    char *url = harness_fmt("http://127.0.0.1:%d/big", g_port);
    harness_req_t req = {.url = url,
                         .http2 = h2,
                         .verify_pattern = true,
                         .timeout_ms = 120000,
                         .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    IT_ASSERT(harness_http(&req, &resp) == 0, "download: %s", resp.error);
    IT_ASSERT(resp.status == 200 && resp.body_bytes == BIG && resp.pattern_ok,
              "download: status %ld, %" PRIu64 " bytes, pattern %d", resp.status, resp.body_bytes,
              resp.pattern_ok);
    fprintf(stderr, "%s->h2 download %llu MB in %lld ms, peak VmRSS %ld kB\n", h2 ? "h2" : "h1", BIG >> 20,
            (long long)(harness_now_ms() - t0), resp.peak_rss_kb);
    IT_ASSERT(resp.rss_samples > 0 && resp.peak_rss_kb < HWM_LIMIT_KB, "RSS %ld kB", resp.peak_rss_kb);
    harness_resp_free(&resp);
    free(url);
}

static void big_upload(bool h2)
{
    /* nghttpd answers a POST with the file and discards the body; the transfer still has to go
     * through remora's upstream flow control in full. */
    char *url = harness_fmt("http://127.0.0.1:%d/small", g_port);
    harness_req_t req = {.url = url,
                         .http2 = h2,
                         .pattern_upload_len = BIG,
                         .chunked_upload = !h2,
                         .timeout_ms = 120000,
                         .watch_rss_pid = g_remora->proc->pid};
    harness_resp_t resp;
    int64_t t0 = harness_now_ms();
    IT_ASSERT(harness_http(&req, &resp) == 0, "upload: %s", resp.error);
    IT_ASSERT(resp.status == 200, "upload: status %ld", resp.status);
    fprintf(stderr, "%s->h2 upload %llu MB in %lld ms, peak VmRSS %ld kB\n", h2 ? "h2" : "h1", BIG >> 20,
            (long long)(harness_now_ms() - t0), resp.peak_rss_kb);
    IT_ASSERT(resp.rss_samples > 0 && resp.peak_rss_kb < HWM_LIMIT_KB, "RSS %ld kB", resp.peak_rss_kb);
    harness_resp_free(&resp);
    free(url);
}

static void test_large_bodies_bounded(void **state)
{
    (void)state;
    big_download(false);
    big_download(true);
    big_upload(false);
    big_upload(true);
}

/* h2load: 48 requests, 8 in flight on one client connection. */
static void h2load_through(const char *host)
{
    char *url = harness_fmt("http://127.0.0.1:%d/small", g_port);
    char *out = harness_path("h2load.out");
    char *cmd = harness_fmt("h2load -n 48 -c 1 -m 8 -H ':authority: %s' '%s' > '%s' 2>&1", host, url, out);
    IT_ASSERT(system(cmd) == 0, "h2load failed");
    char *log = harness_read_file(out, NULL);
    IT_ASSERT(log != NULL && strstr(log, "48 succeeded") != NULL, "h2load: %s", log ? log : "");
    free(log);
    free(cmd);
    free(out);
    free(url);
}

static void test_multiplexing_and_stream_limit(void **state)
{
    (void)state;
    uint64_t wide0 = stat_of("cluster.h2.upstream_cx_total");
    h2load_through("wide");
    uint64_t wide = stat_of("cluster.h2.upstream_cx_total") - wide0;
    /* Everything fits in one connection's 100 streams. */
    IT_ASSERT(wide <= 1, "cluster h2 (100 streams per connection) opened %" PRIu64 " connections", wide);

    uint64_t narrow0 = stat_of("cluster.h2narrow.upstream_cx_total");
    h2load_through("narrow");
    uint64_t narrow = stat_of("cluster.h2narrow.upstream_cx_total") - narrow0;
    fprintf(stderr,
            "8 concurrent streams: %" PRIu64 " connections at max_concurrent_streams 100, %" PRIu64 " at 2\n",
            wide, narrow);
    /* 8 in flight at 2 per connection need 4 connections, and they are reused afterwards. */
    IT_ASSERT(narrow >= 4 && narrow < 24, "cluster h2narrow opened %" PRIu64 " connections", narrow);
}

static void test_goaway_drains_gracefully(void **state)
{
    (void)state;
    /* The origin sends GOAWAY (last stream = the one being answered) before every answer: each
     * answer must still arrive, and each next request must go to a new connection. */
    uint64_t cx0 = stat_of("cluster.goaway.upstream_cx_total");
    char *url = harness_fmt("http://127.0.0.1:%d/x", g_port);
    const char *const hdrs[] = {"Host: goaway", NULL};
    for (int i = 0; i < 5; i++) {
        harness_req_t req = {.url = url, .headers = hdrs, .http2 = (i % 2) == 0};
        harness_resp_t resp;
        IT_ASSERT(harness_http(&req, &resp) == 0, "request %d: %s", i, resp.error);
        IT_ASSERT(resp.status == 200, "request %d: status %ld %s", i, resp.status, resp.body);
        IT_ASSERT(strstr(resp.body, "stream 1") != NULL, "request %d reused a connection after GOAWAY: %s", i,
                  resp.body);
        harness_resp_free(&resp);
    }
    uint64_t cx = stat_of("cluster.goaway.upstream_cx_total") - cx0;
    IT_ASSERT(cx == 5, "%" PRIu64 " connections for 5 requests", cx);
    IT_ASSERT(harness_wait_stat(g_remora->admin, "cluster.goaway.upstream_cx_active", HARNESS_EQ, 0, 10000) ==
                  0,
              "drained connections were not closed");
    free(url);
}

static void test_request_trailers_reach_the_h2_upstream(void **state)
{
    (void)state;
    /* h1 -> h2: a chunked request with a trailer; the origin echoes request trailers as response
     * trailers, which come back in the last chunk. */
    const char *req = "POST /trailers HTTP/1.1\r\nHost: goaway\r\nTransfer-Encoding: chunked\r\n"
                      "Connection: close\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n";
    harness_buf_t buf = {0};
    harness_read_result_t rr = harness_tcp_exchange(g_port, req, (size_t)-1, 10000, &buf);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET, "exchange: %s",
              harness_read_result_str(rr));
    IT_ASSERT(harness_parse_status(buf.data) == 200, "response: %s", buf.data);
    IT_ASSERT(strstr(buf.data, "got 3 bytes") != NULL, "body not forwarded: %s", buf.data);
    IT_ASSERT(strstr(buf.data, "x-echo-x-t: 1\r\n") != NULL, "request trailer lost h1 -> h2: %s", buf.data);
    harness_buf_free(&buf);

    /* h2 -> h2: nghttp sends the body with a trailer. */
    char *body = harness_path("trailer-body");
    IT_ASSERT(harness_write_file(body, "abcd", 4) == 0, "cannot write %s", body);
    char *url = harness_fmt("http://127.0.0.1:%d/trailers", g_port);
    char *out = harness_path("nghttp-req-trailer.out");
    char *cmd = harness_fmt("nghttp -v -H ':authority: goaway' -d '%s' --trailer 'x-t: 2' '%s' > '%s' 2>&1",
                            body, url, out);
    IT_ASSERT(system(cmd) == 0, "nghttp failed");
    char *log = harness_read_file(out, NULL);
    IT_ASSERT(log != NULL && strstr(log, "got 4 bytes") != NULL, "body not forwarded: %s", log ? log : "");
    IT_ASSERT(strstr(log, "x-echo-x-t: 2") != NULL, "request trailer lost h2 -> h2: %s", log);
    free(log);
    free(cmd);
    free(out);
    free(url);
    free(body);
}

static void test_connect_failure_is_503(void **state)
{
    (void)state;
    char *url = harness_fmt("http://127.0.0.1:%d/x", g_port);
    const char *const hdrs[] = {"Host: dead", NULL};
    for (int h2 = 0; h2 < 2; h2++) {
        harness_req_t req = {.url = url, .headers = hdrs, .http2 = h2};
        harness_resp_t resp;
        IT_ASSERT(harness_http(&req, &resp) == 0, "request: %s", resp.error);
        IT_ASSERT(resp.status == 503, "status %ld", resp.status);
        IT_ASSERT(strstr(resp.body, "connection failure") != NULL, "body: %s", resp.body);
        harness_resp_free(&resp);
    }
    IT_ASSERT(stat_of("cluster.h2dead.upstream_cx_connect_fail") >= 2, "connect failures not counted");
    free(url);
}

static void test_grpc_unary_through_proxy(void **state)
{
    (void)state;
    char *via = harness_fmt("127.0.0.1:%d", harness_listener_port(g_remora, "grpc"));
    harness_cmd_t direct, proxied;
    int rd = harness_cpctl(g_cp->address, 10000, &direct, "nodes", NULL);
    int rp = harness_cpctl(via, 10000, &proxied, "nodes", NULL);
    IT_ASSERT(rd == 0 && rp == 0, "nodes: direct %d (%s), proxied %d (%s)", rd, direct.err, rp, proxied.err);
    harness_cmd_free(&direct);
    harness_cmd_free(&proxied);

    /* A mutation through the proxy reaches the control plane. */
    long v =
        harness_cp_mutate(via, "upsert-cluster", "--name", "via-proxy", "--endpoint", "127.0.0.1:9", NULL);
    IT_ASSERT(v > 0, "upsert-cluster through the proxy failed");

    /* An error status (NOT_FOUND) travels back unchanged: same exit code and message as direct. */
    rd = harness_cpctl(g_cp->address, 10000, &direct, "remove-cluster", "--name", "no-such-cluster", NULL);
    rp = harness_cpctl(via, 10000, &proxied, "remove-cluster", "--name", "no-such-cluster", NULL);
    fprintf(stderr, "error status direct: exit %d %s; proxied: exit %d %s\n", rd, direct.err, rp,
            proxied.err);
    IT_ASSERT(rd == 3 && rp == 3, "exit codes: direct %d, proxied %d", rd, rp);
    IT_ASSERT(strcmp(direct.err, proxied.err) == 0, "messages differ:\n  direct:  %s\n  proxied: %s",
              direct.err, proxied.err);
    IT_ASSERT(strstr(proxied.err, "NOT_FOUND") != NULL || strstr(proxied.err, "not found") != NULL ||
                  strstr(proxied.err, "no-such-cluster") != NULL,
              "no status detail: %s", proxied.err);
    harness_cmd_free(&direct);
    harness_cmd_free(&proxied);
    IT_ASSERT(stat_of("http.grpc.downstream_rq_http2_total") >= 3, "gRPC calls not seen as HTTP/2 requests");
    IT_ASSERT(stat_of("http.grpc.http2.trailers") >= 1, "no trailers passed downstream");
    free(via);
}

static void test_grpc_bidi_stream_through_proxy(void **state)
{
    (void)state;
    /* A second remora whose ADS stream (bidirectional) goes through the first one's gRPC listener. */
    int via_port = harness_listener_port(g_remora, "grpc");
    char *xds = harness_yaml_cluster("xds_cluster", &via_port, 1, NULL);
    char *ads = harness_yaml_ads("through-proxy", NULL);
    harness_listener_spec_t l = {
        .virtual_hosts =
            "[{name: h2, domains: [\"cdsh2\"], routes: [{match: {prefix: \"/\"}, route: {cluster: cdsh2}}]},"
            " {name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: through}}]}]"};
    char *body = harness_yaml_bootstrap(&l, 1, &xds, 1);
    char *yaml = harness_fmt("%s%s", ads, body);
    harness_remora_t *r2 = harness_start_remora(yaml, NULL);
    IT_ASSERT(r2 != NULL, "the second remora did not become ready through the proxy");
    /* The control plane saw the node ACK over the proxied stream, and further pushes arrive on it. */
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, "through-proxy", 1, 20000) == 0, "no ACK through the proxy");
    long v = harness_cp_mutate(g_cp->address, "add-endpoint", "--cluster", "through", "--address",
                               "127.0.0.1:10", NULL);
    IT_ASSERT(v > 0, "add-endpoint failed");
    IT_ASSERT(harness_cp_wait_ack(g_cp->address, "through-proxy", v, 20000) == 0,
              "version %ld not ACKed through the proxy", v);
    IT_ASSERT(harness_wait_admin_body(r2->admin, "/clusters", "through::127.0.0.1:10::", true, 10000) == 0,
              "the pushed endpoint did not reach the second remora");
    IT_ASSERT(stat_of("cluster.cp.upstream_rq_active") >= 1, "the ADS stream is not open through the proxy");

    /* The cluster that came over CDS with HTTP/2 selected talks h2c to nghttpd (which does not
     * speak plain HTTP/1.1). */
    char *url = harness_fmt("http://127.0.0.1:%d/small", harness_listener_port(r2, NULL));
    const char *const hdrs[] = {"Host: cdsh2", NULL};
    harness_req_t req = {.url = url, .headers = hdrs};
    harness_resp_t resp;
    IT_ASSERT(harness_http(&req, &resp) == 0, "GET via the CDS cluster: %s", resp.error);
    IT_ASSERT(resp.status == 200 && strcmp(resp.body, "hello from nghttpd\n") == 0, "status %ld body %s",
              resp.status, resp.body);
    harness_resp_free(&resp);
    free(url);
    free(xds);
    free(ads);
    free(body);
    free(yaml);
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
        cmocka_unit_test(test_h1_to_h2_and_h2_to_h2),
        cmocka_unit_test(test_trailers_h2_to_h2),
        cmocka_unit_test(test_large_bodies_bounded),
        cmocka_unit_test(test_multiplexing_and_stream_limit),
        cmocka_unit_test(test_goaway_drains_gracefully),
        cmocka_unit_test(test_request_trailers_reach_the_h2_upstream),
        cmocka_unit_test(test_connect_failure_is_503),
        cmocka_unit_test(test_grpc_unary_through_proxy),
        cmocka_unit_test(test_grpc_bidi_stream_through_proxy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
