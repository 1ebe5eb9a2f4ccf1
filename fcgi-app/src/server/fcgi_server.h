#pragma once
// The request boundary: accepting threads take FastCGI requests from the inherited listening
// socket, turn them into Request values and either answer them at once (probes, messages,
// invalid input, refusals) or hand them to the hashing threads behind admission by expected
// wait (hash_pool.h; the policy is explained in admission.cc).

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "api/access.h"
#include "api/client_budget.h"
#include "api/router.h"
#include "api/services.h"
#include "core/logger.h"
#include "hashing/hash_pool.h"
#include "server/accept_turn.h"

namespace hashd {

class FcgiServer {
  public:
    // Starts config.threads hashing threads at once (after timing three small hashes, ~20 ms
    // of CPU, to seed the admission estimates); Run() adds the accepting threads.
    // `access` decides who may call each route (api/access.h), before anything else is done.
    FcgiServer(const Services& services, const Logger& logger, int listen_fd,
               AccessControl access = {});
    ~FcgiServer();
    FcgiServer(const FcgiServer&) = delete;
    FcgiServer& operator=(const FcgiServer&) = delete;

    // Serves with config.accept_threads accepting threads until Stop(); returns once every
    // admitted request has been answered.
    void Run();

    // Stops taking new connections (the socket's path is removed), serves those already
    // queued on the socket (2 s at most), then stops accepting; admitted requests finish.
    // Blocks for that drain. Safe from any thread; later calls return at once.
    void Stop();

    // False when every accepting thread, the one whose turn it is to accept, or every
    // hashing thread has been stuck on a single request for longer than `limit`: the systemd
    // watchdog then stops being fed and systemd restarts the process.
    bool Healthy(std::chrono::seconds limit) const;

    struct InFlight;  // one request between the accepting and the answering step

  private:
    class AdmittedRequest;
    struct Acceptor;

    void AcceptLoop(Acceptor& acceptor);
    void Serve(InFlight flight);
    void Admit(InFlight flight, int cost);
    void Answer(InFlight& flight, Dispatch dispatch);

    const Services& services_;
    const Logger& logger_;
    int listen_fd_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> stopping_{false};
    std::vector<std::unique_ptr<Acceptor>> acceptors_;
    AccessControl access_;    // who may call what (api/access.h)
    ClientBudget budget_;     // per-client hashing work (api/client_budget.h)
    AcceptTurn accept_turn_;  // one accepting thread in accept() at a time (accept_turn.h)
    std::unique_ptr<HashPool> pool_;
};

}  // namespace hashd
