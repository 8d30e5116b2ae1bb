// C wrappers around include/psyne.h used by the Go binding (see cgo.go).
#ifndef PSYNE_GO_WRAP_H
#define PSYNE_GO_WRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <psyne.h>

// Handles that Go keeps and passes back on every message travel as
// integers: cgo checks each pointer argument for Go pointers (a run-time
// call per argument), and these are C pointers, so the check is pure cost.
typedef uintptr_t gopsyne_handle;

typedef struct { int32_t rc; char *detail; } gopsyne_result;
typedef struct { int32_t rc; char *detail; psyne_channel_t *ch; } gopsyne_create_result;
typedef struct { int32_t rc; char *detail; size_t received; uint32_t type; } gopsyne_recv_result;
// sent (the fused calls only): the first step (send, release) was done,
// so a failure is the second step's.
typedef struct {
	int32_t rc; char *detail;
	gopsyne_handle msg; void *data; size_t size; uint32_t type; bool sent;
} gopsyne_msg_result;
typedef struct { int32_t rc; char *detail; size_t value; } gopsyne_size_result;
typedef struct { int32_t rc; char *detail; bool value; } gopsyne_bool_result;
typedef struct { int32_t rc; char *detail; psyne_cancel_t *c; } gopsyne_cancel_result;
typedef struct { int32_t rc; char *detail; gopsyne_handle side; } gopsyne_side_result;
typedef struct {
	int32_t rc; char *detail;
	uint64_t messages_sent, bytes_sent, messages_received, bytes_received, send_blocks, receive_blocks;
} gopsyne_metrics_result;


gopsyne_result gopsyne_init(void);
gopsyne_create_result gopsyne_channel_create(const char *uri, size_t size, int32_t mode, int32_t type, int with_cfg, int32_t ctype, int level, size_t min_size, bool checksum);
gopsyne_result gopsyne_channel_destroy(psyne_channel_t *ch);
gopsyne_result gopsyne_channel_stop(psyne_channel_t *ch);
gopsyne_bool_result gopsyne_channel_is_stopped(psyne_channel_t *ch);
gopsyne_result gopsyne_get_uri(psyne_channel_t *ch, char *buf, size_t cap);
gopsyne_metrics_result gopsyne_get_metrics(psyne_channel_t *ch);
gopsyne_result gopsyne_enable_metrics(psyne_channel_t *ch, bool on);
gopsyne_result gopsyne_reset_metrics(psyne_channel_t *ch);
gopsyne_size_result gopsyne_buffer_size(psyne_channel_t *ch);
gopsyne_size_result gopsyne_max_message_size(psyne_channel_t *ch);
gopsyne_size_result gopsyne_mode_and_type(psyne_channel_t *ch);
// The per-message calls take the channel and the cancel token as handles.
gopsyne_result gopsyne_send_data(gopsyne_handle ch, const unsigned char *data, size_t size, uint32_t type);
gopsyne_result gopsyne_send_data_wait(gopsyne_handle ch, const unsigned char *data, size_t size, uint32_t type, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_recv_result gopsyne_receive_data(gopsyne_handle ch, unsigned char *buf, size_t cap, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_reserve(gopsyne_handle ch, size_t size, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_msg_receive(gopsyne_handle ch, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_result gopsyne_msg_send(gopsyne_handle msg, uint32_t type);
gopsyne_result gopsyne_msg_cancel(gopsyne_handle msg);
gopsyne_result gopsyne_msg_release(gopsyne_handle msg);
gopsyne_side_result gopsyne_producer_new(psyne_channel_t *ch);
gopsyne_result gopsyne_producer_free(gopsyne_handle p);
gopsyne_result gopsyne_producer_send_data(gopsyne_handle p, const unsigned char *data, size_t size, uint32_t type, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_producer_reserve(gopsyne_handle p, size_t size, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_producer_send_reserve(gopsyne_handle p, gopsyne_handle msg, uint32_t type, size_t size);
gopsyne_side_result gopsyne_consumer_new(psyne_channel_t *ch);
gopsyne_result gopsyne_consumer_free(gopsyne_handle c);
gopsyne_recv_result gopsyne_consumer_receive_data(gopsyne_handle c, unsigned char *buf, size_t cap, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_consumer_receive(gopsyne_handle c, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_msg_result gopsyne_consumer_release_receive(gopsyne_handle c, gopsyne_handle msg, uint32_t timeout_ms, gopsyne_handle cancel);
gopsyne_cancel_result gopsyne_cancel_new(void);
void gopsyne_cancel_trigger(psyne_cancel_t *c);
void gopsyne_cancel_reset(psyne_cancel_t *c);
void gopsyne_cancel_free(psyne_cancel_t *c);

#endif
