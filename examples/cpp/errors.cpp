// Error handling from C++: the wrapper turns codes into exceptions whose
// text holds psyne_error_string() and psyne_last_error_message().
#include "psyne_raii.hpp"

#include <iostream>
#include <vector>

template <class F>
static bool expect_error(const char *what, psyne_error_t want, F &&call)
{
    try {
        call();
    } catch (const psyne_example::error &e) {
        std::cout << what << " -> " << e.what() << '\n';
        return e.code() == want;
    }
    std::cerr << what << " unexpectedly succeeded\n";
    return false;
}

int main()
{
    try {
        psyne_example::library lib;
        bool ok = true;

        ok &= expect_error("bad URI", PSYNE_ERROR_INVALID_ARGUMENT,
                           [] { psyne_example::channel("nonsense://x", 4096); });

        psyne_example::channel ch("memory://errors-example-cpp", 4096);
        std::vector<char> payload(256, 'x');
        int sent = 0;
        ok &= expect_error("fill the ring", PSYNE_ERROR_CHANNEL_FULL, [&] {
            for (; sent < 1000; sent++)
                ch.send(payload.data(), payload.size(), 1);
        });
        std::cout << sent << " messages fit before CHANNEL_FULL\n";

        char small[10];
        std::uint32_t type = 0;
        std::size_t needed = 0;
        psyne_error_t err = psyne_receive_data(ch.get(), small, sizeof small, &needed, &type, 0);
        std::cout << "too-small buffer -> " << psyne_error_string(err) << ", needs " << needed << " bytes\n";
        ok &= err == PSYNE_ERROR_INVALID_ARGUMENT && needed == payload.size();
        std::size_t n = ch.receive(payload.data(), payload.size(), type); // still queued
        ok &= n == payload.size();

        ok &= expect_error("message larger than the ring", PSYNE_ERROR_INVALID_ARGUMENT, [&] {
            std::vector<char> huge(8192);
            ch.send(huge.data(), huge.size(), 1);
        });
        return ok ? 0 : 1;
    } catch (const psyne_example::error &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
