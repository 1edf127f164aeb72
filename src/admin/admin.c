#include "admin/admin.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/net.h"
#include "upstream/host.h"

#define RM_VERSION "0.1.0"

struct rm_admin {
    struct evhttp *http;
    rm_admin_view_t view;
};

typedef struct {
    char *name;
    int64_t value;
    int is_gauge;
} stat_entry_t;

typedef struct {
    stat_entry_t *v;
    size_t n, cap;
} stat_list_t;

static void stat_push(void *ctx, const char *prefix, const char *name, int64_t value, int is_gauge)
{
    stat_list_t *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = rm_realloc(l->v, l->cap * sizeof(stat_entry_t));
    }
    l->v[l->n].name = rm_asprintf("%s%s", prefix, name);
    l->v[l->n].value = value;
    l->v[l->n].is_gauge = is_gauge;
    l->n++;
}

static int stat_cmp(const void *a, const void *b)
{
    return strcmp(((const stat_entry_t *)a)->name, ((const stat_entry_t *)b)->name);
}

static void collect_stats(rm_admin_t *a, stat_list_t *out)
{
    rm_snapshot_t *snap = rm_cluster_manager_snapshot(a->view.cm);
    char prefix[512];
    for (size_t i = 0; i < snap->num_clusters; i++) {
        rm_cluster_t *c = snap->clusters[i];
        snprintf(prefix, sizeof(prefix), "cluster.%s.", c->name);
        rm_cluster_stats_visit(&c->shared->stats, prefix, stat_push, out);
        if (c->tls != NULL) {
            snprintf(prefix, sizeof(prefix), "cluster.%s.ssl.", c->name);
            rm_tls_stats_visit(&c->shared->ssl_stats, prefix, stat_push, out);
        }
    }
    rm_cm_stats_t *cms = rm_cluster_manager_stats(a->view.cm);
#define RM_CM_VISIT(name, kind)                                                                              \
    stat_push(out, "cluster_manager.", #name, (int64_t)RM_STAT_GET(cms->name), #kind[0] == 'G');
    RM_CM_STATS(RM_CM_VISIT)
#undef RM_CM_VISIT
    for (size_t i = 0; i < a->view.num_listeners; i++) {
        rm_listener_t *l = a->view.listeners[i];
        snprintf(prefix, sizeof(prefix), "http.%s.", l->cfg->hcm.stat_prefix);
        rm_hcm_stats_visit(&l->stats, prefix, stat_push, out);
        if (l->tls != NULL) {
            snprintf(prefix, sizeof(prefix), "listener.%s.ssl.", l->stat_addr);
            rm_tls_stats_visit(&l->ssl_stats, prefix, stat_push, out);
        }
        snprintf(prefix, sizeof(prefix), "http.%s.http2.", l->cfg->hcm.stat_prefix);
        rm_h2_stats_visit(&l->h2_stats, prefix, stat_push, out);
    }
    if (a->view.extra_stats)
        a->view.extra_stats(a->view.ctx, stat_push, out);
    stat_push(out, "server.", "live", atomic_load(a->view.state) == RM_SERVER_LIVE, 1);
    stat_push(out, "server.", "concurrency", a->view.num_workers, 1);
    stat_push(out, "server.", "uptime", (int64_t)(time(NULL) - (time_t)a->view.start_time_s), 1);
    qsort(out->v, out->n, sizeof(stat_entry_t), stat_cmp);
}

static void free_stats(stat_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

static const char *query_param(struct evhttp_request *req, const char *key, struct evkeyvalq *params)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (q == NULL)
        return NULL;
    if (TAILQ_EMPTY(params) && evhttp_parse_query_str(q, params) != 0)
        return NULL;
    return evhttp_find_header(params, key);
}

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "content-type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "cache-control", "no-cache, max-age=0");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", body);
}

static void reply_text(struct evhttp_request *req, int code, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    reply(req, code, "text/plain; charset=UTF-8", b);
    evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s, strlen(s));
    evbuffer_add(b, "\n", 1);
    reply(req, 200, "application/json", b);
    evbuffer_free(b);
    free(s);
    json_decref(j);
}

static bool require_post(struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_text(req, 405, "This endpoint requires POST.\n");
        return false;
    }
    return true;
}

static void h_ready(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    int st = atomic_load(a->view.state);
    if (st == RM_SERVER_LIVE)
        reply_text(req, 200, "LIVE\n");
    else
        reply_text(req, 503, st == RM_SERVER_DRAINING ? "DRAINING\n" : "PRE_INITIALIZING\n");
}

static void h_stats(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *filter = query_param(req, "filter", &params);
    const char *format = query_param(req, "format", &params);
    regex_t re;
    bool use_re = false;
    if (filter != NULL && filter[0] != '\0') {
        if (regcomp(&re, filter, REG_EXTENDED | REG_NOSUB) != 0) {
            evhttp_clear_headers(&params);
            reply_text(req, 400, "Invalid regex for filter\n");
            return;
        }
        use_re = true;
    }
    stat_list_t l = {0};
    collect_stats(a, &l);
    if (format != NULL && strcmp(format, "json") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < l.n; i++) {
            if (use_re && regexec(&re, l.v[i].name, 0, NULL, 0) != 0)
                continue;
            json_array_append_new(
                arr, json_pack("{s:s,s:I}", "name", l.v[i].name, "value", (json_int_t)l.v[i].value));
        }
        reply_json(req, json_pack("{s:o}", "stats", arr));
    } else {
        struct evbuffer *b = evbuffer_new();
        for (size_t i = 0; i < l.n; i++) {
            if (use_re && regexec(&re, l.v[i].name, 0, NULL, 0) != 0)
                continue;
            evbuffer_add_printf(b, "%s: %lld\n", l.v[i].name, (long long)l.v[i].value);
        }
        reply(req, 200, "text/plain; charset=UTF-8", b);
        evbuffer_free(b);
    }
    if (use_re)
        regfree(&re);
    free_stats(&l);
    evhttp_clear_headers(&params);
}

/* Prometheus exposition with Envoy's tag extraction for the two stat families we have. */
static void prom_name(const char *name, char *metric, size_t mlen, char *labels, size_t llen)
{
    labels[0] = '\0';
    const char *rest = name;
    const char *family = NULL, *label = NULL;
    if (strncmp(name, "cluster.", 8) == 0) {
        family = "cluster";
        label = "envoy_cluster_name";
        rest = name + 8;
    } else if (strncmp(name, "http.", 5) == 0) {
        family = "http";
        label = "envoy_http_conn_manager_prefix";
        rest = name + 5;
    }
    const char *dot = family ? strchr(rest, '.') : NULL;
    char raw[512];
    if (dot != NULL) {
        snprintf(labels, llen, "{%s=\"%.*s\"}", label, (int)(dot - rest), rest);
        snprintf(raw, sizeof(raw), "envoy_%s_%s", family, dot + 1);
    } else {
        snprintf(raw, sizeof(raw), "envoy_%s", name);
    }
    size_t i = 0;
    for (; raw[i] && i + 1 < mlen; i++) {
        char ch = raw[i];
        bool ok =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        metric[i] = ok ? ch : '_';
    }
    metric[i] = '\0';
}

static int prom_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void h_prometheus(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    stat_list_t l = {0};
    collect_stats(a, &l);
    /* Group series by metric name so each gets one TYPE line. */
    char **lines = rm_calloc(l.n ? l.n : 1, sizeof(char *));
    for (size_t i = 0; i < l.n; i++) {
        char metric[512], labels[512];
        prom_name(l.v[i].name, metric, sizeof(metric), labels, sizeof(labels));
        lines[i] = rm_asprintf("%s\t%s\t%s\t%lld", metric, l.v[i].is_gauge ? "gauge" : "counter", labels,
                               (long long)l.v[i].value);
    }
    qsort(lines, l.n, sizeof(char *), prom_cmp);
    struct evbuffer *b = evbuffer_new();
    char last[512] = "";
    for (size_t i = 0; i < l.n; i++) {
        char *m = lines[i], *t = strchr(m, '\t');
        *t = '\0';
        char *lab = strchr(t + 1, '\t');
        *lab = '\0';
        char *val = strchr(lab + 1, '\t');
        *val = '\0';
        if (strcmp(last, m) != 0) {
            evbuffer_add_printf(b, "# TYPE %s %s\n", m, t + 1);
            snprintf(last, sizeof(last), "%s", m);
        }
        evbuffer_add_printf(b, "%s%s %s\n", m, lab + 1, val + 1);
        free(lines[i]);
    }
    free(lines);
    reply(req, 200, "text/plain; version=0.0.4", b);
    evbuffer_free(b);
    free_stats(&l);
}

static void h_clusters(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *format = query_param(req, "format", &params);
    bool json = format != NULL && strcmp(format, "json") == 0;
    evhttp_clear_headers(&params);
    rm_snapshot_t *snap = rm_cluster_manager_snapshot(a->view.cm);
    if (json) {
        json_t *statuses = json_array();
        for (size_t i = 0; i < snap->num_clusters; i++) {
            rm_cluster_t *c = snap->clusters[i];
            json_t *hosts = json_array();
            for (size_t k = 0; k < c->num_hosts; k++) {
                rm_host_t *h = c->hosts[k];
                char flags[256];
                rm_host_health_flags_str(atomic_load(&h->health_flags), flags, sizeof(flags));
                json_t *stats = json_array();
#define RM_HOST_JSON(name, kind)                                                                             \
    json_array_append_new(                                                                                   \
        stats, json_pack("{s:s,s:I}", "name", #name, "value", (json_int_t)RM_STAT_GET(h->stats.name)));
                RM_HOST_STATS(RM_HOST_JSON)
#undef RM_HOST_JSON
                json_t *hj =
                    json_pack("{s:s,s:i,s:i,s:s,s:o}", "address", h->address_str, "weight", (int)h->weight,
                              "priority", (int)h->priority, "health_flags", flags, "stats", stats);
                if (c->outlier.enabled) {
                    /* Envoy's host status fields; num_ejections is Remora's addition. */
                    json_object_set_new(hj, "success_rate", json_pack("{s:f}", "value", h->outlier.sr_ext));
                    json_object_set_new(hj, "local_origin_success_rate",
                                        json_pack("{s:f}", "value", h->outlier.sr_local));
                    json_object_set_new(hj, "num_ejections", json_integer(h->outlier.num_ejections));
                }
                json_array_append_new(hosts, hj);
            }
            json_array_append_new(statuses, json_pack("{s:s,s:o}", "name", c->name, "host_statuses", hosts));
        }
        reply_json(req, json_pack("{s:o}", "cluster_statuses", statuses));
        return;
    }
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < snap->num_clusters; i++) {
        rm_cluster_t *c = snap->clusters[i];
        evbuffer_add_printf(b, "%s::default_priority::max_connections::1024\n", c->name);
        evbuffer_add_printf(b, "%s::default_priority::max_pending_requests::1024\n", c->name);
        evbuffer_add_printf(b, "%s::default_priority::max_requests::1024\n", c->name);
        evbuffer_add_printf(b, "%s::default_priority::max_retries::3\n", c->name);
        for (size_t k = 0; k < c->num_hosts; k++) {
            rm_host_t *h = c->hosts[k];
            const char *n = c->name, *ad = h->address_str;
#define RM_HOST_LINE(name, kind)                                                                             \
    evbuffer_add_printf(b, "%s::%s::" #name "::%lld\n", n, ad, (long long)RM_STAT_GET(h->stats.name));
            RM_HOST_STATS(RM_HOST_LINE)
#undef RM_HOST_LINE
            char flags[256];
            rm_host_health_flags_str(atomic_load(&h->health_flags), flags, sizeof(flags));
            evbuffer_add_printf(b, "%s::%s::health_flags::%s\n", n, ad, flags);
            if (c->outlier.enabled) {
                /* Main-thread state: the admin runs on the main thread. */
                evbuffer_add_printf(b, "%s::%s::success_rate::%g\n", n, ad, h->outlier.sr_ext);
                evbuffer_add_printf(b, "%s::%s::local_origin_success_rate::%g\n", n, ad, h->outlier.sr_local);
                evbuffer_add_printf(b, "%s::%s::num_ejections::%u\n", n, ad, h->outlier.num_ejections);
            }
            evbuffer_add_printf(b, "%s::%s::weight::%u\n", n, ad, h->weight);
            evbuffer_add_printf(b, "%s::%s::priority::%u\n", n, ad, h->priority);
        }
    }
    reply(req, 200, "text/plain; charset=UTF-8", b);
    evbuffer_free(b);
}

static void h_listeners(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *format = query_param(req, "format", &params);
    bool json = format != NULL && strcmp(format, "json") == 0;
    evhttp_clear_headers(&params);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < a->view.num_listeners; i++)
            json_array_append_new(arr, json_pack("{s:s,s:{s:{s:s}}}", "name", a->view.listeners[i]->cfg->name,
                                                 "local_address", "socket_address", "address",
                                                 a->view.listeners[i]->bound_str));
        reply_json(req, json_pack("{s:o}", "listener_statuses", arr));
        return;
    }
    struct evbuffer *b = evbuffer_new();
    for (size_t i = 0; i < a->view.num_listeners; i++)
        evbuffer_add_printf(b, "%s::%s\n", a->view.listeners[i]->cfg->name, a->view.listeners[i]->bound_str);
    reply(req, 200, "text/plain; charset=UTF-8", b);
    evbuffer_free(b);
}

static void h_server_info(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    static const char *const states[] = {"PRE_INITIALIZING", "LIVE", "DRAINING"};
    int st = atomic_load(a->view.state);
    const rm_bootstrap_config_t *b = a->view.bootstrap;
    json_t *j =
        json_pack("{s:s,s:s,s:I,s:{s:s,s:s},s:{s:i}}", "version", RM_VERSION, "state", states[st % 3],
                  "uptime_current_epoch", (json_int_t)(time(NULL) - (time_t)a->view.start_time_s), "node",
                  "id", b->node.id ? b->node.id : "", "cluster", b->node.cluster ? b->node.cluster : "",
                  "command_line_options", "concurrency", a->view.num_workers);
    reply_json(req, j);
}

static void h_logging(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *level = query_param(req, "level", &params);
    if (level != NULL) {
        if (!require_post(req)) {
            evhttp_clear_headers(&params);
            return;
        }
        rm_log_level_t lv;
        if (rm_log_level_parse(level, &lv) != 0) {
            evhttp_clear_headers(&params);
            reply_text(req, 400, "unknown log level\n");
            return;
        }
        rm_log_set_level(lv);
        RM_LOG_INFO("log level set to %s through the admin", rm_log_level_name(lv));
    }
    evhttp_clear_headers(&params);
    char text[64];
    snprintf(text, sizeof(text), "active loggers:\n  remora: %s\n", rm_log_level_name(rm_log_get_level()));
    reply_text(req, 200, text);
}

static void h_quit(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    if (!require_post(req))
        return;
    reply_text(req, 200, "OK\n");
    if (a->view.on_quit)
        a->view.on_quit(a->view.ctx);
}

static void h_hc_fail(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    if (!require_post(req))
        return;
    atomic_store(a->view.hc_failed, 1);
    reply_text(req, 200, "OK\n");
}

static void h_hc_ok(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    if (!require_post(req))
        return;
    atomic_store(a->view.hc_failed, 0);
    reply_text(req, 200, "OK\n");
}

static void h_drain(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    if (!require_post(req))
        return;
    if (a->view.on_drain_listeners)
        a->view.on_drain_listeners(a->view.ctx);
    reply_text(req, 200, "OK\n");
}

static void h_config_dump(struct evhttp_request *req, void *arg)
{
    rm_admin_t *a = arg;
    const rm_bootstrap_config_t *b = a->view.bootstrap;
    json_t *clusters = json_array();
    rm_snapshot_t *snap = rm_cluster_manager_snapshot(a->view.cm);
    for (size_t i = 0; i < snap->num_clusters; i++) {
        rm_cluster_t *c = snap->clusters[i];
        json_t *eps = json_array();
        for (size_t k = 0; k < c->num_hosts; k++)
            json_array_append_new(eps, json_pack("{s:s,s:i,s:i}", "address", c->hosts[k]->address_str,
                                                 "weight", (int)c->hosts[k]->weight, "priority",
                                                 (int)c->hosts[k]->priority));
        char ct[32];
        snprintf(ct, sizeof(ct), "%.3fs", (double)c->connect_timeout_ms / 1000.0);
        json_array_append_new(
            clusters, json_pack("{s:s,s:s,s:o}", "name", c->name, "connect_timeout", ct, "endpoints", eps));
    }
    json_t *listeners = json_array();
    for (size_t i = 0; i < a->view.num_listeners; i++)
        json_array_append_new(listeners, json_pack("{s:s,s:s,s:s}", "name", a->view.listeners[i]->cfg->name,
                                                   "address", a->view.listeners[i]->bound_str, "stat_prefix",
                                                   a->view.listeners[i]->cfg->hcm.stat_prefix));
    json_t *j = json_pack("{s:[{s:s,s:{s:s,s:s}},{s:s,s:o},{s:s,s:o}]}", "configs", "@type",
                          "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "node", "id",
                          b->node.id ? b->node.id : "", "cluster", b->node.cluster ? b->node.cluster : "",
                          "@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "static_clusters",
                          clusters, "@type", "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                          "static_listeners", listeners);
    reply_json(req, j);
}

static void h_root(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path != NULL && strcmp(path, "/") == 0) {
        reply_text(
            req, 200,
            "admin commands are:\n  /clusters\n  /config_dump\n  /drain_listeners (POST)\n  "
            "/healthcheck/fail "
            "(POST)\n  /healthcheck/ok (POST)\n  /listeners\n  /logging\n  /quitquitquit (POST)\n  /ready\n  "
            "/server_info\n  /stats\n  /stats/prometheus\n");
        return;
    }
    reply_text(req, 404, "invalid path\n");
}

rm_admin_t *rm_admin_create(struct event_base *base, const rm_admin_config_t *cfg,
                            const rm_admin_view_t *view, char *bound, size_t bound_len, char *err,
                            size_t errlen)
{
    rm_admin_t *a = RM_NEW(rm_admin_t);
    a->view = *view;
    a->http = evhttp_new(base);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(a->http, cfg->address.address, (ev_uint16_t)cfg->address.port);
    if (s == NULL) {
        snprintf(err, errlen, "admin.address: cannot listen on %s:%u", cfg->address.address,
                 cfg->address.port);
        evhttp_free(a->http);
        free(a);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &len);
    rm_sockaddr_str((struct sockaddr *)&ss, bound, bound_len);
    evhttp_set_cb(a->http, "/ready", h_ready, a);
    evhttp_set_cb(a->http, "/stats", h_stats, a);
    evhttp_set_cb(a->http, "/stats/prometheus", h_prometheus, a);
    evhttp_set_cb(a->http, "/clusters", h_clusters, a);
    evhttp_set_cb(a->http, "/listeners", h_listeners, a);
    evhttp_set_cb(a->http, "/server_info", h_server_info, a);
    evhttp_set_cb(a->http, "/logging", h_logging, a);
    evhttp_set_cb(a->http, "/quitquitquit", h_quit, a);
    evhttp_set_cb(a->http, "/healthcheck/fail", h_hc_fail, a);
    evhttp_set_cb(a->http, "/healthcheck/ok", h_hc_ok, a);
    evhttp_set_cb(a->http, "/drain_listeners", h_drain, a);
    evhttp_set_cb(a->http, "/config_dump", h_config_dump, a);
    evhttp_set_gencb(a->http, h_root, a);
    return a;
}

void rm_admin_destroy(rm_admin_t *a)
{
    if (a == NULL)
        return;
    evhttp_free(a->http);
    free(a);
}
