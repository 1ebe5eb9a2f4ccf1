// Store addresses (HASHD_STORE): the redis:// parser and the PostgreSQL one (libpq's
// conninfo parser behind PostgresStore::Open, which does not connect). An operator's typo
// must be an error value, never a crash; an accepted Redis address is a usable one.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "fuzz_support.h"
#include "store/postgres_store.h"
#include "store/redis_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string with_scheme = "redis://" + std::string(text);
    for (std::string_view url : {text, std::string_view(with_scheme)}) {
        auto address = hashd::ParseRedisUrl(url);
        if (address.ok()) {
            FUZZ_CHECK(!address.value().host.empty(), "accepted an address without a host");
            FUZZ_CHECK(address.value().port >= 1 && address.value().port <= 65535, "bad port");
            FUZZ_CHECK(address.value().db >= 0, "negative database");
        } else {
            FUZZ_CHECK(address.error().code == "store_config_invalid", "unexpected error code");
        }
    }
    const std::string postgres = "postgresql://" + std::string(text);
    auto store = hashd::PostgresStore::Open(postgres, std::chrono::milliseconds(100));
    if (!store.ok()) FUZZ_CHECK(!store.error().code.empty(), "an error without a code");
    return 0;
}
