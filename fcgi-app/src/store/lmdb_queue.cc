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

}  // namespace

Result<std::unique_ptr<LmdbQueue>> LmdbQueue::Open(const std::string& directory,
                                                   std::size_t map_size) {
    auto env = LmdbEnv::Open(directory, map_size, 5, "MultiVAC queue");
    if (!env.ok()) return env.error();
    // Creating the named databases is a write; after the first start it finds them.
    LmdbTxn txn;
    if (int rc = txn.Begin(env.value()->get(), 0); rc != 0)
        return env.value()->OpenError("first transaction", rc);
    Dbis dbis;
    for (auto [name, dbi] : {std::pair{"queue", &dbis.queue}, std::pair{"meta", &dbis.meta},
                             std::pair{"keys", &dbis.keys}, std::pair{"expiry", &dbis.expiry}}) {
        if (int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi); rc != 0)
            return env.value()->OpenError(name, rc);
    }
    MDB_dbi processed = 0;
    if (int rc = mdb_dbi_open(txn.get(), "processed", 0, &processed); rc == 0)
        dbis.processed = processed;
    else if (rc != MDB_NOTFOUND)
        return env.value()->OpenError("processed", rc);
    if (int rc = txn.Commit(); rc != 0) return env.value()->OpenError("creating databases", rc);
    return std::unique_ptr<LmdbQueue>(new LmdbQueue(std::move(env).value(), dbis));
}

Result<std::string> LmdbQueue::Enqueue(std::string_view data, std::string_view key) {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, 0, lock); rc != 0) return env_->Failure(rc);
    const double now = Now();
    MDB_val idem_key = Val(key);
    if (!key.empty()) {
        // Under the write lock: a concurrent enqueue with the same key waits for this one.
        MDB_val known{};
        if (int rc = mdb_get(txn.get(), dbis_.keys, &idem_key, &known); rc == 0) {
            const std::string_view bytes = View(known);
            double expires = 0;
            if (bytes.size() > sizeof expires) {
                std::memcpy(&expires, bytes.data(), sizeof expires);
                if (expires > now) return std::string(bytes.substr(sizeof expires));
            }
        } else if (rc != MDB_NOTFOUND) {
            return env_->Failure(rc);
        }
    }
    // The bound, in the write transaction: exact, since writers are serialized.
    MDB_stat queued{};
    if (int rc = mdb_stat(txn.get(), dbis_.queue, &queued); rc != 0) return env_->Failure(rc);
    if (static_cast<std::int64_t>(queued.ms_entries) >= max_queued_) return QueueFull(max_queued_);
    // Writers are serialized by LMDB's write lock, so read-increment-write of "seq" is safe
    // across every thread and process of the VM.
    MDB_val seq_key = Val(kSeqKey);
    MDB_val seq_value{};
    std::uint64_t seq = 0;
    if (int rc = mdb_get(txn.get(), dbis_.meta, &seq_key, &seq_value); rc == 0)
        seq = SeqOf(View(seq_value));
    else if (rc != MDB_NOTFOUND)
        return env_->Failure(rc);
    ++seq;
    const std::string queue_key = SeqKey(seq);
    std::string value(sizeof now, '\0');
    std::memcpy(value.data(), &now, sizeof now);
    value.append(data);
    MDB_val k = Val(queue_key), v = Val(value), sv = Val(queue_key);
    if (int rc = mdb_put(txn.get(), dbis_.meta, &seq_key, &sv, 0); rc != 0)
        return env_->Failure(rc);
    if (int rc = mdb_put(txn.get(), dbis_.queue, &k, &v, MDB_APPEND); rc != 0)
        return env_->Failure(rc);
    const std::string id = std::to_string(seq);
    if (!key.empty()) {
        const double expires = now + static_cast<double>(idempotency_window_.count());
        if (int rc = RememberKey(txn.get(), key, id, expires, now); rc != 0)
            return env_->Failure(rc);
    }
    if (int rc = txn.Commit(); rc != 0) return env_->Failure(rc);
    return id;
}

int LmdbQueue::RememberKey(MDB_txn* txn, std::string_view key, std::string_view id, double expires,
                           double now) {
    std::string entry(sizeof expires, '\0');
    std::memcpy(entry.data(), &expires, sizeof expires);
    entry.append(id);
    MDB_val k = Val(key), e = Val(entry);
    if (int rc = mdb_put(txn, dbis_.keys, &k, &e, 0); rc != 0) return rc;
    // Rounded up, so an entry is never swept before its key has expired.
    std::string by_expiry = SeqKey(static_cast<std::uint64_t>(expires) + 1);
    by_expiry.append(key);
    MDB_val x = Val(by_expiry), empty{};
    if (int rc = mdb_put(txn, dbis_.expiry, &x, &empty, 0); rc != 0) return rc;

    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn, dbis_.expiry, &cursor); rc != 0) return rc;
    int rc = 0;
    MDB_val oldest{}, unused{};
    for (int swept = 0; swept < kSweepPerEnqueue; ++swept) {
        if ((rc = mdb_cursor_get(cursor, &oldest, &unused, MDB_FIRST)) != 0) break;
        // A copy: the deletes below may move the page the cursor's key points into.
        const std::string bytes(View(oldest));
        if (bytes.size() < 8 || static_cast<double>(SeqOf(bytes.substr(0, 8))) > now) break;
        // The key may have been sent again since (a new expiry): then only this entry goes.
        const std::string old_name = bytes.substr(8);
        MDB_val old_key = Val(old_name), known{};
        if ((rc = mdb_get(txn, dbis_.keys, &old_key, &known)) == 0) {
            double old_expires = 0;
            if (known.mv_size >= sizeof old_expires)
                std::memcpy(&old_expires, known.mv_data, sizeof old_expires);
            if (old_expires <= now && (rc = mdb_del(txn, dbis_.keys, &old_key, nullptr)) != 0)
                break;
        } else if (rc != MDB_NOTFOUND) {
            break;
        }
        if ((rc = mdb_cursor_del(cursor, 0)) != 0) break;
    }
    mdb_cursor_close(cursor);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

Result<std::optional<Datum>> LmdbQueue::Oldest() {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, MDB_RDONLY, lock); rc != 0) return env_->Failure(rc);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), dbis_.queue, &cursor); rc != 0)
        return env_->Failure(rc);
    MDB_val key{}, value{};
    const int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
    mdb_cursor_close(cursor);
    if (rc == MDB_NOTFOUND) return std::optional<Datum>{};
    if (rc != 0) return env_->Failure(rc);
    const std::string_view bytes = View(value);
    if (bytes.size() < sizeof(double)) return env_->Failure(MDB_CORRUPTED);
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
    if (int rc = env_->Begin(txn, 0, lock); rc != 0) return env_->Failure(rc);
    MDB_val first_key = Val(kFirstKey), first = Val(datum.data);
    MDB_val queue_key = Val(datum.receipt);
    // Both writes are "if absent": a second Complete of the same datum finds them done.
    if (int rc = mdb_put(txn.get(), dbis_.meta, &first_key, &first, MDB_NOOVERWRITE);
        rc != 0 && rc != MDB_KEYEXIST)
        return env_->Failure(rc);
    if (int rc = mdb_del(txn.get(), dbis_.queue, &queue_key, nullptr);
        rc != 0 && rc != MDB_NOTFOUND)
        return env_->Failure(rc);
    if (int rc = txn.Commit(); rc != 0) return env_->Failure(rc);
    return Ok{};
}

Result<std::int64_t> LmdbQueue::PruneProcessed() {
    std::unique_lock<std::mutex> pruning(prune_mutex_);
    if (!dbis_.processed) return std::int64_t{0};
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, 0, lock); rc != 0) return env_->Failure(rc);
    MDB_cursor* cursor = nullptr;
    if (int rc = mdb_cursor_open(txn.get(), *dbis_.processed, &cursor); rc != 0)
        return env_->Failure(rc);
    std::int64_t deleted = 0;
    MDB_val key{}, value{};
    int rc = 0;
    while (deleted < kPruneBatch && (rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)) == 0) {
        if ((rc = mdb_cursor_del(cursor, 0)) != 0) break;
        ++deleted;
    }
    mdb_cursor_close(cursor);
    if (rc != 0 && rc != MDB_NOTFOUND) return env_->Failure(rc);
    // Empty: drop the database itself, so that no later start looks for it again.
    const bool empty = deleted < kPruneBatch;
    if (empty) {
        if (int dropped = mdb_drop(txn.get(), *dbis_.processed, 1); dropped != 0)
            return env_->Failure(dropped);
    }
    if (int committed = txn.Commit(); committed != 0) return env_->Failure(committed);
    if (empty) dbis_.processed.reset();
    return deleted;
}

Result<std::optional<std::string>> LmdbQueue::First() {
    std::shared_lock<std::shared_mutex> lock;
    LmdbTxn txn;
    if (int rc = env_->Begin(txn, MDB_RDONLY, lock); rc != 0) return env_->Failure(rc);
    MDB_val key = Val(kFirstKey), value{};
    const int rc = mdb_get(txn.get(), dbis_.meta, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
    if (rc != 0) return env_->Failure(rc);
    return std::optional<std::string>{std::string(View(value))};
}

Result<QueueStats> LmdbQueue::Stats() {
    QueueStats stats;
    {
        std::shared_lock<std::shared_mutex> lock;
        LmdbTxn txn;
        if (int rc = env_->Begin(txn, MDB_RDONLY, lock); rc != 0) return env_->Failure(rc);
        MDB_stat st{};
        if (int rc = mdb_stat(txn.get(), dbis_.queue, &st); rc != 0) return env_->Failure(rc);
        stats.depth = static_cast<std::int64_t>(st.ms_entries);
    }
    auto oldest = Oldest();
    if (!oldest.ok()) return oldest.error();
    if (oldest.value()) stats.oldest_enqueued_at = oldest.value()->enqueued_at;
    return stats;
}

}  // namespace hashd
