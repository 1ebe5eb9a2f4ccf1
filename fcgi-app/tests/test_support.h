#pragma once
// Shared fixtures of the unit tests: a Services bundle with a recording metrics sink and an
// in-memory message store, so handlers run as plain functions.

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/router.h"
#include "api/services.h"
#include "http/http.h"

namespace hashd::testing {

class FakeMetrics final : public Metrics {
  public:
    void RecordRequest(std::string_view, std::string_view, int, double) override {}
    void RecordHash(int, double) override { ++hashes; }
    void RecordQueueWait(double) override {}
    void RecordShed(std::string_view) override {}
    void RecordStore(std::string_view, std::string_view op, bool ok, double) override {
        ok ? ++store_ok : ++store_errors;
        store_ops.emplace_back(op);
    }
    void RecordLegacyGet() override { ++legacy_gets; }
    void AddInflight(int) override {}
    void AddBusyWorkers(int) override {}
    void SetWorkers(int) override {}
    std::string Render() const override { return "hashd_test 1\n"; }

    int hashes = 0, legacy_gets = 0, store_ok = 0, store_errors = 0;
    std::vector<std::string> store_ops;  // every op recorded, in order
};

// A deque-backed MultiVAC queue with the same promises as the real ones (at-least-once
// claims, idempotent Complete), whose availability follows `down`.
class MemoryQueue final : public DataQueue {
  public:
    explicit MemoryQueue(const std::atomic<bool>& down) : down_(down) {}
    std::map<std::string, std::string> keys;  // idempotency key -> id (no expiry here)
    Result<std::string> Enqueue(std::string_view data, std::string_view key) override {
        if (down_) return Down();
        std::lock_guard lock(mutex_);
        if (!key.empty()) {
            if (auto known = keys.find(std::string(key)); known != keys.end()) return known->second;
        }
        const std::string id = std::to_string(++seq_);
        queued.push_back({id, std::string(data), 0, id});
        if (!key.empty()) keys.emplace(std::string(key), id);
        return id;
    }
    Result<std::optional<Datum>> Claim(std::chrono::milliseconds) override {
        if (down_) return Down();
        std::lock_guard lock(mutex_);
        if (queued.empty()) return std::optional<Datum>{};
        return std::optional<Datum>{queued.front()};
    }
    Status Complete(const Datum& datum) override {
        if (down_) return Down();
        std::lock_guard lock(mutex_);
        processed.try_emplace(datum.id, datum.data);
        if (!first) first = datum.data;
        std::erase_if(queued, [&](const Datum& d) { return d.id == datum.id; });
        return Ok{};
    }
    Status Recover() override { return down_ ? Status(Down()) : Status(Ok{}); }
    Result<std::optional<std::string>> First() override {
        if (down_) return Down();
        std::lock_guard lock(mutex_);
        return first;
    }
    Result<QueueStats> Stats() override {
        if (down_) return Down();
        std::lock_guard lock(mutex_);
        return QueueStats{static_cast<std::int64_t>(queued.size()), std::nullopt};
    }

    std::vector<Datum> queued;
    std::map<std::string, std::string> processed;
    std::optional<std::string> first;

  private:
    static Error Down() { return {ErrorKind::kUnavailable, "store_unavailable", "store down", 1}; }
    const std::atomic<bool>& down_;
    std::mutex mutex_;
    int seq_ = 0;
};

// A map-backed store whose availability a test can switch.
class MemoryStore final : public MessageStore {
  public:
    std::string_view Backend() const override { return "memory"; }
    Status Put(std::string_view digest, std::string_view message) override {
        if (down) return Down();
        std::lock_guard lock(mutex_);
        entries.try_emplace(std::string(digest), message);
        return Ok{};
    }
    Result<std::optional<std::string>> Get(std::string_view digest) override {
        if (down) return Down();
        std::lock_guard lock(mutex_);
        auto it = entries.find(std::string(digest));
        if (it == entries.end()) return std::optional<std::string>{};
        return std::optional<std::string>{it->second};
    }
    Status Check() override { return down ? Status(Down()) : Status(Ok{}); }
    DataQueue& Queue() override { return queue; }

    std::atomic<bool> down{false};
    std::map<std::string, std::string> entries;
    MemoryQueue queue{down};

  private:
    static Error Down() { return {ErrorKind::kUnavailable, "store_unavailable", "store down", 1}; }
    std::mutex mutex_;
};

struct Harness {
    Config config = [] {
        Config c;
        c.cost_default = 4;  // tests hash at the cheapest cost: 1 ms instead of 200
        c.cost_min = 4;
        c.cost_max = 6;
        return c;
    }();
    FakeMetrics metrics;
    MemoryStore store;
    std::atomic<bool> draining{false};
    ReadinessCache readiness{ReadinessCache::Clock::duration::zero()};
    Services services{config, store, metrics, draining, readiness};
};

inline Request JsonPost(std::string path, std::string body) {
    Request r;
    r.method = "POST";
    r.path = std::move(path);
    r.content_type = "application/json";
    r.body = std::move(body);
    r.request_id = "test-request-id";
    return r;
}

inline Request Get(std::string path) {
    Request r;
    r.method = "GET";
    r.path = std::move(path);
    r.request_id = "test-request-id";
    return r;
}

// What a client gets for `request`: the router's dispatch and the handler behind it, errors
// rendered as the JSON error body.
inline Response Serve(const Request& request, const Services& services) {
    return RouteRequest(request, services).response;
}

}  // namespace hashd::testing
