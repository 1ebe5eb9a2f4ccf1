#include "hashing/hash_pool.h"

namespace hashd {

HashPool::HashPool(int workers, std::chrono::milliseconds deadline, double seconds_per_unit,
                   Metrics& metrics)
    : metrics_(metrics),
      admission_(workers, deadline, HashTimeModel(seconds_per_unit)),
      busy_since_(static_cast<std::size_t>(workers)) {
    metrics_.SetWorkers(workers);
    threads_.reserve(static_cast<std::size_t>(workers));
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { Work(i); });
}

HashPool::~HashPool() {
    Drain();
}

AdmissionQueue::Decision HashPool::Offer(int cost, std::unique_ptr<HashJob>& job) {
    const auto now = SteadyClock::now();
    std::lock_guard lock(mutex_);
    if (draining_) return {};
    AdmissionQueue::Decision decision = admission_.Offer(cost, now);
    if (decision.admitted) {
        queue_.push_back({std::move(job), cost, decision.estimate, decision.variance, now});
        wake_.notify_one();
    }
    return decision;
}

void HashPool::Drain() {
    {
        std::lock_guard lock(mutex_);
        draining_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_)
        if (thread.joinable()) thread.join();
}

bool HashPool::Stuck(std::chrono::seconds limit) const {
    const auto now = SteadyClock::now();
    std::lock_guard lock(mutex_);
    for (const auto since : busy_since_)
        if (since == SteadyClock::time_point{} || now - since < limit) return false;
    return !busy_since_.empty();
}

void HashPool::Work(int worker) {
    const auto slot = static_cast<std::size_t>(worker);
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return draining_ || !queue_.empty(); });
        if (queue_.empty()) return;  // draining, and every admitted job has been run
        Queued next = std::move(queue_.front());
        queue_.pop_front();
        const auto start = SteadyClock::now();
        admission_.Start(worker, next.estimate, next.variance, start);
        busy_since_[slot] = start;
        lock.unlock();

        metrics_.RecordQueueWait(std::chrono::duration<double>(start - next.admitted).count());
        metrics_.AddBusyWorkers(1);
        next.job->Run();
        next.job.reset();  // answers and frees the request before this thread looks for more
        metrics_.AddBusyWorkers(-1);

        lock.lock();
        admission_.Finish(worker, next.cost, SteadyClock::now());
        busy_since_[slot] = {};
    }
}

}  // namespace hashd
