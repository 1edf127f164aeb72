/* libFuzzer harness for the bootstrap loader: any input must load or fail with a one-line error,
 * without crashing, leaking or reading out of bounds. A loaded config is also fed to the router,
 * which must accept whatever the loader accepts. */
#include "config/bootstrap.h"
#include "http/router.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_bootstrap_config_t *b = NULL;
    char err[256];
    if (rm_bootstrap_load_string((const char *)data, size, &b, err, sizeof(err)) != 0) {
        /* The error is one NUL-terminated line. */
        if (memchr(err, '\0', sizeof(err)) == NULL || strchr(err, '\n') != NULL)
            __builtin_trap();
        return 0;
    }
    for (size_t i = 0; i < b->num_listeners; i++) {
        rm_router_t *r = rm_router_create(&b->listeners[i].hcm.route_config);
        const rm_virtual_host_config_t *vh = rm_router_match_virtual_host(r, "a.example.com:80", 16);
        (void)vh;
        (void)rm_router_match(r, "[::1]:80", 8, "/x?y", 4);
        rm_router_destroy(r);
    }
    rm_bootstrap_config_free(b);
    return 0;
}
