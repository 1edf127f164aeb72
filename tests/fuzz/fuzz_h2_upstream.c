/* libFuzzer harness for the upstream HTTP/2 client (src/upstream/h2_pool.c): the input is what a
 * server sends on a connection that carries two requests (a GET; a POST with a body and trailers).
 * It runs through nghttp2 and the pool's callbacks (response heads, 1xx, DATA with the window held
 * and released, trailers, resets, GOAWAY) into a stand-in for the proxy. The first byte picks how
 * the rest is split into reads. */
#include <stdint.h>
#include <stdlib.h>

#include "upstream/h2_pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_h2_pool_fuzz_t *f = rm_h2_pool_fuzz_new();
    size_t step = 1;
    if (size > 0) {
        step = (size_t)data[0] % 64 + 1;
        data++;
        size--;
    }
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (rm_h2_pool_fuzz_feed(f, data + off, n) != 0)
            break;
    }
    rm_h2_pool_fuzz_free(f);
    return 0;
}
