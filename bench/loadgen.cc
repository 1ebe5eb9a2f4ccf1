// hashd-bench-loadgen: an open-loop (and closed-loop) HTTP/1.1 load generator over TLS or plain
// TCP.
//
// Why not wrk: wrk is closed-loop. Each connection sends its next request only when the previous
// one is answered, so a server that slows down also slows the offered load, and the queueing delay
// that real clients would see is never measured ("coordinated omission"). Overload protection is
// exactly about that queueing delay, so this tool sends requests at a fixed arrival rate whatever
// the responses do, and measures each latency from the moment the request was *due*, not from the
// moment a connection happened to be free to send it.
//
// Model:
// - Open loop (--rate R): request i is due at i/R seconds (evenly spaced). A due request takes an
//   idle keep-alive connection from the pool (most recently used first), or opens a new one (TCP +
//   TLS handshake, counted in its latency) while fewer than --max-connections are open, or waits in
//   a client-side FIFO. With --arrivals poisson the gaps are exponential instead (same mean
//   rate), as from many independent clients; bursts then find the server busy more often.
//   HTTP/1.1, one request in flight per connection (no pipelining), which is
//   what the original app's clients (Python requests) do.
// - Closed loop (--connections N): N connections, each sends its next request as soon as the
//   previous one completes; the throughput this reaches is the server's capacity at that
//   concurrency. A 503 with Retry-After-Ms (else Retry-After) makes that connection wait
//   that long before its next request, as a well-behaved client does.
// - A request not answered within --timeout seconds of being due counts as a timeout and its
//   connection is closed. Arrivals stop after --duration; the tool then waits up to --drain seconds
//   for outstanding responses; whatever is still outstanding counts as unfinished.
// - A request that fails on a reused keep-alive connection before any response byte arrived (the
//   server closed the idle connection as we sent) is retried once on a new connection, as HTTP
//   clients do.
// - Requests due during the first --warmup seconds are sent but not counted.
//
// Report (one JSON object on stdout): offered rate, goodput (2xx answers to the requests due
// inside the measurement window, whenever they completed before the drain ended, per second of
// window: completions of requests due during the warm-up, a backlog the window inherits, are
// not counted), throughput (any response completed inside the window, per second), p50/p90/p99/max
// latency of 2xx responses, shed share (503), rate limited (429), other statuses, connection
// errors, timeouts, client CPU seconds (so a saturated client can be told apart from a saturated
// server). --log FILE writes one line per request: due time (s since start), latency (ms), status
// (0 = error/timeout).
//
// Single-threaded epoll loop; on this 2-core machine one thread is enough (see bench/README.md for
// its measured ceiling) and leaves the other core to the server.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

double Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Options {
    std::string scheme, host, port, path;
    std::string method = "GET";
    std::string body;
    std::vector<std::string> headers;
    std::string expect;  // a 2xx body must contain this, else it counts as an error
    std::string cacert;
    double rate = 0;       // open loop when > 0
    bool poisson = false;  // open loop: exponential gaps instead of even spacing
    int connections = 0;   // closed loop when > 0
    int max_connections = 1000;
    double duration = 10, warmup = 0, timeout = 10, drain = -1;
    std::string log_path;
};

// One request's life. `due` is relative to the start of the run.
struct Request {
    double due = 0;
    int tries = 0;
};

enum class Kind { kResponse, kConnError, kTimeout, kUnfinished, kBadBody };

struct Outcome {
    double due = 0;   // s since start
    double done = 0;  // s since start
    int status = 0;
    Kind kind = Kind::kResponse;
    bool retry_after = false;
};

enum class State { kConnecting, kHandshake, kSending, kReading, kIdle };

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    State state = State::kConnecting;
    bool has_request = false;
    Request request;
    int served = 0;
    size_t out_off = 0;
    std::string in;
    uint32_t events = 0;
};

// Incremental HTTP/1.1 response parser over the bytes read so far.
struct Parsed {
    bool complete = false;
    bool error = false;
    int status = 0;
    bool close = false;
    bool retry_after = false;
    double retry_after_s = 0;  // Retry-After-Ms when sent, else Retry-After (seconds)
    std::string body;
};

std::string Lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

Parsed ParseResponse(const std::string& in, bool want_body) {
    Parsed p;
    const size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string::npos) return p;
    if (in.compare(0, 5, "HTTP/") != 0 || in.size() < 12) {
        p.error = true;
        return p;
    }
    p.status = std::atoi(in.c_str() + 9);
    long content_length = -1;
    bool chunked = false;
    size_t line = in.find("\r\n") + 2;
    while (line < head_end) {
        const size_t eol = in.find("\r\n", line);
        const std::string header = in.substr(line, eol - line);
        const size_t colon = header.find(':');
        if (colon != std::string::npos) {
            const std::string name = Lower(header.substr(0, colon));
            std::string value = header.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            if (name == "content-length") content_length = std::atol(value.c_str());
            if (name == "transfer-encoding" && Lower(value).find("chunked") != std::string::npos)
                chunked = true;
            if (name == "connection" && Lower(value).find("close") != std::string::npos)
                p.close = true;
            if (name == "retry-after") {
                p.retry_after = true;
                if (p.retry_after_s == 0) p.retry_after_s = std::atof(value.c_str());
            }
            if (name == "retry-after-ms") p.retry_after_s = std::atof(value.c_str()) / 1000;
        }
        line = eol + 2;
    }
    const size_t body_start = head_end + 4;
    if (chunked) {
        size_t pos = body_start;
        for (;;) {
            const size_t eol = in.find("\r\n", pos);
            if (eol == std::string::npos) return p;
            const unsigned long size = std::strtoul(in.c_str() + pos, nullptr, 16);
            if (size == 0) {
                if (in.find("\r\n", eol + 2) == std::string::npos) return p;
                p.complete = true;
                return p;
            }
            if (in.size() < eol + 2 + size + 2) return p;
            if (want_body) p.body.append(in, eol + 2, size);
            pos = eol + 2 + size + 2;
        }
    }
    if (content_length < 0) content_length = 0;  // nginx and gunicorn always send one or chunked
    if (in.size() < body_start + static_cast<size_t>(content_length)) return p;
    if (want_body) p.body = in.substr(body_start, static_cast<size_t>(content_length));
    p.complete = true;
    return p;
}

class LoadGen {
  public:
    explicit LoadGen(Options o) : o_(std::move(o)) {}

    int Run();

  private:
    bool Setup();
    void Enqueue(Request r) { queue_.push_back(r); }
    void Pump();
    void OpenConn(Request r);
    void Drive(Conn* c);
    void Watch(Conn* c, uint32_t events);
    void CloseConn(Conn* c);
    void Fail(Conn* c, Kind kind);
    void Complete(Conn* c, const Parsed& p);
    void Record(const Request& r, int status, Kind kind, bool retry_after = false,
                double retry_after_s = 0);
    void CheckTimeouts(double now);
    // Returns >0 bytes, 0 on EOF, -1 on would-block (interest set), -2 on error.
    long ReadSome(Conn* c, char* buf, size_t len);
    long WriteSome(Conn* c, const char* buf, size_t len);
    long SslShortfall(Conn* c, int n);
    void Report(double window);

    Options o_;
    SSL_CTX* ctx_ = nullptr;
    addrinfo* addr_ = nullptr;
    int epfd_ = -1;
    std::string request_bytes_;
    double start_ = 0;
    std::deque<Request> queue_;
    // Closed loop: next requests of users told to come back later (503 + Retry-After), by due.
    std::multimap<double, Request> deferred_;
    std::vector<Conn*> idle_;
    std::map<int, std::unique_ptr<Conn>> conns_;
    std::vector<Outcome> outcomes_;
    long conns_opened_ = 0, retries_ = 0;
    size_t max_queue_ = 0, max_open_ = 0;
    bool arrivals_done_ = false;
    double client_cpu_ = 0;
};

bool LoadGen::Setup() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const std::string host = o_.host == "localhost" ? "127.0.0.1" : o_.host;
    if (const int rc = getaddrinfo(host.c_str(), o_.port.c_str(), &hints, &addr_); rc != 0) {
        std::fprintf(stderr, "loadgen: cannot resolve %s: %s\n", host.c_str(), gai_strerror(rc));
        return false;
    }
    if (o_.scheme == "https") {
        ctx_ = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
        SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn);
        if (!o_.cacert.empty()) {
            if (SSL_CTX_load_verify_locations(ctx_, o_.cacert.c_str(), nullptr) != 1) {
                std::fprintf(stderr, "loadgen: cannot load CA %s\n", o_.cacert.c_str());
                return false;
            }
            SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        }
    }
    std::string req = o_.method + " " + o_.path + " HTTP/1.1\r\nHost: " + o_.host + ":" + o_.port +
                      "\r\nUser-Agent: hashd-bench-loadgen\r\n";
    for (const auto& h : o_.headers) req += h + "\r\n";
    if (!o_.body.empty() || o_.method == "POST")
        req += "Content-Length: " + std::to_string(o_.body.size()) + "\r\n";
    req += "\r\n" + o_.body;
    request_bytes_ = req;
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    return epfd_ >= 0;
}

void LoadGen::Watch(Conn* c, uint32_t events) {
    if (c->events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = c->fd;
    epoll_ctl(epfd_, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

void LoadGen::OpenConn(Request r) {
    const int fd = socket(addr_->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        Record(r, 0, Kind::kConnError);
        return;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Conn>();
    Conn* c = conn.get();
    c->fd = fd;
    c->request = r;
    c->has_request = true;
    conns_[fd] = std::move(conn);
    ++conns_opened_;
    max_open_ = std::max(max_open_, conns_.size());
    if (ctx_ != nullptr) {
        c->ssl = SSL_new(ctx_);
        SSL_set_fd(c->ssl, fd);
        SSL_set_tlsext_host_name(c->ssl, o_.host.c_str());
        if (!o_.cacert.empty()) SSL_set1_host(c->ssl, o_.host.c_str());
    }
    if (connect(fd, addr_->ai_addr, addr_->ai_addrlen) != 0 && errno != EINPROGRESS) {
        Fail(c, Kind::kConnError);
        return;
    }
    c->state = State::kConnecting;
    Watch(c, EPOLLOUT);
}

void LoadGen::Pump() {
    while (!queue_.empty()) {
        if (!idle_.empty()) {
            Conn* c = idle_.back();
            idle_.pop_back();
            c->request = queue_.front();
            queue_.pop_front();
            c->has_request = true;
            c->state = State::kSending;
            c->out_off = 0;
            c->in.clear();
            Drive(c);
        } else if (static_cast<int>(conns_.size()) < o_.max_connections) {
            Request r = queue_.front();
            queue_.pop_front();
            OpenConn(r);
        } else {
            break;
        }
    }
    max_queue_ = std::max(max_queue_, queue_.size());
}

long LoadGen::ReadSome(Conn* c, char* buf, size_t len) {
    if (c->ssl == nullptr) {
        const ssize_t n = read(c->fd, buf, len);
        if (n > 0) return n;
        if (n == 0) return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            Watch(c, EPOLLIN);
            return -1;
        }
        return -2;
    }
    ERR_clear_error();
    const int n = SSL_read(c->ssl, buf, static_cast<int>(len));
    return n > 0 ? n : SslShortfall(c, n);
}

// What a non-positive SSL_read/SSL_write result means: -1 wait (the event to wait for is
// armed), 0 the peer closed, -2 a failure.
long LoadGen::SslShortfall(Conn* c, int n) {
    switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            Watch(c, EPOLLIN);
            return -1;
        case SSL_ERROR_WANT_WRITE:
            Watch(c, EPOLLOUT);
            return -1;
        case SSL_ERROR_ZERO_RETURN:
            return 0;
        default:
            return -2;
    }
}

long LoadGen::WriteSome(Conn* c, const char* buf, size_t len) {
    if (c->ssl == nullptr) {
        const ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            Watch(c, EPOLLOUT);
            return -1;
        }
        return -2;
    }
    ERR_clear_error();
    const int n = SSL_write(c->ssl, buf, static_cast<int>(len));
    if (n > 0) return n;
    const long shortfall = SslShortfall(c, n);
    return shortfall == 0 ? -2 : shortfall;  // a close while writing is a failure
}

// Runs one connection's state machine as far as it goes without blocking.
void LoadGen::Drive(Conn* c) {
    char buf[16384];
    for (;;) {
        switch (c->state) {
            case State::kConnecting: {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err == EINPROGRESS) return;
                if (err != 0) return Fail(c, Kind::kConnError);
                c->state = c->ssl != nullptr ? State::kHandshake : State::kSending;
                c->out_off = 0;
                break;
            }
            case State::kHandshake: {
                ERR_clear_error();
                const int rc = SSL_connect(c->ssl);
                if (rc == 1) {
                    c->state = State::kSending;
                    c->out_off = 0;
                    break;
                }
                const int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_READ) return Watch(c, EPOLLIN);
                if (e == SSL_ERROR_WANT_WRITE) return Watch(c, EPOLLOUT);
                return Fail(c, Kind::kConnError);
            }
            case State::kSending: {
                const long n = WriteSome(c, request_bytes_.data() + c->out_off,
                                         request_bytes_.size() - c->out_off);
                if (n == -1) return;
                if (n < 0) return Fail(c, Kind::kConnError);
                c->out_off += static_cast<size_t>(n);
                if (c->out_off == request_bytes_.size()) {
                    c->state = State::kReading;
                    c->in.clear();
                }
                break;
            }
            case State::kReading: {
                const long n = ReadSome(c, buf, sizeof buf);
                if (n == -1) return;
                if (n <= 0) return Fail(c, Kind::kConnError);
                c->in.append(buf, static_cast<size_t>(n));
                const Parsed p = ParseResponse(c->in, !o_.expect.empty());
                if (p.error) return Fail(c, Kind::kConnError);
                if (p.complete) return Complete(c, p);
                break;
            }
            case State::kIdle: {
                // Anything readable on an idle connection is the server closing it.
                const long n = ReadSome(c, buf, sizeof buf);
                if (n == -1) return;
                return CloseConn(c);
            }
        }
    }
}

void LoadGen::Complete(Conn* c, const Parsed& p) {
    Kind kind = Kind::kResponse;
    if (p.status >= 200 && p.status < 300 && !o_.expect.empty() &&
        p.body.find(o_.expect) == std::string::npos)
        kind = Kind::kBadBody;
    const Request r = c->request;
    c->has_request = false;
    ++c->served;
    if (p.close) {
        CloseConn(c);
    } else {
        c->state = State::kIdle;
        c->in.clear();
        Watch(c, EPOLLIN);
        idle_.push_back(c);
    }
    Record(r, p.status, kind, p.retry_after, p.retry_after_s);
}

void LoadGen::CloseConn(Conn* c) {
    idle_.erase(std::remove(idle_.begin(), idle_.end(), c), idle_.end());
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
    if (c->ssl != nullptr) SSL_free(c->ssl);
    close(c->fd);
    conns_.erase(c->fd);  // destroys *c
}

void LoadGen::Fail(Conn* c, Kind kind) {
    const bool had_request = c->has_request;
    Request r = c->request;
    const bool retryable =
        had_request && kind == Kind::kConnError && c->served > 0 && c->in.empty() && r.tries == 0;
    CloseConn(c);
    if (!had_request) return;
    if (retryable) {
        ++retries_;
        r.tries = 1;
        queue_.push_front(r);
        return;
    }
    Record(r, 0, kind);
}

void LoadGen::Record(const Request& r, int status, Kind kind, bool retry_after,
                     double retry_after_s) {
    const double done = Now() - start_;
    outcomes_.push_back(Outcome{r.due, done, status, kind, retry_after});
    // Closed loop: the "user" whose request finished sends the next one right away, or, told
    // to retry later (503 + Retry-After), when it said, as a well-behaved client does; a
    // closed loop that ignored it would measure a storm of refusals. The next request's
    // latency counts from then.
    if (o_.connections > 0 && !arrivals_done_ && done < o_.duration) {
        if (status == 503 && retry_after_s > 0)
            deferred_.emplace(done + retry_after_s, Request{done + retry_after_s, 0});
        else
            Enqueue(Request{done, 0});
    }
}

void LoadGen::CheckTimeouts(double now) {
    const double t = now - start_;
    while (!queue_.empty() && t - queue_.front().due > o_.timeout) {
        Record(queue_.front(), 0, Kind::kTimeout);
        queue_.pop_front();
    }
    std::vector<Conn*> late;
    for (auto& [fd, c] : conns_)
        if (c->has_request && t - c->request.due > o_.timeout) late.push_back(c.get());
    for (Conn* c : late) {
        const Request r = c->request;
        c->has_request = false;
        CloseConn(c);
        Record(r, 0, Kind::kTimeout);
    }
}

int LoadGen::Run() {
    if (!Setup()) return 2;
    const double drain = o_.drain >= 0 ? o_.drain : o_.timeout;
    start_ = Now();
    rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    // Due time of the next open-loop arrival: evenly spaced, or Poisson (exponential gaps from a
    // fixed seed, so that runs are repeatable).
    std::mt19937_64 rng(1);
    std::exponential_distribution<double> gap(o_.rate > 0 ? o_.rate : 1);
    double next_due = 0;
    long next_index = 0;
    if (o_.connections > 0)
        for (int i = 0; i < o_.connections; ++i) Enqueue(Request{0, 0});
    double last_timeout_check = 0;
    epoll_event events[256];
    for (;;) {
        const double now = Now();
        const double t = now - start_;
        if (!arrivals_done_) {
            if (o_.rate > 0) {
                while (true) {
                    if (next_due >= o_.duration || next_due > t) break;
                    Enqueue(Request{next_due, 0});
                    ++next_index;
                    next_due = o_.poisson ? next_due + gap(rng)
                                          : static_cast<double>(next_index) / o_.rate;
                }
            }
            while (!deferred_.empty() && deferred_.begin()->first <= t) {
                Enqueue(deferred_.begin()->second);
                deferred_.erase(deferred_.begin());
            }
            if (t >= o_.duration) arrivals_done_ = true;
        }
        Pump();
        if (now - last_timeout_check > 0.005) {
            CheckTimeouts(now);
            last_timeout_check = now;
            Pump();
        }
        bool outstanding = !queue_.empty();
        for (auto& [fd, c] : conns_) outstanding = outstanding || c->has_request;
        if (arrivals_done_ && (!outstanding || t > o_.duration + drain)) break;

        double wait = 0.005;
        if (!arrivals_done_ && o_.rate > 0) wait = std::min(wait, next_due - t);
        if (!arrivals_done_) wait = std::min(wait, o_.duration - t);
        if (!arrivals_done_ && !deferred_.empty())
            wait = std::min(wait, deferred_.begin()->first - t);
        wait = std::max(wait, 0.0);
        timespec ts{static_cast<time_t>(wait), static_cast<long>((wait - std::floor(wait)) * 1e9)};
        const int n = epoll_pwait2(epfd_, events, 256, &ts, nullptr);
        for (int i = 0; i < n; ++i) {
            const auto it = conns_.find(events[i].data.fd);
            if (it == conns_.end()) continue;
            Drive(it->second.get());
        }
    }
    // Whatever is still queued or in flight never got an answer in time.
    for (const auto& r : queue_) Record(r, 0, Kind::kUnfinished);
    queue_.clear();
    std::vector<Conn*> left;
    for (auto& [fd, c] : conns_) left.push_back(c.get());
    for (Conn* c : left) {
        if (c->has_request) Record(c->request, 0, Kind::kUnfinished);
        c->has_request = false;
        CloseConn(c);
    }
    rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    const auto cpu = [](const rusage& r) {
        return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
               static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
    };
    client_cpu_ = cpu(ru1) - cpu(ru0);
    Report(o_.duration - o_.warmup);
    return 0;
}

double Percentile(std::vector<double>& v, double q) {
    if (v.empty()) return 0;
    const size_t idx = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, idx == 0 ? 0 : idx - 1)];
}

void LoadGen::Report(double window) {
    long offered = 0, ok = 0, shed = 0, shed_without_retry_after = 0, limited = 0, other = 0,
         conn_errors = 0, timeouts = 0, unfinished = 0, bad_body = 0, responses_in_window = 0;
    std::vector<double> ok_lat, shed_lat;
    std::map<int, long> statuses;
    const double end = o_.duration;
    for (const auto& oc : outcomes_) {
        const bool in_window_done = oc.done >= o_.warmup && oc.done <= end;
        if (oc.kind == Kind::kResponse && in_window_done) ++responses_in_window;
        if (oc.due < o_.warmup) continue;
        ++offered;
        const double latency_ms = (oc.done - oc.due) * 1e3;
        switch (oc.kind) {
            case Kind::kConnError:
                ++conn_errors;
                continue;
            case Kind::kTimeout:
                ++timeouts;
                continue;
            case Kind::kUnfinished:
                ++unfinished;
                continue;
            case Kind::kBadBody:
                ++bad_body;
                continue;
            case Kind::kResponse:
                break;
        }
        ++statuses[oc.status];
        if (oc.status >= 200 && oc.status < 300) {
            ++ok;
            ok_lat.push_back(latency_ms);
        } else if (oc.status == 503) {
            ++shed;
            if (!oc.retry_after) ++shed_without_retry_after;
            shed_lat.push_back(latency_ms);
        } else if (oc.status == 429) {
            ++limited;
        } else {
            ++other;
        }
    }
    std::sort(ok_lat.begin(), ok_lat.end());
    std::sort(shed_lat.begin(), shed_lat.end());
    const double denom = offered > 0 ? static_cast<double>(offered) : 1;
    std::string status_json;
    for (const auto& [status, count] : statuses) {
        if (!status_json.empty()) status_json += ",";
        status_json += "\"" + std::to_string(status) + "\":" + std::to_string(count);
    }
    std::printf(
        "{\"mode\":\"%s\",\"arrivals\":\"%s\",\"rate\":%.3f,\"connections\":%d,\"duration\":%.3f,"
        "\"window\":%.3f,"
        "\"offered\":%ld,\"offered_rate\":%.3f,\"ok\":%ld,\"goodput\":%.3f,\"throughput\":%.3f,"
        "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
        "\"shed\":%ld,\"shed_share\":%.5f,\"shed_without_retry_after\":%ld,\"shed_p50_ms\":%.3f,"
        "\"shed_p99_ms\":%.3f,\"rate_limited\":%ld,\"other_status\":%ld,\"conn_errors\":%ld,"
        "\"timeouts\":%ld,\"unfinished\":%ld,\"bad_body\":%ld,\"error_share\":%.5f,"
        "\"statuses\":{%s},\"connections_opened\":%ld,\"max_open\":%zu,\"max_client_queue\":%zu,"
        "\"retries\":%ld,\"client_cpu_s\":%.3f}\n",
        o_.rate > 0 ? "open" : "closed", o_.poisson ? "poisson" : "uniform", o_.rate,
        o_.connections, o_.duration, window, offered, static_cast<double>(offered) / window, ok,
        static_cast<double>(ok) / window, static_cast<double>(responses_in_window) / window,
        Percentile(ok_lat, 0.5), Percentile(ok_lat, 0.9), Percentile(ok_lat, 0.99),
        ok_lat.empty() ? 0 : ok_lat.back(), shed, static_cast<double>(shed) / denom,
        shed_without_retry_after, Percentile(shed_lat, 0.5), Percentile(shed_lat, 0.99), limited,
        other, conn_errors, timeouts, unfinished, bad_body,
        static_cast<double>(other + conn_errors + timeouts + unfinished + bad_body) / denom,
        status_json.c_str(), conns_opened_, max_open_, max_queue_, retries_, client_cpu_);
    if (!o_.log_path.empty()) {
        FILE* f = std::fopen(o_.log_path.c_str(), "w");
        if (f != nullptr) {
            for (const auto& oc : outcomes_)
                std::fprintf(f, "%.6f %.3f %d\n", oc.due, (oc.done - oc.due) * 1e3,
                             oc.kind == Kind::kResponse ? oc.status : 0);
            std::fclose(f);
        }
    }
}

bool ParseUrl(const std::string& url, Options* o) {
    const size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return false;
    o->scheme = url.substr(0, scheme_end);
    if (o->scheme != "http" && o->scheme != "https") return false;
    const size_t host_start = scheme_end + 3;
    const size_t path_start = url.find('/', host_start);
    const std::string authority = url.substr(host_start, path_start - host_start);
    o->path = path_start == std::string::npos ? "/" : url.substr(path_start);
    const size_t colon = authority.rfind(':');
    if (colon == std::string::npos) {
        o->host = authority;
        o->port = o->scheme == "https" ? "443" : "80";
    } else {
        o->host = authority.substr(0, colon);
        o->port = authority.substr(colon + 1);
    }
    return !o->host.empty();
}

void Usage() {
    std::fprintf(
        stderr,
        "usage: hashd-bench-loadgen URL (--rate R | --connections N) [options]\n"
        "  --rate R             open loop: R requests/s, evenly spaced, whatever the responses\n"
        "  --arrivals KIND      open loop spacing: uniform (default) or poisson (same mean rate)\n"
        "  --connections N      closed loop: N connections sending back-to-back\n"
        "  --duration S         seconds of arrivals (default 10)\n"
        "  --warmup S           requests due in the first S seconds are not counted (default 0)\n"
        "  --timeout S          a request unanswered S seconds after it was due fails (10)\n"
        "  --drain S            after the arrivals stop, wait at most S seconds (= timeout)\n"
        "  --max-connections M  open loop connection pool cap (default 1000)\n"
        "  --method M, --body B, --header 'Name: value' (repeatable)\n"
        "  --expect TEXT        a 2xx body must contain TEXT\n"
        "  --cacert FILE        verify the server certificate against FILE\n"
        "  --log FILE           per request: due_s latency_ms status\n");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool have_url = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool v = i + 1 < argc;
        if (a == "--rate" && v) {
            o.rate = std::atof(argv[++i]);
        } else if (a == "--arrivals" && v) {
            const std::string kind = argv[++i];
            if (kind != "uniform" && kind != "poisson") {
                Usage();
                return 2;
            }
            o.poisson = kind == "poisson";
        } else if (a == "--connections" && v) {
            o.connections = std::atoi(argv[++i]);
        } else if (a == "--duration" && v) {
            o.duration = std::atof(argv[++i]);
        } else if (a == "--warmup" && v) {
            o.warmup = std::atof(argv[++i]);
        } else if (a == "--timeout" && v) {
            o.timeout = std::atof(argv[++i]);
        } else if (a == "--drain" && v) {
            o.drain = std::atof(argv[++i]);
        } else if (a == "--max-connections" && v) {
            o.max_connections = std::atoi(argv[++i]);
        } else if (a == "--method" && v) {
            o.method = argv[++i];
        } else if (a == "--body" && v) {
            o.body = argv[++i];
        } else if (a == "--header" && v) {
            o.headers.emplace_back(argv[++i]);
        } else if (a == "--expect" && v) {
            o.expect = argv[++i];
        } else if (a == "--cacert" && v) {
            o.cacert = argv[++i];
        } else if (a == "--log" && v) {
            o.log_path = argv[++i];
        } else if (a == "--help" || a == "-h") {
            Usage();
            return 0;
        } else if (!have_url && ParseUrl(a, &o)) {
            have_url = true;
        } else {
            Usage();
            return 2;
        }
    }
    if (!have_url || (o.rate > 0) == (o.connections > 0) || o.duration <= 0 ||
        o.warmup >= o.duration) {
        Usage();
        return 2;
    }
    if (o.connections > 0) o.max_connections = o.connections;
    // OpenSSL writes with write(2): a peer that closed must give EPIPE, not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return LoadGen(o).Run();
}
