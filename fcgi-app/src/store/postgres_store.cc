#include "store/postgres_store.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/store_errors.h"

namespace hashd {
namespace {

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS hashd_messages ("
    " digest text PRIMARY KEY,"
    " message bytea NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now())";
constexpr const char* kPut =
    "INSERT INTO hashd_messages (digest, message) VALUES ($1, $2) "
    "ON CONFLICT (digest) DO NOTHING";
constexpr const char* kGet = "SELECT message FROM hashd_messages WHERE digest = $1";

using Clock = std::chrono::steady_clock;

// Waits until `conn`'s socket is ready for `events` or `deadline` passes (false).
bool WaitSocket(PGconn* conn, short events, Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fd{PQsocket(conn), events, 0};
    if (fd.fd < 0) return false;
    int rc;
    do {
        rc = poll(&fd, 1, static_cast<int>(left));
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

// SQLSTATE class 53 (insufficient resources: disk_full, out_of_memory) but not 53300
// (too_many_connections, a transient refusal): the server cannot take more data.
bool IsOutOfSpace(const PGresult* result) {
    const char* got = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    return got != nullptr && std::strncmp(got, "53", 2) == 0 && std::strcmp(got, "53300") != 0;
}

// libpq's last error on `conn`, first line only: the reason an operator needs (it names the
// host and the failure, never the password or statement parameters).
std::string ErrorText(PGconn* conn) {
    std::string text = conn != nullptr ? PQerrorMessage(conn) : "";
    text = text.substr(0, text.find('\n'));
    return text.empty() ? "no error text from libpq" : text;
}

}  // namespace

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(std::string_view url,
                                                           std::chrono::milliseconds timeout) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(std::string(url).c_str(), &error);
    if (options == nullptr) {
        // libpq's message may quote the URI, password included: do not pass it on.
        PQfreemem(error);
        return Error{ErrorKind::kInternal, "store_config_invalid",
                     "HASHD_STORE is not a valid postgresql:// connection URI (see libpq's "
                     "\"Connection URIs\")."};
    }
    PQconninfoFree(options);
    return std::unique_ptr<PostgresStore>(new PostgresStore(std::string(url), timeout));
}

Result<PostgresStore::ResultPtr> PostgresStore::Exec(PGconn* conn, const Send& send) {
    const auto deadline = Clock::now() + timeout_;
    auto down = [&] { return StoreUnavailable(Backend(), 1); };
    if (!send(conn)) return down();
    // Non-blocking mode: push the query out without ever blocking on a full socket buffer.
    for (;;) {
        const int flushed = PQflush(conn);
        if (flushed == 0) break;
        if (flushed < 0 || !WaitSocket(conn, POLLIN | POLLOUT, deadline)) return down();
        if (!PQconsumeInput(conn)) return down();
    }
    ResultPtr outcome;
    for (;;) {
        while (PQisBusy(conn)) {
            if (!WaitSocket(conn, POLLIN, deadline) || !PQconsumeInput(conn)) return down();
        }
        ResultPtr result(PQgetResult(conn));
        if (!result) break;
        // Keep the first error, else the last result.
        if (!outcome || PQresultStatus(outcome.get()) != PGRES_FATAL_ERROR)
            outcome = std::move(result);
    }
    if (!outcome) return down();
    const auto status = PQresultStatus(outcome.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return outcome;
    if (IsOutOfSpace(outcome.get())) return StoreFull(Backend());
    return down();
}

Status PostgresStore::Connect(Connection& connection) {
    const auto now = Clock::now();
    if (!connection.backoff.Ready(now))
        return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(now));
    auto fail = [&] {
        std::string reason = connection.conn ? ErrorText(connection.conn.get()) : "out of memory";
        connection.conn.reset();
        const auto failed_at = Clock::now();
        connection.backoff.Failed(failed_at);
        return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(failed_at),
                                "postgresql connect: " + reason);
    };

    // libpq's own connect_timeout (whole seconds, at least 2) only backs up the client-side
    // deadline below. The URI comes last so that its parameters override these defaults.
    const std::string connect_timeout =
        std::to_string(std::max<long>(2, (timeout_.count() + 999) / 1000));
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {connect_timeout.c_str(), "hashd", url_.c_str(), nullptr};
    connection.conn.reset(PQconnectStartParams(keys, values, /*expand_dbname=*/1));
    PGconn* conn = connection.conn.get();
    if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD) return fail();
    const auto deadline = Clock::now() + timeout_;
    for (auto polling = PGRES_POLLING_WRITING; polling != PGRES_POLLING_OK;) {
        if (polling == PGRES_POLLING_FAILED) return fail();
        const short events = polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!WaitSocket(conn, events, deadline)) return fail();
        polling = PQconnectPoll(conn);
    }
    if (PQsetnonblocking(conn, 1) != 0) return fail();
    ++connection.session;
    connection.in_claim = false;

    const std::string set_timeout = "SET statement_timeout = " + std::to_string(timeout_.count());
    if (!Exec(conn, [&](PGconn* c) { return PQsendQuery(c, set_timeout.c_str()); }).ok())
        return fail();
    // Every process's first connection makes sure the table exists. Two processes creating
    // it at once can collide on the catalog (unique_violation) or see it appear (duplicate
    // table): either way it now exists.
    auto created = Exec(conn, [](PGconn* c) { return PQsendQuery(c, kCreateTable); });
    if (!created.ok()) {
        // Exec reduced the error to a 503; look at the table itself instead.
        auto exists = Exec(conn, [](PGconn* c) {
            return PQsendQuery(c, "SELECT 1 WHERE to_regclass('hashd_messages') IS NOT NULL");
        });
        if (!exists.ok() || PQntuples(exists.value().get()) == 0) return fail();
    }
    if (!CreateQueueTables(conn)) return fail();
    return Ok{};
}

Status PostgresStore::OnSession(const std::function<bool(Connection&)>& attempt) {
    Connection& connection = connections_.Get();
    // A connection that worked before may have gone stale (server restarted): its failure
    // earns one immediate retry on a fresh connection. A fresh one that fails: back off. Only
    // a first attempt that failed fast (reset, closed) earns the retry: one that took half the
    // timeout or more met a hung server (SIGSTOPped), which would only time out again, and the
    // request must end within about HASHD_STORE_TIMEOUT_MS. (Half, not all: a timed-out poll
    // can return a little before the deadline, its milliseconds rounded down.)
    const auto started = Clock::now();
    std::string last_error;
    for (int tries = 0; tries < 2; ++tries) {
        const bool fresh = !connection.conn;
        if (fresh) {
            if (auto connected = Connect(connection); !connected.ok()) return connected.error();
        }
        if (attempt(connection)) return Ok{};
        last_error = ErrorText(connection.conn.get());
        connection.conn.reset();  // unknown state (timeout mid-query, lost server): start over
        connection.in_claim = false;
        if (fresh || Clock::now() - started >= timeout_ / 2) break;
    }
    const auto now = Clock::now();
    connection.backoff.Failed(now);
    return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(now),
                            "postgresql: " + last_error);
}

Result<PostgresStore::ResultPtr> PostgresStore::Run(const Send& send) {
    std::optional<Result<ResultPtr>> result;
    auto ran = OnSession([&](Connection& connection) {
        result = Exec(connection.conn.get(), send);
        if (result->ok()) connection.backoff.Succeeded();
        // A full server is up: its refusal is the answer, not a failed session.
        return result->ok() || result->error().kind == ErrorKind::kFull;
    });
    if (!ran.ok()) return ran.error();
    return std::move(*result);
}

Error PostgresStore::Failed(Connection& connection, const std::string& what) {
    const std::string reason = ErrorText(connection.conn.get());
    connection.conn.reset();  // the server rolls back whatever was open on it
    connection.in_claim = false;
    const auto now = Clock::now();
    connection.backoff.Failed(now);
    return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(now),
                            "postgresql: " + what + ": " + reason);
}

Status PostgresStore::Transaction(const Body& body, const bool* keep_open) {
    auto plain = [](const char* sql) { return [sql](PGconn* c) { return PQsendQuery(c, sql); }; };
    Status outcome = Ok{};
    // An attempt that returns false failed before COMMIT was sent: nothing of it was
    // committed, and OnSession may run the whole transaction again on a fresh session.
    auto ran = OnSession([&](Connection& connection) {
        PGconn* conn = connection.conn.get();
        bool step_failed = false;
        std::optional<Error> full;
        const Step step = [&](const Send& send) -> Result<ResultPtr> {
            auto result = Exec(conn, send);
            if (!result.ok()) {
                step_failed = true;
                if (result.error().kind == ErrorKind::kFull) full = result.error();
            }
            return result;
        };
        Status verdict = Ok{};
        if (step(plain("BEGIN")).ok()) verdict = body(step);
        if (step_failed && !full) return false;
        if (full || !verdict.ok()) {
            // The server is up, but out of space (507), or the body's own answer (the queue
            // is full): end the transaction, undoing everything, and give that answer.
            if (!Exec(conn, plain("ROLLBACK")).ok()) Failed(connection, "rollback");
            outcome = full ? Status(*full) : verdict;
            return true;
        }
        if (keep_open != nullptr && *keep_open) {
            connection.in_claim = true;
            connection.backoff.Succeeded();
            return true;
        }
        // Past this point the outcome may be unknown: never retried, never a success unless
        // the server said COMMIT (an aborted transaction answers ROLLBACK).
        auto committed = Exec(conn, plain("COMMIT"));
        if (committed.ok() && std::strcmp(PQcmdStatus(committed.value().get()), "COMMIT") == 0)
            connection.backoff.Succeeded();
        else
            outcome =
                Failed(connection, "COMMIT not confirmed (its outcome is unknown; not retried)");
        return true;
    });
    if (!ran.ok()) return ran.error();
    return outcome;
}

Status PostgresStore::Put(std::string_view digest, std::string_view message) {
    const std::string key(digest);
    auto result = Run([&](PGconn* c) {
        // An empty message is "" (a NULL pointer would be SQL NULL).
        const char* values[] = {key.c_str(), message.empty() ? "" : message.data()};
        const int lengths[] = {0, static_cast<int>(message.size())};
        const int formats[] = {0, 1};  // digest as text, message as raw bytea
        return PQsendQueryParams(c, kPut, 2, nullptr, values, lengths, formats, 0);
    });
    if (!result.ok()) return result.error();
    return Ok{};
}

Result<std::optional<std::string>> PostgresStore::Get(std::string_view digest) {
    const std::string key(digest);
    auto result = Run([&](PGconn* c) {
        const char* values[] = {key.c_str()};
        return PQsendQueryParams(c, kGet, 1, nullptr, values, nullptr, nullptr, /*binary=*/1);
    });
    if (!result.ok()) return result.error();
    const PGresult* rows = result.value().get();
    if (PQntuples(rows) == 0) return std::optional<std::string>{};
    return std::optional<std::string>{
        std::string(PQgetvalue(rows, 0, 0), static_cast<size_t>(PQgetlength(rows, 0, 0)))};
}

Status PostgresStore::Check() {
    auto result = Run([](PGconn* c) { return PQsendQuery(c, "SELECT 1"); });
    if (!result.ok()) return result.error();
    return Ok{};
}

}  // namespace hashd
