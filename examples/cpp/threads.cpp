// Two std::threads over one memory:// SPSC channel: zero-copy producer
// (reserve/send, waiting for room) and zero-copy consumer (view/release).
// Usage: threads [message-count]
#include "psyne_raii.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

int main(int argc, char **argv)
{
    const std::uint64_t count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
    constexpr std::uint32_t data_type = 1, end_type = 2, timeout_ms = 10000;
    try {
        psyne_example::library lib;
        psyne_example::channel ch("memory://threads-example-cpp", 16 * 1024);
        std::atomic<bool> failed{false};

        std::thread consumer([&] {
            try {
                for (std::uint64_t expected = 0;; expected++) {
                    auto v = ch.receive_view(timeout_ms);
                    if (v.type() == end_type) {
                        failed = failed || expected != count;
                        return;
                    }
                    std::uint64_t seq = 0;
                    std::memcpy(&seq, v.data(), sizeof seq);
                    if (seq != expected) {
                        std::cerr << "got #" << seq << ", expected #" << expected << '\n';
                        failed = true;
                        return;
                    }
                }
            } catch (const psyne_example::error &e) {
                std::cerr << "consumer: " << e.what() << '\n';
                failed = true;
            }
        });
        std::thread producer([&] {
            try {
                for (std::uint64_t i = 0; i < count; i++) {
                    auto r = ch.reserve(sizeof i + i % 64, timeout_ms);
                    std::memcpy(r.data(), &i, sizeof i);
                    r.send(data_type);
                }
                ch.reserve(0, timeout_ms).send(end_type);
            } catch (const psyne_example::error &e) {
                std::cerr << "producer: " << e.what() << '\n';
                failed = true;
            }
        });
        producer.join();
        consumer.join();

        auto m = ch.metrics();
        std::cout << m.messages_received << " messages received in order; producer waited "
                  << m.send_blocks << " times for room\n";
        return failed ? 1 : 0;
    } catch (const psyne_example::error &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
