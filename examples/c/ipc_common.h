/* What ipc_producer.c and ipc_consumer.c agree on. */
#ifndef PSYNE_IPC_COMMON_H
#define PSYNE_IPC_COMMON_H

#include "example.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum { IPC_TYPE_DATA = 1, IPC_TYPE_END = 2, IPC_TYPE_ACK = 3 };
enum { IPC_TIMEOUT_MS = 10000 }; /* a missing peer fails the example after 10 s */

static inline void ipc_uris(const char *name, char *data, char *ack, size_t cap)
{
    snprintf(data, cap, "ipc://%s", name);
    snprintf(ack, cap, "ipc://%s-ack", name);
}

/* ipc:// is its own issue; until it lands, say so plainly and exit 77 so a
 * test driver can tell "not built yet" from "broken". */
static inline void ipc_unsupported(const char *who, psyne_error_t err)
{
    fprintf(stderr, "%s: ipc:// is not supported by this libpsyne build yet (%s: %s)\n", who,
            psyne_error_string(err), psyne_last_error_message());
    exit(EXAMPLE_EXIT_UNSUPPORTED);
}

/* Message #seq: its sequence number, then a byte pattern. The first three are
 * exactly 1 KiB, 1 MiB and 10 MiB (written and read in place in shared memory);
 * the rest vary from 4 bytes to 1 KiB. */
static inline size_t ipc_message_size(uint32_t seq)
{
    static const size_t big[] = { 1024u, 1024u * 1024u, 10u * 1024u * 1024u };
    return seq < 3 ? big[seq] : sizeof seq + (seq * 7u) % 1024u;
}

/* Ring size: the largest message is half the ring minus 16 bytes, so 10 MiB
 * messages need a 32 MiB ring (sizes are powers of two). */
enum { IPC_RING_SIZE = 32 * 1024 * 1024 };

static inline void ipc_fill(void *buf, size_t size, uint32_t seq)
{
    unsigned char *p = buf;
    memcpy(p, &seq, sizeof seq);
    for (size_t i = sizeof seq; i < size; i++)
        p[i] = (unsigned char)(seq + i);
}

static inline bool ipc_check(const void *buf, size_t size, uint32_t seq)
{
    const unsigned char *p = buf;
    uint32_t got;
    if (size != ipc_message_size(seq))
        return false;
    memcpy(&got, p, sizeof got);
    if (got != seq)
        return false;
    for (size_t i = sizeof seq; i < size; i++)
        if (p[i] != (unsigned char)(seq + i))
            return false;
    return true;
}

#endif
