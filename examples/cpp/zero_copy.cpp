// memory:// with reservations from C++: write in place, read in place; the
// RAII guards cancel a reservation that was not sent and release a view.
#include "psyne_raii.hpp"

#include <cstdio>
#include <cstring>
#include <iostream>

int main()
{
    try {
        psyne_example::library lib;
        psyne_example::channel ch("memory://zero-copy-example-cpp", 64 * 1024);

        const void *written_at = nullptr;
        {
            auto r = ch.reserve(128);
            std::snprintf(reinterpret_cast<char *>(r.data()), r.size(), "hello in place");
            written_at = r.data();
            r.send(42);
        }
        {
            auto dropped = ch.reserve(64); // never sent: cancelled by its destructor
        }
        {
            auto v = ch.receive_view(1000);
            std::cout << "received type " << v.type() << ", " << v.size() << " bytes: \""
                      << reinterpret_cast<const char *>(v.data()) << "\"\n"
                      << "same bytes the producer wrote: " << (v.data() == written_at ? "yes" : "no") << '\n';
            if (v.type() != 42 || v.size() != 128 || v.data() != written_at)
                return 1;
        } // released here
        try {
            ch.receive_view(0);
            std::cerr << "the cancelled reservation was delivered\n";
            return 1;
        } catch (const psyne_example::error &e) {
            if (e.code() != PSYNE_ERROR_NO_MESSAGE)
                throw;
        }
        std::cout << "cancelled reservation left nothing behind\n";
        return 0;
    } catch (const psyne_example::error &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
}
