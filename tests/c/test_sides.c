/* Side handles (psyne_producer_t / psyne_consumer_t): zero-copy and copying
 * round trips through the embedded message, one message at a time, the side
 * held against channel-handle calls and second sides, misuse of their
 * messages, free with a message out, a side outliving its channel handle,
 * waits (timeout, cancel, stop), the fused send-and-reserve and
 * release-and-receive calls, a compressing channel, and MPMC threads with
 * one side handle each (exactly once, byte-exact). */
#include "check.h"

#include <pthread.h>

/* Takes both sides of ch. */
static void take_sides(psyne_channel_t *ch, psyne_producer_t **p, psyne_consumer_t **c)
{
    REQUIRE_OK(psyne_producer_new(ch, p));
    REQUIRE_OK(psyne_consumer_new(ch, c));
}

/* Frees both sides, then the channel handle. */
static void end_sides(psyne_channel_t *ch, psyne_producer_t *p, psyne_consumer_t *c)
{
    CHECK_OK(psyne_producer_free(p));
    CHECK_OK(psyne_consumer_free(c));
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_roundtrip_and_embedding(void)
{
    psyne_channel_t *ch = fresh_channel("side-rt", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);
    REQUIRE(p != NULL && c != NULL);

    psyne_message_t *first = NULL, *msg = NULL, *in = NULL;
    void *data = NULL;
    size_t size = 0;
    uint32_t type = 0;
    for (int i = 0; i < 100; i++) {
        void *direct = NULL;
        REQUIRE_OK(psyne_producer_reserve(p, 8, &msg, i % 2 ? &direct : NULL));
        if (i == 0)
            first = msg;
        /* The producer's own message handle, every time: nothing allocated. */
        CHECK(msg == first);
        CHECK_OK(psyne_message_get_data(msg, &data, &size));
        CHECK(size == 8);
        CHECK(i % 2 == 0 || direct == data); /* the bytes, without get_data */
        memcpy(data, &i, sizeof i);
        memcpy((char *)data + 4, "abcd", 4);
        CHECK_OK(psyne_message_send(msg, (uint32_t)i));

        const void *rdata = NULL, *rdirect = NULL;
        size_t rsize = 0;
        REQUIRE_OK(psyne_consumer_receive(c, &in, i % 2 ? &rdirect : NULL, i % 2 ? &rsize : NULL,
                                          &type));
        CHECK(type == (uint32_t)i);
        CHECK_OK(psyne_message_get_data(in, (void **)&rdata, &size));
        CHECK(i % 2 == 0 || (rdirect == rdata && rsize == size));
        int got = -1;
        memcpy(&got, rdata, sizeof got);
        CHECK(size == 8 && got == i && memcmp((const char *)rdata + 4, "abcd", 4) == 0);
        CHECK(rdata == data); /* zero copy: the very bytes reserved */
        CHECK_OK(psyne_message_release(in));
    }

    /* Copying calls on the same handles. */
    CHECK_OK(psyne_producer_send_data(p, "copy", 4, 9, 0, NULL));
    CHECK_OK(psyne_producer_send_data(p, NULL, 0, 10, 0, NULL)); /* empty */
    char buf[8];
    size_t n = 0;
    CHECK_OK(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 0, NULL));
    CHECK(n == 4 && type == 9 && memcmp(buf, "copy", 4) == 0);
    CHECK_OK(psyne_consumer_receive_data(c, NULL, 0, &n, &type, 0, NULL));
    CHECK(n == 0 && type == 10);
    CHECK_RC(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 0, NULL),
             PSYNE_ERROR_NO_MESSAGE);
    /* A failing poll's detail (made into text only when asked for); a
     * success leaves it; the next failure replaces it. */
    CHECK_DETAIL("psyne_consumer_receive_data: no message");
    CHECK_OK(psyne_producer_send_data(p, "x", 1, 1, 0, NULL));
    CHECK_DETAIL("psyne_consumer_receive_data: no message");
    CHECK_RC(psyne_consumer_receive_data(c, NULL, 0, &n, &type, 0, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("too small");
    CHECK_OK(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 0, NULL));
    CHECK_RC(psyne_consumer_receive(c, &in, NULL, NULL, &type), PSYNE_ERROR_NO_MESSAGE);
    CHECK(strcmp(psyne_last_error_message(), "psyne_consumer_receive: no message") == 0);

    /* A too-small buffer: the size needed, and the message stays queued. */
    CHECK_OK(psyne_producer_send_data(p, "0123456789", 10, 1, 0, NULL));
    n = 0;
    CHECK_RC(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 0, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(n == 10);
    char big[16];
    CHECK_OK(psyne_consumer_receive_data(c, big, sizeof big, &n, &type, 0, NULL));
    CHECK(n == 10 && memcmp(big, "0123456789", 10) == 0);

    end_sides(ch, p, c);
}

static void test_one_message_at_a_time(void)
{
    psyne_channel_t *ch = fresh_channel("side-one", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);
    psyne_message_t *msg = NULL, *second = (psyne_message_t *)&second, *in = NULL;
    uint32_t type = 0;
    size_t n = 0;
    char buf[8];

    REQUIRE_OK(psyne_producer_reserve(p, 4, &msg, NULL));
    CHECK_RC(psyne_producer_reserve(p, 4, &second, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("still holds its message");
    CHECK(second == NULL);
    CHECK_RC(psyne_producer_send_data(p, "x", 1, 1, 0, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    /* Its message is a reservation: not releasable. */
    CHECK_RC(psyne_message_release(msg), PSYNE_ERROR_INVALID_ARGUMENT);
    /* SINGLE-type rules and kept-on-refusal hold as for any reservation. */
    CHECK_OK(psyne_message_cancel(msg));
    /* A cancelled (or sent) message is dead. */
#ifndef PSYNE_TEST_ASAN
    CHECK_RC(psyne_message_send(msg, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("not a live");
#endif

    CHECK_OK(psyne_producer_send_data(p, "ab", 2, 3, 0, NULL));
    CHECK_OK(psyne_producer_send_data(p, "cd", 2, 4, 0, NULL));
    REQUIRE_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
    psyne_message_t *again = (psyne_message_t *)&again;
    CHECK_RC(psyne_consumer_receive(c, &again, NULL, NULL, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(again == NULL);
    CHECK_RC(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 0, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_message_send(in, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_message_cancel(in), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_release(in));
#ifndef PSYNE_TEST_ASAN
    CHECK_RC(psyne_message_release(in), PSYNE_ERROR_INVALID_ARGUMENT);
#endif
    REQUIRE_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
    CHECK(type == 4);
    CHECK_OK(psyne_message_release(in));

    end_sides(ch, p, c);
}

static void test_sides_are_exclusive_on_single_sides(void)
{
    psyne_channel_t *ch = fresh_channel("side-excl", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL, *p2 = (psyne_producer_t *)&p2;
    psyne_consumer_t *c = NULL, *c2 = (psyne_consumer_t *)&c2;
    psyne_message_t *msg = NULL;
    uint32_t type = 0;
    char buf[8];
    size_t n = 0;

    REQUIRE_OK(psyne_producer_new(ch, &p));
    CHECK_RC(psyne_producer_new(ch, &p2), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(p2 == NULL);
    CHECK_RC(psyne_send_data(ch, "x", 1, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_message_reserve(ch, 1, &msg), PSYNE_ERROR_INVALID_ARGUMENT);
    REQUIRE_OK(psyne_consumer_new(ch, &c));
    CHECK_RC(psyne_consumer_new(ch, &c2), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_INVALID_ARGUMENT);

    /* Freed sides are given back to the channel handle. */
    CHECK_OK(psyne_producer_free(p));
    CHECK_OK(psyne_consumer_free(c));
    CHECK_OK(psyne_send_data(ch, "y", 1, 2));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 1 && buf[0] == 'y' && type == 2);

    /* Multi sides: any number of side handles. */
    psyne_channel_t *m = fresh_channel("side-multi", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    psyne_producer_t *ps[3];
    psyne_consumer_t *cs[3];
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(psyne_producer_new(m, &ps[i]));
        REQUIRE_OK(psyne_consumer_new(m, &cs[i]));
    }
    CHECK_OK(psyne_send_data(m, "z", 1, 3));
    CHECK_OK(psyne_consumer_receive_data(cs[2], buf, sizeof buf, &n, &type, 0, NULL));
    CHECK(n == 1 && type == 3);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(psyne_producer_free(ps[i]));
        CHECK_OK(psyne_consumer_free(cs[i]));
    }
    CHECK_OK(psyne_channel_destroy(m));
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_bad_arguments(void)
{
    psyne_channel_t *ch = fresh_channel("side-bad", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_SINGLE);
    psyne_producer_t *p = (psyne_producer_t *)&p;
    psyne_consumer_t *c = (psyne_consumer_t *)&c;
    psyne_message_t *msg = (psyne_message_t *)&msg;
    uint32_t type = 0;
    size_t n = 0;

    CHECK_RC(psyne_producer_new(NULL, &p), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(p == NULL);
    CHECK_RC(psyne_producer_new(ch, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_new(NULL, &c), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK_RC(psyne_consumer_new(ch, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_producer_free(NULL));
    CHECK_OK(psyne_consumer_free(NULL));
    void *data = (void *)&data;
    const void *cdata = (const void *)&cdata;
    CHECK_RC(psyne_producer_reserve(NULL, 1, &msg, &data), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(msg == NULL && data == NULL);
    CHECK_RC(psyne_consumer_receive(NULL, &msg, &cdata, &n, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(msg == NULL && cdata == NULL);
    CHECK_RC(psyne_consumer_receive(NULL, &msg, NULL, NULL, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    /* A channel handle is not a side handle. */
    CHECK_RC(psyne_producer_reserve((psyne_producer_t *)(void *)ch, 1, &msg, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("psyne_producer_t");

    take_sides(ch, &p, &c);
    CHECK_RC(psyne_producer_reserve(p, 1, NULL, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_producer_send_data(p, NULL, 3, 0, 0, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_producer_reserve(p, 1u << 20, &msg, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_receive(c, &msg, NULL, NULL, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_receive_data(c, NULL, 4, &n, &type, 0, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_receive_data(c, NULL, 0, NULL, &type, 0, NULL),
             PSYNE_ERROR_INVALID_ARGUMENT);
    /* SINGLE channel: a typed send is refused and the reservation kept. */
    REQUIRE_OK(psyne_producer_reserve(p, 2, &msg, NULL));
    CHECK_RC(psyne_message_send(msg, 5), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_send(msg, 0));
    psyne_message_t *in = NULL;
    CHECK_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
    CHECK(type == 0);
    CHECK_OK(psyne_message_release(in));

    CHECK_OK(psyne_producer_free(p));
    CHECK_OK(psyne_consumer_free(c));
#ifndef PSYNE_TEST_ASAN
    CHECK_RC(psyne_producer_free(p), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_receive(c, &in, NULL, NULL, &type), PSYNE_ERROR_INVALID_ARGUMENT);
#endif
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_free_with_a_message_out(void)
{
    psyne_channel_t *ch = fresh_channel("side-free", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    psyne_message_t *msg = NULL, *in = NULL;
    uint32_t type = 0;
    char buf[8];
    size_t n = 0;

    /* A held reservation is cancelled by the free: nothing is delivered. */
    REQUIRE_OK(psyne_producer_new(ch, &p));
    REQUIRE_OK(psyne_producer_reserve(p, 4, &msg, NULL));
    CHECK_OK(psyne_producer_free(p));
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);

    /* A held received message is released by the free: the next is next. */
    CHECK_OK(psyne_send_data(ch, "one", 3, 1));
    CHECK_OK(psyne_send_data(ch, "two", 3, 2));
    REQUIRE_OK(psyne_consumer_new(ch, &c));
    REQUIRE_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
    CHECK(type == 1);
    CHECK_OK(psyne_consumer_free(c));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 3 && type == 2 && memcmp(buf, "two", 3) == 0);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_side_outlives_its_channel_handle(void)
{
    psyne_channel_t *ch = fresh_channel("side-outlive", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);
    CHECK_OK(psyne_channel_destroy(ch));

    psyne_message_t *msg = NULL, *in = NULL;
    void *data = NULL;
    size_t size = 0;
    uint32_t type = 0;
    REQUIRE_OK(psyne_producer_reserve(p, 5, &msg, NULL));
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    memcpy(data, "alive", 5);
    CHECK_OK(psyne_message_send(msg, 6));
    REQUIRE_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
    CHECK_OK(psyne_message_get_data(in, &data, &size));
    CHECK(size == 5 && type == 6 && memcmp(data, "alive", 5) == 0);
    CHECK_OK(psyne_consumer_free(c)); /* releases `in` */
    CHECK_OK(psyne_producer_free(p));
}

struct trigger {
    psyne_cancel_t *cancel;
    psyne_channel_t *stop;
};

static void *trigger_later(void *arg)
{
    struct trigger *t = arg;
    sleep_ms(100);
    if (t->cancel != NULL)
        psyne_cancel_trigger(t->cancel);
    if (t->stop != NULL)
        psyne_channel_stop(t->stop);
    return NULL;
}

static void test_waits(void)
{
    psyne_channel_t *ch = fresh_channel("side-wait", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    psyne_cancel_t *cancel = NULL;
    take_sides(ch, &p, &c);
    REQUIRE_OK(psyne_cancel_new(&cancel));
    psyne_message_t *msg = NULL;
    uint32_t type = 0;
    char buf[8];
    size_t n = 0;

    CHECK_RC(psyne_consumer_receive_cancellable(c, 50, NULL, &msg, NULL, NULL, &type), PSYNE_ERROR_TIMEOUT);
    CHECK_RC(psyne_consumer_receive_data(c, buf, sizeof buf, &n, &type, 50, NULL),
             PSYNE_ERROR_TIMEOUT);

    /* Fill the ring, then wait for room. */
    size_t max = 0;
    CHECK_OK(psyne_channel_get_max_message_size(ch, &max));
    while (psyne_producer_reserve(p, max, &msg, NULL) == PSYNE_OK)
        CHECK_OK(psyne_message_send(msg, 1));
    while (psyne_producer_send_data(p, buf, 8, 1, 0, NULL) == PSYNE_OK)
        ;
    CHECK_RC(psyne_producer_reserve(p, 8, &msg, NULL), PSYNE_ERROR_CHANNEL_FULL);
    CHECK_RC(psyne_producer_reserve_cancellable(p, max, 50, NULL, &msg, NULL), PSYNE_ERROR_TIMEOUT);
    CHECK_RC(psyne_producer_send_data(p, buf, 8, 1, 0, NULL), PSYNE_ERROR_CHANNEL_FULL);

    struct trigger t = {.cancel = cancel, .stop = NULL};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, trigger_later, &t) == 0);
    CHECK_RC(psyne_producer_reserve_cancellable(p, max, PSYNE_WAIT_FOREVER, cancel, &msg, NULL),
             PSYNE_ERROR_CANCELLED);
    pthread_join(th, NULL);
    CHECK_OK(psyne_cancel_reset(cancel));
    REQUIRE(pthread_create(&th, NULL, trigger_later, &t) == 0);
    CHECK_RC(psyne_producer_send_data(p, buf, 8, 1, PSYNE_WAIT_FOREVER, cancel),
             PSYNE_ERROR_CANCELLED);
    pthread_join(th, NULL);
    CHECK_OK(psyne_cancel_reset(cancel));

    /* Drain it; then a stop ends a receive wait once drained. */
    psyne_message_t *in = NULL;
    while (psyne_consumer_receive(c, &in, NULL, NULL, &type) == PSYNE_OK)
        CHECK_OK(psyne_message_release(in));
    REQUIRE(pthread_create(&th, NULL, trigger_later, &t) == 0);
    CHECK_RC(psyne_consumer_receive_cancellable(c, PSYNE_WAIT_FOREVER, cancel, &in, NULL, NULL, &type),
             PSYNE_ERROR_CANCELLED);
    pthread_join(th, NULL);
    t.cancel = NULL;
    t.stop = ch;
    REQUIRE(pthread_create(&th, NULL, trigger_later, &t) == 0);
    CHECK_RC(psyne_consumer_receive_cancellable(c, PSYNE_WAIT_FOREVER, NULL, &in, NULL, NULL, &type),
             PSYNE_ERROR_CHANNEL_STOPPED);
    pthread_join(th, NULL);
    CHECK_RC(psyne_producer_reserve(p, 1, &msg, NULL), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_RC(psyne_producer_send_data(p, "x", 1, 1, 0, NULL), PSYNE_ERROR_CHANNEL_STOPPED);

    CHECK_OK(psyne_cancel_free(cancel));
    end_sides(ch, p, c);
}

/* psyne_producer_send_and_reserve / psyne_consumer_release_and_receive:
 * a full ring's worth through the fused calls, in order and byte-exact;
 * what each leaves held after a failure; refused arguments and types that
 * keep the held message; a stop. */
static void test_fused_calls(void)
{
    psyne_channel_t *ch = fresh_channel("side-fused", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);

    /* Nothing held: the first call only reserves (its type is unused). */
    psyne_message_t *msg = NULL;
    void *out = NULL;
    REQUIRE_OK(psyne_producer_send_and_reserve(p, 99, 8, 0, NULL, &msg, &out));
    REQUIRE(msg != NULL && out != NULL);
    psyne_message_t *own = msg;
    int sent = 0;
    psyne_error_t rc;
    for (;;) {
        memcpy(out, &sent, sizeof sent);
        memcpy((char *)out + 4, "fuse", 4);
        rc = psyne_producer_send_and_reserve(p, (uint32_t)sent + 1, 8, 0, NULL, &msg, &out);
        sent++;
        if (rc != PSYNE_OK)
            break;
        CHECK(msg == own); /* the producer's one message, every time */
    }
    /* The ring filled: the frame was sent, the next reservation failed. */
    CHECK(rc == PSYNE_ERROR_CHANNEL_FULL);
    CHECK(msg == NULL && out == NULL);
    CHECK(sent > 10);
    /* Nothing is held any more: a plain reserve is refused for room, not
     * for a held message. */
    CHECK_RC(psyne_producer_reserve(p, 8, &msg, NULL), PSYNE_ERROR_CHANNEL_FULL);

    psyne_message_t *in = NULL;
    const void *data = NULL;
    size_t size = 0;
    uint32_t type = 0;
    int got_count = 0;
    while ((rc = psyne_consumer_release_and_receive(c, 0, NULL, &in, &data, &size, &type)) == PSYNE_OK) {
        int id = -1;
        memcpy(&id, data, sizeof id);
        CHECK(size == 8 && id == got_count && type == (uint32_t)got_count + 1);
        CHECK(memcmp((const char *)data + 4, "fuse", 4) == 0);
        got_count++;
    }
    CHECK(rc == PSYNE_ERROR_NO_MESSAGE);
    CHECK(in == NULL && data == NULL);
    CHECK(got_count == sent); /* every frame, once, in order */
    /* The last view was released: a plain receive is refused for want of a
     * message, not for a held one. */
    CHECK_RC(psyne_consumer_receive(c, &in, NULL, NULL, &type), PSYNE_ERROR_NO_MESSAGE);

    /* Refused arguments change nothing: the held message stays, and so
     * does the caller's pointer to it. */
    REQUIRE_OK(psyne_producer_reserve(p, 4, &msg, &out));
    memcpy(out, "kept", 4);
    psyne_message_t *held = msg;
    CHECK_RC(psyne_producer_send_and_reserve(p, 1, 4, 0, NULL, NULL, &out), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_producer_send_and_reserve(NULL, 1, 4, 0, NULL, &msg, &out), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_producer_send_and_reserve(p, 1, 4, 50, (psyne_cancel_t *)ch, &msg, &out),
             PSYNE_ERROR_INVALID_ARGUMENT); /* a foreign token */
    CHECK(msg == held);
    CHECK_RC(psyne_consumer_receive(c, &in, NULL, NULL, &type), PSYNE_ERROR_NO_MESSAGE); /* nothing sent */
    CHECK_OK(psyne_message_send(held, 7));
    REQUIRE_OK(psyne_consumer_release_and_receive(c, 0, NULL, &in, &data, &size, &type));
    psyne_message_t *view = in;
    CHECK(size == 4 && type == 7 && memcmp(data, "kept", 4) == 0);
    CHECK_RC(psyne_consumer_release_and_receive(c, 0, NULL, &in, &data, &size, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_consumer_release_and_receive(c, 0, NULL, NULL, &data, &size, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(in == view);
    CHECK_OK(psyne_message_get_data(view, (void **)&data, &size)); /* still held */
    CHECK(size == 4);
    /* A wait that ends without a message still released the view. */
    CHECK_RC(psyne_consumer_release_and_receive(c, 50, NULL, &in, &data, &size, &type), PSYNE_ERROR_TIMEOUT);
    CHECK(in == NULL);
    CHECK_RC(psyne_message_release(view), PSYNE_ERROR_INVALID_ARGUMENT); /* already released */

    /* A stop ends the held reservation; nothing is reserved after it. */
    REQUIRE_OK(psyne_producer_reserve(p, 4, &msg, &out));
    CHECK_OK(psyne_channel_stop(ch));
    CHECK_RC(psyne_producer_send_and_reserve(p, 1, 4, 0, NULL, &msg, &out), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK(msg == NULL && out == NULL);
    CHECK_RC(psyne_producer_reserve(p, 4, &msg, NULL), PSYNE_ERROR_CHANNEL_STOPPED);

    end_sides(ch, p, c);

    /* On a SINGLE channel a non-zero type is refused and the reservation
     * kept, with the caller's pointer to it. */
    ch = fresh_channel("side-fused-single", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_SINGLE);
    take_sides(ch, &p, &c);
    REQUIRE_OK(psyne_producer_reserve(p, 3, &msg, &out));
    memcpy(out, "one", 3);
    held = msg;
    CHECK_RC(psyne_producer_send_and_reserve(p, 5, 3, 0, NULL, &msg, &out), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(msg == held);
    CHECK_OK(psyne_producer_send_and_reserve(p, 0, 3, 0, NULL, &msg, &out));
    CHECK_OK(psyne_message_cancel(msg));
    REQUIRE_OK(psyne_consumer_release_and_receive(c, 0, NULL, &in, &data, &size, &type));
    CHECK(size == 3 && type == 0 && memcmp(data, "one", 3) == 0);
    CHECK_RC(psyne_consumer_release_and_receive(c, 0, NULL, &in, &data, &size, &type), PSYNE_ERROR_NO_MESSAGE);
    end_sides(ch, p, c);
}

/* A producer thread and a consumer thread streaming through the fused calls:
 * every frame exactly once, in order, byte-exact. */
#define FUSED_FRAMES 200000

static void *fused_producer(void *arg)
{
    psyne_producer_t *p = arg;
    psyne_message_t *msg = NULL;
    void *out = NULL;
    psyne_error_t rc;
    while ((rc = psyne_producer_reserve(p, 16, &msg, &out)) == PSYNE_ERROR_CHANNEL_FULL)
        ;
    if (rc != PSYNE_OK)
        return (void *)1;
    for (uint64_t i = 0; i < FUSED_FRAMES; i++) {
        uint64_t check = i * 0x9E3779B97F4A7C15u;
        memcpy(out, &i, 8);
        memcpy((char *)out + 8, &check, 8);
        uint32_t type = (uint32_t)(i & 0xffff);
        if (i + 1 == FUSED_FRAMES) {
            rc = psyne_message_send(msg, type);
            break;
        }
        rc = psyne_producer_send_and_reserve(p, type, 16, 0, NULL, &msg, &out);
        if (rc == PSYNE_ERROR_CHANNEL_FULL) /* sent; wait for room for the next */
            rc = psyne_producer_reserve_cancellable(p, 16, PSYNE_WAIT_FOREVER, NULL, &msg, &out);
        if (rc != PSYNE_OK)
            break;
    }
    return rc == PSYNE_OK ? NULL : (void *)1;
}

static void test_fused_calls_across_threads(void)
{
    psyne_channel_t *ch = fresh_channel("side-fused-mt", 1 << 14, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, fused_producer, p) == 0);
    psyne_message_t *in = NULL;
    const void *data = NULL;
    size_t size = 0;
    uint32_t type = 0;
    uint64_t wrong = 0, i;
    for (i = 0; i < FUSED_FRAMES; i++) {
        psyne_error_t rc = psyne_consumer_release_and_receive(c, 10000, NULL, &in, &data, &size, &type);
        if (rc != PSYNE_OK)
            break;
        uint64_t id, check;
        memcpy(&id, data, 8);
        memcpy(&check, (const char *)data + 8, 8);
        wrong += size != 16 || id != i || check != i * 0x9E3779B97F4A7C15u || type != (uint32_t)(i & 0xffff);
    }
    void *failed = NULL;
    pthread_join(th, &failed);
    CHECK(failed == NULL);
    CHECK(i == FUSED_FRAMES);
    CHECK(wrong == 0);
    CHECK_OK(psyne_message_release(in));
    CHECK_RC(psyne_consumer_receive(c, &in, NULL, NULL, &type), PSYNE_ERROR_NO_MESSAGE);
    end_sides(ch, p, c);
}

static void test_compressing_channel(void)
{
    psyne_compression_config_t cfg = {
        .type = PSYNE_COMPRESSION_LZ4, .level = 0, .min_size_threshold = 0, .enable_checksum = true};
    char uri[64];
    snprintf(uri, sizeof uri, "memory://side-lz4-%d", (int)getpid());
    psyne_channel_t *ch = NULL;
    REQUIRE_OK(psyne_channel_create_compressed(uri, 1 << 16, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI,
                                               &cfg, &ch));
    psyne_producer_t *p = NULL;
    psyne_consumer_t *c = NULL;
    take_sides(ch, &p, &c);
    char text[1000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 7);
    psyne_message_t *msg = NULL, *in = NULL;
    void *data = NULL;
    size_t size = 0;
    uint32_t type = 0;
    REQUIRE_OK(psyne_producer_reserve(p, sizeof text, &msg, NULL));
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    memcpy(data, text, sizeof text);
    CHECK_OK(psyne_message_send(msg, 2));
    CHECK_OK(psyne_producer_send_data(p, text, sizeof text, 3, 0, NULL));
    for (uint32_t want = 2; want <= 3; want++) {
        REQUIRE_OK(psyne_consumer_receive(c, &in, NULL, NULL, &type));
        CHECK_OK(psyne_message_get_data(in, &data, &size));
        CHECK(type == want && size == sizeof text && memcmp(data, text, sizeof text) == 0);
        CHECK_OK(psyne_message_release(in));
    }
    psyne_extended_metrics_t m;
    CHECK_OK(psyne_channel_get_extended_metrics(ch, &m));
    CHECK(m.messages_compressed == 2);
    end_sides(ch, p, c);
}

/* MPMC: every thread its own side handle; every message exactly once. */
enum { PRODUCERS = 2, CONSUMERS = 2, PER_PRODUCER = 20000 };

struct worker {
    psyne_channel_t *ch;
    int id;
    atomic_int *done;
    unsigned char *seen; /* PRODUCERS * PER_PRODUCER flags */
    int errors;
};

static void *produce(void *arg)
{
    struct worker *w = arg;
    psyne_producer_t *p = NULL;
    if (psyne_producer_new(w->ch, &p) != PSYNE_OK) {
        w->errors++;
        return NULL;
    }
    for (int i = 0; i < PER_PRODUCER; i++) {
        psyne_message_t *msg = NULL;
        void *data = NULL;
        size_t size = 8 + (size_t)(i % 64);
        if (psyne_producer_reserve_cancellable(p, size, PSYNE_WAIT_FOREVER, NULL, &msg, &data) !=
            PSYNE_OK) {
            w->errors++;
            break;
        }
        int id[2] = {w->id, i};
        memcpy(data, id, sizeof id);
        memset((char *)data + 8, (unsigned char)i, size - 8);
        if (psyne_message_send(msg, (uint32_t)w->id) != PSYNE_OK)
            w->errors++;
    }
    psyne_producer_free(p);
    return NULL;
}

static void *consume(void *arg)
{
    struct worker *w = arg;
    psyne_consumer_t *c = NULL;
    if (psyne_consumer_new(w->ch, &c) != PSYNE_OK) {
        w->errors++;
        return NULL;
    }
    for (;;) {
        psyne_message_t *in = NULL;
        uint32_t type = 0;
        const unsigned char *data = NULL;
        size_t size = 0;
        psyne_error_t rc = psyne_consumer_receive_cancellable(c, 50, NULL, &in,
                                                              (const void **)&data, &size, &type);
        if (rc == PSYNE_ERROR_TIMEOUT) {
            if (atomic_load(w->done) == PRODUCERS)
                break;
            continue;
        }
        if (rc != PSYNE_OK) {
            w->errors++;
            break;
        }
        int id[2];
        memcpy(id, data, sizeof id);
        int ok = size == 8 + (size_t)(id[1] % 64) && (uint32_t)id[0] == type && id[0] >= 0 &&
                 id[0] < PRODUCERS && id[1] >= 0 && id[1] < PER_PRODUCER;
        for (size_t k = 8; ok && k < size; k++)
            ok = data[k] == (unsigned char)id[1];
        if (!ok)
            w->errors++;
        else
            w->seen[id[0] * PER_PRODUCER + id[1]]++; /* each index has one writer: its message */
        psyne_message_release(in);
    }
    psyne_consumer_free(c);
    return NULL;
}

static void test_mpmc_threads_with_own_sides(void)
{
    psyne_channel_t *ch = fresh_channel("side-mpmc", 1 << 14, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    atomic_int done = 0;
    static unsigned char seen[PRODUCERS * PER_PRODUCER];
    memset(seen, 0, sizeof seen);
    struct worker ws[PRODUCERS + CONSUMERS];
    pthread_t th[PRODUCERS + CONSUMERS];
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
        ws[i] = (struct worker){.ch = ch, .id = i < PRODUCERS ? i : i - PRODUCERS, .done = &done,
                                .seen = seen};
        REQUIRE(pthread_create(&th[i], NULL, i < PRODUCERS ? produce : consume, &ws[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        atomic_fetch_add(&done, 1);
    }
    for (int i = PRODUCERS; i < PRODUCERS + CONSUMERS; i++)
        pthread_join(th[i], NULL);
    int errors = 0, wrong = 0;
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        errors += ws[i].errors;
    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        wrong += seen[i] != 1;
    CHECK(errors == 0);
    CHECK(wrong == 0); /* every message exactly once */
    CHECK_OK(psyne_channel_destroy(ch));
}

int main(void)
{
    REQUIRE_OK(psyne_init());
    test_roundtrip_and_embedding();
    test_one_message_at_a_time();
    test_sides_are_exclusive_on_single_sides();
    test_bad_arguments();
    test_free_with_a_message_out();
    test_side_outlives_its_channel_handle();
    test_waits();
    test_fused_calls();
    test_fused_calls_across_threads();
    test_compressing_channel();
    test_mpmc_threads_with_own_sides();
    return check_summary();
}
