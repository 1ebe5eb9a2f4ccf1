// The MultiVAC queue of the Redis backend (see redis_store.h for the key layout).
#include <charconv>
#include <chrono>

#include "store/redis_store.h"
#include "store/store_errors.h"

namespace hashd {
namespace {

constexpr std::string_view kQueue = "hashd:multivac:queue";
constexpr std::string_view kSeq = "hashd:multivac:seq";
constexpr std::string_view kProcessed = "hashd:multivac:processed";  // hashd 0.1.0's
constexpr std::string_view kFirst = "hashd:multivac:first";
constexpr std::string_view kConsumers = "hashd:multivac:consumers";
// hashd:multivac:key:<idempotency key> -> the id its enqueue got, expiring (PX) after the
// idempotency window.
constexpr std::string_view kKeyPrefix = "hashd:multivac:key:";

std::string Processing(std::string_view consumer) {
    return "hashd:multivac:processing:" + std::string(consumer);
}
std::string Alive(std::string_view consumer) {
    return "hashd:multivac:alive:" + std::string(consumer);
}

// The id and the element in one step, so no id is taken without its datum being queued.
// -1 when the queue holds its bound (ARGV[3]) already: checked and pushed in one atomic step.
// With an idempotency key (ARGV[4] = "1", KEYS[3] its key) a key already set answers its id
// and queues nothing; else the key is set with the new id in the same step (ARGV[5]: ms).
constexpr std::string_view kEnqueueScript = R"(
if ARGV[4] == '1' then
  local known = redis.call('GET', KEYS[3])
  if known then return tonumber(known) end
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end
local id = redis.call('INCR', KEYS[1])
redis.call('LPUSH', KEYS[2], id .. ':' .. ARGV[1] .. ':' .. ARGV[2])
if ARGV[4] == '1' then redis.call('SET', KEYS[3], id, 'PX', ARGV[5]) end
return id)";

// Records the datum as the first if none is, and releases its claim, atomically; a second
// run (a redelivered datum) changes nothing.
constexpr std::string_view kCompleteScript = R"(
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('LREM', KEYS[2], 1, ARGV[2])
return 1)";

// One bounded batch of hashd 0.1.0's processed data (the hash kProcessed): field names only
// (HRANDFIELD without values, so a batch of 64 KiB data is not copied), deleted in the same
// script. Redis deletes the key with its last field.
constexpr std::string_view kPruneScript = R"(
local fields = redis.call('HRANDFIELD', KEYS[1], ARGV[1])
if #fields > 0 then redis.call('HDEL', KEYS[1], unpack(fields)) end
return #fields)";

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "<id>:<enqueue ms>:<datum>" -> Datum; nullopt when malformed (not written by hashd).
std::optional<Datum> ParseElement(std::string_view element) {
    const auto first = element.find(':');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = element.find(':', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    std::int64_t ms = 0;
    const std::string_view ms_text = element.substr(first + 1, second - first - 1);
    auto [end, ec] = std::from_chars(ms_text.data(), ms_text.data() + ms_text.size(), ms);
    if (ec != std::errc{} || end != ms_text.data() + ms_text.size()) return std::nullopt;
    Datum datum;
    datum.id = std::string(element.substr(0, first));
    datum.enqueued_at = static_cast<double>(ms) / 1000.0;
    datum.data = std::string(element.substr(second + 1));
    datum.receipt = std::string(element);
    return datum;
}

std::string_view Str(const redisReply& reply) {
    return {reply.str, reply.len};
}

}  // namespace

Result<std::vector<std::string>> RedisStore::Consumers() {
    auto members = Command({"SMEMBERS", kConsumers});
    if (!members.ok()) return members.error();
    std::vector<std::string> consumers;
    const redisReply& set = *members.value();
    for (std::size_t i = 0; set.type == REDIS_REPLY_ARRAY && i < set.elements; ++i)
        consumers.emplace_back(Str(*set.element[i]));
    return consumers;
}

Result<std::string> RedisStore::Enqueue(std::string_view data, std::string_view key) {
    const std::string now = std::to_string(NowMs());
    const std::string bound = std::to_string(max_queued_);
    const std::string key_name = std::string(kKeyPrefix) + std::string(key);
    const std::string window_ms =
        std::to_string(std::chrono::milliseconds(idempotency_window_).count());
    // The script is atomic, so Command's one retry on a fresh connection (a reply lost with
    // the connection) cannot queue the datum twice when a key is given.
    auto reply = Command({"EVAL", kEnqueueScript, "3", kSeq, kQueue, key_name, now, data, bound,
                          key.empty() ? "0" : "1", window_ms});
    if (!reply.ok()) return reply.error();
    if (reply.value()->type != REDIS_REPLY_INTEGER) return StoreUnavailable(Backend(), 1);
    if (reply.value()->integer < 0) return QueueFull(max_queued_);
    return std::to_string(reply.value()->integer);
}

Result<std::optional<Datum>> RedisStore::Claim(std::chrono::milliseconds wait) {
    // The block must end well inside the client's read timeout, or a quiet queue would look
    // like a dead server.
    const auto block = std::clamp(std::min(wait, timeout_ / 4), std::chrono::milliseconds(10),
                                  std::chrono::milliseconds(5000));
    const std::string seconds = std::to_string(static_cast<double>(block.count()) / 1000.0);
    const std::string processing = Processing(consumer_);
    for (;;) {
        auto reply = Command({"BLMOVE", kQueue, processing, "RIGHT", "LEFT", seconds});
        if (!reply.ok()) return reply.error();
        const redisReply& r = *reply.value();
        if (r.type == REDIS_REPLY_NIL) return std::optional<Datum>{};
        if (r.type != REDIS_REPLY_STRING) return StoreUnavailable(Backend(), 1);
        if (auto datum = ParseElement(Str(r))) return std::optional<Datum>{std::move(*datum)};
        // Not ours to interpret: set it aside rather than block the queue forever.
        if (auto dropped =
                Command({"LMOVE", processing, "hashd:multivac:malformed", "LEFT", "LEFT"});
            !dropped.ok())
            return dropped.error();
    }
}

Status RedisStore::Complete(const Datum& datum) {
    const std::string processing = Processing(consumer_);
    auto reply =
        Command({"EVAL", kCompleteScript, "2", kFirst, processing, datum.data, datum.receipt});
    if (!reply.ok()) return reply.error();
    return Ok{};
}

Result<std::int64_t> RedisStore::PruneProcessed() {
    const std::string batch = std::to_string(kPruneBatch);
    auto reply = Command({"EVAL", kPruneScript, "1", kProcessed, batch});
    if (!reply.ok()) return reply.error();
    if (reply.value()->type != REDIS_REPLY_INTEGER) return StoreUnavailable(Backend(), 1);
    return static_cast<std::int64_t>(reply.value()->integer);
}

Status RedisStore::Recover() {
    const std::string ttl_ms = std::to_string(std::chrono::milliseconds(kConsumerTtl).count());
    if (auto r = Command({"SET", Alive(consumer_), "1", "PX", ttl_ms}); !r.ok()) return r.error();
    if (auto r = Command({"SADD", kConsumers, consumer_}); !r.ok()) return r.error();
    auto consumers = Consumers();
    if (!consumers.ok()) return consumers.error();
    for (const std::string& consumer : consumers.value()) {
        // Our own list is empty between data; anything in it lost its claim with a reply that
        // never arrived (a dropped connection mid-BLMOVE).
        if (consumer != consumer_) {
            auto alive = Command({"EXISTS", Alive(consumer)});
            if (!alive.ok()) return alive.error();
            if (alive.value()->integer != 0) continue;
        }
        // Back to the consumer end of the queue: the oldest data go first again. Each LMOVE is
        // atomic, so two consumers recovering the same list cannot duplicate an element.
        const std::string list = Processing(consumer);
        for (;;) {
            auto moved = Command({"LMOVE", list, kQueue, "RIGHT", "RIGHT"});
            if (!moved.ok()) return moved.error();
            if (moved.value()->type == REDIS_REPLY_NIL) break;
        }
        if (consumer != consumer_) {
            if (auto r = Command({"SREM", kConsumers, consumer}); !r.ok()) return r.error();
        }
    }
    return Ok{};
}

Result<std::optional<std::string>> RedisStore::First() {
    auto reply = Command({"GET", kFirst});
    if (!reply.ok()) return reply.error();
    const redisReply& r = *reply.value();
    if (r.type == REDIS_REPLY_NIL) return std::optional<std::string>{};
    if (r.type != REDIS_REPLY_STRING) return StoreUnavailable(Backend(), 1);
    return std::optional<std::string>{std::string(Str(r))};
}

Result<QueueStats> RedisStore::Stats() {
    QueueStats stats;
    auto length = Command({"LLEN", kQueue});
    if (!length.ok()) return length.error();
    stats.depth = length.value()->integer;
    auto oldest = Command({"LINDEX", kQueue, "-1"});
    if (!oldest.ok()) return oldest.error();
    if (oldest.value()->type == REDIS_REPLY_STRING) {
        if (auto datum = ParseElement(Str(*oldest.value())))
            stats.oldest_enqueued_at = datum->enqueued_at;
    }
    // Claimed but not completed data are still owed: count them too.
    auto consumers = Consumers();
    if (!consumers.ok()) return consumers.error();
    for (const std::string& consumer : consumers.value()) {
        auto claimed = Command({"LLEN", Processing(consumer)});
        if (!claimed.ok()) return claimed.error();
        stats.depth += claimed.value()->integer;
    }
    return stats;
}

}  // namespace hashd
