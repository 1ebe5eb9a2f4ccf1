// LmdbStore against a real LMDB environment in a temporary directory: the write primitive,
// durability across reopen, the full-map answer, and P processes x T threads writing at once.
#include "store/lmdb_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/sha256.h"

namespace hashd {
namespace {

class LmdbStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/tmp/hashd-lmdb-test-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        root_ = pattern;
        dir_ = root_ + "/nested/messages";  // Open creates missing directories
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    std::unique_ptr<LmdbStore> Open(std::size_t map_size = std::size_t{1} << 24) {
        auto store = LmdbStore::Open(dir_, map_size);
        EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
        return store.ok() ? std::move(store).value() : nullptr;
    }

    std::string root_, dir_;
};

std::optional<std::string> MustGet(MessageStore& store, const std::string& digest) {
    auto got = store.Get(digest);
    EXPECT_TRUE(got.ok()) << (got.ok() ? "" : got.error().message);
    return got.ok() ? got.value() : std::nullopt;
}

TEST_F(LmdbStoreTest, StoresOnceAndReadsBackBinarySafe) {
    auto store = Open();
    ASSERT_TRUE(store);
    const std::string message("caf\xc3\xa9\0tail", 10);
    const std::string digest = Sha256Hex(message);
    ASSERT_TRUE(store->Put(digest, message).ok());
    ASSERT_TRUE(store->Put(digest, message).ok()) << "a repeat must succeed";
    EXPECT_EQ(MustGet(*store, digest), message);
    EXPECT_EQ(MustGet(*store, Sha256Hex("never stored")), std::nullopt);
    EXPECT_TRUE(store->Check().ok());
    EXPECT_EQ(store->Backend(), "lmdb");
}

TEST_F(LmdbStoreTest, EmptyMessageIsAMessage) {
    auto store = Open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Put(Sha256Hex(""), "").ok());
    EXPECT_EQ(MustGet(*store, Sha256Hex("")), std::string());
}

TEST_F(LmdbStoreTest, CommittedWritesSurviveReopen) {
    {
        auto store = Open();
        ASSERT_TRUE(store);
        ASSERT_TRUE(store->Put(Sha256Hex("kept"), "kept").ok());
    }
    auto reopened = Open();
    ASSERT_TRUE(reopened);
    EXPECT_EQ(MustGet(*reopened, Sha256Hex("kept")), "kept");
}

TEST_F(LmdbStoreTest, FullMapAnswers507AndKeepsServingReads) {
    auto store = Open(64 * 1024);  // 16 pages of 4 KiB: full after a few dozen KiB
    ASSERT_TRUE(store);
    std::vector<std::string> stored;
    Error full;
    for (int i = 0; i < 1000; ++i) {
        const std::string message = std::to_string(i) + std::string(1000, 'x');
        auto put = store->Put(Sha256Hex(message), message);
        if (!put.ok()) {
            full = put.error();
            break;
        }
        stored.push_back(message);
    }
    ASSERT_EQ(full.kind, ErrorKind::kFull) << "the map never filled up";
    EXPECT_EQ(full.code, "store_full");
    EXPECT_NE(full.message.find("full"), std::string::npos);
    ASSERT_FALSE(stored.empty());
    for (const auto& message : stored) EXPECT_EQ(MustGet(*store, Sha256Hex(message)), message);
    EXPECT_TRUE(store->Check().ok()) << "a full store is still ready for reads";
    // A repeat of a stored message still succeeds: it writes nothing.
    EXPECT_TRUE(store->Put(Sha256Hex(stored[0]), stored[0]).ok());
}

TEST_F(LmdbStoreTest, AdoptsAMapGrownByAnotherProcess) {
    // The rolling restart after raising HASHD_LMDB_MAP_SIZE: this process still has the old
    // map while a restarted one writes past its end.
    auto small = Open(64 * 1024);
    ASSERT_TRUE(small);
    auto filler = [](int i) { return "grown " + std::to_string(i) + std::string(2000, 'g'); };
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        auto large = LmdbStore::Open(dir_, std::size_t{1} << 22);
        if (!large.ok()) _exit(2);
        for (int i = 0; i < 50; ++i)
            if (!large.value()->Put(Sha256Hex(filler(i)), filler(i)).ok()) _exit(1);
        _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    for (int i = 0; i < 50; i += 7) EXPECT_EQ(MustGet(*small, Sha256Hex(filler(i))), filler(i));
    EXPECT_TRUE(small->Put(Sha256Hex("after the resize"), "after the resize").ok());
    EXPECT_TRUE(small->Check().ok());
}

// Each writer stores kCount messages: half shared by every writer, half its own.
constexpr int kCount = 20;
std::string SharedMessage(int i) {
    return "shared " + std::to_string(i);
}
std::string OwnMessage(int writer, int i) {
    return "writer " + std::to_string(writer) + " message " + std::to_string(i);
}
bool WriteBatch(MessageStore& store, int writer) {
    bool ok = true;
    for (int i = 0; i < kCount / 2; ++i) {
        ok &= store.Put(Sha256Hex(SharedMessage(i)), SharedMessage(i)).ok();
        ok &= store.Put(Sha256Hex(OwnMessage(writer, i)), OwnMessage(writer, i)).ok();
    }
    return ok;
}

TEST_F(LmdbStoreTest, ThreadsWritingAtOnce) {
    auto store = Open();
    ASSERT_TRUE(store);
    constexpr int kThreads = 8;
    std::vector<char> ok(kThreads, 0);
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] { ok[t] = WriteBatch(*store, t); });
    }
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_TRUE(ok[t]) << "writer " << t;
        for (int i = 0; i < kCount / 2; ++i)
            EXPECT_EQ(MustGet(*store, Sha256Hex(OwnMessage(t, i))), OwnMessage(t, i));
    }
    for (int i = 0; i < kCount / 2; ++i)
        EXPECT_EQ(MustGet(*store, Sha256Hex(SharedMessage(i))), SharedMessage(i));
}

TEST_F(LmdbStoreTest, ProcessesWithThreadsWritingAtOnce) {
    ASSERT_TRUE(Open()) << "create the environment first";
    constexpr int kProcesses = 4, kThreads = 3;
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            // The child opens its own environment, as each hashd-fcgi process does.
            auto store = LmdbStore::Open(dir_, std::size_t{1} << 24);
            if (!store.ok()) _exit(2);
            std::vector<char> ok(kThreads, 0);
            {
                std::vector<std::jthread> threads;
                for (int t = 0; t < kThreads; ++t)
                    threads.emplace_back(
                        [&, t] { ok[t] = WriteBatch(*store.value(), p * kThreads + t); });
            }
            for (char one : ok)
                if (!one) _exit(1);
            _exit(0);
        }
        children.push_back(pid);
    }
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    }
    auto store = Open();
    ASSERT_TRUE(store);
    for (int w = 0; w < kProcesses * kThreads; ++w)
        for (int i = 0; i < kCount / 2; ++i)
            EXPECT_EQ(MustGet(*store, Sha256Hex(OwnMessage(w, i))), OwnMessage(w, i));
    for (int i = 0; i < kCount / 2; ++i)
        EXPECT_EQ(MustGet(*store, Sha256Hex(SharedMessage(i))), SharedMessage(i));
}

}  // namespace
}  // namespace hashd
