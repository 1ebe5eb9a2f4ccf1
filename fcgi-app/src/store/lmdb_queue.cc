#include "store/lmdb_queue.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <thread>

#include "store/store_errors.h"

namespace hashd {
namespace {

constexpr unsigned kMaxReaders = 1024;
constexpr std::string_view kSeqKey = "seq";
constexpr std::string_view kFirstKey = "first";

MDB_val Val(std::string_view bytes) {
    return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

std::string_view View(const MDB_val& value) {
    return {static_cast<const char*>(value.mv_data), value.mv_size};
}

// Big-endian, so LMDB's byte-wise key order is numeric order.
std::string SeqKey(std::uint64_t seq) {
    std::string key(8, '\0');
    for (int i = 7; i >= 0; --i, seq >>= 8)
        key[static_cast<std::size_t>(i)] = static_cast<char>(seq & 0xff);
    return key;
}

std::uint64_t SeqOf(std::string_view key) {
    std::uint64_t seq = 0;
    for (unsigned char byte : key) seq = (seq << 8) | byte;
    return seq;
}

double Now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

ApiError OpenError(const std::string& directory, std::string_view what, int rc) {
    return {500, "store_open_failed",
            "Cannot open the LMDB MultiVAC queue in " + directory + " (" + std::string(what) +
                "): " + mdb_strerror(rc)};
}

}  // namespace

Result<std::unique_ptr<LmdbQueue>> LmdbQueue::Open(const std::string& directory,
                                                   std::size_t map_size) {
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) return OpenError(directory, "creating the directory", ec.value());
    MDB_env* raw = nullptr;
    if (int rc = mdb_env_create(&raw); rc != 0) return OpenError(directory, "create", rc);
    EnvPtr env(raw);
    if (int rc = mdb_env_set_mapsize(env.get(), map_size); rc != 0)
        return OpenError(directory, "map size", rc);
    if (int rc = mdb_env_set_maxreaders(env.get(), kMaxReaders); rc != 0)
        return OpenError(directory, "max readers", rc);
    if (int rc = mdb_env_set_maxdbs(env.get(), 3); rc != 0)
        return OpenError(directory, "max databases", rc);
    // The files hold client data: readable by hashd's user only.
    if (int rc = mdb_env_open(env.get(), directory.c_str(), MDB_NOTLS, 0600); rc != 0)
        return OpenError(directory, "open", rc);
    int stale = 0;
    mdb_reader_check(env.get(), &stale);

    // Creating the named databases is a write; after the first start it finds them.
    LmdbTxn txn;
    if (int rc = txn.Begin(env.get(), 0); rc != 0)
        return OpenError(directory, "first transaction", rc);
    Dbis dbis;
    for (auto [name, dbi] :
         {std::pair{"queue", &dbis.queue}, std::pair{"processed", &dbis.processed},
          std::pair{"meta", &dbis.meta}}) {
        if (int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi); rc != 0)
            return OpenError(directory, name, rc);
    }
    if (int rc = txn.Commit(); rc != 0) return OpenError(directory, "creating databases", rc);
    return std::unique_ptr<LmdbQueue>(new LmdbQueue(std::move(env), dbis));
}

int LmdbQueue::Begin(LmdbTxn& txn, unsigned flags, std::shared_lock<std::shared_mutex>& lock) {
    lock = std::shared_lock(resize_);
    int rc = txn.Begin(env_.get(), flags);
    if (rc != MDB_MAP_RESIZED) return rc;
    // As in LmdbStore::Begin: adopt the larger map only while no transaction is open.
    lock.unlock();
    {
        std::unique_lock exclusive(resize_);
        mdb_env_set_mapsize(env_.get(), 0);
    }
    lock.lock();
    return txn.Begin(env_.get(), flags);
}

ApiError LmdbQueue::Failure(int rc) {
    if (rc == MDB_MAP_FULL || rc == ENOSPC) return StoreFull("lmdb");
    if (rc == MDB_READERS_FULL) {
        int stale = 0;
        mdb_reader_check(env_.get(), &stale);
    }
    return StoreUnavailable("lmdb", 1, std::string("lmdb queue: ") + mdb_strerror(rc));
}

Result<std::string> LmdbQueue::Enqueue(std::string_view data) {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = Begin(txn, 0, lock); rc != 0) return Failure(rc);
    // Writers are serialized by LMDB's write lock, so read-increment-write of "seq" is safe
    // across every thread and process of the VM.
    MDB_val seq_key = Val(kSeqKey);
    MDB_val seq_value{};
    std::uint64_t seq = 0;
    if (int rc = mdb_get(txn.get(), dbis_.meta, &seq_key, &seq_value); rc == 0)
        seq = SeqOf(View(seq_value));
    else if (rc != MDB_NOTFOUND)
        return Failure(rc);
    ++seq;
    const std::string key = SeqKey(seq);
    const double now = Now();
    std::string value(sizeof now, '\0');
    std::memcpy(value.data(), &now, sizeof now);
    value.append(data);
    MDB_val k = Val(key), v = Val(value), sv = Val(key);
    if (int rc = mdb_put(txn.get(), dbis_.meta, &seq_key, &sv, 0); rc != 0) return Failure(rc);
    if (int rc = mdb_put(txn.get(), dbis_.queue, &k, &v, MDB_APPEND); rc != 0) return Failure(rc);
    if (int rc = txn.Commit(); rc != 0) return Failure(rc);
    return std::to_string(seq);
}

Result<std::optional<Datum>> LmdbQueue::Oldest() {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = Begin(txn, MDB_RDONLY, lock); rc != 0) return Failure(rc);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), dbis_.queue, &cursor); rc != 0) return Failure(rc);
    MDB_val key{}, value{};
    const int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) return std::optional<Datum>{};
    if (rc != 0) return Failure(rc);
    const std::string_view bytes = View(value);
    if (bytes.size() < sizeof(double)) return Failure(MDB_CORRUPTED);
    Datum datum;
    datum.receipt = std::string(View(key));
    datum.id = std::to_string(SeqOf(datum.receipt));
    std::memcpy(&datum.enqueued_at, bytes.data(), sizeof(double));
    datum.data = std::string(bytes.substr(sizeof(double)));
    return std::optional<Datum>{std::move(datum)};
}

Result<std::optional<Datum>> LmdbQueue::Claim(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto oldest = Oldest();
        if (!oldest.ok() || oldest.value()) return oldest;
        if (std::chrono::steady_clock::now() + kPollInterval > deadline) return oldest;
        std::this_thread::sleep_for(kPollInterval);
    }
}

Status LmdbQueue::Complete(const Datum& datum) {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = Begin(txn, 0, lock); rc != 0) return Failure(rc);
    MDB_val id = Val(datum.id), data = Val(datum.data);
    MDB_val first_key = Val(kFirstKey), first = Val(datum.data);
    MDB_val queue_key = Val(datum.receipt);
    // Each write is "if absent": a second Complete of the same datum finds all three done.
    if (int rc = mdb_put(txn.get(), dbis_.processed, &id, &data, MDB_NOOVERWRITE);
        rc != 0 && rc != MDB_KEYEXIST)
        return Failure(rc);
    if (int rc = mdb_put(txn.get(), dbis_.meta, &first_key, &first, MDB_NOOVERWRITE);
        rc != 0 && rc != MDB_KEYEXIST)
        return Failure(rc);
    if (int rc = mdb_del(txn.get(), dbis_.queue, &queue_key, nullptr);
        rc != 0 && rc != MDB_NOTFOUND)
        return Failure(rc);
    if (int rc = txn.Commit(); rc != 0) return Failure(rc);
    return Ok{};
}

Result<std::optional<std::string>> LmdbQueue::First() {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = Begin(txn, MDB_RDONLY, lock); rc != 0) return Failure(rc);
    MDB_val key = Val(kFirstKey), value{};
    const int rc = mdb_get(txn.get(), dbis_.meta, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
    if (rc != 0) return Failure(rc);
    return std::optional<std::string>{std::string(View(value))};
}

Result<QueueStats> LmdbQueue::Stats() {
    QueueStats stats;
    {
        std::shared_lock<std::shared_mutex> lock;
        LmdbTxn txn;
        if (int rc = Begin(txn, MDB_RDONLY, lock); rc != 0) return Failure(rc);
        MDB_stat st{};
        if (int rc = mdb_stat(txn.get(), dbis_.queue, &st); rc != 0) return Failure(rc);
        stats.depth = static_cast<std::int64_t>(st.ms_entries);
    }
    auto oldest = Oldest();
    if (!oldest.ok()) return oldest.error();
    if (oldest.value()) stats.oldest_enqueued_at = oldest.value()->enqueued_at;
    return stats;
}

}  // namespace hashd
