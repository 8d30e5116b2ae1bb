/* ipc:// producer: one of two processes sharing a ring in shared memory.
 *
 *   ipc_producer NAME [COUNT] &   ipc_consumer NAME      (either order)
 *
 * The producer creates ipc://NAME (the data ring) and ipc://NAME-ack, writes
 * COUNT messages straight into the shared ring (reservations: zero-copy), and
 * stays attached until the consumer acknowledges, so the segments are not
 * removed while messages are still queued.
 * Exit status: 0 ok, 1 failure, 77 this libpsyne build has no ipc:// yet. */
#include "example.h"

#include <inttypes.h>
#include <string.h>

#include "ipc_common.h"

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "psyne-example";
    uint32_t count = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000;
    char data_uri[256], ack_uri[256];
    ipc_uris(name, data_uri, ack_uri, sizeof data_uri);

    CHECK(psyne_init());
    psyne_channel_t *data = NULL, *ack = NULL;
    psyne_error_t err = psyne_channel_create(data_uri, IPC_RING_SIZE, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &data);
    if (err == PSYNE_ERROR_UNSUPPORTED)
        ipc_unsupported("ipc_producer", err); /* exits 77 */
    if (err != PSYNE_OK) {
        example_report(data_uri, err);
        return EXIT_FAILURE;
    }
    CHECK(psyne_channel_create(ack_uri, 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ack));

    for (uint32_t seq = 0; seq < count; seq++) {
        psyne_message_t *msg = NULL;
        size_t len = ipc_message_size(seq);
        /* Wait up to the deadline for room: the consumer may not be up yet. */
        err = psyne_message_reserve_timeout(data, len, IPC_TIMEOUT_MS, &msg);
        if (err != PSYNE_OK) {
            example_report("ipc_producer: psyne_message_reserve_timeout", err);
            return EXIT_FAILURE;
        }
        void *buf = NULL;
        size_t size = 0;
        CHECK(psyne_message_get_data(msg, &buf, &size));
        ipc_fill(buf, size, seq);
        CHECK(psyne_message_send(msg, IPC_TYPE_DATA));
    }
    CHECK(psyne_send_data_timeout(data, &count, sizeof count, IPC_TYPE_END, IPC_TIMEOUT_MS));
    printf("ipc_producer: sent %" PRIu32 " messages on %s\n", count, data_uri);

    uint32_t acked = 0, type = 0;
    size_t n = 0;
    err = psyne_receive_data(ack, &acked, sizeof acked, &n, &type, IPC_TIMEOUT_MS);
    if (err != PSYNE_OK) {
        example_report("ipc_producer: waiting for the consumer's ack", err);
        return EXIT_FAILURE;
    }
    printf("ipc_producer: consumer acknowledged %" PRIu32 " messages\n", acked);

    CHECK(psyne_channel_destroy(data));
    CHECK(psyne_channel_destroy(ack));
    psyne_cleanup();
    return acked == count ? 0 : EXIT_FAILURE;
}
