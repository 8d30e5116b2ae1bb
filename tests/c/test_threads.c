/* Waiting and threads: timeouts, stop waking blocked callers, cancellation
 * tokens, blocking sends, the receive callback (dispatcher thread), and a
 * small MPMC stress run. Time bounds are generous lower bounds only. */
#include "check.h"

enum op { OP_RECV_DATA, OP_RECV_DATA_CANCEL, OP_MSG_RECV_TIMEOUT, OP_MSG_RECV_CANCEL,
          OP_SEND_DATA_TIMEOUT, OP_SEND_DATA_CANCEL, OP_RESERVE_TIMEOUT, OP_RESERVE_CANCEL };

struct waiter {
    enum op op;
    psyne_channel_t *ch;
    psyne_cancel_t *cancel;
    uint32_t timeout_ms;
    psyne_error_t rc;
    size_t n;
    uint32_t type;
    char buf[64];
    double elapsed_ms;
    atomic_int started;
    pthread_t thread;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    psyne_message_t *msg = NULL;
    atomic_store(&w->started, 1);
    double t0 = now_ms();
    switch (w->op) {
    case OP_RECV_DATA:
        w->rc = psyne_receive_data(w->ch, w->buf, sizeof w->buf, &w->n, &w->type, w->timeout_ms);
        break;
    case OP_RECV_DATA_CANCEL:
        w->rc = psyne_receive_data_cancellable(w->ch, w->buf, sizeof w->buf, &w->n, &w->type,
                                               w->timeout_ms, w->cancel);
        break;
    case OP_MSG_RECV_TIMEOUT:
        w->rc = psyne_message_receive_timeout(w->ch, w->timeout_ms, &msg, &w->type);
        break;
    case OP_MSG_RECV_CANCEL:
        w->rc = psyne_message_receive_cancellable(w->ch, w->timeout_ms, w->cancel, &msg, &w->type);
        break;
    case OP_SEND_DATA_TIMEOUT:
        w->rc = psyne_send_data_timeout(w->ch, "blocked", 7, 77, w->timeout_ms);
        break;
    case OP_SEND_DATA_CANCEL:
        w->rc = psyne_send_data_cancellable(w->ch, "blocked", 7, 77, w->timeout_ms, w->cancel);
        break;
    case OP_RESERVE_TIMEOUT:
        w->rc = psyne_message_reserve_timeout(w->ch, 7, w->timeout_ms, &msg);
        break;
    case OP_RESERVE_CANCEL:
        w->rc = psyne_message_reserve_cancellable(w->ch, 7, w->timeout_ms, w->cancel, &msg);
        break;
    }
    w->elapsed_ms = now_ms() - t0;
    if (msg != NULL) {
        void *data = NULL;
        size_t size = 0;
        if (psyne_message_get_data(msg, &data, &size) == PSYNE_OK && size <= sizeof w->buf) {
            w->n = size;
            if (w->op == OP_RESERVE_TIMEOUT || w->op == OP_RESERVE_CANCEL) {
                memcpy(data, "reservd", 7);
                psyne_message_send(msg, 78);
            } else {
                memcpy(w->buf, data, size);
                psyne_message_release(msg);
            }
        }
    }
    return NULL;
}

static void waiter_start(struct waiter *w, enum op op, psyne_channel_t *ch, uint32_t timeout_ms,
                         psyne_cancel_t *cancel)
{
    memset(w, 0, sizeof *w);
    w->op = op;
    w->ch = ch;
    w->timeout_ms = timeout_ms;
    w->cancel = cancel;
    w->rc = (psyne_error_t)12345;
    REQUIRE(pthread_create(&w->thread, NULL, waiter_main, w) == 0);
    while (!atomic_load(&w->started))
        sleep_ms(1);
    sleep_ms(150); /* let it go to sleep in the library */
}

static void waiter_join(struct waiter *w) { pthread_join(w->thread, NULL); }

static psyne_channel_t *full_channel(const char *tag, int mode)
{
    psyne_channel_t *ch = fresh_channel(tag, 256, mode, PSYNE_TYPE_MULTI);
    char payload[48] = {0};
    int sent = 0;
    while (psyne_send_data(ch, payload, sizeof payload, 1) == PSYNE_OK)
        sent++;
    REQUIRE(sent >= 1);
    /* Top up with the smallest records so that no message at all fits. */
    while (psyne_send_data(ch, payload, 1, 1) == PSYNE_OK)
        sent++;
    return ch;
}

static void test_timeouts(void)
{
    psyne_channel_t *ch = fresh_channel("timeouts", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    char buf[16];
    size_t n = 0;
    uint32_t type = 0;
    psyne_message_t *msg = (psyne_message_t *)&msg;

    double t0 = now_ms();
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 200), PSYNE_ERROR_TIMEOUT);
    double el = now_ms() - t0;
    CHECK(el >= 190 && el < 10000);

    t0 = now_ms();
    CHECK_RC(psyne_message_receive_timeout(ch, 150, &msg, &type), PSYNE_ERROR_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 140 && el < 10000);
    CHECK(msg == NULL);

    t0 = now_ms();
    CHECK_RC(psyne_receive_data_cancellable(ch, buf, sizeof buf, &n, &type, 100, NULL),
             PSYNE_ERROR_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 90 && el < 10000);

    /* 0 = do not wait. */
    t0 = now_ms();
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_NO_MESSAGE);
    CHECK_RC(psyne_message_receive_timeout(ch, 0, &msg, &type), PSYNE_ERROR_NO_MESSAGE);
    CHECK(now_ms() - t0 < 5000);
    CHECK_OK(psyne_channel_destroy(ch));

    /* Sending side: a full ring. */
    ch = full_channel("timeouts-full", PSYNE_MODE_SPSC);
    t0 = now_ms();
    CHECK_RC(psyne_send_data_timeout(ch, "x", 48, 1, 150), PSYNE_ERROR_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 140 && el < 10000);
    t0 = now_ms();
    CHECK_RC(psyne_message_reserve_timeout(ch, 48, 150, &msg), PSYNE_ERROR_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 140 && el < 10000);
    CHECK(msg == NULL);
    CHECK_RC(psyne_send_data_cancellable(ch, "x", 48, 1, 100, NULL), PSYNE_ERROR_TIMEOUT);
    CHECK_RC(psyne_message_reserve_cancellable(ch, 48, 100, NULL, &msg), PSYNE_ERROR_TIMEOUT);
    CHECK_RC(psyne_send_data_timeout(ch, "x", 48, 1, 0), PSYNE_ERROR_CHANNEL_FULL);
    CHECK_RC(psyne_message_reserve_timeout(ch, 48, 0, &msg), PSYNE_ERROR_CHANNEL_FULL);
    /* The failed waits gave the single sending side back. */
    char big[64];
    CHECK_OK(psyne_receive_data(ch, big, sizeof big, &n, &type, 0));
    CHECK_OK(psyne_send_data(ch, "y", 1, 1));
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_waiters_wake_on_data_and_room(void)
{
    struct waiter w;
    /* A receiver waiting without limit gets the message sent meanwhile. */
    psyne_channel_t *ch = fresh_channel("wake", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    waiter_start(&w, OP_RECV_DATA, ch, PSYNE_WAIT_FOREVER, NULL);
    CHECK_OK(psyne_send_data(ch, "wake up", 7, 21));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK && w.n == 7 && w.type == 21 && memcmp(w.buf, "wake up", 7) == 0);

    waiter_start(&w, OP_MSG_RECV_TIMEOUT, ch, 10000, NULL);
    CHECK_OK(psyne_send_data(ch, "zc", 2, 22));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK && w.n == 2 && w.type == 22 && memcmp(w.buf, "zc", 2) == 0);
    CHECK_OK(psyne_channel_destroy(ch));

    /* spin=0: blocking calls sleep at once, and are woken all the same. */
    char uri[64];
    snprintf(uri, sizeof uri, "memory://wake-nospin-%d?spin=0", (int)getpid());
    ch = NULL;
    REQUIRE_OK(psyne_channel_create(uri, 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch));
    waiter_start(&w, OP_RECV_DATA, ch, PSYNE_WAIT_FOREVER, NULL);
    CHECK_OK(psyne_send_data(ch, "asleep", 6, 23));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK && w.n == 6 && w.type == 23 && memcmp(w.buf, "asleep", 6) == 0);
    CHECK_OK(psyne_channel_destroy(ch));

    /* A sender waiting for room gets it when the receiver drains. */
    ch = full_channel("wake-room", PSYNE_MODE_MPSC);
    char buf[64];
    size_t n = 0;
    uint32_t type = 0;
    waiter_start(&w, OP_SEND_DATA_TIMEOUT, ch, PSYNE_WAIT_FOREVER, NULL);
    CHECK(w.rc == (psyne_error_t)12345); /* still blocked */
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK);
    waiter_start(&w, OP_RESERVE_TIMEOUT, ch, 10000, NULL);
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK);
    /* Drain: the blocked send and the reservation came last, in that order. */
    uint32_t last_types[2] = {0, 0};
    while (psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0) == PSYNE_OK) {
        last_types[0] = last_types[1];
        last_types[1] = type;
    }
    CHECK(last_types[0] == 77 && last_types[1] == 78);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_stop_wakes_blocked(void)
{
    struct waiter r1, r2, s1;
    psyne_channel_t *ch = fresh_channel("stopwake", 1024, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    waiter_start(&r1, OP_RECV_DATA, ch, PSYNE_WAIT_FOREVER, NULL);
    waiter_start(&r2, OP_MSG_RECV_TIMEOUT, ch, PSYNE_WAIT_FOREVER, NULL);
    CHECK(r1.rc == (psyne_error_t)12345 && r2.rc == (psyne_error_t)12345);
    double t0 = now_ms();
    CHECK_OK(psyne_channel_stop(ch));
    waiter_join(&r1);
    waiter_join(&r2);
    CHECK(now_ms() - t0 < 10000);
    CHECK(r1.rc == PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK(r2.rc == PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_OK(psyne_channel_destroy(ch));

    ch = full_channel("stopwake-send", PSYNE_MODE_SPSC);
    waiter_start(&s1, OP_SEND_DATA_TIMEOUT, ch, PSYNE_WAIT_FOREVER, NULL);
    CHECK(s1.rc == (psyne_error_t)12345);
    CHECK_OK(psyne_channel_stop(ch));
    waiter_join(&s1);
    CHECK(s1.rc == PSYNE_ERROR_CHANNEL_STOPPED);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_cancel(void)
{
    psyne_cancel_t *c = NULL;
    REQUIRE_OK(psyne_cancel_new(&c));
    REQUIRE(c != NULL);
    struct waiter w, w2;

    /* A receive waiting without limit is cancelled from another thread. */
    psyne_channel_t *ch = fresh_channel("cancel", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    waiter_start(&w, OP_RECV_DATA_CANCEL, ch, PSYNE_WAIT_FOREVER, c);
    CHECK(w.rc == (psyne_error_t)12345);
    CHECK_OK(psyne_cancel_trigger(c));
    waiter_join(&w);
    CHECK(w.rc == PSYNE_ERROR_CANCELLED);

    /* A triggered token stays triggered: later waits return at once. */
    psyne_message_t *msg = NULL;
    uint32_t type = 0;
    char buf0[8];
    size_t n0 = 0;
    double t0 = now_ms();
    CHECK_RC(psyne_message_receive_cancellable(ch, PSYNE_WAIT_FOREVER, c, &msg, &type),
             PSYNE_ERROR_CANCELLED);
    CHECK(now_ms() - t0 < 5000);
    CHECK_DETAIL("cancelled");
    CHECK_OK(psyne_cancel_trigger(c)); /* triggering twice is fine */
    /* timeout 0 does not wait and does not consult the token: not even
     * whether it is one (here the channel handle stands in for a foreign
     * pointer, refused once the call may wait). */
    CHECK_RC(psyne_message_receive_cancellable(ch, 0, c, &msg, &type), PSYNE_ERROR_NO_MESSAGE);
    psyne_cancel_t *foreign = (psyne_cancel_t *)ch;
    CHECK_RC(psyne_message_receive_cancellable(ch, 0, foreign, &msg, &type), PSYNE_ERROR_NO_MESSAGE);
    CHECK_RC(psyne_message_receive_cancellable(ch, 10, foreign, &msg, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_send_data_cancellable(ch, "f", 1, 7, 0, foreign));
    CHECK_RC(psyne_send_data_cancellable(ch, "f", 1, 7, 10, foreign), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_receive_data(ch, buf0, sizeof buf0, &n0, &type, 0));
    CHECK(n0 == 1 && type == 7);
    /* A queued message is delivered even with a triggered token. */
    CHECK_OK(psyne_send_data(ch, "q", 1, 5));
    char buf[8];
    size_t n = 0;
    CHECK_OK(psyne_receive_data_cancellable(ch, buf, sizeof buf, &n, &type, PSYNE_WAIT_FOREVER, c));
    CHECK(n == 1 && type == 5);

    /* Reset re-arms it: the wait runs into its timeout instead. */
    CHECK_OK(psyne_cancel_reset(c));
    CHECK_RC(psyne_message_receive_cancellable(ch, 100, c, &msg, &type), PSYNE_ERROR_TIMEOUT);
    waiter_start(&w, OP_MSG_RECV_CANCEL, ch, PSYNE_WAIT_FOREVER, c);
    CHECK_OK(psyne_send_data(ch, "data", 4, 6)); /* data wakes it, not the token */
    waiter_join(&w);
    CHECK(w.rc == PSYNE_OK && w.type == 6 && w.n == 4);
    CHECK_OK(psyne_channel_destroy(ch));

    /* Blocked senders and reservations on full channels; one trigger wakes both. */
    psyne_channel_t *f1 = full_channel("cancel-full1", PSYNE_MODE_SPSC);
    psyne_channel_t *f2 = full_channel("cancel-full2", PSYNE_MODE_MPMC);
    waiter_start(&w, OP_SEND_DATA_CANCEL, f1, PSYNE_WAIT_FOREVER, c);
    waiter_start(&w2, OP_RESERVE_CANCEL, f2, 60000, c);
    CHECK(w.rc == (psyne_error_t)12345 && w2.rc == (psyne_error_t)12345);
    CHECK_OK(psyne_cancel_trigger(c));
    waiter_join(&w);
    waiter_join(&w2);
    CHECK(w.rc == PSYNE_ERROR_CANCELLED);
    CHECK(w2.rc == PSYNE_ERROR_CANCELLED);
    /* Cancelled waits gave the single sending side back. */
    char b2[64];
    CHECK_OK(psyne_receive_data(f1, b2, sizeof b2, &n, &type, 0));
    CHECK_OK(psyne_send_data(f1, "ok", 2, 1));
    CHECK_OK(psyne_channel_destroy(f1));
    CHECK_OK(psyne_channel_destroy(f2));

    /* A token can be freed after the waits that used it are over. */
    CHECK_OK(psyne_cancel_free(c));
}

/* ---- receive callback ---------------------------------------------------- */

struct cb_state {
    pthread_t main_thread;
    psyne_channel_t *ch;
    atomic_int count;
    atomic_int on_other_thread;
    atomic_int data_ok;
    atomic_int refused;
    atomic_uint type_sum;
    atomic_int turn_off_inside;
    atomic_int turned_off_rc;
};

static void on_message(psyne_message_t *msg, uint32_t type, void *user)
{
    struct cb_state *s = user;
    void *data = NULL;
    size_t size = 0;
    if (psyne_message_get_data(msg, &data, &size) == PSYNE_OK && size == 4 &&
        memcmp(data, "ping", 4) == 0)
        atomic_fetch_add(&s->data_ok, 1);
    if (!pthread_equal(pthread_self(), s->main_thread))
        atomic_fetch_add(&s->on_other_thread, 1);
    /* The callback's message belongs to the dispatcher. */
    if (psyne_message_release(msg) == PSYNE_ERROR_INVALID_ARGUMENT &&
        psyne_message_send(msg, 0) == PSYNE_ERROR_INVALID_ARGUMENT &&
        psyne_message_cancel(msg) == PSYNE_ERROR_INVALID_ARGUMENT)
        atomic_fetch_add(&s->refused, 1);
    atomic_fetch_add(&s->type_sum, type);
    if (atomic_load(&s->turn_off_inside))
        atomic_store(&s->turned_off_rc, psyne_channel_set_receive_callback(s->ch, NULL, NULL));
    atomic_fetch_add(&s->count, 1);
}

static int wait_count(struct cb_state *s, int want)
{
    for (int i = 0; i < 10000 && atomic_load(&s->count) < want; i++)
        sleep_ms(1);
    return atomic_load(&s->count);
}

static void test_receive_callback(void)
{
    static struct cb_state s;
    memset(&s, 0, sizeof s);
    s.main_thread = pthread_self();
    psyne_channel_t *ch = fresh_channel("callback", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    s.ch = ch;

    /* Refused while a received message holds the single receiving side. */
    psyne_message_t *held = NULL;
    uint32_t type = 0;
    CHECK_OK(psyne_send_data(ch, "held", 4, 0));
    REQUIRE_OK(psyne_message_receive(ch, &held, &type));
    CHECK_RC(psyne_channel_set_receive_callback(ch, on_message, &s), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_message_release(held));

    CHECK_OK(psyne_channel_set_receive_callback(ch, on_message, &s));
    /* The dispatcher holds the receiving side of this SPSC channel. */
    char buf[16];
    size_t n = 0;
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    unsigned want_sum = 0;
    for (uint32_t i = 1; i <= 20; i++) {
        CHECK_OK(psyne_send_data_timeout(ch, "ping", 4, i, 5000));
        want_sum += i;
    }
    CHECK(wait_count(&s, 20) == 20);
    CHECK(atomic_load(&s.on_other_thread) == 20);
    CHECK(atomic_load(&s.data_ok) == 20);
    CHECK(atomic_load(&s.refused) == 20);
    CHECK(atomic_load(&s.type_sum) == want_sum);

    /* NULL turns it off: messages stay queued for ordinary receivers. */
    CHECK_OK(psyne_channel_set_receive_callback(ch, NULL, NULL));
    CHECK_OK(psyne_channel_set_receive_callback(ch, NULL, NULL)); /* already off */
    CHECK_OK(psyne_send_data(ch, "pong", 4, 99));
    sleep_ms(100);
    CHECK(atomic_load(&s.count) == 20);
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &type, 1000));
    CHECK(n == 4 && type == 99 && memcmp(buf, "pong", 4) == 0);

    /* Turning it off from inside the callback does not deadlock. */
    atomic_store(&s.turn_off_inside, 1);
    CHECK_OK(psyne_channel_set_receive_callback(ch, on_message, &s));
    CHECK_OK(psyne_send_data(ch, "ping", 4, 1));
    CHECK(wait_count(&s, 21) == 21);
    CHECK(atomic_load(&s.turned_off_rc) == PSYNE_OK);
    CHECK_OK(psyne_send_data(ch, "ping", 4, 2));
    sleep_ms(100);
    CHECK(atomic_load(&s.count) == 21);
    /* The dispatcher thread gives the receiving side back as it ends. */
    psyne_error_t rc = PSYNE_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < 5000 && rc == PSYNE_ERROR_INVALID_ARGUMENT; i++) {
        rc = psyne_receive_data(ch, buf, sizeof buf, &n, &type, 0);
        if (rc == PSYNE_ERROR_INVALID_ARGUMENT)
            sleep_ms(1);
    }
    CHECK(rc == PSYNE_OK && type == 2);

    /* Destroying a handle with a callback set stops its dispatcher. */
    atomic_store(&s.turn_off_inside, 0);
    CHECK_OK(psyne_channel_set_receive_callback(ch, on_message, &s));
    CHECK_OK(psyne_send_data(ch, "ping", 4, 3));
    CHECK(wait_count(&s, 22) == 22);
    CHECK_OK(psyne_channel_destroy(ch));
}

/* A callback may destroy its own handle (a one-shot receiver). */
struct one_shot {
    psyne_channel_t *ch;
    atomic_int calls;
    atomic_int destroy_rc;
};

static void destroy_self(psyne_message_t *msg, uint32_t type, void *user)
{
    struct one_shot *o = user;
    (void)msg;
    (void)type;
    if (atomic_fetch_add(&o->calls, 1) == 0)
        atomic_store(&o->destroy_rc, psyne_channel_destroy(o->ch));
}

static void test_callback_destroys_its_handle(void)
{
    static struct one_shot o;
    memset(&o, 0, sizeof o);
    atomic_store(&o.destroy_rc, 12345);
    psyne_channel_t *keep = fresh_channel("oneshot", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    char uri[128];
    REQUIRE_OK(psyne_channel_get_uri(keep, uri, sizeof uri));
    REQUIRE_OK(psyne_channel_create(uri, 0, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI, &o.ch));
    CHECK_OK(psyne_channel_set_receive_callback(o.ch, destroy_self, &o));
    CHECK_OK(psyne_send_data(keep, "one", 3, 1));
    for (int i = 0; i < 10000 && atomic_load(&o.destroy_rc) == 12345; i++)
        sleep_ms(1);
    CHECK(atomic_load(&o.destroy_rc) == PSYNE_OK);
    sleep_ms(50);
    /* The dispatcher is gone; the channel lives on through the other handle. */
    CHECK_OK(psyne_send_data(keep, "two", 3, 2));
    sleep_ms(100);
    CHECK(atomic_load(&o.calls) == 1);
    char buf[8];
    size_t n = 0;
    uint32_t type = 0;
    CHECK_OK(psyne_receive_data(keep, buf, sizeof buf, &n, &type, 1000));
    CHECK(n == 3 && type == 2);
    CHECK_OK(psyne_channel_destroy(keep));
}

/* Messages may change threads between their calls (the Go binding does). */
static void *send_reservation(void *arg)
{
    return (void *)(intptr_t)psyne_message_send((psyne_message_t *)arg, 31);
}

static void *release_message(void *arg)
{
    return (void *)(intptr_t)psyne_message_release((psyne_message_t *)arg);
}

static void test_messages_cross_threads(void)
{
    psyne_channel_t *ch = fresh_channel("xthread", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_message_t *msg = NULL;
    void *data = NULL, *ret = NULL;
    size_t size = 0;
    uint32_t type = 0;
    pthread_t t;

    REQUIRE_OK(psyne_message_reserve(ch, 5, &msg));
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    memcpy(data, "cross", 5);
    REQUIRE(pthread_create(&t, NULL, send_reservation, msg) == 0);
    pthread_join(t, &ret);
    CHECK((intptr_t)ret == PSYNE_OK);

    REQUIRE_OK(psyne_message_receive(ch, &msg, &type));
    CHECK(type == 31);
    CHECK_OK(psyne_message_get_data(msg, &data, &size));
    CHECK(size == 5 && memcmp(data, "cross", 5) == 0);
    REQUIRE(pthread_create(&t, NULL, release_message, msg) == 0);
    pthread_join(t, &ret);
    CHECK((intptr_t)ret == PSYNE_OK);
    /* The single receiving side was given back by the other thread. */
    CHECK_RC(psyne_message_receive(ch, &msg, &type), PSYNE_ERROR_NO_MESSAGE);
    CHECK_OK(psyne_channel_destroy(ch));
}

/* ---- MPMC stress ----------------------------------------------------------- */

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 3000

struct stress {
    psyne_channel_t *ch;
    int id;
    atomic_int *received;
    atomic_int *errors;
    uint32_t last_seq[PRODUCERS]; /* per consumer: last sequence seen from each producer */
};

static void *stress_producer(void *arg)
{
    struct stress *p = arg;
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        uint32_t payload[2] = {(uint32_t)p->id, seq};
        psyne_error_t rc;
        if (seq % 2 == 0) {
            rc = psyne_send_data_timeout(p->ch, payload, sizeof payload, (uint32_t)p->id, 10000);
        } else {
            psyne_message_t *msg = NULL;
            rc = psyne_message_reserve_timeout(p->ch, sizeof payload, 10000, &msg);
            if (rc == PSYNE_OK) {
                void *data = NULL;
                size_t size = 0;
                psyne_message_get_data(msg, &data, &size);
                memcpy(data, payload, sizeof payload);
                rc = psyne_message_send(msg, (uint32_t)p->id);
            }
        }
        if (rc != PSYNE_OK) {
            atomic_fetch_add(p->errors, 1);
            return NULL;
        }
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    struct stress *c = arg;
    for (int i = 0; i < PRODUCERS; i++)
        c->last_seq[i] = UINT32_MAX;
    for (;;) {
        uint32_t payload[2];
        size_t n = 0;
        uint32_t type = 0;
        psyne_error_t rc = psyne_receive_data(c->ch, payload, sizeof payload, &n, &type, 10000);
        if (rc == PSYNE_ERROR_CHANNEL_STOPPED)
            return NULL;
        if (rc != PSYNE_OK || n != sizeof payload || payload[0] >= PRODUCERS ||
            type != payload[0]) {
            atomic_fetch_add(c->errors, 1);
            return NULL;
        }
        /* FIFO per producer, as seen by each consumer. */
        uint32_t last = c->last_seq[payload[0]];
        if (last != UINT32_MAX && payload[1] <= last)
            atomic_fetch_add(c->errors, 1);
        c->last_seq[payload[0]] = payload[1];
        atomic_fetch_add(c->received, 1);
    }
}

static void test_mpmc_stress(void)
{
    psyne_channel_t *ch = fresh_channel("stress", 4096, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    atomic_int received = 0, errors = 0;
    struct stress prod[PRODUCERS], cons[CONSUMERS];
    pthread_t pt[PRODUCERS], ct[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i] = (struct stress){.ch = ch, .id = i, .received = &received, .errors = &errors};
        REQUIRE(pthread_create(&ct[i], NULL, stress_consumer, &cons[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        prod[i] = (struct stress){.ch = ch, .id = i, .received = &received, .errors = &errors};
        REQUIRE(pthread_create(&pt[i], NULL, stress_producer, &prod[i]) == 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < 20000 && atomic_load(&received) < PRODUCERS * PER_PRODUCER; i++)
        sleep_ms(1);
    CHECK_OK(psyne_channel_stop(ch));
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    CHECK(atomic_load(&errors) == 0);
    CHECK(atomic_load(&received) == PRODUCERS * PER_PRODUCER);
    psyne_metrics_t m;
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_sent == PRODUCERS * PER_PRODUCER);
    CHECK(m.messages_received == PRODUCERS * PER_PRODUCER);
    CHECK(m.bytes_received == PRODUCERS * PER_PRODUCER * 8);
    CHECK_OK(psyne_channel_destroy(ch));
}

int main(void)
{
    test_timeouts();
    test_waiters_wake_on_data_and_room();
    test_stop_wakes_blocked();
    test_cancel();
    test_receive_callback();
    test_callback_destroys_its_handle();
    test_messages_cross_threads();
    test_mpmc_stress();
    return check_summary();
}
