#include "metrics/process_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string>
#include <vector>

namespace hashd::metrics {
namespace {

std::optional<std::uint64_t> ParseNumber(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::optional<ProcessStats> ParseProcStat(std::string_view stat, std::uint64_t page_size) {
    // The command name (field 2) may contain spaces: fields are counted after its ")".
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string_view::npos) return std::nullopt;
    std::vector<std::string_view> after;
    std::string_view rest = stat.substr(paren + 1);
    while (!rest.empty()) {
        const std::size_t start = rest.find_first_not_of(" \n");
        if (start == std::string_view::npos) break;
        rest.remove_prefix(start);
        const std::size_t end = std::min(rest.find_first_of(" \n"), rest.size());
        after.push_back(rest.substr(0, end));
        rest.remove_prefix(end);
    }
    if (after.size() < 22) return std::nullopt;
    // after[0] is field 3 (state): utime is field 14, stime 15, rss (pages) 24.
    const auto utime = ParseNumber(after[11]), stime = ParseNumber(after[12]);
    const auto rss_pages = ParseNumber(after[21]);
    if (!utime || !stime || !rss_pages) return std::nullopt;
    ProcessStats stats;
    stats.cpu_ticks = *utime + *stime;
    stats.rss_bytes = *rss_pages * page_size;
    return stats;
}

std::optional<ProcessStats> ReadProcessStats(std::uint64_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream stat_file(dir + "/stat");
    std::string line;
    if (!std::getline(stat_file, line)) return std::nullopt;
    std::optional<ProcessStats> stats =
        ParseProcStat(line, static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));
    if (!stats) return std::nullopt;
    if (DIR* fds = opendir((dir + "/fd").c_str())) {
        while (const dirent* entry = readdir(fds))
            if (entry->d_name[0] != '.') ++stats->open_fds;
        closedir(fds);
        // Listing our own fds counts the directory stream's descriptor too.
        if (pid == static_cast<std::uint64_t>(getpid()) && stats->open_fds > 0) --stats->open_fds;
    }
    return stats;
}

}  // namespace hashd::metrics
