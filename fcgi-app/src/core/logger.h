#pragma once
// Structured logs. Under journald (stderr is the journal, or HASHD_LOG=journal) each entry goes
// through sd_journal_send with fields an operator can filter on (REQUEST_ID=, ROUTE=,
// HTTP_STATUS=, DURATION_US=); otherwise one JSON object per line on stderr, with the keys of
// Google Cloud Logging's structured logging (`severity`, `message`, `time`; a TRACE_ID field
// becomes `logging.googleapis.com/trace`), which Nomad, container runtimes and the Ops Agent
// parse without configuration. An empty TRACE_ID is left out of both.
//
// The API takes only fields the caller names, and no caller ever passes a password, a message
// body or a raw request path (the route label is logged instead): secrets cannot reach a log.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "core/config.h"

namespace hashd {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

using LogField = std::pair<std::string_view, std::string>;  // NAME (upper case), value

class Logger {
  public:
    // `identifier` is the journal's SYSLOG_IDENTIFIER (journalctl -t), the program's name.
    explicit Logger(LogTarget target, std::string identifier = "hashd-fcgi");
    // Writes one entry. An entry the journal refuses (its socket buffer full, journald
    // restarting: sd_journal_sendv fails; a missing journal it ignores by design) is written
    // to stderr as a JSON line instead, marked JOURNAL_ERROR, rather than lost.
    void Log(LogLevel level, std::string_view message,
             std::initializer_list<LogField> fields) const;

  private:
    void LogJson(LogLevel level, std::string_view message, std::initializer_list<LogField> fields,
                 int journal_error) const;

    bool to_journal_;
    std::string identifier_;
};

}  // namespace hashd
