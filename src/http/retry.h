/* Retry decisions of the router (route retry_policy), as pure functions so they can be tested
 * without traffic. The proxy stream (http/proxy.c) owns the per-request state: attempts, the
 * replay buffer, tried hosts and the cluster's max_retries circuit breaker. */
#ifndef RM_HTTP_RETRY_H
#define RM_HTTP_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/clock.h"

/* Why an attempt failed. */
typedef enum {
    RM_RETRY_CAUSE_CONNECT_FAILURE, /* connecting to the host failed or timed out */
    RM_RETRY_CAUSE_RESET,           /* the connection broke before a response head */
    RM_RETRY_CAUSE_REFUSED_STREAM,  /* an HTTP/2 REFUSED_STREAM reset */
    RM_RETRY_CAUSE_PER_TRY_TIMEOUT, /* per_try_timeout expired before a response head */
    RM_RETRY_CAUSE_STATUS,          /* a response head with `status` */
} rm_retry_cause_t;

/* Envoy's retry_on semantics: 5xx and gateway-error also cover the failures that produce no
 * response at all (connect failure, reset, per-try timeout), connect-failure only the first of
 * those, reset the ones after connecting, refused-stream only REFUSED_STREAM; for a response,
 * 5xx is any 5xx, gateway-error 502/503/504, retriable-4xx 409, retriable-status-codes the list. */
bool rm_retry_retriable(const rm_retry_policy_config_t *rp, rm_retry_cause_t cause, int status);

/* Envoy's jittered exponential back-off before retry number `retry` (1 for the first): a uniform
 * random time below (2^retry - 1) * base_interval, the ceiling capped at max_interval (default
 * 10 * base_interval). */
uint64_t rm_retry_backoff_ms(const rm_retry_policy_config_t *rp, uint32_t retry, rm_rng_t *rng);

#endif
