/* libFuzzer harness for the listener's ALPN choice: the input is a client's protocol list (wire
 * format, untrusted) matched against fixed server preference lists. A match must lie inside the
 * offer, be one of the server's names, and be the most preferred one the offer contains. Each call
 * gets an exactly-sized heap copy so reads past the given length are caught. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                        \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the well-formed prefix of offer lists name. */
static int offered(const uint8_t *offer, size_t len, const unsigned char *name, size_t nlen)
{
    for (size_t j = 0; j < len && j + 1u + offer[j] <= len; j += 1u + offer[j])
        if (offer[j] == nlen && memcmp(&offer[j + 1], name, nlen) == 0)
            return 1;
    return 0;
}

static void run(const unsigned char *ours, size_t ours_len, const uint8_t *offer, size_t len)
{
    const unsigned char *out = NULL;
    unsigned char out_len = 0;
    int rc = rm_tls_alpn_select(ours, ours_len, offer, len, &out, &out_len);
    /* The expected answer: the first of ours that the offer lists. */
    const unsigned char *want = NULL;
    size_t want_len = 0;
    for (size_t i = 0; i < ours_len; i += 1u + ours[i]) {
        if (offered(offer, len, &ours[i + 1], ours[i])) {
            want = &ours[i + 1];
            want_len = ours[i];
            break;
        }
    }
    if (want == NULL) {
        CHECK(rc == -1);
        return;
    }
    CHECK(rc == 0);
    CHECK(out >= offer && out + out_len <= offer + len);
    CHECK(out_len == want_len && memcmp(out, want, want_len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    run(both, sizeof(both) - 1, copy, size);
    run(h1, sizeof(h1) - 1, copy, size);
    run(both, 0, copy, size);
    free(copy);
    return 0;
}
