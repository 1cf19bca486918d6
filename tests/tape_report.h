/*
 * tape_report.h — forced into the corpus twins under the sanitizers
 * (-include): every adjoint call of a kernel whose workspace size is a bound
 * (TWINC_WS_BOUND) must have fitted in it — the harness passes exactly the
 * bytes the registry states, so a call that had to allocate stated too little.
 * Also compiled into tests/tape_bytes.c, which prints the numbers.
 */
#ifndef TWINC_TAPE_REPORT_H
#define TWINC_TAPE_REPORT_H
#include <stdio.h>
#include <stdlib.h>
/* the last call's high-water mark and allocation, for tests/tape_bytes.c */
__attribute__((weak)) size_t twinc_test_tape_high, twinc_test_tape_heap;
#define TWINC_TAPE_REPORT(name, kind, ws, high, heap)                                                  \
    do {                                                                                             \
        twinc_test_tape_high = (high);                                                               \
        twinc_test_tape_heap = (heap);                                                               \
        if ((kind) == 1 && (heap) != 0) {                                                            \
            fprintf(stderr, "tape: %s used %zu bytes, more than its stated workspace (%zu given)\n", \
                    (name), (size_t)(high), (ws) ? (ws)->bytes : (size_t)0);                         \
            abort();                                                                                 \
        }                                                                                            \
    } while (0)
#endif
