// A thin C++17 layer over the C API, for the examples: handles are owned by
// RAII objects (destroy / cancel / release happen in destructors) and failures
// become exceptions that carry the code and the library's detail text.
// It is deliberately small; it is an example, not a supported C++ API.
#pragma once

#include <psyne.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace psyne_example {

class error : public std::runtime_error {
public:
    error(psyne_error_t code, const std::string &what)
        : std::runtime_error(what + ": " + psyne_error_string(code) + " (" + psyne_last_error_message() + ")"),
          code_(code) {}
    psyne_error_t code() const noexcept { return code_; }

private:
    psyne_error_t code_;
};

inline void check(psyne_error_t code, const char *what)
{
    if (code != PSYNE_OK)
        throw error(code, what);
}

struct channel_deleter {
    void operator()(psyne_channel_t *ch) const noexcept { psyne_channel_destroy(ch); }
};

// A zero-copy reservation: writable bytes inside the ring. Cancelled on
// destruction unless send() committed it.
class reservation {
public:
    explicit reservation(psyne_message_t *msg) : msg_(msg)
    {
        void *data = nullptr;
        check(psyne_message_get_data(msg_, &data, &size_), "psyne_message_get_data");
        data_ = static_cast<std::byte *>(data);
    }
    reservation(reservation &&o) noexcept
        : msg_(std::exchange(o.msg_, nullptr)), data_(o.data_), size_(o.size_) {}
    reservation(const reservation &) = delete;
    reservation &operator=(const reservation &) = delete;
    ~reservation()
    {
        if (msg_ != nullptr)
            psyne_message_cancel(msg_);
    }

    std::byte *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    void send(std::uint32_t type) { check(psyne_message_send(std::exchange(msg_, nullptr), type), "psyne_message_send"); }

private:
    psyne_message_t *msg_;
    std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

// A received zero-copy view: read-only bytes inside the ring, released on
// destruction.
class view {
public:
    view(psyne_message_t *msg, std::uint32_t type) : msg_(msg), type_(type)
    {
        void *data = nullptr;
        check(psyne_message_get_data(msg_, &data, &size_), "psyne_message_get_data");
        data_ = static_cast<const std::byte *>(data);
    }
    view(view &&o) noexcept
        : msg_(std::exchange(o.msg_, nullptr)), type_(o.type_), data_(o.data_), size_(o.size_) {}
    view(const view &) = delete;
    view &operator=(const view &) = delete;
    ~view()
    {
        if (msg_ != nullptr)
            psyne_message_release(msg_);
    }

    const std::byte *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::uint32_t type() const noexcept { return type_; }

private:
    psyne_message_t *msg_;
    std::uint32_t type_;
    const std::byte *data_ = nullptr;
    std::size_t size_ = 0;
};

class channel {
public:
    channel(const std::string &uri, std::size_t ring_size, int mode = PSYNE_MODE_SPSC,
            int type = PSYNE_TYPE_MULTI)
    {
        psyne_channel_t *ch = nullptr;
        check(psyne_channel_create(uri.c_str(), ring_size, mode, type, &ch), "psyne_channel_create");
        ch_.reset(ch);
    }

    psyne_channel_t *get() const noexcept { return ch_.get(); }

    void send(const void *data, std::size_t size, std::uint32_t type, std::uint32_t timeout_ms = 0)
    {
        check(timeout_ms == 0 ? psyne_send_data(get(), data, size, type)
                              : psyne_send_data_timeout(get(), data, size, type, timeout_ms),
              "send");
    }
    // Receive into `buf`; returns the message size.
    std::size_t receive(void *buf, std::size_t cap, std::uint32_t &type, std::uint32_t timeout_ms = 0)
    {
        std::size_t n = 0;
        check(psyne_receive_data(get(), buf, cap, &n, &type, timeout_ms), "psyne_receive_data");
        return n;
    }
    reservation reserve(std::size_t size, std::uint32_t timeout_ms = 0)
    {
        psyne_message_t *msg = nullptr;
        check(timeout_ms == 0 ? psyne_message_reserve(get(), size, &msg)
                              : psyne_message_reserve_timeout(get(), size, timeout_ms, &msg),
              "reserve");
        return reservation(msg);
    }
    view receive_view(std::uint32_t timeout_ms = 0)
    {
        psyne_message_t *msg = nullptr;
        std::uint32_t type = 0;
        check(psyne_message_receive_timeout(get(), timeout_ms, &msg, &type), "psyne_message_receive_timeout");
        return view(msg, type);
    }
    psyne_metrics_t metrics() const
    {
        psyne_metrics_t m{};
        check(psyne_channel_get_metrics(get(), &m), "psyne_channel_get_metrics");
        return m;
    }
    void stop() { check(psyne_channel_stop(get()), "psyne_channel_stop"); }

private:
    std::unique_ptr<psyne_channel_t, channel_deleter> ch_;
};

// psyne_init() / psyne_cleanup() for the lifetime of main().
struct library {
    library() { check(psyne_init(), "psyne_init"); }
    ~library() { psyne_cleanup(); }
    library(const library &) = delete;
    library &operator=(const library &) = delete;
};

} // namespace psyne_example
