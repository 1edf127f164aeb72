#include "server.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/worker.h"
#include "http/h1_server.h"
#include "http/listener.h"
#include "upstream/cluster_manager.h"
#include "upstream/tl_cluster_manager.h"
#include "xds/xds_client.h"

typedef struct {
    struct event_base *base;
    const rm_bootstrap_config_t *bootstrap;
    rm_server_options_t opts;
    rm_worker_t *workers;
    int num_workers;
    rm_listener_t **listeners;
    size_t num_listeners;
    rm_cluster_manager_t *cm;
    rm_xds_client_t *xds;
    struct event *init_timer; /* initial_fetch_timeout for the first CDS response */
    bool cds_seen;
    rm_admin_t *admin;
    _Atomic int state;
    _Atomic int hc_failed;
    struct event *sigterm_ev, *sigint_ev, *drain_poll_ev;
    uint64_t drain_deadline_ms;
    bool shutting_down;
    bool listeners_closed;
    _Atomic int workers_listeners_closed;
} server_t;

typedef struct {
    rm_listener_t *listener;
    rm_worker_t *worker;
} accept_ctx_t;

static void accept_cb(struct evconnlistener *el, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)el;
    accept_ctx_t *ac = arg;
    rm_h1_server_accept(ac->worker, ac->listener, fd, sa, len);
}

static void accept_error_cb(struct evconnlistener *el, void *arg)
{
    (void)el;
    accept_ctx_t *ac = arg;
    RM_LOG_WARN("listener %s: accept failed: %s", ac->listener->cfg->name,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ---- snapshot publication ---- */

static void adopt_task(rm_worker_t *w, void *arg)
{
    rm_tlcm_adopt(w->upstream, arg);
}

static void publish_cb(void *ctx, rm_snapshot_t *snap)
{
    server_t *s = ctx;
    for (int i = 0; i < s->num_workers; i++)
        rm_worker_post(&s->workers[i], adopt_task, rm_snapshot_ref(snap));
    rm_snapshot_unref(snap);
}

/* ---- initialisation: listeners open once clusters are warm ---- */

static void enable_listeners_task(rm_worker_t *w, void *arg)
{
    server_t *s = arg;
    for (size_t i = 0; i < s->num_listeners; i++)
        if (s->listeners[i]->listeners[w->index] != NULL)
            evconnlistener_enable(s->listeners[i]->listeners[w->index]);
}

static void go_live(void *ctx)
{
    server_t *s = ctx;
    if (atomic_load(&s->state) != RM_SERVER_PRE_INITIALIZING)
        return;
    if (s->init_timer)
        evtimer_del(s->init_timer);
    for (int i = 0; i < s->num_workers; i++)
        rm_worker_post(&s->workers[i], enable_listeners_task, s);
    atomic_store(&s->state, RM_SERVER_LIVE);
    RM_LOG_INFO("all clusters initialized; listeners open");
}

static void init_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_t *s = arg;
    RM_LOG_WARN("no cluster configuration from the management server within the initial fetch timeout; "
                "starting with what is there");
    go_live(s);
}

static void xds_on_clusters(void *ctx, rm_cluster_config_t *clusters, size_t n, const char *version)
{
    server_t *s = ctx;
    RM_LOG_INFO("CDS version %s: %zu clusters", version, n);
    if (!s->cds_seen) {
        s->cds_seen = true;
        if (atomic_load(&s->state) == RM_SERVER_PRE_INITIALIZING)
            rm_cluster_manager_on_warm(s->cm, go_live, s);
    }
    rm_cluster_manager_apply_cds(s->cm, clusters, n,
                                 s->bootstrap->dynamic_resources.cds_config.initial_fetch_timeout_ms);
}

static void xds_on_assignments(void *ctx, rm_cluster_load_assignment_t *clas, size_t n, const char *version)
{
    server_t *s = ctx;
    RM_LOG_DEBUG("EDS version %s: %zu assignments", version, n);
    rm_cluster_manager_apply_eds(s->cm, clas, n);
}

static void xds_on_connection(void *ctx, bool connected)
{
    (void)ctx;
    if (connected)
        RM_LOG_INFO("connected to the management server");
    else
        RM_LOG_WARN("lost the management server; serving the last accepted configuration");
}

static void xds_extra_stats(void *ctx, rm_stats_visit_cb cb, void *cb_ctx)
{
    server_t *s = ctx;
    if (s->xds != NULL)
        rm_xds_stats_visit(rm_xds_client_stats(s->xds), cb, cb_ctx);
}

/* ---- shutdown ---- */

static void close_listeners_task(rm_worker_t *w, void *arg)
{
    server_t *s = arg;
    for (size_t i = 0; i < s->num_listeners; i++) {
        rm_listener_t *l = s->listeners[i];
        if (l->listeners[w->index] != NULL) {
            evconnlistener_free(l->listeners[w->index]); /* closes the fd */
            l->listeners[w->index] = NULL;
            l->fds[w->index] = -1;
        }
    }
    atomic_fetch_add(&s->workers_listeners_closed, 1);
}

static void drain_task(rm_worker_t *w, void *arg)
{
    close_listeners_task(w, arg);
    rm_h1_server_drain_worker(w);
}

static void final_task(rm_worker_t *w, void *arg)
{
    (void)arg;
    rm_h1_server_close_all(w);
    event_base_loopbreak(w->base);
}

static void drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_t *s = arg;
    int64_t active = 0;
    for (int i = 0; i < s->num_workers; i++)
        active += atomic_load(&s->workers[i].active_downstream_conns);
    uint64_t now = rm_clock_now_ms(rm_clock_system());
    if (active > 0 && now < s->drain_deadline_ms) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(s->drain_poll_ev, &tv);
        return;
    }
    if (active > 0)
        RM_LOG_WARN("drain period over with %lld connections still open; closing them", (long long)active);
    else
        RM_LOG_INFO("all downstream connections drained");
    for (int i = 0; i < s->num_workers; i++)
        rm_worker_post(&s->workers[i], final_task, NULL);
    event_base_loopbreak(s->base);
}

static void begin_shutdown(server_t *s, const char *why)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    RM_LOG_INFO("%s: draining (up to %llu ms)", why, (unsigned long long)s->opts.drain_time_ms);
    atomic_store(&s->state, RM_SERVER_DRAINING);
    for (int i = 0; i < s->num_workers; i++)
        rm_worker_post(&s->workers[i], drain_task, s);
    s->drain_deadline_ms = rm_clock_now_ms(rm_clock_system()) + s->opts.drain_time_ms;
    s->drain_poll_ev = evtimer_new(s->base, drain_poll_cb, s);
    struct timeval tv = {0, 20 * 1000};
    evtimer_add(s->drain_poll_ev, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    begin_shutdown(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_quit(void *ctx)
{
    begin_shutdown(ctx, "/quitquitquit");
}

static void on_drain_listeners(void *ctx)
{
    server_t *s = ctx;
    if (s->listeners_closed)
        return;
    s->listeners_closed = true;
    RM_LOG_INFO("/drain_listeners: closing listeners");
    for (int i = 0; i < s->num_workers; i++)
        rm_worker_post(&s->workers[i], close_listeners_task, s);
}

static int write_admin_address(const char *path, const char *addr)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%s\n", addr);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int rm_server_run(const rm_bootstrap_config_t *b, const rm_server_options_t *opts)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    server_t *s = RM_NEW(server_t);
    s->bootstrap = b;
    s->opts = *opts;
    s->num_workers = opts->num_workers > 0 ? opts->num_workers : 1;
    s->base = event_base_new();
    atomic_init(&s->state, RM_SERVER_PRE_INITIALIZING);
    int rc = 1;
    char err[512] = "";

    s->workers = rm_calloc((size_t)s->num_workers, sizeof(rm_worker_t));
    uint64_t seed = rm_clock_system()->realtime_us(rm_clock_system()) ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < s->num_workers; i++) {
        if (rm_worker_init(&s->workers[i], i, rm_clock_system(),
                           seed + (uint64_t)i * 0x9e3779b97f4a7c15ull) != 0) {
            RM_LOG_CRITICAL("cannot create worker %d", i);
            goto out;
        }
        s->workers[i].upstream = rm_tlcm_create(&s->workers[i]);
        s->workers[i].http = rm_http_worker_create();
    }

    s->cm = rm_cluster_manager_create(s->base, b, publish_cb, s, err, sizeof(err));
    if (s->cm == NULL) {
        RM_LOG_CRITICAL("%s", err);
        goto out;
    }
    for (int i = 0; i < s->num_workers; i++)
        rm_tlcm_adopt(s->workers[i].upstream, rm_snapshot_ref(rm_cluster_manager_snapshot(s->cm)));

    s->num_listeners = b->num_listeners;
    s->listeners = rm_calloc(b->num_listeners ? b->num_listeners : 1, sizeof(rm_listener_t *));
    accept_ctx_t *acs = rm_calloc(b->num_listeners * (size_t)s->num_workers + 1, sizeof(accept_ctx_t));
    for (size_t i = 0; i < b->num_listeners; i++) {
        rm_listener_t *l = rm_listener_create(&b->listeners[i], s->num_workers, err, sizeof(err));
        if (l == NULL) {
            RM_LOG_CRITICAL("%s", err);
            free(acs);
            goto out;
        }
        s->listeners[i] = l;
        for (int w = 0; w < s->num_workers; w++) {
            accept_ctx_t *ac = &acs[i * (size_t)s->num_workers + (size_t)w];
            ac->listener = l;
            ac->worker = &s->workers[w];
            l->listeners[w] = evconnlistener_new(
                s->workers[w].base, accept_cb, ac,
                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, -1, l->fds[w]);
            evconnlistener_set_error_cb(l->listeners[w], accept_error_cb);
        }
        RM_LOG_INFO("listener %s on %s", l->cfg->name, l->bound_str);
    }

    if (b->admin.enabled) {
        rm_admin_view_t view = {
            .listeners = s->listeners,
            .num_listeners = s->num_listeners,
            .cm = s->cm,
            .bootstrap = b,
            .state = &s->state,
            .hc_failed = &s->hc_failed,
            .start_time_s = (uint64_t)time(NULL),
            .num_workers = s->num_workers,
            .command_line = opts->command_line,
            .extra_stats = xds_extra_stats,
            .on_quit = on_quit,
            .on_drain_listeners = on_drain_listeners,
            .ctx = s,
        };
        char bound[128];
        s->admin = rm_admin_create(s->base, &b->admin, &view, bound, sizeof(bound), err, sizeof(err));
        if (s->admin == NULL) {
            RM_LOG_CRITICAL("%s", err);
            free(acs);
            goto out;
        }
        RM_LOG_INFO("admin on %s", bound);
        if (opts->admin_address_path != NULL && write_admin_address(opts->admin_address_path, bound) != 0) {
            RM_LOG_CRITICAL("cannot write --admin-address-path %s", opts->admin_address_path);
            free(acs);
            goto out;
        }
    }

    s->sigterm_ev = evsignal_new(s->base, SIGTERM, signal_cb, s);
    s->sigint_ev = evsignal_new(s->base, SIGINT, signal_cb, s);
    evsignal_add(s->sigterm_ev, NULL);
    evsignal_add(s->sigint_ev, NULL);

    if (b->dynamic_resources.enabled) {
        static const rm_xds_callbacks_t xds_cbs = {
            .on_clusters = xds_on_clusters,
            .on_assignments = xds_on_assignments,
            .on_connection = xds_on_connection,
        };
        s->xds = rm_xds_client_create(b, s->base, &xds_cbs, s, err, sizeof(err));
        if (s->xds == NULL) {
            RM_LOG_CRITICAL("dynamic_resources: %s", err);
            free(acs);
            goto out;
        }
    }
    rm_cluster_manager_start(s->cm);
    for (int i = 0; i < s->num_workers; i++) {
        if (rm_worker_start(&s->workers[i]) != 0) {
            RM_LOG_CRITICAL("cannot start worker thread %d", i);
            free(acs);
            goto out;
        }
    }
    RM_LOG_INFO("remora started with %d workers", s->num_workers);
    if (s->xds != NULL) {
        if (rm_xds_client_start(s->xds) != 0) {
            RM_LOG_CRITICAL("cannot start the xDS client thread");
            free(acs);
            goto out;
        }
    }
    if (b->dynamic_resources.cds_config.set) {
        /* Serve once the first CDS response and the EDS of its clusters are in, or after the
         * initial fetch timeout, as Envoy's init manager does. */
        uint64_t ms = b->dynamic_resources.cds_config.initial_fetch_timeout_ms;
        if (ms == 0)
            ms = 15000;
        s->init_timer = evtimer_new(s->base, init_timeout_cb, s);
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(s->init_timer, &tv);
    } else if (!rm_cluster_manager_warm(s->cm)) {
        rm_cluster_manager_on_warm(s->cm, go_live, s); /* static EDS clusters */
    } else {
        go_live(s);
    }
    event_base_dispatch(s->base);

    for (int i = 0; i < s->num_workers; i++)
        rm_worker_join(&s->workers[i]);
    if (s->xds)
        rm_xds_client_stop(s->xds);
    RM_LOG_INFO("exiting");
    rc = 0;
    free(acs);

out:
    for (int i = 0; i < s->num_workers; i++) {
        if (s->workers[i].started) {
            rm_worker_stop(&s->workers[i]);
            rm_worker_join(&s->workers[i]);
        }
    }
    for (size_t i = 0; i < s->num_listeners; i++) {
        rm_listener_t *l = s->listeners[i];
        if (l == NULL)
            continue;
        for (int w = 0; w < l->num_workers; w++) {
            if (l->listeners[w] != NULL) {
                evconnlistener_free(l->listeners[w]);
                l->listeners[w] = NULL;
                l->fds[w] = -1;
            }
        }
    }
    for (int i = 0; i < s->num_workers; i++) {
        if (s->workers[i].http) {
            rm_h1_server_close_all(&s->workers[i]);
            rm_http_worker_destroy(s->workers[i].http);
        }
        rm_tlcm_destroy(s->workers[i].upstream);
        /* Let pools finish freeing closed connections before the base goes away. */
        if (s->workers[i].base)
            event_base_loop(s->workers[i].base, EVLOOP_NONBLOCK);
        rm_worker_destroy(&s->workers[i]);
    }
    for (size_t i = 0; i < s->num_listeners; i++)
        rm_listener_destroy(s->listeners[i]);
    free(s->listeners);
    rm_admin_destroy(s->admin);
    if (s->xds)
        rm_xds_client_destroy(s->xds);
    if (s->init_timer)
        event_free(s->init_timer);
    rm_cluster_manager_destroy(s->cm);
    if (s->sigterm_ev)
        event_free(s->sigterm_ev);
    if (s->sigint_ev)
        event_free(s->sigint_ev);
    if (s->drain_poll_ev)
        event_free(s->drain_poll_ev);
    free(s->workers);
    event_base_free(s->base);
    free(s);
    libevent_global_shutdown();
    return rc;
}
