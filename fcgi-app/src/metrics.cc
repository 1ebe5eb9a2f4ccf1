// TEMPORARY: process-local placeholder until the shared-memory implementation lands.
#include "metrics.h"

namespace hashd {
namespace {
class LocalMetrics final : public Metrics {
  public:
    void RecordRequest(std::string_view, std::string_view, int, double) override {}
    void RecordHash(int, double) override {}
    void RecordQueueWait(double) override {}
    void RecordShed(std::string_view) override {}
    void RecordStore(std::string_view, std::string_view, bool, double) override {}
    void RecordLegacyGet() override {}
    void AddInflight(int) override {}
    void AddBusyWorkers(int) override {}
    void SetWorkers(int) override {}
    std::string Render() const override { return ""; }
};
}  // namespace
Result<std::unique_ptr<Metrics>> Metrics::Open(const Config&) {
    return std::unique_ptr<Metrics>(std::make_unique<LocalMetrics>());
}
}  // namespace hashd
