// FastCGI request boundary.
//
// Threads. A few accepting threads (HASHD_ACCEPT_THREADS) take turns in FCGX_Accept_r on the
// shared listening socket: one at a time, and the next as soon as that one is about to wait
// on the store (accept_turn.h explains why and what it saved). An accepting thread parses the
// request and reads its body (nginx has buffered it, so this is a copy, not a wait on a client),
// then either answers it itself or offers it to the hashing threads (HASHD_THREADS, hash_pool.h).
// It answers itself what does not hash: probes, message requests (I/O-bound, not CPU-bound),
// invalid input, and the requests admission refuses. So /healthz never waits behind a hash, and a
// refusal costs microseconds. The FastCGI request travels with the job to the hashing thread, which
// writes the response and closes it.
//
// Overload is decided by admission by expected wait (admission.cc): nginx's max_conns is only
// a generous safety bound against a runaway queue in the listen backlog.
//
// The steps of one request, in order, each a named function below: Parse, Read, (Admit),
// Dispatch, Write, Record, Log.
//
// Shutdown: Stop() first removes the socket's path (nginx then connects to the other
// processes) and lets the accepting threads take what is already queued on the socket (2 s at
// most), then shuts the listening socket down, which makes every blocked accept() return
// (EINVAL on Linux), so accepting threads leave their loop after the request they hold; then
// the hashing threads finish every admitted request and the process exits.

#include "server/fcgi_server.h"

#include <fcgiapp.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "api/router.h"
#include "core/secret.h"
#include "core/text.h"
#include "hashing/bcrypt_runner.h"
#include "http/errors.h"
#include "http/http_tables.h"
#include "http/trace_context.h"
#include "store/timed_store.h"

namespace hashd {
namespace {

using Clock = std::chrono::steady_clock;

// Owns one accepted FastCGI request; ending it (FCGX_Finish_r) flushes the response and closes
// the connection.
//
// The close. libfcgi closes a connection "lingering": shutdown(SHUT_WR), then poll and read
// until nginx has closed its end, so that unread input cannot make the kernel reset the
// connection under a response nginx has not read yet. Three system calls and a wait for nginx
// to be scheduled, on the thread that should be hashing the next request. When the request's
// input was read to its end (Read() consumes the empty FCGI_STDIN record that ends it),
// nothing is left unread and a plain close is as safe: FCGX_Detach makes libfcgi's close skip
// the linger (its only effect in libfcgi 2.4).
struct FinishRequest {
    void operator()(FCGX_Request* request) const {
        if (request->in != nullptr && FCGX_HasSeenEOF(request->in) == EOF) FCGX_Detach(request);
        FCGX_Finish_r(request);
        delete request;
    }
};
using FcgiRequest = std::unique_ptr<FCGX_Request, FinishRequest>;

std::string Param(const FCGX_Request& request, const char* name) {
    const char* value = FCGX_GetParam(name, request.envp);
    return value != nullptr ? value : "";
}

std::string NewRequestId() {
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) return "0";
    return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// Accept: the next request on the listening socket, or null once the socket is shut down.
FcgiRequest Accept(int listen_fd) {
    FcgiRequest request(new FCGX_Request{});
    FCGX_InitRequest(request.get(), listen_fd, 0);
    if (FCGX_Accept_r(request.get()) < 0) return nullptr;
    return request;
}

// Parse: the Request value from the FastCGI parameters (the body comes in Read).
Request Parse(const FCGX_Request& fcgi) {
    Request request;
    request.method = Param(fcgi, "REQUEST_METHOD");
    std::string uri = Param(fcgi, "REQUEST_URI");
    const std::size_t question = uri.find('?');
    request.path = uri.substr(0, question);  // no handler reads the query string
    request.content_type = Param(fcgi, "CONTENT_TYPE");
    request.request_id = Param(fcgi, "REQUEST_ID");
    request.client = Param(fcgi, "REMOTE_ADDR");
    request.request_id_from_proxy = !request.request_id.empty();
    if (request.request_id.empty()) request.request_id = NewRequestId();
    request.idempotency_key = Param(fcgi, "HTTP_IDEMPOTENCY_KEY");
    // nginx passes every request header as HTTP_<NAME> (fastcgi_pass_request_headers is on).
    request.trace_id =
        RequestTraceId(Param(fcgi, "HTTP_TRACEPARENT"), Param(fcgi, "HTTP_X_CLOUD_TRACE_CONTEXT"));
    Wipe(uri);  // may hold a /gethash/ password; `request` wipes its own copies when it goes
    return request;
}

// Read: the request body into `body`: 413 when CONTENT_LENGTH is over `limit` (nothing is
// read), 400 when CONTENT_LENGTH is not a number or the stream ends before that many bytes
// (a truncated body must not be taken for a shorter one: its prefix may parse).
Status Read(FCGX_Request& fcgi, std::size_t limit, std::string_view route, std::string& body) {
    const std::string length_text = Param(fcgi, "CONTENT_LENGTH");
    std::size_t length = 0;
    if (!length_text.empty()) {
        const char* end = length_text.data() + length_text.size();
        const auto parsed = std::from_chars(length_text.data(), end, length);
        if (parsed.ec == std::errc::result_out_of_range) return BodyTooLarge(route);
        if (parsed.ec != std::errc{} || parsed.ptr != end)
            return Error{ErrorKind::kInvalid, "invalid_body",
                         "The Content-Length is not a number."};
    }
    if (length > limit) return BodyTooLarge(route);
    body.resize(length);
    std::size_t got = 0;
    while (got < body.size()) {
        const int n = FCGX_GetStr(body.data() + got, static_cast<int>(body.size() - got), fcgi.in);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got < length)
        return Error{ErrorKind::kInvalid, "invalid_body",
                     "The request body is shorter than its Content-Length; send it whole."};
    // The input ends with an empty FCGI_STDIN record: reading it (from libfcgi's buffer, no
    // system call in the usual case) lets FinishRequest close without lingering.
    (void)FCGX_GetChar(fcgi.in);
    return Ok{};
}

// The request's strings in libfcgi's parameter block (REQUEST_URI may hold a /gethash/
// password), overwritten before FCGX_Finish_r frees them.
void WipeParams(FCGX_Request& fcgi) {
    for (char** param = fcgi.envp; param != nullptr && *param != nullptr; ++param)
        Wipe(*param, std::strlen(*param));
}

// Dispatch: runs the route's handler. A handler that throws is a bug; the client gets a 500
// that leaks nothing, the log gets the exception's text (never a request's data).
Dispatch RunHandler(const Request& request, const Services& services, const Logger& logger) {
    try {
        return RouteRequest(request, services);
    } catch (const std::exception& e) {
        logger.Log(LogLevel::kError, "handler failed",
                   {{"REQUEST_ID", request.request_id},
                    {"TRACE_ID", request.trace_id},
                    {"ERROR", e.what()}});
        const Route* route = FindRoute(request);
        return {route != nullptr ? route->label : "unmatched",
                ErrorResponse({ErrorKind::kInternal, "internal_error",
                               "Something went wrong on our side; retry shortly."},
                              request.request_id)};
    }
}

// Write: the response as FastCGI's CGI-style head and the body, in one buffer so that libfcgi
// sends it with as few writes as it can.
void Write(FCGX_Request& fcgi, const Response& response) {
    std::string out = "Status: " + std::to_string(response.status) + " " +
                      ReasonPhrase(response.status) + "\r\nContent-Type: " + response.content_type +
                      "\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    out += "\r\n";
    out += response.body;
    FCGX_PutStr(out.data(), static_cast<int>(out.size()), fcgi.out);
}

// The 503 of a refused request: Retry-After-Ms from the admission decision, Retry-After in
// whole seconds (ErrorResponse rounds up).
Response Overloaded(const AdmissionQueue::Decision& decision, const std::string& request_id) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(decision.retry_after).count();
    Error error{ErrorKind::kUnavailable, "overloaded",
                "The service is overloaded; retry after the Retry-After delay."};
    error.retry_after_ms = static_cast<int>(std::max<long long>(1, ms));
    return ErrorResponse(error, request_id);
}

// Whether nginx has closed the request's connection: it does when the client went away
// (fastcgi_ignore_client_abort off, the default), and then nobody will read the answer. A
// non-blocking peek: 0 bytes means end of stream. Anything else (no data, data, an error)
// counts as still there, so a wrong guess only ever costs the hash it would have cost anyway.
bool PeerClosed(const FCGX_Request& fcgi) {
    char byte = 0;
    return fcgi.ipcFd >= 0 && recv(fcgi.ipcFd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

}  // namespace

struct FcgiServer::InFlight {
    FcgiRequest fcgi;
    Request request;
    const Route* route = nullptr;
    Clock::time_point start;                  // when the accepting thread got it
    std::chrono::microseconds queue_wait{0};  // admitted to started hashing (monotonic)
};

// An admitted request, run on a hashing thread in two steps around its bcrypt computation,
// which the thread may share with other requests of the same cost (hash_pool.h).
class FcgiServer::AdmittedRequest final : public HashJob {
  public:
    AdmittedRequest(FcgiServer& server, InFlight flight)
        : server_(server), flight_(std::move(flight)), admitted_(Clock::now()) {}

    std::optional<BcryptInput> Prepare() override {
        flight_.queue_wait =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - admitted_);
        const std::string_view label = flight_.route->label;
        if (PeerClosed(*flight_.fcgi)) {
            // Logged as nginx does (499); the write that follows goes nowhere.
            server_.services_.metrics.RecordShed("client_gone");
            server_.Answer(flight_,
                           {label, ErrorResponse({ErrorKind::kClientGone, "client_closed_request",
                                                  "The client closed the connection "
                                                  "before its hash was computed."},
                                                 flight_.request.request_id)});
            return std::nullopt;
        }
        auto planned =
            Guarded([&] { return flight_.route->plan(flight_.request, server_.services_); });
        if (!planned.ok()) {
            server_.Answer(flight_,
                           {label, ErrorResponse(planned.error(), flight_.request.request_id)});
            return std::nullopt;
        }
        work_ = std::move(planned).value();
        return BcryptInput{work_->password.view(), work_->setting};
    }

    void Complete(const Result<std::string>& computed, double seconds) override {
        if (computed.ok()) server_.services_.metrics.RecordHash(work_->cost, seconds);
        auto response = Guarded([&] { return work_->answer(computed); });
        work_.reset();  // wipes the password before the answer is written
        server_.Answer(
            flight_, {flight_.route->label,
                      response.ok() ? std::move(response).value()
                                    : ErrorResponse(response.error(), flight_.request.request_id)});
    }

    InFlight& flight() { return flight_; }

  private:
    // A handler step that throws is a bug: the client gets a 500 that leaks nothing, the log
    // gets the exception's text (as RunHandler does for the other routes).
    template <typename Step>
    auto Guarded(Step&& step) -> decltype(step()) {
        try {
            return step();
        } catch (const std::exception& e) {
            server_.logger_.Log(LogLevel::kError, "handler failed",
                                {{"REQUEST_ID", flight_.request.request_id}, {"ERROR", e.what()}});
            return Error{ErrorKind::kInternal, "internal_error",
                         "Something went wrong on our side; retry shortly."};
        }
    }

    FcgiServer& server_;
    InFlight flight_;
    Clock::time_point admitted_;
    std::optional<HashWork> work_;
};

struct FcgiServer::Acceptor {
    // steady_clock ticks when the current request started; 0 while waiting (for the watchdog).
    std::atomic<Clock::rep> busy_since{0};
};

FcgiServer::FcgiServer(const Services& services, const Logger& logger, int listen_fd,
                       AccessControl access)
    : services_(services),
      logger_(logger),
      listen_fd_(listen_fd),
      access_(std::move(access)),
      budget_(services.config.client_work_rate, services.config.client_work_burst),
      pool_(std::make_unique<HashPool>(services.config.threads,
                                       std::chrono::milliseconds(services.config.queue_deadline_ms),
                                       HashTimeModel::Calibrate(ServiceBcrypt(services.config)),
                                       Batching::Measure(BcryptLanes(services.config)),
                                       ServiceBcrypt(services.config), services.metrics)) {
    for (int i = 0; i < services_.config.accept_threads; ++i)
        acceptors_.push_back(std::make_unique<Acceptor>());
    // A store call that may wait on I/O hands this process's accept turn on first.
    SetBlockingHook(&BeforeBlocking);
}

FcgiServer::~FcgiServer() = default;

void FcgiServer::Run() {
    {
        std::vector<std::jthread> threads;
        threads.reserve(acceptors_.size());
        for (auto& acceptor : acceptors_)
            threads.emplace_back([this, a = acceptor.get()] { AcceptLoop(*a); });
    }  // the accepting threads join here, after Stop() has released every accept
    pool_->Drain();
}

void FcgiServer::Stop() {
    if (stop_requested_.exchange(true)) return;
    // Take no new connection, but serve the queued ones: with the socket's path gone, nginx's
    // next connect fails at once (ENOENT) and it sends that request to another process, while
    // the connections already in the listen backlog are still accepted by the workers (a
    // shutdown now would reset them, and a reset request finds the other sockets full as
    // often as not). Bounded by kBacklogDrain; only then is the socket shut down.
    sockaddr_un address{};
    socklen_t length = sizeof(address);
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
        address.sun_family == AF_UNIX && address.sun_path[0] != '\0')
        unlink(address.sun_path);
    constexpr auto kBacklogDrain = std::chrono::seconds(2);
    const auto give_up = Clock::now() + kBacklogDrain;
    pollfd pending{listen_fd_, POLLIN, 0};
    while (poll(&pending, 1, 0) > 0 && Clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stopping_.store(true);
    shutdown(listen_fd_, SHUT_RDWR);
}

bool FcgiServer::Healthy(std::chrono::seconds limit) const {
    if (pool_->Stuck(limit)) return false;
    const Clock::time_point turn_busy = accept_turn_.BusySince();
    if (turn_busy != Clock::time_point{} && Clock::now() - turn_busy >= limit) return false;
    const Clock::rep now = Clock::now().time_since_epoch().count();
    const Clock::rep limit_ticks = std::chrono::duration_cast<Clock::duration>(limit).count();
    for (const auto& acceptor : acceptors_) {
        const Clock::rep since = acceptor->busy_since.load();
        if (since == 0 || now - since < limit_ticks) return true;
    }
    return acceptors_.empty();
}

void FcgiServer::AcceptLoop(Acceptor& acceptor) {
    while (!stopping_.load()) {
        accept_turn_.Take();  // at once unless a store call passed the turn on
        FcgiRequest fcgi = stopping_.load() ? nullptr : Accept(listen_fd_);
        if (!fcgi) break;
        const auto start = Clock::now();
        acceptor.busy_since.store(start.time_since_epoch().count());
        accept_turn_.MarkBusy(start);
        InFlight flight;
        flight.request = Parse(*fcgi);
        flight.fcgi = std::move(fcgi);
        flight.start = start;
        Serve(std::move(flight));
        accept_turn_.MarkBusy({});  // a no-op unless this thread still holds the turn
        acceptor.busy_since.store(0);
    }
    accept_turn_.Pass();  // the next thread finds the socket shut down and leaves too
}

// Everything an accepting thread does with a request after parsing it.
void FcgiServer::Serve(InFlight flight) {
    services_.metrics.AddInflight(1);
    flight.route = FindRoute(flight.request);
    const std::string_view label = flight.route != nullptr ? flight.route->label : "unmatched";
    // Who calls, before the body is read or anything is admitted: a request without a valid
    // credential costs one SHA-256 at most, never a hash. The id, never the token, is what
    // the budget and the log see.
    std::string authorization = Param(*flight.fcgi, "HTTP_AUTHORIZATION");
    const std::string verify = Param(*flight.fcgi, "HASHD_CLIENT_VERIFY");
    const std::string dn = Param(*flight.fcgi, "HASHD_CLIENT_DN");
    auto client = access_.Check(label, {authorization, verify, dn});
    Wipe(authorization);  // a token; libfcgi's copy is wiped with the other params
    if (!client.ok()) {
        Answer(flight, {label, ErrorResponse(client.error(), flight.request.request_id)});
        return;
    }
    if (!client.value().empty()) {
        flight.request.client_id = std::move(client).value();
        flight.request.client = flight.request.client_id;
    }
    if (auto read = Read(*flight.fcgi, services_.config.max_body_bytes, label, flight.request.body);
        !read.ok()) {
        Answer(flight, {label, ErrorResponse(read.error(), flight.request.request_id)});
        return;
    }
    const int cost = flight.route != nullptr && flight.route->hash_cost != nullptr
                         ? flight.route->hash_cost(flight.request, services_)
                         : 0;
    if (cost == 0) {  // nothing to hash: answer here, never behind a hash
        Answer(flight, RunHandler(flight.request, services_, logger_));
        return;
    }
    // The client's budget counts work, not requests (api/client_budget.h).
    const double units = ClientBudget::Units(cost);
    if (auto charged = budget_.Charge(flight.request.client, units, Clock::now());
        !charged.allowed) {
        services_.metrics.RecordShed("client_budget");
        Error error{ErrorKind::kLimited, "client_budget_exceeded",
                    "This client has used its share of hashing work (a cost-14 hash counts as "
                    "four cost-12 ones); retry after the Retry-After delay."};
        error.retry_after_ms =
            static_cast<int>(std::max<long long>(1, charged.retry_after.count()));
        Answer(flight, {label, ErrorResponse(error, flight.request.request_id)});
        return;
    }
    Admit(std::move(flight), cost);
}

// Admit: queue the request for a hashing thread, or refuse it at once.
void FcgiServer::Admit(InFlight flight, int cost) {
    auto admitted = std::make_unique<AdmittedRequest>(*this, std::move(flight));
    AdmittedRequest* request = admitted.get();
    std::unique_ptr<HashJob> job = std::move(admitted);
    const AdmissionQueue::Decision decision = pool_->Offer(cost, job);
    if (decision.admitted) return;  // the pool owns it now
    services_.metrics.RecordShed("queue_deadline");
    InFlight& refused = request->flight();
    budget_.Refund(refused.request.client, ClientBudget::Units(cost));  // no work was done
    Answer(refused, {refused.route->label, Overloaded(decision, refused.request.request_id)});
}

// Write, Record, Log, and end the FastCGI request. Runs on whichever thread answers.
void FcgiServer::Answer(InFlight& flight, Dispatch dispatch) {
    Write(*flight.fcgi, dispatch.response);
    WipeParams(*flight.fcgi);

    const std::chrono::duration<double> took = Clock::now() - flight.start;
    const int status = dispatch.response.status;
    const std::string_view method = MethodLabel(flight.request.method);
    services_.metrics.RecordRequest(dispatch.label, method, status, took.count());
    services_.metrics.AddInflight(-1);
    logger_.Log(status >= 500 ? LogLevel::kWarning : LogLevel::kInfo, "request",
                {{"REQUEST_ID", flight.request.request_id},
                 {"TRACE_ID", flight.request.trace_id},
                 {"CLIENT_ID", flight.request.client_id},
                 {"ROUTE", std::string(dispatch.label)},
                 {"METHOD", std::string(method)},
                 {"HTTP_STATUS", std::to_string(status)},
                 {"DURATION_US", std::to_string(static_cast<long long>(took.count() * 1e6))},
                 {"QUEUE_WAIT_US", std::to_string(flight.queue_wait.count())},
                 {"ERROR", dispatch.response.error_code},
                 {"ERROR_DETAIL", dispatch.response.error_detail}});
    // Flush and close last: once a client has its answer, the request's log line exists
    // (operators and tests look it up by the X-Request-Id they got).
    flight.fcgi.reset();
}

}  // namespace hashd
