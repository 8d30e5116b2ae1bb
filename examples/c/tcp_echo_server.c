/* tcp:// (or ws://) echo server: listens, sends every message it receives
 * back to the peer it came from, and exits once it has echoed COUNT messages
 * and the client has disconnected (so that every echo was delivered).
 *
 *   tcp_echo_server [ADDRESS] [COUNT] [ws]     ADDRESS: PORT or HOST:PORT
 *
 * With "ws" it listens on ws://ADDRESS/echo instead: the same channel over
 * WebSocket, which browsers and any WebSocket client can reach too.
 * PORT alone listens on every interface (tcp://:PORT); HOST:PORT on that
 * host; port 0 lets the system choose. The first line printed is
 * "tcp_echo_server: listening on HOST:PORT" with the real port
 * (psyne_channel_get_local_address), for a client to connect to.
 * Defaults: 8080, 1000 messages. Exit status 0 ok, 1 failure. */
#include "example.h"

#include <inttypes.h>
#include <string.h>

#include "tcp_echo_common.h"

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "8080";
    uint32_t count = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000;
    const char *scheme = argc > 3 ? argv[3] : "tcp";
    const char *path = strcmp(scheme, "ws") == 0 ? "/echo" : "";
    char uri[512];
    if (strchr(address, ':') == NULL)
        snprintf(uri, sizeof uri, "%s://:%s%s", scheme, address, path); /* empty host: listens */
    else
        snprintf(uri, sizeof uri, "%s://%s%s?role=listen", scheme, address, path);

    CHECK(psyne_init());
    psyne_channel_t *ch = NULL;
    CHECK(psyne_channel_create(uri, ECHO_RING_SIZE, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch));

    char local[256];
    CHECK(psyne_channel_get_local_address(ch, local, sizeof local));
    printf("tcp_echo_server: listening on %s (%s)\n", local, uri);
    fflush(stdout);

    /* Receive into a buffer as large as the largest message, send it back. */
    size_t max = 0;
    CHECK(psyne_channel_get_max_message_size(ch, &max));
    unsigned char *buf = malloc(max);
    EXPECT(buf != NULL);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        size_t n = 0;
        uint32_t type = 0;
        psyne_error_t err = psyne_receive_data(ch, buf, max, &n, &type, ECHO_TIMEOUT_MS);
        if (err != PSYNE_OK) {
            example_report("tcp_echo_server: psyne_receive_data", err);
            return EXIT_FAILURE;
        }
        /* Waits for room when the client is slow to take its echoes. */
        err = psyne_send_data_timeout(ch, buf, n, type, ECHO_TIMEOUT_MS);
        if (err != PSYNE_OK) {
            example_report("tcp_echo_server: psyne_send_data_timeout", err);
            return EXIT_FAILURE;
        }
        bytes += n;
    }
    free(buf);

    /* Messages in flight when a connection ends may be lost (at-most-once):
     * stay until the client, which waits for every echo, has gone. */
    psyne_extended_metrics_t m;
    long long deadline = echo_now_ms() + ECHO_TIMEOUT_MS;
    for (;;) {
        CHECK(psyne_channel_get_extended_metrics(ch, &m));
        if (m.peers == 0)
            break;
        if (echo_now_ms() > deadline) {
            fprintf(stderr, "tcp_echo_server: the client is still connected after %d ms\n",
                    ECHO_TIMEOUT_MS);
            return EXIT_FAILURE;
        }
        echo_sleep_ms(5);
    }
    printf("tcp_echo_server: echoed %" PRIu32 " messages (%" PRIu64 " bytes); wire: %" PRIu64
           " bytes in, %" PRIu64 " out; %" PRIu64 " connection(s)\n",
           count, bytes, m.wire_bytes_received, m.wire_bytes_sent, m.connects);
    CHECK(psyne_channel_destroy(ch));
    psyne_cleanup();
    return 0;
}
