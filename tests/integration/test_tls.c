/* TLS on both sides of the proxy, with certificates made at test time (tls_certs.h):
 *
 * - downstream termination: a client verifying Remora's certificate gets through; ALPN offers of h2
 *   and http/1.1 settle on http/1.1; the upstream sees x-forwarded-proto: https; a client that does
 *   not trust the CA, or a listener serving an expired certificate, fails the handshake; plaintext
 *   sent to a TLS port and a client that never finishes its handshake are closed and counted;
 * - mTLS: a client certificate from the trusted CA is accepted; no certificate, or one from another
 *   CA (or expired), is refused and counted under Envoy's ssl.* stat names;
 * - upstream TLS: Remora sends SNI, verifies the upstream against the CA and the SNI name, presents
 *   its client certificate, and reuses the connection; a wrong CA, a name mismatch, an expired
 *   upstream certificate, or a missing client certificate end in a 503 connect failure, counted;
 * - large bodies in both directions over TLS on both legs.
 *
 * One remora (--workers 1) with four listeners (plain, tls, mtls, expired) sharing one route table
 * that picks the cluster from the Host header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"
#include "tls_certs.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static harness_cert_t g_ca, g_other_ca;
static harness_cert_t g_remora_cert, g_remora_expired, g_client, g_client_rogue, g_client_expired;
static harness_cert_t g_backend, g_backend_rogue, g_backend_expired, g_remora_client;
static harness_remora_t *g_remora;
static int g_plain_port, g_tls_port, g_mtls_port, g_expired_port;
static int g_secure_up_port;
static int g_refused_port, g_refused_fds[1];

#define DAY (24L * 3600)

static int make_certs(void)
{
    if (harness_cert_make_ca("ca", &g_ca) != 0 || harness_cert_make_ca("other-ca", &g_other_ca) != 0)
        return -1;
    harness_cert_spec_t server = {.cn = "remora.test",
                                  .dns_names = "remora.test",
                                  .ip_localhost = true,
                                  .not_before_s = -3600,
                                  .not_after_s = 7 * DAY};
    harness_cert_spec_t server_expired = server;
    server_expired.not_before_s = -10 * DAY;
    server_expired.not_after_s = -DAY;
    harness_cert_spec_t client = {
        .cn = "client-ok", .not_before_s = -3600, .not_after_s = 7 * DAY, .client = true};
    harness_cert_spec_t client_expired = client;
    client_expired.cn = "client-expired";
    client_expired.not_before_s = -10 * DAY;
    client_expired.not_after_s = -DAY;
    harness_cert_spec_t rogue = client;
    rogue.cn = "client-rogue";
    harness_cert_spec_t backend = {
        .cn = "backend.test", .dns_names = "backend.test", .not_before_s = -3600, .not_after_s = 7 * DAY};
    harness_cert_spec_t backend_expired = backend;
    backend_expired.not_before_s = -10 * DAY;
    backend_expired.not_after_s = -DAY;
    harness_cert_spec_t remora_client = client;
    remora_client.cn = "remora-sidecar";
    if (harness_cert_make(&g_ca, "remora", &server, &g_remora_cert) != 0 ||
        harness_cert_make(&g_ca, "remora-expired", &server_expired, &g_remora_expired) != 0 ||
        harness_cert_make(&g_ca, "client", &client, &g_client) != 0 ||
        harness_cert_make(&g_ca, "client-expired", &client_expired, &g_client_expired) != 0 ||
        harness_cert_make(&g_other_ca, "client-rogue", &rogue, &g_client_rogue) != 0 ||
        harness_cert_make(&g_ca, "backend", &backend, &g_backend) != 0 ||
        harness_cert_make(&g_other_ca, "backend-rogue", &backend, &g_backend_rogue) != 0 ||
        harness_cert_make(&g_ca, "backend-expired", &backend_expired, &g_backend_expired) != 0 ||
        harness_cert_make(&g_ca, "remora-client", &remora_client, &g_remora_client) != 0)
        return -1;
    return 0;
}

static int start_tls_upstream(const char *name, const harness_cert_t *cert, const char *client_ca)
{
    const char *args[] = {
        "--tls-cert", cert->cert, "--tls-key", cert->key, client_ca ? "--tls-client-ca" : NULL,
        client_ca,    NULL};
    return harness_start_upstream_args(name, args, NULL);
}

/* A STATIC cluster on one local port with an UpstreamTlsContext built from the arguments. */
static char *tls_cluster(const char *name, int port, const char *sni, const harness_cert_t *ca,
                         const harness_cert_t *client_cert, const char *max_version)
{
    char *cert = client_cert ? harness_fmt("tls_certificates: [{certificate_chain: {filename: \"%s\"}, "
                                           "private_key: {filename: \"%s\"}}], ",
                                           client_cert->cert, client_cert->key)
                             : harness_fmt("%s", "");
    char *y = harness_fmt(
        "{name: %s, connect_timeout: 2s, type: STATIC, load_assignment: {cluster_name: %s, endpoints: "
        "[{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]}, "
        "transport_socket: {name: envoy.transport_sockets.tls, typed_config: {\"@type\": "
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: %s, "
        "common_tls_context: {%svalidation_context: {trusted_ca: {filename: \"%s\"}}, "
        "alpn_protocols: [h2, http/1.1], tls_params: {tls_maximum_protocol_version: %s}}}}}",
        name, name, port, sni, cert, ca->cert, max_version ? max_version : "TLS_AUTO");
    free(cert);
    return y;
}

static char *downstream_ts(const harness_cert_t *cert, bool mtls)
{
    char *extra = mtls ? harness_fmt(", validation_context: {trusted_ca: {filename: \"%s\"}}", g_ca.cert)
                       : harness_fmt("%s", "");
    char *y = harness_fmt(
        "{name: envoy.transport_sockets.tls, typed_config: {\"@type\": "
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, "
        "require_client_certificate: %s, common_tls_context: {tls_certificates: [{certificate_chain: "
        "{filename: \"%s\"}, private_key: {filename: \"%s\"}}], alpn_protocols: [h2, http/1.1], "
        "tls_params: {tls_minimum_protocol_version: TLSv1_2}%s}}}",
        mtls ? "true" : "false", cert->cert, cert->key, extra);
    free(extra);
    return y;
}

#define VHOSTS                                                                                               \
    "[{name: secure, domains: [\"secure.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "       \
    "secure}}]},"                                                                                            \
    " {name: wrongca, domains: [\"wrongca.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "     \
    "wrongca}}]},"                                                                                           \
    " {name: badsan, domains: [\"badsan.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "       \
    "badsan}}]},"                                                                                            \
    " {name: expired, domains: [\"expired.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "     \
    "expired}}]},"                                                                                           \
    " {name: nocert, domains: [\"nocert.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "       \
    "nocert}}]},"                                                                                            \
    " {name: refused, domains: [\"refused.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "     \
    "refused}}]},"                                                                                           \
    " {name: notls, domains: [\"notls.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "         \
    "notls}}]},"                                                                                             \
    " {name: h2secure, domains: [\"h2secure.local\"], routes: [{match: {prefix: \"/\"}, route: {cluster: "   \
    "h2secure}}]},"                                                                                          \
    " {name: all, domains: [\"*\"], routes: [{match: {prefix: \"/\"}, route: {cluster: plain, timeout: "     \
    "10s}}]}]"

/* nghttpd (HTTP/2 only) serving TLS with `cert` from a docroot holding "hello"; returns its port. */
static int start_nghttpd_tls(const harness_cert_t *cert)
{
    char *docroot = harness_path("h2docroot");
    mkdir(docroot, 0755);
    char *file = harness_fmt("%s/hello", docroot);
    int rc = harness_write_file(file, "hello over h2 and TLS\n", (size_t)-1);
    free(file);
    int port = harness_free_port();
    char *p = harness_fmt("%d", port);
    char *argv[] = {"/usr/sbin/nghttpd", "-d", docroot, p, (char *)cert->key, (char *)cert->cert, NULL};
    harness_proc_t *proc = rc == 0 ? harness_spawn("nghttpd-tls", argv, NULL) : NULL;
    free(p);
    free(docroot);
    if (proc == NULL)
        return -1;
    return harness_wait_port(port, 10000) == 0 ? port : -1;
}

static int g_h2_tls_port;

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    if (make_certs() != 0)
        return -1;
    int plain = harness_start_upstream("plain", NULL);
    g_secure_up_port = start_tls_upstream("secure", &g_backend, g_ca.cert);
    int rogue = start_tls_upstream("rogue", &g_backend_rogue, NULL);
    int expired = start_tls_upstream("expired", &g_backend_expired, NULL);
    g_h2_tls_port = start_nghttpd_tls(&g_backend);
    if (plain < 0 || g_secure_up_port < 0 || rogue < 0 || expired < 0 || g_h2_tls_port < 0)
        return -1;
    /* HTTP/2 over TLS to nghttpd: the cluster offers h2 in ALPN whatever alpn_protocols says. */
    char *h2secure = tls_cluster("h2secure", g_h2_tls_port, "backend.test", &g_ca, NULL, NULL);
    h2secure[strlen(h2secure) - 1] = '\0';
    char *h2secure_full = harness_fmt(
        "%s, typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: "
        "{\"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, "
        "explicit_http_config: {http2_protocol_options: {}}}}}",
        h2secure);
    free(h2secure);
    g_refused_port = harness_refused_port(g_refused_fds);
    if (g_refused_port < 0)
        return -1;
    char *clusters[9] = {
        harness_yaml_cluster("plain", &plain, 1, NULL),
        /* TLS 1.3 here (clusters default to 1.2 at most, as in Envoy; the others use that). */
        tls_cluster("secure", g_secure_up_port, "backend.test", &g_ca, &g_remora_client, "TLSv1_3"),
        tls_cluster("wrongca", rogue, "backend.test", &g_ca, NULL, NULL),
        tls_cluster("badsan", g_secure_up_port, "other.test", &g_ca, &g_remora_client, NULL),
        tls_cluster("expired", expired, "backend.test", &g_ca, NULL, NULL),
        /* TLS 1.2, so that the upstream's refusal arrives inside the handshake (with TLS 1.3 the
         * client finishes first and meets the refusal on its first read). */
        tls_cluster("nocert", g_secure_up_port, "backend.test", &g_ca, NULL, "TLSv1_2"),
        /* A plaintext HTTP server behind a TLS cluster: it waits for a request head that the
         * ClientHello never completes, so the handshake stalls until connect_timeout (2s). */
        tls_cluster("notls", plain, "backend.test", &g_ca, NULL, NULL),
        h2secure_full,
        /* Nothing listens: a TCP failure, which must not be counted as a TLS one. */
        tls_cluster("refused", g_refused_port, "backend.test", &g_ca, NULL, NULL),
    };
    char *ts_tls = downstream_ts(&g_remora_cert, false);
    char *ts_mtls = downstream_ts(&g_remora_cert, true);
    char *ts_expired = downstream_ts(&g_remora_expired, false);
    harness_listener_spec_t listeners[4] = {
        {.name = "plain", .stat_prefix = "plain", .virtual_hosts = VHOSTS},
        {.name = "tls",
         .stat_prefix = "tls",
         .virtual_hosts = VHOSTS,
         .transport_socket = ts_tls,
         .hcm_extra = "request_headers_timeout: 1s"},
        {.name = "mtls", .stat_prefix = "mtls", .virtual_hosts = VHOSTS, .transport_socket = ts_mtls},
        {.name = "expired",
         .stat_prefix = "expired",
         .virtual_hosts = VHOSTS,
         .transport_socket = ts_expired},
    };
    char *yaml = harness_yaml_bootstrap(listeners, 4, clusters, 9);
    for (int i = 0; i < 9; i++)
        free(clusters[i]);
    free(ts_tls);
    free(ts_mtls);
    free(ts_expired);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_plain_port = harness_listener_port(g_remora, "plain");
    g_tls_port = harness_listener_port(g_remora, "tls");
    g_mtls_port = harness_listener_port(g_remora, "mtls");
    g_expired_port = harness_listener_port(g_remora, "expired");
    return g_plain_port > 0 && g_tls_port > 0 && g_mtls_port > 0 && g_expired_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    harness_close_fds(g_refused_fds, 1);
    curl_global_cleanup();
    return 0;
}

/* ---- an HTTPS client (libcurl) ---- */

typedef struct {
    const harness_cert_t *trust;  /* CA to verify Remora with; NULL: do not verify */
    const harness_cert_t *client; /* client certificate; NULL: none */
    const char *host;             /* Host header; NULL: the URL's */
    const char *path;
    uint64_t upload_len;   /* >0: POST that many pattern bytes */
    bool pattern_download; /* check the body is the test upstream's pattern instead of storing it */
    bool http11_only;      /* offer only http/1.1 in ALPN (default: h2 and http/1.1) */
} https_req_t;

typedef struct {
    CURLcode code;
    char error[CURL_ERROR_SIZE];
    long status;
    long http_version;
    char body[4096];
    size_t body_len;
    uint64_t body_bytes;
    bool pattern_ok;
    uint64_t sent;
    bool pattern_mode;
} https_resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    https_resp_t *r = arg;
    size_t len = size * n;
    if (r->pattern_mode) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] != (unsigned char)('a' + (r->body_bytes + i) % 26))
                r->pattern_ok = false;
    } else {
        size_t room = sizeof(r->body) - 1 - r->body_len;
        size_t take = len < room ? len : room;
        memcpy(r->body + r->body_len, p, take);
        r->body_len += take;
        r->body[r->body_len] = '\0';
    }
    r->body_bytes += len;
    return len;
}

typedef struct {
    uint64_t total, sent;
} upload_t;

static size_t on_upload(char *p, size_t size, size_t n, void *arg)
{
    upload_t *u = arg;
    size_t len = size * n;
    size_t k = 0;
    for (; k < len && u->sent < u->total; k++, u->sent++)
        p[k] = (char)('a' + u->sent % 26);
    return k;
}

static void https(int port, const https_req_t *q, https_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    r->pattern_ok = true;
    r->pattern_mode = q->pattern_download;
    CURL *c = curl_easy_init();
    char *url = harness_fmt("https://remora.test:%d%s", port, q->path ? q->path : "/");
    char *resolve_s = harness_fmt("remora.test:%d:127.0.0.1", port);
    struct curl_slist *resolve = curl_slist_append(NULL, resolve_s);
    struct curl_slist *hdrs = NULL;
    char *host = q->host ? harness_fmt("Host: %s", q->host) : NULL;
    if (host)
        hdrs = curl_slist_append(hdrs, host);
    upload_t up = {q->upload_len, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
                     q->http11_only ? (long)CURL_HTTP_VERSION_1_1
                                    : (long)CURL_HTTP_VERSION_2TLS); /* h2 and http/1.1 */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (q->trust != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, q->trust->cert);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    } else {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (q->client != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, q->client->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, q->client->key);
    }
    if (q->upload_len > 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->upload_len);
    }
    r->code = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &r->http_version);
    r->sent = up.sent;
    curl_easy_cleanup(c);
    curl_slist_free_all(resolve);
    curl_slist_free_all(hdrs);
    free(host);
    free(resolve_s);
    free(url);
}

static char *listener_stat(int port, const char *name)
{
    return harness_fmt("listener.127.0.0.1_%d.ssl.%s", port, name);
}

static uint64_t stat_or_zero(const char *name)
{
    return harness_stat_or_zero(g_remora->admin, name);
}

/* Waits until the stat grew past `before`. */
static void wait_stat_above(const char *name, uint64_t before)
{
    IT_ASSERT(harness_wait_stat(g_remora->admin, name, HARNESS_GE, before + 1, 10000) == 0,
              "%s did not grow past %llu", name, (unsigned long long)before);
}

/* A plaintext request to the plain listener with a Host header. */
static void plain_get(const char *host, const char *path, harness_resp_t *resp)
{
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_plain_port, path);
    char *h = harness_fmt("Host: %s", host);
    const char *headers[] = {h, NULL};
    harness_req_t req = {.url = url, .headers = headers, .timeout_ms = 20000};
    IT_ASSERT(harness_http(&req, resp) == 0, "GET %s (Host %s) failed: %s", path, host, resp->error);
    free(url);
    free(h);
}

/* ---- downstream ---- */

static void test_downstream_tls_ok(void **state)
{
    char *hs = listener_stat(g_tls_port, "handshake");
    uint64_t before = stat_or_zero(hs);
    https_resp_t r;
    https(g_tls_port, &(https_req_t){.trust = &g_ca, .path = "/headers"}, &r);
    IT_ASSERT(r.code == CURLE_OK, "https request failed: %s", r.error);
    IT_ASSERT(r.status == 200, "status %ld", r.status);
    /* The listener offers [h2, http/1.1] and curl both: ALPN settles on h2, served by the HTTP/2 codec. */
    IT_ASSERT(r.http_version == CURL_HTTP_VERSION_2_0, "negotiated HTTP version %ld", r.http_version);
    IT_ASSERT(strstr(r.body, "x-forwarded-proto: https") != NULL, "upstream saw:\n%s", r.body);
    wait_stat_above(hs, before);
    free(hs);
}

/* A client that offers only http/1.1 on the same listener is served over HTTP/1.1. */
static void test_downstream_tls_http11_client(void **state)
{
    https_resp_t r;
    https(g_tls_port, &(https_req_t){.trust = &g_ca, .path = "/headers", .http11_only = true}, &r);
    IT_ASSERT(r.code == CURLE_OK && r.status == 200, "status %ld (%s)", r.status, r.error);
    IT_ASSERT(r.http_version == CURL_HTTP_VERSION_1_1, "negotiated HTTP version %ld", r.http_version);
    IT_ASSERT(strstr(r.body, "x-forwarded-proto: https") != NULL, "upstream saw:\n%s", r.body);
}

static void test_downstream_untrusted_and_expired(void **state)
{
    /* The client trusts another CA: it aborts the handshake; Remora counts a connection error. */
    char *ce = listener_stat(g_tls_port, "connection_error");
    uint64_t before = stat_or_zero(ce);
    https_resp_t r;
    https(g_tls_port, &(https_req_t){.trust = &g_other_ca, .path = "/status/200"}, &r);
    IT_ASSERT(r.code == CURLE_PEER_FAILED_VERIFICATION, "curl code %d (%s)", (int)r.code, r.error);
    IT_ASSERT(r.status == 0, "got an HTTP status %ld", r.status);
    wait_stat_above(ce, before);
    free(ce);

    /* A listener serving an expired certificate: a verifying client refuses it. */
    char *ce2 = listener_stat(g_expired_port, "connection_error");
    before = stat_or_zero(ce2);
    https(g_expired_port, &(https_req_t){.trust = &g_ca, .path = "/status/200"}, &r);
    IT_ASSERT(r.code == CURLE_PEER_FAILED_VERIFICATION, "curl code %d (%s)", (int)r.code, r.error);
    IT_ASSERT(strstr(r.error, "expired") != NULL, "curl error: %s", r.error);
    wait_stat_above(ce2, before);
    free(ce2);
}

static void test_downstream_garbage_and_stall(void **state)
{
    char *ce = listener_stat(g_tls_port, "connection_error");
    uint64_t before = stat_or_zero(ce);
    /* Plaintext HTTP to a TLS port: not a ClientHello; closed and counted. */
    harness_buf_t out = {0};
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    harness_read_result_t rr = harness_tcp_exchange(g_tls_port, req, strlen(req), 10000, &out);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET, "read result %s",
              harness_read_result_str(rr));
    IT_ASSERT(harness_parse_status(out.data ? out.data : "") < 0, "got an HTTP answer: %s", out.data);
    harness_buf_free(&out);
    wait_stat_above(ce, before);

    /* A client that connects and never sends a ClientHello is closed after the listener's
     * request_headers_timeout (1s). */
    before = stat_or_zero(ce);
    int fd = harness_tcp_connect(g_tls_port, 5000);
    IT_ASSERT(fd >= 0, "connect failed");
    harness_buf_t none = {0};
    rr = harness_tcp_read(fd, &none, NULL, 0, 15000);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET, "stalled handshake: %s",
              harness_read_result_str(rr));
    harness_buf_free(&none);
    close(fd);
    wait_stat_above(ce, before);
    free(ce);

    /* Still serving. */
    https_resp_t r;
    https(g_tls_port, &(https_req_t){.trust = &g_ca, .path = "/status/204"}, &r);
    IT_ASSERT(r.code == CURLE_OK && r.status == 204, "after garbage: code %d status %ld", (int)r.code,
              r.status);
}

/* ---- mTLS ---- */

static void test_mtls_ok(void **state)
{
    char *hs = listener_stat(g_mtls_port, "handshake");
    uint64_t before = stat_or_zero(hs);
    https_resp_t r;
    https(g_mtls_port, &(https_req_t){.trust = &g_ca, .client = &g_client, .path = "/status/200"}, &r);
    IT_ASSERT(r.code == CURLE_OK, "mTLS request failed: %s", r.error);
    IT_ASSERT(r.status == 200, "status %ld", r.status);
    wait_stat_above(hs, before);
    free(hs);
}

static void test_mtls_missing_client_cert(void **state)
{
    char *nc = listener_stat(g_mtls_port, "fail_verify_no_cert");
    uint64_t before = stat_or_zero(nc);
    https_resp_t r;
    https(g_mtls_port, &(https_req_t){.trust = &g_ca, .path = "/status/200"}, &r);
    IT_ASSERT(r.code != CURLE_OK, "request without a client certificate succeeded (status %ld)", r.status);
    IT_ASSERT(r.status == 0, "got an HTTP status %ld", r.status);
    wait_stat_above(nc, before);
    free(nc);
}

static void test_mtls_wrong_ca_and_expired_client(void **state)
{
    char *fe = listener_stat(g_mtls_port, "fail_verify_error");
    uint64_t before = stat_or_zero(fe);
    https_resp_t r;
    https(g_mtls_port, &(https_req_t){.trust = &g_ca, .client = &g_client_rogue, .path = "/status/200"}, &r);
    IT_ASSERT(r.code != CURLE_OK, "client certificate from another CA was accepted (status %ld)", r.status);
    IT_ASSERT(r.status == 0, "got an HTTP status %ld", r.status);
    wait_stat_above(fe, before);

    before = stat_or_zero(fe);
    https(g_mtls_port, &(https_req_t){.trust = &g_ca, .client = &g_client_expired, .path = "/status/200"},
          &r);
    IT_ASSERT(r.code != CURLE_OK, "expired client certificate was accepted (status %ld)", r.status);
    wait_stat_above(fe, before);
    free(fe);
}

/* ---- upstream ---- */

static void test_upstream_tls_ok(void **state)
{
    uint64_t before = stat_or_zero("cluster.secure.ssl.handshake");
    harness_resp_t resp;
    plain_get("secure.local", "/tls", &resp);
    IT_ASSERT(resp.status == 200, "status %ld body %s", resp.status, resp.body);
    /* SNI sent, Remora's client certificate presented, http/1.1 offered (the cluster speaks
     * HTTP/1.1, so h2 from alpn_protocols is not offered). */
    IT_ASSERT(strcmp(resp.body, "sni=backend.test client=remora-sidecar alpn=http/1.1") == 0,
              "upstream saw: %s", resp.body);
    harness_resp_free(&resp);
    wait_stat_above("cluster.secure.ssl.handshake", before);

    /* The pooled TLS connection is reused: a second request needs no new handshake. */
    uint64_t hs = stat_or_zero("cluster.secure.ssl.handshake");
    uint64_t cx = stat_or_zero("cluster.secure.upstream_cx_total");
    plain_get("secure.local", "/tls", &resp);
    IT_ASSERT(resp.status == 200, "second request: status %ld", resp.status);
    harness_resp_free(&resp);
    IT_ASSERT(stat_or_zero("cluster.secure.upstream_cx_total") == cx, "a new upstream connection was opened");
    IT_ASSERT(stat_or_zero("cluster.secure.ssl.handshake") == hs, "a new handshake was made");
}

/* A request to a cluster whose TLS handshake must fail: answered like any connect failure (503,
 * reset reason "connection failure", the UF case), and the stat named grows. */
static void expect_upstream_tls_failure(const char *host, const char *cluster, const char *stat)
{
    char *name = harness_fmt("cluster.%s.ssl.%s", cluster, stat);
    char *cf = harness_fmt("cluster.%s.upstream_cx_connect_fail", cluster);
    uint64_t before = stat_or_zero(name), cf_before = stat_or_zero(cf);
    harness_resp_t resp;
    plain_get(host, "/tls", &resp);
    IT_ASSERT(resp.status == 503 && strstr(resp.body, "connection failure") != NULL, "%s: status %ld body %s",
              cluster, resp.status, resp.body);
    harness_resp_free(&resp);
    wait_stat_above(name, before);
    wait_stat_above(cf, cf_before);
    free(name);
    free(cf);
}

static void test_upstream_wrong_ca(void **state)
{
    expect_upstream_tls_failure("wrongca.local", "wrongca", "fail_verify_error");
}

static void test_upstream_name_mismatch(void **state)
{
    expect_upstream_tls_failure("badsan.local", "badsan", "fail_verify_san");
}

static void test_upstream_expired(void **state)
{
    expect_upstream_tls_failure("expired.local", "expired", "fail_verify_error");
}

static void test_upstream_requires_client_cert(void **state)
{
    /* The upstream wants a client certificate this cluster does not have: it rejects the handshake. */
    expect_upstream_tls_failure("nocert.local", "nocert", "connection_error");
}

static void test_upstream_handshake_stall(void **state)
{
    uint64_t ce = stat_or_zero("cluster.notls.ssl.connection_error");
    uint64_t to = stat_or_zero("cluster.notls.upstream_cx_connect_timeout");
    harness_resp_t resp;
    plain_get("notls.local", "/tls", &resp);
    IT_ASSERT(resp.status == 503 && strstr(resp.body, "connection timeout") != NULL, "status %ld body %s",
              resp.status, resp.body);
    harness_resp_free(&resp);
    wait_stat_above("cluster.notls.ssl.connection_error", ce);
    wait_stat_above("cluster.notls.upstream_cx_connect_timeout", to);
}

static void test_upstream_refused_is_not_tls(void **state)
{
    uint64_t cf = stat_or_zero("cluster.refused.upstream_cx_connect_fail");
    harness_resp_t resp;
    plain_get("refused.local", "/tls", &resp);
    IT_ASSERT(resp.status == 503 && strstr(resp.body, "connection failure") != NULL, "status %ld body %s",
              resp.status, resp.body);
    harness_resp_free(&resp);
    wait_stat_above("cluster.refused.upstream_cx_connect_fail", cf);
    static const char *const tls_stats[] = {"connection_error", "fail_verify_error", "fail_verify_san",
                                            "handshake"};
    for (size_t i = 0; i < 4; i++) {
        char *name = harness_fmt("cluster.refused.ssl.%s", tls_stats[i]);
        uint64_t v = 99;
        IT_ASSERT(harness_stat(g_remora->admin, name, &v) == 0 && v == 0, "%s = %llu after a refused connect",
                  name, (unsigned long long)v);
        free(name);
    }
}

/* Several requests on one client connection: one handshake, keep-alive over TLS. */
static void test_downstream_keepalive(void **state)
{
    char *hs = listener_stat(g_tls_port, "handshake");
    uint64_t before = stat_or_zero(hs);
    CURL *c = curl_easy_init();
    char *url = harness_fmt("https://remora.test:%d/status/200", g_tls_port);
    char *resolve_s = harness_fmt("remora.test:%d:127.0.0.1", g_tls_port);
    struct curl_slist *resolve = curl_slist_append(NULL, resolve_s);
    https_resp_t r;
    memset(&r, 0, sizeof(r));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(c, CURLOPT_CAINFO, g_ca.cert);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long connects = 0;
    for (int i = 0; i < 5; i++) {
        CURLcode rc = curl_easy_perform(c);
        long status = 0, n = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &n);
        IT_ASSERT(rc == CURLE_OK && status == 200, "request %d: code %d status %ld", i, (int)rc, status);
        connects += n;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(resolve);
    free(resolve_s);
    free(url);
    IT_ASSERT(connects == 1, "curl opened %ld connections for 5 requests", connects);
    wait_stat_above(hs, before);
    IT_ASSERT(stat_or_zero(hs) == before + 1, "%s grew by %llu, want 1", hs,
              (unsigned long long)(stat_or_zero(hs) - before));
    free(hs);
}

/* ---- bodies over TLS on both legs ---- */

static void test_large_bodies_tls_both_legs(void **state)
{
    const uint64_t n = 8u << 20;
    char *path = harness_fmt("/bytes/%llu", (unsigned long long)n);
    https_resp_t r;
    https(g_tls_port,
          &(https_req_t){.trust = &g_ca, .host = "secure.local", .path = path, .pattern_download = true}, &r);
    free(path);
    IT_ASSERT(r.code == CURLE_OK && r.status == 200, "download: code %d (%s) status %ld", (int)r.code,
              r.error, r.status);
    IT_ASSERT(r.body_bytes == n && r.pattern_ok, "download: %llu bytes, pattern %s",
              (unsigned long long)r.body_bytes, r.pattern_ok ? "ok" : "corrupt");

    https(g_tls_port,
          &(https_req_t){.trust = &g_ca, .host = "secure.local", .path = "/sink", .upload_len = n}, &r);
    IT_ASSERT(r.code == CURLE_OK && r.status == 200, "upload: code %d (%s) status %ld", (int)r.code, r.error,
              r.status);
    char *want = harness_fmt("%llu 1", (unsigned long long)n);
    IT_ASSERT(strcmp(r.body, want) == 0, "upstream /sink said \"%s\", want \"%s\"", r.body, want);
    free(want);
    long rss = 0, hwm = 0;
    if (harness_proc_mem_kb(g_remora->proc->pid, &rss, &hwm) == 0)
        fprintf(stderr, "remora RSS after 2x8 MiB over TLS: %ld kB (peak %ld kB)\n", rss, hwm);
}

/* ---- unusable TLS material ---- */

/* A listener whose key belongs to another certificate: `--mode validate` fails naming the listener's
 * transport_socket, and serving refuses to start with the same reason. */
static void test_mismatched_key_refused(void **state)
{
    harness_cert_t wrong = g_remora_cert;
    snprintf(wrong.key, sizeof(wrong.key), "%s", g_client.key);
    char *ts = downstream_ts(&wrong, false);
    int port = g_plain_port; /* any port: the cluster is never used */
    char *cluster = harness_yaml_cluster("backend", &port, 1, NULL);
    harness_listener_spec_t l = {.transport_socket = ts};
    char *yaml = harness_yaml_bootstrap(&l, 1, &cluster, 1);
    char *path = harness_path("mismatched-key.yaml");
    IT_ASSERT(harness_write_file(path, yaml, (size_t)-1) == 0, "write %s", path);
    char *bin = harness_bin("remora");
    const char *modes[] = {"validate", "serve"};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {bin, "--mode", (char *)modes[i], "-c", path, NULL};
        harness_proc_t *p = harness_spawn(modes[i], argv, NULL);
        IT_ASSERT(p != NULL, "spawn remora --mode %s", modes[i]);
        int status;
        IT_ASSERT(harness_proc_wait(p, 10000, &status) == 0, "remora --mode %s still running", modes[i]);
        char *err = harness_read_file(p->stderr_path, NULL);
        IT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) != 0, "--mode %s: exit status %d", modes[i],
                  status);
        IT_ASSERT(err != NULL && strstr(err, "transport_socket") != NULL &&
                      strstr(err, "private_key does not match the certificate_chain") != NULL,
                  "--mode %s said: %s", modes[i], err ? err : "(nothing)");
        free(err);
    }
    free(bin);
    free(path);
    free(yaml);
    free(cluster);
    free(ts);
}

/* HTTP/2 towards a TLS origin that speaks only HTTP/2 (nghttpd): ALPN h2, verified, and the request
 * from an HTTP/1.1 client is translated. */
static void test_upstream_h2_over_tls(void **state)
{
    uint64_t before = stat_or_zero("cluster.h2secure.ssl.handshake");
    for (int i = 0; i < 3; i++) {
        harness_resp_t resp;
        plain_get("h2secure.local", "/hello", &resp);
        IT_ASSERT(resp.status == 200 && resp.body != NULL &&
                      strcmp(resp.body, "hello over h2 and TLS\n") == 0,
                  "status %ld body %s", resp.status, resp.body ? resp.body : "");
        harness_resp_free(&resp);
    }
    wait_stat_above("cluster.h2secure.ssl.handshake", before);
    /* The three requests shared one multiplexed connection. */
    IT_ASSERT(stat_or_zero("cluster.h2secure.upstream_cx_total") == 1, "upstream connections: %llu",
              (unsigned long long)stat_or_zero("cluster.h2secure.upstream_cx_total"));
}

/* ---- the curl program ---- */

static void test_curl_cli(void **state)
{
    if (access("/usr/bin/curl", X_OK) != 0) {
        fprintf(stderr, "curl(1) not installed; skipped\n");
        return;
    }
    char *cmd = harness_fmt("curl -sS --max-time 20 --cacert '%s' --cert '%s' --key '%s' --resolve "
                            "remora.test:%d:127.0.0.1 -o /dev/null -w '%%{http_code} %%{http_version}' "
                            "https://remora.test:%d/status/201 2>&1",
                            g_ca.cert, g_client.cert, g_client.key, g_mtls_port, g_mtls_port);
    FILE *p = popen(cmd, "r");
    IT_ASSERT(p != NULL, "popen failed");
    char out[256] = "";
    size_t len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    int rc = pclose(p);
    free(cmd);
    IT_ASSERT(rc == 0 && strcmp(out, "201 2") == 0, "curl said \"%s\" (exit %d)", out, rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downstream_tls_ok),
        cmocka_unit_test(test_downstream_tls_http11_client),
        cmocka_unit_test(test_downstream_untrusted_and_expired),
        cmocka_unit_test(test_downstream_garbage_and_stall),
        cmocka_unit_test(test_mtls_ok),
        cmocka_unit_test(test_mtls_missing_client_cert),
        cmocka_unit_test(test_mtls_wrong_ca_and_expired_client),
        cmocka_unit_test(test_upstream_tls_ok),
        cmocka_unit_test(test_upstream_h2_over_tls),
        cmocka_unit_test(test_upstream_wrong_ca),
        cmocka_unit_test(test_upstream_name_mismatch),
        cmocka_unit_test(test_upstream_expired),
        cmocka_unit_test(test_upstream_requires_client_cert),
        cmocka_unit_test(test_upstream_handshake_stall),
        cmocka_unit_test(test_upstream_refused_is_not_tls),
        cmocka_unit_test(test_downstream_keepalive),
        cmocka_unit_test(test_large_bodies_tls_both_legs),
        cmocka_unit_test(test_mismatched_key_refused),
        cmocka_unit_test(test_curl_cli),
    };
    return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
