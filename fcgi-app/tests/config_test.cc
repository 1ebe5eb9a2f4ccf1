#include "config.h"

#include <gtest/gtest.h>

#include <map>

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

TEST(Config, HelpListsEverySettingsVariable) {
    const std::string help = ConfigHelp();
    for (const char* name : {"HASHD_COST_DEFAULT", "HASHD_THREADS", "HASHD_LEGACY_GET",
                             "HASHD_QUEUE_DEADLINE_MS", "HASHD_STORE"})
        EXPECT_NE(help.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace hashd
