/* remora: the sidecar program. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/bootstrap.h"
#include "core/log.h"
#include "server.h"
#include "tls/tls.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: remora -c BOOTSTRAP.yaml [options]\n"
            "  -c, --config-path FILE       Envoy v3 bootstrap (YAML subset; see docs/configuration.md)\n"
            "      --mode serve|validate    validate: check the file and exit 0 (valid) or 1\n"
            "      --workers N              worker threads (default: number of CPUs)\n"
            "      --concurrency N          same as --workers (Envoy's name)\n"
            "  -l, --log-level LEVEL        trace, debug, info, warning, error, critical, off\n"
            "      --admin-address-path F   write the admin address (ip:port) to F once bound\n"
            "      --drain-time-s N         on SIGTERM, wait up to N s for in-flight requests (default 15)\n"
            "  -h, --help\n");
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* --mode validate: the TLS certificates, keys and CAs must also be usable, as serving would find
 * out when it builds the listeners and clusters. */
static int check_tls(const rm_bootstrap_config_t *b, char *err, size_t errlen)
{
    char why[768];
    for (size_t i = 0; i < b->num_listeners; i++) {
        const rm_tls_config_t *t = &b->listeners[i].tls;
        rm_tls_ctx_t *ctx = t->enabled ? rm_tls_server_ctx_create(t, why, sizeof(why)) : NULL;
        if (t->enabled && ctx == NULL) {
            snprintf(err, errlen, "static_resources.listeners[%zu].filter_chains[0].transport_socket: %s", i,
                     why);
            return -1;
        }
        rm_tls_ctx_unref(ctx);
    }
    for (size_t i = 0; i < b->num_clusters; i++) {
        const rm_tls_config_t *t = &b->clusters[i].tls;
        rm_tls_ctx_t *ctx = t->enabled ? rm_tls_client_ctx_create(t, why, sizeof(why)) : NULL;
        if (t->enabled && ctx == NULL) {
            snprintf(err, errlen, "static_resources.clusters[%zu].transport_socket: %s", i, why);
            return -1;
        }
        rm_tls_ctx_unref(ctx);
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_MODE = 256, OPT_WORKERS, OPT_ADMIN_PATH, OPT_DRAIN };
    static const struct option longopts[] = {
        {"config-path", required_argument, NULL, 'c'},
        {"mode", required_argument, NULL, OPT_MODE},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"concurrency", required_argument, NULL, OPT_WORKERS},
        {"log-level", required_argument, NULL, 'l'},
        {"admin-address-path", required_argument, NULL, OPT_ADMIN_PATH},
        {"drain-time-s", required_argument, NULL, OPT_DRAIN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *mode = "serve";
    rm_server_options_t opts = {
        .num_workers = (int)sysconf(_SC_NPROCESSORS_ONLN),
        .drain_time_ms = 15000,
    };
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "c:l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case OPT_MODE:
            mode = optarg;
            if (strcmp(mode, "serve") != 0 && strcmp(mode, "validate") != 0) {
                fprintf(stderr, "remora: --mode must be serve or validate\n");
                return 1;
            }
            break;
        case OPT_WORKERS:
            if (parse_uint(optarg, 1024, &v) != 0 || v == 0) {
                fprintf(stderr, "remora: --workers must be between 1 and 1024\n");
                return 1;
            }
            opts.num_workers = (int)v;
            break;
        case 'l': {
            rm_log_level_t lv;
            if (rm_log_level_parse(optarg, &lv) != 0) {
                fprintf(stderr, "remora: unknown log level '%s'\n", optarg);
                return 1;
            }
            rm_log_set_level(lv);
            break;
        }
        case OPT_ADMIN_PATH:
            opts.admin_address_path = optarg;
            break;
        case OPT_DRAIN:
            if (parse_uint(optarg, 86400, &v) != 0) {
                fprintf(stderr, "remora: --drain-time-s must be a number of seconds\n");
                return 1;
            }
            opts.drain_time_ms = (uint64_t)v * 1000;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (config == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }
    if (opts.num_workers <= 0)
        opts.num_workers = 1;
    char err[1024];
    rm_bootstrap_config_t *b = NULL;
    if (rm_bootstrap_load_file(config, &b, err, sizeof(err)) != 0) {
        fprintf(stderr, "remora: %s: %s\n", config, err);
        return 1;
    }
    if (strcmp(mode, "validate") == 0) {
        if (check_tls(b, err, sizeof(err)) != 0) {
            fprintf(stderr, "remora: %s: %s\n", config, err);
            rm_bootstrap_config_free(b);
            return 1;
        }
        printf("configuration '%s' OK\n", config);
        rm_bootstrap_config_free(b);
        return 0;
    }
    opts.command_line = config;
    int rc = rm_server_run(b, &opts);
    rm_bootstrap_config_free(b);
    return rc;
}
