// OpenMessageStore's choice of backend, the redis:// address parser, and what the network
// backends answer when nothing listens at their address (503 with Retry-After, no crash).
// The network backends against real servers are exercised by tests/integration/test_messages.py.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "store/message_store.h"
#include "store/redis_store.h"

namespace hashd {
namespace {

// A loopback port where nothing listens (bound, then released).
int ClosedPort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

Config WithStore(std::string store) {
    Config config;
    config.store = std::move(store);
    config.store_timeout_ms = 200;
    return config;
}

TEST(StoreFactory, ChoosesTheBackendFromTheSetting) {
    char pattern[] = "/tmp/hashd-factory-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    auto lmdb = OpenMessageStore(WithStore(std::string("lmdb:") + pattern + "/m"));
    ASSERT_TRUE(lmdb.ok()) << lmdb.error().message;
    EXPECT_EQ(lmdb.value()->Backend(), "lmdb");
    std::filesystem::remove_all(pattern);

    auto redis = OpenMessageStore(WithStore("redis://127.0.0.1:6379/0"));
    ASSERT_TRUE(redis.ok());
    EXPECT_EQ(redis.value()->Backend(), "redis");
    auto postgres = OpenMessageStore(WithStore("postgresql://hashd@127.0.0.1:5432/hashd"));
    ASSERT_TRUE(postgres.ok());
    EXPECT_EQ(postgres.value()->Backend(), "postgresql");
}

TEST(StoreFactory, RejectsInvalidAddresses) {
    for (const char* bad : {"lmdb:", "redis://", "redis://host:port/0", "redis://h:1/x",
                            "postgresql://host/db?no_such_option=1", "memcached://x"}) {
        auto store = OpenMessageStore(WithStore(bad));
        EXPECT_FALSE(store.ok()) << bad;
    }
}

TEST(StoreFactory, ParsesRedisUrls) {
    auto plain = ParseRedisUrl("redis://10.0.0.5:6380/3");
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(plain.value().host, "10.0.0.5");
    EXPECT_EQ(plain.value().port, 6380);
    EXPECT_EQ(plain.value().db, 3);
    EXPECT_TRUE(plain.value().password.empty());

    auto defaults = ParseRedisUrl("redis://cache");
    ASSERT_TRUE(defaults.ok());
    EXPECT_EQ(defaults.value().port, 6379);
    EXPECT_EQ(defaults.value().db, 0);

    auto auth = ParseRedisUrl("redis://hashd:s3cr@t@cache:6379/1");
    ASSERT_TRUE(auth.ok());
    EXPECT_EQ(auth.value().user, "hashd");
    EXPECT_EQ(auth.value().password, "s3cr@t");
    EXPECT_EQ(auth.value().host, "cache");

    // hashd-gce-config percent-encodes the password from Secret Manager into the URL
    // (urllib.parse.quote(password, safe="")): the store must AUTH with the password itself.
    auto encoded = ParseRedisUrl("redis://:p%2Ba%2Fs%3Ds%40w%3Ard%25@10.0.0.5:6379/0");
    ASSERT_TRUE(encoded.ok());
    EXPECT_EQ(encoded.value().user, "");
    EXPECT_EQ(encoded.value().password, "p+a/s=s@w:rd%");
    EXPECT_EQ(encoded.value().host, "10.0.0.5");
    auto user = ParseRedisUrl("redis://h%61shd:x@cache");
    ASSERT_TRUE(user.ok());
    EXPECT_EQ(user.value().user, "hashd");
    // '+' is not a space in user info.
    auto plus = ParseRedisUrl("redis://:a+b@cache");
    ASSERT_TRUE(plus.ok());
    EXPECT_EQ(plus.value().password, "a+b");
    EXPECT_FALSE(ParseRedisUrl("redis://:50%off@cache").ok());
}

// Nothing listens: every call is a 503 store_unavailable with Retry-After, and the store
// does not crash or throw. (The integration suite stops and restarts real servers.)
void ExpectUnavailable(MessageStore& store) {
    const std::string digest(64, 'a');
    // The first failure carries the reason for the operator's log, without the password.
    auto first = store.Put(digest, "m");
    ASSERT_FALSE(first.ok());
    EXPECT_NE(first.error().detail.find("refused"), std::string::npos) << first.error().detail;
    EXPECT_EQ(first.error().detail.find("s3cret"), std::string::npos) << first.error().detail;
    EXPECT_EQ(first.error().message.find("refused"), std::string::npos);  // not for clients
    for (int i = 0; i < 3; ++i) {
        auto put = store.Put(digest, "m");
        ASSERT_FALSE(put.ok());
        EXPECT_EQ(put.error().kind, ErrorKind::kUnavailable);
        EXPECT_EQ(put.error().code, "store_unavailable");
        EXPECT_GE(put.error().retry_after_seconds, 1);
        EXPECT_NE(put.error().message.find("unavailable"), std::string::npos);
        auto get = store.Get(digest);
        ASSERT_FALSE(get.ok());
        EXPECT_EQ(get.error().kind, ErrorKind::kUnavailable);
        auto check = store.Check();
        ASSERT_FALSE(check.ok());
        EXPECT_EQ(check.error().kind, ErrorKind::kUnavailable);
    }
}

TEST(StoreFactory, RedisWithNoServerIsUnavailable) {
    auto store = OpenMessageStore(
        WithStore("redis://hashd:s3cret@127.0.0.1:" + std::to_string(ClosedPort())));
    ASSERT_TRUE(store.ok());
    ExpectUnavailable(*store.value());
}

TEST(StoreFactory, PostgresWithNoServerIsUnavailable) {
    auto store = OpenMessageStore(WithStore(
        "postgresql://hashd:s3cret@127.0.0.1:" + std::to_string(ClosedPort()) + "/hashd"));
    ASSERT_TRUE(store.ok());
    ExpectUnavailable(*store.value());
}

}  // namespace
}  // namespace hashd
