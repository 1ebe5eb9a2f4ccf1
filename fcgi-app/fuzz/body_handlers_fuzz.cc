// Request bodies, JSON or form, through the router into the handlers that parse them
// (/v1/hash, /v1/verify, /messages). Whatever the body, the answer is a response value (an
// exception escaping would become a 500 in the request loop), never a 500, and every error is
// the JSON error shape. The first byte picks the route and the content type.

#include <cstdint>
#include <string>

#include "api/router.h"
#include "core/json.h"
#include "fuzz_support.h"
#include "test_support.h"

namespace {

hashd::testing::Harness& TheHarness() {
    static hashd::testing::Harness* harness = [] {
        auto* h = new hashd::testing::Harness;
        h->config.cost_max = 4;  // 1 ms per hash: the fuzzer explores parsers, not bcrypt
        return h;
    }();
    return *harness;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static constexpr const char* kPaths[] = {"/v1/hash", "/v1/verify", "/messages"};
    static constexpr const char* kTypes[] = {"application/json",
                                             "application/x-www-form-urlencoded",
                                             "application/json; charset=utf-8", "text/plain"};
    hashd::Request request = hashd::testing::JsonPost(
        kPaths[data[0] % 3], std::string(reinterpret_cast<const char*>(data + 1), size - 1));
    request.content_type = kTypes[(data[0] >> 2) % 4];

    hashd::testing::Harness& h = TheHarness();
    hashd::Dispatch dispatch = hashd::RouteRequest(request, h.services);
    const hashd::Response& response = dispatch.response;
    FUZZ_CHECK(response.status != 500, "a request body caused a 500");
    FUZZ_CHECK(response.status >= 200 && response.status < 600, "status out of range");
    if (response.status >= 400) {
        auto body = hashd::ParseJsonObject(response.body);
        FUZZ_CHECK(body.ok(), "an error body is not JSON");
        FUZZ_CHECK(body.value()["error"].isString() && body.value()["err_msg"].isString(),
                   "an error body lacks error/err_msg");
    }
    if (h.store.entries.size() > 10000) h.store.entries.clear();  // bounded memory
    return 0;
}
