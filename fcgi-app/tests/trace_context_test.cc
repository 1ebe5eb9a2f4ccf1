#include "http/trace_context.h"

#include <gtest/gtest.h>

namespace hashd {
namespace {

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";

TEST(Traceparent, TakesTheTraceIdOfAWellFormedHeader) {
    EXPECT_EQ(TraceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
              kTrace);
    EXPECT_EQ(TraceIdFromTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
              kTrace);
    // A later version may append fields; version 00 may not.
    EXPECT_EQ(TraceIdFromTraceparent(
                  "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next"),
              kTrace);
}

TEST(Traceparent, RejectsWhatTheW3cSpecificationRejects) {
    for (const char* bad : {
             "",
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with more
             "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
             "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
             "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
             "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
             "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
             "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
             "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // junk after
             "00-4bf92f3577b34da6a3ce929d0e0e4736\n-00f067aa0ba902b7-01",  // a log injection
         })
        EXPECT_EQ(TraceIdFromTraceparent(bad), "") << bad;
}

TEST(CloudTraceContext, TakesTheTraceIdInLowerCase) {
    EXPECT_EQ(TraceIdFromCloudTraceContext("4bf92f3577b34da6a3ce929d0e0e4736/1;o=1"), kTrace);
    EXPECT_EQ(TraceIdFromCloudTraceContext("4BF92F3577B34DA6A3CE929D0E0E4736/123"), kTrace);
    EXPECT_EQ(TraceIdFromCloudTraceContext("4bf92f3577b34da6a3ce929d0e0e4736;o=0"), kTrace);
    EXPECT_EQ(TraceIdFromCloudTraceContext("4bf92f3577b34da6a3ce929d0e0e4736"), kTrace);
}

TEST(CloudTraceContext, RejectsMalformedHeaders) {
    for (const char* bad :
         {"", "4bf92f3577b34da6a3ce929d0e0e473", "00000000000000000000000000000000/1",
          "4bf92f3577b34da6a3ce929d0e0e4736x/1", "zbf92f3577b34da6a3ce929d0e0e4736/1",
          "4bf92f3577b34da6a3ce929d0e0e47\r\n/1"})
        EXPECT_EQ(TraceIdFromCloudTraceContext(bad), "") << bad;
}

TEST(RequestTraceId, PrefersTraceparentAndFallsBackToGoogles) {
    const std::string other = "0af7651916cd43dd8448eb211c80319c";
    const std::string traceparent = "00-" + other + "-b7ad6b7169203331-01";
    const std::string cloud = std::string(kTrace) + "/1;o=1";
    EXPECT_EQ(RequestTraceId(traceparent, cloud), other);
    EXPECT_EQ(RequestTraceId("garbage", cloud), kTrace);
    EXPECT_EQ(RequestTraceId("", cloud), kTrace);
    EXPECT_EQ(RequestTraceId("", ""), "");
    EXPECT_EQ(RequestTraceId("garbage", "garbage"), "");
}

}  // namespace
}  // namespace hashd
