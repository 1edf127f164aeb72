/* remora-cp's gRPC server: ADS, CDS and EDS (state of the world) and the remora.controlplane.v1.Admin
 * service on one port, driven by one thread through one completion queue (grpc C core, insecure).
 *
 * All state (snapshot, streams, nodes, parked WaitForAck calls) belongs to the thread that calls
 * rm_cp_server_run. The snapshot file is checked for changes every poll interval on that thread;
 * an invalid file is reported and the previous snapshot stays in service. */
#ifndef RM_CP_SERVER_H
#define RM_CP_SERVER_H

#include <stddef.h>

typedef struct rm_cp_server rm_cp_server_t;

typedef struct {
    const char *listen;          /* "host:port"; port 0 picks a free one */
    const char *snapshot_path;   /* required */
    int poll_interval_ms;        /* snapshot file check period; 0: 500 */
    int default_wait_timeout_ms; /* WaitForAck without a timeout; 0: 10000 */
    int shutdown_grace_ms;       /* after stop, how long calls may take to finish; 0: 2000 */
} rm_cp_server_options_t;

/* Loads the snapshot, binds and starts serving. Returns NULL with a message in err. Call grpc_init()
 * first. */
rm_cp_server_t *rm_cp_server_start(const rm_cp_server_options_t *opts, char *err, size_t errlen);

/* The bound port. */
int rm_cp_server_port(const rm_cp_server_t *srv);

/* Serves until rm_cp_server_stop, then closes every stream (UNAVAILABLE), answers parked calls and
 * shuts the server down. */
void rm_cp_server_run(rm_cp_server_t *srv);

/* Asks run() to finish. Callable from any thread (not from a signal handler), more than once. */
void rm_cp_server_stop(rm_cp_server_t *srv);

/* Frees a server whose run() has returned (or that never ran). */
void rm_cp_server_destroy(rm_cp_server_t *srv);

#endif
