// The MultiVAC queue of the PostgreSQL backend (see postgres_store.h for the design).
#include <cstring>
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
    // Idempotency keys of enqueues (postgres_store.h); id 0 while its enqueue is in flight.
    {"hashd_multivac_keys",
     "CREATE TABLE IF NOT EXISTS hashd_multivac_keys ("
     " key text PRIMARY KEY,"
     " id bigint NOT NULL,"
     " expires_at timestamptz NOT NULL)"},
    {"hashd_multivac_keys_expires_at",
     "CREATE INDEX IF NOT EXISTS hashd_multivac_keys_expires_at"
     " ON hashd_multivac_keys (expires_at)"},
};

// Text columns come back as their bytes in binary format, so every result below is read
// with one binary-format call: ids and times as text, data as raw bytea.
// No row back when the queue holds its bound ($2) already. The count stops at the bound (an
// index-only scan of at most that many rows); concurrent enqueues may each see room and pass
// it by their number, at most the pool's accepting threads: a bound on the disk, not a quota.
constexpr const char* kEnqueue =
    "INSERT INTO hashd_multivac_queue (data) SELECT $1 WHERE (SELECT count(*) FROM (SELECT 1 "
    "FROM hashd_multivac_queue LIMIT $2::bigint) AS q) < $2::bigint RETURNING id::text";
// The idempotency keys' statements (postgres_store.h), as SQL text.
// The enqueue, recording its id under the key the transaction took ($3).
constexpr const char* kEnqueueKeyed = R"(
WITH queued AS (
  INSERT INTO hashd_multivac_queue (data) SELECT $1
  WHERE (SELECT count(*) FROM (SELECT 1 FROM hashd_multivac_queue LIMIT $2::bigint) AS q)
        < $2::bigint
  RETURNING id)
UPDATE hashd_multivac_keys SET id = queued.id FROM queued WHERE key = $3
RETURNING queued.id::text)";
// A row back: this transaction holds the key ($1), new or expired. None: a live key, committed
// by another enqueue (a concurrent one with the same key is waited for).
constexpr const char* kTakeKey = R"(
INSERT INTO hashd_multivac_keys (key, id, expires_at)
VALUES ($1, 0, clock_timestamp() + $2::bigint * interval '1 second')
ON CONFLICT (key) DO UPDATE SET id = 0, expires_at = EXCLUDED.expires_at
WHERE hashd_multivac_keys.expires_at <= clock_timestamp()
RETURNING 1)";
constexpr const char* kKnownKey = R"(SELECT id::text FROM hashd_multivac_keys WHERE key = $1)";
// A few expired keys per keyed enqueue keep the table at about one window of keys.
constexpr const char* kSweepKeys = R"(
DELETE FROM hashd_multivac_keys WHERE key IN (
  SELECT key FROM hashd_multivac_keys WHERE expires_at <= clock_timestamp()
  ORDER BY expires_at LIMIT 8 FOR UPDATE SKIP LOCKED))";
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

Result<std::string> PostgresStore::Enqueue(std::string_view data, std::string_view key) {
    const std::string bound = std::to_string(max_queued_);
    const std::string window = std::to_string(idempotency_window_.count());
    const std::string key_text(key);
    std::string id;
    // One transaction, retried whole: a lost session before COMMIT committed nothing, and a
    // COMMIT without a reply is a 503 (the client's retry with the same key is then safe).
    auto done = Transaction([&](const Step& step) -> Status {
        if (!key.empty()) {
            const char* values[] = {key_text.c_str(), window.c_str()};
            auto taken = step([&](PGconn* c) {
                return PQsendQueryParams(c, kTakeKey, 2, nullptr, values, nullptr, nullptr, 0);
            });
            if (!taken.ok()) return taken.error();
            if (PQntuples(taken.value().get()) == 0) {
                auto known = step([&](PGconn* c) {
                    return PQsendQueryParams(c, kKnownKey, 1, nullptr, values, nullptr, nullptr, 1);
                });
                if (!known.ok()) return known.error();
                if (PQntuples(known.value().get()) != 1) return StoreUnavailable(Backend(), 1);
                id = Cell(known.value().get(), 0, 0);
                return Ok{};
            }
            auto swept = step([](PGconn* c) {
                return PQsendQueryParams(c, kSweepKeys, 0, nullptr, nullptr, nullptr, nullptr, 0);
            });
            if (!swept.ok()) return swept.error();
        }
        auto queued = step([&](PGconn* c) {
            const char* values[] = {data.empty() ? "" : data.data(), bound.c_str(),
                                    key_text.c_str()};
            const int lengths[] = {static_cast<int>(data.size()), 0, 0};
            const int formats[] = {1, 0, 0};
            return key.empty()
                       ? PQsendQueryParams(c, kEnqueue, 2, nullptr, values, lengths, formats, 1)
                       : PQsendQueryParams(c, kEnqueueKeyed, 3, nullptr, values, lengths, formats,
                                           1);
        });
        if (!queued.ok()) return queued.error();
        if (PQntuples(queued.value().get()) == 0) return QueueFull(max_queued_);
        if (PQntuples(queued.value().get()) != 1) return StoreUnavailable(Backend(), 1);
        id = Cell(queued.value().get(), 0, 0);
        return Ok{};
    });
    if (!done.ok()) return done.error();
    return id;
}

Result<std::optional<Datum>> PostgresStore::Claim(std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    Connection& connection = connections_.Get();
    // A claim never completed (the caller gave up on it): release its row first.
    if (connection.conn && connection.in_claim) {
        connection.in_claim = false;
        if (!Exec(connection.conn.get(), [](PGconn* c) { return PQsendQuery(c, "ROLLBACK"); }).ok())
            connection.conn.reset();
    }
    for (;;) {
        std::optional<Datum> found;
        bool keep_open = false;
        // BEGIN and the claim are one transaction, retried whole; with a row it stays open
        // (holding the row's lock) until Complete, on this very session.
        auto claimed = Transaction(
            [&](const Step& step) -> Status {
                found.reset();
                auto rows = step([](PGconn* c) {
                    return PQsendQueryParams(c, kClaim, 0, nullptr, nullptr, nullptr, nullptr, 1);
                });
                if (!rows.ok()) return rows.error();
                const PGresult* row = rows.value().get();
                keep_open = PQntuples(row) == 1;
                if (keep_open) {
                    Datum datum;
                    datum.id = Cell(row, 0, 0);
                    datum.data = Cell(row, 0, 1);
                    datum.enqueued_at = std::strtod(Cell(row, 0, 2).c_str(), nullptr);
                    found = std::move(datum);
                }
                return Ok{};
            },
            &keep_open);
        if (!claimed.ok()) return claimed.error();
        if (found) {
            // The session the lock lives on: Complete refuses any other.
            found->receipt = std::to_string(connections_.Get().session);
            return found;
        }
        if (std::chrono::steady_clock::now() + kPollInterval > deadline)
            return std::optional<Datum>{};
        std::this_thread::sleep_for(kPollInterval);
    }
}

Status PostgresStore::Complete(const Datum& datum) {
    Connection& connection = connections_.Get();
    // The claim's lock went with its session (the server rolled it back and the row is free
    // again, for this consumer or another): completing it on a new session would be a lone
    // statement of a lost transaction. Refuse; the datum is claimed again.
    if (!connection.conn || !connection.in_claim ||
        datum.receipt != std::to_string(connection.session))
        return StoreUnavailable(Backend(), 1,
                                "postgresql: the claim's session was lost; the datum is queued "
                                "again");
    connection.in_claim = false;
    PGconn* conn = connection.conn.get();
    auto done = Exec(conn, [&](PGconn* c) {
        const char* values[] = {datum.id.c_str(), datum.data.empty() ? "" : datum.data.data()};
        const int lengths[] = {0, static_cast<int>(datum.data.size())};
        const int formats[] = {0, 1};
        return PQsendQueryParams(c, kComplete, 2, nullptr, values, lengths, formats, 0);
    });
    if (!done.ok()) {
        if (done.error().kind == ErrorKind::kFull &&
            Exec(conn, [](PGconn* c) { return PQsendQuery(c, "ROLLBACK"); }).ok())
            return done.error();
        return Failed(connection, "complete");
    }
    // Not retried: a COMMIT without a confirmed reply may or may not have happened. Either
    // way nothing is lost (not committed: the row is free and redelivered) and nothing is
    // doubled (Complete is idempotent), but it is not reported as done.
    auto committed = Exec(conn, [](PGconn* c) { return PQsendQuery(c, "COMMIT"); });
    if (!committed.ok() || std::strcmp(PQcmdStatus(committed.value().get()), "COMMIT") != 0)
        return Failed(connection, "COMMIT of a completion not confirmed (outcome unknown)");
    connection.backoff.Succeeded();
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
