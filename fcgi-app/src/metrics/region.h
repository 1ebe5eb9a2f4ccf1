#pragma once
// The shared region: one file that every hashd-fcgi process of the VM maps, a header and then
// one slot of counters per process. Opening it creates or replaces it when needed and claims
// this process's slot; the design and its trade-offs are described in region.cc.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "metrics/layout.h"

namespace hashd::metrics {

// The first bytes of the region file.
struct RegionHeader {
    std::uint64_t magic;
    std::uint64_t version;
    std::uint64_t fingerprint;  // Layout::fingerprint of the binary that created it
    std::uint64_t slot_count;
    std::uint64_t slot_bytes;
    std::uint64_t total_bytes;
};
constexpr std::size_t kHeaderBytes = 4096;  // keeps slot 1 page- and cache-line-aligned
static_assert(sizeof(RegionHeader) <= kHeaderBytes);

// The header this binary writes for a region of `slot_count` slots laid out as `layout`.
RegionHeader ExpectedHeader(const Layout& layout, std::size_t slot_count);

// Whether `header`, read from a file of `file_size` bytes, describes a region laid out as
// `layout` that has a slot for `instance` (1-based), so that mapping header.total_bytes and
// indexing header.slot_count slots stays inside the file.
bool HeaderUsable(const Layout& layout, const RegionHeader& header, std::uint64_t file_size,
                  int instance);

class Region {
  public:
    // Maps `path` (creating or replacing it when it is missing or not laid out as `layout`,
    // with room for max(slots, instance) processes) and claims the slot of `instance`.
    // Fails (kInternal, "metrics_unavailable") when the file cannot be created, locked or mapped,
    // and
    // ("metrics_slot_taken") when another live process holds the slot for ~3 s.
    static Result<std::unique_ptr<Region>> Open(const Layout& layout, const std::string& path,
                                                int instance, int slots);

    ~Region();  // unmaps the region and releases the slot's lock
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;

    std::size_t slot_count() const { return slot_count_; }
    std::size_t own_slot() const { return own_; }

    // Atomic views of a slot's words and counters; `slot` < slot_count().
    std::atomic_ref<std::uint64_t> Word(std::size_t slot, SlotWord word) const {
        return std::atomic_ref<std::uint64_t>(SlotBase(slot)[word]);
    }
    std::atomic_ref<std::uint64_t> Cell(std::size_t slot, std::size_t cell) const {
        return std::atomic_ref<std::uint64_t>(SlotBase(slot)[kSlotWords + cell]);
    }

    // True while a process holds the slot's lock (this one included).
    bool Live(std::size_t slot) const;

  private:
    Region(int fd, void* base, std::size_t bytes, std::size_t slot_count, std::size_t slot_bytes,
           std::size_t own);
    std::uint64_t* SlotBase(std::size_t slot) const {
        return reinterpret_cast<std::uint64_t*>(base_ + kHeaderBytes + slot * slot_bytes_);
    }

    int fd_;
    unsigned char* base_;
    std::size_t bytes_;
    std::size_t slot_count_;
    std::size_t slot_bytes_;
    std::size_t own_;
};

}  // namespace hashd::metrics
