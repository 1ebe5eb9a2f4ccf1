#include "store/lmdb_store.h"

#include <mutex>
#include <utility>

namespace hashd {
namespace {

MDB_val Val(std::string_view bytes) {
    return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

}  // namespace

Result<std::unique_ptr<LmdbStore>> LmdbStore::Open(const std::string& directory,
                                                   std::size_t map_size) {
    auto env = LmdbEnv::Open(directory, map_size, 0, "message store");
    if (!env.ok()) return env.error();
    // The unnamed database always exists, so a read-only transaction can open it (and opening
    // works even when the map is full).
    LmdbTxn txn;
    if (int rc = txn.Begin(env.value()->get(), MDB_RDONLY); rc != 0)
        return env.value()->OpenError("first transaction", rc);
    MDB_dbi dbi = 0;
    if (int rc = mdb_dbi_open(txn.get(), nullptr, 0, &dbi); rc != 0)
        return env.value()->OpenError("database", rc);
    if (int rc = txn.Commit(); rc != 0) return env.value()->OpenError("database", rc);
    auto queue = LmdbQueue::Open(directory + "/multivac", map_size);
    if (!queue.ok()) return queue.error();
    return std::unique_ptr<LmdbStore>(
        new LmdbStore(std::move(env).value(), dbi, std::move(queue).value()));
}
Status LmdbStore::Put(std::string_view digest, std::string_view message) {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;  // declared after the lock: aborted before it is released
    if (int rc = env_->Begin(txn, 0, lock); rc != 0) return env_->Failure(rc);
    MDB_val key = Val(digest);
    MDB_val value = Val(message);
    int rc = mdb_put(txn.get(), dbi_, &key, &value, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return Ok{};  // same digest, same bytes: already stored
    if (rc != 0) return env_->Failure(rc);
    if (rc = txn.Commit(); rc != 0) return env_->Failure(rc);
    return Ok{};
}

Result<std::optional<std::string>> LmdbStore::Get(std::string_view digest) {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, MDB_RDONLY, lock); rc != 0) return env_->Failure(rc);
    MDB_val key = Val(digest);
    MDB_val value{};
    int rc = mdb_get(txn.get(), dbi_, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
    if (rc != 0) return env_->Failure(rc);
    return std::optional<std::string>{
        std::string(static_cast<const char*>(value.mv_data), value.mv_size)};
}

Status LmdbStore::Check() {
    env_->ClearStaleReaders();
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, MDB_RDONLY, lock); rc != 0) return env_->Failure(rc);
    return Ok{};
}

}  // namespace hashd
