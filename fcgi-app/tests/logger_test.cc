#include "core/logger.h"

#include <gtest/gtest.h>
#include <json/json.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace hashd {
namespace {

// What the logger writes to stderr while `write` runs: stderr goes to a temporary file
// meanwhile and comes back afterwards.
template <typename Write>
std::string CaptureStderr(Write write) {
    std::fflush(stderr);
    char path[] = "/tmp/hashd-logger-test-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    const int saved = dup(2);
    dup2(fd, 2);
    write();
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    unlink(path);
    return text.str();
}

Json::Value ParseLine(const std::string& line) {
    Json::Value value;
    std::string errors;
    std::istringstream in(line);
    EXPECT_TRUE(Json::parseFromStream(Json::CharReaderBuilder(), in, &value, &errors)) << line;
    return value;
}

TEST(LoggerJson, UsesCloudLoggingKeys) {
    const Logger logger(LogTarget::kStderr);
    const std::string out = CaptureStderr([&] {
        logger.Log(LogLevel::kWarning, "request",
                   {{"REQUEST_ID", "abc"},
                    {"TRACE_ID", "4bf92f3577b34da6a3ce929d0e0e4736"},
                    {"HTTP_STATUS", "503"}});
    });
    ASSERT_EQ(out.back(), '\n');
    ASSERT_EQ(out.find('\n'), out.size() - 1) << "one line per entry";
    const Json::Value line = ParseLine(out);
    EXPECT_EQ(line["severity"].asString(), "WARNING");
    EXPECT_EQ(line["message"].asString(), "request");
    EXPECT_TRUE(std::regex_match(line["time"].asString(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
        << line["time"].asString();
    EXPECT_EQ(line["REQUEST_ID"].asString(), "abc");
    EXPECT_EQ(line["logging.googleapis.com/trace"].asString(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_FALSE(line.isMember("TRACE_ID"));
    EXPECT_EQ(line["HTTP_STATUS"].asString(), "503");
    // The old keys are gone.
    EXPECT_FALSE(line.isMember("ts") || line.isMember("level") || line.isMember("msg"));
}

TEST(LoggerJson, LeavesOutAnEmptyTraceIdButKeepsOtherEmptyFields) {
    const Logger logger(LogTarget::kStderr);
    const std::string out = CaptureStderr([&] {
        logger.Log(LogLevel::kError, "request", {{"TRACE_ID", ""}, {"ERROR", ""}});
    });
    const Json::Value line = ParseLine(out);
    EXPECT_EQ(line["severity"].asString(), "ERROR");
    EXPECT_FALSE(line.isMember("logging.googleapis.com/trace"));
    EXPECT_TRUE(line.isMember("ERROR"));
}

}  // namespace
}  // namespace hashd
