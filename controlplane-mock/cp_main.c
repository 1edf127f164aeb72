/* remora-cp: a mock xDS control plane for Remora (and Envoy) sidecars. See README.md. */
#include "core/log.h"
#include "cp_server.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: remora-cp --snapshot FILE.yaml [--listen HOST:PORT] [--port-file FILE] [--log-level LEVEL]\n"
        "                 [--poll-interval MS]\n"
        "\n"
        "Serves ADS, CDS and EDS (state of the world) from FILE.yaml and the remora.controlplane.v1.Admin\n"
        "API on one gRPC port (insecure). FILE.yaml is reloaded when it changes; an invalid file is\n"
        "reported and the previous snapshot stays in service.\n"
        "\n"
        "  --listen HOST:PORT   address to serve on (default 127.0.0.1:18000; port 0 picks a free port)\n"
        "  --snapshot FILE      the snapshot (clusters and endpoints), required\n"
        "  --port-file FILE     write the bound port to FILE (atomically) once serving\n"
        "  --log-level LEVEL    trace, debug, info (default), warning, error, critical, off\n"
        "  --poll-interval MS   how often FILE.yaml is checked for changes (default 500)\n");
}

/* Writes "PORT\n" to path through a temporary file and a rename, so a reader never sees half of it. */
static int write_port_file(const char *path, int port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

typedef struct {
    rm_cp_server_t *srv;
    sigset_t set;
} signal_ctx_t;

/* SIGTERM and SIGINT are blocked in every thread; this one waits for them and stops the server. */
static void *signal_thread(void *arg)
{
    signal_ctx_t *ctx = arg;
    int sig;
    if (sigwait(&ctx->set, &sig) == 0) {
        RM_LOG_INFO("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        rm_cp_server_stop(ctx->srv);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:18000", *snapshot = NULL, *port_file = NULL;
    int poll_ms = 0;
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"snapshot", required_argument, NULL, 's'},
        {"port-file", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'v'},
        {"poll-interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "l:s:p:v:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 's':
            snapshot = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'v': {
            rm_log_level_t level;
            if (rm_log_level_parse(optarg, &level) != 0) {
                fprintf(stderr, "remora-cp: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            rm_log_set_level(level);
            break;
        }
        case 'i': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 10 || v > 60000) {
                fprintf(stderr, "remora-cp: --poll-interval must be 10..60000 (milliseconds)\n");
                return 2;
            }
            poll_ms = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || snapshot == NULL) {
        if (snapshot == NULL)
            fprintf(stderr, "remora-cp: --snapshot is required\n");
        else
            fprintf(stderr, "remora-cp: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    /* Block the stop signals before any thread exists (grpc starts its own), so only sigwait sees them. */
    signal_ctx_t sigctx;
    sigemptyset(&sigctx.set);
    sigaddset(&sigctx.set, SIGTERM);
    sigaddset(&sigctx.set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigctx.set, NULL);
    signal(SIGPIPE, SIG_IGN);

    grpc_init();
    rm_cp_server_options_t opts = {.listen = listen, .snapshot_path = snapshot, .poll_interval_ms = poll_ms};
    char err[1024];
    rm_cp_server_t *srv = rm_cp_server_start(&opts, err, sizeof(err));
    if (srv == NULL) {
        RM_LOG_CRITICAL("remora-cp: %s", err);
        grpc_shutdown();
        return 1;
    }
    int port = rm_cp_server_port(srv);
    RM_LOG_INFO("remora-cp serving ADS, CDS, EDS and Admin on %s (port %d), snapshot %s", listen, port,
                snapshot);
    if (port_file != NULL && write_port_file(port_file, port) != 0) {
        RM_LOG_CRITICAL("remora-cp: cannot write the port file %s: %s", port_file, strerror(errno));
        rm_cp_server_destroy(srv);
        grpc_shutdown();
        return 1;
    }

    sigctx.srv = srv;
    pthread_t thread;
    if (pthread_create(&thread, NULL, signal_thread, &sigctx) != 0) {
        RM_LOG_CRITICAL("remora-cp: cannot start the signal thread");
        rm_cp_server_destroy(srv);
        grpc_shutdown();
        return 1;
    }
    rm_cp_server_run(srv);
    /* run() also returns on its own only after a stop; the signal thread has finished by then. */
    pthread_join(thread, NULL);
    rm_cp_server_destroy(srv);
    grpc_shutdown();
    return 0;
}
