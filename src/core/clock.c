#include "core/clock.h"

#include <time.h>

static uint64_t system_monotonic_ms(rm_clock_t *c)
{
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t system_realtime_us(rm_clock_t *c)
{
    (void)c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static rm_clock_t system_clock = {system_monotonic_ms, system_realtime_us, NULL};

rm_clock_t *rm_clock_system(void)
{
    return &system_clock;
}

static uint64_t fake_monotonic_ms(rm_clock_t *c)
{
    return ((rm_fake_clock_t *)c)->now_ms;
}

static uint64_t fake_realtime_us(rm_clock_t *c)
{
    return ((rm_fake_clock_t *)c)->wall_us;
}

void rm_fake_clock_init(rm_fake_clock_t *c, uint64_t start_ms)
{
    c->super.monotonic_ms = fake_monotonic_ms;
    c->super.realtime_us = fake_realtime_us;
    c->super.data = NULL;
    c->now_ms = start_ms;
    c->wall_us = 1700000000000000ull + start_ms * 1000u;
}

void rm_fake_clock_advance(rm_fake_clock_t *c, uint64_t ms)
{
    c->now_ms += ms;
    c->wall_us += ms * 1000u;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rm_rng_seed(rm_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rm_rng_next(rm_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rm_rng_below(rm_rng_t *r, uint64_t bound)
{
    /* Rejection sampling removes modulo bias. */
    uint64_t threshold = -bound % bound;
    for (;;) {
        uint64_t x = rm_rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}
