#include "config.h"

#include <charconv>
#include <cstdint>
#include <sstream>
#include <string_view>

namespace hashd {
namespace {

struct Setting {
    const char* name;  // flag name; the variable is HASHD_ + upper-case with '-' -> '_'
    const char* help;
    std::function<bool(Config&, std::string_view)> apply;
};

bool ParseInt(std::string_view text, long long lo, long long hi, long long& out) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < lo || value > hi)
        return false;
    out = value;
    return true;
}

// A numeric setting stored in `field`, accepted within [lo, hi].
template <typename Number>
auto NumberSetting(Number Config::*field, long long lo, long long hi) {
    return [=](Config& c, std::string_view text) {
        long long v = 0;
        if (!ParseInt(text, lo, hi, v)) return false;
        c.*field = static_cast<Number>(v);
        return true;
    };
}

const std::vector<Setting>& Settings() {
    static const std::vector<Setting> settings = {
        {"cost-default", "bcrypt cost when a request names none (4..31, within min..max) [12]",
         NumberSetting(&Config::cost_default, 4, 31)},
        {"cost-min", "lowest cost a client may request (4..31) [10]",
         NumberSetting(&Config::cost_min, 4, 31)},
        {"cost-max", "highest cost a client may request or a verified hash may carry (4..31) [14]",
         NumberSetting(&Config::cost_max, 4, 31)},
        {"threads", "hashing threads per process (1..256) [1]",
         NumberSetting(&Config::threads, 1, 256)},
        {"accept-threads",
         "threads that accept, parse and admit requests and answer the routes that do not "
         "hash (probes, messages) (1..256) [2]",
         NumberSetting(&Config::accept_threads, 1, 256)},
        {"legacy-get", "serve GET /gethash/<password>/; 0 answers 410 (0|1) [1]",
         [](Config& c, std::string_view t) {
             if (t != "0" && t != "1") return false;
             c.legacy_get = t == "1";
             return true;
         }},
        {"queue-deadline-ms",
         "admit a hashing request only when the work queued ahead of it is expected to finish "
         "within this; refuse it at once (503) otherwise; 0 admits everything (0..600000) "
         "[1000]",
         NumberSetting(&Config::queue_deadline_ms, 0, 600000)},
        {"store",
         "message store: lmdb:PATH | redis://HOST:PORT/DB | postgresql://... "
         "[lmdb:/var/lib/hashd/messages]",
         [](Config& c, std::string_view t) {
             if (!t.starts_with("lmdb:") && !t.starts_with("redis://") &&
                 !t.starts_with("postgresql://") && !t.starts_with("postgres://"))
                 return false;
             c.store = t;
             return true;
         }},
        {"lmdb-map-size", "bytes the LMDB store may grow to (65536..2^40) [1073741824]",
         NumberSetting(&Config::lmdb_map_size, 65536, 1LL << 40)},
        {"store-timeout-ms", "connect and command timeout of Redis/PostgreSQL (50..60000) [1000]",
         NumberSetting(&Config::store_timeout_ms, 50, 60000)},
        {"instance", "this process's number in the VM's pool, 1..metrics-slots [1]",
         NumberSetting(&Config::instance, 1, 4096)},
        {"metrics-slots", "processes the shared metrics region has room for (1..4096) [64]",
         NumberSetting(&Config::metrics_slots, 1, 4096)},
        {"runtime-dir", "directory of the pool-wide metrics region [/run/hashd]",
         [](Config& c, std::string_view t) {
             if (t.empty()) return false;
             c.runtime_dir = t;
             return true;
         }},
        {"log", "where logs go: auto (journald when stderr is the journal) | journal | stderr",
         [](Config& c, std::string_view t) {
             if (t == "auto")
                 c.log = LogTarget::kAuto;
             else if (t == "journal")
                 c.log = LogTarget::kJournal;
             else if (t == "stderr")
                 c.log = LogTarget::kStderr;
             else
                 return false;
             return true;
         }},
        {"max-body-bytes", "largest request body read (1024..16777216) [1048576]",
         NumberSetting(&Config::max_body_bytes, 1024, 16 << 20)},
    };
    return settings;
}

std::string EnvName(std::string_view flag) {
    std::string name = "HASHD_";
    for (char ch : flag) name += ch == '-' ? '_' : static_cast<char>(ch - 'a' + 'A');
    return name;
}

ApiError Invalid(const std::string& where, const Setting& s) {
    return {500, "invalid_setting", where + ": invalid value; expected " + s.help};
}

}  // namespace

Result<Config> LoadConfig(const std::function<const char*(const char*)>& env,
                          const std::vector<std::string>& args) {
    Config config;
    for (const Setting& s : Settings()) {
        const std::string var = EnvName(s.name);
        if (const char* value = env(var.c_str()); value != nullptr && *value != '\0') {
            if (!s.apply(config, value)) return Invalid(var, s);
        }
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (!arg.starts_with("--"))
            return ApiError{500, "invalid_setting", "unexpected argument " + std::string(arg)};
        arg.remove_prefix(2);
        std::string_view value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        }
        bool known = false;
        for (const Setting& s : Settings()) {
            if (arg != s.name) continue;
            known = true;
            if (!s.apply(config, value)) return Invalid("--" + std::string(arg), s);
        }
        if (!known) return ApiError{500, "invalid_setting", "unknown flag --" + std::string(arg)};
    }
    if (config.cost_min > config.cost_max || config.cost_default < config.cost_min ||
        config.cost_default > config.cost_max)
        return ApiError{500, "invalid_setting",
                        "HASHD_COST_MIN <= HASHD_COST_DEFAULT <= HASHD_COST_MAX must hold"};
    if (config.instance > config.metrics_slots)
        return ApiError{500, "invalid_setting", "HASHD_INSTANCE must be <= HASHD_METRICS_SLOTS"};
    return config;
}

std::string ConfigHelp() {
    std::ostringstream out;
    out << "Usage: hashd-fcgi [--setting=value ...]\n"
           "Serves the hashd API over FastCGI on the socket inherited as fd 0\n"
           "(as spawn-fcgi -n hands it). Each setting is read from the environment\n"
           "variable shown, and a flag of the same name overrides it.\n\n";
    for (const Setting& s : Settings())
        out << "  --" << s.name << " (" << EnvName(s.name) << ")\n      " << s.help << "\n";
    out << "\n  --help       this text\n  --version    print the version\n";
    return out.str();
}

}  // namespace hashd
