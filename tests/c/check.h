/* Tiny assertion helpers for the libpsyne C ABI tests.
 *
 * CHECK(cond)            counts a pass or prints file:line, the condition and
 *                        psyne_last_error_message(), and counts a failure.
 * CHECK_RC(call, want)   the call must return `want`.
 * CHECK_OK(call)         the call must return PSYNE_OK.
 * REQUIRE_OK(call)       like CHECK_OK, but stops the program on failure
 *                        (for set-up steps the rest of a test depends on).
 * CHECK_DETAIL(substr)   psyne_last_error_message() must contain `substr`.
 * check_summary()        prints "N passed, M failed" and returns the exit code.
 */
#ifndef PSYNE_TEST_CHECK_H
#define PSYNE_TEST_CHECK_H

#include <psyne.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int check_passed_;
static atomic_int check_failed_;

static inline int check_summary(void)
{
    int p = atomic_load(&check_passed_), f = atomic_load(&check_failed_);
    printf("%d passed, %d failed\n", p, f);
    fflush(stdout);
    return f == 0 ? 0 : 1;
}

static inline void check_fail_(const char *file, int line, const char *what)
{
    atomic_fetch_add(&check_failed_, 1);
    fprintf(stderr, "%s:%d: FAILED: %s\n    last error: \"%s\"\n", file, line, what,
            psyne_last_error_message());
    fflush(stderr);
}

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (cond)                                                                      \
            atomic_fetch_add(&check_passed_, 1);                                       \
        else                                                                           \
            check_fail_(__FILE__, __LINE__, #cond);                                    \
    } while (0)

#define CHECK_RC_AT_(call, want, fatal)                                                \
    do {                                                                               \
        psyne_error_t rc_ = (call);                                                    \
        psyne_error_t want_ = (want);                                                  \
        if (rc_ == want_) {                                                            \
            atomic_fetch_add(&check_passed_, 1);                                       \
        } else {                                                                       \
            char what_[512];                                                           \
            snprintf(what_, sizeof what_, "%s returned %d (%s), expected %d (%s)",     \
                     #call, (int)rc_, psyne_error_string(rc_), (int)want_,             \
                     psyne_error_string(want_));                                       \
            check_fail_(__FILE__, __LINE__, what_);                                    \
            if (fatal) {                                                               \
                check_summary();                                                       \
                exit(1);                                                               \
            }                                                                          \
        }                                                                              \
    } while (0)

#define CHECK_RC(call, want) CHECK_RC_AT_(call, want, 0)
#define CHECK_OK(call) CHECK_RC_AT_(call, PSYNE_OK, 0)
#define REQUIRE_OK(call) CHECK_RC_AT_(call, PSYNE_OK, 1)
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (cond) {                                                                    \
            atomic_fetch_add(&check_passed_, 1);                                       \
        } else {                                                                       \
            check_fail_(__FILE__, __LINE__, #cond);                                    \
            check_summary();                                                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_DETAIL(substr)                                                           \
    do {                                                                               \
        const char *m_ = psyne_last_error_message();                                   \
        if (m_ != NULL && strstr(m_, (substr)) != NULL) {                              \
            atomic_fetch_add(&check_passed_, 1);                                       \
        } else {                                                                       \
            char what_[512];                                                           \
            snprintf(what_, sizeof what_, "last error message should contain \"%s\"", \
                     (substr));                                                        \
            check_fail_(__FILE__, __LINE__, what_);                                    \
        }                                                                              \
    } while (0)

/* Monotonic milliseconds. */
static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A channel on a fresh memory:// name (names are unique per process). */
static inline psyne_channel_t *fresh_channel(const char *tag, size_t size, int mode, int type)
{
    static atomic_int seq;
    char uri[128];
    snprintf(uri, sizeof uri, "memory://%s-%d-%d", tag, (int)getpid(), atomic_fetch_add(&seq, 1));
    psyne_channel_t *ch = NULL;
    REQUIRE_OK(psyne_channel_create(uri, size, mode, type, &ch));
    REQUIRE(ch != NULL);
    return ch;
}

/* Use-after-free checks are only meaningful without AddressSanitizer (which
 * rightly reports them). */
#if defined(__SANITIZE_ADDRESS__)
#define PSYNE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PSYNE_TEST_ASAN 1
#endif
#endif

#endif
