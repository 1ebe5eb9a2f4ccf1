#pragma once
// The two ways a message store refuses work, as the Error values every backend returns, so a
// client sees one wording and one error code whichever backend is configured:
//   kUnavailable "store_unavailable" (with Retry-After; the API answers 503): the backend
//       cannot be reached or timed out; the request may be retried as is (writes are
//       idempotent).
//   kFull "store_full" (507): the backend refuses writes for lack of space; reads keep
//       working, and an operator must grow the store (HASHD_LMDB_MAP_SIZE, Redis maxmemory,
//       disk).
// The sentences never carry backend internals (hosts, error strings): they go to the client.

#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace hashd {

// `detail` is the backend's own reason (logged, never sent).
Error StoreUnavailable(std::string_view backend, int retry_after_seconds, std::string detail = {});
Error StoreFull(std::string_view backend);

// kUnavailable "queue_full" (with Retry-After; 503): the MultiVAC queue holds its bound of data
// (HASHD_MULTIVAC_MAX_QUEUED); the datum was not queued, and may be sent again later.
Error QueueFull(std::int64_t bound);

}  // namespace hashd
