/* Worker threads: each owns one libevent base and runs it until stopped. Other threads talk to a
 * worker only by posting tasks (rm_worker_post), which run on the worker's loop in order. The request
 * path never takes the task mutex. */
#ifndef RM_CORE_WORKER_H
#define RM_CORE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

struct event_base;
struct event;

typedef struct rm_worker rm_worker_t;
typedef void (*rm_worker_task_cb)(rm_worker_t *w, void *arg);

typedef struct rm_worker_task {
    rm_worker_task_cb fn;
    void *arg;
    struct rm_worker_task *next;
} rm_worker_task_t;

struct rm_worker {
    int index;
    pthread_t thread;
    struct event_base *base;
    rm_clock_t *clock;
    rm_rng_t rng;
    /* Thread-local state owned by other layers (upstream: per-worker clusters and pools; http:
     * connection lists). Set before the worker starts and only touched on the worker thread. */
    void *upstream;
    void *http;
    _Atomic int64_t active_downstream_conns;
    _Atomic bool stopping;

    pthread_mutex_t task_mu;
    rm_worker_task_t *task_head, *task_tail;
    struct event *task_ev;
    bool started;
};

/* Initialises a worker and its event base (does not start the thread). Returns 0 or -1. */
int rm_worker_init(rm_worker_t *w, int index, rm_clock_t *clock, uint64_t seed);
/* Starts the loop thread. */
int rm_worker_start(rm_worker_t *w);
/* Posts fn(w, arg) to run on the worker's loop. Any thread. */
void rm_worker_post(rm_worker_t *w, rm_worker_task_cb fn, void *arg);
/* Asks the loop to exit once the current iteration ends. Any thread. */
void rm_worker_stop(rm_worker_t *w);
void rm_worker_join(rm_worker_t *w);
/* Frees the base and pending tasks (after join). */
void rm_worker_destroy(rm_worker_t *w);

/* The worker whose loop is running on this thread, or NULL on other threads. */
rm_worker_t *rm_worker_current(void);

#endif
