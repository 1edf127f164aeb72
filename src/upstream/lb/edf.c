#include "upstream/lb/edf.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/mem.h"

static bool earlier(const rm_edf_entry_t *a, const rm_edf_entry_t *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void sift_up(rm_edf_entry_t *h, size_t i)
{
    rm_edf_entry_t x = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(&x, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

static void sift_down(rm_edf_entry_t *h, size_t n, size_t i)
{
    rm_edf_entry_t x = h[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && earlier(&h[child + 1], &h[child]))
            child++;
        if (!earlier(&h[child], &x))
            break;
        h[i] = h[child];
        i = child;
    }
    h[i] = x;
}

void rm_edf_init(rm_edf_t *e, size_t cap)
{
    e->cap = cap ? cap : 1;
    e->heap = rm_calloc(e->cap, sizeof(rm_edf_entry_t));
    e->size = 0;
    e->now = 0.0;
    e->seq = 0;
}

void rm_edf_free(rm_edf_t *e)
{
    free(e->heap);
    e->heap = NULL;
    e->size = e->cap = 0;
}

void rm_edf_clear(rm_edf_t *e)
{
    e->size = 0;
    e->now = 0.0;
    e->seq = 0;
}

void rm_edf_add(rm_edf_t *e, uint32_t item, double weight, double phase)
{
    assert(weight > 0.0);
    if (e->size == e->cap) {
        e->cap *= 2;
        e->heap = rm_realloc(e->heap, e->cap * sizeof(rm_edf_entry_t));
    }
    rm_edf_entry_t *x = &e->heap[e->size];
    x->origin = e->now + phase / weight;
    x->deadline = x->origin;
    x->weight = weight;
    x->k = 0;
    x->seq = e->seq++;
    x->item = item;
    sift_up(e->heap, e->size++);
}

uint32_t rm_edf_pick(rm_edf_t *e, double new_weight)
{
    assert(e->size > 0);
    rm_edf_entry_t *top = &e->heap[0];
    e->now = top->deadline;
    if (new_weight > 0.0 && new_weight != top->weight) {
        top->origin = top->deadline;
        top->weight = new_weight;
        top->k = 1;
    } else {
        top->k++;
    }
    top->deadline = top->origin + (double)top->k / top->weight;
    top->seq = e->seq++;
    uint32_t item = top->item;
    sift_down(e->heap, e->size, 0);
    return item;
}

void rm_edf_reweight(rm_edf_t *e, double (*weight_of)(void *ctx, uint32_t item), void *ctx)
{
    for (size_t i = 0; i < e->size; i++) {
        rm_edf_entry_t *x = &e->heap[i];
        double w = weight_of(ctx, x->item);
        assert(w > 0.0);
        if (w == x->weight)
            continue;
        double wait = x->deadline - e->now;
        x->origin = e->now + wait * x->weight / w;
        x->deadline = x->origin;
        x->weight = w;
        x->k = 0;
    }
    /* Floyd's heap construction restores the order in O(n). */
    for (size_t i = e->size / 2; i-- > 0;)
        sift_down(e->heap, e->size, i);
}
