#include "http/retry.h"

static bool status_retriable(const rm_retry_policy_config_t *rp, int status)
{
    uint32_t on = rp->retry_on;
    if ((on & RM_RETRY_ON_5XX) && status >= 500 && status <= 599)
        return true;
    if ((on & RM_RETRY_ON_GATEWAY_ERROR) && (status == 502 || status == 503 || status == 504))
        return true;
    if ((on & RM_RETRY_ON_RETRIABLE_4XX) && status == 409)
        return true;
    if (on & RM_RETRY_ON_RETRIABLE_STATUS_CODES)
        for (size_t i = 0; i < rp->num_retriable_status_codes; i++)
            if ((int)rp->retriable_status_codes[i] == status)
                return true;
    return false;
}

bool rm_retry_retriable(const rm_retry_policy_config_t *rp, rm_retry_cause_t cause, int status)
{
    uint32_t on = rp->retry_on;
    uint32_t no_response = RM_RETRY_ON_5XX | RM_RETRY_ON_GATEWAY_ERROR | RM_RETRY_ON_RESET;
    switch (cause) {
    case RM_RETRY_CAUSE_CONNECT_FAILURE:
        return (on & (no_response | RM_RETRY_ON_CONNECT_FAILURE)) != 0;
    case RM_RETRY_CAUSE_RESET:
    case RM_RETRY_CAUSE_PER_TRY_TIMEOUT:
        return (on & no_response) != 0;
    case RM_RETRY_CAUSE_REFUSED_STREAM:
        return (on & (no_response | RM_RETRY_ON_REFUSED_STREAM)) != 0;
    case RM_RETRY_CAUSE_STATUS:
        return status_retriable(rp, status);
    }
    return false;
}

uint64_t rm_retry_backoff_ms(const rm_retry_policy_config_t *rp, uint32_t retry, rm_rng_t *rng)
{
    uint64_t base = rp->back_off_base_ms ? rp->back_off_base_ms : 25;
    uint64_t max = rp->back_off_max_ms ? rp->back_off_max_ms : 10 * base;
    uint64_t ceiling = max;
    if (retry < 32) {
        uint64_t mult = (1ull << retry) - 1;
        if (mult <= max / base)
            ceiling = mult * base;
    }
    if (ceiling == 0)
        return 0;
    return rm_rng_below(rng, ceiling);
}
