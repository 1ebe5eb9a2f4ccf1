#include "core/logger.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
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

// Cloud Logging's LogSeverity names.
const char* SeverityName(LogLevel level) {
    switch (level) {
        case LogLevel::kError:
            return "ERROR";
        case LogLevel::kWarning:
            return "WARNING";
        case LogLevel::kInfo:
            return "INFO";
        case LogLevel::kDebug:
            return "DEBUG";
    }
    return "INFO";
}

// Now as RFC 3339 in UTC with microseconds ("2026-12-02T14:40:00.123456Z"), what Cloud
// Logging reads from `time`.
void AppendTime(std::string& line) {
    const auto now = std::chrono::system_clock::now();
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[40];
    const std::size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(text + n, sizeof(text) - n, ".%06lldZ", static_cast<long long>(micros % 1000000));
    line += text;
}

// A request without a trace id logs no TRACE_ID at all (journalctl TRACE_ID= matches none),
// one on an open route no CLIENT_ID.
bool Omitted(std::string_view field, std::string_view value) {
    return value.empty() && (field == "TRACE_ID" || field == "CLIENT_ID");
}

// The JSON key of a field: Cloud Logging's own for the trace id, the field's name otherwise.
std::string_view JsonKey(std::string_view field) {
    return field == "TRACE_ID" ? std::string_view("logging.googleapis.com/trace") : field;
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
        for (const auto& [name, value] : fields)
            if (!Omitted(name, value)) lines.push_back(std::string(name) + "=" + value);
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
    line += "{\"time\":\"";
    AppendTime(line);
    line += "\",\"severity\":\"";
    line += SeverityName(level);
    line += "\",\"message\":";
    AppendJsonString(line, message);
    for (const auto& [name, value] : fields) {
        if (Omitted(name, value)) continue;
        line += ',';
        AppendJsonString(line, JsonKey(name));
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
