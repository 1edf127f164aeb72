/* libFuzzer harness for the chunked decoder. The same input is decoded in one piece and then fed in
 * small pieces (as a connection would see it arrive); both runs must agree on the body bytes, the
 * trailers, how the body ended and where. Each call gets an exactly-sized heap copy so reads past the
 * given length are caught. */
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

typedef struct {
    uint8_t *body;
    size_t body_len;
    uint64_t trailer_hash; /* FNV-1a over every trailer name and value */
    size_t num_trailers;
    rm_h1_chunk_event_t end; /* DONE, ERROR or NEED_MORE when the input ran out */
    size_t end_offset;       /* input bytes consumed when it ended */
    const char *error;
} result_t;

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ 0xff;
}

/* Decodes data[0..size) arriving `step` bytes at a time (step 0: a varying pattern of 1..13). */
static void decode(const uint8_t *data, size_t size, size_t step, const rm_h1_limits_t *lim, result_t *res)
{
    rm_h1_chunked_t c;
    rm_h1_chunked_init(&c, lim);
    memset(res, 0, sizeof(*res));
    res->body = malloc(size + 1);
    res->trailer_hash = 0xcbf29ce484222325ULL;
    CHECK(res->body != NULL);
    size_t start = 0; /* first unconsumed input byte */
    size_t avail = 0; /* input bytes delivered so far */
    size_t turn = 0;
    for (;;) {
        size_t plen = avail - start;
        char *view = malloc(plen > 0 ? plen : 1);
        CHECK(view != NULL);
        memcpy(view, data + start, plen);
        size_t consumed = (size_t)-1;
        rm_h1_chunk_out_t out;
        rm_h1_chunk_event_t ev = rm_h1_chunked_next(&c, view, plen, &consumed, &out);
        CHECK(consumed <= plen);
        switch (ev) {
        case RM_H1_CHUNK_DATA:
            CHECK(out.data_len > 0 && out.data >= view && out.data + out.data_len <= view + consumed);
            memcpy(res->body + res->body_len, out.data, out.data_len);
            res->body_len += out.data_len;
            break;
        case RM_H1_CHUNK_TRAILER:
            CHECK(out.trailer.name_len > 0 && out.trailer.name >= view &&
                  out.trailer.name + out.trailer.name_len <= view + consumed);
            CHECK(out.trailer.value >= view && out.trailer.value + out.trailer.value_len <= view + consumed);
            res->trailer_hash = fnv(res->trailer_hash, out.trailer.name, out.trailer.name_len);
            res->trailer_hash = fnv(res->trailer_hash, out.trailer.value, out.trailer.value_len);
            res->num_trailers++;
            break;
        case RM_H1_CHUNK_ERROR:
            CHECK(out.error != NULL);
            res->error = out.error;
            break;
        default:
            break;
        }
        free(view);
        start += consumed;
        if (ev == RM_H1_CHUNK_DONE || ev == RM_H1_CHUNK_ERROR) {
            res->end = ev;
            res->end_offset = start;
            CHECK(rm_h1_chunked_is_done(&c) == (ev == RM_H1_CHUNK_DONE));
            return;
        }
        if (ev == RM_H1_CHUNK_NEED_MORE) {
            if (avail == size) {
                res->end = ev;
                res->end_offset = start;
                return;
            }
            size_t add = step != 0 ? step : 1 + (turn++ * 7) % 13;
            avail = add < size - avail ? avail + add : size;
        }
    }
}

static void compare(const result_t *a, const result_t *b)
{
    CHECK(a->end == b->end);
    CHECK(a->body_len == b->body_len && memcmp(a->body, b->body, a->body_len) == 0);
    CHECK(a->num_trailers == b->num_trailers && a->trailer_hash == b->trailer_hash);
    if (a->end == RM_H1_CHUNK_ERROR)
        CHECK(strcmp(a->error, b->error) == 0);
    else if (a->end == RM_H1_CHUNK_DONE)
        CHECK(a->end_offset == b->end_offset);
}

static void run(const uint8_t *data, size_t size, const rm_h1_limits_t *lim)
{
    result_t whole, bytewise, mixed;
    decode(data, size, SIZE_MAX, lim, &whole);
    decode(data, size, 1, lim, &bytewise);
    decode(data, size, 0, lim, &mixed);
    compare(&whole, &bytewise);
    compare(&whole, &mixed);
    /* The body never exceeds the input. */
    CHECK(whole.body_len <= size);
    free(whole.body);
    free(bytewise.body);
    free(mixed.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, NULL);
    rm_h1_limits_t small = {48, 64, 3};
    run(data, size, &small);
    return 0;
}
