#pragma once
// The CPU time, resident memory and open descriptors of a process, read from /proc, for the
// pool's process_* series.

#include <cstdint>
#include <optional>
#include <string_view>

namespace hashd::metrics {

struct ProcessStats {
    std::uint64_t cpu_ticks = 0;  // utime + stime, in clock ticks (sysconf(_SC_CLK_TCK))
    std::uint64_t rss_bytes = 0;
    std::uint64_t open_fds = 0;
};

// Stats of a live process, or nullopt when /proc does not show it (another user's process
// under ProtectProc=invisible, or it just exited) or its stat line cannot be parsed.
std::optional<ProcessStats> ReadProcessStats(std::uint64_t pid);

// The CPU ticks and resident bytes of one /proc/<pid>/stat line (open_fds stays 0); nullopt
// when the line is malformed.
std::optional<ProcessStats> ParseProcStat(std::string_view stat_line, std::uint64_t page_size);

}  // namespace hashd::metrics
