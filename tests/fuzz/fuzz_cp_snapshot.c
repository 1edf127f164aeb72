/* libFuzzer harness for remora-cp's snapshot loader: any input must load or fail with a one-line
 * error naming a path, and a loaded snapshot must render to Cluster / ClusterLoadAssignment
 * resources and pass the control plane's own cluster check, without crashing or leaking. */
#include "cp_snapshot.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rm_cp_snapshot_t *s = NULL;
    char err[512];
    if (rm_cp_snapshot_parse((const char *)data, size, &s, err, sizeof(err)) != 0) {
        if (memchr(err, '\0', sizeof(err)) == NULL)
            __builtin_trap();
        return 0;
    }
    rm_cp_rendered_t *r = rm_cp_snapshot_render(s);
    if (r == NULL || !rm_cp_rendered_equal(r, r))
        __builtin_trap();
    rm_cp_rendered_free(r);
    rm_cp_snapshot_free(s);
    return 0;
}
