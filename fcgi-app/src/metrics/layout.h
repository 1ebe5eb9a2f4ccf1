#pragma once
// What the metrics count and where each count lives in a process's slot of the shared region.
//
// Cardinality. Every label value comes from a fixed table: routes as the router passes them in
// (never the raw path), methods and statuses from http_tables.h, costs 4..31, store backends and
// ops, shed reasons; anything else is counted under "other". So a slot has a fixed size (about 23
// KiB; 1.5 MiB for the default 64 slots) and a client cannot create series. Never add a label with
// client-chosen values (client addresses, digests, paths): abusive clients are found in the logs.
//
// Adding a metric: a field in Layout and one Take() line in layout.cc (the region's
// fingerprint follows by itself, so an upgraded binary replaces an old region instead of
// misreading it), a Record method in metrics.h with its body in shared_metrics.cc, and its
// lines in SharedMetrics::Render. A new label table also goes into the fingerprint.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "http/http_tables.h"
#include "metrics/metrics.h"

namespace hashd::metrics {

constexpr std::size_t kStatusSlots = std::size(kStatuses) + 1;  // + "other"
constexpr int kMinCost = 4;                                     // bcrypt's range
constexpr int kMaxCost = 31;
constexpr std::size_t kCosts = kMaxCost - kMinCost + 1;
constexpr std::string_view kBackends[] = {"lmdb", "redis", "postgresql", "other"};
// put/get: messages; enqueue/first: the MultiVAC queue (multivac_handlers.cc); check: /readyz's
// probe; stats: the queue's depth for /metrics. Every store call of the app is one of these.
constexpr std::string_view kOps[] = {"put", "get", "enqueue", "first", "check", "stats", "other"};
constexpr std::string_view kResults[] = {"ok", "error"};
// client_budget: refused because the client had used its share of hashing work
// (api/client_budget.h). client_gone: admitted, then skipped because nginx had closed the
// connection (fcgi_server.cc).
constexpr std::string_view kShedReasons[] = {"queue_deadline", "client_budget", "client_gone",
                                             "other"};

// The index of `value` in `table`, or `fallback`.
template <typename Table, typename Value>
std::size_t IndexOf(const Table& table, const Value& value, std::size_t fallback) {
    for (std::size_t i = 0; i < std::size(table); ++i)
        if (table[i] == value) return i;
    return fallback;
}

// Histogram boundaries: the number for bucketing and the exact text of its `le` label.
struct Bound {
    double seconds;
    std::string_view text;
};
// Requests: from a cached 404 (well under 1 ms) to a cost-14 hash behind a queue (seconds).
constexpr Bound kRequestBounds[] = {
    {0.001, "0.001"}, {0.0025, "0.0025"}, {0.005, "0.005"}, {0.01, "0.01"}, {0.025, "0.025"},
    {0.05, "0.05"},   {0.1, "0.1"},       {0.25, "0.25"},   {0.5, "0.5"},   {1, "1"},
    {2.5, "2.5"},     {5, "5"},           {10, "10"}};
// bcrypt doubles its work per cost step, so the buckets double too (1 ms .. 2 s): each cost
// lands in about one bucket (cost 4 ~ 1 ms, 10 ~ 55 ms, 12 ~ 220 ms, 14 ~ 880 ms), and a
// drift of one bucket means the machine hashes twice as slowly.
constexpr Bound kHashBounds[] = {{0.001, "0.001"}, {0.002, "0.002"}, {0.004, "0.004"},
                                 {0.008, "0.008"}, {0.016, "0.016"}, {0.032, "0.032"},
                                 {0.064, "0.064"}, {0.128, "0.128"}, {0.256, "0.256"},
                                 {0.512, "0.512"}, {1.024, "1.024"}, {2.048, "2.048"}};
// Queue wait: nginx's $msec has millisecond resolution; the deadline defaults to ~1-2 s.
constexpr Bound kQueueBounds[] = {
    {0.001, "0.001"}, {0.0025, "0.0025"}, {0.005, "0.005"}, {0.01, "0.01"}, {0.025, "0.025"},
    {0.05, "0.05"},   {0.1, "0.1"},       {0.25, "0.25"},   {0.5, "0.5"},   {1, "1"},
    {2, "2"},         {5, "5"},           {10, "10"}};
// Store operations: LMDB reads take microseconds, network stores a round trip or a timeout.
constexpr Bound kStoreBounds[] = {{0.0001, "0.0001"}, {0.00025, "0.00025"}, {0.0005, "0.0005"},
                                  {0.001, "0.001"},   {0.0025, "0.0025"},   {0.005, "0.005"},
                                  {0.01, "0.01"},     {0.025, "0.025"},     {0.05, "0.05"},
                                  {0.1, "0.1"},       {0.25, "0.25"},       {0.5, "0.5"},
                                  {1, "1"},           {2.5, "2.5"}};

// A histogram occupies its buckets (non-cumulative, the last one is +Inf) and then its sum in
// nanoseconds (an integer, so that it too is a plain atomic add).
template <std::size_t N>
constexpr std::size_t HistogramCells(const Bound (&)[N]) {
    return N + 2;
}

// Words at the start of each slot, before the counters: who owns the slot, and its gauges.
enum SlotWord : std::size_t {
    kPid,              // pid of the process that last claimed the slot; 0: never used
    kStartUnixNs,      // when it claimed the slot
    kStarts,           // how many processes have claimed it (counter)
    kCpuRetiredTicks,  // CPU time of the slot's earlier processes (clock ticks)
    kCpuSeenTicks,     // CPU time of its current process, as last seen by a scrape
    kInflight,         // gauges (two's complement)
    kBusy,
    kWorkers,
    kSlotWords,
};

// Where each family lives in a slot (offsets in words from the start of the counters).
struct Layout {
    std::vector<std::string_view> routes;  // router labels, then "unmatched", then "other"
    std::vector<bool> declared;            // [route][method]: a pair the router serves
    std::size_t requests = 0;              // [route][method][status]
    std::size_t request_duration = 0;      // [route] histogram
    std::size_t hash_duration = 0;         // [cost] histogram
    std::size_t queue_wait = 0;            // histogram
    std::size_t shed = 0;                  // [reason]
    std::size_t store_ops = 0;             // [backend][op][result]
    std::size_t store_duration = 0;        // [backend][op] histogram
    std::size_t legacy_get = 0;
    std::size_t cells = 0;       // counters per slot
    std::size_t slot_bytes = 0;  // whole cache lines: processes never write the same line
    // Changes whenever a table, a bucket boundary or the layout changes: a region written by
    // a binary with another fingerprint is not this binary's to read.
    std::uint64_t fingerprint = 0;
};

// The layout for `routes` (the router's, in its order) and the tables above. Every process of
// one binary computes the same layout, so they agree on the region.
Layout MakeLayout(std::span<const RouteKey> routes);

// The index of `route` in layout.routes; "other" for a label the router does not know.
std::size_t RouteIndex(const Layout& layout, std::string_view route);

}  // namespace hashd::metrics
