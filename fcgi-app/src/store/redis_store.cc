#include "store/redis_store.h"

#include <unistd.h>

#include <charconv>

#include "core/text.h"
#include "store/store_errors.h"

namespace hashd {
namespace {

constexpr std::string_view kKeyPrefix = "hashd:msg:";

timeval ToTimeval(std::chrono::milliseconds ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000),
                   static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

bool ParseInt(std::string_view text, int& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

Error BadUrl(std::string_view why) {
    return {ErrorKind::kInternal, "store_config_invalid",
            "HASHD_STORE is not a valid redis:// address (" + std::string(why) +
                "); expected redis://[[user]:password@]host[:port][/db]"};
}

std::string Key(std::string_view digest) {
    std::string key(kKeyPrefix);
    key += digest;
    return key;
}

}  // namespace

Result<RedisAddress> ParseRedisUrl(std::string_view url) {
    constexpr std::string_view kScheme = "redis://";
    if (!url.starts_with(kScheme)) return BadUrl("it does not start with redis://");
    std::string_view rest = url.substr(kScheme.size());
    RedisAddress address;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty() && (!ParseInt(db, address.db) || address.db < 0))
            return BadUrl("the database is not a number");
        rest = rest.substr(0, slash);
    }
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view credentials = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = credentials.find(':');
        if (colon == std::string_view::npos) return BadUrl("credentials need user:password");
        // RFC 3986 user info is percent-encoded (hashd-gce-config writes it so, as redis-py
        // and libpq read it): "%2B" is "+", and a raw "@" or ":" could not be told apart from
        // the separators otherwise. '+' stays '+' (it is not a space outside a query).
        auto user = PercentDecode(credentials.substr(0, colon));
        auto password = PercentDecode(credentials.substr(colon + 1));
        if (!user || !password)
            return BadUrl("the user or password has a malformed %XX escape; write % as %25");
        address.user = std::move(*user);
        address.password = std::move(*password);
    }
    if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
        if (!ParseInt(rest.substr(colon + 1), address.port) || address.port <= 0 ||
            address.port > 65535)
            return BadUrl("the port is not a number from 1 to 65535");
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) return BadUrl("the host is missing");
    address.host = rest;
    return address;
}

Result<std::unique_ptr<RedisStore>> RedisStore::Open(std::string_view url,
                                                     std::chrono::milliseconds timeout) {
    auto address = ParseRedisUrl(url);
    if (!address.ok()) return address.error();
    return std::unique_ptr<RedisStore>(new RedisStore(std::move(address).value(), timeout));
}

RedisStore::RedisStore(RedisAddress address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    consumer_ = std::string(host) + ":" + std::to_string(getpid());
}

Status RedisStore::Connect(Connection& connection) {
    const auto now = Backoff::Clock::now();
    if (!connection.backoff.Ready(now))
        return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(now));
    auto fail = [&] {
        std::string reason = connection.context && connection.context->err
                                 ? connection.context->errstr
                                 : "connected, but AUTH/SELECT failed or timed out";
        connection.context.reset();
        const auto failed_at = Backoff::Clock::now();
        connection.backoff.Failed(failed_at);
        return StoreUnavailable(
            Backend(), connection.backoff.RetryAfterSeconds(failed_at),
            "redis " + address_.host + ":" + std::to_string(address_.port) + ": " + reason);
    };
    const timeval tv = ToTimeval(timeout_);
    connection.context.reset(redisConnectWithTimeout(address_.host.c_str(), address_.port, tv));
    if (!connection.context || connection.context->err) return fail();
    if (redisSetTimeout(connection.context.get(), tv) != REDIS_OK) return fail();
    redisEnableKeepAlive(connection.context.get());

    auto run = [&](std::vector<std::string> argv) {
        std::vector<const char*> args;
        std::vector<size_t> lengths;
        for (const auto& arg : argv) {
            args.push_back(arg.data());
            lengths.push_back(arg.size());
        }
        ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
            connection.context.get(), static_cast<int>(args.size()), args.data(), lengths.data())));
        return reply && reply->type != REDIS_REPLY_ERROR;
    };
    if (!address_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!address_.user.empty()) auth.push_back(address_.user);
        auth.push_back(address_.password);
        if (!run(std::move(auth))) return fail();
    }
    if (address_.db != 0 && !run({"SELECT", std::to_string(address_.db)})) return fail();
    return Ok{};
}

Result<RedisStore::ReplyPtr> RedisStore::Command(const std::vector<std::string_view>& argv) {
    Connection& connection = connections_.Get();
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    for (auto arg : argv) {
        args.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    // A connection that worked before may have gone stale (Redis restarted, idle timeout):
    // its failure earns one immediate retry on a fresh connection. A fresh one that fails
    // means Redis is in trouble: back off. Only a first attempt that failed fast (reset,
    // closed) earns the retry: one that took half the timeout or more met a hung server
    // (SIGSTOPped, swapping), which would only time out again, and the request must end
    // within about HASHD_STORE_TIMEOUT_MS. (Half, not all: a timed-out poll can return a
    // little before the deadline, its milliseconds rounded down.)
    const auto started = Backoff::Clock::now();
    std::string last_error;
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool fresh = !connection.context;
        if (fresh) {
            if (auto connected = Connect(connection); !connected.ok()) return connected.error();
        }
        ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
            connection.context.get(), static_cast<int>(args.size()), args.data(), lengths.data())));
        if (reply) {
            connection.backoff.Succeeded();
            if (reply->type != REDIS_REPLY_ERROR) return reply;
            const std::string_view error(reply->str, reply->len);
            // Under maxmemory-policy noeviction, a full Redis refuses writes with -OOM.
            if (error.starts_with("OOM")) return StoreFull(Backend());
            if (error.starts_with("READONLY") || error.starts_with("NOAUTH")) {
                // The connection outlived its server's role or its login: READONLY after a
                // failover demoted this server to a replica, NOAUTH after the server lost
                // our AUTH (a restart with requirepass behind a proxy). Keeping it would
                // fail every write until a restart; a new connection reaches the current
                // primary through the configured address and logs in again.
                last_error = "redis replied " + std::string(error);
                connection.context.reset();
                if (fresh) break;
                continue;
            }
            // LOADING, MASTERDOWN, BUSY...: the server is there but cannot serve yet.
            return StoreUnavailable(Backend(), 1, "redis replied " + std::string(error));
        }
        last_error = connection.context->errstr;
        connection.context.reset();  // I/O error or timeout: the protocol state is unknown
        if (fresh || Backoff::Clock::now() - started >= timeout_ / 2) break;
    }
    const auto now = Backoff::Clock::now();
    connection.backoff.Failed(now);
    return StoreUnavailable(Backend(), connection.backoff.RetryAfterSeconds(now),
                            "redis: " + last_error);
}

Status RedisStore::Put(std::string_view digest, std::string_view message) {
    const std::string key = Key(digest);
    auto reply = Command({"SET", key, message, "NX"});
    if (!reply.ok()) return reply.error();
    // "+OK" when this call stored it, nil when it was already there: both are a success.
    return Ok{};
}

Result<std::optional<std::string>> RedisStore::Get(std::string_view digest) {
    const std::string key = Key(digest);
    auto reply = Command({"GET", key});
    if (!reply.ok()) return reply.error();
    const redisReply& r = *reply.value();
    if (r.type == REDIS_REPLY_NIL) return std::optional<std::string>{};
    if (r.type != REDIS_REPLY_STRING) return StoreUnavailable(Backend(), 1);
    return std::optional<std::string>{std::string(r.str, r.len)};
}

Status RedisStore::Check() {
    auto reply = Command({"PING"});
    if (!reply.ok()) return reply.error();
    return Ok{};
}

}  // namespace hashd
