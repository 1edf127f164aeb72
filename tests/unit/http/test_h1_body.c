/* Body framing on evbuffers: Content-Length, chunked (split at every byte), until-close, limits on
 * how much is moved per call, trailers, premature close, and the chunked writer round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "http/access_log.h"
#include "http/h1_body.h"

static size_t drain_to_string(struct evbuffer *b, char *out, size_t cap)
{
    size_t n = evbuffer_get_length(b);
    assert_true(n < cap);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    return n;
}

static void test_content_length(void **state)
{
    (void)state;
    rm_h1_body_reader_t r;
    rm_h1_body_reader_init(&r, RM_H1_BODY_LENGTH, 10, NULL);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    evbuffer_add(in, "hello", 5);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err), 0);
    assert_false(r.done);
    evbuffer_add(in, "worldGET / HTTP/1.1", 19);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 3, false, &err), 0); /* bounded move */
    assert_int_equal(evbuffer_get_length(out), 8);
    assert_false(r.done);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err), 0);
    assert_true(r.done);
    char s[64];
    drain_to_string(out, s, sizeof(s));
    assert_string_equal(s, "helloworld");
    /* the next pipelined request stays in the input */
    assert_int_equal(evbuffer_get_length(in), 14);
    rm_h1_body_reader_free(&r);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_content_length_premature_close(void **state)
{
    (void)state;
    rm_h1_body_reader_t r;
    rm_h1_body_reader_init(&r, RM_H1_BODY_LENGTH, 10, NULL);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    evbuffer_add(in, "abc", 3);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, true, &err), -1);
    assert_non_null(err);
    rm_h1_body_reader_free(&r);
    evbuffer_free(in);
    evbuffer_free(out);
}

static const char chunked_msg[] = "5;ext=1\r\nhello\r\n"
                                  "b\r\n, world and\r\n"
                                  "0\r\n"
                                  "x-checksum: abc\r\n"
                                  "content-length: 99\r\n"
                                  "\r\n"
                                  "NEXT";

static void test_chunked_every_split(void **state)
{
    (void)state;
    size_t total = strlen(chunked_msg);
    for (size_t step = 1; step <= total; step++) {
        rm_h1_body_reader_t r;
        rm_h1_body_reader_init(&r, RM_H1_BODY_CHUNKED, 0, NULL);
        struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
        const char *err = NULL;
        size_t fed = 0;
        while (fed < total && !r.done) {
            size_t n = total - fed < step ? total - fed : step;
            evbuffer_add(in, chunked_msg + fed, n);
            fed += n;
            assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err), 0);
        }
        assert_true(r.done);
        char s[64];
        drain_to_string(out, s, sizeof(s));
        assert_string_equal(s, "hello, world and");
        assert_int_equal(r.trailers.n, 1);
        assert_string_equal(r.trailers.v[0].name, "x-checksum");
        assert_string_equal(r.trailers.v[0].value, "abc");
        /* what follows the body is untouched */
        char rest[16];
        size_t left = evbuffer_get_length(in) + (total - fed);
        assert_int_equal(left, 4);
        (void)rest;
        rm_h1_body_reader_free(&r);
        evbuffer_free(in);
        evbuffer_free(out);
    }
}

static void test_chunked_errors(void **state)
{
    (void)state;
    const char *bad[] = {"zz\r\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                         "fffffffffffffffff\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rm_h1_body_reader_t r;
        rm_h1_body_reader_init(&r, RM_H1_BODY_CHUNKED, 0, NULL);
        struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
        const char *err = NULL;
        evbuffer_add(in, bad[i], strlen(bad[i]));
        int rc = rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err);
        assert_int_equal(rc, -1);
        assert_non_null(err);
        rm_h1_body_reader_free(&r);
        evbuffer_free(in);
        evbuffer_free(out);
    }
    /* close in the middle of a chunked body is an error too */
    rm_h1_body_reader_t r;
    rm_h1_body_reader_init(&r, RM_H1_BODY_CHUNKED, 0, NULL);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    evbuffer_add(in, "5\r\nhel", 6);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err), 0);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, true, &err), -1);
    rm_h1_body_reader_free(&r);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_until_close(void **state)
{
    (void)state;
    rm_h1_body_reader_t r;
    rm_h1_body_reader_init(&r, RM_H1_BODY_UNTIL_CLOSE, 0, NULL);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    const char *err = NULL;
    evbuffer_add(in, "abc", 3);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, false, &err), 0);
    assert_false(r.done);
    assert_int_equal(rm_h1_body_reader_read(&r, in, out, 1 << 20, true, &err), 0);
    assert_true(r.done);
    assert_int_equal(evbuffer_get_length(out), 3);
    rm_h1_body_reader_free(&r);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_chunk_writer_round_trip(void **state)
{
    (void)state;
    struct evbuffer *wire = evbuffer_new(), *data = evbuffer_new();
    evbuffer_add(data, "0123456789abcdefXYZ", 19);
    rm_h1_write_chunk(wire, data);
    assert_int_equal(evbuffer_get_length(data), 0);
    rm_h1_write_chunk(wire, data); /* empty: writes nothing (an empty chunk would end the body) */
    rm_headers_t t = {0};
    rm_headers_add_cstr(&t, "Grpc-Status", "0");
    rm_h1_write_last_chunk(wire, &t);
    char s[128];
    drain_to_string(wire, s, sizeof(s));
    assert_string_equal(s, "13\r\n0123456789abcdefXYZ\r\n0\r\ngrpc-status: 0\r\n\r\n");
    rm_headers_free(&t);
    evbuffer_free(wire);
    evbuffer_free(data);
}

static void test_headers_list(void **state)
{
    (void)state;
    rm_headers_t h = {0};
    for (int i = 0; i < 40; i++)
        rm_headers_add_cstr(&h, i % 2 ? "X-Odd" : "x-even", "v");
    assert_int_equal(h.n, 40);
    assert_non_null(rm_headers_get(&h, "x-odd"));
    assert_int_equal(rm_headers_remove(&h, "x-odd"), 20);
    assert_null(rm_headers_get(&h, "x-odd"));
    rm_headers_set(&h, "x-even", "w", 1);
    assert_int_equal(h.n, 1);
    assert_string_equal(rm_headers_get(&h, "x-even")->value, "w");
    rm_headers_free(&h);
}

static void test_access_log_format(void **state)
{
    (void)state;
    rm_access_log_entry_t e = {
        .start_us = 1700000000123000ull,
        .method = "GET",
        .path = "/a",
        .protocol = "HTTP/1.1",
        .status = 503,
        .flags = "UH",
        .bytes_received = 0,
        .bytes_sent = 19,
        .duration_ms = 2,
        .upstream_service_time_ms = -1,
        .user_agent = "curl/8",
        .request_id = "id-1",
        .authority = "example.com",
    };
    char line[512];
    size_t n = rm_access_log_format(&e, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_string_equal(line,
                        "[2023-11-14T22:13:20.123Z] \"GET /a HTTP/1.1\" 503 UH 0 19 2 - \"-\" \"curl/8\" "
                        "\"id-1\" \"example.com\" \"-\"\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),      cmocka_unit_test(test_content_length_premature_close),
        cmocka_unit_test(test_chunked_every_split), cmocka_unit_test(test_chunked_errors),
        cmocka_unit_test(test_until_close),         cmocka_unit_test(test_chunk_writer_round_trip),
        cmocka_unit_test(test_headers_list),        cmocka_unit_test(test_access_log_format),
    };
    return cmocka_run_group_tests_name("h1_body", tests, NULL, NULL);
}
