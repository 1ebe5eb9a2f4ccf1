#pragma once
// The request boundary: T worker threads, each accepting FastCGI requests on the inherited
// listening socket, turning them into Request values, running the router and writing the
// Response back. It is also where overload is refused (see the comment in fcgi_server.cc).

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "logger.h"
#include "services.h"

namespace hashd {

class FcgiServer {
  public:
    FcgiServer(const Services& services, const Logger& logger, int listen_fd);
    ~FcgiServer();
    FcgiServer(const FcgiServer&) = delete;
    FcgiServer& operator=(const FcgiServer&) = delete;

    // Serves with config.threads workers until Stop(); returns once every in-flight request
    // has been answered.
    void Run();

    // Stops taking new connections (the socket's path is removed), serves those already
    // queued on the socket (2 s at most), then stops accepting; in-flight requests finish.
    // Blocks for that drain. Safe from any thread; later calls return at once.
    void Stop();

    // False when every worker has been stuck on a single request for longer than `limit`:
    // the systemd watchdog then stops being fed and systemd restarts the process.
    bool Healthy(std::chrono::seconds limit) const;

  private:
    struct Worker;
    void Serve(Worker& worker);

    const Services& services_;
    const Logger& logger_;
    int listen_fd_;
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> stopping_{false};
    std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace hashd
