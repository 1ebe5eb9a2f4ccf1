#include "metrics/layout.h"

#include <algorithm>
#include <span>

namespace hashd::metrics {
namespace {

class Fingerprint {
  public:
    void Add(std::string_view text) {
        for (unsigned char c : text) Byte(c);
        Byte(0);
    }
    void Add(std::uint64_t n) {
        for (int i = 0; i < 8; ++i) Byte(static_cast<unsigned char>(n >> (8 * i)));
    }
    std::uint64_t value() const { return hash_; }

  private:
    void Byte(unsigned char c) {
        hash_ ^= c;
        hash_ *= 0x100000001b3;  // FNV-1a
    }
    std::uint64_t hash_ = 0xcbf29ce484222325;
};

}  // namespace

Layout MakeLayout(std::span<const RouteKey> routes) {
    Layout l;
    for (const RouteKey& route : routes)
        if (std::find(l.routes.begin(), l.routes.end(), route.label) == l.routes.end())
            l.routes.push_back(route.label);
    l.routes.push_back("unmatched");
    l.routes.push_back("other");
    l.declared.assign(l.routes.size() * std::size(kMethods), false);
    for (const RouteKey& route : routes)
        l.declared[IndexOf(l.routes, route.label, 0) * std::size(kMethods) +
                   MethodIndex(route.method)] = true;

    Fingerprint f;
    f.Add(std::uint64_t{kSlotWords});
    // Each family's place, named so that the fingerprint covers the layout itself.
    std::size_t at = 0;
    auto take = [&at, &f](std::string_view family, std::size_t n) {
        f.Add(family);
        f.Add(std::uint64_t{n});
        const std::size_t start = at;
        at += n;
        return start;
    };
    l.requests = take("requests", l.routes.size() * std::size(kMethods) * kStatusSlots);
    l.request_duration = take("request_duration", l.routes.size() * HistogramCells(kRequestBounds));
    l.hash_duration = take("hash_duration", kCosts * HistogramCells(kHashBounds));
    l.queue_wait = take("queue_wait", HistogramCells(kQueueBounds));
    l.shed = take("shed", std::size(kShedReasons));
    l.store_ops = take("store_ops", std::size(kBackends) * std::size(kOps) * std::size(kResults));
    l.store_duration = take("store_duration",
                            std::size(kBackends) * std::size(kOps) * HistogramCells(kStoreBounds));
    l.legacy_get = take("legacy_get", 1);
    l.cells = at;
    const std::size_t bytes = (kSlotWords + l.cells) * sizeof(std::uint64_t);
    l.slot_bytes = (bytes + 63) / 64 * 64;

    // The label values, in order: the same sizes with other values are another layout.
    for (auto r : l.routes) f.Add(r);
    for (auto m : kMethods) f.Add(m);
    for (const HttpStatus& s : kStatuses) f.Add(static_cast<std::uint64_t>(s.code));
    f.Add(std::uint64_t{kMinCost});
    f.Add(std::uint64_t{kMaxCost});
    for (auto b : kBackends) f.Add(b);
    for (auto o : kOps) f.Add(o);
    for (auto r : kResults) f.Add(r);
    for (auto s : kShedReasons) f.Add(s);
    for (std::span<const Bound> table :
         {std::span<const Bound>(kRequestBounds), std::span<const Bound>(kHashBounds),
          std::span<const Bound>(kQueueBounds), std::span<const Bound>(kStoreBounds)}) {
        for (const Bound& b : table) f.Add(b.text);
        f.Add("|");
    }
    l.fingerprint = f.value();
    return l;
}

std::size_t RouteIndex(const Layout& layout, std::string_view route) {
    return IndexOf(layout.routes, route, layout.routes.size() - 1);
}

}  // namespace hashd::metrics
