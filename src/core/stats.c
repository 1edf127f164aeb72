#include "core/stats.h"

#define RM_VISIT_C(s, name)  cb(ctx, prefix, #name, (int64_t)RM_STAT_GET((s)->name), 0);
#define RM_VISIT_G(s, name)  cb(ctx, prefix, #name, (int64_t)RM_STAT_GET((s)->name), 1);
#define RM_VISIT(name, kind) RM_VISIT_##kind(s, name)

void rm_cluster_stats_visit(rm_cluster_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_CLUSTER_STATS(RM_VISIT)
}

void rm_hcm_stats_visit(rm_hcm_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_HCM_STATS(RM_VISIT)
}

void rm_host_stats_visit(rm_host_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_HOST_STATS(RM_VISIT)
}

void rm_h2_stats_visit(rm_h2_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_H2_STATS(RM_VISIT)
}
