#pragma once
// The MultiVAC queue of the LMDB backend: its own LMDB environment in <messages dir>/multivac
// (so the message database keeps only messages, and a backup of either is one mdb_copy),
// with four named databases:
//   queue      8-byte big-endian sequence number -> 8-byte enqueue time + the datum; keys
//              sort in arrival order, so the first key is the oldest datum;
//   meta       "seq" -> the last sequence number handed out (ids are never reused, even once
//              the queue is empty); "first" -> the first processed datum (MDB_NOOVERWRITE);
//   keys       idempotency key -> 8-byte expiry time (Unix seconds, a double) + the id its
//              enqueue got; written in the enqueue's own transaction, so a key exists exactly
//              when its datum was queued. An expired key is replaced by the next enqueue
//              with that key;
//   expiry     8-byte big-endian expiry second + idempotency key -> empty: the keys in expiry
//              order. Each keyed enqueue deletes up to kSweepPerEnqueue expired keys, so the
//              two hold about one window's keys (HASHD_IDEMPOTENCY_WINDOW_S), not every key
//              ever sent (nginx gives every request an X-Request-Id: unswept, they filled the
//              map at about 70 bytes each).
// hashd 0.1.0 also kept every processed datum in another, "processed" (decimal id -> datum);
// PruneProcessed empties it in batches and then drops it. Pages freed by deletions are reused,
// so the file stays about the size of the largest backlog (HASHD_MULTIVAC_MAX_QUEUED data).
//
// Durability is the message store's: default sync mode, a commit is on disk before Enqueue
// returns (survives kill -9 and power loss). Claim does not write: it reads the oldest key.
// Complete writes "first" if absent and deletes the queue entry in one write transaction, so
// a consumer killed before that commit leaves the datum queued, and a datum completed twice
// (two consumers on one VM) changes nothing the second time. There is no
// lease to expire and nothing for Recover() to do. LMDB lives on one VM: one hashd-worker per
// VM consumes it; the queue is not shared between VMs (use Redis or PostgreSQL for that).
//
// Consumers poll (LMDB has no blocking read): every kPollInterval while the queue is empty,
// a read-only transaction that costs microseconds and takes no lock.

#include <lmdb.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "store/data_queue.h"
#include "store/lmdb_env.h"

namespace hashd {

class LmdbQueue final : public DataQueue {
  public:
    static constexpr std::chrono::milliseconds kPollInterval{50};
    // More than the one a keyed enqueue adds, so a backlog of expired keys drains too.
    static constexpr int kSweepPerEnqueue = 4;

    // Opens (creating if absent) the environment in `directory`, which may grow to `map_size`
    // bytes. Fails with a message naming the directory.
    static Result<std::unique_ptr<LmdbQueue>> Open(const std::string& directory,
                                                   std::size_t map_size);

    Result<std::string> Enqueue(std::string_view data, std::string_view key) override;
    Result<std::optional<Datum>> Claim(std::chrono::milliseconds wait) override;
    Status Complete(const Datum& datum) override;
    Status Recover() override { return Ok{}; }
    Result<std::int64_t> PruneProcessed() override;
    Result<std::optional<std::string>> First() override;
    Result<QueueStats> Stats() override;

  private:
    struct Dbis {
        MDB_dbi queue = 0, meta = 0, keys = 0, expiry = 0;
        std::optional<MDB_dbi> processed;  // hashd 0.1.0's, until pruned
    };

    LmdbQueue(std::unique_ptr<LmdbEnv> env, Dbis dbis) : env_(std::move(env)), dbis_(dbis) {}
    // The oldest queued datum, or nullopt.
    Result<std::optional<Datum>> Oldest();
    // Within the enqueue's write transaction: remembers `key` until `expires` (Unix seconds)
    // and deletes up to kSweepPerEnqueue keys expired at `now`. An LMDB error code, or 0.
    int RememberKey(MDB_txn* txn, std::string_view key, std::string_view id, double expires,
                    double now);

    std::unique_ptr<LmdbEnv> env_;
    Dbis dbis_;
    std::mutex prune_mutex_;  // guards dbis_.processed
};

}  // namespace hashd
