/* HTTP/1.1 body framing on evbuffers, shared by the downstream and upstream codecs: a reader that
 * moves body bytes out of an input buffer (Content-Length, chunked, or until close) without copying
 * data chunks, and writers for chunked framing and header blocks. */
#ifndef RM_HTTP_H1_BODY_H
#define RM_HTTP_H1_BODY_H

#include <stdbool.h>
#include <stdint.h>

#include "http/h1_parser.h"
#include "http/headers.h"

struct evbuffer;

typedef struct {
    rm_h1_body_kind_t kind;
    uint64_t remaining; /* LENGTH: bytes still expected */
    rm_h1_chunked_t chunked;
    bool done;
    rm_headers_t trailers;
} rm_h1_body_reader_t;

void rm_h1_body_reader_init(rm_h1_body_reader_t *r, rm_h1_body_kind_t kind, uint64_t content_length,
                            const rm_h1_limits_t *limits);
void rm_h1_body_reader_free(rm_h1_body_reader_t *r);
/* Moves the body bytes available in `in` to `out` (at most `max_out` bytes, to bound memory) and
 * consumes framing. `eof` says the peer closed. Returns 0 (check r->done) or -1 with *err set on a
 * framing error or premature close. */
int rm_h1_body_reader_read(rm_h1_body_reader_t *r, struct evbuffer *in, struct evbuffer *out, size_t max_out,
                           bool eof, const char **err);

/* Appends `name: value\r\n` for each header. */
void rm_h1_write_headers(struct evbuffer *out, const rm_headers_t *h);
/* Appends one chunk with all of `data` (moved); nothing when data is empty. */
void rm_h1_write_chunk(struct evbuffer *out, struct evbuffer *data);
/* Appends the last chunk, optional trailers and the final CRLF. */
void rm_h1_write_last_chunk(struct evbuffer *out, const rm_headers_t *trailers);

#endif
