#include "core/config.h"

#include <charconv>
#include <cstdint>
#include <sstream>
#include <string_view>

#include "core/access_policy.h"

// The settings table below is the one place a setting is described. Everything a user reads
// about settings is generated from it: --help, docs/settings.md's settings table
// (--settings-markdown, compared with that file by a unit test) and the commented defaults of
// /etc/default/hashd (--print-defaults-file, run by the build). Defaults are never written as
// text: they are read from a default-constructed Config, so a changed default in config.h
// changes every document at the next build.

namespace hashd {
namespace {

struct Setting {
    const char* name;     // flag name; the variable is HASHD_ + upper-case with '-' -> '_'
    std::string accepts;  // the values accepted, for --help and the defaults file
    const char* doc;      // what it means, one paragraph (Markdown code spans allowed)
    std::function<bool(Config&, std::string_view)> apply;  // false: value not accepted
    std::function<std::string(const Config&)> show;        // the value as apply() accepts it
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
Setting NumberSetting(const char* name, Number Config::*field, long long lo, long long hi,
                      const char* doc) {
    return {name, std::to_string(lo) + ".." + std::to_string(hi), doc,
            [=](Config& c, std::string_view text) {
                long long v = 0;
                if (!ParseInt(text, lo, hi, v)) return false;
                c.*field = static_cast<Number>(v);
                return true;
            },
            [=](const Config& c) { return std::to_string(c.*field); }};
}

// A free-text setting stored in `field`, accepted when `valid` says so.
Setting TextSetting(const char* name, std::string Config::*field, const char* accepts,
                    bool (*valid)(std::string_view), const char* doc) {
    return {name, accepts, doc,
            [=](Config& c, std::string_view text) {
                if (!valid(text)) return false;
                c.*field = text;
                return true;
            },
            [=](const Config& c) { return c.*field; }};
}

bool IsAccessPolicy(std::string_view t) {
    return ParseAccessPolicy(t).ok();
}

bool IsStoreUrl(std::string_view t) {
    return t.starts_with("lmdb:") || t.starts_with("redis://") || t.starts_with("postgresql://") ||
           t.starts_with("postgres://");
}

constexpr const char* LogTargetName(LogTarget target) {
    switch (target) {
        case LogTarget::kJournal:
            return "journal";
        case LogTarget::kStderr:
            return "stderr";
        case LogTarget::kAuto:
            break;
    }
    return "auto";
}

const std::vector<Setting>& Settings() {
    static const std::vector<Setting> settings = {
        NumberSetting("cost-default", &Config::cost_default, 4, 31,
                      "bcrypt cost when a request names none, within `HASHD_COST_MIN..MAX`; also "
                      "the policy below which `/v1/verify` says `needs_rehash`. Each +1 doubles "
                      "the time per hash (cost 12 is about 0.2 s of one core)"),
        NumberSetting("cost-min", &Config::cost_min, 4, 31,
                      "lowest cost a client may ask for (below it: 400)"),
        NumberSetting("cost-max", &Config::cost_max, 4, 31,
                      "highest cost a client may ask for, and highest cost of a hash "
                      "`/v1/verify` will compute (a hash can name cost 31: days of CPU)"),
        NumberSetting("threads", &Config::threads, 1, 256,
                      "hashing threads per process; with P = cores, one hash per core "
                      "(`bench/README.md` measured one single-thread process per CPU as the "
                      "best; see \"Capacity and overload\" in docs/operations.md)"),
        {"bcrypt-engine", "interleaved|libxcrypt",
         "`interleaved`: each hashing thread computes up to `HASHD_BCRYPT_LANES` queued hashes "
         "of one cost at once (`docs/bcrypt-engine.md`), after a start-up self-test against "
         "libxcrypt that refuses to start on any difference; `libxcrypt`: one hash at a time "
         "through libxcrypt alone",
         [](Config& c, std::string_view t) {
             if (t != "interleaved" && t != "libxcrypt") return false;
             c.bcrypt_engine =
                 t == "interleaved" ? BcryptEngineKind::kInterleaved : BcryptEngineKind::kLibxcrypt;
             return true;
         },
         [](const Config& c) {
             return std::string(c.bcrypt_engine == BcryptEngineKind::kInterleaved ? "interleaved"
                                                                                  : "libxcrypt");
         }},
        NumberSetting("bcrypt-lanes", &Config::bcrypt_lanes, 1, 4,
                      "with the interleaved engine, how many hashes of one cost a hashing thread "
                      "computes together (a lone request still runs alone); the default was "
                      "measured as the fastest on the target CPU (`docs/bcrypt-engine.md`)"),
        NumberSetting("accept-threads", &Config::accept_threads, 1, 256,
                      "threads per process that accept, parse and admit requests and answer "
                      "those that do not hash (probes, messages) themselves, so a probe never "
                      "waits behind a hash; one at a time is in accept(), and one about to "
                      "wait on the store hands that turn on, so a probe never waits behind a "
                      "store call either while another thread is free"),
        {"legacy-get", "0|1",
         "`0` switches `GET /gethash/<password>/` off: it answers 410 with a hint to POST",
         [](Config& c, std::string_view t) {
             if (t != "0" && t != "1") return false;
             c.legacy_get = t == "1";
             return true;
         },
         [](const Config& c) { return std::string(c.legacy_get ? "1" : "0"); }},
        NumberSetting("queue-deadline-ms", &Config::queue_deadline_ms, 0, 600000,
                      "a hashing request is admitted when the work queued ahead of it is "
                      "expected to finish within this, else refused at once with 503, "
                      "`Retry-After` and `Retry-After-Ms`; `0` admits everything"),
        TextSetting("store", &Config::store, "lmdb:PATH | redis://HOST:PORT/DB | postgresql://...",
                    IsStoreUrl,
                    "message store: `lmdb:PATH`, `redis://HOST:PORT/DB`, "
                    "`postgresql://USER@HOST:PORT/DB`. The unit's `IPAddressDeny=any` blocks a "
                    "network store until a drop-in allows its address (the Ansible role writes "
                    "it from `hashd_store_allow`)"),
        NumberSetting("lmdb-map-size", &Config::lmdb_map_size, 65536, 1LL << 40,
                      "bytes the LMDB file may grow to; beyond it POST /messages answers 507"),
        NumberSetting("store-timeout-ms", &Config::store_timeout_ms, 50, 60000,
                      "connect and command timeout of Redis and PostgreSQL; a slower store "
                      "counts as down (`/messages` 503, hashing unaffected)"),
        NumberSetting("multivac-max-queued", &Config::multivac_max_queued, 1, 100000000,
                      "MultiVAC data that may wait to be processed; beyond it POST "
                      "/multivac/data answers 503 `queue_full` (at 64 KiB a datum, the default "
                      "fits LMDB's default map)"),
        NumberSetting("idempotency-window-s", &Config::idempotency_window_s, 60, 30 * 86400,
                      "seconds a POST /multivac/data retry (same `Idempotency-Key`, or the same "
                      "`X-Request-Id` from nginx or the load balancer) answers the first "
                      "datum's id instead of queueing it again; older keys expire"),
        NumberSetting("client-work-rate", &Config::client_work_rate, 0, 1000000,
                      "hashing work per client and second in this process, in cost-12 hashes "
                      "(a cost-14 hash or a verify of a `$2b$14$` hash counts 4); beyond it "
                      "429 with `Retry-After`. The client is its API token's id, else its "
                      "address. `0` switches it off"),
        NumberSetting("client-work-burst", &Config::client_work_burst, 1, 1000000,
                      "cost-12 hashes of work a client may bank for a burst"),
        TextSetting("auth", &Config::auth, "GROUP=open|token|mtls|any,...", IsAccessPolicy,
                    "who may call each route group (`hash`, `verify`, `legacy`, `messages`, "
                    "`multivac`, or `all`): `open`, `token` (an API token as `Authorization: "
                    "Bearer`), `mtls` (a client certificate nginx verified) or `any` (either), "
                    "e.g. `hash=token,verify=token,legacy=open`; groups not named, and every "
                    "group when empty, are open. Missing or wrong credentials: 401; a known "
                    "client on a group it may not use: 403 (docs/security.md)"),
        TextSetting(
            "tokens-file", &Config::tokens_file, "a file",
            [](std::string_view t) { return !t.empty(); },
            "the API clients (`token` and `cert` lines, rendered by Ansible, a systemd "
            "credential), read at start when `HASHD_AUTH` gates a group: unreadable or "
            "malformed, the process refuses to start"),
        NumberSetting("instance", &Config::instance, 1, 4096,
                      "this process's number in the VM's pool (systemd's `%i`, set by the "
                      "unit); its slot in the metrics region, at most `HASHD_METRICS_SLOTS`"),
        NumberSetting("metrics-slots", &Config::metrics_slots, 1, 4096,
                      "processes the pool-wide metrics region has room for"),
        TextSetting(
            "runtime-dir", &Config::runtime_dir, "a directory",
            [](std::string_view t) { return !t.empty(); },
            "where the pool-wide metrics region lives, shared by every process of the pool"),
        {"log", "auto|journal|stderr",
         "`auto`: native journald entries when stderr is the journal, JSON lines on stderr "
         "otherwise; `journal`; `stderr`",
         [](Config& c, std::string_view t) {
             for (LogTarget target : {LogTarget::kAuto, LogTarget::kJournal, LogTarget::kStderr})
                 if (t == LogTargetName(target)) {
                     c.log = target;
                     return true;
                 }
             return false;
         },
         [](const Config& c) { return std::string(LogTargetName(c.log)); }},
        NumberSetting("max-body-bytes", &Config::max_body_bytes, 1024, 16 << 20,
                      "largest request body the app reads (nginx enforces smaller per-route "
                      "limits first)"),
    };
    return settings;
}

std::string EnvName(std::string_view flag) {
    std::string name = "HASHD_";
    for (char ch : flag) name += ch == '-' ? '_' : static_cast<char>(ch - 'a' + 'A');
    return name;
}

Error Invalid(const std::string& where, const Setting& s) {
    return {ErrorKind::kInternal, "invalid_setting",
            where + ": invalid value; expected " + s.accepts};
}

// `text` folded into lines of at most `width` characters, each starting with `prefix`.
std::string Wrap(std::string_view text, std::string_view prefix, std::size_t width) {
    std::string out;
    std::string line(prefix);
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find(' ', pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view word = text.substr(pos, end - pos);
        if (line.size() > prefix.size() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line = prefix;
        }
        if (line.size() > prefix.size()) line += ' ';
        line += word;
        pos = end + 1;
    }
    return out + line + "\n";
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
            return Error{ErrorKind::kInternal, "invalid_setting",
                         "unexpected argument " + std::string(arg)};
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
        if (!known)
            return Error{ErrorKind::kInternal, "invalid_setting",
                         "unknown flag --" + std::string(arg)};
    }
    if (config.cost_min > config.cost_max || config.cost_default < config.cost_min ||
        config.cost_default > config.cost_max)
        return Error{ErrorKind::kInternal, "invalid_setting",
                     "HASHD_COST_MIN <= HASHD_COST_DEFAULT <= HASHD_COST_MAX must hold"};
    if (config.instance > config.metrics_slots)
        return Error{ErrorKind::kInternal, "invalid_setting",
                     "HASHD_INSTANCE must be <= HASHD_METRICS_SLOTS"};
    return config;
}

bool IsSettingVariable(std::string_view name) {
    for (const Setting& s : Settings())
        if (EnvName(s.name) == name) return true;
    return false;
}

std::string ConfigHelp() {
    const Config defaults;
    std::ostringstream out;
    out << "Usage: hashd-fcgi [--setting=value ...]\n"
           "Serves the hashd API over FastCGI on the socket inherited as fd 0\n"
           "(as spawn-fcgi -n hands it). Each setting is read from the environment\n"
           "variable shown, and a flag of the same name overrides it.\n\n";
    for (const Setting& s : Settings()) {
        out << "  --" << s.name << " (" << EnvName(s.name) << "), default " << s.show(defaults)
            << ", accepts " << s.accepts << "\n"
            << Wrap(s.doc, "      ", 80);
    }
    out << "\n  --help                 this text\n"
           "  --version              print the version\n"
           "  --settings-markdown    the settings as docs/settings.md's Markdown table\n"
           "  --print-defaults-file  the settings as commented VAR=default lines\n"
           "  --check-config FILE    check the settings of an environment file (NAME=VALUE\n"
           "                         lines, over this environment) with this loader; exit 0\n"
           "                         when valid, 2 with the reason (never a value) if not\n";
    return out.str();
}

std::string SettingsMarkdown() {
    const Config defaults;
    std::string out = "| variable | default | meaning |\n|---|---|---|\n";
    for (const Setting& s : Settings())
        out += "| `" + EnvName(s.name) + "` | `" + s.show(defaults) + "` | " + s.doc + " |\n";
    return out;
}

std::string DefaultsFileSettings() {
    const Config defaults;
    std::string out;
    for (const Setting& s : Settings()) {
        out += Wrap(s.doc, "# ", 92) + "# Accepts: " + s.accepts + "\n";
        out += "#" + EnvName(s.name) + "=" + s.show(defaults) + "\n\n";
    }
    return out;
}

}  // namespace hashd
