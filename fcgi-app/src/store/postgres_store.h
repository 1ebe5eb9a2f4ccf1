#pragma once
// The PostgreSQL message store (libpq): `postgresql://user:password@host:port/db?sslmode=...`
// (any libpq connection URI), for a fleet of VMs sharing one database. Messages live in
//   hashd_messages(digest text primary key, message bytea, created_at timestamptz)
// created if absent by the first connection of each process (concurrent creation by several
// processes is tolerated). bytea, not text, because a JSON string may carry U+0000, which a
// text column refuses. A write is INSERT ... ON CONFLICT (digest) DO NOTHING: a repeat or a
// concurrent write of the same message is a no-op, never a unique-violation error.
//
// Durability is the server's commit: each INSERT is its own transaction, and with the default
// synchronous_commit=on the reply comes after its WAL record is flushed on the primary (and on
// synchronous standbys, if configured). A 201 then survives a crash of hashd and of the
// database host. An operator who sets synchronous_commit=off trades the last few hundred
// milliseconds of acknowledged messages for throughput.
//
// Connections: one per worker thread (PerThread), opened lazily. Statements are unnamed
// (PQsendQueryParams: parse, bind and execute in one round trip), never named prepared
// statements, which are per server session: behind PgBouncer in transaction mode (before 1.21)
// a session's next transaction may run on another server connection, where a named statement
// does not exist or another session's already does. Parsing our few short statements each
// time costs nothing measurable (docs/persistence.md). Every step (connect, each query) uses
// libpq's non-blocking API bounded by HASHD_STORE_TIMEOUT_MS on the client side (a hung
// server or lost network cannot hold a worker thread), and statement_timeout is set to the same
// value on the server side. A connection that fails is dropped; a request on a connection that went
// stale (server restarted) reconnects and retries once, since both statements are idempotent; a
// failed connect backs off (Backoff), and requests meanwhile answer 503 with Retry-After at once.

// The MultiVAC queue (DataQueue, store/postgres_queue.cc) is two more tables created the same
// way: hashd_multivac_queue (id bigserial, data bytea, enqueued_at), consumed with
// SELECT ... ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED inside a transaction that stays open
// while the consumer works; Complete deletes the row, records the datum in
// hashd_multivac_first (one row at most) with ON CONFLICT DO NOTHING, and commits. Nothing else
// of a processed datum is kept (hashd 0.1.0's hashd_multivac_processed is pruned in batches). A
// consumer that dies mid-way loses its connection, so the server rolls the transaction back and the
// row is free again: no lease, no recovery job.

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "store/backoff.h"
#include "store/data_queue.h"
#include "store/message_store.h"
#include "store/per_thread.h"

namespace hashd {

class PostgresStore final : public MessageStore, public DataQueue {
  public:
    // Keeps the URI (validated by libpq); connections are made by the first requests.
    static Result<std::unique_ptr<PostgresStore>> Open(std::string_view url,
                                                       std::chrono::milliseconds timeout);

    std::string_view Backend() const override { return "postgresql"; }
    Status Put(std::string_view digest, std::string_view message) override;
    Result<std::optional<std::string>> Get(std::string_view digest) override;
    Status Check() override;
    DataQueue& Queue() override { return *this; }

    // DataQueue (store/postgres_queue.cc). A claim holds a transaction open on the calling
    // thread's connection until Complete: claim and complete on the same thread.
    static constexpr std::chrono::milliseconds kPollInterval{100};
    Result<std::string> Enqueue(std::string_view data) override;
    Result<std::optional<Datum>> Claim(std::chrono::milliseconds wait) override;
    Status Complete(const Datum& datum) override;
    Status Recover() override { return Ok{}; }
    Result<std::int64_t> PruneProcessed() override;
    Result<std::optional<std::string>> First() override;
    Result<QueueStats> Stats() override;

  private:
    struct ConnFinish {
        void operator()(PGconn* conn) const { PQfinish(conn); }
    };
    struct ResultClear {
        void operator()(PGresult* result) const { PQclear(result); }
    };
    using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;
    using ResultPtr = std::unique_ptr<PGresult, ResultClear>;
    struct Connection {
        ConnPtr conn;
        Backoff backoff;
    };
    // Sends one query on `conn` (a PQsend* call), returning its result once complete.
    using Send = std::function<int(PGconn*)>;

    PostgresStore(std::string url, std::chrono::milliseconds timeout)
        : url_(std::move(url)), timeout_(timeout) {}
    Status Connect(Connection& connection);
    // Creates the queue's tables if absent on `conn` (false on failure); part of Connect.
    bool CreateQueueTables(PGconn* conn);
    Result<ResultPtr> Exec(PGconn* conn, const Send& send);
    // Runs `send` on this thread's connection with reconnect, retry and backoff.
    Result<ResultPtr> Run(const Send& send);

    std::string url_;
    std::chrono::milliseconds timeout_;
    PerThread<Connection> connections_;
    std::atomic<bool> legacy_absent_{false};  // no hashd_multivac_processed left to prune
};

}  // namespace hashd
