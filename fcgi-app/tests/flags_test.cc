#include "daemon/flags.h"

#include <gtest/gtest.h>

#include <string>

#include "core/build_info.h"

namespace hashd {
namespace {

using Kind = FlagOutcome::Kind;

struct Fixture {
    int help_calls = 0;
    ProgramFlags flags{
        .program = "hashd-fcgi",
        .help = [this] { return ++help_calls, std::string("Usage: hashd-fcgi\n"); },
        .print_flags = {{"--settings-markdown", [] { return std::string("| table |\n"); }}},
        .check_config = true,
    };
};

TEST(Flags, VersionNamesTheProgramVersionAndCommit) {
    Fixture f;
    const FlagOutcome outcome = ParseFlags(f.flags, {"--version"});
    EXPECT_EQ(outcome.kind, Kind::kPrint);
    EXPECT_EQ(outcome.text, std::string("hashd-fcgi ") + kVersion + " (" + kCommit + ")\n");
}

TEST(Flags, HelpAndItsShortFormPrintTheHelpTextOnlyWhenAsked) {
    Fixture f;
    EXPECT_EQ(ParseFlags(f.flags, {"--threads=4"}).kind, Kind::kRun);
    EXPECT_EQ(f.help_calls, 0);
    for (const char* flag : {"--help", "-h"}) {
        const FlagOutcome outcome = ParseFlags(f.flags, {flag});
        EXPECT_EQ(outcome.kind, Kind::kPrint) << flag;
        EXPECT_EQ(outcome.text, "Usage: hashd-fcgi\n") << flag;
    }
    EXPECT_EQ(f.help_calls, 2);
}

TEST(Flags, TheFirstFlagGivenDecidesAndSettingsAreLeftToTheLoader) {
    Fixture f;
    EXPECT_EQ(ParseFlags(f.flags, {"--threads=2", "--help"}).text, "Usage: hashd-fcgi\n");
    EXPECT_EQ(ParseFlags(f.flags, {"--version", "--help"}).text.rfind("hashd-fcgi ", 0), 0u);
    EXPECT_EQ(ParseFlags(f.flags, {"--settings-markdown", "--version"}).text, "| table |\n");
    const FlagOutcome run = ParseFlags(f.flags, {"--threads=2", "--no-such-flag"});
    EXPECT_EQ(run.kind, Kind::kRun);
    EXPECT_EQ(ParseFlags(f.flags, {}).kind, Kind::kRun);
}

TEST(Flags, CheckConfigTakesExactlyOneFile) {
    Fixture f;
    const FlagOutcome check = ParseFlags(f.flags, {"--check-config", "/etc/default/hashd"});
    EXPECT_EQ(check.kind, Kind::kCheckConfig);
    EXPECT_EQ(check.path, "/etc/default/hashd");
    const std::string usage = "hashd-fcgi: usage: hashd-fcgi --check-config FILE\n";
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--check-config"}, {"--check-config", "a", "b"}, {"--threads=2", "--check-config"}}) {
        const FlagOutcome outcome = ParseFlags(f.flags, args);
        EXPECT_EQ(outcome.kind, Kind::kUsageError) << args.size();
        EXPECT_EQ(outcome.text, usage);
    }
}

// hashd-worker has neither: they reach its settings loader, which refuses them (exit 2).
TEST(Flags, AProgramsOwnFlagsAreNotAnotherProgramsFlags) {
    const ProgramFlags worker{.program = "hashd-worker", .help = [] { return std::string(); }};
    EXPECT_EQ(ParseFlags(worker, {"--check-config", "file"}).kind, Kind::kRun);
    EXPECT_EQ(ParseFlags(worker, {"--settings-markdown"}).kind, Kind::kRun);
    EXPECT_EQ(ParseFlags(worker, {"--version"}).text.rfind("hashd-worker ", 0), 0u);
}

TEST(Flags, FinishPrintsOnTheRightStreamWithTheRightExitCode) {
    testing::internal::CaptureStdout();
    EXPECT_EQ(FinishPrintOrUsage({Kind::kPrint, "text\n"}), 0);
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "text\n");
    testing::internal::CaptureStderr();
    EXPECT_EQ(FinishPrintOrUsage({Kind::kUsageError, "usage\n"}), 2);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "usage\n");
    EXPECT_EQ(FinishPrintOrUsage({Kind::kRun}), std::nullopt);
    EXPECT_EQ(FinishPrintOrUsage({Kind::kCheckConfig, {}, "f"}), std::nullopt);
}

}  // namespace
}  // namespace hashd
