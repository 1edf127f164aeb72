#include "core/stats.h"

#define RM_VISIT_C(s, name)  cb(ctx, prefix, #name, (int64_t)RM_STAT_GET((s)->name), 0);
#define RM_VISIT_G(s, name)  cb(ctx, prefix, #name, (int64_t)RM_STAT_GET((s)->name), 1);
#define RM_VISIT(name, kind) RM_VISIT_##kind(s, name)

#define RM_VISIT_NAMED_C(s, field, name)   cb(ctx, prefix, name, (int64_t)RM_STAT_GET((s)->field), 0);
#define RM_VISIT_NAMED_G(s, field, name)   cb(ctx, prefix, name, (int64_t)RM_STAT_GET((s)->field), 1);
#define RM_VISIT_DOTTED(field, kind, name) RM_VISIT_NAMED_##kind(s, field, name)

void rm_cluster_stats_visit(rm_cluster_stats_t *s, const char *prefix, rm_stats_visit_cb cb, void *ctx)
{
    RM_CLUSTER_STATS(RM_VISIT)
#define RM_VISIT_OD(name, kind)                                                                              \
    cb(ctx, prefix, "outlier_detection." #name, (int64_t)RM_STAT_GET(s->od.name), RM_KIND_##kind);
#define RM_VISIT_HC(name, kind)                                                                              \
    cb(ctx, prefix, "health_check." #name, (int64_t)RM_STAT_GET(s->hc.name), RM_KIND_##kind);
#define RM_KIND_C 0
#define RM_KIND_G 1
    RM_CLUSTER_OD_STATS(RM_VISIT_OD)
    RM_CLUSTER_HC_STATS(RM_VISIT_HC)
#undef RM_VISIT_OD
#undef RM_VISIT_HC
#undef RM_KIND_C
#undef RM_KIND_G
    RM_CLUSTER_DOTTED_STATS(RM_VISIT_DOTTED)
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
