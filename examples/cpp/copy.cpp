// memory:// with the copying calls, from C++.
#include "psyne_raii.hpp"

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

int main()
{
    try {
        psyne_example::library lib;
        std::cout << "libpsyne " << psyne_version() << '\n';
        psyne_example::channel ch("memory://copy-example-cpp", 64 * 1024);

        const std::vector<std::string> words{"hello", "", "from", "C++"};
        for (std::size_t i = 0; i < words.size(); i++)
            ch.send(words[i].data(), words[i].size(), static_cast<std::uint32_t>(100 + i));

        for (std::size_t i = 0; i < words.size(); i++) {
            char buf[64];
            std::uint32_t type = 0;
            std::size_t n = ch.receive(buf, sizeof buf, type);
            std::string got(buf, n);
            std::cout << "received type " << type << ": \"" << got << "\"\n";
            if (got != words[i] || type != 100 + i)
                return 1;
        }
        auto m = ch.metrics();
        std::cout << "metrics: " << m.messages_sent << " sent, " << m.messages_received << " received\n";
        return 0;
    } catch (const psyne_example::error &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
