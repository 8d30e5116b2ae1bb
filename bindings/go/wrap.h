// C wrappers around include/psyne.h used by the Go binding (see cgo.go).
#ifndef PSYNE_GO_WRAP_H
#define PSYNE_GO_WRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <psyne.h>

typedef struct { int32_t rc; char *detail; } gopsyne_result;
typedef struct { int32_t rc; char *detail; psyne_channel_t *ch; } gopsyne_create_result;
typedef struct { int32_t rc; char *detail; size_t received; uint32_t type; } gopsyne_recv_result;
typedef struct {
	int32_t rc; char *detail;
	psyne_message_t *msg; void *data; size_t size; uint32_t type;
} gopsyne_msg_result;
typedef struct { int32_t rc; char *detail; size_t value; } gopsyne_size_result;
typedef struct { int32_t rc; char *detail; bool value; } gopsyne_bool_result;
typedef struct { int32_t rc; char *detail; psyne_cancel_t *c; } gopsyne_cancel_result;
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
gopsyne_result gopsyne_send_data(psyne_channel_t *ch, const unsigned char *data, size_t size, uint32_t type);
gopsyne_result gopsyne_send_data_wait(psyne_channel_t *ch, const unsigned char *data, size_t size, uint32_t type, uint32_t timeout_ms, psyne_cancel_t *cancel);
gopsyne_recv_result gopsyne_receive_data(psyne_channel_t *ch, unsigned char *buf, size_t cap, uint32_t timeout_ms, psyne_cancel_t *cancel);
gopsyne_msg_result gopsyne_reserve(psyne_channel_t *ch, size_t size, uint32_t timeout_ms, psyne_cancel_t *cancel);
gopsyne_msg_result gopsyne_msg_receive(psyne_channel_t *ch, uint32_t timeout_ms, psyne_cancel_t *cancel);
gopsyne_result gopsyne_msg_send(psyne_message_t *msg, uint32_t type);
gopsyne_result gopsyne_msg_cancel(psyne_message_t *msg);
gopsyne_result gopsyne_msg_release(psyne_message_t *msg);
gopsyne_cancel_result gopsyne_cancel_new(void);
void gopsyne_cancel_trigger(psyne_cancel_t *c);
void gopsyne_cancel_reset(psyne_cancel_t *c);
void gopsyne_cancel_free(psyne_cancel_t *c);

#endif
