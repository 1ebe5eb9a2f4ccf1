#include "store/store_errors.h"

#include <algorithm>
#include <string>

namespace hashd {

Error StoreUnavailable(std::string_view backend, int retry_after_seconds, std::string detail) {
    return {ErrorKind::kUnavailable, "store_unavailable",
            "The message store (" + std::string(backend) +
                ") is unavailable right now; retry after the Retry-After delay.",
            std::max(1, retry_after_seconds), std::move(detail)};
}

Error StoreFull(std::string_view backend) {
    return {ErrorKind::kFull, "store_full",
            "The message store (" + std::string(backend) +
                ") is full and accepts no new messages; stored messages can still be read. An "
                "operator must give it more space.",
            0};
}

Error QueueFull(std::int64_t bound) {
    return {ErrorKind::kUnavailable, "queue_full",
            "The MultiVAC queue is full (" + std::to_string(bound) +
                " data wait to be processed); this datum was not queued. Retry after the "
                "Retry-After delay.",
            5};
}

}  // namespace hashd
