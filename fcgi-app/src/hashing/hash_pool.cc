#include "hashing/hash_pool.h"

#include <algorithm>
#include <iterator>

namespace hashd {

HashPool::HashPool(int workers, std::chrono::milliseconds deadline, double seconds_per_unit,
                   Batching batching, BatchCompute compute, Metrics& metrics)
    : metrics_(metrics),
      lanes_(std::max(1, batching.lanes)),
      compute_(std::move(compute)),
      admission_(workers, deadline, HashTimeModel(seconds_per_unit), std::move(batching)),
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

std::vector<HashPool::Queued> HashPool::TakeBatch() {
    std::vector<Queued> batch;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    const int cost = batch.front().cost;
    for (auto it = queue_.begin(); it != queue_.end() && std::ssize(batch) < lanes_;) {
        if (it->cost == cost) {
            batch.push_back(std::move(*it));
            it = queue_.erase(it);
        } else {
            ++it;
        }
    }
    return batch;
}

void HashPool::Work(int worker) {
    const auto slot = static_cast<std::size_t>(worker);
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return draining_ || !queue_.empty(); });
        if (queue_.empty()) return;  // draining, and every admitted job has been run
        std::vector<Queued> batch = TakeBatch();
        const int cost = batch.front().cost;
        AdmissionQueue::Duration estimates{0};
        double variances = 0;
        for (const Queued& q : batch) {
            estimates += q.estimate;
            variances += q.variance;
        }
        const auto start = SteadyClock::now();
        admission_.StartBatch(worker, cost, static_cast<int>(batch.size()), estimates, variances,
                              start);
        busy_since_[slot] = start;
        lock.unlock();

        metrics_.AddBusyWorkers(1);
        std::vector<BcryptInput> inputs;
        std::vector<std::size_t> owners;  // inputs[i] belongs to batch[owners[i]]
        for (std::size_t i = 0; i < batch.size(); ++i) {
            metrics_.RecordQueueWait(
                std::chrono::duration<double>(start - batch[i].admitted).count());
            if (auto input = batch[i].job->Prepare()) {
                inputs.push_back(*input);
                owners.push_back(i);
            }
        }
        if (!inputs.empty()) {
            const auto computing = SteadyClock::now();
            const auto results = compute_(inputs);
            const double seconds =
                std::chrono::duration<double>(SteadyClock::now() - computing).count();
            for (std::size_t i = 0; i < owners.size(); ++i)
                batch[owners[i]].job->Complete(results.at(i), seconds);
        }
        batch.clear();  // answers and frees the requests before this thread looks for more
        metrics_.AddBusyWorkers(-1);

        lock.lock();
        admission_.Finish(worker, cost, SteadyClock::now(), static_cast<int>(inputs.size()));
        busy_since_[slot] = {};
    }
}

}  // namespace hashd
