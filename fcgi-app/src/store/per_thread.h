#pragma once
// One T per calling thread, owned by the store that holds the PerThread (not by the thread), so
// that a store's connections close with the store and two stores never share one.
//
// The accepting threads (which serve messages) live as long as the process, so each keeps one
// connection and uses it without locking; only the lookup of "my slot" takes the mutex (a map
// lookup, not the network round-trip). The slots of threads that ended stay until the store is
// destroyed, which is bounded by the number of threads that serve messages (HASHD_ACCEPT_THREADS).

#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace hashd {

template <typename T>
class PerThread {
  public:
    // The calling thread's T, default-constructed on its first call.
    T& Get() {
        std::lock_guard lock(mutex_);
        auto& slot = slots_[std::this_thread::get_id()];
        if (!slot) slot = std::make_unique<T>();
        return *slot;
    }

  private:
    std::mutex mutex_;
    std::map<std::thread::id, std::unique_ptr<T>> slots_;
};

}  // namespace hashd
