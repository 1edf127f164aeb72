/* libFuzzer harness for the downstream HTTP/2 codec (src/http/h2_server.c): the input is the byte
 * stream a client sends after the connection preface (which the harness supplies). It runs through
 * nghttp2 and our callbacks into an echoing stand-in for the proxy, so request heads, bodies,
 * trailers, resets, flow control and the abuse bounds are all reached. The first input byte picks
 * how the rest is split into reads, so frame boundaries land everywhere. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2_server.h"

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_h2_fuzz_t *f = rm_h2_fuzz_new();
    size_t step = 1;
    if (size > 0) {
        step = (size_t)data[0] % 64 + 1;
        data++;
        size--;
    }
    if (rm_h2_fuzz_feed(f, preface, sizeof(preface) - 1) == 0) {
        for (size_t off = 0; off < size; off += step) {
            size_t n = size - off < step ? size - off : step;
            if (rm_h2_fuzz_feed(f, data + off, n) != 0)
                break;
        }
    }
    rm_h2_fuzz_free(f);
    return 0;
}
