// The metrics region's header, as another process or a stale file may have left it: a
// header HeaderUsable accepts describes a region that lies entirely inside the file and has
// a slot for the instance, with no arithmetic overflow on the way.

#include <cstdint>
#include <cstring>

#include "api/router.h"
#include "fuzz_support.h"
#include "metrics/layout.h"
#include "metrics/region.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using hashd::metrics::RegionHeader;
    static const hashd::metrics::Layout layout = hashd::metrics::MakeLayout(hashd::RouteKeys());
    if (size < sizeof(RegionHeader) + sizeof(std::uint64_t) + 2) return 0;
    RegionHeader header;
    std::memcpy(&header, data, sizeof(header));
    std::uint64_t file_size;
    std::memcpy(&file_size, data + sizeof(header), sizeof(file_size));
    const int instance = static_cast<std::int8_t>(data[sizeof(header) + sizeof(file_size)]);
    // Half of the inputs start from a valid header, so the fuzzer reaches the size checks.
    if (data[sizeof(header) + sizeof(file_size) + 1] & 1) {
        const RegionHeader valid = hashd::metrics::ExpectedHeader(layout, 1);
        header.magic = valid.magic;
        header.version = valid.version;
        header.fingerprint = valid.fingerprint;
        header.slot_bytes = valid.slot_bytes;
    }
    if (!hashd::metrics::HeaderUsable(layout, header, file_size, instance)) return 0;
    unsigned __int128 total =
        static_cast<unsigned __int128>(header.slot_count) * header.slot_bytes +
        hashd::metrics::kHeaderBytes;
    FUZZ_CHECK(total == header.total_bytes, "total_bytes is not header + slots");
    FUZZ_CHECK(total <= file_size, "the region extends past the file");
    FUZZ_CHECK(instance >= 1 && static_cast<std::uint64_t>(instance) <= header.slot_count,
               "no slot for the instance");
    FUZZ_CHECK(header.slot_bytes == layout.slot_bytes, "foreign layout");
    return 0;
}
