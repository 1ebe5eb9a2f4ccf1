#include "store/store_errors.h"

#include <algorithm>
#include <string>

namespace hashd {

ApiError StoreUnavailable(std::string_view backend, int retry_after_seconds, std::string detail) {
    return {503, "store_unavailable",
            "The message store (" + std::string(backend) +
                ") is unavailable right now; retry after the Retry-After delay.",
            std::max(1, retry_after_seconds), std::move(detail)};
}

ApiError StoreFull(std::string_view backend) {
    return {507, "store_full",
            "The message store (" + std::string(backend) +
                ") is full and accepts no new messages; stored messages can still be read. An "
                "operator must give it more space.",
            0};
}

ApiError QueueFull(std::int64_t bound) {
    return {503, "queue_full",
            "The MultiVAC queue is full (" + std::to_string(bound) +
                " data wait to be processed); this datum was not queued. Retry after the "
                "Retry-After delay.",
            5};
}

}  // namespace hashd
