/* Injected time and randomness, so LB, priority, outlier and health-check logic can be unit-tested
 * with a fake clock and a seeded generator. */
#ifndef RM_CORE_CLOCK_H
#define RM_CORE_CLOCK_H

#include <stdint.h>

typedef struct rm_clock rm_clock_t;
struct rm_clock {
    /* Monotonic milliseconds. */
    uint64_t (*monotonic_ms)(rm_clock_t *clock);
    /* Wall-clock microseconds since the epoch. */
    uint64_t (*realtime_us)(rm_clock_t *clock);
    void *data;
};

/* The process clock (CLOCK_MONOTONIC / CLOCK_REALTIME). Never freed. */
rm_clock_t *rm_clock_system(void);

static inline uint64_t rm_clock_now_ms(rm_clock_t *c)
{
    return c->monotonic_ms(c);
}

/* A fake clock for tests: time moves only when rm_fake_clock_advance is called. */
typedef struct {
    rm_clock_t super;
    uint64_t now_ms;
    uint64_t wall_us;
} rm_fake_clock_t;

void rm_fake_clock_init(rm_fake_clock_t *c, uint64_t start_ms);
void rm_fake_clock_advance(rm_fake_clock_t *c, uint64_t ms);

/* Small fast PRNG (xoshiro256**), one per thread; not for cryptography. */
typedef struct {
    uint64_t s[4];
} rm_rng_t;

void rm_rng_seed(rm_rng_t *r, uint64_t seed);
uint64_t rm_rng_next(rm_rng_t *r);
/* Uniform in [0, bound); bound > 0. */
uint64_t rm_rng_below(rm_rng_t *r, uint64_t bound);

#endif
