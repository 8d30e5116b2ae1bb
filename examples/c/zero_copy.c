/* memory:// with reservations: the producer writes straight into the ring
 * (psyne_message_reserve / _get_data / _send) and the consumer reads the very
 * same bytes (psyne_message_receive / _get_data / _release). No copy at all. */
#include "example.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

int main(void)
{
    CHECK(psyne_init());

    psyne_channel_t *ch = NULL;
    CHECK(psyne_channel_create("memory://zero-copy-example", 64 * 1024, PSYNE_MODE_SPSC,
                               PSYNE_TYPE_MULTI, &ch));

    /* Producer: reserve 256 bytes inside the ring, fill them, commit. */
    psyne_message_t *out = NULL;
    CHECK(psyne_message_reserve(ch, 256, &out));
    void *wdata = NULL;
    size_t wsize = 0;
    CHECK(psyne_message_get_data(out, &wdata, &wsize));
    EXPECT(wsize == 256);
    int len = snprintf((char *)wdata, wsize, "written in place at %p", wdata);
    memset((char *)wdata + len, '.', wsize - (size_t)len);
    const uintptr_t written_at = (uintptr_t)wdata; /* wdata is invalid after send */
    CHECK(psyne_message_send(out, 7));             /* consumes `out` */

    /* A reservation can also be given back: nothing is queued then. */
    CHECK(psyne_message_reserve(ch, 64, &out));
    CHECK(psyne_message_cancel(out));

    /* Consumer: a read-only view of the bytes in the ring, until released. */
    psyne_message_t *in = NULL;
    uint32_t type = 0;
    CHECK(psyne_message_receive(ch, &in, &type)); /* never blocks */
    void *rdata = NULL;
    size_t rsize = 0;
    CHECK(psyne_message_get_data(in, &rdata, &rsize));
    printf("received type %" PRIu32 ", %zu bytes: \"%.40s...\"\n", type, rsize, (const char *)rdata);
    printf("same bytes the producer wrote: %s\n", (uintptr_t)rdata == written_at ? "yes" : "no");
    EXPECT(type == 7 && rsize == 256);
    EXPECT((uintptr_t)rdata == written_at);
    CHECK(psyne_message_release(in)); /* consumes `in`: the space is free again */

    /* The cancelled reservation left nothing behind. */
    psyne_error_t err = psyne_message_receive(ch, &in, &type);
    EXPECT(err == PSYNE_ERROR_NO_MESSAGE);

    /* A batch: reserve + send in a loop, then drain with receive_timeout. */
    for (uint32_t i = 0; i < 100; i++) {
        CHECK(psyne_message_reserve(ch, sizeof i, &out));
        CHECK(psyne_message_get_data(out, &wdata, &wsize));
        memcpy(wdata, &i, sizeof i);
        CHECK(psyne_message_send(out, 1));
    }
    for (uint32_t i = 0; i < 100; i++) {
        CHECK(psyne_message_receive_timeout(ch, 1000, &in, &type));
        CHECK(psyne_message_get_data(in, &rdata, &rsize));
        uint32_t v;
        EXPECT(rsize == sizeof v);
        memcpy(&v, rdata, sizeof v);
        EXPECT(v == i);
        CHECK(psyne_message_release(in));
    }
    printf("batch of 100 reserved messages received in order\n");

    CHECK(psyne_channel_destroy(ch));
    psyne_cleanup();
    return 0;
}
