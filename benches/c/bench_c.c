/* The C face's side of the criterion benchmarks: the same SPSC stream and
 * ping-pong as throughput.rs / latency.rs, written as a C program writes
 * them against include/psyne.h, so that the C rows sit beside psyne's Rust
 * rows and the peers (rtrb, crossbeam) in the same run.
 *
 * Ways through the API (enum c_path):
 *   CHANNEL_COPY      psyne_send_data / psyne_receive_data on channel handles
 *   CHANNEL_ZEROCOPY  psyne_message_reserve / _receive on channel handles
 *                     (one allocated message handle per message)
 *   SIDE_ZEROCOPY     psyne_producer_reserve / psyne_consumer_receive
 *   SIDE_COPY         psyne_producer_send_data / psyne_consumer_receive_data
 *   SIDE_FUSED        psyne_producer_send_and_reserve /
 *                     psyne_consumer_release_and_receive: one call per
 *                     zero-copy message and side
 *
 * Every wait is a busy poll of the non-blocking call, as in the Rust rows:
 * with a pause between polls in the stream (as throughput.rs's loops call
 * std::hint::spin_loop), without one in the ping-pong (as latency.rs). */
#include <psyne.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum c_path { CHANNEL_COPY = 0, CHANNEL_ZEROCOPY = 1, SIDE_ZEROCOPY = 2, SIDE_COPY = 3, SIDE_FUSED = 4 };

#define MAX_SIZE 4096

static void must(psyne_error_t rc, const char *what)
{
    if (rc != PSYNE_OK) {
        fprintf(stderr, "bench_c: %s: %s (%s)\n", what, psyne_error_string(rc),
                psyne_last_error_message());
        abort();
    }
}

/* The spin-wait hint between two polls (PAUSE on x86), as
 * std::hint::spin_loop in the Rust rows. */
static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One end of a channel: the channel handle and, for the side paths, the
 * side handle used by this end's thread; for SIDE_FUSED the message the
 * side holds between calls (a reservation to fill, a view read) and a
 * reservation's bytes. */
struct end {
    int path;
    psyne_channel_t *ch;
    psyne_producer_t *tx;
    psyne_consumer_t *rx;
    psyne_message_t *held;
    void *out;
};

static psyne_channel_t *open_channel(const char *tag, size_t ring)
{
    static atomic_int seq;
    char uri[96];
    snprintf(uri, sizeof uri, "memory://cbench-%s-%d", tag, atomic_fetch_add(&seq, 1));
    psyne_channel_t *ch = NULL;
    must(psyne_channel_create(uri, ring, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch), "create");
    return ch;
}

/* Sends `size` bytes from `src`; false when the ring is full. */
static inline int try_send(struct end *e, const unsigned char *src, size_t size)
{
    psyne_message_t *m;
    void *data;
    size_t n;
    psyne_error_t rc;
    switch (e->path) {
    case CHANNEL_COPY:
        rc = psyne_send_data(e->ch, src, size, 1);
        break;
    case SIDE_COPY:
        rc = psyne_producer_send_data(e->tx, src, size, 1, 0, NULL);
        break;
    case SIDE_FUSED: /* fill the held reservation; send it and reserve the next */
        if (e->held == NULL) {
            rc = psyne_producer_send_and_reserve(e->tx, 1, size, 0, NULL, &e->held, &e->out);
            if (rc != PSYNE_OK)
                break;
        }
        memcpy(e->out, src, size);
        rc = psyne_producer_send_and_reserve(e->tx, 1, size, 0, NULL, &e->held, &e->out);
        if (rc == PSYNE_ERROR_CHANNEL_FULL)
            rc = PSYNE_OK; /* sent; the next reservation waits for room */
        break;
    case SIDE_ZEROCOPY: /* the bytes come with the reservation */
        rc = psyne_producer_reserve(e->tx, size, &m, &data);
        if (rc != PSYNE_OK)
            break;
        memcpy(data, src, size);
        rc = psyne_message_send(m, 1);
        break;
    default:
        rc = psyne_message_reserve(e->ch, size, &m);
        if (rc != PSYNE_OK)
            break;
        must(psyne_message_get_data(m, &data, &n), "get_data");
        memcpy(data, src, size);
        rc = psyne_message_send(m, 1);
        break;
    }
    if (rc == PSYNE_ERROR_CHANNEL_FULL)
        return 0;
    must(rc, "send");
    return 1;
}

/* Receives one message into `dst`; false when the ring is empty. */
static inline int try_receive(struct end *e, unsigned char *dst)
{
    psyne_message_t *m;
    const void *data;
    size_t n;
    uint32_t type;
    psyne_error_t rc;
    switch (e->path) {
    case CHANNEL_COPY:
        rc = psyne_receive_data(e->ch, dst, MAX_SIZE, &n, &type, 0);
        break;
    case SIDE_COPY:
        rc = psyne_consumer_receive_data(e->rx, dst, MAX_SIZE, &n, &type, 0, NULL);
        break;
    case SIDE_FUSED: /* release the view read last time; take the next */
        rc = psyne_consumer_release_and_receive(e->rx, 0, NULL, &e->held, &data, &n, &type);
        if (rc == PSYNE_OK)
            memcpy(dst, data, n);
        break;
    case SIDE_ZEROCOPY: /* the bytes come with the message */
        rc = psyne_consumer_receive(e->rx, &m, &data, &n, &type);
        if (rc != PSYNE_OK)
            break;
        memcpy(dst, data, n);
        rc = psyne_message_release(m);
        break;
    default:
        rc = psyne_message_receive(e->ch, &m, &type);
        if (rc != PSYNE_OK)
            break;
        must(psyne_message_get_data(m, (void **)&data, &n), "get_data");
        memcpy(dst, data, n);
        rc = psyne_message_release(m);
        break;
    }
    if (rc == PSYNE_ERROR_NO_MESSAGE)
        return 0;
    must(rc, "receive");
    return 1;
}

static void take_sides(struct end *e, int send, int receive)
{
    e->tx = NULL;
    e->rx = NULL;
    e->held = NULL;
    if (e->path == SIDE_ZEROCOPY || e->path == SIDE_COPY || e->path == SIDE_FUSED) {
        if (send)
            must(psyne_producer_new(e->ch, &e->tx), "producer_new");
        if (receive)
            must(psyne_consumer_new(e->ch, &e->rx), "consumer_new");
    }
}

/* Frees the side handles (which ends a held message). */
static void give_sides(struct end *e)
{
    must(psyne_producer_free(e->tx), "producer_free");
    must(psyne_consumer_free(e->rx), "consumer_free");
}

/* ---- stream: producer (caller) -> consumer thread ---------------------- */

struct stream {
    struct end rx;
    uint64_t iters;
    size_t size;
};

static void *stream_consumer(void *arg)
{
    struct stream *s = arg;
    unsigned char sink[MAX_SIZE];
    take_sides(&s->rx, 0, 1);
    for (uint64_t i = 0; i < s->iters; i++)
        while (!try_receive(&s->rx, sink))
            spin_pause();
    give_sides(&s->rx);
    return NULL;
}

/* Moves `iters` messages of `size` bytes through a fresh 1 MiB SPSC ring
 * from the calling thread to a consumer thread; returns the nanoseconds
 * from the first send to the consumer's last receive. */
uint64_t psyne_cbench_stream(int path, uint64_t iters, size_t size)
{
    if (size > MAX_SIZE)
        abort();
    psyne_channel_t *ch = open_channel("stream", 1 << 20);
    struct end tx = {.path = path, .ch = ch};
    struct stream s = {.rx = {.path = path, .ch = ch}, .iters = iters, .size = size};
    take_sides(&tx, 1, 0);
    unsigned char src[MAX_SIZE];
    memset(src, 7, sizeof src);
    pthread_t t;
    if (pthread_create(&t, NULL, stream_consumer, &s) != 0)
        abort();
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        while (!try_send(&tx, src, size))
            spin_pause();
    pthread_join(t, NULL);
    uint64_t elapsed = now_ns() - start;
    give_sides(&tx);
    must(psyne_channel_destroy(ch), "destroy");
    return elapsed;
}

/* ---- ping-pong: the caller sends on `ping`, an echo thread answers on
 * `pong` -------------------------------------------------------------------- */

struct pingpong {
    struct end caller_tx, caller_rx, echo_tx, echo_rx;
    atomic_int done;
    pthread_t echo;
};

static void *echo_main(void *arg)
{
    struct pingpong *p = arg;
    unsigned char buf[MAX_SIZE];
    take_sides(&p->echo_rx, 0, 1);
    take_sides(&p->echo_tx, 1, 0);
    while (!atomic_load_explicit(&p->done, memory_order_relaxed))
        if (try_receive(&p->echo_rx, buf))
            while (!try_send(&p->echo_tx, buf, 64))
                ;
    give_sides(&p->echo_rx);
    give_sides(&p->echo_tx);
    return NULL;
}

/* Starts an echo thread for 64-byte round trips on `path`. */
struct pingpong *psyne_cbench_pingpong_start(int path)
{
    struct pingpong *p = calloc(1, sizeof *p);
    if (p == NULL)
        abort();
    psyne_channel_t *ping = open_channel("ping", 1 << 16), *pong = open_channel("pong", 1 << 16);
    p->caller_tx = (struct end){.path = path, .ch = ping};
    p->echo_rx = (struct end){.path = path, .ch = ping};
    p->echo_tx = (struct end){.path = path, .ch = pong};
    p->caller_rx = (struct end){.path = path, .ch = pong};
    take_sides(&p->caller_tx, 1, 0);
    take_sides(&p->caller_rx, 0, 1);
    if (pthread_create(&p->echo, NULL, echo_main, p) != 0)
        abort();
    return p;
}

/* `iters` round trips; returns their total nanoseconds. */
uint64_t psyne_cbench_pingpong(struct pingpong *p, uint64_t iters)
{
    unsigned char msg[MAX_SIZE], buf[MAX_SIZE];
    memset(msg, 1, 64);
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < iters; i++) {
        while (!try_send(&p->caller_tx, msg, 64))
            ;
        while (!try_receive(&p->caller_rx, buf))
            ;
    }
    return now_ns() - start;
}

void psyne_cbench_pingpong_stop(struct pingpong *p)
{
    atomic_store(&p->done, 1);
    pthread_join(p->echo, NULL);
    give_sides(&p->caller_tx);
    give_sides(&p->caller_rx);
    must(psyne_channel_destroy(p->caller_tx.ch), "destroy");
    must(psyne_channel_destroy(p->caller_rx.ch), "destroy");
    free(p);
}
