// OpenMessageStore: the one place that maps HASHD_STORE to a backend.
#include <chrono>

#include "store/lmdb_store.h"
#include "store/message_store.h"
#include "store/postgres_store.h"
#include "store/redis_store.h"

namespace hashd {
namespace {

template <typename Store>
Result<std::unique_ptr<MessageStore>> Upcast(Result<std::unique_ptr<Store>> opened) {
    if (!opened.ok()) return opened.error();
    return std::unique_ptr<MessageStore>(std::move(opened).value());
}

Result<std::unique_ptr<MessageStore>> OpenBackend(const Config& config) {
    const std::string_view store = config.store;
    const std::chrono::milliseconds timeout(config.store_timeout_ms);
    if (store.starts_with("lmdb:")) {
        const std::string path(store.substr(5));
        if (path.empty())
            return Error{ErrorKind::kInternal, "store_config_invalid",
                         "HASHD_STORE=lmdb: needs a directory, e.g. lmdb:/var/lib/hashd/messages"};
        return Upcast(LmdbStore::Open(path, config.lmdb_map_size));
    }
    if (store.starts_with("redis://")) return Upcast(RedisStore::Open(store, timeout));
    if (store.starts_with("postgresql://") || store.starts_with("postgres://"))
        return Upcast(PostgresStore::Open(store, timeout));
    return Error{ErrorKind::kInternal, "store_config_invalid",
                 "HASHD_STORE must be lmdb:PATH, redis://HOST:PORT/DB or postgresql://..."};
}

}  // namespace

Result<std::unique_ptr<MessageStore>> OpenMessageStore(const Config& config) {
    auto store = OpenBackend(config);
    if (store.ok()) {
        store.value()->Queue().SetMaxQueued(config.multivac_max_queued);
        store.value()->Queue().SetIdempotencyWindow(
            std::chrono::seconds(config.idempotency_window_s));
    }
    return store;
}

}  // namespace hashd
