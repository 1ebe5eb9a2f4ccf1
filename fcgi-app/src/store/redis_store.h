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
// The MultiVAC queue (DataQueue, store/redis_queue.cc) lives in the same Redis, under
// hashd:multivac:*: a reliable queue. POST LPUSHes "<id>:<enqueue ms>:<datum>" onto
// hashd:multivac:queue; a consumer BLMOVEs the oldest element into its own processing list
// (hashd:multivac:processing:<host>:<pid>), and one Lua script (atomic in Redis) records the
// datum as the first if none is (SET hashd:multivac:first NX) and LREMs the element; nothing
// else of it is kept (hashd 0.1.0's hash of every processed datum, hashd:multivac:processed,
// is deleted by PruneProcessed in batches). A consumer renews hashd:multivac:alive:<id> (TTL
// kConsumerTtl) every few seconds in Recover(), which also moves back the processing lists of
// consumers whose key expired.
//
// Transport is plain TCP (hiredis 0.14 in Debian 12 has no TLS): keep Redis on a private
// network, or behind a local TLS tunnel (stunnel) on each VM.

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "store/backoff.h"
#include "store/data_queue.h"
#include "store/message_store.h"
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

// Parses `redis://[[user]:password@]host[:port][/db]`; an error names what is wrong. The user
// and password are percent-decoded (RFC 3986 user info): `%2B%2F%3D%40%3A` is `+/=@:`; a
// malformed escape is an error.
Result<RedisAddress> ParseRedisUrl(std::string_view url);

class RedisStore final : public MessageStore, public DataQueue {
  public:
    // Checks the address only; connections are made by the first requests.
    static Result<std::unique_ptr<RedisStore>> Open(std::string_view url,
                                                    std::chrono::milliseconds timeout);

    std::string_view Backend() const override { return "redis"; }
    Status Put(std::string_view digest, std::string_view message) override;
    Result<std::optional<std::string>> Get(std::string_view digest) override;
    Status Check() override;
    DataQueue& Queue() override { return *this; }

    // DataQueue (store/redis_queue.cc). Claim must not be called again before the claimed
    // datum is completed; Recover() must be called between data, never during one.
    static constexpr std::chrono::seconds kConsumerTtl{10};
    Result<std::string> Enqueue(std::string_view data, std::string_view key) override;
    Result<std::optional<Datum>> Claim(std::chrono::milliseconds wait) override;
    Status Complete(const Datum& datum) override;
    Status Recover() override;
    Result<std::int64_t> PruneProcessed() override;
    Result<std::optional<std::string>> First() override;
    Result<QueueStats> Stats() override;

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

    RedisStore(RedisAddress address, std::chrono::milliseconds timeout);
    Status Connect(Connection& connection);
    // Runs one command on this thread's connection; a reply of type REDIS_REPLY_ERROR is
    // turned into an Error too.
    Result<ReplyPtr> Command(const std::vector<std::string_view>& argv);
    // The consumers that registered in hashd:multivac:consumers (redis_queue.cc).
    Result<std::vector<std::string>> Consumers();

    RedisAddress address_;
    std::chrono::milliseconds timeout_;
    PerThread<Connection> connections_;
    std::string consumer_;  // this process's consumer name: <hostname>:<pid>
};

}  // namespace hashd
