/* Two threads, one memory:// SPSC channel: a producer thread sends numbered
 * messages (waiting for room when the ring is full), the consumer thread
 * receives and checks the order. Usage: threads [message-count] */
#include "example.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

enum { TYPE_DATA = 1, TYPE_END = 2 };
static const uint32_t timeout_ms = 10000; /* a stuck peer fails the example */

struct job {
    psyne_channel_t *ch;
    uint64_t count;
    uint64_t received;
    uint64_t bytes;
    int failed;
};

static void *producer(void *arg)
{
    struct job *job = arg;
    unsigned char buf[128];
    for (uint64_t i = 0; i < job->count; i++) {
        size_t len = sizeof i + (size_t)(i % 64); /* sequence number + padding */
        memcpy(buf, &i, sizeof i);
        memset(buf + sizeof i, (int)(i & 0xff), len - sizeof i);
        psyne_error_t err = psyne_send_data_timeout(job->ch, buf, len, TYPE_DATA, timeout_ms);
        if (err != PSYNE_OK) {
            example_report("producer: psyne_send_data_timeout", err);
            job->failed = 1;
            return NULL;
        }
    }
    psyne_error_t err = psyne_send_data_timeout(job->ch, buf, 0, TYPE_END, timeout_ms);
    if (err != PSYNE_OK) {
        example_report("producer: end marker", err);
        job->failed = 1;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct job *job = arg;
    unsigned char buf[128];
    for (;;) {
        size_t n = 0;
        uint32_t type = 0;
        psyne_error_t err = psyne_receive_data(job->ch, buf, sizeof buf, &n, &type, timeout_ms);
        if (err != PSYNE_OK) {
            example_report("consumer: psyne_receive_data", err);
            job->failed = 1;
            return NULL;
        }
        if (type == TYPE_END)
            return NULL;
        uint64_t seq;
        memcpy(&seq, buf, sizeof seq);
        if (seq != job->received || n != sizeof seq + (size_t)(seq % 64)) {
            fprintf(stderr, "consumer: got #%" PRIu64 " (%zu bytes), expected #%" PRIu64 "\n",
                    seq, n, job->received);
            job->failed = 1;
            return NULL;
        }
        job->received++;
        job->bytes += n;
    }
}

int main(int argc, char **argv)
{
    struct job job = {.count = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000};
    CHECK(psyne_init());
    /* A small ring on purpose: the producer has to wait for the consumer. */
    CHECK(psyne_channel_create("memory://threads-example", 16 * 1024, PSYNE_MODE_SPSC,
                               PSYNE_TYPE_MULTI, &job.ch));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t p, c;
    EXPECT(pthread_create(&c, NULL, consumer, &job) == 0);
    EXPECT(pthread_create(&p, NULL, producer, &job) == 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    psyne_metrics_t m;
    CHECK(psyne_channel_get_metrics(job.ch, &m));
    CHECK(psyne_channel_destroy(job.ch));
    psyne_cleanup();

    EXPECT(!job.failed && job.received == job.count);
    printf("%" PRIu64 " messages (%" PRIu64 " bytes) in order in %.3f s (%.0f msg/s); "
           "producer waited %" PRIu64 " times for room\n",
           job.received, job.bytes, secs, secs > 0 ? (double)job.received / secs : 0.0,
           m.send_blocks);
    return 0;
}
