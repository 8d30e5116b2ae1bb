/* ipc:// consumer: attaches to the rings ipc_producer creates (ring size 0 =
 * attach to an existing channel with its size), reads every message in place
 * (zero-copy view of the shared memory), checks it, and acknowledges.
 *
 *   ipc_consumer NAME
 *
 * Exit status: 0 ok, 1 failure, 77 this libpsyne build has no ipc:// yet. */
#include "example.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "ipc_common.h"

/* The producer may start later: retry attaching until the deadline. */
static psyne_channel_t *attach(const char *uri)
{
    psyne_channel_t *ch = NULL;
    for (int waited_ms = 0;; waited_ms += 20) {
        psyne_error_t err = psyne_channel_create(uri, 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch);
        if (err == PSYNE_OK)
            return ch;
        if (err == PSYNE_ERROR_UNSUPPORTED)
            ipc_unsupported("ipc_consumer", err); /* exits 77 */
        if (waited_ms >= IPC_TIMEOUT_MS) {
            example_report(uri, err);
            exit(EXIT_FAILURE);
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "psyne-example";
    char data_uri[256], ack_uri[256];
    ipc_uris(name, data_uri, ack_uri, sizeof data_uri);

    CHECK(psyne_init());
    psyne_channel_t *data = attach(data_uri);
    psyne_channel_t *ack = attach(ack_uri);

    uint32_t received = 0, announced = 0;
    for (;;) {
        psyne_message_t *msg = NULL;
        uint32_t type = 0;
        psyne_error_t err = psyne_message_receive_timeout(data, IPC_TIMEOUT_MS, &msg, &type);
        if (err != PSYNE_OK) {
            example_report("ipc_consumer: psyne_message_receive_timeout", err);
            return EXIT_FAILURE;
        }
        void *buf = NULL;
        size_t size = 0;
        CHECK(psyne_message_get_data(msg, &buf, &size));
        int ok;
        if (type == IPC_TYPE_END) {
            ok = size == sizeof announced;
            if (ok)
                memcpy(&announced, buf, sizeof announced);
        } else {
            ok = type == IPC_TYPE_DATA && ipc_check(buf, size, received);
            received++;
        }
        CHECK(psyne_message_release(msg));
        if (!ok) {
            fprintf(stderr, "ipc_consumer: message #%" PRIu32 " is corrupt\n", received);
            return EXIT_FAILURE;
        }
        if (type == IPC_TYPE_END)
            break;
    }
    printf("ipc_consumer: received %" PRIu32 " of %" PRIu32 " messages on %s\n", received,
           announced, data_uri);
    CHECK(psyne_send_data_timeout(ack, &received, sizeof received, IPC_TYPE_ACK, IPC_TIMEOUT_MS));

    CHECK(psyne_channel_destroy(data));
    CHECK(psyne_channel_destroy(ack));
    psyne_cleanup();
    return received == announced ? 0 : EXIT_FAILURE;
}
