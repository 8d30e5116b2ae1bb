/* Messages: zero-copy reserve/send/receive/release, the copying calls, message
 * kinds used wrongly, too-big messages, too-small receive buffers, CHANNEL_FULL
 * and an in-order drain, SINGLE channels, SPSC misuse refusal, stop. */
#include "check.h"

static void test_zero_copy_roundtrip(void)
{
    psyne_channel_t *ch = fresh_channel("zc", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_message_t *msg = (psyne_message_t *)&msg;
    void *data = NULL;
    size_t size = 0;

    REQUIRE_OK(psyne_message_reserve(ch, 11, &msg));
    REQUIRE(msg != NULL);
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    CHECK(data != NULL && size == 11);
    memcpy(data, "hello world", 11);
    CHECK_OK(psyne_message_send(msg, 42));

    psyne_message_t *in = NULL;
    uint32_t type = 0;
    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    REQUIRE(in != NULL);
    CHECK(type == 42);
    const void *rdata = NULL;
    CHECK_OK(psyne_message_get_data(in, (void **)&rdata, &size));
    CHECK(size == 11 && memcmp(rdata, "hello world", 11) == 0);
    /* Zero copy: the received view is the very bytes that were reserved. */
    CHECK(rdata == data);
    CHECK_OK(psyne_message_release(in));

    /* Empty messages are legal. */
    REQUIRE_OK(psyne_message_reserve(ch, 0, &msg));
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    CHECK(data != NULL && size == 0);
    CHECK_OK(psyne_message_send(msg, 7));
    CHECK_OK(psyne_send_data(ch, "", 0, 8));
    REQUIRE_OK(psyne_message_receive_timeout(ch, 1000, &in, &type));
    CHECK_OK(psyne_message_get_data(in, &data, &size));
    CHECK(size == 0 && type == 7);
    CHECK_OK(psyne_message_release(in));
    char buf[4];
    size_t n = 99;
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 0 && type == 8);

    /* Cancel gives the space back: nothing is delivered. */
    REQUIRE_OK(psyne_message_reserve(ch, 100, &msg));
    CHECK_OK(psyne_message_cancel(msg));
    in = (psyne_message_t *)&in;
    CHECK_RC(psyne_message_receive(ch, &in, &type), PSYNE_ERROR_NO_MESSAGE);
    CHECK(in == NULL);
    CHECK_RC(psyne_message_receive_timeout(ch, 0, &in, &type), PSYNE_ERROR_NO_MESSAGE);

    /* A received message outlives the channel handle it came from. */
    CHECK_OK(psyne_send_data(ch, "late", 4, 1));
    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    REQUIRE_OK(psyne_message_reserve(ch, 4, &msg)); /* and so does a reservation */
    CHECK_OK(psyne_channel_destroy(ch));
    CHECK_OK(psyne_message_get_data(in, &data, &size));
    CHECK(size == 4 && memcmp(data, "late", 4) == 0);
    CHECK_OK(psyne_message_release(in));
    CHECK_OK(psyne_message_send(msg, 2));
}

static void test_kinds_misused(void)
{
    psyne_channel_t *ch = fresh_channel("kinds", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    psyne_message_t *res = NULL, *in = NULL;
    uint32_t type = 0;
    void *data = NULL;
    size_t size = 0;

    REQUIRE_OK(psyne_message_reserve(ch, 3, &res));
    /* Releasing a reservation is refused and does not consume it. */
    CHECK_RC(psyne_message_release(res), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("reservation");
    CHECK_OK(psyne_message_get_data(res, &data, &size));
    memcpy(data, "abc", 3);
    CHECK_OK(psyne_message_send(res, 5));

    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    /* Sending or cancelling a received message is refused and does not consume it. */
    CHECK_RC(psyne_message_send(in, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("not a reservation");
    CHECK_RC(psyne_message_cancel(in), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_get_data(in, &data, &size));
    CHECK(size == 3 && memcmp(data, "abc", 3) == 0 && type == 5);
    CHECK_OK(psyne_message_release(in));
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_too_big(void)
{
    psyne_channel_t *ch = fresh_channel("big", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    size_t max = 0;
    REQUIRE_OK(psyne_channel_get_max_message_size(ch, &max));
    CHECK(max == 496);
    char *payload = calloc(1, max + 2);
    char *buf = calloc(1, max + 2);
    REQUIRE(payload != NULL && buf != NULL);
    psyne_message_t *msg = (psyne_message_t *)&msg;
    size_t n = 0;
    uint32_t type = 0;

    CHECK_RC(psyne_send_data(ch, payload, max + 1, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("497 bytes");
    CHECK_RC(psyne_send_data_timeout(ch, payload, max + 1, 1, 50), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_message_reserve(ch, max + 1, &msg), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(msg == NULL);
    CHECK_RC(psyne_message_reserve_timeout(ch, max + 1, 50, &msg), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_message_reserve(ch, SIZE_MAX, &msg), PSYNE_ERROR_INVALID_ARGUMENT);
    /* Nothing was queued, and the sending side was given back. */
    CHECK_RC(psyne_receive_data(ch, buf, max + 2, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);

    /* Exactly the maximum fits an empty ring at once. */
    memset(payload, 0x5a, max);
    CHECK_OK(psyne_send_data(ch, payload, max, 3));
    CHECK_OK(psyne_receive_data(ch, buf, max + 2, &n, &type, 0));
    CHECK(n == max && type == 3 && memcmp(buf, payload, max) == 0);
    REQUIRE_OK(psyne_message_reserve(ch, max, &msg));
    CHECK_OK(psyne_message_send(msg, 4));
    CHECK_OK(psyne_receive_data(ch, buf, max, &n, &type, 0));
    CHECK(n == max && type == 4);
    free(payload);
    free(buf);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_too_small_buffer(void)
{
    psyne_channel_t *ch = fresh_channel("small", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    char payload[100];
    for (int i = 0; i < 100; i++)
        payload[i] = (char)i;
    CHECK_OK(psyne_send_data(ch, payload, 100, 9));
    CHECK_OK(psyne_send_data(ch, "next", 4, 10));

    char buf[128];
    size_t n = 0;
    uint32_t type = 0;
    CHECK_RC(psyne_receive_data(ch, buf, 10, &n, &type, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(n == 100); /* the size needed */
    CHECK_DETAIL("100 bytes");
    n = 0;
    CHECK_RC(psyne_receive_data(ch, buf, 99, &n, &type, 1000), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(n == 100);
    /* The message stayed queued, in front: a big-enough buffer gets it. */
    CHECK_OK(psyne_receive_data(ch, buf, 100, &n, &type, 0));
    CHECK(n == 100 && type == 9 && memcmp(buf, payload, 100) == 0);
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 4 && type == 10 && memcmp(buf, "next", 4) == 0);
    /* A zero-capacity buffer works for empty messages. */
    CHECK_OK(psyne_send_data(ch, "", 0, 11));
    CHECK_OK(psyne_receive_data(ch, buf, 0, &n, &type, 0));
    CHECK(n == 0 && type == 11);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_full_then_drain_in_order(int mode)
{
    psyne_channel_t *ch = fresh_channel("full", 1024, mode, PSYNE_TYPE_MULTI);
    uint32_t seq = 0;
    char payload[40];
    psyne_error_t rc;
    for (;;) {
        memset(payload, 0, sizeof payload);
        memcpy(payload, &seq, sizeof seq);
        rc = psyne_send_data(ch, payload, sizeof payload, 1000 + seq);
        if (rc != PSYNE_OK)
            break;
        seq++;
    }
    CHECK(rc == PSYNE_ERROR_CHANNEL_FULL);
    CHECK(seq >= 10); /* 1024 bytes / (16 + 48) per record */
    /* Full is reported at once by the never-blocking calls, too. */
    psyne_message_t *msg = (psyne_message_t *)&msg;
    CHECK_RC(psyne_message_reserve(ch, sizeof payload, &msg), PSYNE_ERROR_CHANNEL_FULL);
    CHECK(msg == NULL);
    CHECK_RC(psyne_send_data_timeout(ch, payload, sizeof payload, 1, 0), PSYNE_ERROR_CHANNEL_FULL);

    char buf[64];
    size_t n = 0;
    uint32_t type = 0;
    for (uint32_t i = 0; i < seq; i++) {
        rc = psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0);
        CHECK(rc == PSYNE_OK);
        uint32_t got = UINT32_MAX;
        memcpy(&got, buf, sizeof got);
        CHECK(n == sizeof payload && got == i && type == 1000 + i);
        if (rc != PSYNE_OK)
            break;
    }
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);
    /* After the drain there is room again. */
    CHECK_OK(psyne_send_data(ch, payload, sizeof payload, 1));
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_single_type(void)
{
    psyne_channel_t *ch = fresh_channel("single", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_SINGLE);
    char buf[16];
    size_t n = 0;
    uint32_t type = 99;

    CHECK_RC(psyne_send_data(ch, "typed", 5, 5), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("SINGLE");
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);
    CHECK_OK(psyne_send_data(ch, "plain", 5, 0));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 5 && type == 0);

    /* A non-zero type on a reservation: refused, and the reservation is kept. */
    psyne_message_t *msg = NULL;
    void *data = NULL;
    size_t size = 0;
    REQUIRE_OK(psyne_message_reserve(ch, 3, &msg));
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    memcpy(data, "zc!", 3);
    CHECK_RC(psyne_message_send(msg, 7), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("SINGLE");
    CHECK_OK(psyne_message_get_data(msg, &data, &size)); /* still alive */
    CHECK(size == 3);
    CHECK_OK(psyne_message_send(msg, 0));
    type = 99;
    psyne_message_t *in = NULL;
    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    CHECK(type == 0);
    CHECK_OK(psyne_message_get_data(in, &data, &size));
    CHECK(size == 3 && memcmp(data, "zc!", 3) == 0);
    CHECK_OK(psyne_message_release(in));

    /* The refused reservation can also be cancelled. */
    REQUIRE_OK(psyne_message_reserve(ch, 3, &msg));
    CHECK_RC(psyne_message_send(msg, UINT32_MAX), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_cancel(msg));
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_spsc_misuse(void)
{
    psyne_channel_t *ch = fresh_channel("spsc", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_message_t *a = NULL, *b = (psyne_message_t *)&b, *in = NULL, *in2 = NULL;
    uint32_t type = 0;
    char buf[16];
    size_t n = 0;

    /* A held reservation is a send in progress on the single sending side. */
    REQUIRE_OK(psyne_message_reserve(ch, 4, &a));
    CHECK_RC(psyne_message_reserve(ch, 4, &b), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("one sender at a time");
    CHECK(b == NULL);
    CHECK_RC(psyne_send_data(ch, "x", 1, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_send(a, 1));
    CHECK_OK(psyne_message_reserve(ch, 4, &b)); /* free again */
    CHECK_OK(psyne_message_cancel(b));
    CHECK_OK(psyne_send_data(ch, "y", 1, 2));

    /* A held received message is a receive in progress on the single receiving side. */
    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    CHECK_RC(psyne_message_receive(ch, &in2, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("one receiver at a time");
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_release(in));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(n == 1 && buf[0] == 'y' && type == 2);
    CHECK_OK(psyne_channel_destroy(ch));

    /* MPMC: several reservations and received messages at once are fine. */
    ch = fresh_channel("mpmc", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    REQUIRE_OK(psyne_message_reserve(ch, 4, &a));
    REQUIRE_OK(psyne_message_reserve(ch, 4, &b));
    CHECK_OK(psyne_send_data(ch, "z", 1, 3));
    CHECK_OK(psyne_message_send(b, 2));
    CHECK_OK(psyne_message_send(a, 1));
    REQUIRE_OK(psyne_message_receive(ch, &in, &type));
    REQUIRE_OK(psyne_message_receive(ch, &in2, &type));
    CHECK_OK(psyne_message_release(in2));
    CHECK_OK(psyne_message_release(in));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_stop(void)
{
    psyne_channel_t *ch = fresh_channel("stop", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    bool stopped = true;
    CHECK_OK(psyne_channel_is_stopped(ch, &stopped));
    CHECK(!stopped);
    CHECK_OK(psyne_send_data(ch, "1", 1, 1));
    CHECK_OK(psyne_send_data(ch, "2", 1, 2));
    CHECK_OK(psyne_channel_stop(ch));
    CHECK_OK(psyne_channel_stop(ch)); /* idempotent */
    CHECK_OK(psyne_channel_is_stopped(ch, &stopped));
    CHECK(stopped);

    psyne_message_t *msg = NULL;
    CHECK_RC(psyne_send_data(ch, "3", 1, 3), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_RC(psyne_message_reserve(ch, 1, &msg), PSYNE_ERROR_CHANNEL_STOPPED);
    /* Receivers drain what is queued first. */
    char buf[8];
    size_t n = 0;
    uint32_t type = 0;
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    CHECK(type == 1);
    CHECK_OK(psyne_message_receive(ch, &msg, &type));
    CHECK(type == 2);
    CHECK_OK(psyne_message_release(msg));
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, PSYNE_WAIT_FOREVER),
             PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_RC(psyne_message_receive_timeout(ch, 1000, &msg, &type), PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_OK(psyne_channel_destroy(ch));
}

int main(void)
{
    test_zero_copy_roundtrip();
    test_kinds_misused();
    test_too_big();
    test_too_small_buffer();
    test_full_then_drain_in_order(PSYNE_MODE_SPSC);
    test_full_then_drain_in_order(PSYNE_MODE_MPMC);
    test_single_type();
    test_spsc_misuse();
    test_stop();
    return check_summary();
}
