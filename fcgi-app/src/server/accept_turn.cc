#include "server/accept_turn.h"

namespace hashd {
namespace {

// The turn the calling thread holds, if any.
thread_local AcceptTurn* t_held = nullptr;

}  // namespace

void AcceptTurn::Take() {
    if (t_held == this) return;
    mutex_.lock();
    t_held = this;
}

void AcceptTurn::Pass() {
    if (t_held != this) return;
    busy_since_.store(0);
    t_held = nullptr;
    mutex_.unlock();
}

void AcceptTurn::MarkBusy(std::chrono::steady_clock::time_point since) {
    if (t_held != this) return;  // passed on meanwhile: the time is the new holder's to set
    busy_since_.store(since.time_since_epoch().count());
}

std::chrono::steady_clock::time_point AcceptTurn::BusySince() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(busy_since_.load()));
}

void BeforeBlocking() {
    if (t_held != nullptr) t_held->Pass();
}

}  // namespace hashd
