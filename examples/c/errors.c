/* Error handling: every call returns a psyne_error_t; psyne_error_string()
 * names the code and psyne_last_error_message() gives this thread's detail
 * text of the last failure. Shown for the common mistakes and conditions. */
#include "example.h"

#include <string.h>

/* Print what a failing call reports, and insist it is the expected code. */
static void expect_error(const char *what, psyne_error_t got, psyne_error_t want)
{
    printf("%-34s -> %s (%d): \"%s\"\n", what, psyne_error_string(got), (int)got,
           psyne_last_error_message());
    if (got != want) {
        fprintf(stderr, "  expected %s\n", psyne_error_string(want));
        exit(EXIT_FAILURE);
    }
}

int main(void)
{
    CHECK(psyne_init());
    psyne_channel_t *ch = NULL;

    /* 1. Bad URIs and arguments are refused, nothing is created. */
    expect_error("create(\"nonsense://x\")",
                 psyne_channel_create("nonsense://x", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
                 PSYNE_ERROR_INVALID_ARGUMENT);
    EXPECT(ch == NULL);
    expect_error("create(\"memory://x?bogus=1\")",
                 psyne_channel_create("memory://x?bogus=1", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
                 PSYNE_ERROR_INVALID_ARGUMENT);
    expect_error("create(mode 42)",
                 psyne_channel_create("memory://x", 4096, 42, PSYNE_TYPE_MULTI, &ch),
                 PSYNE_ERROR_INVALID_ARGUMENT);
    expect_error("create(out = NULL)",
                 psyne_channel_create("memory://x", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, NULL),
                 PSYNE_ERROR_INVALID_ARGUMENT);

    /* 2. A small ring fills up: non-blocking sends say CHANNEL_FULL. */
    CHECK(psyne_channel_create("memory://errors-example", 4096, PSYNE_MODE_SPSC,
                               PSYNE_TYPE_MULTI, &ch));
    char payload[256];
    memset(payload, 'x', sizeof payload);
    psyne_error_t err = PSYNE_OK;
    int sent = 0;
    while (sent < 1000 && (err = psyne_send_data(ch, payload, sizeof payload, 1)) == PSYNE_OK)
        sent++;
    printf("%d messages of %zu bytes fit in the 4096-byte ring\n", sent, sizeof payload);
    EXPECT(sent > 0);
    expect_error("send_data(full ring)", err, PSYNE_ERROR_CHANNEL_FULL);
    psyne_message_t *msg = NULL;
    expect_error("message_reserve(full ring)", psyne_message_reserve(ch, sizeof payload, &msg),
                 PSYNE_ERROR_CHANNEL_FULL);
    expect_error("send_data_timeout(full, 20 ms)",
                 psyne_send_data_timeout(ch, payload, sizeof payload, 1, 20), PSYNE_ERROR_TIMEOUT);

    /* 3. A receive buffer that is too small: the needed size is reported in
     *    *received and the message stays queued for a second try. */
    char small[10];
    size_t needed = 0;
    uint32_t type = 0;
    expect_error("receive_data(10-byte buffer)",
                 psyne_receive_data(ch, small, sizeof small, &needed, &type, 0),
                 PSYNE_ERROR_INVALID_ARGUMENT);
    printf("  needed size reported: %zu bytes\n", needed);
    EXPECT(needed == sizeof payload);
    char *big = malloc(needed);
    EXPECT(big != NULL);
    size_t got = 0;
    CHECK(psyne_receive_data(ch, big, needed, &got, &type, 0));
    EXPECT(got == needed && type == 1 && memcmp(big, payload, got) == 0);
    free(big);

    /* 4. A message larger than the whole ring can never fit. */
    char huge[8192] = {0};
    expect_error("send_data(8192 bytes > ring)", psyne_send_data(ch, huge, sizeof huge, 1),
                 PSYNE_ERROR_INVALID_ARGUMENT);

    /* 5. Empty ring: no wait -> NO_MESSAGE, a timeout -> TIMEOUT. */
    for (int i = 1; i < sent; i++)
        CHECK(psyne_receive_data(ch, payload, sizeof payload, &got, &type, 0));
    expect_error("receive_data(empty, timeout 0)",
                 psyne_receive_data(ch, payload, sizeof payload, &got, &type, 0),
                 PSYNE_ERROR_NO_MESSAGE);
    expect_error("receive_data(empty, timeout 20 ms)",
                 psyne_receive_data(ch, payload, sizeof payload, &got, &type, 20),
                 PSYNE_ERROR_TIMEOUT);

    /* 6. A stopped channel refuses sends; receivers drain, then see STOPPED. */
    CHECK(psyne_send_data(ch, "last", 4, 2));
    CHECK(psyne_channel_stop(ch));
    bool stopped = false;
    CHECK(psyne_channel_is_stopped(ch, &stopped));
    EXPECT(stopped);
    expect_error("send_data(stopped)", psyne_send_data(ch, "x", 1, 1), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK(psyne_receive_data(ch, payload, sizeof payload, &got, &type, 0));
    EXPECT(got == 4 && type == 2);
    expect_error("receive_data(stopped, drained)",
                 psyne_receive_data(ch, payload, sizeof payload, &got, &type, 0),
                 PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK(psyne_channel_destroy(ch));

    /* 7. Every code has a name. */
    const psyne_error_t codes[] = {
        PSYNE_OK, PSYNE_ERROR_INVALID_ARGUMENT, PSYNE_ERROR_OUT_OF_MEMORY,
        PSYNE_ERROR_CHANNEL_FULL, PSYNE_ERROR_NO_MESSAGE, PSYNE_ERROR_CHANNEL_STOPPED,
        PSYNE_ERROR_UNSUPPORTED, PSYNE_ERROR_IO, PSYNE_ERROR_TIMEOUT,
        PSYNE_ERROR_CANCELLED, PSYNE_ERROR_UNKNOWN,
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *name = psyne_error_string(codes[i]);
        EXPECT(name != NULL && name[0] != '\0');
        printf("  %4d %s\n", (int)codes[i], name);
    }

    psyne_cleanup();
    printf("all error cases behaved as documented\n");
    return 0;
}
