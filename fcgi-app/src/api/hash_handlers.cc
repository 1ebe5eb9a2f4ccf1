#include "api/hash_handlers.h"

#include <openssl/crypto.h>

#include <chrono>

#include "core/json.h"
#include "core/secret.h"
#include "core/text.h"
#include "hashing/bcrypt.h"
#include "hashing/bcrypt_runner.h"
#include "hashing/password_policy.h"
#include "http/request_body.h"

namespace hashd {
namespace {

constexpr std::string_view kLegacyPrefix = "/gethash/";

Response JsonResponse(int status, const Json::Value& body) {
    Response response;
    response.status = status;
    response.body = WriteJson(body);
    response.AddHeader("Cache-Control", "no-store");
    return response;
}

// The password of /gethash/<password>[/]: one percent-decoded path segment.
Result<Secret> LegacyPassword(std::string_view path) {
    std::string_view raw = path.substr(kLegacyPrefix.size());
    if (raw.ends_with('/')) raw.remove_suffix(1);
    if (raw.empty() || raw.find('/') != std::string_view::npos)
        return Error{ErrorKind::kNotFound, "not_found",
                     "Use GET /gethash/<password>/ or POST /v1/hash."};
    auto decoded = PercentDecode(raw);
    if (!decoded)
        return Error{ErrorKind::kInvalid, "invalid_password",
                     "The password's percent-encoding is malformed."};
    Secret password(*decoded);
    Wipe(*decoded);
    return password;
}

// Accepts the bcrypt string itself or the hex of it, as /v1/hash and /gethash return both.
std::string NormalizeHash(const std::string& hash) {
    if (hash.size() == 120) {
        if (auto decoded = HexDecode(hash)) return *decoded;
    }
    return hash;
}

// The "password" field, present, a string, and within policy.
Result<Secret> RequirePassword(const Json::Value& body) {
    auto password = RequireSecret(body, "password");
    if (!password.ok()) return password;
    if (auto valid = ValidatePassword(password.value().view()); !valid.ok()) return valid.error();
    return password;
}

// The checks of HandleVerify up to the computation: the parsed hash, or the error to answer.
Result<std::string> VerifiableHash(const Json::Value& body, const Services& services) {
    auto given = RequireString(body, "hash");
    if (!given.ok()) return given;
    std::string hash = NormalizeHash(given.value());
    auto parts = ParseBcrypt(hash);
    if (!parts.ok()) return parts.error();
    // A hash can name any cost up to 31 (days of CPU): refuse what we would not compute.
    if (parts.value().cost > services.config.cost_max)
        return Error{ErrorKind::kInvalid, "hash_cost_too_high",
                     "The hash's cost is above this service's maximum of " +
                         std::to_string(services.config.cost_max) + "."};
    return hash;
}

// The one computation of `work`, timed into hash duration by cost; then its answer.
Result<Response> RunPlanned(Result<HashWork> planned, const Services& services) {
    if (!planned.ok()) return planned.error();
    HashWork& work = planned.value();
    const BcryptInput input{work.password.view(), work.setting};
    const auto start = std::chrono::steady_clock::now();
    auto computed = RunBcrypt(std::span(&input, 1), services.config);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (computed.at(0).ok()) services.metrics.RecordHash(work.cost, took.count());
    return work.answer(computed.at(0));
}

Result<Response> HashAnswer(const Result<std::string>& computed, const std::string& setting,
                            int cost) {
    if (!computed.ok())
        return Error{ErrorKind::kInternal, "internal_error", "The hash could not be computed."};
    Json::Value out(Json::objectValue);
    out["salt"] = HexEncode(setting);
    out["hash"] = HexEncode(computed.value());
    out["bcrypt"] = computed.value();
    out["cost"] = cost;
    return JsonResponse(200, out);
}

}  // namespace

int HashCost(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/true, {"password", "cost"});
    if (!body.ok() || !RequirePassword(body.value()).ok()) return 0;
    auto requested = OptionalInt(body.value(), "cost");
    if (!requested.ok()) return 0;
    auto cost = ResolveCost(services.config, requested.value());
    return cost.ok() ? cost.value() : 0;
}

int VerifyCost(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/true, {"password", "hash"});
    if (!body.ok() || !RequirePassword(body.value()).ok()) return 0;
    auto hash = VerifiableHash(body.value(), services);
    if (!hash.ok()) return 0;
    auto parts = ParseBcrypt(hash.value());
    return parts.ok() ? parts.value().cost : 0;
}

int LegacyGetHashCost(const Request& request, const Services& services) {
    if (!services.config.legacy_get) return 0;
    auto password = LegacyPassword(request.path);
    if (!password.ok() || !ValidatePassword(password.value().view()).ok()) return 0;
    return services.config.cost_default;
}

Result<HashWork> PlanHash(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/true, {"password", "cost"});
    if (!body.ok()) return body.error();
    auto password = RequirePassword(body.value());
    if (!password.ok()) return password.error();
    auto requested = OptionalInt(body.value(), "cost");
    if (!requested.ok()) return requested.error();
    auto cost = ResolveCost(services.config, requested.value());
    if (!cost.ok()) return cost.error();
    auto setting = BcryptNewSetting(cost.value());
    if (!setting.ok()) return setting.error();
    HashWork work{std::move(password).value(), setting.value(), cost.value(), nullptr};
    work.answer = [setting = setting.value(), cost = cost.value()](const Result<std::string>& c) {
        return HashAnswer(c, setting, cost);
    };
    return work;
}

Result<HashWork> PlanVerify(const Request& request, const Services& services) {
    auto body = ParseBody(request, /*allow_form=*/true, {"password", "hash"});
    if (!body.ok()) return body.error();
    auto password = RequirePassword(body.value());
    if (!password.ok()) return password.error();
    auto verifiable = VerifiableHash(body.value(), services);
    if (!verifiable.ok()) return verifiable.error();
    const std::string& hash = verifiable.value();
    auto parts = ParseBcrypt(hash);
    if (!parts.ok()) return parts.error();
    // Policy: anything but $2b$ at the default cost or above should be re-hashed on next login.
    const bool needs_rehash =
        parts.value().variant != "2b" || parts.value().cost < services.config.cost_default;
    HashWork work{std::move(password).value(), hash, parts.value().cost, nullptr};
    work.answer = [hash, needs_rehash](const Result<std::string>& computed) -> Result<Response> {
        if (!computed.ok())
            return Error{ErrorKind::kInternal, "internal_error", "The hash could not be computed."};
        // Both strings are 60 bytes: CRYPTO_memcmp's time does not depend on where they differ.
        const bool match = computed.value().size() == hash.size() &&
                           CRYPTO_memcmp(computed.value().data(), hash.data(), hash.size()) == 0;
        Json::Value out(Json::objectValue);
        out["match"] = match;
        out["needs_rehash"] = needs_rehash;
        return JsonResponse(200, out);
    };
    return work;
}

Result<HashWork> PlanLegacyGetHash(const Request& request, const Services& services) {
    if (!services.config.legacy_get)
        return Error{ErrorKind::kGone, "legacy_endpoint_disabled",
                     "GET /gethash/ is switched off here; POST {\"password\": \"...\"} "
                     "to /v1/hash instead."};
    services.metrics.RecordLegacyGet();
    auto password = LegacyPassword(request.path);
    if (!password.ok()) return password.error();
    if (auto valid = ValidatePassword(password.value().view()); !valid.ok()) return valid.error();
    const int cost = services.config.cost_default;
    auto setting = BcryptNewSetting(cost);
    if (!setting.ok()) return setting.error();
    HashWork work{std::move(password).value(), setting.value(), cost, nullptr};
    work.answer = [setting =
                       setting.value()](const Result<std::string>& computed) -> Result<Response> {
        if (!computed.ok())
            return Error{ErrorKind::kInternal, "internal_error", "The hash could not be computed."};
        // Exactly the original body: hex of the setting string and hex of the bcrypt string.
        Json::Value out(Json::objectValue);
        out["salt"] = HexEncode(setting);
        out["hash"] = HexEncode(computed.value());
        Response response = JsonResponse(200, out);
        response.AddHeader("Deprecation", "true");
        response.AddHeader("Link", "</v1/hash>; rel=\"successor-version\"");
        return response;
    };
    return work;
}

Result<Response> HandleHash(const Request& request, const Services& services) {
    return RunPlanned(PlanHash(request, services), services);
}

Result<Response> HandleVerify(const Request& request, const Services& services) {
    return RunPlanned(PlanVerify(request, services), services);
}

Result<Response> HandleLegacyGetHash(const Request& request, const Services& services) {
    return RunPlanned(PlanLegacyGetHash(request, services), services);
}

}  // namespace hashd
