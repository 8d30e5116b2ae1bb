// Compiles include/psyne.h as C++ (g++ -std=c++17 -Wall -Wextra -pedantic
// -Werror): the extern "C" block, the typed psyne_error_t enum, the structs.
#include <psyne.h>

#include <cstdint>
#include <type_traits>

static_assert(std::is_same<std::underlying_type<psyne_error_t>::type, std::int32_t>::value,
              "psyne_error_t is an int32_t enum");
static_assert(PSYNE_ERROR_UNKNOWN == -99, "fixed value");
static_assert(PSYNE_ERROR_CANCELLED == -9, "fixed value");
static_assert(sizeof(psyne_metrics_t) == 6 * sizeof(std::uint64_t), "six counters");
static_assert(std::is_same<psyne_channel_mode_t, std::int32_t>::value, "int32_t enum values");

extern "C" void on_message(psyne_message_t *, std::uint32_t, void *) {}

int main()
{
    psyne_compression_config_t cfg{};
    cfg.type = PSYNE_COMPRESSION_NONE;
    cfg.level = 0;
    cfg.min_size_threshold = 0;
    cfg.enable_checksum = false;
    psyne_receive_callback_t cb = on_message;
    psyne_error_t (*create)(const char *, std::size_t, psyne_channel_mode_t, psyne_channel_type_t,
                            psyne_channel_t **) = psyne_channel_create;
    (void)cb;
    (void)create;
    (void)cfg;
    psyne_error_t err = PSYNE_OK;
    return err == PSYNE_OK ? 0 : 1;
}
