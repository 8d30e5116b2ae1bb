/* Compiles include/psyne.h as C (gcc -std=c11 -Wall -Wextra -pedantic -Werror)
 * and touches every type, constant and function, so that a header change that
 * breaks C users fails the build. */
#include <psyne.h>
#include <psyne.h> /* the include guard works */

static void on_message(psyne_message_t *msg, uint32_t type, void *user)
{
    (void)msg;
    (void)type;
    (void)user;
}

int main(void)
{
    psyne_error_t err = PSYNE_OK;
    psyne_channel_mode_t mode = PSYNE_MODE_SPSC;
    psyne_channel_type_t type = PSYNE_TYPE_MULTI;
    psyne_compression_config_t cfg = {PSYNE_COMPRESSION_NONE, 0, 0, false};
    psyne_metrics_t metrics = {0, 0, 0, 0, 0, 0};
    psyne_receive_callback_t cb = on_message;
    psyne_channel_t *ch = NULL;
    psyne_message_t *msg = NULL;
    psyne_cancel_t *cancel = NULL;
    uint32_t timeout = PSYNE_WAIT_FOREVER;
    int codes[] = {PSYNE_ERROR_INVALID_ARGUMENT, PSYNE_ERROR_OUT_OF_MEMORY,
                   PSYNE_ERROR_CHANNEL_FULL,     PSYNE_ERROR_NO_MESSAGE,
                   PSYNE_ERROR_CHANNEL_STOPPED,  PSYNE_ERROR_UNSUPPORTED,
                   PSYNE_ERROR_IO,               PSYNE_ERROR_TIMEOUT,
                   PSYNE_ERROR_CANCELLED,        PSYNE_ERROR_UNKNOWN,
                   PSYNE_MODE_SPMC,              PSYNE_MODE_MPSC,
                   PSYNE_MODE_MPMC,              PSYNE_TYPE_SINGLE,
                   PSYNE_COMPRESSION_LZ4,        PSYNE_COMPRESSION_ZSTD,
                   PSYNE_COMPRESSION_SNAPPY};
    (void)codes;
    (void)psyne_init;
    (void)psyne_cleanup;
    (void)psyne_version;
    (void)psyne_error_string;
    (void)psyne_last_error_message;
    (void)psyne_channel_create;
    (void)psyne_channel_create_compressed;
    (void)psyne_channel_destroy;
    (void)psyne_channel_stop;
    (void)psyne_channel_is_stopped;
    (void)psyne_channel_get_uri;
    (void)psyne_channel_get_metrics;
    (void)psyne_channel_enable_metrics;
    (void)psyne_channel_reset_metrics;
    (void)psyne_channel_get_buffer_size;
    (void)psyne_channel_get_max_message_size;
    (void)psyne_channel_get_mode;
    (void)psyne_channel_get_type;
    (void)psyne_channel_set_receive_callback;
    (void)psyne_message_reserve;
    (void)psyne_message_reserve_timeout;
    (void)psyne_message_reserve_cancellable;
    (void)psyne_message_get_data;
    (void)psyne_message_send;
    (void)psyne_message_cancel;
    (void)psyne_message_receive;
    (void)psyne_message_receive_timeout;
    (void)psyne_message_receive_cancellable;
    (void)psyne_message_release;
    (void)psyne_send_data;
    (void)psyne_send_data_timeout;
    (void)psyne_send_data_cancellable;
    (void)psyne_receive_data;
    (void)psyne_receive_data_cancellable;
    (void)psyne_cancel_new;
    (void)psyne_cancel_trigger;
    (void)psyne_cancel_reset;
    (void)psyne_cancel_free;
    (void)mode;
    (void)type;
    (void)cfg;
    (void)metrics;
    (void)cb;
    (void)ch;
    (void)msg;
    (void)cancel;
    (void)timeout;
    return err;
}
