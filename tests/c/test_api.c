/* Library functions, channel creation and management, argument checking:
 * version/error strings/last error, bad URIs and enums, compression configs
 * and compressed round trips,
 * NULL on every pointer argument, get_uri/buffer size/max size, memory://
 * attach, ipc/tcp, metrics. */
#include "check.h"

static void test_library(void)
{
    CHECK_OK(psyne_init());
    CHECK_OK(psyne_init()); /* idempotent */
    psyne_cleanup();
    psyne_cleanup();
    CHECK_OK(psyne_init());

    CHECK(psyne_version() != NULL);
    CHECK(strcmp(psyne_version(), "0.1.0") == 0);

    static const struct {
        int code;
        const char *name;
    } names[] = {
        {PSYNE_OK, "ok"},
        {PSYNE_ERROR_INVALID_ARGUMENT, "invalid argument"},
        {PSYNE_ERROR_OUT_OF_MEMORY, "out of memory"},
        {PSYNE_ERROR_CHANNEL_FULL, "channel full"},
        {PSYNE_ERROR_NO_MESSAGE, "no message"},
        {PSYNE_ERROR_CHANNEL_STOPPED, "channel stopped"},
        {PSYNE_ERROR_UNSUPPORTED, "unsupported"},
        {PSYNE_ERROR_IO, "I/O error"},
        {PSYNE_ERROR_TIMEOUT, "timeout"},
        {PSYNE_ERROR_CANCELLED, "cancelled"},
        {PSYNE_ERROR_UNKNOWN, "unknown error"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *s = psyne_error_string(names[i].code);
        CHECK(s != NULL && strcmp(s, names[i].name) == 0);
    }
    CHECK(strcmp(psyne_error_string(12345), "unknown error code") == 0);
    CHECK(strcmp(psyne_error_string(-10), "unknown error code") == 0);
    CHECK(strcmp(psyne_error_string(1), "unknown error code") == 0);

    /* The fixed numeric values (SPEC section 7). */
    CHECK(PSYNE_OK == 0 && PSYNE_ERROR_INVALID_ARGUMENT == -1 && PSYNE_ERROR_OUT_OF_MEMORY == -2);
    CHECK(PSYNE_ERROR_CHANNEL_FULL == -3 && PSYNE_ERROR_NO_MESSAGE == -4);
    CHECK(PSYNE_ERROR_CHANNEL_STOPPED == -5 && PSYNE_ERROR_UNSUPPORTED == -6);
    CHECK(PSYNE_ERROR_IO == -7 && PSYNE_ERROR_TIMEOUT == -8 && PSYNE_ERROR_CANCELLED == -9);
    CHECK(PSYNE_ERROR_UNKNOWN == -99);
    CHECK(PSYNE_MODE_SPSC == 0 && PSYNE_MODE_SPMC == 1 && PSYNE_MODE_MPSC == 2 && PSYNE_MODE_MPMC == 3);
    CHECK(PSYNE_TYPE_SINGLE == 0 && PSYNE_TYPE_MULTI == 1);
    CHECK(PSYNE_COMPRESSION_NONE == 0 && PSYNE_COMPRESSION_LZ4 == 1);
    CHECK(PSYNE_COMPRESSION_ZSTD == 2 && PSYNE_COMPRESSION_SNAPPY == 3);
    CHECK(PSYNE_WAIT_FOREVER == UINT32_MAX);
    CHECK(sizeof(psyne_metrics_t) == 6 * sizeof(uint64_t));

    /* Last error message: never NULL; set by failures; kept by successes. */
    CHECK(psyne_last_error_message() != NULL);
    CHECK_RC(psyne_channel_stop(NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("psyne_channel_stop");
    CHECK_DETAIL("ch is NULL");
    CHECK_OK(psyne_init());
    CHECK_DETAIL("ch is NULL");
}

/* A failure on another thread does not touch this thread's message. */
static void *other_thread_error(void *arg)
{
    (void)arg;
    psyne_channel_get_buffer_size(NULL, NULL);
    const char *m = psyne_last_error_message();
    return (void *)(strstr(m, "psyne_channel_get_buffer_size") != NULL ? (void *)1 : NULL);
}

static void test_last_error_is_thread_local(void)
{
    CHECK_RC(psyne_channel_reset_metrics(NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    pthread_t t;
    void *ok = NULL;
    REQUIRE(pthread_create(&t, NULL, other_thread_error, NULL) == 0);
    pthread_join(t, &ok);
    CHECK(ok != NULL);
    CHECK_DETAIL("psyne_channel_reset_metrics");
}

static void test_bad_uris_and_enums(void)
{
    psyne_channel_t *ch = (psyne_channel_t *)&ch; /* must be set to NULL on failure */

    CHECK_RC(psyne_channel_create("no-scheme-here", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(ch == NULL);
    CHECK(strlen(psyne_last_error_message()) > 0);
    CHECK_RC(psyne_channel_create("bogus://x", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("bogus");
    CHECK_RC(psyne_channel_create("memory://opt?frobnicate=1", 1024, PSYNE_MODE_SPSC,
                                  PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("frobnicate");
    CHECK_RC(psyne_channel_create("memory://opt?spin=soon", 1024, PSYNE_MODE_SPSC,
                                  PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("spin=soon");
    CHECK_RC(psyne_channel_create("memory://opt?spin=2000000", 1024, PSYNE_MODE_SPSC,
                                  PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("0 to 1000000");
    CHECK_RC(psyne_channel_create("", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(ch == NULL);

    CHECK_RC(psyne_channel_create("memory://bad-\xff-utf8", 1024, PSYNE_MODE_SPSC,
                                  PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("UTF-8");
    CHECK_RC(psyne_channel_create("memory://huge", SIZE_MAX, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(ch == NULL);

    /* Bad enum values are range-checked. */
    CHECK_RC(psyne_channel_create("memory://enum", 1024, 4, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("mode 4");
    CHECK_RC(psyne_channel_create("memory://enum", 1024, -1, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("mode -1");
    CHECK_RC(psyne_channel_create("memory://enum", 1024, INT32_MAX, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_channel_create("memory://enum", 1024, PSYNE_MODE_SPSC, 2, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("type 2");
    CHECK_RC(psyne_channel_create("memory://enum", 1024, PSYNE_MODE_SPSC, -1, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(ch == NULL);

    /* Compression configs. */
    psyne_compression_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.type = 9;
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("compression type 9");
    cfg.type = -1;
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    /* Mode is checked in create_compressed too. */
    cfg.type = PSYNE_COMPRESSION_NONE;
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, 7, PSYNE_TYPE_MULTI, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, PSYNE_MODE_SPSC, 5, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    /* Out-of-range level. */
    cfg.level = 23;
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("level 23");
    CHECK(ch == NULL);
    /* Every algorithm, with and without checksums: a handle opened with no
     * compression settings reads what a compressing handle sent, through
     * copies and zero-copy views; reservations hand out the size asked for. */
    int algos[] = {PSYNE_COMPRESSION_NONE, PSYNE_COMPRESSION_LZ4, PSYNE_COMPRESSION_ZSTD,
                   PSYNE_COMPRESSION_SNAPPY};
    static char text[8192], got[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "compressible text, "[i % 19];
    for (size_t i = 0; i < 4; i++) {
        for (int sum = 0; sum < 2; sum++) {
            char name[64];
            snprintf(name, sizeof name, "memory://cz-%d-%d", algos[i], sum);
            memset(&cfg, 0, sizeof cfg);
            cfg.type = algos[i];
            cfg.level = algos[i] == PSYNE_COMPRESSION_ZSTD ? 9 : 0;
            cfg.min_size_threshold = 512;
            cfg.enable_checksum = sum;
            psyne_channel_t *tx = NULL, *rx = NULL;
            CHECK_OK(psyne_channel_create_compressed(name, 1 << 16, PSYNE_MODE_SPSC,
                                                     PSYNE_TYPE_MULTI, &cfg, &tx));
            CHECK_OK(psyne_channel_create(name, 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &rx));
            CHECK_OK(psyne_send_data(tx, text, sizeof text, 5));
            CHECK_OK(psyne_send_data(tx, "tiny", 4, 6));
            psyne_message_t *m = NULL;
            void *data = NULL;
            size_t size = 0, n = 0;
            uint32_t t = 0;
            CHECK_OK(psyne_message_reserve(tx, sizeof text, &m));
            CHECK_OK(psyne_message_get_data(m, &data, &size));
            CHECK(size == sizeof text);
            memcpy(data, text, size);
            CHECK_OK(psyne_message_send(m, 7));
            CHECK_OK(psyne_receive_data(rx, got, sizeof got, &n, &t, 1000));
            CHECK(n == sizeof text && t == 5 && memcmp(got, text, n) == 0);
            CHECK_OK(psyne_receive_data(rx, got, sizeof got, &n, &t, 1000));
            CHECK(n == 4 && t == 6 && memcmp(got, "tiny", 4) == 0);
            CHECK_OK(psyne_message_receive_timeout(rx, 1000, &m, &t));
            CHECK_OK(psyne_message_get_data(m, &data, &size));
            CHECK(size == sizeof text && t == 7 && memcmp(data, text, size) == 0);
            CHECK_OK(psyne_message_release(m));
            psyne_extended_metrics_t em;
            CHECK_OK(psyne_channel_get_extended_metrics(tx, &em));
            CHECK(em.messages_compressed == (algos[i] == PSYNE_COMPRESSION_NONE ? 0u : 2u));
            CHECK(em.bytes_sent == 2 * sizeof text + 4 && em.messages_received == 3);
            if (algos[i] != PSYNE_COMPRESSION_NONE)
                CHECK(em.wire_bytes_sent < em.bytes_sent / 4);
            CHECK(em.checksum_failures == 0 && em.frames_refused == 0);
            CHECK_OK(psyne_channel_destroy(rx));
            CHECK_OK(psyne_channel_destroy(tx));
        }
    }
    /* The struct is read field by field as plain bytes: a bool byte holding
     * 0xff counts as true (not undefined behaviour), any int32 type is checked. */
    memset(&cfg, 0, sizeof cfg);
    memset(&cfg.enable_checksum, 0xff, 1);
    CHECK_OK(psyne_channel_create_compressed("memory://cz-byte", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch));
    CHECK_OK(psyne_channel_destroy(ch));
    cfg.enable_checksum = false;
    cfg.type = INT32_MIN;
    CHECK_RC(psyne_channel_create_compressed("memory://cz", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    cfg.type = PSYNE_COMPRESSION_NONE;
    /* NONE without checksum works, and so does a NULL config. */
    cfg.enable_checksum = false;
    cfg.level = 3;
    cfg.min_size_threshold = 128;
    CHECK_OK(psyne_channel_create_compressed("memory://cz-none", 1024, PSYNE_MODE_SPSC,
                                             PSYNE_TYPE_MULTI, &cfg, &ch));
    CHECK(ch != NULL);
    CHECK_OK(psyne_send_data(ch, "abc", 3, 1));
    CHECK_OK(psyne_channel_destroy(ch));
    CHECK_OK(psyne_channel_create_compressed("memory://cz-null", 1024, PSYNE_MODE_MPMC,
                                             PSYNE_TYPE_SINGLE, NULL, &ch));
    CHECK(ch != NULL);
    CHECK_OK(psyne_channel_destroy(ch));
}

static void test_transports(void)
{
    psyne_channel_t *ch = NULL;
    /* ipc:// is being built by another change: accept either until it lands. */
    char uri[64];
    snprintf(uri, sizeof uri, "ipc://psyne-c-abi-%d", (int)getpid());
    psyne_error_t rc = psyne_channel_create(uri, 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch);
    CHECK(rc == PSYNE_ERROR_UNSUPPORTED || rc == PSYNE_OK);
    if (rc == PSYNE_OK) {
        /* Attach with buffer size 0 adopts the configuration. */
        psyne_channel_t *att = NULL;
        CHECK_OK(psyne_channel_create(uri, 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &att));
        size_t size = 0;
        CHECK_OK(psyne_channel_get_buffer_size(att, &size));
        CHECK(size == 4096);
        CHECK_OK(psyne_send_data(ch, "ipc", 3, 1));
        char buf[8];
        size_t n = 0;
        uint32_t t = 0;
        CHECK_OK(psyne_receive_data(att, buf, sizeof buf, &n, &t, 1000));
        CHECK(n == 3 && t == 1 && memcmp(buf, "ipc", 3) == 0);
        CHECK_OK(psyne_channel_destroy(att));
        CHECK_OK(psyne_channel_destroy(ch));
        char none[64];
        snprintf(none, sizeof none, "ipc://psyne-c-abi-none-%d", (int)getpid());
        CHECK_RC(psyne_channel_create(none, 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
                 PSYNE_ERROR_INVALID_ARGUMENT);
        CHECK_DETAIL(none);
    } else {
        CHECK(ch == NULL);
        CHECK(strlen(psyne_last_error_message()) > 0);
    }
    /* Network transports: connectors to a closed port open (they retry in the background). */
    const char *net[] = {"tcp://127.0.0.1:9", "unix:///nonexistent/psyne-c-abi.sock",
                         "ws://127.0.0.1:9/feed"};
    for (size_t i = 0; i < 3; i++) {
        ch = NULL;
        rc = psyne_channel_create(net[i], 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch);
        CHECK(rc == PSYNE_ERROR_UNSUPPORTED || rc == PSYNE_ERROR_IO || rc == PSYNE_OK);
        if (rc == PSYNE_OK)
            psyne_channel_destroy(ch);
        else
            CHECK(ch == NULL);
    }
}

static void test_sizes_and_uri(void)
{
    psyne_channel_t *ch = NULL;
    REQUIRE_OK(psyne_channel_create("memory://c-abi-sizes", 1000, PSYNE_MODE_SPSC,
                                    PSYNE_TYPE_MULTI, &ch));
    size_t size = 0, max = 0;
    CHECK_OK(psyne_channel_get_buffer_size(ch, &size));
    CHECK(size == 1024);
    CHECK_OK(psyne_channel_get_max_message_size(ch, &max));
    CHECK(max == 1024 / 2 - 16);

    /* Mode and type, also through a handle that attached with size 0. */
    psyne_channel_t *att = NULL;
    REQUIRE_OK(psyne_channel_create("memory://c-abi-sizes", 0, PSYNE_MODE_MPMC,
                                    PSYNE_TYPE_SINGLE, &att));
    psyne_channel_mode_t mode = -1;
    psyne_channel_type_t type = -1;
    CHECK_OK(psyne_channel_get_mode(att, &mode));
    CHECK(mode == PSYNE_MODE_SPSC);
    CHECK_OK(psyne_channel_get_type(att, &type));
    CHECK(type == PSYNE_TYPE_MULTI);
    CHECK_RC(psyne_channel_get_mode(NULL, &mode), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_channel_get_mode(att, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_channel_get_type(NULL, &type), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_RC(psyne_channel_get_type(att, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_channel_destroy(att));

    const char *want = "memory://c-abi-sizes";
    char buf[64];
    memset(buf, 'X', sizeof buf);
    CHECK_OK(psyne_channel_get_uri(ch, buf, sizeof buf));
    CHECK(strcmp(buf, want) == 0);
    memset(buf, 'X', sizeof buf);
    CHECK_OK(psyne_channel_get_uri(ch, buf, strlen(want) + 1)); /* exactly enough */
    CHECK(strcmp(buf, want) == 0);
    memset(buf, 'X', sizeof buf);
    CHECK_RC(psyne_channel_get_uri(ch, buf, strlen(want)), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("21 bytes needed");
    CHECK(buf[0] == 'X'); /* nothing written */
    CHECK_RC(psyne_channel_get_uri(ch, buf, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_channel_destroy(ch));

    /* Minimum ring size. */
    REQUIRE_OK(psyne_channel_create("memory://c-abi-tiny", 1, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI, &ch));
    CHECK_OK(psyne_channel_get_buffer_size(ch, &size));
    CHECK(size == 64);
    CHECK_OK(psyne_channel_destroy(ch));
}

/* The largest ring (1 TiB) normally cannot be allocated: OUT_OF_MEMORY, and
 * nothing is left behind. (If the kernel overcommits, it may succeed.) Under
 * AddressSanitizer on ipc:// (its space is reserved in /dev/shm, not
 * allocated), so that ASan's allocator does not warn about the attempt. */
static void test_out_of_memory(void)
{
#ifdef PSYNE_TEST_ASAN
    const char *uri = "ipc://c-abi-oom";
#else
    const char *uri = "memory://c-abi-oom";
#endif
    psyne_channel_t *ch = (psyne_channel_t *)&ch;
    psyne_error_t rc = psyne_channel_create(uri, (size_t)1 << 40,
                                            PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch);
    CHECK(rc == PSYNE_ERROR_OUT_OF_MEMORY || rc == PSYNE_OK);
    if (rc == PSYNE_OK) {
        CHECK_OK(psyne_channel_destroy(ch));
        return;
    }
    CHECK(ch == NULL);
    CHECK_DETAIL("ring");
    /* The name was not registered: attaching finds nothing. */
    CHECK_RC(psyne_channel_create(uri, 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("does not exist");
}

static void test_attach(void)
{
    psyne_channel_t *a = NULL, *b = (psyne_channel_t *)&a;
    CHECK_RC(psyne_channel_create("memory://c-abi-nobody", 0, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &b),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("memory://c-abi-nobody");
    CHECK(b == NULL);

    REQUIRE_OK(psyne_channel_create("memory://c-abi-attach", 4096, PSYNE_MODE_MPMC,
                                    PSYNE_TYPE_MULTI, &a));
    REQUIRE_OK(psyne_channel_create("memory://c-abi-attach", 0, PSYNE_MODE_SPSC,
                                    PSYNE_TYPE_SINGLE, &b));
    size_t size = 0;
    CHECK_OK(psyne_channel_get_buffer_size(b, &size));
    CHECK(size == 4096);
    /* Re-opening with a different configuration is refused, naming it. */
    psyne_channel_t *c = (psyne_channel_t *)&c;
    CHECK_RC(psyne_channel_create("memory://c-abi-attach", 8192, PSYNE_MODE_MPMC,
                                  PSYNE_TYPE_MULTI, &c),
             PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("memory://c-abi-attach");
    CHECK(c == NULL);
    /* The same configuration attaches. */
    CHECK_OK(psyne_channel_create("memory://c-abi-attach", 4096, PSYNE_MODE_MPMC,
                                  PSYNE_TYPE_MULTI, &c));
    CHECK_OK(psyne_channel_destroy(c));
    /* The attached handle adopted MULTI: a typed message goes through. */
    CHECK_OK(psyne_send_data(a, "hello", 5, 77));
    char buf[16];
    size_t n = 0;
    uint32_t t = 0;
    CHECK_OK(psyne_receive_data(b, buf, sizeof buf, &n, &t, 0));
    CHECK(n == 5 && t == 77 && memcmp(buf, "hello", 5) == 0);
    CHECK_OK(psyne_send_data(b, "back", 4, 3));
    CHECK_OK(psyne_receive_data(a, buf, sizeof buf, &n, &t, 0));
    CHECK(n == 4 && t == 3 && memcmp(buf, "back", 4) == 0);
    /* Stop is per channel, seen through every handle. */
    CHECK_OK(psyne_channel_stop(a));
    bool stopped = false;
    CHECK_OK(psyne_channel_is_stopped(b, &stopped));
    CHECK(stopped);
    CHECK_OK(psyne_channel_destroy(a));
    CHECK_OK(psyne_channel_destroy(b));
    CHECK_OK(psyne_channel_destroy(NULL));
}

static void test_metrics(void)
{
    psyne_channel_t *ch = fresh_channel("metrics", 256, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_metrics_t m;
    memset(&m, 0xff, sizeof m);
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_sent == 0 && m.bytes_sent == 0 && m.messages_received == 0 &&
          m.bytes_received == 0 && m.send_blocks == 0 && m.receive_blocks == 0);

    char payload[64] = {0};
    char buf[128];
    size_t n;
    uint32_t t;
    CHECK_OK(psyne_send_data(ch, payload, 10, 1));
    CHECK_OK(psyne_send_data(ch, payload, 20, 2));
    CHECK_OK(psyne_send_data(ch, payload, 30, 3));
    for (int i = 0; i < 3; i++)
        CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0), PSYNE_ERROR_NO_MESSAGE);
    /* Fill the 256-byte ring with 64-byte messages (80 bytes each with header). */
    int sent = 0;
    psyne_error_t rc;
    while ((rc = psyne_send_data(ch, payload, 64, 9)) == PSYNE_OK)
        sent++;
    CHECK(rc == PSYNE_ERROR_CHANNEL_FULL);
    CHECK(sent >= 1);
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_sent == (uint64_t)(3 + sent));
    CHECK(m.bytes_sent == (uint64_t)(60 + 64 * sent));
    CHECK(m.messages_received == 3);
    CHECK(m.bytes_received == 60);
    CHECK(m.send_blocks == 1);
    CHECK(m.receive_blocks == 1);

    CHECK_OK(psyne_channel_reset_metrics(ch));
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_sent == 0 && m.bytes_sent == 0 && m.messages_received == 0 &&
          m.bytes_received == 0 && m.send_blocks == 0 && m.receive_blocks == 0);

    CHECK_OK(psyne_channel_enable_metrics(ch, false));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK_OK(psyne_send_data(ch, payload, 5, 1));
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_sent == 0 && m.bytes_sent == 0 && m.messages_received == 0 &&
          m.bytes_received == 0);

    CHECK_OK(psyne_channel_enable_metrics(ch, true));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK_OK(psyne_channel_get_metrics(ch, &m));
    CHECK(m.messages_received == 1 && m.bytes_received == 64);
    CHECK_OK(psyne_channel_destroy(ch));
}

/* NULL on every pointer argument of every function. */
static void test_null_pointers(void)
{
    psyne_channel_t *ch = fresh_channel("nulls", 1024, PSYNE_MODE_MPMC, PSYNE_TYPE_MULTI);
    psyne_cancel_t *c = NULL;
    REQUIRE_OK(psyne_cancel_new(&c));
    psyne_message_t *msg = NULL;
    psyne_channel_t *out = NULL;
    char buf[16];
    size_t n = 0;
    uint32_t t = 0;
    bool b = false;
    psyne_metrics_t m;
    void *data = NULL;
    const int INV = PSYNE_ERROR_INVALID_ARGUMENT;

    CHECK_RC(psyne_channel_create(NULL, 1024, 0, 1, &out), INV);
    CHECK_DETAIL("uri is NULL");
    CHECK_RC(psyne_channel_create("memory://n", 1024, 0, 1, NULL), INV);
    CHECK_DETAIL("out is NULL");
    CHECK_RC(psyne_channel_create_compressed(NULL, 1024, 0, 1, NULL, &out), INV);
    CHECK_RC(psyne_channel_create_compressed("memory://n", 1024, 0, 1, NULL, NULL), INV);
    CHECK_RC(psyne_channel_stop(NULL), INV);
    CHECK_RC(psyne_channel_is_stopped(NULL, &b), INV);
    CHECK_RC(psyne_channel_is_stopped(ch, NULL), INV);
    CHECK_DETAIL("stopped is NULL");
    CHECK_RC(psyne_channel_get_uri(NULL, buf, sizeof buf), INV);
    CHECK_RC(psyne_channel_get_uri(ch, NULL, 64), INV);
    CHECK_RC(psyne_channel_get_metrics(NULL, &m), INV);
    CHECK_RC(psyne_channel_get_metrics(ch, NULL), INV);
    CHECK_RC(psyne_channel_enable_metrics(NULL, true), INV);
    CHECK_RC(psyne_channel_reset_metrics(NULL), INV);
    CHECK_RC(psyne_channel_get_buffer_size(NULL, &n), INV);
    CHECK_RC(psyne_channel_get_buffer_size(ch, NULL), INV);
    CHECK_RC(psyne_channel_get_max_message_size(NULL, &n), INV);
    CHECK_RC(psyne_channel_get_max_message_size(ch, NULL), INV);
    CHECK_RC(psyne_channel_set_receive_callback(NULL, NULL, NULL), INV);

    msg = (psyne_message_t *)&msg;
    CHECK_RC(psyne_message_reserve(NULL, 4, &msg), INV);
    CHECK(msg == NULL); /* *msg is cleared on every failure */
    msg = (psyne_message_t *)&msg;
    CHECK_RC(psyne_message_receive(NULL, &msg, &t), INV);
    CHECK(msg == NULL);
    out = (psyne_channel_t *)&out;
    CHECK_RC(psyne_channel_create(NULL, 1024, 0, 1, &out), INV);
    CHECK(out == NULL);
    CHECK_RC(psyne_message_reserve(ch, 4, NULL), INV);
    CHECK_DETAIL("msg is NULL");
    CHECK_RC(psyne_message_reserve_timeout(NULL, 4, 10, &msg), INV);
    CHECK_RC(psyne_message_reserve_timeout(ch, 4, 10, NULL), INV);
    CHECK_RC(psyne_message_reserve_cancellable(NULL, 4, 10, c, &msg), INV);
    CHECK_RC(psyne_message_reserve_cancellable(ch, 4, 10, c, NULL), INV);
    CHECK_RC(psyne_message_get_data(NULL, &data, &n), INV);
    CHECK_RC(psyne_message_send(NULL, 0), INV);
    CHECK_RC(psyne_message_cancel(NULL), INV);
    CHECK_RC(psyne_message_release(NULL), INV);
    CHECK_RC(psyne_message_receive(NULL, &msg, &t), INV);
    CHECK_RC(psyne_message_receive(ch, NULL, &t), INV);
    CHECK_RC(psyne_message_receive(ch, &msg, NULL), INV);
    CHECK_RC(psyne_message_receive_timeout(NULL, 10, &msg, &t), INV);
    CHECK_RC(psyne_message_receive_timeout(ch, 10, NULL, &t), INV);
    CHECK_RC(psyne_message_receive_timeout(ch, 10, &msg, NULL), INV);
    CHECK_RC(psyne_message_receive_cancellable(NULL, 10, c, &msg, &t), INV);
    CHECK_RC(psyne_message_receive_cancellable(ch, 10, c, NULL, &t), INV);
    CHECK_RC(psyne_message_receive_cancellable(ch, 10, c, &msg, NULL), INV);

    /* get_data's out pointers, on a real reservation (which stays usable). */
    REQUIRE_OK(psyne_message_reserve(ch, 4, &msg));
    CHECK_RC(psyne_message_get_data(msg, NULL, &n), INV);
    CHECK_DETAIL("data is NULL");
    CHECK_RC(psyne_message_get_data(msg, &data, NULL), INV);
    CHECK_DETAIL("size is NULL");
    CHECK_OK(psyne_message_cancel(msg));

    CHECK_RC(psyne_send_data(NULL, "x", 1, 0), INV);
    CHECK_RC(psyne_send_data(ch, NULL, 1, 0), INV);
    CHECK_DETAIL("data is NULL");
    CHECK_RC(psyne_send_data_timeout(NULL, "x", 1, 0, 10), INV);
    CHECK_RC(psyne_send_data_timeout(ch, NULL, 1, 0, 10), INV);
    CHECK_RC(psyne_send_data_cancellable(NULL, "x", 1, 0, 10, c), INV);
    CHECK_RC(psyne_send_data_cancellable(ch, NULL, 1, 0, 10, c), INV);

    CHECK_RC(psyne_receive_data(NULL, buf, sizeof buf, &n, &t, 0), INV);
    CHECK_RC(psyne_receive_data(ch, NULL, sizeof buf, &n, &t, 0), INV);
    CHECK_DETAIL("buf is NULL");
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, NULL, &t, 0), INV);
    CHECK_DETAIL("received is NULL");
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, NULL, 0), INV);
    CHECK_DETAIL("type is NULL");
    CHECK_RC(psyne_receive_data_cancellable(NULL, buf, sizeof buf, &n, &t, 10, c), INV);
    CHECK_RC(psyne_receive_data_cancellable(ch, NULL, sizeof buf, &n, &t, 10, c), INV);
    CHECK_RC(psyne_receive_data_cancellable(ch, buf, sizeof buf, NULL, &t, 10, c), INV);
    CHECK_RC(psyne_receive_data_cancellable(ch, buf, sizeof buf, &n, NULL, 10, c), INV);

    CHECK_RC(psyne_cancel_new(NULL), INV);
    CHECK_RC(psyne_cancel_trigger(NULL), INV);
    CHECK_RC(psyne_cancel_reset(NULL), INV);
    CHECK_OK(psyne_cancel_free(NULL));
    CHECK_OK(psyne_channel_destroy(NULL));

    /* Nothing above queued anything or left a side locked. */
    CHECK_RC(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0), PSYNE_ERROR_NO_MESSAGE);

    /* NULL with length 0 is an empty buffer (FFI callers pass NULL for one):
     * an empty message is sent, and received into a NULL buffer of capacity
     * 0; a non-empty message does not fit there and stays queued. */
    CHECK_OK(psyne_send_data(ch, NULL, 0, 0));
    CHECK_OK(psyne_send_data_timeout(ch, NULL, 0, 0, 10));
    n = 99;
    CHECK_OK(psyne_receive_data(ch, NULL, 0, &n, &t, 0));
    CHECK(n == 0);
    CHECK_OK(psyne_receive_data_cancellable(ch, NULL, 0, &n, &t, 10, c));
    CHECK(n == 0);
    CHECK_OK(psyne_send_data(ch, "abc", 3, 0));
    CHECK_RC(psyne_receive_data(ch, NULL, 0, &n, &t, 0), INV);
    CHECK(n == 3);
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK(n == 3);
    CHECK_OK(psyne_send_data(ch, "ok", 2, 0));
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK(n == 2);

    CHECK_OK(psyne_cancel_free(c));
    CHECK_OK(psyne_channel_destroy(ch));
}

/* Destroyed handles are detected where cheap. This is undefined behaviour in
 * general (a use after free), so it runs only without AddressSanitizer. */
static void test_stale_handles(void)
{
#ifndef PSYNE_TEST_ASAN
    psyne_channel_t *ch = fresh_channel("stale", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    CHECK_OK(psyne_channel_destroy(ch));
    CHECK_RC(psyne_channel_destroy(ch), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("not a live psyne_channel_t");

    psyne_cancel_t *c = NULL;
    REQUIRE_OK(psyne_cancel_new(&c));
    CHECK_OK(psyne_cancel_free(c));
    CHECK_RC(psyne_cancel_free(c), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("not a live psyne_cancel_t");

    ch = fresh_channel("stale-msg", 1024, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    psyne_message_t *msg = NULL;
    REQUIRE_OK(psyne_message_reserve(ch, 8, &msg));
    CHECK_OK(psyne_message_send(msg, 1));
    CHECK_RC(psyne_message_send(msg, 1), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("not a live psyne_message_t");
    uint32_t t = 0;
    REQUIRE_OK(psyne_message_receive(ch, &msg, &t));
    CHECK_OK(psyne_message_release(msg));
    CHECK_RC(psyne_message_release(msg), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_channel_destroy(ch));
#endif
}

int main(void)
{
    test_library();
    test_last_error_is_thread_local();
    test_bad_uris_and_enums();
    test_transports();
    test_sizes_and_uri();
    test_attach();
    test_out_of_memory();
    test_metrics();
    test_null_pointers();
    test_stale_handles();
    return check_summary();
}
