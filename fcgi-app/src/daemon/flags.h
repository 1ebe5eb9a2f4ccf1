#pragma once
// The command-line flags both daemons share, parsed into a value before anything starts.
// hashd-fcgi and hashd-worker take settings as --name=value (core/config.h reads those) and a
// few flags that print something and exit instead of running: --help (-h), --version, and
// the ones a program opts into (hashd-fcgi's --settings-markdown, --print-defaults-file and
// --check-config FILE). help2man builds the man pages from --help and --version, so their
// text and exit code 0 are an interface. Parsing is separate from printing so that a test can
// check what each flag does without a process.

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hashd {

// A flag that prints a text on stdout and exits 0.
struct PrintFlag {
    std::string name;                   // "--settings-markdown"
    std::function<std::string()> text;  // called only when the flag is given
};

// What a program accepts besides its settings.
struct ProgramFlags {
    std::string program;                // "hashd-fcgi": the --version line and error prefix
    std::function<std::string()> help;  // the text of --help and -h
    std::vector<PrintFlag> print_flags{};
    bool check_config = false;  // accepts --check-config FILE
};

struct FlagOutcome {
    enum class Kind {
        kRun,          // no flag of ProgramFlags: run, reading the settings from the arguments
        kPrint,        // print `text` on stdout, exit 0
        kUsageError,   // print `text` on stderr, exit 2
        kCheckConfig,  // check the settings file `path`, exit 0 or 2
    };
    Kind kind = Kind::kRun;
    std::string text{};
    std::string path{};
};

// The first argument (in order) that is one of the program's flags decides; arguments that
// are none of them (settings, or anything else) are left to the settings loader, which
// rejects what it does not know. --version prints "<program> <version> (<commit>)\n".
// --check-config must be the only argument but for its FILE, else kUsageError
// "<program>: usage: <program> --check-config FILE\n". Never fails otherwise.
FlagOutcome ParseFlags(const ProgramFlags& flags, const std::vector<std::string>& args);

// For kPrint and kUsageError: writes the text where it belongs and returns the exit code
// (0, 2). nullopt for kRun and kCheckConfig, which the caller carries out.
std::optional<int> FinishPrintOrUsage(const FlagOutcome& outcome);

}  // namespace hashd
