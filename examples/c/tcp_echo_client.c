/* tcp:// (or ws://) echo client: connects to tcp_echo_server, sends COUNT
 * numbered messages of varied sizes and types (up to 32 in flight), checks
 * that every echo comes back intact and in order, and prints a summary.
 *
 *   tcp_echo_client [ADDRESS] [COUNT] [ws]     ADDRESS: PORT or HOST:PORT
 *
 * With "ws" it connects to ws://ADDRESS/echo (a server started with "ws").
 * PORT alone connects to localhost:PORT. The client may start before the
 * server: psyne connects in the background, retrying, and the messages
 * wait in the ring meanwhile. Defaults: 8080, 1000 messages.
 * Exit status 0 ok, 1 failure. */
#include "example.h"

#include <inttypes.h>
#include <string.h>

#include "tcp_echo_common.h"

static unsigned char out[4096], in[4096];

static void send_one(psyne_channel_t *ch, uint32_t seq)
{
    size_t size = echo_message_size(seq);
    echo_fill(out, size, seq);
    /* Waits for room: before the server is up, messages queue in the ring. */
    psyne_error_t err = psyne_send_data_timeout(ch, out, size, echo_message_type(seq), ECHO_TIMEOUT_MS);
    if (err != PSYNE_OK) {
        example_report("tcp_echo_client: psyne_send_data_timeout", err);
        exit(EXIT_FAILURE);
    }
}

static void check_one(psyne_channel_t *ch, uint32_t seq)
{
    size_t n = 0;
    uint32_t type = 0;
    psyne_error_t err = psyne_receive_data(ch, in, sizeof in, &n, &type, ECHO_TIMEOUT_MS);
    if (err != PSYNE_OK) {
        example_report("tcp_echo_client: psyne_receive_data", err);
        exit(EXIT_FAILURE);
    }
    if (!echo_check(in, n, type, seq)) {
        fprintf(stderr, "tcp_echo_client: echo #%" PRIu32 " is wrong (%zu bytes, type %" PRIu32 ")\n",
                seq, n, type);
        exit(EXIT_FAILURE);
    }
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "8080";
    uint32_t count = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000;
    const char *scheme = argc > 3 ? argv[3] : "tcp";
    const char *path = strcmp(scheme, "ws") == 0 ? "/echo" : "";
    char uri[512];
    if (strchr(address, ':') == NULL)
        snprintf(uri, sizeof uri, "%s://localhost:%s%s", scheme, address, path);
    else
        snprintf(uri, sizeof uri, "%s://%s%s", scheme, address, path);

    CHECK(psyne_init());
    psyne_channel_t *ch = NULL;
    CHECK(psyne_channel_create(uri, ECHO_RING_SIZE, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch));

    uint64_t bytes = 0;
    for (uint32_t seq = 0; seq < count; seq++) {
        send_one(ch, seq);
        bytes += echo_message_size(seq);
        if (seq + 1 >= ECHO_WINDOW)
            check_one(ch, seq + 1 - ECHO_WINDOW);
    }
    for (uint32_t seq = count >= ECHO_WINDOW ? count - ECHO_WINDOW + 1 : 0; seq < count; seq++)
        check_one(ch, seq);

    psyne_extended_metrics_t m;
    CHECK(psyne_channel_get_extended_metrics(ch, &m));
    EXPECT(m.messages_sent == count && m.messages_received == count);
    EXPECT(m.bytes_sent == bytes && m.bytes_received == bytes);
    EXPECT(m.checksum_failures == 0 && m.frames_refused == 0);
    printf("tcp_echo_client: %" PRIu32 " messages (%" PRIu64 " bytes) echoed intact and in order by %s;"
           " wire: %" PRIu64 " bytes out, %" PRIu64 " in; %" PRIu64 " connection(s)\n",
           count, bytes, uri, m.wire_bytes_sent, m.wire_bytes_received, m.connects);
    CHECK(psyne_channel_destroy(ch));
    psyne_cleanup();
    return 0;
}
