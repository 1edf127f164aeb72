/* Assertions for integration tests: on failure they print the condition, a formatted explanation
 * and the stderr tail of every process the harness still runs, then fail the cmocka test (whose
 * teardown kills the processes). Include after <cmocka.h>. */
#ifndef REMORA_TEST_IT_ASSERT_H
#define REMORA_TEST_IT_ASSERT_H

#include "harness.h"

#include <stdio.h>

#define IT_ASSERT(cond, ...)                                                                                 \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                                    \
            fprintf(stderr, "\n");                                                                           \
            harness_on_failure();                                                                            \
            fail();                                                                                          \
        }                                                                                                    \
    } while (0)

#endif
