/* Side handles: a thread that sends or receives in a loop takes its side of
 * the channel once (psyne_producer_new / psyne_consumer_new). Each message is
 * then two calls per side, with nothing allocated and no lock taken:
 *   producer: psyne_producer_reserve (hands out the bytes) + psyne_message_send
 *   consumer: psyne_consumer_receive (hands out the bytes) + psyne_message_release
 * Here a producer thread streams 100000 numbered 1 KiB frames to the main
 * thread, which checks every one. */
#include "example.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define FRAMES 100000u
#define FRAME_SIZE 1024u

static void *produce(void *arg)
{
    psyne_channel_t *ch = arg;
    psyne_producer_t *tx = NULL;
    CHECK(psyne_producer_new(ch, &tx)); /* the only sender while it lives */
    for (uint32_t i = 0; i < FRAMES; i++) {
        psyne_message_t *msg = NULL;
        void *frame = NULL;
        /* Wait up to 5 s for room (PSYNE_WAIT_FOREVER: no limit; 0: do not wait). */
        CHECK(psyne_producer_reserve_cancellable(tx, FRAME_SIZE, 5000, NULL, &msg, &frame));
        memset(frame, (int)(i & 0xff), FRAME_SIZE); /* written straight into the ring */
        memcpy(frame, &i, sizeof i);
        CHECK(psyne_message_send(msg, 1)); /* msg stays the producer's, for the next frame */
    }
    CHECK(psyne_producer_free(tx));
    return NULL;
}

int main(void)
{
    CHECK(psyne_init());
    psyne_channel_t *ch = NULL;
    CHECK(psyne_channel_create("memory://side-handles-example", 1 << 20, PSYNE_MODE_SPSC,
                               PSYNE_TYPE_MULTI, &ch));
    psyne_consumer_t *rx = NULL;
    CHECK(psyne_consumer_new(ch, &rx)); /* the only receiver while it lives */

    pthread_t producer;
    EXPECT(pthread_create(&producer, NULL, produce, ch) == 0);

    uint64_t bytes = 0;
    for (uint32_t i = 0; i < FRAMES; i++) {
        psyne_message_t *msg = NULL;
        const void *frame = NULL;
        size_t size = 0;
        uint32_t type = 0;
        CHECK(psyne_consumer_receive_cancellable(rx, 5000, NULL, &msg, &frame, &size, &type));
        uint32_t n;
        memcpy(&n, frame, sizeof n);
        EXPECT(n == i && size == FRAME_SIZE && type == 1);
        EXPECT(((const unsigned char *)frame)[FRAME_SIZE - 1] == (i & 0xff));
        bytes += size;
        CHECK(psyne_message_release(msg)); /* the frame's space is free again */
    }
    pthread_join(producer, NULL);
    printf("received %u frames (%llu bytes) in order through side handles\n", FRAMES,
           (unsigned long long)bytes);

    /* A channel handle cannot receive while the consumer holds the side. */
    char buf[8];
    size_t got = 0;
    uint32_t type = 0;
    EXPECT(psyne_receive_data(ch, buf, sizeof buf, &got, &type, 0) == PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(psyne_consumer_free(rx)); /* gives the side back */
    EXPECT(psyne_receive_data(ch, buf, sizeof buf, &got, &type, 0) == PSYNE_ERROR_NO_MESSAGE);

    CHECK(psyne_channel_destroy(ch));
    psyne_cleanup();
    return 0;
}
