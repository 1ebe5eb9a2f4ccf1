#pragma once
// The Redis message store (hiredis): `redis://[[user]:password@]host[:port][/db]`, for a fleet
// of VMs sharing one store. Each message is one key, hashd:msg:<digest>, written with
// SET key value NX, so a repeat or a concurrent write of the same message is a no-op.
//
// Durability is the server's: a reply to SET means the write is in Redis's memory and, with
// `appendonly yes`, in the AOF; with `appendfsync everysec` (Redis's default) a crash of the
// Redis host can lose the last second of acknowledged messages, with `appendfsync always`
// none (each write is fsync'd before the reply, at a large throughput cost). Replicas are
// asynchronous. The server must run with `maxmemory-policy noeviction`: under any evicting
// policy Redis silently drops stored messages; under noeviction a full Redis refuses writes
// ("OOM"), which hashd answers with 507 store_full while reads keep working.
//
// Connections: one per worker thread (PerThread), opened lazily on the first request, so a
// Redis that is down at start-up only makes /messages answer 503. Every connect and every
// command is bounded by HASHD_STORE_TIMEOUT_MS. A connection that fails is dropped; a request
// on a connection that went stale (Redis restarted) reconnects and retries once, since SET NX
// and GET are idempotent. A -READONLY or -NOAUTH reply also drops the connection (after a
// failover it points at a demoted primary; after a restart it lost its AUTH) and the command
// is retried once on a new one, so writes recover without a restart. A failed connect backs
// off (Backoff) so a dead server is not hammered, and requests meanwhile answer 503 with
// Retry-After at once.
//
// Transport is plain TCP (hiredis 0.14 in Debian 12 has no TLS): keep Redis on a private
// network, or behind a local TLS tunnel (stunnel) on each VM.

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "message_store.h"
#include "store/backoff.h"
#include "store/per_thread.h"

namespace hashd {

// The parts of a redis:// address.
struct RedisAddress {
    std::string host;
    int port = 6379;
    int db = 0;
    std::string user;      // ACL user (Redis 6+), empty for the default user
    std::string password;  // empty: no AUTH
};

// Parses `redis://[[user]:password@]host[:port][/db]`; an error names what is wrong.
Result<RedisAddress> ParseRedisUrl(std::string_view url);

class RedisStore final : public MessageStore {
  public:
    // Checks the address only; connections are made by the first requests.
    static Result<std::unique_ptr<RedisStore>> Open(std::string_view url,
                                                    std::chrono::milliseconds timeout);

    std::string_view Backend() const override { return "redis"; }
    Status Put(std::string_view digest, std::string_view message) override;
    Result<std::optional<std::string>> Get(std::string_view digest) override;
    Status Check() override;

  private:
    struct ContextFree {
        void operator()(redisContext* context) const { redisFree(context); }
    };
    struct ReplyFree {
        void operator()(redisReply* reply) const { freeReplyObject(reply); }
    };
    using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;
    struct Connection {
        std::unique_ptr<redisContext, ContextFree> context;
        Backoff backoff;
    };

    RedisStore(RedisAddress address, std::chrono::milliseconds timeout)
        : address_(std::move(address)), timeout_(timeout) {}
    Status Connect(Connection& connection);
    // Runs one command on this thread's connection; a reply of type REDIS_REPLY_ERROR is
    // turned into an ApiError too.
    Result<ReplyPtr> Command(const std::vector<std::string_view>& argv);

    RedisAddress address_;
    std::chrono::milliseconds timeout_;
    PerThread<Connection> connections_;
};

}  // namespace hashd
