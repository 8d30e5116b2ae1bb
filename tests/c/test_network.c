/* tcp:// and unix:// through the C ABI: psyne_channel_get_local_address
 * (port 0, wildcard, unix paths, connectors, exact and too-small buffers,
 * NULL arguments, UNSUPPORTED on memory:// and ipc://) and
 * psyne_channel_get_extended_metrics (layout, NULL arguments, memory://,
 * wire bytes, connects, peers, reconnects, reset) over loopback. Every
 * listener binds port 0 or a fresh socket path; every wait is bounded. */
#include "check.h"

#include <stdbool.h>
#include <stddef.h>

enum { LONG_MS = 30000 };

/* Polls `cond` until it holds or LONG_MS pass, and CHECKs the outcome. */
#define CHECK_EVENTUALLY(cond)                                                         \
    do {                                                                               \
        double deadline_ = now_ms() + LONG_MS;                                         \
        bool ok_;                                                                      \
        while (!(ok_ = (cond)) && now_ms() < deadline_)                                \
            sleep_ms(2);                                                               \
        CHECK(ok_ && #cond);                                                           \
    } while (0)

static psyne_extended_metrics_t metrics_of(psyne_channel_t *ch)
{
    psyne_extended_metrics_t m;
    memset(&m, 0xff, sizeof m);
    CHECK_OK(psyne_channel_get_extended_metrics(ch, &m));
    return m;
}

static void sock_path(char *buf, size_t cap)
{
    static atomic_int seq;
    snprintf(buf, cap, "/tmp/psyne-c-net-%d-%d.sock", (int)getpid(), atomic_fetch_add(&seq, 1));
}

static psyne_channel_t *open_uri(const char *uri)
{
    psyne_channel_t *ch = NULL;
    REQUIRE_OK(psyne_channel_create(uri, 1 << 16, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ch));
    REQUIRE(ch != NULL);
    return ch;
}

/* A listener on a fresh address ("tcp" or "unix"); `connect_uri` gets the URI
 * its connectors use, from psyne_channel_get_local_address. */
static psyne_channel_t *listen_fresh(const char *scheme, char *connect_uri, size_t cap)
{
    char uri[256], path[128], addr[256];
    if (strcmp(scheme, "tcp") == 0) {
        snprintf(uri, sizeof uri, "tcp://127.0.0.1:0?role=listen");
    } else {
        sock_path(path, sizeof path);
        snprintf(uri, sizeof uri, "unix://%s?role=listen", path);
    }
    psyne_channel_t *l = open_uri(uri);
    REQUIRE_OK(psyne_channel_get_local_address(l, addr, sizeof addr));
    snprintf(connect_uri, cap, "%s://%s", scheme, addr);
    return l;
}

static void test_struct_layout(void)
{
    CHECK(sizeof(psyne_extended_metrics_t) == 16 * sizeof(uint64_t));
    /* The six counters of psyne_metrics_t first, in the same order. */
    CHECK(offsetof(psyne_extended_metrics_t, messages_sent) == offsetof(psyne_metrics_t, messages_sent));
    CHECK(offsetof(psyne_extended_metrics_t, bytes_sent) == offsetof(psyne_metrics_t, bytes_sent));
    CHECK(offsetof(psyne_extended_metrics_t, messages_received) ==
          offsetof(psyne_metrics_t, messages_received));
    CHECK(offsetof(psyne_extended_metrics_t, bytes_received) == offsetof(psyne_metrics_t, bytes_received));
    CHECK(offsetof(psyne_extended_metrics_t, send_blocks) == offsetof(psyne_metrics_t, send_blocks));
    CHECK(offsetof(psyne_extended_metrics_t, receive_blocks) == offsetof(psyne_metrics_t, receive_blocks));
    /* Then the ten of SPEC section 6, in order. */
    CHECK(offsetof(psyne_extended_metrics_t, wire_bytes_sent) == 6 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, wire_bytes_received) == 7 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, messages_compressed) == 8 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, checksum_failures) == 9 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, frames_refused) == 10 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, connects) == 11 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, reconnects) == 12 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, peers) == 13 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, queued_bytes) == 14 * 8);
    CHECK(offsetof(psyne_extended_metrics_t, high_water_bytes) == 15 * 8);
}

static void test_null_arguments(void)
{
    psyne_extended_metrics_t m;
    char buf[64];
    CHECK_RC(psyne_channel_get_extended_metrics(NULL, &m), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("psyne_channel_get_extended_metrics");
    CHECK_RC(psyne_channel_get_local_address(NULL, buf, sizeof buf), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("psyne_channel_get_local_address");

    char uri[256];
    psyne_channel_t *l = listen_fresh("tcp", uri, sizeof uri);
    CHECK_RC(psyne_channel_get_extended_metrics(l, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("out");
    CHECK_RC(psyne_channel_get_local_address(l, NULL, 64), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_DETAIL("buf");
    CHECK_RC(psyne_channel_get_local_address(l, NULL, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_channel_destroy(l));

    psyne_channel_t *mem = fresh_channel("net-null", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    CHECK_RC(psyne_channel_get_extended_metrics(mem, NULL), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK_OK(psyne_channel_destroy(mem));
}

static void test_local_address_tcp(void)
{
    char addr[256];
    psyne_channel_t *l = open_uri("tcp://127.0.0.1:0?role=listen");
    CHECK_OK(psyne_channel_get_local_address(l, addr, sizeof addr));
    unsigned port = 0;
    char tail = 0;
    CHECK(sscanf(addr, "127.0.0.1:%u%c", &port, &tail) == 1);
    CHECK(port > 0 && port < 65536); /* the port the system chose, not 0 */

    /* An exact fit works; one byte less is INVALID_ARGUMENT with the size
     * needed, and nothing is written. */
    size_t len = strlen(addr);
    char exact[256];
    CHECK_OK(psyne_channel_get_local_address(l, exact, len + 1));
    CHECK(strcmp(exact, addr) == 0);
    char small[256];
    memset(small, 'x', sizeof small);
    CHECK_RC(psyne_channel_get_local_address(l, small, len), PSYNE_ERROR_INVALID_ARGUMENT);
    char needed[64];
    snprintf(needed, sizeof needed, "%zu bytes needed", len + 1);
    CHECK_DETAIL(needed);
    CHECK(small[0] == 'x' && small[len - 1] == 'x');
    CHECK_RC(psyne_channel_get_local_address(l, small, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(small[0] == 'x');

    /* A connector reports the address it connects to. */
    char curi[300];
    snprintf(curi, sizeof curi, "tcp://%s", addr);
    psyne_channel_t *c = open_uri(curi);
    char caddr[256];
    CHECK_OK(psyne_channel_get_local_address(c, caddr, sizeof caddr));
    CHECK(strcmp(caddr, addr) == 0);
    CHECK_OK(psyne_channel_destroy(c));
    CHECK_OK(psyne_channel_destroy(l));

    /* An empty host listens on every interface, also with port 0. */
    l = open_uri("tcp://:0");
    CHECK_OK(psyne_channel_get_local_address(l, addr, sizeof addr));
    const char *colon = strrchr(addr, ':');
    CHECK(colon != NULL && strcmp(colon, ":0") != 0 && atoi(colon + 1) > 0);
    CHECK_OK(psyne_channel_destroy(l));
}

static void test_local_address_unix(void)
{
    char path[128], uri[256], addr[256];
    sock_path(path, sizeof path);
    snprintf(uri, sizeof uri, "unix://%s?role=listen", path);
    psyne_channel_t *l = open_uri(uri);
    CHECK_OK(psyne_channel_get_local_address(l, addr, sizeof addr));
    CHECK(strcmp(addr, path) == 0);
    memset(addr, 'x', sizeof addr);
    CHECK_RC(psyne_channel_get_local_address(l, addr, strlen(path)), PSYNE_ERROR_INVALID_ARGUMENT);
    CHECK(addr[0] == 'x');

    snprintf(uri, sizeof uri, "unix://%s", path);
    psyne_channel_t *c = open_uri(uri);
    CHECK_OK(psyne_channel_get_local_address(c, addr, sizeof addr));
    CHECK(strcmp(addr, path) == 0);
    CHECK_OK(psyne_channel_destroy(c));
    CHECK_OK(psyne_channel_destroy(l));
    CHECK(access(path, F_OK) != 0); /* the listener removed its socket file */
}

static void test_local_address_unsupported(void)
{
    char addr[256] = "untouched";
    psyne_channel_t *mem = fresh_channel("net-addr", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    CHECK_RC(psyne_channel_get_local_address(mem, addr, sizeof addr), PSYNE_ERROR_UNSUPPORTED);
    CHECK_DETAIL("memory://");
    CHECK(strcmp(addr, "untouched") == 0);
    CHECK_OK(psyne_channel_destroy(mem));

    char uri[64];
    snprintf(uri, sizeof uri, "ipc://psyne-c-net-%d", (int)getpid());
    psyne_channel_t *ipc = NULL;
    psyne_error_t rc = psyne_channel_create(uri, 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI, &ipc);
    CHECK(rc == PSYNE_OK || rc == PSYNE_ERROR_UNSUPPORTED);
    if (rc == PSYNE_OK) {
        CHECK_RC(psyne_channel_get_local_address(ipc, addr, sizeof addr), PSYNE_ERROR_UNSUPPORTED);
        CHECK_OK(psyne_channel_destroy(ipc));
    }
}

/* On memory:// the first six are psyne_channel_get_metrics', the wire
 * bytes are the payload bytes, and no connection is counted. */
static void test_extended_metrics_memory(void)
{
    psyne_channel_t *ch = fresh_channel("net-metrics", 4096, PSYNE_MODE_SPSC, PSYNE_TYPE_MULTI);
    for (int i = 0; i < 3; i++)
        CHECK_OK(psyne_send_data(ch, "0123456789", 10, 1));
    char buf[16];
    size_t n = 0;
    uint32_t t = 0;
    CHECK_OK(psyne_receive_data(ch, buf, sizeof buf, &n, &t, 0));
    CHECK_RC(psyne_receive_data(ch, buf, 4, &n, &t, 0), PSYNE_ERROR_INVALID_ARGUMENT);
    psyne_extended_metrics_t m = metrics_of(ch);
    psyne_metrics_t six;
    CHECK_OK(psyne_channel_get_metrics(ch, &six));
    CHECK(memcmp(&m, &six, sizeof six) == 0);
    CHECK(m.messages_sent == 3 && m.bytes_sent == 30 && m.messages_received == 1 && m.bytes_received == 10);
    CHECK(m.wire_bytes_sent == 30 && m.wire_bytes_received == 10);
    CHECK(m.messages_compressed == 0 && m.checksum_failures == 0 && m.frames_refused == 0);
    CHECK(m.connects == 0 && m.reconnects == 0 && m.peers == 0);
    CHECK(m.queued_bytes > 0 && m.high_water_bytes >= m.queued_bytes);
    CHECK_OK(psyne_channel_reset_metrics(ch));
    m = metrics_of(ch);
    CHECK(m.messages_sent == 0 && m.wire_bytes_sent == 0 && m.queued_bytes > 0);
    CHECK_OK(psyne_channel_destroy(ch));
}

/* N messages each way between a listener and a connector: messages, bytes,
 * wire bytes (a 32-byte HELLO, then a 16-byte header per message), one
 * connect and one peer on each end; then the connector goes away. */
static void test_extended_metrics_net(const char *scheme)
{
    enum { N = 200, LEN = 24 };
    char uri[300];
    psyne_channel_t *l = listen_fresh(scheme, uri, sizeof uri);
    psyne_channel_t *c = open_uri(uri);
    unsigned char msg[LEN], buf[64];
    size_t n = 0;
    uint32_t t = 0;
    for (uint32_t i = 0; i < N; i++) {
        memset(msg, (int)i, sizeof msg);
        REQUIRE_OK(psyne_send_data_timeout(c, msg, LEN, i, LONG_MS));
        REQUIRE_OK(psyne_receive_data(l, buf, sizeof buf, &n, &t, LONG_MS));
        CHECK(n == LEN && t == i && buf[0] == (unsigned char)i);
        REQUIRE_OK(psyne_send_data_timeout(l, buf, n, t + 1, LONG_MS));
        REQUIRE_OK(psyne_receive_data(c, buf, sizeof buf, &n, &t, LONG_MS));
        CHECK(n == LEN && t == i + 1 && buf[LEN - 1] == (unsigned char)i);
    }
    const uint64_t wire = 32 + (uint64_t)N * (16 + LEN);
    psyne_extended_metrics_t mc, ml;
    CHECK_EVENTUALLY((mc = metrics_of(c), ml = metrics_of(l),
                      mc.wire_bytes_sent == wire && ml.wire_bytes_received == wire &&
                          ml.wire_bytes_sent == wire && mc.wire_bytes_received == wire));
    const psyne_extended_metrics_t *ends[] = {&mc, &ml};
    for (int e = 0; e < 2; e++) {
        const psyne_extended_metrics_t *m = ends[e];
        CHECK(m->messages_sent == N && m->messages_received == N);
        CHECK(m->bytes_sent == (uint64_t)N * LEN && m->bytes_received == (uint64_t)N * LEN);
        CHECK(m->connects == 1 && m->reconnects == 0 && m->peers == 1);
        CHECK(m->checksum_failures == 0 && m->frames_refused == 0 && m->messages_compressed == 0);
        CHECK(m->high_water_bytes > 0);
    }
    /* Reset: counters to zero, the present (peers) stays. */
    CHECK_OK(psyne_channel_reset_metrics(l));
    ml = metrics_of(l);
    CHECK(ml.connects == 0 && ml.wire_bytes_received == 0 && ml.messages_received == 0 && ml.peers == 1);

    CHECK_OK(psyne_channel_destroy(c));
    CHECK_EVENTUALLY((ml = metrics_of(l), ml.peers == 0));
    CHECK_OK(psyne_channel_destroy(l));
}

/* A connector opened before its listener keeps its messages, connects once
 * the listener is up, and reconnects after the listener is replaced. */
static void test_connector_before_listener_and_reconnect(void)
{
    char path[128], luri[256], curi[256];
    sock_path(path, sizeof path);
    snprintf(luri, sizeof luri, "unix://%s?role=listen", path);
    snprintf(curi, sizeof curi, "unix://%s?reconnect_max=50", path);
    psyne_channel_t *c = open_uri(curi);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_OK(psyne_send_data(c, &i, sizeof i, i));
    sleep_ms(200);
    psyne_extended_metrics_t m = metrics_of(c);
    CHECK(m.connects == 0 && m.peers == 0 && m.messages_sent == 5 && m.wire_bytes_sent == 0);

    psyne_channel_t *l = open_uri(luri);
    uint32_t v = 0, t = 0;
    size_t n = 0;
    for (uint32_t i = 0; i < 5; i++) {
        CHECK_OK(psyne_receive_data(l, &v, sizeof v, &n, &t, LONG_MS));
        CHECK(n == sizeof v && v == i && t == i);
    }
    m = metrics_of(c);
    CHECK(m.connects == 1 && m.reconnects == 0 && m.peers == 1);

    /* The listener goes away and a new one takes its path. */
    CHECK_OK(psyne_channel_destroy(l));
    CHECK_EVENTUALLY((m = metrics_of(c), m.peers == 0));
    l = open_uri(luri);
    CHECK_EVENTUALLY((m = metrics_of(c), m.peers == 1 && m.connects == 2 && m.reconnects == 1));
    uint32_t after = 77;
    CHECK_OK(psyne_send_data_timeout(c, &after, sizeof after, 9, LONG_MS));
    CHECK_OK(psyne_receive_data(l, &v, sizeof v, &n, &t, LONG_MS));
    CHECK(v == 77 && t == 9);
    CHECK_OK(psyne_channel_destroy(c));
    CHECK_OK(psyne_channel_destroy(l));
}

int main(void)
{
    CHECK_OK(psyne_init());
    test_struct_layout();
    test_null_arguments();
    test_local_address_tcp();
    test_local_address_unix();
    test_local_address_unsupported();
    test_extended_metrics_memory();
    test_extended_metrics_net("tcp");
    test_extended_metrics_net("unix");
    test_connector_before_listener_and_reconnect();
    psyne_cleanup();
    return check_summary();
}
