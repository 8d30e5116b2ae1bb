/* memory:// with the copying calls psyne_send_data / psyne_receive_data.
 *
 * Every handle opened on the same memory:// name inside one process shares
 * one ring; here one handle is enough. */
#include "example.h"

#include <inttypes.h>
#include <string.h>

int main(void)
{
    CHECK(psyne_init());
    printf("libpsyne %s\n", psyne_version());

    psyne_channel_t *ch = NULL;
    CHECK(psyne_channel_create("memory://copy-example", 64 * 1024, PSYNE_MODE_SPSC,
                               PSYNE_TYPE_MULTI, &ch));

    char uri[64];
    CHECK(psyne_channel_get_uri(ch, uri, sizeof uri));
    size_t ring = 0;
    CHECK(psyne_channel_get_buffer_size(ch, &ring));
    printf("channel %s, ring of %zu bytes\n", uri, ring);

    /* An empty message is legal; the type travels with each message (MULTI). */
    const char *words[] = {"hello", "", "world", "bye"};
    const size_t count = sizeof words / sizeof words[0];
    for (size_t i = 0; i < count; i++)
        CHECK(psyne_send_data(ch, words[i], strlen(words[i]), (uint32_t)(100 + i)));

    for (size_t i = 0; i < count; i++) {
        char buf[64];
        size_t n = 0;
        uint32_t type = 0;
        CHECK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0 /* do not wait */));
        printf("received type %" PRIu32 ", %zu bytes: \"%.*s\"\n", type, n, (int)n, buf);
        EXPECT(type == 100 + i);
        EXPECT(n == strlen(words[i]) && memcmp(buf, words[i], n) == 0);
    }

    psyne_metrics_t m;
    CHECK(psyne_channel_get_metrics(ch, &m));
    printf("metrics: sent %" PRIu64 " msgs / %" PRIu64 " bytes, received %" PRIu64
           " msgs / %" PRIu64 " bytes\n",
           m.messages_sent, m.bytes_sent, m.messages_received, m.bytes_received);

    CHECK(psyne_channel_destroy(ch));
    psyne_cleanup();
    return 0;
}
