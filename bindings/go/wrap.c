// C wrappers around include/psyne.h used by the Go binding (see cgo.go).
#include <stdlib.h>
#include <string.h>
#include "wrap.h"

// A one-byte target for empty messages and zero-capacity receives, so that
// libpsyne never sees a NULL data pointer from Go.
static unsigned char gopsyne_empty_byte;

// Handles passed as gopsyne_handle (see wrap.h), back to their types.
#define CHANNEL(h) ((psyne_channel_t *)(h))
#define MSG(h) ((psyne_message_t *)(h))
#define PRODUCER(h) ((psyne_producer_t *)(h))
#define CONSUMER(h) ((psyne_consumer_t *)(h))
#define CANCEL(h) ((psyne_cancel_t *)(h))

static char *gopsyne_detail(int32_t rc) {
	// Codes whose detail is only the function and the code's name (a
	// failing poll, a timeout, a cancel, a stop): the Go error says as much
	// from Op and Code, and copying the text cost every failing poll.
	switch (rc) {
	case 0:
	case PSYNE_ERROR_CHANNEL_FULL:
	case PSYNE_ERROR_NO_MESSAGE:
	case PSYNE_ERROR_CHANNEL_STOPPED:
	case PSYNE_ERROR_TIMEOUT:
	case PSYNE_ERROR_CANCELLED:
		return NULL;
	}
	const char *m = psyne_last_error_message();
	return strdup(m != NULL ? m : "");
}

#define GOPSYNE_RESULT(r, call) do { (r).rc = (int32_t)(call); (r).detail = gopsyne_detail((r).rc); } while (0)

gopsyne_result gopsyne_init(void) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_init()); return r; }

gopsyne_create_result gopsyne_channel_create(const char *uri, size_t size, int32_t mode, int32_t type,
		int with_cfg, int32_t ctype, int level, size_t min_size, bool checksum) {
	gopsyne_create_result r;
	r.ch = NULL;
	if (with_cfg) {
		psyne_compression_config_t cfg;
		memset(&cfg, 0, sizeof cfg);
		cfg.type = ctype;
		cfg.level = level;
		cfg.min_size_threshold = min_size;
		cfg.enable_checksum = checksum;
		GOPSYNE_RESULT(r, psyne_channel_create_compressed(uri, size, mode, type, &cfg, &r.ch));
	} else {
		GOPSYNE_RESULT(r, psyne_channel_create(uri, size, mode, type, &r.ch));
	}
	return r;
}

gopsyne_result gopsyne_channel_destroy(psyne_channel_t *ch) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_channel_destroy(ch)); return r; }
gopsyne_result gopsyne_channel_stop(psyne_channel_t *ch) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_channel_stop(ch)); return r; }

gopsyne_bool_result gopsyne_channel_is_stopped(psyne_channel_t *ch) {
	gopsyne_bool_result r; bool v = false;
	GOPSYNE_RESULT(r, psyne_channel_is_stopped(ch, &v));
	r.value = v;
	return r;
}

gopsyne_result gopsyne_get_uri(psyne_channel_t *ch, char *buf, size_t cap) {
	gopsyne_result r; GOPSYNE_RESULT(r, psyne_channel_get_uri(ch, buf, cap)); return r;
}

gopsyne_metrics_result gopsyne_get_metrics(psyne_channel_t *ch) {
	gopsyne_metrics_result r; psyne_metrics_t m;
	memset(&m, 0, sizeof m);
	GOPSYNE_RESULT(r, psyne_channel_get_metrics(ch, &m));
	r.messages_sent = m.messages_sent;
	r.bytes_sent = m.bytes_sent;
	r.messages_received = m.messages_received;
	r.bytes_received = m.bytes_received;
	r.send_blocks = m.send_blocks;
	r.receive_blocks = m.receive_blocks;
	return r;
}

gopsyne_result gopsyne_enable_metrics(psyne_channel_t *ch, bool on) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_channel_enable_metrics(ch, on)); return r; }
gopsyne_result gopsyne_reset_metrics(psyne_channel_t *ch) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_channel_reset_metrics(ch)); return r; }

gopsyne_size_result gopsyne_buffer_size(psyne_channel_t *ch) {
	gopsyne_size_result r; size_t v = 0;
	GOPSYNE_RESULT(r, psyne_channel_get_buffer_size(ch, &v));
	r.value = v;
	return r;
}

/* The channel's real mode (value) and type (value >> 8). */
gopsyne_size_result gopsyne_mode_and_type(psyne_channel_t *ch) {
	gopsyne_size_result r; psyne_channel_mode_t m = 0; psyne_channel_type_t t = 0;
	GOPSYNE_RESULT(r, psyne_channel_get_mode(ch, &m));
	if (r.rc == PSYNE_OK) {
		GOPSYNE_RESULT(r, psyne_channel_get_type(ch, &t));
	}
	r.value = (size_t)m | (size_t)t << 8;
	return r;
}

gopsyne_size_result gopsyne_max_message_size(psyne_channel_t *ch) {
	gopsyne_size_result r; size_t v = 0;
	GOPSYNE_RESULT(r, psyne_channel_get_max_message_size(ch, &v));
	r.value = v;
	return r;
}

// Copying send. timeout_ms == 0 and no cancel token: the plain non-blocking call.
gopsyne_result gopsyne_send_data(gopsyne_handle ch, const unsigned char *data, size_t size, uint32_t type) {
	gopsyne_result r;
	if (data == NULL) data = &gopsyne_empty_byte;
	GOPSYNE_RESULT(r, psyne_send_data(CHANNEL(ch), data, size, type));
	return r;
}

gopsyne_result gopsyne_send_data_wait(gopsyne_handle ch, const unsigned char *data, size_t size, uint32_t type,
		uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_result r;
	if (data == NULL) data = &gopsyne_empty_byte;
	GOPSYNE_RESULT(r, psyne_send_data_cancellable(CHANNEL(ch), data, size, type, timeout_ms, CANCEL(cancel)));
	return r;
}

gopsyne_recv_result gopsyne_receive_data(gopsyne_handle ch, unsigned char *buf, size_t cap, uint32_t timeout_ms,
		gopsyne_handle cancel) {
	gopsyne_recv_result r; size_t received = 0; uint32_t type = 0;
	if (buf == NULL) buf = &gopsyne_empty_byte;
	if (cancel == 0) {
		GOPSYNE_RESULT(r, psyne_receive_data(CHANNEL(ch), buf, cap, &received, &type, timeout_ms));
	} else {
		GOPSYNE_RESULT(r, psyne_receive_data_cancellable(CHANNEL(ch), buf, cap, &received, &type, timeout_ms, CANCEL(cancel)));
	}
	r.received = received;
	r.type = type;
	return r;
}

// Reservation: reserve (optionally waiting) and fetch the data pointer in one call.
gopsyne_msg_result gopsyne_reserve(gopsyne_handle ch, size_t size, uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_msg_result r; psyne_message_t *msg = NULL;
	r.msg = 0; r.data = NULL; r.size = 0; r.type = 0; r.sent = false;
	if (timeout_ms == 0 && cancel == 0) {
		GOPSYNE_RESULT(r, psyne_message_reserve(CHANNEL(ch), size, &msg));
	} else {
		GOPSYNE_RESULT(r, psyne_message_reserve_cancellable(CHANNEL(ch), size, timeout_ms, CANCEL(cancel), &msg));
	}
	if (r.rc != 0) return r;
	void *data = NULL; size_t len = 0;
	GOPSYNE_RESULT(r, psyne_message_get_data(msg, &data, &len));
	if (r.rc != 0) { psyne_message_cancel(msg); return r; }
	r.msg = (gopsyne_handle)msg; r.data = data; r.size = len;
	return r;
}

// Zero-copy receive: take the next message (optionally waiting) and fetch its bytes.
gopsyne_msg_result gopsyne_msg_receive(gopsyne_handle ch, uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_msg_result r; psyne_message_t *msg = NULL; uint32_t type = 0;
	r.msg = 0; r.data = NULL; r.size = 0; r.type = 0; r.sent = false;
	if (timeout_ms == 0 && cancel == 0) {
		GOPSYNE_RESULT(r, psyne_message_receive(CHANNEL(ch), &msg, &type));
	} else {
		GOPSYNE_RESULT(r, psyne_message_receive_cancellable(CHANNEL(ch), timeout_ms, CANCEL(cancel), &msg, &type));
	}
	if (r.rc != 0) return r;
	void *data = NULL; size_t len = 0;
	GOPSYNE_RESULT(r, psyne_message_get_data(msg, &data, &len));
	if (r.rc != 0) { psyne_message_release(msg); return r; }
	r.msg = (gopsyne_handle)msg; r.data = data; r.size = len; r.type = type;
	return r;
}

gopsyne_result gopsyne_msg_send(gopsyne_handle msg, uint32_t type) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_message_send(MSG(msg), type)); return r; }
gopsyne_result gopsyne_msg_cancel(gopsyne_handle msg) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_message_cancel(MSG(msg))); return r; }
gopsyne_result gopsyne_msg_release(gopsyne_handle msg) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_message_release(MSG(msg))); return r; }

// Exclusive side handles (psyne_producer_t, psyne_consumer_t). Their messages
// are the handle's own embedded psyne_message_t, finished with the
// gopsyne_msg_* wrappers above or the fused calls below.
gopsyne_side_result gopsyne_producer_new(psyne_channel_t *ch) {
	gopsyne_side_result r; psyne_producer_t *p = NULL;
	GOPSYNE_RESULT(r, psyne_producer_new(ch, &p));
	r.side = (gopsyne_handle)p;
	return r;
}
gopsyne_result gopsyne_producer_free(gopsyne_handle p) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_producer_free(PRODUCER(p))); return r; }

gopsyne_result gopsyne_producer_send_data(gopsyne_handle p, const unsigned char *data, size_t size, uint32_t type,
		uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_result r;
	if (data == NULL) data = &gopsyne_empty_byte;
	GOPSYNE_RESULT(r, psyne_producer_send_data(PRODUCER(p), data, size, type, timeout_ms, CANCEL(cancel)));
	return r;
}

// Reserve (optionally waiting) and fetch the data pointer: the rest of r.
static void gopsyne_producer_reserve_into(gopsyne_msg_result *r, psyne_producer_t *p, size_t size,
		uint32_t timeout_ms, psyne_cancel_t *cancel) {
	psyne_message_t *msg = NULL; void *data = NULL;
	if (timeout_ms == 0) {
		GOPSYNE_RESULT(*r, psyne_producer_reserve(p, size, &msg, &data));
	} else {
		GOPSYNE_RESULT(*r, psyne_producer_reserve_cancellable(p, size, timeout_ms, cancel, &msg, &data));
	}
	if (r->rc != 0) return;
	r->msg = (gopsyne_handle)msg; r->data = data; r->size = size;
}

gopsyne_msg_result gopsyne_producer_reserve(gopsyne_handle p, size_t size, uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_msg_result r = {0};
	gopsyne_producer_reserve_into(&r, PRODUCER(p), size, timeout_ms, CANCEL(cancel));
	return r;
}

// Send the held reservation msg, then reserve the next one (never waiting):
// one crossing, and one call into libpsyne, for what Send and
// ReserveMessage do in two. r.sent: msg is finished (sent, or ended by a
// stop): the call succeeded (*msg is the producer's one message again), or
// it failed and set *msg to NULL; it leaves *msg as it was only while the
// reservation is still held.
gopsyne_msg_result gopsyne_producer_send_reserve(gopsyne_handle p, gopsyne_handle msg, uint32_t type, size_t size) {
	gopsyne_msg_result r = {0};
	psyne_message_t *m = MSG(msg); void *data = NULL;
	GOPSYNE_RESULT(r, psyne_producer_send_and_reserve(PRODUCER(p), type, size, 0, NULL, &m, &data));
	r.sent = r.rc == 0 || m != MSG(msg);
	if (r.rc != 0) return r;
	r.msg = (gopsyne_handle)m; r.data = data; r.size = size;
	return r;
}

gopsyne_side_result gopsyne_consumer_new(psyne_channel_t *ch) {
	gopsyne_side_result r; psyne_consumer_t *c = NULL;
	GOPSYNE_RESULT(r, psyne_consumer_new(ch, &c));
	r.side = (gopsyne_handle)c;
	return r;
}
gopsyne_result gopsyne_consumer_free(gopsyne_handle c) { gopsyne_result r; GOPSYNE_RESULT(r, psyne_consumer_free(CONSUMER(c))); return r; }

gopsyne_recv_result gopsyne_consumer_receive_data(gopsyne_handle c, unsigned char *buf, size_t cap, uint32_t timeout_ms,
		gopsyne_handle cancel) {
	gopsyne_recv_result r; size_t received = 0; uint32_t type = 0;
	if (buf == NULL) buf = &gopsyne_empty_byte;
	GOPSYNE_RESULT(r, psyne_consumer_receive_data(CONSUMER(c), buf, cap, &received, &type, timeout_ms, CANCEL(cancel)));
	r.received = received;
	r.type = type;
	return r;
}

// Take the next message (optionally waiting) and fetch its bytes: the rest of r.
static void gopsyne_consumer_receive_into(gopsyne_msg_result *r, psyne_consumer_t *c, uint32_t timeout_ms,
		psyne_cancel_t *cancel) {
	psyne_message_t *msg = NULL; const void *data = NULL; size_t len = 0; uint32_t type = 0;
	if (timeout_ms == 0) {
		GOPSYNE_RESULT(*r, psyne_consumer_receive(c, &msg, &data, &len, &type));
	} else {
		GOPSYNE_RESULT(*r, psyne_consumer_receive_cancellable(c, timeout_ms, cancel, &msg, &data, &len, &type));
	}
	if (r->rc != 0) return;
	r->msg = (gopsyne_handle)msg; r->data = (void *)data; r->size = len; r->type = type;
}

gopsyne_msg_result gopsyne_consumer_receive(gopsyne_handle c, uint32_t timeout_ms, gopsyne_handle cancel) {
	gopsyne_msg_result r = {0};
	gopsyne_consumer_receive_into(&r, CONSUMER(c), timeout_ms, CANCEL(cancel));
	return r;
}

// Release the held message msg, then receive the next one: one crossing,
// and one call into libpsyne, for what Release and ReceiveView do in two.
// r.sent: msg is released: the call succeeded, or it failed and set *msg
// to NULL; it leaves *msg as it was only when it refused its arguments.
gopsyne_msg_result gopsyne_consumer_release_receive(gopsyne_handle c, gopsyne_handle msg, uint32_t timeout_ms,
		gopsyne_handle cancel) {
	gopsyne_msg_result r = {0};
	psyne_message_t *m = MSG(msg); const void *data = NULL; size_t len = 0; uint32_t type = 0;
	GOPSYNE_RESULT(r, psyne_consumer_release_and_receive(CONSUMER(c), timeout_ms, CANCEL(cancel), &m, &data, &len, &type));
	r.sent = r.rc == 0 || m != MSG(msg);
	if (r.rc != 0) return r;
	r.msg = (gopsyne_handle)m; r.data = (void *)data; r.size = len; r.type = type;
	return r;
}

gopsyne_cancel_result gopsyne_cancel_new(void) {
	gopsyne_cancel_result r; psyne_cancel_t *c = NULL;
	GOPSYNE_RESULT(r, psyne_cancel_new(&c));
	r.c = c;
	return r;
}
void gopsyne_cancel_trigger(psyne_cancel_t *c) { psyne_cancel_trigger(c); }
void gopsyne_cancel_reset(psyne_cancel_t *c) { psyne_cancel_reset(c); }
void gopsyne_cancel_free(psyne_cancel_t *c) { psyne_cancel_free(c); }
