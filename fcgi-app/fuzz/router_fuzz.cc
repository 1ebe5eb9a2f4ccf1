// Method, path and body through the router: "METHOD\nPATH\nBODY". Never a 500, never an
// exception; a 405 carries Allow; a route label is one of the router's (bounded metrics).

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "api/router.h"
#include "fuzz_support.h"
#include "test_support.h"

namespace {

hashd::testing::Harness& TheHarness() {
    static hashd::testing::Harness* harness = [] {
        auto* h = new hashd::testing::Harness;
        h->config.cost_max = 4;
        return h;
    }();
    return *harness;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t first = input.find('\n');
    if (first == std::string_view::npos) return 0;
    const std::size_t second = input.find('\n', first + 1);
    hashd::Request request;
    request.method = std::string(input.substr(0, first));
    request.path = std::string(input.substr(
        first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1));
    if (second != std::string_view::npos) request.body = std::string(input.substr(second + 1));
    request.content_type = "application/json";
    request.request_id = "fuzz";

    static const std::set<std::string_view> labels = [] {
        std::set<std::string_view> s{"unmatched"};
        for (const hashd::Route& route : hashd::Routes()) s.insert(route.label);
        return s;
    }();
    hashd::testing::Harness& h = TheHarness();
    const hashd::Route* route = hashd::FindRoute(request);
    hashd::Dispatch dispatch = hashd::RouteRequest(request, h.services);
    FUZZ_CHECK(dispatch.response.status != 500, "a request caused a 500");
    FUZZ_CHECK(labels.count(dispatch.label) == 1, "a label outside the router's set");
    FUZZ_CHECK(route == nullptr || dispatch.label == route->label, "FindRoute disagrees");
    if (dispatch.response.status == 405)
        FUZZ_CHECK(dispatch.response.FindHeader("Allow") != nullptr, "405 without Allow");
    if (h.store.entries.size() > 10000) h.store.entries.clear();
    return 0;
}
