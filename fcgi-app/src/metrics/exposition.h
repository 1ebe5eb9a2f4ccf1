#pragma once
// The Prometheus text exposition format (0.0.4): families with HELP and TYPE, samples, and
// histograms rendered from the region's non-cumulative buckets. Pure text building; it knows
// nothing of the region.

#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/layout.h"

namespace hashd::metrics {

// The shortest text that reads back as `value` ("0.25", "1e-05").
std::string FormatDouble(double value);

// `value` escaped for a label value (backslash, double quote, newline).
std::string EscapeLabel(std::string_view value);

// The sum of a histogram's buckets (+Inf included): its _count.
template <std::size_t N>
std::uint64_t HistogramCount(const std::uint64_t* cells) {
    std::uint64_t count = 0;
    for (std::size_t i = 0; i <= N; ++i) count += cells[i];
    return count;
}

// Appends lines to one exposition text. `labels` arguments are already formatted
// (`route="/v1/hash",method="POST"`), without braces, empty for none.
class Exposition {
  public:
    void Family(std::string_view name, std::string_view type, std::string_view help);
    void Sample(std::string_view name, std::string_view labels, std::string_view value);
    void Sample(std::string_view name, std::string_view labels, std::uint64_t value);
    void Sample(std::string_view name, std::string_view labels, std::int64_t value);
    void SampleSeconds(std::string_view name, std::string_view labels, double value);

    // `cells` holds N + 1 non-cumulative buckets (+Inf last) and then the sum in ns; renders
    // the cumulative _bucket lines, _sum in seconds and _count (always equal to +Inf).
    template <std::size_t N>
    void Histogram(std::string_view name, const std::string& labels, const Bound (&bounds)[N],
                   const std::uint64_t* cells) {
        const std::string prefix = labels.empty() ? "" : labels + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= N; ++i) {
            cumulative += cells[i];
            const std::string le = i < N ? std::string(bounds[i].text) : "+Inf";
            Sample(std::string(name) + "_bucket", prefix + "le=\"" + le + "\"", cumulative);
        }
        SampleSeconds(std::string(name) + "_sum", labels, static_cast<double>(cells[N + 1]) / 1e9);
        Sample(std::string(name) + "_count", labels, cumulative);
    }

    std::string Take() { return std::move(out_); }

  private:
    std::string out_;
};

}  // namespace hashd::metrics
