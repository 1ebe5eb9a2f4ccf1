// hashd-worker: consumes the MultiVAC queue of the configured store (HASHD_STORE) until
// SIGTERM. Run by hashd-worker.service (Type=notify, watchdog) or by scripts/run-local. It
// reads the same settings as hashd-fcgi (--help lists them); HASHD_STORE, HASHD_LOG,
// HASHD_RUNTIME_DIR (its metrics file) and HASHD_STORE_TIMEOUT_MS are the ones it uses.

#include <signal.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/config.h"
#include "core/logger.h"
#include "core/no_core_dumps.h"
#include "metrics/worker_metrics.h"
#include "store/message_store.h"
#include "worker/worker.h"

namespace {

using namespace hashd;

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

extern "C" void OnStopSignal(int) {
    g_stop.store(true);
}

// Pings systemd's watchdog at half its period, from the loop itself: a loop that hangs (a
// store call stuck past its timeouts) is killed and restarted.
class Watchdog {
  public:
    Watchdog() {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) > 0) interval_ = std::chrono::microseconds(usec / 2);
    }
    void Alive() {
        if (interval_.count() == 0) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < interval_) return;
        sd_notify(0, "WATCHDOG=1");
        last_ = now;
    }

  private:
    std::chrono::microseconds interval_{0};
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (const std::string& arg : args) {
        if (arg == "--help" || arg == "-h") {
            // hashd-fcgi's table of settings, without its own usage paragraph.
            const std::string help = ConfigHelp();
            const auto table = help.find("\n\n");
            std::printf(
                "Usage: hashd-worker [--setting=value ...]\n"
                "Consumes the MultiVAC queue of HASHD_STORE until SIGTERM. It reads the\n"
                "settings of hashd-fcgi (HASHD_STORE, HASHD_STORE_TIMEOUT_MS, HASHD_LOG\n"
                "and HASHD_RUNTIME_DIR are the ones it uses):%s",
                table == std::string::npos ? help.c_str() : help.c_str() + table);
            return 0;
        }
        if (arg == "--version") {
            std::printf("hashd-worker %s (%s)\n", kVersion, kCommit);
            return 0;
        }
    }
    // Before any password reaches memory and before any thread starts (no_core_dumps.h).
    if (auto undumpable = DisableCoreDumps(); !undumpable.ok()) {
        std::fprintf(stderr, "hashd-worker: %s\n", undumpable.error().message.c_str());
        return 1;
    }
    auto config = LoadConfig([](const char* name) { return std::getenv(name); }, args);
    if (!config.ok()) {
        std::fprintf(stderr, "hashd-worker: %s\n", config.error().message.c_str());
        return 2;
    }
    const Logger logger(config.value().log, "hashd-worker");

    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto store = OpenMessageStore(config.value());
    if (!store.ok()) {
        logger.Log(LogLevel::kError, "cannot open the store", {{"ERROR", store.error().message}});
        return 1;
    }
    const std::string backend(store.value()->Backend());
    Worker worker(store.value()->Queue(), logger, backend, WorkerMetricsPath(config.value()));
    Watchdog watchdog;

    logger.Log(LogLevel::kInfo, "consuming the MultiVAC queue",
               {{"VERSION", kVersion}, {"STORE_BACKEND", backend}});
    sd_notify(0, "READY=1\nSTATUS=Consuming the MultiVAC queue");
    worker.Run(g_stop, [&] { watchdog.Alive(); });
    sd_notify(0, "STOPPING=1");
    logger.Log(LogLevel::kInfo, "stopped", {});
    return 0;
}
