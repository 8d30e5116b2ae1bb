/* What tcp_echo_server.c and tcp_echo_client.c agree on. */
#ifndef PSYNE_TCP_ECHO_COMMON_H
#define PSYNE_TCP_ECHO_COMMON_H

#include "example.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Every wait is bounded: a missing peer fails the example after 30 s. */
enum { ECHO_TIMEOUT_MS = 30000 };
/* Ring of each end: messages up to half of it minus 16 bytes. */
enum { ECHO_RING_SIZE = 1 << 20 };
/* Messages the client keeps in flight before it waits for an echo. */
enum { ECHO_WINDOW = 32 };

/* Message #seq: its sequence number, then a byte pattern; 4 to 2051 bytes,
 * type seq % 1000 + 1. */
static inline size_t echo_message_size(uint32_t seq) { return sizeof seq + (seq * 37u) % 2048u; }
static inline uint32_t echo_message_type(uint32_t seq) { return seq % 1000u + 1u; }

static inline void echo_fill(unsigned char *p, size_t size, uint32_t seq)
{
    memcpy(p, &seq, sizeof seq);
    for (size_t i = sizeof seq; i < size; i++)
        p[i] = (unsigned char)(seq * 7u + i);
}

static inline bool echo_check(const unsigned char *p, size_t size, uint32_t type, uint32_t seq)
{
    uint32_t got;
    if (size != echo_message_size(seq) || type != echo_message_type(seq))
        return false;
    memcpy(&got, p, sizeof got);
    if (got != seq)
        return false;
    for (size_t i = sizeof seq; i < size; i++)
        if (p[i] != (unsigned char)(seq * 7u + i))
            return false;
    return true;
}

static inline void echo_sleep_ms(long ms)
{
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Monotonic milliseconds. */
static inline long long echo_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
