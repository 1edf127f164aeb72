/* HTTP/1.1 proxying basics: methods and body framings, HEAD, round robin, virtual host and route
 * matching, and the headers the proxy adds and removes.
 *
 * One remora (--workers 1, so round robin is deterministic) in front of seven test upstreams:
 * backend = u1 + u2, and one single-endpoint cluster per virtual host / route under test. Which
 * upstream answered is read from the x-upstream-id response header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"
#include "it_assert.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum { U1, U2, API, WILD, PRE, PORTED, EXACT, NUM_UPSTREAMS };
static const char *const upstream_names[NUM_UPSTREAMS] = {"u1",  "u2",     "api",  "wild",
                                                          "pre", "ported", "exact"};
static int g_upstream_port[NUM_UPSTREAMS];
static harness_remora_t *g_remora;
static int g_port;

static int group_setup(void **state)
{
    for (int i = 0; i < NUM_UPSTREAMS; i++) {
        g_upstream_port[i] = harness_start_upstream(upstream_names[i], NULL);
        if (g_upstream_port[i] < 0)
            return -1;
    }
    char *clusters[6] = {
        harness_yaml_cluster("backend", (int[]){g_upstream_port[U1], g_upstream_port[U2]}, 2, NULL),
        harness_yaml_cluster("api", &g_upstream_port[API], 1, NULL),
        harness_yaml_cluster("wild", &g_upstream_port[WILD], 1, NULL),
        harness_yaml_cluster("pre", &g_upstream_port[PRE], 1, NULL),
        harness_yaml_cluster("ported", &g_upstream_port[PORTED], 1, NULL),
        harness_yaml_cluster("exact", &g_upstream_port[EXACT], 1, NULL),
    };
    harness_listener_spec_t listener = {
        .virtual_hosts = "[{name: api, domains: [\"api.example.com\"], routes: [{match: {prefix: \"/\"}, "
                         "route: {cluster: api}}]},"
                         " {name: wild, domains: [\"*.wild.example.com\"], routes: [{match: {prefix: \"/\"}, "
                         "route: {cluster: wild}}]},"
                         " {name: pre, domains: [\"prefix-*\"], routes: [{match: {prefix: \"/\"}, route: "
                         "{cluster: pre}}]},"
                         " {name: ported, domains: [\"ported.example.com:8080\"],"
                         "  routes: [{match: {prefix: \"/\"}, route: {cluster: ported}}]},"
                         " {name: all, domains: [\"*\"], routes: ["
                         "  {match: {path: \"/status/201\"}, route: {cluster: exact}},"
                         "  {match: {prefix: \"/pfx\"}, route: {cluster: exact}},"
                         "  {match: {prefix: \"/\"}, route: {cluster: backend, timeout: 5s}}]}]",
    };
    char *yaml = harness_yaml_bootstrap(&listener, 1, clusters, 6);
    for (int i = 0; i < 6; i++)
        free(clusters[i]);
    const char *args[] = {"--workers", "1", NULL};
    g_remora = harness_start_remora(yaml, args);
    free(yaml);
    if (g_remora == NULL)
        return -1;
    g_port = harness_listener_port(g_remora, "ingress");
    return g_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    harness_kill_all();
    return 0;
}

/* Request through the proxy; fails the test on a transport error. */
static void proxy_request(harness_req_t *req, const char *path, harness_resp_t *resp)
{
    char *url = harness_fmt("http://127.0.0.1:%d%s", g_port, path);
    req->url = url;
    int rc = harness_http(req, resp);
    free(url);
    IT_ASSERT(rc == 0, "request %s %s failed: %s", req->method ? req->method : "GET", path, resp->error);
}

/* GET path with a Host header; returns the x-upstream-id that answered (malloc'd, "" if none). */
static char *upstream_for_host(const char *host, const char *path, long *status)
{
    char *h = harness_fmt("Host: %s", host);
    const char *headers[] = {h, NULL};
    harness_req_t req = {.headers = headers};
    harness_resp_t resp;
    proxy_request(&req, path, &resp);
    char *id = harness_resp_header(&resp, "x-upstream-id");
    if (status != NULL)
        *status = resp.status;
    harness_resp_free(&resp);
    free(h);
    return id != NULL ? id : strdup("");
}

/* Header lines named `name` in a /headers body (the head as the upstream received it). Returns how
 * many there were, and the value of the last in *value (malloc'd) if value is not NULL. */
static int upstream_saw_header(const char *head, const char *name, char **value)
{
    int count = 0;
    size_t nl = strlen(name);
    if (value != NULL)
        *value = NULL;
    const char *line = strstr(head, "\r\n"); /* skip the request line */
    while (line != NULL) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            count++;
            if (value != NULL) {
                free(*value);
                const char *v = line + nl + 1;
                while (*v == ' ')
                    v++;
                *value = strndup(v, (size_t)(line + len - v));
            }
        }
        line = eol;
    }
    return count;
}

static void test_get(void **state)
{
    harness_req_t req = {0};
    harness_resp_t resp;
    proxy_request(&req, "/headers", &resp);
    IT_ASSERT(resp.status == 200, "GET /headers status %ld", resp.status);
    char *id = harness_resp_header(&resp, "x-upstream-id");
    IT_ASSERT(id != NULL && (strcmp(id, "u1") == 0 || strcmp(id, "u2") == 0),
              "GET /headers answered by \"%s\", expected u1 or u2 (cluster backend)", id ? id : "(none)");
    IT_ASSERT(strncmp(resp.body, "GET /headers HTTP/1.1\r\n", 23) == 0, "upstream request line: %.60s",
              resp.body);
    char *host = NULL;
    char *want = harness_fmt("127.0.0.1:%d", g_port);
    IT_ASSERT(upstream_saw_header(resp.body, "host", &host) == 1 && strcmp(host, want) == 0,
              "upstream should see exactly one Host: %s; it saw:\n%s", want, resp.body);
    free(host);
    free(want);
    free(id);
    harness_resp_free(&resp);
}

static void test_post_content_length(void **state)
{
    size_t len = 100 * 1024;
    char *body = malloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('A' + (i * 7) % 53);
    harness_req_t req = {.method = "POST", .body = body, .body_len = len};
    harness_resp_t resp;
    proxy_request(&req, "/echo", &resp);
    IT_ASSERT(resp.status == 200, "POST /echo status %ld", resp.status);
    IT_ASSERT(resp.body_len == len && memcmp(resp.body, body, len) == 0,
              "echoed body differs: got %zu bytes, sent %zu", resp.body_len, len);
    harness_resp_free(&resp);

    /* the upstream saw a Content-Length framed body of the same size */
    harness_req_t req2 = {.method = "POST", .body = body, .body_len = len};
    proxy_request(&req2, "/headers", &resp);
    char *cl = NULL;
    IT_ASSERT(upstream_saw_header(resp.body, "content-length", &cl) == 1 && atol(cl) == (long)len,
              "upstream should see content-length: %zu; head:\n%s", len, resp.body);
    free(cl);
    harness_resp_free(&resp);
    free(body);
}

static void test_post_chunked(void **state)
{
    size_t len = 300 * 1024 + 17;
    char *body = malloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('0' + (i * 13) % 61);
    harness_req_t req = {.method = "POST", .body = body, .body_len = len, .chunked_upload = true};
    harness_resp_t resp;
    proxy_request(&req, "/echo", &resp);
    IT_ASSERT(resp.status == 200, "chunked POST /echo status %ld", resp.status);
    IT_ASSERT(resp.body_len == len && memcmp(resp.body, body, len) == 0,
              "echoed chunked body differs: got %zu bytes, sent %zu", resp.body_len, len);
    harness_resp_free(&resp);
    free(body);
}

static void test_post_empty_body(void **state)
{
    harness_req_t req = {.method = "POST", .body = "", .body_len = 0};
    harness_resp_t resp;
    proxy_request(&req, "/echo", &resp);
    IT_ASSERT(resp.status == 200 && resp.body_len == 0, "empty POST: status %ld, %zu body bytes", resp.status,
              resp.body_len);
    harness_resp_free(&resp);
}

/* A HEAD response has headers only: the next response on the same connection must follow the
 * HEAD's header block directly. */
static void test_head(void **state)
{
    int fd = harness_tcp_connect(g_port, 2000);
    IT_ASSERT(fd >= 0, "connect to the proxy");
    IT_ASSERT(harness_tcp_send(fd, "HEAD /bytes/1234 HTTP/1.1\r\nHost: h\r\n\r\n", (size_t)-1) == 0,
              "send HEAD");
    harness_buf_t buf = {0};
    harness_read_result_t rr = harness_tcp_read(fd, &buf, "\r\n\r\n", 0, 5000);
    IT_ASSERT(rr == HARNESS_READ_MATCH, "HEAD response head: %s after %zu bytes", harness_read_result_str(rr),
              buf.len);
    harness_msg_t head;
    long n = harness_parse_response(buf.data, buf.len, true, &head);
    IT_ASSERT(n > 0 && head.status == 200, "HEAD status %d: %s", head.status, buf.data);
    char *cl = harness_msg_header(&head, "content-length");
    IT_ASSERT(cl != NULL && strcmp(cl, "1234") == 0,
              "HEAD should carry the upstream's content-length: 1234, got %s", cl ? cl : "(none)");
    free(cl);
    size_t head_bytes = (size_t)n;

    IT_ASSERT(harness_tcp_send(fd, "GET /status/201 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                               (size_t)-1) == 0,
              "send GET after HEAD");
    rr = harness_tcp_read(fd, &buf, NULL, 0, 5000);
    IT_ASSERT(rr == HARNESS_READ_EOF || rr == HARNESS_READ_RESET,
              "connection should close after Connection: close (%s)", harness_read_result_str(rr));
    IT_ASSERT(harness_parse_status(buf.data + head_bytes) == 201,
              "after the HEAD response the next bytes must be the 201 response, got: %.80s",
              buf.data + head_bytes);
    harness_buf_free(&buf);
    close(fd);
}

static void test_round_robin(void **state)
{
    int count[2] = {0, 0};
    for (int i = 0; i < 10; i++) {
        char *id = upstream_for_host("rr.test", "/status/200", NULL);
        if (strcmp(id, "u1") == 0)
            count[0]++;
        else if (strcmp(id, "u2") == 0)
            count[1]++;
        else
            IT_ASSERT(0, "request %d answered by \"%s\"", i, id);
        free(id);
    }
    IT_ASSERT(count[0] == 5 && count[1] == 5, "round robin over 10 requests: u1=%d u2=%d, expected 5/5",
              count[0], count[1]);

    /* also over one keep-alive downstream connection */
    harness_client_t *c = harness_client_new();
    char *url = harness_fmt("http://127.0.0.1:%d/status/200", g_port);
    count[0] = count[1] = 0;
    for (int i = 0; i < 10; i++) {
        harness_req_t req = {.url = url};
        harness_resp_t resp;
        IT_ASSERT(harness_client_do(c, &req, &resp) == 0, "keep-alive request %d: %s", i, resp.error);
        char *id = harness_resp_header(&resp, "x-upstream-id");
        count[0] += id != NULL && strcmp(id, "u1") == 0;
        count[1] += id != NULL && strcmp(id, "u2") == 0;
        free(id);
        harness_resp_free(&resp);
    }
    free(url);
    harness_client_free(c);
    IT_ASSERT(count[0] == 5 && count[1] == 5, "round robin over one connection: u1=%d u2=%d, expected 5/5",
              count[0], count[1]);
}

static void expect_host_routes_to(const char *host, const char *path, const char *want)
{
    long status;
    char *id = upstream_for_host(host, path, &status);
    IT_ASSERT(strcmp(id, want) == 0, "Host: %s, path %s: answered by \"%s\" (status %ld), expected %s", host,
              path, id, status, want);
    free(id);
}

static void expect_host_routes_to_backend(const char *host, const char *path)
{
    long status;
    char *id = upstream_for_host(host, path, &status);
    IT_ASSERT(strcmp(id, "u1") == 0 || strcmp(id, "u2") == 0,
              "Host: %s, path %s: answered by \"%s\" (status %ld), expected the \"*\" vhost (u1/u2)", host,
              path, id, status);
    free(id);
}

static void test_vhost_exact_and_wildcards(void **state)
{
    expect_host_routes_to("api.example.com", "/status/200", "api");
    expect_host_routes_to("a.wild.example.com", "/status/200", "wild");
    expect_host_routes_to("deep.a.wild.example.com", "/status/200", "wild");
    expect_host_routes_to("prefix-anything.test", "/status/200", "pre");
    /* "*.wild.example.com" needs something before the dot */
    expect_host_routes_to_backend("wild.example.com", "/status/200");
    expect_host_routes_to_backend("other.example.com", "/status/200");
    expect_host_routes_to_backend("xapi.example.com", "/status/200");
}

static void test_vhost_port_aware(void **state)
{
    expect_host_routes_to("ported.example.com:8080", "/status/200", "ported");
    expect_host_routes_to_backend("ported.example.com:9090", "/status/200");
}

static void test_route_path_vs_prefix(void **state)
{
    /* path match: exact path, query ignored */
    expect_host_routes_to("r.test", "/status/201", "exact");
    expect_host_routes_to("r.test", "/status/201?x=1", "exact");
    expect_host_routes_to_backend("r.test", "/status/2010");
    expect_host_routes_to_backend("r.test", "/status/201/");
    expect_host_routes_to_backend("r.test", "/status/202");
    /* prefix match */
    expect_host_routes_to("r.test", "/pfx", "exact");
    expect_host_routes_to("r.test", "/pfx/deeper?q", "exact");
    expect_host_routes_to("r.test", "/pfxtail", "exact");
    expect_host_routes_to_backend("r.test", "/pf");
}

static bool is_uuid_v4(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89abAB", s[19]) != NULL;
}

static void test_forwarded_headers(void **state)
{
    const char *headers[] = {"Connection: X-Hop",
                             "X-Hop: secret",
                             "X-Keep: yes",
                             "Keep-Alive: timeout=5",
                             "Proxy-Connection: keep-alive",
                             "TE: deflate",
                             "Upgrade: foo/1",
                             "Trailer: X-Checksum",
                             NULL};
    harness_req_t req = {.headers = headers};
    harness_resp_t resp;
    proxy_request(&req, "/headers", &resp);
    IT_ASSERT(resp.status == 200, "GET /headers status %ld", resp.status);
    const char *head = resp.body;

    char *rid = NULL;
    IT_ASSERT(upstream_saw_header(head, "x-request-id", &rid) == 1, "one x-request-id expected; head:\n%s",
              head);
    IT_ASSERT(is_uuid_v4(rid), "x-request-id \"%s\" is not a UUID v4", rid);
    char *proto = NULL;
    IT_ASSERT(upstream_saw_header(head, "x-forwarded-proto", &proto) == 1 && strcmp(proto, "http") == 0,
              "x-forwarded-proto: http expected; head:\n%s", head);
    IT_ASSERT(upstream_saw_header(head, "x-keep", NULL) == 1, "end-to-end header X-Keep lost; head:\n%s",
              head);
    static const char *const hop[] = {"x-hop", "keep-alive", "proxy-connection", "te", "upgrade", "trailer"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        IT_ASSERT(upstream_saw_header(head, hop[i], NULL) == 0,
                  "hop-by-hop header %s was forwarded; head:\n%s", hop[i], head);
    char *conn = NULL;
    if (upstream_saw_header(head, "connection", &conn) > 0)
        IT_ASSERT(strcasestr(conn, "x-hop") == NULL, "the downstream Connection header was forwarded: %s",
                  conn);
    free(conn);
    free(proto);
    harness_resp_free(&resp);

    /* a second request gets a different id */
    harness_req_t req2 = {0};
    proxy_request(&req2, "/headers", &resp);
    char *rid2 = NULL;
    IT_ASSERT(upstream_saw_header(resp.body, "x-request-id", &rid2) == 1 && is_uuid_v4(rid2) &&
                  strcmp(rid, rid2) != 0,
              "second request id \"%s\" should be a new UUID (first was %s)", rid2 ? rid2 : "(none)", rid);
    free(rid);
    free(rid2);
    harness_resp_free(&resp);
}

static void test_request_id_kept(void **state)
{
    const char *headers[] = {"X-Request-Id: my-own-id-123", NULL};
    harness_req_t req = {.headers = headers};
    harness_resp_t resp;
    proxy_request(&req, "/headers", &resp);
    char *rid = NULL;
    IT_ASSERT(upstream_saw_header(resp.body, "x-request-id", &rid) == 1 && strcmp(rid, "my-own-id-123") == 0,
              "a client's x-request-id must be kept as is; head:\n%s", resp.body);
    free(rid);
    harness_resp_free(&resp);
}

/* Transfer-Encoding is hop-by-hop: a chunked request is re-framed, and the upstream never sees
 * both Transfer-Encoding and Content-Length. */
static void test_chunked_request_reframed(void **state)
{
    harness_req_t req = {.method = "POST", .body = "hello chunks", .body_len = 12, .chunked_upload = true};
    harness_resp_t resp;
    proxy_request(&req, "/headers", &resp);
    IT_ASSERT(resp.status == 200, "status %ld", resp.status);
    char *te = NULL, *cl = NULL;
    int nte = upstream_saw_header(resp.body, "transfer-encoding", &te);
    int ncl = upstream_saw_header(resp.body, "content-length", &cl);
    IT_ASSERT((nte == 1 && ncl == 0 && strcasecmp(te, "chunked") == 0) ||
                  (nte == 0 && ncl == 1 && atoi(cl) == 12),
              "upstream framing must be either chunked or content-length: 12; head:\n%s", resp.body);
    free(te);
    free(cl);
    harness_resp_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_post_chunked),
        cmocka_unit_test(test_post_empty_body),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_vhost_exact_and_wildcards),
        cmocka_unit_test(test_vhost_port_aware),
        cmocka_unit_test(test_route_path_vs_prefix),
        cmocka_unit_test(test_forwarded_headers),
        cmocka_unit_test(test_request_id_kept),
        cmocka_unit_test(test_chunked_request_reframed),
    };
    return cmocka_run_group_tests_name("proxy_basic", tests, group_setup, group_teardown);
}
