// The MultiVAC queue of the PostgreSQL backend (see postgres_store.h for the design).
#include <thread>

#include "store/postgres_store.h"
#include "store/store_errors.h"

namespace hashd {
namespace {

constexpr const char* kTables[][2] = {
    {"hashd_multivac_queue",
     "CREATE TABLE IF NOT EXISTS hashd_multivac_queue ("
     " id bigserial PRIMARY KEY,"
     " data bytea NOT NULL,"
     " enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp())"},
    // At most one row: the first processed datum.
    {"hashd_multivac_first",
     "CREATE TABLE IF NOT EXISTS hashd_multivac_first ("
     " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
     " id bigint NOT NULL,"
     " data bytea NOT NULL)"},
};

// Text columns come back as their bytes in binary format, so every result below is read
// with one binary-format call: ids and times as text, data as raw bytea.
// No row back when the queue holds its bound ($2) already. The count stops at the bound (an
// index-only scan of at most that many rows); concurrent enqueues may each see room and pass
// it by their number, at most the pool's accepting threads: a bound on the disk, not a quota.
constexpr const char* kEnqueue =
    "INSERT INTO hashd_multivac_queue (data) SELECT $1 WHERE (SELECT count(*) FROM (SELECT 1 "
    "FROM hashd_multivac_queue LIMIT $2::bigint) AS q) < $2::bigint RETURNING id::text";
constexpr const char* kClaim =
    "SELECT id::text, data, extract(epoch FROM enqueued_at)::text FROM hashd_multivac_queue "
    "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
constexpr const char* kComplete =
    "WITH dequeued AS (DELETE FROM hashd_multivac_queue WHERE id = $1::bigint)"
    " INSERT INTO hashd_multivac_first (id, data) VALUES ($1::bigint, $2)"
    " ON CONFLICT (one) DO NOTHING";
// hashd 0.1.0 kept every processed datum in hashd_multivac_processed; this version neither
// creates nor writes it, and deletes what is left one bounded batch (its own short
// transaction) at a time. An operator may drop the empty table once every worker is upgraded.
constexpr const char* kLegacyExists =
    "SELECT 1 WHERE to_regclass('hashd_multivac_processed') IS NOT NULL";
constexpr const char* kPrune =
    "DELETE FROM hashd_multivac_processed WHERE id IN"
    " (SELECT id FROM hashd_multivac_processed LIMIT $1::bigint)";
constexpr const char* kFirst = "SELECT data FROM hashd_multivac_first";
// Bounded, because /metrics runs it on every scrape: a count(*) of a large backlog scans the
// whole table and could time out exactly when the backlog alert is needed. The count stops at
// 100000 rows (the gauge then reads "at least that many"); the oldest row is one
// primary-key index probe, not a min() over every row.
constexpr const char* kStats =
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM hashd_multivac_queue LIMIT 100000) AS q)::text,"
    " extract(epoch FROM (SELECT enqueued_at FROM hashd_multivac_queue ORDER BY id LIMIT 1))::text";

std::string Cell(const PGresult* rows, int row, int column) {
    return std::string(PQgetvalue(rows, row, column),
                       static_cast<size_t>(PQgetlength(rows, row, column)));
}

}  // namespace

bool PostgresStore::CreateQueueTables(PGconn* conn) {
    for (const auto& table : kTables) {
        const char* create = table[1];
        if (Exec(conn, [&](PGconn* c) { return PQsendQuery(c, create); }).ok()) continue;
        // As for hashd_messages: a concurrent creator may have won; then the table exists.
        const std::string exists =
            std::string("SELECT 1 WHERE to_regclass('") + table[0] + "') IS NOT NULL";
        auto found = Exec(conn, [&](PGconn* c) { return PQsendQuery(c, exists.c_str()); });
        if (!found.ok() || PQntuples(found.value().get()) == 0) return false;
    }
    return true;
}

Result<std::string> PostgresStore::Enqueue(std::string_view data) {
    const std::string bound = std::to_string(max_queued_);
    auto result = Run([&](PGconn* c) {
        const char* values[] = {data.empty() ? "" : data.data(), bound.c_str()};
        const int lengths[] = {static_cast<int>(data.size()), 0};
        const int formats[] = {1, 0};
        return PQsendQueryParams(c, kEnqueue, 2, nullptr, values, lengths, formats, 1);
    });
    if (!result.ok()) return result.error();
    if (PQntuples(result.value().get()) == 0) return QueueFull(max_queued_);
    if (PQntuples(result.value().get()) != 1) return StoreUnavailable(Backend(), 1);
    return Cell(result.value().get(), 0, 0);
}

Result<std::optional<Datum>> PostgresStore::Claim(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (auto begun = Run([](PGconn* c) { return PQsendQuery(c, "BEGIN"); }); !begun.ok())
            return begun.error();
        auto claimed = Run([](PGconn* c) {
            return PQsendQueryParams(c, kClaim, 0, nullptr, nullptr, nullptr, nullptr, 1);
        });
        if (!claimed.ok()) return claimed.error();
        const PGresult* rows = claimed.value().get();
        if (PQntuples(rows) == 1) {
            Datum datum;
            datum.id = Cell(rows, 0, 0);
            datum.data = Cell(rows, 0, 1);
            datum.enqueued_at = std::strtod(Cell(rows, 0, 2).c_str(), nullptr);
            datum.receipt = datum.id;
            return std::optional<Datum>{std::move(datum)};
        }
        if (auto ended = Run([](PGconn* c) { return PQsendQuery(c, "COMMIT"); }); !ended.ok())
            return ended.error();
        if (std::chrono::steady_clock::now() + kPollInterval > deadline)
            return std::optional<Datum>{};
        std::this_thread::sleep_for(kPollInterval);
    }
}

Status PostgresStore::Complete(const Datum& datum) {
    auto done = Run([&](PGconn* c) {
        const char* values[] = {datum.id.c_str(), datum.data.empty() ? "" : datum.data.data()};
        const int lengths[] = {0, static_cast<int>(datum.data.size())};
        const int formats[] = {0, 1};
        return PQsendQueryParams(c, kComplete, 2, nullptr, values, lengths, formats, 0);
    });
    // Commit on success; on failure end the (now aborted) transaction so the connection is
    // usable again and the row's lock is released for the next claim.
    const char* end = done.ok() ? "COMMIT" : "ROLLBACK";
    auto ended = Run([&](PGconn* c) { return PQsendQuery(c, end); });
    if (!done.ok()) return done.error();
    if (!ended.ok()) return ended.error();
    return Ok{};
}

Result<std::int64_t> PostgresStore::PruneProcessed() {
    if (legacy_absent_.load()) return std::int64_t{0};
    auto exists = Run([](PGconn* c) { return PQsendQuery(c, kLegacyExists); });
    if (!exists.ok()) return exists.error();
    if (PQntuples(exists.value().get()) == 0) {
        // Created by nothing any more: absent now is absent for good.
        legacy_absent_.store(true);
        return std::int64_t{0};
    }
    const std::string batch = std::to_string(kPruneBatch);
    auto deleted = Run([&](PGconn* c) {
        const char* values[] = {batch.c_str()};
        return PQsendQueryParams(c, kPrune, 1, nullptr, values, nullptr, nullptr, 0);
    });
    if (!deleted.ok()) return deleted.error();
    return std::strtoll(PQcmdTuples(deleted.value().get()), nullptr, 10);
}

Result<std::optional<std::string>> PostgresStore::First() {
    auto result = Run([](PGconn* c) {
        return PQsendQueryParams(c, kFirst, 0, nullptr, nullptr, nullptr, nullptr, 1);
    });
    if (!result.ok()) return result.error();
    if (PQntuples(result.value().get()) == 0) return std::optional<std::string>{};
    return std::optional<std::string>{Cell(result.value().get(), 0, 0)};
}

Result<QueueStats> PostgresStore::Stats() {
    auto result = Run([](PGconn* c) {
        return PQsendQueryParams(c, kStats, 0, nullptr, nullptr, nullptr, nullptr, 1);
    });
    if (!result.ok()) return result.error();
    const PGresult* rows = result.value().get();
    if (PQntuples(rows) != 1) return StoreUnavailable(Backend(), 1);
    QueueStats stats;
    stats.depth = std::strtoll(Cell(rows, 0, 0).c_str(), nullptr, 10);
    if (!PQgetisnull(rows, 0, 1))
        stats.oldest_enqueued_at = std::strtod(Cell(rows, 0, 1).c_str(), nullptr);
    return stats;
}

}  // namespace hashd
