/* libFuzzer harness for health-check payloads: the hex decoder of Payload.text (config from files
 * and control planes) and the `receive` matcher run over upstream bytes.
 *
 * Input: hex text, an optional '\n', then bytes standing for a response body. The decoder must
 * accept exactly the even-length hex strings and round-trip them; the decoded payload, split in two
 * blocks, must be found in the body exactly when a naive search finds both blocks in order. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "upstream/health_check.h"

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);                        \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static bool naive_find(const uint8_t *hay, size_t n, size_t *pos, const uint8_t *needle, size_t m)
{
    for (size_t i = *pos; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            *pos = i + m;
            return true;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hex_len = nl ? (size_t)(nl - data) : size;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t body_len = nl ? size - hex_len - 1 : 0;

    char *hex = malloc(hex_len ? hex_len : 1);
    memcpy(hex, data, hex_len);
    bool valid = hex_len > 0 && hex_len % 2 == 0;
    for (size_t i = 0; i < hex_len && valid; i++)
        valid = isxdigit((unsigned char)hex[i]) != 0;
    unsigned char *out = NULL;
    size_t out_len = 0;
    const char *err = NULL;
    int rc = rm_config_hex_decode(hex, hex_len, &out, &out_len, &err);
    CHECK((rc == 0) == valid);
    if (rc != 0) {
        CHECK(err != NULL);
        free(hex);
        return 0;
    }
    CHECK(out_len == hex_len / 2);
    for (size_t i = 0; i < out_len; i++) {
        char two[3];
        snprintf(two, sizeof(two), "%02x", out[i]);
        CHECK(tolower((unsigned char)hex[2 * i]) == two[0] &&
              tolower((unsigned char)hex[2 * i + 1]) == two[1]);
    }

    uint8_t *b = malloc(body_len ? body_len : 1); /* exact-size copy: overreads are caught */
    memcpy(b, body, body_len);
    size_t half = out_len / 2;
    rm_hc_payload_t blocks[2] = {{out, half}, {out + half, out_len - half}};
    rm_health_check_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.receive = half > 0 ? blocks : blocks + 1;
    cfg.num_receive = half > 0 ? 2 : 1;
    size_t pos = 0;
    bool want = true;
    for (size_t i = 0; i < cfg.num_receive && want; i++)
        want = naive_find(b, body_len, &pos, cfg.receive[i].data, cfg.receive[i].len);
    CHECK(rm_hc_receive_match(&cfg, b, body_len) == want);
    free(b);
    free(out);
    free(hex);
    return 0;
}
