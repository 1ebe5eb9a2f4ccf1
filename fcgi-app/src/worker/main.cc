// hashd-worker: consumes the MultiVAC queue of the configured store (HASHD_STORE) until
// SIGTERM. Run by hashd-worker.service (Type=notify, watchdog) or by scripts/run-local. It
// reads the same settings as hashd-fcgi (--help lists them); HASHD_STORE, HASHD_LOG,
// HASHD_RUNTIME_DIR (its metrics file) and HASHD_STORE_TIMEOUT_MS are the ones it uses.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/build_info.h"
#include "core/config.h"
#include "core/logger.h"
#include "core/no_core_dumps.h"
#include "daemon/flags.h"
#include "daemon/notify.h"
#include "daemon/stop_signals.h"
#include "daemon/watchdog.h"
#include "metrics/worker_metrics.h"
#include "store/message_store.h"
#include "worker/worker.h"

namespace {

using namespace hashd;

// hashd-fcgi's table of settings, without its own usage paragraph.
std::string WorkerHelp() {
    const std::string help = ConfigHelp();
    const auto table = help.find("\n\n");
    return "Usage: hashd-worker [--setting=value ...]\n"
           "Consumes the MultiVAC queue of HASHD_STORE until SIGTERM. It reads the\n"
           "settings of hashd-fcgi (HASHD_STORE, HASHD_STORE_TIMEOUT_MS, HASHD_LOG\n"
           "and HASHD_RUNTIME_DIR are the ones it uses):" +
           (table == std::string::npos ? help : help.substr(table));
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    const ProgramFlags flags{.program = "hashd-worker", .help = WorkerHelp};
    if (auto exit_code = FinishPrintOrUsage(ParseFlags(flags, args))) return *exit_code;
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

    // Before any thread starts, so that every thread inherits the mask (stop_signals.h). The
    // loop polls the stop request (worker.h); nothing else is to be done on a signal.
    auto stop_signals = BlockStopSignals();
    if (!stop_signals.ok()) {
        logger.Log(LogLevel::kError, "cannot block the stop signals",
                   {{"ERROR", stop_signals.error().message}});
        return 1;
    }
    const StopSignalWaiter signal_waiter(stop_signals.value(), {});

    auto store = OpenMessageStore(config.value());
    if (!store.ok()) {
        logger.Log(LogLevel::kError, "cannot open the store", {{"ERROR", store.error().message}});
        return 1;
    }
    const std::string backend(store.value()->Backend());
    Worker worker(store.value()->Queue(), logger, backend, WorkerMetricsPath(config.value()));
    // Pinged from the loop itself: a loop that hangs (a store call stuck past its timeouts)
    // is killed and restarted (watchdog.h).
    WatchdogPinger watchdog(WatchdogPingIntervalFromEnvironment());

    logger.Log(LogLevel::kInfo, "consuming the MultiVAC queue",
               {{"VERSION", kVersion}, {"STORE_BACKEND", backend}});
    // Ignored on failure (notify.h).
    static_cast<void>(NotifyReady("Consuming the MultiVAC queue"));
    worker.Run(signal_waiter.stop_requested(), [&] { watchdog.Alive(); });
    static_cast<void>(NotifyStopping());
    logger.Log(LogLevel::kInfo, "stopped", {});
    return 0;
}
