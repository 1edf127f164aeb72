/* Table-driven tests for the strict HTTP/1.1 parser: valid heads, every rejection with its status,
 * prefix (split-point) behaviour, response framing rules and the chunked decoder. Inputs are copied
 * into exactly-sized heap buffers so a sanitizer build catches any read past the given length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_parser.h"

#define S(lit) lit, sizeof(lit) - 1
#define HCAP   128

/* Small limits for the limit rows: 32-byte request line, 128-byte head, 4 fields. */
static const rm_h1_limits_t small_limits = {32, 128, 4};

static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static int req(const char *s, size_t n, const rm_h1_limits_t *lim, rm_h1_header_t *hdrs, rm_h1_request_t *out)
{
    return rm_h1_parse_request(s, n, lim, hdrs, HCAP, out);
}

/* Parses a copy of s[0..n) and checks every proper prefix: a valid head must be INCOMPLETE at every
 * split point, an invalid one may be INCOMPLETE or already an error, never a success. */
static int req_with_prefixes(const char *s, size_t n, const rm_h1_limits_t *lim, rm_h1_request_t *out)
{
    static rm_h1_header_t hdrs[HCAP];
    int full;
    {
        char *copy = dup_exact(s, n);
        full = req(copy, n, lim, hdrs, out);
        free(copy);
    }
    size_t stop = full > 0 ? (size_t)full : n;
    for (size_t k = 0; k < stop; k++) {
        rm_h1_request_t tmp;
        char *p = dup_exact(s, k);
        int r = req(p, k, lim, hdrs, &tmp);
        free(p);
        if (full > 0) {
            if (r != RM_H1_INCOMPLETE)
                fail_msg("prefix %zu of a valid head returned %d (%s)", k, r, tmp.error ? tmp.error : "");
        } else {
            if (r != RM_H1_INCOMPLETE && r != RM_H1_ERROR)
                fail_msg("prefix %zu of an invalid head returned %d", k, r);
        }
    }
    /* Leave *out pointing into the caller's string, which outlives the copies. */
    assert_int_equal(req(s, n, lim, hdrs, out), full);
    return full;
}

/* ---------------------------------------------------------------- valid requests */

static void test_get_simple(void **state)
{
    (void)state;
    const char *m = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    rm_h1_request_t r;
    int n = req_with_prefixes(m, strlen(m), NULL, &r);
    assert_int_equal(n, (int)strlen(m));
    assert_int_equal(r.method_len, 3);
    assert_memory_equal(r.method, "GET", 3);
    assert_int_equal(r.target_len, strlen("/index.html?q=1"));
    assert_memory_equal(r.target, "/index.html?q=1", r.target_len);
    assert_int_equal(r.version_minor, 1);
    assert_int_equal(r.num_headers, 2);
    assert_int_equal(r.body_kind, RM_H1_BODY_NONE);
    assert_true(r.keep_alive);
    assert_false(r.expect_continue);
    assert_false(r.upgrade);
    assert_int_equal(r.host_len, 11);
    assert_memory_equal(r.host, "example.com", 11);
    assert_int_equal(r.error_status, 0);
    assert_null(r.error);
}

static void test_headers_point_into_buffer(void **state)
{
    (void)state;
    const char m[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Ows: \t a  b \t \r\nX-Obs: caf\xc3\xa9\r\n"
                     "x-tab:\tv\tw\r\n\r\n";
    rm_h1_header_t h[HCAP];
    rm_h1_request_t r;
    int n = req(m, sizeof(m) - 1, NULL, h, &r);
    assert_int_equal(n, (int)sizeof(m) - 1);
    assert_ptr_equal(r.headers, h);
    assert_int_equal(r.num_headers, 5);
    assert_ptr_equal(h[0].name, m + 16);
    assert_int_equal(h[0].name_len, 4);
    assert_int_equal(h[1].name_len, 7);
    assert_int_equal(h[1].value_len, 0);
    assert_int_equal(h[2].value_len, 4);
    assert_memory_equal(h[2].value, "a  b", 4);
    assert_int_equal(h[3].value_len, 5);
    assert_memory_equal(h[3].value, "caf\xc3\xa9", 5);
    assert_int_equal(h[4].value_len, 3);
    assert_memory_equal(h[4].value, "v\tw", 3);
}

static void test_post_content_length(void **state)
{
    (void)state;
    const char *m = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
    rm_h1_request_t r;
    int n = req_with_prefixes(m, strlen(m), NULL, &r);
    assert_int_equal(n, (int)strlen(m) - 11);
    assert_int_equal(r.body_kind, RM_H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 11);
}

static void test_post_chunked(void **state)
{
    (void)state;
    const char *m = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n";
    rm_h1_request_t r;
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.body_kind, RM_H1_BODY_CHUNKED);
    /* Empty list elements are ignored (RFC 9110 5.6.1). */
    m = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.body_kind, RM_H1_BODY_CHUNKED);
}

static void test_head_and_options(void **state)
{
    (void)state;
    rm_h1_request_t r;
    const char *m = "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_memory_equal(r.method, "HEAD", 4);
    m = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.target_len, 1);
    assert_int_equal(r.target[0], '*');
    m = "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
}

static void test_absolute_form(void **state)
{
    (void)state;
    rm_h1_request_t r;
    const char *m = "GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.target_len, strlen("http://example.com:8080/a?b"));
    m = "GET HTTPS://[::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
}

static void test_unknown_method_and_empty_host(void **state)
{
    (void)state;
    rm_h1_request_t r;
    /* Methods are opaque tokens; "connect" in lowercase is not CONNECT. */
    const char *m = "PURGE /x HTTP/1.1\r\nHost:\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_non_null(r.host);
    assert_int_equal(r.host_len, 0);
    m = "connect /x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
}

static void test_http10_keep_alive(void **state)
{
    (void)state;
    rm_h1_request_t r;
    const char *m = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.version_minor, 0);
    assert_false(r.keep_alive);
    assert_null(r.host);
    m = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_true(r.keep_alive);
    m = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.keep_alive);
    m = "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.keep_alive);
    m = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_true(r.keep_alive);
}

static void test_expect_and_upgrade(void **state)
{
    (void)state;
    rm_h1_request_t r;
    const char *m = "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_true(r.expect_continue);
    m = "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.expect_continue);
    m = "PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.expect_continue);

    m = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_true(r.upgrade);
    m = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.upgrade);
    m = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.upgrade);
    m = "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_false(r.upgrade);
}

static void test_content_length_forms(void **state)
{
    (void)state;
    rm_h1_request_t r;
    const char *m = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 005\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.body_kind, RM_H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 5);
    m = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_true(r.content_length == UINT64_MAX);
    m = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(req_with_prefixes(m, strlen(m), NULL, &r), (int)strlen(m));
    assert_int_equal(r.body_kind, RM_H1_BODY_LENGTH);
    assert_int_equal(r.content_length, 0);
}

static void test_leading_crlf_and_pipelining(void **state)
{
    (void)state;
    const char *m = "\r\n\r\nGET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /3 HTTP/1.0\r\n\r\n";
    size_t len = strlen(m);
    rm_h1_header_t h[HCAP];
    rm_h1_request_t r;
    size_t off = 0;

    int n = req(m, len, NULL, h, &r);
    assert_int_equal(n, 4 + (int)strlen("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_memory_equal(r.target, "/1", 2);
    off += (size_t)n;

    n = req(m + off, len - off, NULL, h, &r);
    assert_true(n > 0);
    assert_memory_equal(r.target, "/2", 2);
    assert_int_equal(r.body_kind, RM_H1_BODY_LENGTH);
    off += (size_t)n + r.content_length;

    n = req(m + off, len - off, NULL, h, &r);
    assert_int_equal(n, (int)(len - off));
    assert_memory_equal(r.target, "/3", 2);
    assert_int_equal(r.version_minor, 0);

    /* Only CRLFs so far: still waiting for the request line. */
    assert_int_equal(req(S("\r\n\r\n"), NULL, h, &r), RM_H1_INCOMPLETE);
    assert_int_equal(req(S("\r"), NULL, h, &r), RM_H1_INCOMPLETE);
    assert_int_equal(req("", 0, NULL, h, &r), RM_H1_INCOMPLETE);
}

/* Every valid request is INCOMPLETE at every split point and complete exactly at its end; appending
 * arbitrary bytes does not change the result. */
static void test_incomplete_at_every_split(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nGET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-E:\r\nX-W: \t v \t\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\n\r\n",
        "PUT http://h/x HTTP/1.1\r\nHost: h\r\nContent-Length: 10, 10\r\nExpect: 100-continue\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        size_t len = strlen(valid[i]);
        rm_h1_request_t r;
        int n = req_with_prefixes(valid[i], len, NULL, &r);
        if (n != (int)len)
            fail_msg("valid[%zu] returned %d (%s)", i, n, r.error ? r.error : "");
        char *more = malloc(len + 7);
        assert_non_null(more);
        memcpy(more, valid[i], len);
        memcpy(more + len, "\n\r\0 x\x01\xff", 7);
        rm_h1_header_t h[HCAP];
        assert_int_equal(req(more, len + 7, NULL, h, &r), (int)len);
        free(more);
    }
}

/* ---------------------------------------------------------------- limits */

static void test_limits_boundaries(void **state)
{
    (void)state;
    rm_h1_header_t h[HCAP];
    rm_h1_request_t r;
    /* Request line of exactly 32 bytes is allowed, 33 is 414 (complete or not). */
    const char *ok = "GET /234567890123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(strlen("GET /234567890123456789 HTTP/1.1"), 32);
    assert_int_equal(req_with_prefixes(ok, strlen(ok), &small_limits, &r), (int)strlen(ok));
    const char *bad = "GET /2345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(req_with_prefixes(bad, strlen(bad), &small_limits, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 414);
    /* Without any line end: 32 bytes wait, 33 bytes fail; a trailing CR at 33 may still be the end. */
    assert_int_equal(req(ok, 32, &small_limits, h, &r), RM_H1_INCOMPLETE);
    assert_int_equal(req(ok, 33, &small_limits, h, &r), RM_H1_INCOMPLETE);
    assert_int_equal(req(bad, 33, &small_limits, h, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 414);

    /* A head of exactly max_header_bytes (128) is allowed; one more byte is 431. */
    char m[256];
    const char *start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t sl = strlen(start);
    memcpy(m, start, sl);
    memset(m + sl, 'v', 128 - sl - 4);
    memcpy(m + 128 - 4, "\r\n\r\n", 4);
    assert_int_equal(req_with_prefixes(m, 128, &small_limits, &r), 128);
    memcpy(m, start, sl);
    memset(m + sl, 'v', 129 - sl - 4);
    memcpy(m + 129 - 4, "\r\n\r\n", 4);
    assert_int_equal(req_with_prefixes(m, 129, &small_limits, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 431);
    /* Detected before the head is complete: 129 bytes of an unfinished head. */
    memset(m + sl, 'v', 256 - sl);
    assert_int_equal(req(m, 129, &small_limits, h, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 431);
    assert_int_equal(req(m, 128, &small_limits, h, &r), RM_H1_INCOMPLETE);

    /* Exactly max_headers (4) fields are allowed; the fifth is 431 even before the head ends. */
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n";
    assert_int_equal(req_with_prefixes(four, strlen(four), &small_limits, &r), (int)strlen(four));
    const char *five = "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\nE: 4\r\n";
    assert_int_equal(req(five, strlen(five), &small_limits, h, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 431);

    /* The caller's storage bounds the count too. */
    assert_int_equal(rm_h1_parse_request(four, strlen(four), NULL, h, 3, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 431);
    assert_int_equal(rm_h1_parse_request(four, strlen(four), NULL, h, 4, &r), (int)strlen(four));

    /* Leading CRLFs count toward the head size. */
    char lead[200];
    memset(lead, 0, sizeof(lead));
    for (size_t i = 0; i < 130; i += 2)
        memcpy(lead + i, "\r\n", 2);
    assert_int_equal(req(lead, 130, &small_limits, h, &r), RM_H1_ERROR);
    assert_int_equal(r.error_status, 431);

    rm_h1_limits_t d;
    rm_h1_limits_default(&d);
    assert_int_equal(d.max_request_line, 16384);
    assert_int_equal(d.max_header_bytes, 60 * 1024);
    assert_int_equal(d.max_headers, 100);
}

/* ---------------------------------------------------------------- request rejections */

typedef struct {
    const char *desc;
    const char *raw;
    size_t len;
    int status;
    const rm_h1_limits_t *limits;
    const char *why; /* expected reason */
} reject_row_t;

/* clang-format off */
#define REJ(desc, lit, st, why) {desc, lit, sizeof(lit) - 1, st, NULL, why}
#define REJ_SMALL(desc, lit, st, why) {desc, lit, sizeof(lit) - 1, st, &small_limits, why}
/* clang-format on */
#define H11(line)    line " HTTP/1.1\r\nHost: a\r\n\r\n"
#define WITH(fields) "GET / HTTP/1.1\r\nHost: a\r\n" fields "\r\n"
#define POST(fields) "POST / HTTP/1.1\r\nHost: a\r\n" fields "\r\n"

static const reject_row_t reject_rows[] = {
    /* request line */
    REJ("method with invalid char", H11("G@T /"), 400, "invalid method"),
    REJ("method empty", H11(" /"), 400, "invalid method"),
    REJ("method with CTL", H11("G\x01T /"), 400, "invalid method"),
    REJ("two spaces before target", H11("GET  /"), 400, "invalid request target"),
    REJ("two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method"),
    REJ("target with CTL", H11("GET /a\x01"), 400, "invalid character in request target"),
    REJ("target with NUL", H11("GET /a\0b"), 400, "invalid character in request target"),
    REJ("target with bare CR", H11("GET /a\rb"), 400, "invalid character in request target"),
    REJ("target with DEL", H11("GET /a\x7f"), 400, "invalid character in request target"),
    REJ("target with HTAB", H11("GET /a\tb"), 400, "invalid character in request target"),
    REJ("target with obs-text", H11("GET /caf\xc3\xa9"), 400, "invalid character in request target"),
    REJ("relative target", H11("GET a/b"), 400, "invalid request target"),
    REJ("asterisk outside OPTIONS", H11("GET *"), 400, "asterisk-form target outside OPTIONS"),
    REJ("asterisk with suffix", H11("OPTIONS *x"), 400, "invalid request target"),
    REJ("absolute-form without authority", H11("GET http:///x"), 400, "invalid request target"),
    REJ("absolute-form with userinfo", H11("GET http://user@h/x"), 400, "invalid request target"),
    REJ("absolute-form with bad authority", H11("GET http://h\"x/"), 400, "invalid request target"),
    REJ("absolute-form with other scheme", H11("GET ftp://h/x"), 400, "invalid request target"),
    REJ("authority-form outside CONNECT", H11("GET example.com:80"), 400, "invalid request target"),
    REJ("HTTP/0.9 request line", "GET /\r\n\r\n", 400, "missing HTTP version"),
    REJ("missing version after space", "GET / \r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("version with two minor digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("version without dot", "GET / HTTP/11\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("garbage version", "GET / FOO/1.1\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    REJ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"),
    REJ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"),
    REJ("HTTP/0.9 with version", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "unsupported HTTP version"),
    REJ("h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "unsupported HTTP version"),
    REJ("request line ends in bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"),
    REJ("request line with CR before CRLF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400,
        "invalid HTTP version"),
    REJ("leading bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF"),
    REJ("leading bare CR", "\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare CR"),
    REJ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501,
        "CONNECT not supported"),
    REJ_SMALL("request line over limit", "GET /2345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n", 414,
              "request line too long"),
    REJ_SMALL("request line over limit, no CRLF yet", "GET /2345678901234567890123456789", 414,
              "request line too long"),
    /* Host */
    REJ("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "missing host header"),
    REJ("two Host fields", WITH("Host: b\r\n"), 400, "multiple host headers"),
    REJ("two Host fields, same value", WITH("host: a\r\n"), 400, "multiple host headers"),
    REJ("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid host header"),
    REJ("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid host header"),
    REJ("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "invalid host header"),
    REJ("Host with obs-text", "GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", 400, "invalid host header"),
    /* field syntax */
    REJ("obs-fold", WITH("X: a\r\n b\r\n"), 400, "obsolete line folding"),
    REJ("obs-fold with HTAB", WITH("X: a\r\n\tb\r\n"), 400, "obsolete line folding"),
    REJ("whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obsolete line folding"),
    REJ("space before colon", WITH("X : a\r\n"), 400, "whitespace before colon"),
    REJ("tab before colon", WITH("X\t: a\r\n"), 400, "whitespace before colon"),
    REJ("empty field name", WITH(": a\r\n"), 400, "empty header name"),
    REJ("name with invalid char", WITH("X(y): a\r\n"), 400, "invalid header name"),
    REJ("name with slash", WITH("X/y: a\r\n"), 400, "invalid header name"),
    REJ("name with obs-text", WITH("X\xc3\xa9: a\r\n"), 400, "invalid header name"),
    REJ("name with NUL", WITH("X\0Y: a\r\n"), 400, "invalid header name"),
    REJ("line without colon", WITH("NoColon\r\n"), 400, "header line without colon"),
    REJ("bare CR in name", WITH("X\rY: a\r\n"), 400, "header line without colon"),
    REJ("bare CR in value", WITH("X: a\rb\r\n"), 400, "bare CR"),
    REJ("bare CR before CRLF", WITH("X: a\r\r\n"), 400, "bare CR"),
    REJ("field line ends in bare LF", WITH("X: a\n"), 400, "bare LF"),
    REJ("head ends in bare LF", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"),
    REJ("head ends in bare CR", "GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, "bare CR"),
    REJ("NUL in value", WITH("X: a\0b\r\n"), 400, "invalid character in header value"),
    REJ("SOH in value", WITH("X: a\x01\r\n"), 400, "invalid character in header value"),
    REJ("ESC in value", WITH("X: \x1b[0m\r\n"), 400, "invalid character in header value"),
    REJ("US in value", WITH("X: \x1f\r\n"), 400, "invalid character in header value"),
    REJ("DEL in value", WITH("X: a\x7f\r\n"), 400, "invalid character in header value"),
    REJ("vertical tab in value", WITH("X: a\vb\r\n"), 400, "invalid character in header value"),
    REJ("form feed in value", WITH("X: a\fb\r\n"), 400, "invalid character in header value"),
    /* Content-Length */
    REJ("CL with TE", POST("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400,
        "both content-length and transfer-encoding"),
    REJ("TE with CL", POST("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400,
        "both content-length and transfer-encoding"),
    REJ("CL not digits", POST("Content-Length: abc\r\n"), 400, "invalid content-length"),
    REJ("CL negative", POST("Content-Length: -1\r\n"), 400, "invalid content-length"),
    REJ("CL with plus", POST("Content-Length: +1\r\n"), 400, "invalid content-length"),
    REJ("CL hex", POST("Content-Length: 0x10\r\n"), 400, "invalid content-length"),
    REJ("CL decimal point", POST("Content-Length: 1.0\r\n"), 400, "invalid content-length"),
    REJ("CL empty", POST("Content-Length:\r\n"), 400, "invalid content-length"),
    REJ("CL inner space", POST("Content-Length: 1 2\r\n"), 400, "invalid content-length"),
    REJ("CL overflow", POST("Content-Length: 18446744073709551616\r\n"), 400, "content-length overflow"),
    REJ("CL long overflow", POST("Content-Length: 99999999999999999999999\r\n"), 400,
        "content-length overflow"),
    REJ("CL differing fields", POST("Content-Length: 5\r\nContent-Length: 6\r\n"), 400,
        "conflicting content-length"),
    REJ("CL differing list", POST("Content-Length: 5, 6\r\n"), 400, "conflicting content-length"),
    REJ("CL empty list element", POST("Content-Length: 5,\r\n"), 400, "invalid content-length"),
    REJ("CL only comma", POST("Content-Length: ,\r\n"), 400, "invalid content-length"),
    /* Transfer-Encoding */
    REJ("TE gzip then chunked", POST("Transfer-Encoding: gzip, chunked\r\n"), 501,
        "unsupported transfer-coding"),
    REJ("TE split gzip then chunked", POST("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 501,
        "unsupported transfer-coding"),
    REJ("TE chunked then gzip", POST("Transfer-Encoding: chunked, gzip\r\n"), 400,
        "transfer-encoding does not end in chunked"),
    REJ("TE split chunked then gzip", POST("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 400,
        "transfer-encoding does not end in chunked"),
    REJ("TE gzip only", POST("Transfer-Encoding: gzip\r\n"), 400,
        "transfer-encoding does not end in chunked"),
    REJ("TE identity", POST("Transfer-Encoding: identity\r\n"), 400,
        "transfer-encoding does not end in chunked"),
    REJ("TE chunked twice", POST("Transfer-Encoding: chunked, chunked\r\n"), 400,
        "chunked applied more than once"),
    REJ("TE chunked twice in two fields",
        POST("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400,
        "chunked applied more than once"),
    REJ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "transfer-encoding in HTTP/1.0 request"),
    REJ("TE chunked with parameter", POST("Transfer-Encoding: chunked;q=1\r\n"), 400,
        "invalid transfer-encoding"),
    REJ("TE empty", POST("Transfer-Encoding:\r\n"), 400, "invalid transfer-encoding"),
    REJ("TE only commas", POST("Transfer-Encoding: , ,\r\n"), 400, "invalid transfer-encoding"),
    REJ("TE invalid token", POST("Transfer-Encoding: chu nked\r\n"), 400, "invalid transfer-encoding"),
    REJ("TE quoted", POST("Transfer-Encoding: \"chunked\"\r\n"), 400, "invalid transfer-encoding"),
    REJ("TE chunked with trailing junk", POST("Transfer-Encoding: chunked x\r\n"), 400,
        "invalid transfer-encoding"),
    REJ("TE bad parameter", POST("Transfer-Encoding: gzip;q, chunked\r\n"), 400, "invalid transfer-encoding"),
    /* Connection */
    REJ("Connection with non-token", WITH("Connection: close;x\r\n"), 400, "invalid connection header"),
    REJ("Connection with space inside", WITH("Connection: keep alive\r\n"), 400, "invalid connection header"),
    /* limits */
    REJ_SMALL("too many fields", "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\nE: 4\r\n\r\n", 431,
              "too many header fields"),
    REJ_SMALL(
        "head too large",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901234567890123456789012345678901234"
        "567890123456789012345678901234567890\r\n\r\n",
        431, "header section too large"),
    REJ_SMALL(
        "head too large, unfinished",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901234567890123456789012345678901234"
        "5678901234567890123456789012345678901234567890",
        431, "header section too large"),
};

static void test_request_rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reject_rows) / sizeof(reject_rows[0]); i++) {
        const reject_row_t *row = &reject_rows[i];
        rm_h1_request_t r;
        int n = req_with_prefixes(row->raw, row->len, row->limits, &r);
        if (n != RM_H1_ERROR)
            fail_msg("row '%s': expected error %d, got %d", row->desc, row->status, n);
        if (r.error_status != row->status)
            fail_msg("row '%s': expected %d, got %d (%s)", row->desc, row->status, r.error_status, r.error);
        if (r.error == NULL || strcmp(r.error, row->why) != 0)
            fail_msg("row '%s': expected '%s', got '%s'", row->desc, row->why, r.error ? r.error : "(null)");
    }
}

/* ---------------------------------------------------------------- responses */

typedef struct {
    const char *desc;
    const char *raw;
    size_t len;
    bool head;
    bool ok;
    int status;
    rm_h1_body_kind_t body;
    uint64_t cl;
    bool keep_alive;
    const char *why; /* expected reason for error rows */
} resp_row_t;

/* clang-format off */
#define RESP_OK(desc, lit, head, st, body, cl, ka) {desc, lit, sizeof(lit) - 1, head, true, st, body, cl, ka, NULL}
#define RESP_ERR(desc, lit, why) {desc, lit, sizeof(lit) - 1, false, false, 0, 0, 0, false, why}
/* clang-format on */

static const resp_row_t resp_rows[] = {
    RESP_OK("200 with CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 200, RM_H1_BODY_LENGTH, 5,
            true),
    RESP_OK("200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200,
            RM_H1_BODY_CHUNKED, 0, true),
    RESP_OK("200 gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 200,
            RM_H1_BODY_CHUNKED, 0, true),
    RESP_OK("200 TE not ending in chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 200,
            RM_H1_BODY_UNTIL_CLOSE, 0, false),
    RESP_OK("200 without framing", "HTTP/1.1 200 OK\r\n\r\n", false, 200, RM_H1_BODY_UNTIL_CLOSE, 0, false),
    RESP_OK("204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, RM_H1_BODY_NONE, 0, true),
    RESP_OK("304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false, 304,
            RM_H1_BODY_NONE, 100, true),
    RESP_OK("100 continue", "HTTP/1.1 100 Continue\r\n\r\n", false, 100, RM_H1_BODY_NONE, 0, true),
    RESP_OK("101 switching", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n",
            false, 101, RM_H1_BODY_NONE, 0, true),
    RESP_OK("HEAD with CL", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, 200, RM_H1_BODY_NONE,
            1234, true),
    RESP_OK("HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200,
            RM_H1_BODY_NONE, 0, true),
    RESP_OK("HEAD without framing", "HTTP/1.1 200 OK\r\n\r\n", true, 200, RM_H1_BODY_NONE, 0, true),
    RESP_OK("close token", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, 200,
            RM_H1_BODY_LENGTH, 0, false),
    RESP_OK("HTTP/1.0 with CL", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false, 200, RM_H1_BODY_LENGTH,
            2, false),
    RESP_OK("HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
            false, 200, RM_H1_BODY_LENGTH, 2, true),
    RESP_OK("identical CL list", "HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
            false, 200, RM_H1_BODY_LENGTH, 7, true),
    RESP_OK("no reason, with space", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404,
            RM_H1_BODY_LENGTH, 0, true),
    RESP_OK("no reason, no space", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", false, 503, RM_H1_BODY_LENGTH,
            0, true),
    RESP_OK("reason with obs-text and tab",
            "HTTP/1.1 200 D\xc3\xa9j\xc3\xa0\tvu\r\nContent-Length: 0\r\n\r\n", false, 200, RM_H1_BODY_LENGTH,
            0, true),
    RESP_OK("status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", false, 999, RM_H1_BODY_LENGTH, 0,
            true),
    RESP_OK("leading CRLF", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, RM_H1_BODY_LENGTH,
            0, true),
    RESP_ERR("status 099", "HTTP/1.1 099 X\r\n\r\n", "invalid status code"),
    RESP_ERR("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", "invalid status code"),
    RESP_ERR("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", "invalid status code"),
    RESP_ERR("status glued to reason", "HTTP/1.1 200OK\r\n\r\n", "invalid status code"),
    RESP_ERR("status with letters", "HTTP/1.1 2x0 OK\r\n\r\n", "invalid status code"),
    RESP_ERR("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", "invalid status code"),
    RESP_ERR("HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", "invalid HTTP version"),
    RESP_ERR("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", "invalid HTTP version"),
    RESP_ERR("lowercase version", "http/1.1 200 OK\r\n\r\n", "invalid HTTP version"),
    RESP_ERR("no status", "HTTP/1.1\r\n\r\n", "invalid status code"),
    RESP_ERR("reason with CTL", "HTTP/1.1 200 O\x01K\r\n\r\n", "invalid character in reason phrase"),
    RESP_ERR("reason with bare CR", "HTTP/1.1 200 O\rK\r\n\r\n", "invalid character in reason phrase"),
    RESP_ERR("status line bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF"),
    RESP_ERR("TE with CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
             "both content-length and transfer-encoding"),
    RESP_ERR("differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
             "conflicting content-length"),
    RESP_ERR("bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 3a\r\n\r\n", "invalid content-length"),
    RESP_ERR("CL overflow", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
             "content-length overflow"),
    RESP_ERR("TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             "transfer-encoding in HTTP/1.0 response"),
    RESP_ERR("chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
             "chunked applied more than once"),
    RESP_ERR("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obsolete line folding"),
    RESP_ERR("space before colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "whitespace before colon"),
    RESP_ERR("NUL in value", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", "invalid character in header value"),
    RESP_ERR("field bare LF", "HTTP/1.1 200 OK\r\nX: a\n\r\n", "bare LF"),
    RESP_ERR("bare CR ending head", "HTTP/1.1 200 OK\r\n\rX", "bare CR"),
};

static void test_response_rows(void **state)
{
    (void)state;
    rm_h1_header_t h[HCAP];
    for (size_t i = 0; i < sizeof(resp_rows) / sizeof(resp_rows[0]); i++) {
        const resp_row_t *row = &resp_rows[i];
        rm_h1_response_t r;
        char *copy = dup_exact(row->raw, row->len);
        int n = rm_h1_parse_response(copy, row->len, NULL, row->head, h, HCAP, &r);
        if (row->ok) {
            if (n != (int)row->len)
                fail_msg("row '%s': returned %d (%s)", row->desc, n, r.error ? r.error : "");
            if (r.status != row->status || r.body_kind != row->body || r.keep_alive != row->keep_alive)
                fail_msg("row '%s': status %d body %d keep_alive %d", row->desc, r.status, (int)r.body_kind,
                         (int)r.keep_alive);
            if (row->body == RM_H1_BODY_LENGTH && r.content_length != row->cl)
                fail_msg("row '%s': content_length %llu", row->desc, (unsigned long long)r.content_length);
            assert_null(r.error);
        } else {
            if (n != RM_H1_ERROR || r.error == NULL || strcmp(r.error, row->why) != 0)
                fail_msg("row '%s': expected error '%s', got %d '%s'", row->desc, row->why, n,
                         r.error ? r.error : "");
        }
        free(copy);
        /* Prefixes: a valid head is INCOMPLETE at every split; an invalid one never succeeds. */
        size_t stop = n > 0 ? (size_t)n : row->len;
        for (size_t k = 0; k < stop; k++) {
            char *p = dup_exact(row->raw, k);
            int pr = rm_h1_parse_response(p, k, NULL, row->head, h, HCAP, &r);
            free(p);
            if (row->ok ? pr != RM_H1_INCOMPLETE : (pr != RM_H1_INCOMPLETE && pr != RM_H1_ERROR))
                fail_msg("row '%s': prefix %zu returned %d", row->desc, k, pr);
        }
    }
}

static void test_response_fields(void **state)
{
    (void)state;
    rm_h1_header_t h[HCAP];
    rm_h1_response_t r;
    const char *m = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-A:  b \r\n\r\nHTTP/1.1 200 OK\r\n";
    int n = rm_h1_parse_response(m, strlen(m), NULL, false, h, HCAP, &r);
    assert_int_equal(n, (int)(strstr(m, "\r\n\r\n") - m) + 4);
    assert_int_equal(r.version_minor, 1);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.reason_len, 9);
    assert_memory_equal(r.reason, "Not Found", 9);
    assert_int_equal(r.num_headers, 2);
    assert_ptr_equal(r.headers, h);
    assert_memory_equal(h[1].value, "b", 1);
    assert_int_equal(h[1].value_len, 1);

    /* Limits: too large (complete or not) and too many fields are errors. */
    const char *big =
        "HTTP/1.1 200 OK\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456"
        "78901234567890123456789012345678901234567890123456789\r\n\r\n";
    assert_int_equal(rm_h1_parse_response(big, strlen(big), &small_limits, false, h, HCAP, &r), RM_H1_ERROR);
    assert_non_null(r.error);
    assert_int_equal(rm_h1_parse_response(big, 129, &small_limits, false, h, HCAP, &r), RM_H1_ERROR);
    assert_int_equal(rm_h1_parse_response(big, 128, &small_limits, false, h, HCAP, &r), RM_H1_INCOMPLETE);
    const char *many = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n";
    assert_int_equal(rm_h1_parse_response(many, strlen(many), &small_limits, false, h, HCAP, &r),
                     RM_H1_ERROR);
    assert_non_null(r.error);
    /* The request-line limit does not apply to status lines. */
    const char *longreason = "HTTP/1.1 200 A very long reason phrase that exceeds thirty-two bytes\r\n\r\n";
    assert_int_equal(rm_h1_parse_response(longreason, strlen(longreason), &small_limits, false, h, HCAP, &r),
                     (int)strlen(longreason));
}

/* ---------------------------------------------------------------- chunked */

typedef struct {
    char body[8192];
    size_t body_len;
    char trailers[8][64];
    size_t num_trailers;
    rm_h1_chunk_event_t last;
    size_t leftover; /* bytes of input not consumed when the decoder finished */
    const char *error;
} decoded_t;

/* Plays the caller: keeps unconsumed bytes in a buffer, appends `step` new bytes whenever the
 * decoder asks for more, stops at DONE or ERROR. Each call sees an exactly-sized heap copy. */
static void decode(const char *in, size_t len, size_t step, const rm_h1_limits_t *lim, decoded_t *d)
{
    rm_h1_chunked_t c;
    rm_h1_chunked_init(&c, lim);
    memset(d, 0, sizeof(*d));
    char *pending = malloc(len + 1);
    assert_non_null(pending);
    size_t plen = 0, fed = 0;
    size_t add = step < len ? step : len;
    memcpy(pending, in, add);
    plen = add;
    fed = add;
    for (int guard = 0; guard < 1000000; guard++) {
        char *view = dup_exact(pending, plen);
        size_t consumed = 12345;
        rm_h1_chunk_out_t out;
        rm_h1_chunk_event_t ev = rm_h1_chunked_next(&c, view, plen, &consumed, &out);
        assert_true(consumed <= plen);
        if (ev == RM_H1_CHUNK_DATA) {
            assert_true(out.data >= view && out.data + out.data_len <= view + consumed);
            assert_true(out.data_len > 0);
            assert_true(d->body_len + out.data_len <= sizeof(d->body));
            memcpy(d->body + d->body_len, out.data, out.data_len);
            d->body_len += out.data_len;
        } else if (ev == RM_H1_CHUNK_TRAILER) {
            assert_true(d->num_trailers < 8);
            snprintf(d->trailers[d->num_trailers++], 64, "%.*s=%.*s", (int)out.trailer.name_len,
                     out.trailer.name, (int)out.trailer.value_len, out.trailer.value);
        }
        free(view);
        memmove(pending, pending + consumed, plen - consumed);
        plen -= consumed;
        if (ev == RM_H1_CHUNK_DONE || ev == RM_H1_CHUNK_ERROR) {
            d->last = ev;
            d->error = out.error;
            d->leftover = plen + (len - fed);
            if (ev == RM_H1_CHUNK_ERROR) {
                assert_non_null(out.error);
            } else {
                /* Finished decoders stay finished and consume nothing more. */
                rm_h1_chunk_out_t again;
                assert_int_equal(rm_h1_chunked_next(&c, pending, plen, &consumed, &again), RM_H1_CHUNK_DONE);
                assert_int_equal(consumed, 0);
                assert_true(rm_h1_chunked_is_done(&c));
            }
            free(pending);
            return;
        }
        if (ev == RM_H1_CHUNK_NEED_MORE) {
            if (fed == len) {
                d->last = ev;
                d->leftover = plen;
                free(pending);
                return;
            }
            add = step < len - fed ? step : len - fed;
            memcpy(pending + plen, in + fed, add);
            plen += add;
            fed += add;
        }
    }
    fail_msg("decoder made no progress");
}

typedef struct {
    const char *desc;
    const char *raw;
    size_t len;
    const char *body;
    size_t body_len;
    size_t num_trailers;
    const char *trailer0;
    size_t leftover;
} chunk_ok_row_t;

/* clang-format off */
#define CHUNK_OK(desc, lit, body, nt, t0, left) {desc, lit, sizeof(lit) - 1, body, sizeof(body) - 1, nt, t0, left}
/* clang-format on */

static const chunk_ok_row_t chunk_ok_rows[] = {
    CHUNK_OK("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 0, NULL, 0),
    CHUNK_OK("empty body", "0\r\n\r\n", "", 0, NULL, 0),
    CHUNK_OK("hex upper and lower", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
             "0123456789abcdefghijk", 0, NULL, 0),
    CHUNK_OK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 0, NULL, 0),
    CHUNK_OK("sixteen digits", "0000000000000003\r\nabc\r\n0\r\n\r\n", "abc", 0, NULL, 0),
    CHUNK_OK("extension without value", "3;foo\r\nabc\r\n0\r\n\r\n", "abc", 0, NULL, 0),
    CHUNK_OK("extensions with values", "3;a=b;c=\"x y\\\"z\"\r\nabc\r\n0;last=1\r\n\r\n", "abc", 0, NULL, 0),
    CHUNK_OK("extension with BWS", "3 ; a = b\t;c\r\nabc\r\n0\r\n\r\n", "abc", 0, NULL, 0),
    CHUNK_OK("quoted extension with obs-text", "3;a=\"\xc3\xa9\"\r\nabc\r\n0\r\n\r\n", "abc", 0, NULL, 0),
    CHUNK_OK("trailers", "3\r\nabc\r\n0\r\nX-Sum:  123 \r\nY:\r\n\r\n", "abc", 2, "X-Sum=123", 0),
    CHUNK_OK("binary data", "4\r\n\r\n\0\xff\r\n0\r\n\r\n", "\r\n\0\xff", 0, NULL, 0),
    CHUNK_OK("next message untouched", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "x", 0, NULL, 16),
};

static void test_chunked_valid(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 2, 3, 7, SIZE_MAX};
    for (size_t i = 0; i < sizeof(chunk_ok_rows) / sizeof(chunk_ok_rows[0]); i++) {
        const chunk_ok_row_t *row = &chunk_ok_rows[i];
        size_t body_len = row->body_len;
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            decoded_t d;
            decode(row->raw, row->len, steps[s], NULL, &d);
            if (d.last != RM_H1_CHUNK_DONE)
                fail_msg("row '%s' step %zu: ended with %d (%s)", row->desc, steps[s], (int)d.last,
                         d.error ? d.error : "");
            if (d.body_len != body_len || memcmp(d.body, row->body, body_len) != 0)
                fail_msg("row '%s' step %zu: body mismatch (%zu bytes)", row->desc, steps[s], d.body_len);
            assert_int_equal(d.num_trailers, row->num_trailers);
            if (row->trailer0 != NULL)
                assert_string_equal(d.trailers[0], row->trailer0);
            assert_int_equal(d.leftover, row->leftover);
        }
    }
}

static void test_chunked_events(void **state)
{
    (void)state;
    rm_h1_chunked_t c;
    rm_h1_chunk_out_t out;
    size_t consumed;
    rm_h1_chunked_init(&c, NULL);
    /* A size line split before its LF is not consumed. */
    assert_int_equal(rm_h1_chunked_next(&c, "5\r", 2, &consumed, &out), RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(consumed, 0);
    /* DATA hands out what is there, pointing into the input. */
    const char *in = "5\r\nhel";
    assert_int_equal(rm_h1_chunked_next(&c, in, 6, &consumed, &out), RM_H1_CHUNK_DATA);
    assert_ptr_equal(out.data, in + 3);
    assert_int_equal(out.data_len, 3);
    assert_int_equal(consumed, 6);
    assert_int_equal(rm_h1_chunked_next(&c, "", 0, &consumed, &out), RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(consumed, 0);
    assert_int_equal(rm_h1_chunked_next(&c, "lo\r\n0\r\n", 7, &consumed, &out), RM_H1_CHUNK_DATA);
    assert_int_equal(out.data_len, 2);
    assert_int_equal(consumed, 2);
    /* CRLF and the last-chunk line are consumed; the trailer section is not there yet. */
    assert_int_equal(rm_h1_chunked_next(&c, "\r\n0\r\n", 5, &consumed, &out), RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(consumed, 5);
    assert_false(rm_h1_chunked_is_done(&c));
    assert_int_equal(rm_h1_chunked_next(&c, "T: v\r", 5, &consumed, &out), RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(consumed, 0);
    in = "T: v\r\n\r\n";
    assert_int_equal(rm_h1_chunked_next(&c, in, 8, &consumed, &out), RM_H1_CHUNK_TRAILER);
    assert_int_equal(consumed, 6);
    assert_ptr_equal(out.trailer.name, in);
    assert_int_equal(out.trailer.name_len, 1);
    assert_ptr_equal(out.trailer.value, in + 3);
    assert_int_equal(out.trailer.value_len, 1);
    assert_int_equal(rm_h1_chunked_next(&c, "\r", 1, &consumed, &out), RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(consumed, 0);
    assert_int_equal(rm_h1_chunked_next(&c, "\r\nX", 3, &consumed, &out), RM_H1_CHUNK_DONE);
    assert_int_equal(consumed, 2);
    assert_true(rm_h1_chunked_is_done(&c));

    /* The largest size: DATA keeps coming and the remaining count is tracked across calls. */
    rm_h1_chunked_init(&c, NULL);
    assert_int_equal(rm_h1_chunked_next(&c, "ffffffffffffffff\r\nab", 20, &consumed, &out), RM_H1_CHUNK_DATA);
    assert_int_equal(out.data_len, 2);
    assert_int_equal(rm_h1_chunked_next(&c, "cd\r\n", 4, &consumed, &out), RM_H1_CHUNK_DATA);
    assert_int_equal(out.data_len, 4);
    assert_int_equal(c._remaining, UINT64_MAX - 6);

    /* A chunk-size line of exactly RM_H1_CHUNK_LINE_MAX bytes is accepted. */
    char line[RM_H1_CHUNK_LINE_MAX + 16];
    memcpy(line, "1;x=", 4);
    memset(line + 4, 'a', RM_H1_CHUNK_LINE_MAX - 6);
    memcpy(line + RM_H1_CHUNK_LINE_MAX - 2, "\r\nz", 3);
    rm_h1_chunked_init(&c, NULL);
    assert_int_equal(rm_h1_chunked_next(&c, line, RM_H1_CHUNK_LINE_MAX + 1, &consumed, &out),
                     RM_H1_CHUNK_DATA);
    assert_int_equal(out.data_len, 1);
    assert_int_equal(out.data[0], 'z');
}

typedef struct {
    const char *desc;
    const char *raw;
    size_t len;
    const rm_h1_limits_t *limits;
    const char *why;
} chunk_err_row_t;

/* clang-format off */
#define CHUNK_ERR(desc, lit, why) {desc, lit, sizeof(lit) - 1, NULL, why}
#define CHUNK_ERR_SMALL(desc, lit, why) {desc, lit, sizeof(lit) - 1, &small_limits, why}
/* clang-format on */

static const chunk_err_row_t chunk_err_rows[] = {
    CHUNK_ERR("not hex", "x\r\n", "invalid chunk size"),
    CHUNK_ERR("empty size", "\r\n", "invalid chunk size"),
    CHUNK_ERR("leading space", " 5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
    CHUNK_ERR("leading tab", "\t5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
    CHUNK_ERR("minus sign", "-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
    CHUNK_ERR("plus sign", "+5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"),
    CHUNK_ERR("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("seventeen digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", "chunk size too large"),
    CHUNK_ERR("overflow", "10000000000000000\r\n", "chunk size too large"),
    CHUNK_ERR("size line bare LF", "5\nhello\r\n0\r\n\r\n", "bare LF in chunk size line"),
    CHUNK_ERR("size line bare CR", "5\rhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("size line CR CR LF", "5\r\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("trailing whitespace", "5 \r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("empty extension name", "5;\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("extension name not a token", "5;a@b\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("extension value with space", "5;a=b c\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("unterminated quoted extension", "5;a=\"b\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("CTL in quoted extension", "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("NUL in extension", "5;a\0\r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("extension trailing whitespace", "5;a=b \r\nhello\r\n0\r\n\r\n", "invalid chunk extension"),
    CHUNK_ERR("data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data"),
    CHUNK_ERR("data shorter than size", "5\r\nhell\r\n0\r\n\r\n", "missing CRLF after chunk data"),
    CHUNK_ERR("bare LF after data", "5\r\nhello\n0\r\n\r\n", "missing CRLF after chunk data"),
    CHUNK_ERR("bare CR after data", "5\r\nhello\r0\r\n\r\n", "missing CRLF after chunk data"),
    CHUNK_ERR("trailer bare LF", "0\r\nX: y\n\r\n", "bare LF"),
    CHUNK_ERR("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", "obsolete line folding"),
    CHUNK_ERR("trailer without colon", "0\r\nX\r\n\r\n", "header line without colon"),
    CHUNK_ERR("trailer space before colon", "0\r\nX : a\r\n\r\n", "whitespace before colon"),
    CHUNK_ERR("trailer empty name", "0\r\n: a\r\n\r\n", "empty header name"),
    CHUNK_ERR("trailer NUL in value", "0\r\nX: \0\r\n\r\n", "invalid character in header value"),
    CHUNK_ERR("final bare LF", "0\r\n\n", "bare LF"),
    CHUNK_ERR("final bare CR", "0\r\n\rX", "bare CR"),
    CHUNK_ERR_SMALL("too many trailers", "0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n",
                    "too many trailer fields"),
    CHUNK_ERR_SMALL(
        "trailers too large",
        "0\r\nX: 01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n"
        "Y: 0123456789012345678901234567890123456789\r\n\r\n",
        "trailer section too large"),
    CHUNK_ERR_SMALL(
        "trailer line too large, unfinished",
        "0\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
        "2345678901234567890123456789012345678901234567890123456789",
        "trailer section too large"),
};

static void test_chunked_errors(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 4, SIZE_MAX};
    for (size_t i = 0; i < sizeof(chunk_err_rows) / sizeof(chunk_err_rows[0]); i++) {
        const chunk_err_row_t *row = &chunk_err_rows[i];
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            decoded_t d;
            decode(row->raw, row->len, steps[s], row->limits, &d);
            if (d.last != RM_H1_CHUNK_ERROR || strcmp(d.error, row->why) != 0)
                fail_msg("row '%s' step %zu: expected ERROR '%s', got %d '%s'", row->desc, steps[s], row->why,
                         (int)d.last, d.error ? d.error : "");
        }
    }
    /* Errors are sticky. */
    rm_h1_chunked_t c;
    rm_h1_chunk_out_t out;
    size_t consumed;
    rm_h1_chunked_init(&c, NULL);
    assert_int_equal(rm_h1_chunked_next(&c, S("z\r\n"), &consumed, &out), RM_H1_CHUNK_ERROR);
    assert_int_equal(rm_h1_chunked_next(&c, S("5\r\nhello"), &consumed, &out), RM_H1_CHUNK_ERROR);
    assert_non_null(out.error);
    assert_int_equal(consumed, 0);
}

static void test_chunked_line_too_long(void **state)
{
    (void)state;
    size_t n = RM_H1_CHUNK_LINE_MAX + 100;
    char *line = malloc(n);
    assert_non_null(line);
    memcpy(line, "1;x=", 4);
    memset(line + 4, 'a', n - 4);
    /* One byte over the limit with the line end present. */
    memcpy(line + RM_H1_CHUNK_LINE_MAX - 1, "\r\nz\r\n0\r\n\r\n", 10);
    decoded_t d;
    decode(line, RM_H1_CHUNK_LINE_MAX + 9, SIZE_MAX, NULL, &d);
    assert_int_equal(d.last, RM_H1_CHUNK_ERROR);
    decode(line, RM_H1_CHUNK_LINE_MAX + 9, 1000, NULL, &d);
    assert_int_equal(d.last, RM_H1_CHUNK_ERROR);
    /* No line end at all: fails once the limit is reached, not later. */
    memset(line + 4, 'a', n - 4);
    rm_h1_chunked_t c;
    rm_h1_chunk_out_t out;
    size_t consumed;
    rm_h1_chunked_init(&c, NULL);
    assert_int_equal(rm_h1_chunked_next(&c, line, RM_H1_CHUNK_LINE_MAX - 1, &consumed, &out),
                     RM_H1_CHUNK_NEED_MORE);
    assert_int_equal(rm_h1_chunked_next(&c, line, RM_H1_CHUNK_LINE_MAX, &consumed, &out), RM_H1_CHUNK_ERROR);
    free(line);
}

/* ---------------------------------------------------------------- helpers */

static void test_helpers(void **state)
{
    (void)state;
    const char m[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, keep-alive\r\nx-secret: 1\r\n"
                     "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Other: 2\r\n"
                     "Proxy-Connection: close\r\nTrailer: X\r\nTransfer-Encoding: chunked\r\n\r\n";
    rm_h1_header_t h[HCAP];
    rm_h1_request_t r;
    assert_int_equal(req(m, sizeof(m) - 1, NULL, h, &r), (int)sizeof(m) - 1);
    assert_int_equal(r.num_headers, 10);
    /* Host, Connection, x-secret (named by Connection), Keep-Alive, TE, Upgrade, X-Other,
     * Proxy-Connection, Trailer, Transfer-Encoding. */
    static const bool hop[] = {false, true, true, true, true, true, false, true, true, true};
    for (size_t i = 0; i < 10; i++) {
        if (rm_h1_is_hop_by_hop(&h[i], h, r.num_headers) != hop[i])
            fail_msg("header %zu (%.*s)", i, (int)h[i].name_len, h[i].name);
    }
    assert_true(rm_h1_header_name_eq(&h[0], "host"));
    assert_true(rm_h1_header_name_eq(&h[1], "connection"));
    assert_false(rm_h1_header_name_eq(&h[1], "connectio"));
    assert_false(rm_h1_header_name_eq(&h[0], "hosts"));
    /* Without the Connection header in the list, x-secret is end-to-end. */
    assert_false(rm_h1_is_hop_by_hop(&h[2], h + 2, r.num_headers - 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_simple),
        cmocka_unit_test(test_headers_point_into_buffer),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_post_chunked),
        cmocka_unit_test(test_head_and_options),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_unknown_method_and_empty_host),
        cmocka_unit_test(test_http10_keep_alive),
        cmocka_unit_test(test_expect_and_upgrade),
        cmocka_unit_test(test_content_length_forms),
        cmocka_unit_test(test_leading_crlf_and_pipelining),
        cmocka_unit_test(test_incomplete_at_every_split),
        cmocka_unit_test(test_limits_boundaries),
        cmocka_unit_test(test_request_rejections),
        cmocka_unit_test(test_response_rows),
        cmocka_unit_test(test_response_fields),
        cmocka_unit_test(test_chunked_valid),
        cmocka_unit_test(test_chunked_events),
        cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_chunked_line_too_long),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
