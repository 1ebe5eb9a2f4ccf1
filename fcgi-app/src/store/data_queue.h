#pragma once
// The durable queue behind the MultiVAC API (POST /multivac/data, GET /multivac) and the
// hashd-worker that consumes it. Every message-store backend carries one, in the same store
// the operator configured (HASHD_STORE), so a MultiVAC datum is as durable as a message:
//   LMDB        a second environment next to the messages (<dir>/multivac), one VM;
//   Redis       a reliable queue: LPUSH onto a list, BLMOVE into the consumer's own
//               processing list, removed from it only in the transaction that records the
//               result; lists of consumers that stopped heart-beating are moved back;
//   PostgreSQL  a table consumed with SELECT ... FOR UPDATE SKIP LOCKED, the row deleted in
//               the transaction that records the result.
//
// Processing a datum means recording it as "first" if no datum was processed before
// (set-if-absent), in the same atomic step as its removal from the queue (Complete). Nothing
// else of a processed datum is kept: the API serves only the first datum, and its counts are
// the queue's depth (queued data) and hashd-worker's own counter (hashd_worker_processed_total).
// So the store holds at most the backlog bound (SetMaxQueued) plus one datum, however many
// were processed (issue 21, finding 3: every processed datum used to be kept forever, until
// the disk was full). Older versions kept each one ("processed"); PruneProcessed removes what
// they left, in bounded batches. As before:
//   - delivery is at least once: a consumer killed at any point before Complete leaves the
//     datum queued (or claimed by a dead consumer, which Recover() puts back);
//   - the effect is exactly once: a datum completed twice (redelivered after a crash, or
//     claimed by two consumers during a recovery race) changes nothing the second time, and
//     the first processed datum, once set, never changes.
//
// All calls are thread-safe and report failure as values, with the same kUnavailable
// "store_unavailable" / kFull "store_full" errors as the message store (store_errors.h).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hashd {

// One claimed datum. `id` names it in logs (never `data`, which is client content).
struct Datum {
    std::string id;
    std::string data;
    double enqueued_at = 0;  // Unix time in seconds when it was queued
    std::string receipt;     // backend-private handle of the claim (Redis: the list element)
};

struct QueueStats {
    std::int64_t depth = 0;                    // data queued and not yet completed
    std::optional<double> oldest_enqueued_at;  // Unix seconds of the oldest of them
};

class DataQueue {
  public:
    virtual ~DataQueue() = default;

    // Queues `data`; returns its id once the datum is as durable as a stored message on this
    // backend (the README's "Durability" section).
    //
    // `key` ("" for none) makes the enqueue idempotent: a later Enqueue with the same key
    // within the idempotency window (SetIdempotencyWindow) queues nothing and returns the id
    // the first one got, whatever its data. The key and the datum are written in one atomic
    // step, so a retry of an enqueue whose answer was lost (by the client, nginx or a load
    // balancer) is stored once: either the first attempt committed both, or neither. A key
    // older than the window is forgotten, and the same key then queues a new datum.
    virtual Result<std::string> Enqueue(std::string_view data, std::string_view key) = 0;

    // Claims the oldest queued datum that no live consumer holds, waiting up to about `wait`
    // for one to arrive; nullopt when none came. The datum stays in the store until Complete.
    virtual Result<std::optional<Datum>> Claim(std::chrono::milliseconds wait) = 0;

    // Records `datum` as processed (and as the first processed datum if there is none yet) and
    // removes it from the queue, all in one atomic step. Idempotent.
    virtual Status Complete(const Datum& datum) = 0;

    // Puts back data claimed by consumers that are gone (Redis: processing lists whose owner
    // stopped heart-beating, including this consumer's own list after a lost connection) and
    // renews this consumer's liveness. A no-op where the store does it by itself (LMDB,
    // PostgreSQL). Consumers call it every few seconds.
    virtual Status Recover() = 0;

    // Deletes up to kPruneBatch of the processed data that hashd 0.1.0 and earlier kept (one
    // bounded transaction or script each), returning how many it deleted; 0 once none is left
    // (and on a store that never had any). hashd-worker calls it in each Recover turn, so an
    // upgraded store shrinks in the background without one giant transaction.
    static constexpr std::int64_t kPruneBatch = 1000;
    virtual Result<std::int64_t> PruneProcessed() { return std::int64_t{0}; }

    // The first datum ever processed, or nullopt while none has been.
    virtual Result<std::optional<std::string>> First() = 0;

    // How many data wait, and since when.
    virtual Result<QueueStats> Stats() = 0;

    // The most data that may wait (HASHD_MULTIVAC_MAX_QUEUED): Enqueue answers QueueFull
    // (store_errors.h) instead of queueing more. Set once, before any thread uses the queue.
    // Why a bound: each datum may be 64 KiB and is kept until processed, so with no worker
    // running (or a failing one) one client at the general rate limit filled the disk, or on
    // Redis the memory the messages share, in minutes. A refused datum was never
    // acknowledged; everything acknowledged before stays queued.
    void SetMaxQueued(std::int64_t max_queued) { max_queued_ = max_queued; }

    // How long an idempotency key is remembered (HASHD_IDEMPOTENCY_WINDOW_S). Longer than any
    // retry (nginx's and the load balancer's are seconds; a client's, minutes to hours), short
    // enough that the keys of a busy day do not outgrow the queue. Set once, before any thread
    // uses the queue.
    void SetIdempotencyWindow(std::chrono::seconds window) { idempotency_window_ = window; }

  protected:
    std::int64_t max_queued_ = 10000;
    std::chrono::seconds idempotency_window_{86400};
};

}  // namespace hashd
