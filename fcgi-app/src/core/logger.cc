#include "core/logger.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/text.h"

namespace hashd {
namespace {

// systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to stderr; when it still
// names our stderr, the journal is listening there and native entries are better than text.
bool StderrIsJournal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (fstat(2, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

const char* LevelName(LogLevel level) {
    switch (level) {
        case LogLevel::kError:
            return "error";
        case LogLevel::kWarning:
            return "warning";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kDebug:
            return "debug";
    }
    return "info";
}

}  // namespace

Logger::Logger(LogTarget target, std::string identifier)
    : to_journal_(target == LogTarget::kJournal ||
                  (target == LogTarget::kAuto && StderrIsJournal())),
      identifier_(std::move(identifier)) {}

void Logger::Log(LogLevel level, std::string_view message,
                 std::initializer_list<LogField> fields) const {
    if (to_journal_) {
        std::vector<std::string> lines;
        lines.reserve(fields.size() + 3);
        lines.push_back("MESSAGE=" + std::string(message));
        lines.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
        lines.push_back("SYSLOG_IDENTIFIER=" + identifier_);
        for (const auto& [name, value] : fields) lines.push_back(std::string(name) + "=" + value);
        std::vector<iovec> iov;
        iov.reserve(lines.size());
        for (std::string& line : lines) iov.push_back({line.data(), line.size()});
        const int sent = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
        if (sent >= 0) return;
        LogJson(level, message, fields, -sent);
        return;
    }
    LogJson(level, message, fields, 0);
}

void Logger::LogJson(LogLevel level, std::string_view message,
                     std::initializer_list<LogField> fields, int journal_error) const {
    // Written by hand rather than through a Json::Value: one line per request, and building
    // a tree of keys for it cost more than the rest of a message read.
    std::string line;
    line.reserve(256);
    char number[32];
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto written =
        std::to_chars(number, number + sizeof(number), std::chrono::duration<double>(now).count(),
                      std::chars_format::fixed, 6);
    line += "{\"ts\":";
    line.append(number, written.ptr);
    line += ",\"level\":\"";
    line += LevelName(level);
    line += "\",\"msg\":";
    AppendJsonString(line, message);
    for (const auto& [name, value] : fields) {
        line += ',';
        AppendJsonString(line, name);
        line += ':';
        AppendJsonString(line, value);
    }
    if (journal_error != 0) {
        line += ",\"JOURNAL_ERROR\":";
        AppendJsonString(line, std::strerror(journal_error));
    }
    line += "}\n";
    // One write per line keeps lines from different threads whole.
    (void)!std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace hashd
