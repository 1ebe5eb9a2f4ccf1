#pragma once
// The content-addressed message store behind POST /messages and GET /messages/<digest>.
//
// Keys are SHA-256 digests of the message bytes, so a key names exactly one value: a second
// write of the same message is a no-op, retries are safe, and concurrent writers cannot race
// on a key (whichever lands first stored the same bytes). Each backend turns that into its own
// primitive: LMDB put with MDB_NOOVERWRITE, Redis SET NX, PostgreSQL ON CONFLICT DO NOTHING.
//
// Implementations are shared by all worker threads of a process and must be thread-safe.
// Every call reports failure as a value: kUnavailable "store_unavailable" (with Retry-After)
// when the backend cannot be reached, kFull "store_full" when it refuses writes for lack of
// space (the API answers 503 and 507).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/result.h"
#include "store/data_queue.h"

namespace hashd {

class MessageStore {
  public:
    virtual ~MessageStore() = default;

    // "lmdb", "redis" or "postgresql": the backend label of metrics and logs.
    virtual std::string_view Backend() const = 0;

    // True when a read never waits on I/O other than a page fault (a memory-mapped file):
    // the accepting thread then keeps its accept turn across it (timed_store.h).
    virtual bool ReadsAreLocal() const { return false; }

    // Stores `message` under `digest` (64 lower-case hex characters) unless already present.
    // Returns only once the write is as durable as the backend promises (see README).
    virtual Status Put(std::string_view digest, std::string_view message) = 0;

    // The message stored under `digest`, or nullopt when there is none.
    virtual Result<std::optional<std::string>> Get(std::string_view digest) = 0;

    // Cheap liveness probe of the backend for /readyz.
    virtual Status Check() = 0;

    // The MultiVAC queue kept in the same backend (data_queue.h), owned by this store.
    virtual DataQueue& Queue() = 0;
};

// Opens the backend named by config.store. Network backends connect lazily, so a store that is
// down at start-up does not stop the process from serving hashes (it reports 503 until it is up).
Result<std::unique_ptr<MessageStore>> OpenMessageStore(const Config& config);

}  // namespace hashd
