#include "store/timed_store.h"

#include <atomic>

namespace hashd {
namespace {

std::atomic<BlockingHook> g_blocking_hook{nullptr};

}  // namespace

void SetBlockingHook(BlockingHook hook) {
    g_blocking_hook.store(hook, std::memory_order_release);
}

void RunBlockingHook() {
    if (const BlockingHook hook = g_blocking_hook.load(std::memory_order_acquire)) hook();
}

}  // namespace hashd
