/* Small helpers shared by the C examples: every psyne call returns a
 * psyne_error_t; on failure the code's name (psyne_error_string) and the
 * thread-local detail text (psyne_last_error_message) say what went wrong. */
#ifndef PSYNE_EXAMPLE_H
#define PSYNE_EXAMPLE_H

/* The examples build as strict C11 (-std=c11); they also use POSIX calls
 * (pthreads, clock_gettime, nanosleep). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <psyne.h>
#include <stdio.h>
#include <stdlib.h>

/* Print a failed call the way applications should report psyne errors. */
static inline void example_report(const char *what, psyne_error_t err)
{
    fprintf(stderr, "%s: %s (%d): %s\n", what, psyne_error_string(err), (int)err,
            psyne_last_error_message());
}

/* Abort the example when a call that must succeed does not. */
#define CHECK(call)                                                          \
    do {                                                                     \
        psyne_error_t check_err_ = (call);                                   \
        if (check_err_ != PSYNE_OK) {                                        \
            example_report(#call, check_err_);                               \
            exit(EXIT_FAILURE);                                              \
        }                                                                    \
    } while (0)

/* The examples double as tests: a wrong result ends them with status 1. */
#define EXPECT(cond)                                                         \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
            exit(EXIT_FAILURE);                                              \
        }                                                                    \
    } while (0)

/* Exit status of the ipc examples when this libpsyne build has no ipc://
 * yet (PSYNE_ERROR_UNSUPPORTED); 77 is the usual "skipped" status of test
 * drivers (automake, meson). */
#define EXAMPLE_EXIT_UNSUPPORTED 77

#endif
