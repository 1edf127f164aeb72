/* libFuzzer harness for rm_h1_parse_response: crashes, sanitizer reports and the contract (bounds,
 * body-kind rules, independence from the bytes after the head, prefixes incomplete). Each input is
 * parsed as the answer to a HEAD and to a GET, under default and small limits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_parser.h"

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                        \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#define HCAP 64

static bool within(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static int parse_copy(const uint8_t *data, size_t len, const rm_h1_limits_t *lim, bool head,
                      rm_h1_header_t *h, rm_h1_response_t *r)
{
    char *copy = malloc(len > 0 ? len : 1);
    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, data, len);
    int n = rm_h1_parse_response(copy, len, lim, head, h, HCAP, r);
    free(copy);
    return n;
}

static void check_success(const char *buf, size_t n, const rm_h1_limits_t *lim, bool head,
                          const rm_h1_response_t *r, const rm_h1_header_t *h)
{
    CHECK(n <= lim->max_header_bytes);
    CHECK(r->error == NULL);
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    CHECK(r->status >= 100 && r->status <= 999);
    CHECK(within(r->reason, r->reason_len, buf, n));
    for (size_t i = 0; i < r->reason_len; i++) {
        unsigned char c = (unsigned char)r->reason[i];
        CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    CHECK(r->headers == h && r->num_headers <= HCAP && r->num_headers <= lim->max_headers);
    for (size_t i = 0; i < r->num_headers; i++) {
        CHECK(h[i].name_len > 0 && within(h[i].name, h[i].name_len, buf, n));
        CHECK(within(h[i].value, h[i].value_len, buf, n));
        CHECK(memchr(h[i].value, '\r', h[i].value_len) == NULL &&
              memchr(h[i].value, '\n', h[i].value_len) == NULL);
        CHECK(memchr(h[i].value, '\0', h[i].value_len) == NULL);
    }
    if (head || r->status < 200 || r->status == 204 || r->status == 304)
        CHECK(r->body_kind == RM_H1_BODY_NONE);
    if (r->body_kind == RM_H1_BODY_UNTIL_CLOSE)
        CHECK(!r->keep_alive);
    if (r->version_minor == 0)
        CHECK(r->body_kind != RM_H1_BODY_CHUNKED);
}

static void run(const uint8_t *data, size_t size, const rm_h1_limits_t *lim, bool head)
{
    rm_h1_header_t h[HCAP];
    rm_h1_response_t r;
    int n = rm_h1_parse_response((const char *)data, size, lim, head, h, HCAP, &r);
    CHECK(n == RM_H1_INCOMPLETE || n == RM_H1_ERROR || (n > 0 && (size_t)n <= size));
    if (n == RM_H1_ERROR) {
        CHECK(r.error != NULL && r.error[0] != '\0');
    } else if (n == RM_H1_INCOMPLETE) {
        CHECK(size <= lim->max_header_bytes);
    } else {
        check_success((const char *)data, (size_t)n, lim, head, &r, h);
        rm_h1_header_t h2[HCAP];
        rm_h1_response_t again;
        CHECK(parse_copy(data, (size_t)n, lim, head, h2, &again) == n);
        CHECK(again.status == r.status && again.body_kind == r.body_kind &&
              again.content_length == r.content_length && again.keep_alive == r.keep_alive);
        CHECK(parse_copy(data, (size_t)n - 1, lim, head, h2, &again) == RM_H1_INCOMPLETE);
    }
    if (size > 1) {
        rm_h1_header_t h3[HCAP];
        rm_h1_response_t half;
        int m = parse_copy(data, size / 2, lim, head, h3, &half);
        if (m > 0)
            CHECK(m == n);
        else if (m == RM_H1_ERROR)
            CHECK(n == RM_H1_ERROR);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_h1_limits_t lim;
    rm_h1_limits_default(&lim);
    rm_h1_limits_t small = {48, 200, 6};
    run(data, size, &lim, false);
    run(data, size, &lim, true);
    run(data, size, &small, false);
    return 0;
}
