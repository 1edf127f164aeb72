#include "http/h1_body.h"

#include <event2/buffer.h>
#include <string.h>

void rm_h1_body_reader_init(rm_h1_body_reader_t *r, rm_h1_body_kind_t kind, uint64_t content_length,
                            const rm_h1_limits_t *limits)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->remaining = content_length;
    if (kind == RM_H1_BODY_CHUNKED)
        rm_h1_chunked_init(&r->chunked, limits);
    r->done = kind == RM_H1_BODY_NONE || (kind == RM_H1_BODY_LENGTH && content_length == 0);
}

void rm_h1_body_reader_free(rm_h1_body_reader_t *r)
{
    rm_headers_free(&r->trailers);
}

static bool trailer_forbidden(const rm_h1_header_t *h)
{
    static const char *const names[] = {"content-length",
                                        "transfer-encoding",
                                        "host",
                                        "connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "te",
                                        "trailer",
                                        "upgrade",
                                        "content-type",
                                        "content-encoding",
                                        "content-range"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (rm_h1_header_name_eq(h, names[i]))
            return true;
    return false;
}

static int read_chunked(rm_h1_body_reader_t *r, struct evbuffer *in, struct evbuffer *out, size_t max_out,
                        bool eof, const char **err)
{
    size_t moved = 0;
    size_t want = 0; /* contiguous bytes to offer the decoder; grows when a line is split */
    while (!r->done && moved < max_out) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        size_t contiguous = evbuffer_get_contiguous_space(in);
        size_t n = want > contiguous ? want : contiguous;
        if (n > avail)
            n = avail;
        const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
        size_t consumed = 0;
        rm_h1_chunk_out_t o;
        memset(&o, 0, sizeof(o));
        rm_h1_chunk_event_t ev = rm_h1_chunked_next(&r->chunked, p, n, &consumed, &o);
        switch (ev) {
        case RM_H1_CHUNK_DATA: {
            size_t off = (size_t)(o.data - p);
            size_t len = o.data_len;
            if (len > max_out - moved)
                len = max_out - moved; /* never true for well-behaved decoders; keeps bounds */
            evbuffer_drain(in, off);
            evbuffer_remove_buffer(in, out, len);
            moved += len;
            if (consumed > off + len)
                evbuffer_drain(in, consumed - off - len);
            want = 0;
            break;
        }
        case RM_H1_CHUNK_TRAILER:
            /* Fields that frame, route or are hop-by-hop have no meaning in a trailer (RFC 9110
             * 6.5.1): drop them rather than forward them. */
            if (!trailer_forbidden(&o.trailer))
                rm_headers_add(&r->trailers, o.trailer.name, o.trailer.name_len, o.trailer.value,
                               o.trailer.value_len);
            evbuffer_drain(in, consumed);
            want = 0;
            break;
        case RM_H1_CHUNK_DONE:
            evbuffer_drain(in, consumed);
            r->done = true;
            break;
        case RM_H1_CHUNK_NEED_MORE:
            evbuffer_drain(in, consumed);
            if (consumed == 0) {
                if (n >= avail)
                    goto out; /* wait for more bytes */
                want = n * 2;
            } else {
                want = 0;
            }
            break;
        case RM_H1_CHUNK_ERROR:
        default:
            *err = o.error ? o.error : "invalid chunked encoding";
            return -1;
        }
    }
out:
    if (!r->done && eof && evbuffer_get_length(in) == 0) {
        *err = "connection closed inside a chunked body";
        return -1;
    }
    return 0;
}

int rm_h1_body_reader_read(rm_h1_body_reader_t *r, struct evbuffer *in, struct evbuffer *out, size_t max_out,
                           bool eof, const char **err)
{
    if (r->done)
        return 0;
    switch (r->kind) {
    case RM_H1_BODY_NONE:
        r->done = true;
        return 0;
    case RM_H1_BODY_LENGTH: {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < r->remaining ? avail : (size_t)r->remaining;
        if (n > max_out)
            n = max_out;
        if (n > 0)
            evbuffer_remove_buffer(in, out, n);
        r->remaining -= n;
        if (r->remaining == 0)
            r->done = true;
        else if (eof && evbuffer_get_length(in) == 0) {
            *err = "connection closed before the end of the body";
            return -1;
        }
        return 0;
    }
    case RM_H1_BODY_CHUNKED:
        return read_chunked(r, in, out, max_out, eof, err);
    case RM_H1_BODY_UNTIL_CLOSE: {
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < max_out ? avail : max_out;
        if (n > 0)
            evbuffer_remove_buffer(in, out, n);
        if (eof && evbuffer_get_length(in) == 0)
            r->done = true;
        return 0;
    }
    }
    return 0;
}

void rm_h1_write_headers(struct evbuffer *out, const rm_headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        evbuffer_add(out, h->v[i].name, h->v[i].name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, h->v[i].value, h->v[i].value_len);
        evbuffer_add(out, "\r\n", 2);
    }
}

void rm_h1_write_chunk(struct evbuffer *out, struct evbuffer *data)
{
    size_t n = evbuffer_get_length(data);
    if (n == 0)
        return;
    evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, data);
    evbuffer_add(out, "\r\n", 2);
}

void rm_h1_write_last_chunk(struct evbuffer *out, const rm_headers_t *trailers)
{
    evbuffer_add(out, "0\r\n", 3);
    if (trailers != NULL)
        rm_h1_write_headers(out, trailers);
    evbuffer_add(out, "\r\n", 2);
}
