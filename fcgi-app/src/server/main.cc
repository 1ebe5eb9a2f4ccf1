// hashd-fcgi: serves the hashd API over FastCGI on the listening socket inherited as fd 0, as
// `spawn-fcgi -n` hands it. See --help for the settings.

#include <fcgiapp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "api/access.h"
#include "api/router.h"
#include "core/build_info.h"
#include "core/config.h"
#include "core/env_file.h"
#include "core/logger.h"
#include "core/no_core_dumps.h"
#include "daemon/flags.h"
#include "daemon/notify.h"
#include "daemon/stop_signals.h"
#include "daemon/watchdog.h"
#include "hashing/bcrypt_self_test.h"
#include "metrics/metrics.h"
#include "server/fcgi_server.h"
#include "store/message_store.h"

namespace {

using namespace hashd;

constexpr int kListenFd = 0;
// A worker busy on one request for this long is stuck: no request legitimately takes a minute.
constexpr std::chrono::seconds kStuckWorker{60};

bool IsListeningSocket(int fd) {
    int listening = 0;
    socklen_t length = sizeof(listening);
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 && listening;
}

// --check-config FILE: the settings of FILE, over this process's environment (as systemd
// layers an EnvironmentFile= over /etc/default/hashd), through the same loader and store
// address parsing a start would use. Nothing is opened or connected; an LMDB path is not
// created. Exit 0 when valid, 2 with one line naming what is wrong.
int CheckConfigFile(const std::string& path) {
    auto file = ReadEnvFile(path);
    auto fail = [&](const std::string& why) {
        std::fprintf(stderr, "hashd-fcgi: %s: %s\n", path.c_str(), why.c_str());
        return 2;
    };
    if (!file.ok()) return fail(file.error().message);
    for (const auto& [name, value] : file.value())
        if (!IsSettingVariable(name)) return fail(name + " is not a hashd setting (see --help)");
    auto config = LoadConfig(
        [&](const char* name) -> const char* {
            if (auto it = file.value().find(name); it != file.value().end())
                return it->second.c_str();
            return std::getenv(name);
        },
        {});
    if (!config.ok()) return fail(config.error().message);
    if (!config.value().store.starts_with("lmdb:")) {
        // Network stores parse their address at Open and connect lazily (message_store.h).
        if (auto store = OpenMessageStore(config.value()); !store.ok())
            return fail(store.error().message);
    } else if (config.value().store.size() == 5) {
        return fail("HASHD_STORE=lmdb: needs a directory");
    }
    std::printf("hashd-fcgi: %s: valid\n", path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    const ProgramFlags flags{
        .program = "hashd-fcgi",
        .help = ConfigHelp,
        .print_flags = {{"--settings-markdown", SettingsMarkdown},
                        {"--print-defaults-file", DefaultsFileSettings}},
        .check_config = true,
    };
    const FlagOutcome outcome = ParseFlags(flags, args);
    if (outcome.kind == FlagOutcome::Kind::kCheckConfig) return CheckConfigFile(outcome.path);
    if (auto exit_code = FinishPrintOrUsage(outcome)) return *exit_code;
    // Before any password reaches memory and before any thread starts (no_core_dumps.h).
    if (auto undumpable = DisableCoreDumps(); !undumpable.ok()) {
        std::fprintf(stderr, "hashd-fcgi: %s\n", undumpable.error().message.c_str());
        return 1;
    }
    auto config = LoadConfig([](const char* name) { return std::getenv(name); }, args);
    if (!config.ok()) {
        std::fprintf(stderr, "hashd-fcgi: %s\n", config.error().message.c_str());
        return 2;
    }
    const Logger logger(config.value().log);
    // Who may call (HASHD_AUTH): with a gated route and no readable, valid clients file the
    // operator asked for protection this process cannot give, so it does not start.
    auto access = AccessControl::Load(config.value());
    if (!access.ok()) {
        logger.Log(LogLevel::kError, "cannot load the API clients: refusing to start",
                   {{"ERROR", access.error().message}});
        return 2;
    }
    // Before anything is served: an engine that disagrees with libxcrypt would store hashes no
    // other bcrypt verifies. Exit code 2, as for any other configuration the process refuses.
    if (config.value().bcrypt_engine == BcryptEngineKind::kInterleaved) {
        if (auto check = BcryptSelfTest(config.value().bcrypt_lanes); !check.ok()) {
            logger.Log(LogLevel::kError,
                       "bcrypt engine self-test failed: refusing to start (HASHD_BCRYPT_ENGINE="
                       "libxcrypt runs without the engine)",
                       {{"ERROR", check.error().message}});
            return 2;
        }
    }
    if (!IsListeningSocket(kListenFd)) {
        logger.Log(LogLevel::kError,
                   "fd 0 is not a listening socket; start hashd-fcgi with spawn-fcgi -n", {});
        return 2;
    }

    // Before any thread starts, so that every thread inherits the mask (stop_signals.h).
    auto stop_signals = BlockStopSignals();
    if (!stop_signals.ok()) {
        logger.Log(LogLevel::kError, "cannot block the stop signals",
                   {{"ERROR", stop_signals.error().message}});
        return 1;
    }

    auto metrics = Metrics::Open(config.value(), RouteKeys());
    if (!metrics.ok()) {
        logger.Log(LogLevel::kError, "cannot open the metrics region",
                   {{"ERROR", metrics.error().message}});
        return 1;
    }
    auto store = OpenMessageStore(config.value());
    if (!store.ok()) {
        logger.Log(LogLevel::kError, "cannot open the message store",
                   {{"ERROR", store.error().message}});
        return 1;
    }

    FCGX_Init();
    std::atomic<bool> draining{false};
    // Readiness is asked of the store at most once a second per process (readiness.h).
    ReadinessCache readiness(std::chrono::seconds(1));
    const Services services{config.value(), *store.value(), *metrics.value(), draining, readiness};
    FcgiServer server(services, logger, kListenFd, std::move(access).value());

    // Declared after the server: joined (and its stop reaction done) before the server goes.
    const StopSignalWaiter signal_waiter(stop_signals.value(), [&](int signal_number) {
        draining.store(true);
        // Ignored on failure, as all of this process's notifications (notify.h).
        static_cast<void>(NotifyStopping("Finishing in-flight requests"));
        logger.Log(LogLevel::kInfo, "stopping: finishing in-flight requests",
                   {{"SIGNAL", strsignal(signal_number)}});
        server.Stop();
    });
    const WatchdogThread watchdog(WatchdogPingIntervalFromEnvironment(),
                                  [&server] { return server.Healthy(kStuckWorker); });

    logger.Log(LogLevel::kInfo, "serving",
               {{"VERSION", kVersion},
                {"THREADS", std::to_string(config.value().threads)},
                {"INSTANCE", std::to_string(config.value().instance)},
                {"STORE_BACKEND", std::string(store.value()->Backend())}});
    static_cast<void>(
        NotifyReady("Serving with " + std::to_string(config.value().threads) + " threads"));
    server.Run();

    logger.Log(LogLevel::kInfo, "stopped", {});
    return 0;
}
