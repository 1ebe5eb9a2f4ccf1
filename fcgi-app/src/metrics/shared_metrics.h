#pragma once
// The Metrics implementation over the shared region: Record* add to this process's slot,
// Render() sums every slot into the pool's exposition. See shared_metrics.cc for what the
// pool's series mean when processes die and restart.

#include <memory>
#include <string>
#include <string_view>

#include "metrics/layout.h"
#include "metrics/metrics.h"
#include "metrics/region.h"

namespace hashd::metrics {

class SharedMetrics final : public Metrics {
  public:
    // Takes over the claimed slot of `region` (opened with `layout`): its counters stay, its
    // gauges start from zero.
    // `store_backend` is the index in kBackends of HASHD_STORE's backend (or past the end).
    SharedMetrics(Layout layout, std::unique_ptr<Region> region, std::size_t store_backend);
    ~SharedMetrics() override;

    void RecordRequest(std::string_view route, std::string_view method, int status,
                       double seconds) override;
    void RecordHash(int cost, double seconds) override;
    void RecordQueueWait(double seconds) override;
    void RecordShed(std::string_view reason) override;
    void RecordStore(std::string_view backend, std::string_view op, bool ok,
                     double seconds) override;
    void RecordLegacyGet() override;
    void AddInflight(int delta) override;
    void AddBusyWorkers(int delta) override;
    void SetWorkers(int count) override;
    std::string Render() const override;

  private:
    void Add(std::size_t cell, std::uint64_t n = 1);
    void AddGauge(SlotWord word, int delta);
    template <std::size_t N>
    void Observe(std::size_t cell, const Bound (&bounds)[N], double seconds);

    const Layout layout_;
    std::unique_ptr<Region> region_;
    std::size_t own_;
    std::size_t store_backend_;
};

}  // namespace hashd::metrics
