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

// The MultiVAC queue (DataQueue, store/postgres_queue.cc) is three more tables created the same
// way: hashd_multivac_queue (id bigserial, data bytea, enqueued_at), consumed with
// SELECT ... ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED inside a transaction that stays open
// while the consumer works; Complete deletes the row, records the datum in
// hashd_multivac_first (one row at most) with ON CONFLICT DO NOTHING, and commits (the third,
// hashd_multivac_keys, is below). Nothing else
// of a processed datum is kept (hashd 0.1.0's hashd_multivac_processed is pruned in batches). A
// consumer that dies mid-way loses its connection, so the server rolls the transaction back and the
// row is free again: no lease, no recovery job.
//
// Transactions are retried whole or not at all. The one immediate retry of Run (above) is for
// single statements only; a transaction (BEGIN ... COMMIT) runs through Transaction, which
// sends every statement on one session and, when the session fails before COMMIT was sent,
// starts the whole transaction again on a fresh one (the server rolled the first back). A
// COMMIT whose reply is lost has an unknown outcome: it is never retried and never reported
// as success (503 for an enqueue, whose retry with the same idempotency key is then safe; a
// failed Complete, whose datum is redelivered if the commit did not happen, and completing a
// datum twice changes nothing). A claim's transaction lives on one session: Complete runs on
// it or not at all (a claim whose session was lost is gone: its row is free and is claimed
// again), so no lock is ever silently lost.
// Idempotency keys of enqueues: hashd_multivac_keys (key text primary key, id bigint,
// expires_at timestamptz), written in the enqueue's transaction; a conflicting insert waits
// for a concurrent one with the same key to commit or roll back, so one key queues one datum.
// Expired keys are replaced by the next enqueue with that key and deleted a few at a time by
// later enqueues.

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
    Result<std::string> Enqueue(std::string_view data, std::string_view key) override;
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
        // Counts this thread's sessions: a claim names the session its transaction lives on.
        std::uint64_t session = 0;
        bool in_claim = false;  // a claim's transaction is open on `conn`
    };
    // Sends one query on `conn` (a PQsend* call), returning its result once complete.
    using Send = std::function<int(PGconn*)>;
    // One statement of a transaction, on the transaction's session, never retried alone.
    using Step = std::function<Result<ResultPtr>(const Send&)>;
    // What a transaction's body decided: kCommit, or an error to answer after a ROLLBACK.
    // A failed Step makes the whole transaction fail (and maybe retry); the body just returns.
    using Body = std::function<Status(const Step&)>;

    PostgresStore(std::string url, std::chrono::milliseconds timeout)
        : url_(std::move(url)), timeout_(timeout) {}
    Status Connect(Connection& connection);
    // Creates the queue's tables if absent on `conn` (false on failure); part of Connect.
    bool CreateQueueTables(PGconn* conn);
    Result<ResultPtr> Exec(PGconn* conn, const Send& send);
    // The retry rule of Run and Transaction: runs `attempt` on this thread's session (opened
    // first when there is none); `attempt` returns false when the session failed, and is run
    // once more on a fresh session only when a session that worked before failed fast.
    Status OnSession(const std::function<bool(Connection&)>& attempt);
    // Runs `send` on this thread's connection with reconnect, retry and backoff.
    Result<ResultPtr> Run(const Send& send);
    // BEGIN, `body`, COMMIT on one session of this thread. A session failing before COMMIT
    // was sent reruns the whole transaction once on a fresh session (Run's rule); a COMMIT
    // without a confirmed reply is a StoreUnavailable, never retried. With `keep_open` the
    // transaction stays open when `*keep_open` is true after the body ran (Claim's).
    Status Transaction(const Body& body, const bool* keep_open = nullptr);
    // Drops this thread's connection after a failure, backing off; the 503 to answer.
    Error Failed(Connection& connection, const std::string& what);

    std::string url_;
    std::chrono::milliseconds timeout_;
    PerThread<Connection> connections_;
    std::atomic<bool> legacy_absent_{false};  // no hashd_multivac_processed left to prune
};

}  // namespace hashd
