/* libFuzzer harness for rm_h1_parse_request. Besides crashes and sanitizer reports it checks the
 * parser's contract: results within bounds, only the documented statuses, a head's length does not
 * depend on the bytes after it, and a prefix of a complete head is INCOMPLETE. Each input is parsed
 * under the default limits and under small ones, so the limit paths are reached too. */
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

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Parses an exactly-sized heap copy of data[0..len) so reads past len are caught. */
static int parse_copy(const uint8_t *data, size_t len, const rm_h1_limits_t *lim, rm_h1_header_t *h,
                      rm_h1_request_t *r)
{
    char *copy = malloc(len > 0 ? len : 1);
    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, data, len);
    int n = rm_h1_parse_request(copy, len, lim, h, HCAP, r);
    free(copy);
    return n;
}

static void check_success(const char *buf, size_t n, const rm_h1_limits_t *lim, const rm_h1_request_t *r,
                          const rm_h1_header_t *h)
{
    CHECK(n <= lim->max_header_bytes);
    CHECK(r->error == NULL && r->error_status == 0);
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    CHECK(r->method_len > 0 && within(r->method, r->method_len, buf, n));
    for (size_t i = 0; i < r->method_len; i++)
        CHECK(is_tchar((unsigned char)r->method[i]));
    CHECK(!(r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0));
    CHECK(r->target_len > 0 && within(r->target, r->target_len, buf, n));
    for (size_t i = 0; i < r->target_len; i++)
        CHECK((unsigned char)r->target[i] > 0x20 && (unsigned char)r->target[i] < 0x7f);
    CHECK(r->headers == h);
    CHECK(r->num_headers <= HCAP && r->num_headers <= lim->max_headers);
    for (size_t i = 0; i < r->num_headers; i++) {
        CHECK(h[i].name_len > 0 && within(h[i].name, h[i].name_len, buf, n));
        for (size_t j = 0; j < h[i].name_len; j++)
            CHECK(is_tchar((unsigned char)h[i].name[j]));
        CHECK(within(h[i].value, h[i].value_len, buf, n));
        for (size_t j = 0; j < h[i].value_len; j++) {
            unsigned char c = (unsigned char)h[i].value[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h[i].value_len > 0) {
            CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
            CHECK(h[i].value[h[i].value_len - 1] != ' ' && h[i].value[h[i].value_len - 1] != '\t');
        }
    }
    CHECK(r->body_kind == RM_H1_BODY_NONE || r->body_kind == RM_H1_BODY_LENGTH ||
          r->body_kind == RM_H1_BODY_CHUNKED);
    if (r->version_minor == 1)
        CHECK(r->host != NULL);
    if (r->host != NULL)
        CHECK(within(r->host, r->host_len, buf, n));
    if (r->version_minor == 0)
        CHECK(!r->upgrade && !r->expect_continue && r->body_kind != RM_H1_BODY_CHUNKED);
    /* The helpers run over whatever the parser accepted. */
    for (size_t i = 0; i < r->num_headers; i++) {
        bool hop = rm_h1_is_hop_by_hop(&h[i], h, r->num_headers);
        if (rm_h1_header_name_eq(&h[i], "connection") || rm_h1_header_name_eq(&h[i], "transfer-encoding"))
            CHECK(hop);
        if (rm_h1_header_name_eq(&h[i], "host"))
            CHECK(r->host == h[i].value);
    }
}

static void run(const uint8_t *data, size_t size, const rm_h1_limits_t *lim)
{
    rm_h1_header_t h[HCAP];
    rm_h1_request_t r;
    int n = rm_h1_parse_request((const char *)data, size, lim, h, HCAP, &r);
    CHECK(n == RM_H1_INCOMPLETE || n == RM_H1_ERROR || (n > 0 && (size_t)n <= size));
    if (n == RM_H1_ERROR) {
        CHECK(r.error != NULL && r.error[0] != '\0');
        CHECK(r.error_status == 400 || r.error_status == 414 || r.error_status == 431 ||
              r.error_status == 501 || r.error_status == 505);
    } else if (n == RM_H1_INCOMPLETE) {
        CHECK(size <= lim->max_header_bytes);
    } else {
        check_success((const char *)data, (size_t)n, lim, &r, h);
        rm_h1_request_t again;
        rm_h1_header_t h2[HCAP];
        /* The head alone parses to the same result. */
        CHECK(parse_copy(data, (size_t)n, lim, h2, &again) == n);
        CHECK(again.num_headers == r.num_headers && again.body_kind == r.body_kind &&
              again.content_length == r.content_length && again.keep_alive == r.keep_alive);
        /* Any shorter prefix is incomplete. */
        CHECK(parse_copy(data, (size_t)n - 1, lim, h2, &again) == RM_H1_INCOMPLETE);
        CHECK(parse_copy(data, (size_t)n / 2, lim, h2, &again) == RM_H1_INCOMPLETE);
    }
    /* A prefix that completes a head completes the same head in the whole input. */
    if (size > 1) {
        rm_h1_header_t h3[HCAP];
        rm_h1_request_t half;
        int m = parse_copy(data, size / 2, lim, h3, &half);
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
    run(data, size, &lim);
    rm_h1_limits_t small = {48, 200, 6};
    run(data, size, &small);
    return 0;
}
