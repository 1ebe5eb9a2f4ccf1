// hashd-bench-limit: the physical limit hashd is measured against.
//
// bcrypt is pure CPU work, so the most hashes per second this machine can produce is what one
// thread per core computes with libxcrypt and nothing else in the way: no HTTP, no TLS, no JSON,
// no process hand-off. Every service figure in bench/results/ is reported as a ratio to this
// number, measured in the same run, so noise from other work on the machine mostly cancels out.
//
// Each thread does exactly what the service does per request: crypt_gensalt_rn("$2b$", cost) (fresh
// kernel randomness every time) followed by crypt_rn. A thread stops starting new hashes once the
// duration has passed and finishes the one in progress; its rate is the hashes it completed
// divided by the time it took to complete them, and the machine's rate is the sum over threads.
//
// --engine interleaved --lanes K measures hashd's own engine instead (fcgi-app/src/hashing/
// bcrypt_engine.h): each thread computes K hashes at once, each with a fresh salt from
// crypt_gensalt_rn, as a hashing thread with a full batch does. bench/engine_limits.py runs
// both, and John the Ripper, side by side.
//
// Output: one line per cost, `cost=12 threads=2 seconds=8.01 hashes=74 rate=9.24` (followed by
// `engine=interleaved lanes=3` for the engine), so that bench/run can parse it. Exit status 1
// when a computation fails (the figure would be meaningless).

#include <crypt.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "hashing/bcrypt.h"
#include "hashing/bcrypt_engine.h"

namespace {

using Clock = std::chrono::steady_clock;

struct ThreadResult {
    long hashes = 0;
    double seconds = 0;
    bool failed = false;
    int error = 0;  // errno of the failing call (errno is per thread)
};

// Hashes with a fresh salt per iteration until `deadline`, like one service worker thread would.
ThreadResult HashUntil(int cost, Clock::time_point deadline) {
    ThreadResult result;
    crypt_data data;
    std::memset(&data, 0, sizeof data);
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    const auto start = Clock::now();
    while (Clock::now() < deadline) {
        if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                             sizeof setting) == nullptr ||
            crypt_rn("correct horse battery staple", setting, &data, sizeof data) == nullptr) {
            result.failed = true;
            result.error = errno;
            break;
        }
        ++result.hashes;
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

// The engine's counterpart of HashUntil: `lanes` hashes at a time, fresh salts each time.
ThreadResult EngineUntil(int cost, int lanes, Clock::time_point deadline) {
    ThreadResult result;
    const std::string password = "correct horse battery staple";
    const auto start = Clock::now();
    while (Clock::now() < deadline) {
        std::vector<std::string> settings;
        for (int i = 0; i < lanes; ++i) {
            auto setting = hashd::BcryptNewSetting(cost);
            if (!setting.ok()) {
                result.failed = true;
                return result;
            }
            settings.push_back(setting.value());
        }
        std::vector<hashd::BcryptInput> inputs;
        for (const std::string& setting : settings) inputs.push_back({password, setting});
        for (const auto& hash : hashd::BcryptCompute(inputs, lanes)) {
            if (!hash.ok()) {
                result.failed = true;
                result.error = EINVAL;
                return result;
            }
            ++result.hashes;
        }
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
}

std::vector<int> ParseCosts(const char* text) {
    std::vector<int> costs;
    std::string item;
    for (const char* p = text;; ++p) {
        if (*p == ',' || *p == '\0') {
            if (!item.empty()) costs.push_back(std::atoi(item.c_str()));
            item.clear();
            if (*p == '\0') break;
        } else {
            item += *p;
        }
    }
    return costs;
}

void Usage() {
    std::fprintf(stderr,
                 "usage: hashd-bench-limit [--costs 4,10,12] [--seconds S] [--threads N]\n"
                 "                         [--engine libxcrypt|interleaved] [--lanes K]\n"
                 "  Runs bcrypt ($2b$) on N threads (default: one per core) for about S seconds\n"
                 "  per cost (default 5; a hash in progress is finished) and prints hashes/s;\n"
                 "  with libxcrypt (default), or hashd's engine K hashes at a time (default 4).\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> costs = {4, 10, 12};
    double seconds = 5;
    unsigned threads = std::thread::hardware_concurrency();
    bool engine = false;
    int lanes = 4;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--costs" && has_value) {
            costs = ParseCosts(argv[++i]);
        } else if (arg == "--seconds" && has_value) {
            seconds = std::atof(argv[++i]);
        } else if (arg == "--threads" && has_value) {
            threads = static_cast<unsigned>(std::atoi(argv[++i]));
        } else if (arg == "--engine" && has_value) {
            const std::string name = argv[++i];
            if (name != "libxcrypt" && name != "interleaved") {
                Usage();
                return 2;
            }
            engine = name == "interleaved";
        } else if (arg == "--lanes" && has_value) {
            lanes = std::atoi(argv[++i]);
            if (lanes < 1 || lanes > hashd::kBcryptMaxLanes) {
                Usage();
                return 2;
            }
        } else if (arg == "--help" || arg == "-h") {
            Usage();
            return 0;
        } else {
            Usage();
            return 2;
        }
    }
    if (threads == 0) threads = 1;
    if (costs.empty() || seconds <= 0) {
        Usage();
        return 2;
    }

    for (const int cost : costs) {
        if (cost < 4 || cost > 31) {
            std::fprintf(stderr, "hashd-bench-limit: cost %d outside bcrypt's 4..31\n", cost);
            return 2;
        }
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(seconds));
        std::vector<ThreadResult> results(threads);
        std::vector<std::thread> workers;
        for (unsigned t = 0; t < threads; ++t) {
            workers.emplace_back([&results, t, cost, deadline, engine, lanes] {
                results[t] =
                    engine ? EngineUntil(cost, lanes, deadline) : HashUntil(cost, deadline);
            });
        }
        for (auto& w : workers) w.join();

        long hashes = 0;
        double rate = 0;
        double longest = 0;
        for (const auto& r : results) {
            if (r.failed) {
                std::fprintf(stderr, "hashd-bench-limit: %s failed at cost %d: %s\n",
                             engine ? "the engine" : "libxcrypt", cost, std::strerror(r.error));
                return 1;
            }
            hashes += r.hashes;
            if (r.seconds > 0) rate += static_cast<double>(r.hashes) / r.seconds;
            if (r.seconds > longest) longest = r.seconds;
        }
        std::printf("cost=%d threads=%u seconds=%.2f hashes=%ld rate=%.2f", cost, threads, longest,
                    hashes, rate);
        if (engine) std::printf(" engine=interleaved lanes=%d", lanes);
        std::printf("\n");
        std::fflush(stdout);
    }
    return 0;
}
