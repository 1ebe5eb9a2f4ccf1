// FastCGI request boundary.
//
// Threads: each worker blocks in FCGX_Accept_r on the shared listening socket; the kernel hands
// each connection to one of them, so no accept mutex is needed on Linux. A worker owns its
// FCGX_Request for its whole life; nothing else is shared but the thread-safe Services.
//
// Overload: bcrypt is CPU-bound, so a queue in front of the workers only adds latency. nginx
// caps the requests in flight per socket (max_conns), and the requests that still wait (in
// the socket's listen backlog) carry the time nginx handed them over (HASHD_SENT_MSEC). A
// worker that picks up a request older than the queue deadline answers 503 + Retry-After at
// once instead of hashing: the client learns within the deadline that it must retry, and the
// requests behind it keep their latency.
//
// Shutdown: Stop() first removes the socket's path (nginx then connects to the other
// processes) and lets the workers accept what is already queued, then shuts the listening
// socket down, which makes every blocked accept() return (EINVAL on Linux), so workers leave
// the loop after finishing the request they hold.

#include "fcgi_server.h"

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

#include "errors.h"
#include "http_tables.h"
#include "router.h"
#include "secret.h"
#include "text.h"

namespace hashd {
namespace {

using Clock = std::chrono::steady_clock;

std::string Param(const FCGX_Request& request, const char* name) {
    const char* value = FCGX_GetParam(name, request.envp);
    return value != nullptr ? value : "";
}

std::string NewRequestId() {
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) return "0";
    return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// Seconds since nginx handed the request over, from its $msec ("1700000000.123"); negative
// when nginx did not say (direct FastCGI clients) so no deadline applies.
double QueueWaitSeconds(const std::string& sent_msec) {
    if (sent_msec.empty()) return -1;
    char* end = nullptr;
    const double sent = std::strtod(sent_msec.c_str(), &end);
    if (end == sent_msec.c_str() || sent <= 0) return -1;
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const double wait = std::chrono::duration<double>(now).count() - sent;
    return wait < 0 ? 0 : wait;  // nginx's clock is ms-granular and cached per event loop
}

// Reads the request body into `body`: 413 when CONTENT_LENGTH is over `limit` (nothing is
// read), 400 when CONTENT_LENGTH is not a number or the stream ends before that many bytes
// (a truncated body must not be taken for a shorter one: its prefix may parse).
Status ReadBody(FCGX_Request& fcgi, std::size_t limit, std::string_view route, std::string& body) {
    const std::string length_text = Param(fcgi, "CONTENT_LENGTH");
    std::size_t length = 0;
    if (!length_text.empty()) {
        const char* end = length_text.data() + length_text.size();
        const auto parsed = std::from_chars(length_text.data(), end, length);
        if (parsed.ec == std::errc::result_out_of_range) return BodyTooLarge(route);
        if (parsed.ec != std::errc{} || parsed.ptr != end)
            return ApiError{400, "invalid_body", "The Content-Length is not a number."};
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
        return ApiError{400, "invalid_body",
                        "The request body is shorter than its Content-Length; send it whole."};
    return Ok{};
}

// The request's strings in libfcgi's parameter block (REQUEST_URI may hold a /gethash/
// password), overwritten before FCGX_Finish_r frees them.
void WipeParams(FCGX_Request& fcgi) {
    for (char** param = fcgi.envp; param != nullptr && *param != nullptr; ++param)
        Wipe(*param, std::strlen(*param));
}

void WriteResponse(FCGX_Request& fcgi, const Response& response) {
    std::string head = "Status: " + std::to_string(response.status) + " " +
                       ReasonPhrase(response.status) +
                       "\r\nContent-Type: " + response.content_type +
                       "\r\nContent-Length: " + std::to_string(response.body.size()) + "\r\n";
    for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
    head += "\r\n";
    FCGX_PutStr(head.data(), static_cast<int>(head.size()), fcgi.out);
    FCGX_PutStr(response.body.data(), static_cast<int>(response.body.size()), fcgi.out);
}

}  // namespace

struct FcgiServer::Worker {
    FCGX_Request request{};
    // steady_clock ticks when the current request started; 0 while idle (for the watchdog).
    std::atomic<Clock::rep> busy_since{0};
};

FcgiServer::FcgiServer(const Services& services, const Logger& logger, int listen_fd)
    : services_(services), logger_(logger), listen_fd_(listen_fd) {
    for (int i = 0; i < services_.config.threads; ++i) {
        auto worker = std::make_unique<Worker>();
        FCGX_InitRequest(&worker->request, listen_fd_, 0);
        workers_.push_back(std::move(worker));
    }
    services_.metrics.SetWorkers(services_.config.threads);
}

FcgiServer::~FcgiServer() {
    for (auto& worker : workers_) FCGX_Free(&worker->request, 0);
}

void FcgiServer::Run() {
    std::vector<std::jthread> threads;
    threads.reserve(workers_.size());
    for (auto& worker : workers_) {
        threads.emplace_back([this, w = worker.get()] {
            while (!stopping_.load()) {
                if (FCGX_Accept_r(&w->request) < 0) break;
                w->busy_since.store(Clock::now().time_since_epoch().count());
                services_.metrics.AddBusyWorkers(1);
                Serve(*w);
                FCGX_Finish_r(&w->request);
                services_.metrics.AddBusyWorkers(-1);
                w->busy_since.store(0);
            }
        });
    }
}  // the jthreads join here, after Stop() has released every accept

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
    const Clock::rep now = Clock::now().time_since_epoch().count();
    const Clock::rep limit_ticks = std::chrono::duration_cast<Clock::duration>(limit).count();
    for (const auto& worker : workers_) {
        const Clock::rep since = worker->busy_since.load();
        if (since == 0 || now - since < limit_ticks) return true;
    }
    return workers_.empty();
}

void FcgiServer::Serve(Worker& worker) {
    FCGX_Request& fcgi = worker.request;
    const auto start = Clock::now();
    services_.metrics.AddInflight(1);

    Request request;
    request.method = Param(fcgi, "REQUEST_METHOD");
    std::string uri = Param(fcgi, "REQUEST_URI");
    const std::size_t question = uri.find('?');
    request.path = uri.substr(0, question);  // no handler reads the query string
    request.content_type = Param(fcgi, "CONTENT_TYPE");
    request.request_id = Param(fcgi, "REQUEST_ID");
    if (request.request_id.empty()) request.request_id = NewRequestId();

    const double queue_wait = QueueWaitSeconds(Param(fcgi, "HASHD_SENT_MSEC"));
    if (queue_wait >= 0) services_.metrics.RecordQueueWait(queue_wait);

    Dispatch dispatch{"unmatched", false, {}};
    const Route* route = FindRoute(request);
    const int deadline_ms = services_.config.queue_deadline_ms;
    if (route != nullptr && route->sheddable && deadline_ms > 0 &&
        queue_wait * 1000 > deadline_ms) {
        services_.metrics.RecordShed("queue_deadline");
        dispatch = {
            route->label, true,
            ErrorResponse({503, "overloaded",
                           "The service is overloaded; retry after the Retry-After delay.", 1},
                          request.request_id)};
    } else if (auto read = ReadBody(fcgi, services_.config.max_body_bytes,
                                    route != nullptr ? route->label : "unmatched", request.body);
               !read.ok()) {
        dispatch = {route != nullptr ? route->label : "unmatched", false,
                    ErrorResponse(read.error(), request.request_id)};
    } else {
        try {
            dispatch = RouteRequest(request, services_);
        } catch (const std::exception& e) {
            logger_.Log(LogLevel::kError, "handler failed",
                        {{"REQUEST_ID", request.request_id}, {"ERROR", e.what()}});
            dispatch.response = ErrorResponse(
                {500, "internal_error", "Something went wrong on our side; retry shortly."},
                request.request_id);
        }
    }
    WriteResponse(fcgi, dispatch.response);
    Wipe(uri);
    WipeParams(fcgi);  // `request` wipes its own copies when it goes

    const std::chrono::duration<double> took = Clock::now() - start;
    const int status = dispatch.response.status;
    services_.metrics.RecordRequest(dispatch.label, MethodLabel(request.method), status,
                                    took.count());
    services_.metrics.AddInflight(-1);
    logger_.Log(status >= 500 ? LogLevel::kWarning : LogLevel::kInfo, "request",
                {{"REQUEST_ID", request.request_id},
                 {"ROUTE", std::string(dispatch.label)},
                 {"METHOD", std::string(MethodLabel(request.method))},
                 {"HTTP_STATUS", std::to_string(status)},
                 {"DURATION_US", std::to_string(static_cast<long long>(took.count() * 1e6))},
                 {"QUEUE_WAIT_US",
                  std::to_string(static_cast<long long>(queue_wait < 0 ? 0 : queue_wait * 1e6))},
                 {"ERROR", dispatch.response.error_code},
                 {"ERROR_DETAIL", dispatch.response.error_detail}});
}

}  // namespace hashd
