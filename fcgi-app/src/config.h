#pragma once
// Settings. One source of truth per setting: an environment variable HASHD_<NAME>, which a
// command-line flag --<name> overrides (systemd passes /etc/default/hashd as the environment).
// The table of settings (kSettings in config.cc) drives parsing, validation and --help alike.

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "result.h"

namespace hashd {

enum class LogTarget { kAuto, kJournal, kStderr };

struct Config {
    int cost_default = 12;   // cost used when a request names none
    int cost_min = 10;       // lowest cost a client may ask for
    int cost_max = 14;       // highest cost a client may ask for, or a verified hash may carry
    int threads = 1;         // hashing threads in this process
    int accept_threads = 2;  // threads that accept, parse and admit, and answer non-hashing routes
    bool legacy_get = true;  // serve GET /gethash/<password>/ (else 410)
    int queue_deadline_ms = 1000;  // longest expected wait a hashing request is admitted with
    std::string store = "lmdb:/var/lib/hashd/messages";
    std::size_t lmdb_map_size = std::size_t{1} << 30;  // bytes the LMDB file may grow to
    int store_timeout_ms = 1000;                       // connect/command timeout of network stores
    int instance = 1;                                  // process number within the VM's pool (1..P)
    int metrics_slots = 64;  // upper bound of processes sharing the metrics region
    std::string runtime_dir = "/run/hashd";
    LogTarget log = LogTarget::kAuto;
    std::size_t max_body_bytes = std::size_t{1} << 20;
};

// Reads HASHD_* from `env` (a lookup returning nullptr when unset) and then argv flags.
// Returns an error naming the setting and the accepted values on any invalid input.
Result<Config> LoadConfig(const std::function<const char*(const char*)>& env,
                          const std::vector<std::string>& args);

// The --help text, generated from the settings table.
std::string ConfigHelp();

}  // namespace hashd
