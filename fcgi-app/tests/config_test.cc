#include "core/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "core/env_file.h"

namespace hashd {
namespace {

Result<Config> Load(std::map<std::string, std::string> env, std::vector<std::string> args = {}) {
    return LoadConfig(
        [&](const char* name) -> const char* {
            auto it = env.find(name);
            return it == env.end() ? nullptr : it->second.c_str();
        },
        args);
}

TEST(Config, DefaultsMatchTheDocumentedPolicy) {
    auto config = Load({});
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config.value().cost_default, 12);
    EXPECT_EQ(config.value().cost_min, 10);
    EXPECT_EQ(config.value().cost_max, 14);
    EXPECT_TRUE(config.value().legacy_get);
}

TEST(Config, ReadsEnvironmentAndFlagsOverrideIt) {
    auto config = Load({{"HASHD_THREADS", "3"}, {"HASHD_LEGACY_GET", "0"}},
                       {"--threads=5", "--store", "redis://127.0.0.1:6379/0"});
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config.value().threads, 5);
    EXPECT_FALSE(config.value().legacy_get);
    EXPECT_EQ(config.value().store, "redis://127.0.0.1:6379/0");
}

TEST(Config, RejectsInvalidValuesNamingTheSetting) {
    auto bad = Load({{"HASHD_THREADS", "many"}});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("HASHD_THREADS"), std::string::npos);
    EXPECT_FALSE(Load({{"HASHD_COST_DEFAULT", "15"}}).ok());  // above the max of 14
    EXPECT_FALSE(Load({{"HASHD_STORE", "mysql://x"}}).ok());
    EXPECT_FALSE(Load({}, {"--no-such-flag=1"}).ok());
}

TEST(Config, HelpListsEverySettingsVariableWithItsDefault) {
    const std::string help = ConfigHelp();
    for (const char* line :
         {"(HASHD_COST_DEFAULT), default 12,", "(HASHD_THREADS), default 1,",
          "(HASHD_LEGACY_GET), default 1,", "(HASHD_QUEUE_DEADLINE_MS), default 1000,",
          "(HASHD_STORE), default lmdb:/var/lib/hashd/messages,", "(HASHD_LOG), default auto,"})
        EXPECT_NE(help.find(line), std::string::npos) << line;
}

// The defaults file shows each default as `#HASHD_NAME=value`: uncommented, those lines must
// load, and load to exactly the default configuration (a value printed in a form the parser
// does not accept, or a wrong one, fails here).
TEST(Config, DefaultsFileLinesLoadToTheDefaults) {
    std::map<std::string, std::string> env;
    std::istringstream lines(DefaultsFileSettings());
    for (std::string line; std::getline(lines, line);) {
        if (!line.starts_with("#HASHD_")) continue;
        const auto eq = line.find('=');
        ASSERT_NE(eq, std::string::npos) << line;
        env[line.substr(1, eq - 1)] = line.substr(eq + 1);
    }
    const std::string table = SettingsMarkdown();
    const auto rows = static_cast<std::size_t>(std::count(table.begin(), table.end(), '\n'));
    EXPECT_EQ(env.size(), rows - 2) << "every setting of the table, once";
    auto loaded = Load(env);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    EXPECT_TRUE(loaded.value() == Config{});
}

// docs/settings.md's settings table is the output of `hashd-fcgi --settings-markdown`. When
// this fails, replace the table under "## The app's settings" with that output.
TEST(Config, DocsSettingsTableIsGeneratedFromTheCode) {
    std::ifstream doc(HASHD_SOURCE_DIR "/docs/settings.md");
    ASSERT_TRUE(doc.is_open());
    std::string table;  // the first table of the section
    bool in_section = false;
    for (std::string line; std::getline(doc, line);) {
        if (line.starts_with("## ")) in_section = line == "## The app's settings";
        if (!in_section) continue;
        if (line.starts_with("|"))
            table += line + "\n";
        else if (!table.empty())
            break;
    }
    EXPECT_EQ(table, SettingsMarkdown())
        << "docs/settings.md's settings table differs from the code; paste the output of "
           "`build/fcgi-app/hashd-fcgi --settings-markdown` under \"## The app's settings\"";
}

}  // namespace
}  // namespace hashd

namespace hashd {
namespace {

std::string WriteTemp(const std::string& text) {
    char path[] = "/tmp/hashd-env-file-test-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    close(fd);
    std::ofstream(path) << text;
    return path;
}

TEST(EnvFile, ReadsSettingLinesAndRefusesWhatSystemdWouldReadDifferently) {
    const std::string good =
        WriteTemp("# made at boot\n\nHASHD_COST_DEFAULT=11\nHASHD_STORE=redis://:a%2Bb@h/0\n");
    auto settings = ReadEnvFile(good);
    ASSERT_TRUE(settings.ok()) << settings.error().message;
    EXPECT_EQ(settings.value().at("HASHD_COST_DEFAULT"), "11");
    EXPECT_EQ(settings.value().at("HASHD_STORE"), "redis://:a%2Bb@h/0");
    std::remove(good.c_str());
    for (const char* bad : {"HASHD_STORE\n", "HASHD STORE=x\n", "HASHD_STORE=\"x\"\n", "A=b\\\n"}) {
        const std::string path = WriteTemp(bad);
        auto read = ReadEnvFile(path);
        ASSERT_FALSE(read.ok()) << bad;
        EXPECT_NE(read.error().message.find(":1:"), std::string::npos) << read.error().message;
        std::remove(path.c_str());
    }
    EXPECT_FALSE(ReadEnvFile("/nonexistent/hashd.env").ok());
}

TEST(Config, KnowsItsSettingVariables) {
    EXPECT_TRUE(IsSettingVariable("HASHD_STORE"));
    EXPECT_TRUE(IsSettingVariable("HASHD_COST_DEFAULT"));
    EXPECT_FALSE(IsSettingVariable("HASHD_COST_DEFUALT"));
    EXPECT_FALSE(IsSettingVariable("PATH"));
}

}  // namespace
}  // namespace hashd
