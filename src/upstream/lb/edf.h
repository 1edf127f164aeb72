/* Earliest-deadline-first scheduler for weighted picks (the idea of Envoy's EdfScheduler): each item
 * has a weight and a deadline; a pick takes the earliest deadline (ties: the item queued first) and
 * schedules that item again one period, 1/weight, later. Over any stretch of virtual time an item
 * is picked in proportion to its weight, and an item's picks are evenly spaced, so heavy items are
 * interleaved with light ones instead of arriving in bursts. Binary min-heap: O(log n) per pick.
 *
 * Deadlines are computed as origin + k / weight (k counts picks since the weight last changed), not
 * by adding 1/weight repeatedly, so static weights do not accumulate rounding error: over each unit
 * of virtual time an item with integer weight w gets exactly w picks.
 *
 * Single-threaded: one scheduler per (worker, host source). Items are small integers chosen by the
 * caller (indexes into its host array). */
#ifndef RM_UPSTREAM_LB_EDF_H
#define RM_UPSTREAM_LB_EDF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double deadline; /* origin + k / weight */
    double origin;
    double weight;
    uint64_t k;
    uint64_t seq; /* FIFO tie-break among equal deadlines */
    uint32_t item;
} rm_edf_entry_t;

typedef struct {
    rm_edf_entry_t *heap;
    size_t size;
    size_t cap;
    double now; /* virtual time: deadline of the last pick */
    uint64_t seq;
} rm_edf_t;

/* Initializes an empty scheduler with room for `cap` items (grows on demand). */
void rm_edf_init(rm_edf_t *e, size_t cap);
void rm_edf_free(rm_edf_t *e);
/* Removes every item and resets virtual time to 0. */
void rm_edf_clear(rm_edf_t *e);

/* Adds an item with weight > 0. Its first deadline is now + phase / weight, phase in (0, 1]: phases
 * spread over (0, 1] stagger items of equal weight so they do not all come due at once. */
void rm_edf_add(rm_edf_t *e, uint32_t item, double weight, double phase);

/* The item that the next pick returns. Precondition: size > 0. */
static inline uint32_t rm_edf_peek(const rm_edf_t *e)
{
    return e->heap[0].item;
}

/* Picks the earliest item and reschedules it. With new_weight equal to its current weight (or <= 0)
 * the next deadline is origin + (k + 1) / weight; otherwise the item continues with new_weight from
 * this deadline on (Envoy's pick-and-add with a freshly computed weight). Precondition: size > 0. */
uint32_t rm_edf_pick(rm_edf_t *e, double new_weight);

/* Changes the weight of every item while keeping its progress: the time an item still has to wait
 * is scaled by old/new weight, so a host whose weight grows comes due sooner. O(n).
 * weight_of returns the new weight (> 0) of an item. */
void rm_edf_reweight(rm_edf_t *e, double (*weight_of)(void *ctx, uint32_t item), void *ctx);

#endif
