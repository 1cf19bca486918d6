/*
 * rt_internal.h — helpers shared inside libtwinc, not part of its API.
 */
#ifndef TWINC_RT_INTERNAL_H
#define TWINC_RT_INTERNAL_H
#include <stddef.h>

/* Format a message into errbuf (if any); never fails, never prints. */
__attribute__((visibility("hidden"), format(printf, 3, 4))) void twinc__set_error(char *errbuf, size_t errlen,
                                                                                  const char *fmt, ...);
#endif
