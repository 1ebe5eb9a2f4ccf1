#include "daemon/flags.h"

#include <cstdio>

#include "core/build_info.h"

namespace hashd {

FlagOutcome ParseFlags(const ProgramFlags& flags, const std::vector<std::string>& args) {
    using Kind = FlagOutcome::Kind;
    for (const std::string& arg : args) {
        if (arg == "--help" || arg == "-h") return {Kind::kPrint, flags.help()};
        for (const PrintFlag& flag : flags.print_flags)
            if (arg == flag.name) return {Kind::kPrint, flag.text()};
        if (flags.check_config && arg == "--check-config") {
            if (args.size() != 2 || args[0] != "--check-config")
                return {Kind::kUsageError,
                        flags.program + ": usage: " + flags.program + " --check-config FILE\n"};
            return {Kind::kCheckConfig, {}, args[1]};
        }
        if (arg == "--version")
            return {Kind::kPrint,
                    flags.program + " " + kVersion + " (" + std::string(kCommit) + ")\n"};
    }
    return {};
}

std::optional<int> FinishPrintOrUsage(const FlagOutcome& outcome) {
    switch (outcome.kind) {
        case FlagOutcome::Kind::kPrint:
            std::fputs(outcome.text.c_str(), stdout);
            return 0;
        case FlagOutcome::Kind::kUsageError:
            std::fputs(outcome.text.c_str(), stderr);
            return 2;
        case FlagOutcome::Kind::kRun:
        case FlagOutcome::Kind::kCheckConfig:
            break;
    }
    return std::nullopt;
}

}  // namespace hashd
