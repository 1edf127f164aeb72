#include "core/worker.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/mem.h"

static __thread rm_worker_t *current_worker;

rm_worker_t *rm_worker_current(void)
{
    return current_worker;
}

static void run_tasks(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rm_worker_t *w = arg;
    pthread_mutex_lock(&w->task_mu);
    rm_worker_task_t *t = w->task_head;
    w->task_head = w->task_tail = NULL;
    pthread_mutex_unlock(&w->task_mu);
    while (t != NULL) {
        rm_worker_task_t *next = t->next;
        t->fn(w, t->arg);
        free(t);
        t = next;
    }
}

int rm_worker_init(rm_worker_t *w, int index, rm_clock_t *clock, uint64_t seed)
{
    w->index = index;
    w->clock = clock;
    rm_rng_seed(&w->rng, seed);
    w->base = event_base_new();
    if (w->base == NULL)
        return -1;
    pthread_mutex_init(&w->task_mu, NULL);
    w->task_ev = event_new(w->base, -1, 0, run_tasks, w);
    atomic_init(&w->active_downstream_conns, 0);
    atomic_init(&w->stopping, false);
    return 0;
}

static void *worker_main(void *arg)
{
    rm_worker_t *w = arg;
    current_worker = w;
    RM_LOG_DEBUG("worker %d started", w->index);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    RM_LOG_DEBUG("worker %d stopped", w->index);
    current_worker = NULL;
    return NULL;
}

int rm_worker_start(rm_worker_t *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = true;
    return 0;
}

void rm_worker_post(rm_worker_t *w, rm_worker_task_cb fn, void *arg)
{
    rm_worker_task_t *t = RM_NEW(rm_worker_task_t);
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&w->task_mu);
    if (w->task_tail)
        w->task_tail->next = t;
    else
        w->task_head = t;
    w->task_tail = t;
    pthread_mutex_unlock(&w->task_mu);
    /* event_active is thread-safe once evthread_use_pthreads() ran; it wakes the loop. */
    event_active(w->task_ev, EV_READ, 0);
}

static void loopexit_task(rm_worker_t *w, void *arg)
{
    (void)arg;
    event_base_loopbreak(w->base);
}

void rm_worker_stop(rm_worker_t *w)
{
    rm_worker_post(w, loopexit_task, NULL);
}

void rm_worker_join(rm_worker_t *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void rm_worker_destroy(rm_worker_t *w)
{
    rm_worker_task_t *t = w->task_head;
    while (t != NULL) {
        rm_worker_task_t *next = t->next;
        free(t);
        t = next;
    }
    w->task_head = w->task_tail = NULL;
    if (w->task_ev)
        event_free(w->task_ev);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->task_mu);
}
