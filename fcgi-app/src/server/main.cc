// hashd-fcgi: serves the hashd API over FastCGI on the listening socket inherited as fd 0, as
// `spawn-fcgi -n` hands it. See --help for the settings.

#include <fcgiapp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/access.h"
#include "api/router.h"
#include "core/build_info.h"
#include "core/config.h"
#include "core/env_file.h"
#include "core/logger.h"
#include "core/no_core_dumps.h"
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

// Feeds the systemd watchdog while the server is healthy, until told to stop.
class Watchdog {
  public:
    explicit Watchdog(const FcgiServer& server) {
        uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0) return;
        thread_ = std::jthread([this, &server, usec](std::stop_token stop) {
            const auto interval = std::chrono::microseconds(usec / 2);
            std::unique_lock lock(mutex_);
            while (!stop.stop_requested()) {
                if (server.Healthy(kStuckWorker)) sd_notify(0, "WATCHDOG=1");
                wake_.wait_for(lock, stop, interval, [] { return false; });
            }
        });
    }

  private:
    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::jthread thread_;  // last: joined before the members it uses are destroyed
};

// --check-config FILE: the settings of FILE, over this process's environment (as systemd
// layers an EnvironmentFile= over /etc/default/hashd), through the same loader and store
// address parsing a start would use. Nothing is opened or connected; an LMDB path is not
// created. Exit 0 when valid, 2 with one line naming what is wrong.
int CheckConfigFile(const std::vector<std::string>& args) {
    if (args.size() != 2 || args[0] != "--check-config") {
        std::fputs("hashd-fcgi: usage: hashd-fcgi --check-config FILE\n", stderr);
        return 2;
    }
    auto file = ReadEnvFile(args[1]);
    auto fail = [&](const std::string& why) {
        std::fprintf(stderr, "hashd-fcgi: %s: %s\n", args[1].c_str(), why.c_str());
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
    std::printf("hashd-fcgi: %s: valid\n", args[1].c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (const std::string& arg : args) {
        if (arg == "--help" || arg == "-h") {
            std::fputs(ConfigHelp().c_str(), stdout);
            return 0;
        }
        if (arg == "--settings-markdown") {
            std::fputs(SettingsMarkdown().c_str(), stdout);
            return 0;
        }
        if (arg == "--print-defaults-file") {
            std::fputs(DefaultsFileSettings().c_str(), stdout);
            return 0;
        }
        if (arg == "--check-config") return CheckConfigFile(args);
        if (arg == "--version") {
            std::printf("hashd-fcgi %s (%s)\n", kVersion, kCommit);
            return 0;
        }
    }
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

    // Signals are taken synchronously by the main thread: block them before any thread starts
    // so that every thread inherits the mask. SIGPIPE is ignored: a client that went away is an
    // error value from the write, not a reason to die.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

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

    std::jthread signal_waiter([&] {
        int signal_number = 0;
        sigwait(&stop_signals, &signal_number);
        draining.store(true);
        sd_notify(0, "STOPPING=1\nSTATUS=Finishing in-flight requests");
        logger.Log(LogLevel::kInfo, "stopping: finishing in-flight requests",
                   {{"SIGNAL", strsignal(signal_number)}});
        server.Stop();
    });
    Watchdog watchdog(server);

    logger.Log(LogLevel::kInfo, "serving",
               {{"VERSION", kVersion},
                {"THREADS", std::to_string(config.value().threads)},
                {"INSTANCE", std::to_string(config.value().instance)},
                {"STORE_BACKEND", std::string(store.value()->Backend())}});
    sd_notifyf(0, "READY=1\nSTATUS=Serving with %d threads", config.value().threads);
    server.Run();

    logger.Log(LogLevel::kInfo, "stopped", {});
    // The signal thread is done when Run() returns after a stop; after any other exit of Run()
    // (accept failed), wake it so the join below does not wait for a signal.
    if (!draining.load()) pthread_kill(signal_waiter.native_handle(), SIGTERM);
    return 0;
}
