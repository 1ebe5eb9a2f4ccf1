// Pool-wide metrics in a shared memory region.
//
// The problem. A VM runs P hashd-fcgi processes behind one nginx. A scrape of GET /metrics
// reaches whichever process nginx picks, yet it must describe the whole pool: all requests,
// all busy workers. And a process may crash and be restarted at any time without the pool's
// counters going backwards (Prometheus would read that as a counter reset and an operator
// would see requests vanish).
//
// The region. Every process maps the same file, $HASHD_RUNTIME_DIR/metrics.shm (by default
// /run/hashd, a tmpfs that systemd creates for the hashd@N units), with MAP_SHARED. A file in
// /run rather than POSIX shm_open or SysV shm because it lives exactly as long as the VM is up
// (tmpfs: RAM only, gone on reboot, when every counter starting over is the truth), it sits in
// the service's own directory with the service's own permissions (the sandbox gives the units
// no /dev/shm to share), and an operator can see it with ls.
//
// Slots, not one shared set of counters. The region holds a header and then one slot per
// process, indexed by HASHD_INSTANCE (1..HASHD_METRICS_SLOTS). A process only ever writes its
// own slot; Render() sums the slots. Giving each process its own slot means:
//   - a process restarted under the same instance number finds its slot with everything it
//     counted before and keeps adding: counters never go backwards while the VM is up;
//   - gauges (requests in flight, busy workers) belong to exactly one process, so the slot of
//     a dead process can be left out of them instead of reporting its last value forever;
//   - no two processes write the same cache lines on every request.
// A slot is claimed with an exclusive OFD lock (fcntl F_OFD_SETLK) on its byte range. The
// kernel drops the lock when the process dies however it dies (kill -9 included), so "is the
// lock held" is an exact liveness test with no pid reuse race and no need to see other
// processes' /proc entries; and two processes started with the same HASHD_INSTANCE by mistake
// cannot share a slot (the second one waits a few seconds, then refuses to start).
//
// No locks on the hot path. Every counter and histogram bucket is a uint64_t updated with a
// relaxed atomic fetch_add (std::atomic_ref on the mapped memory; lock-free and address-free,
// which is what makes an atomic valid across processes: checked by static_assert below).
// Counters are independent of each other, so relaxed ordering is enough; a scrape may see a
// histogram's sum a moment ahead of its buckets, which Prometheus tolerates. A histogram's
// _count is computed from its buckets at render time, so _count always equals the +Inf bucket.
// Gauges are signed values stored as two's-complement uint64_t and updated by adding deltas.
//
// Creation, concurrent start, upgrades. P processes start at once. Each opens the file
// (O_CREAT) and takes flock(LOCK_EX) while it checks the header: magic, layout version,
// slot size, slot count and a fingerprint of every label table and bucket boundary below.
// If the header does not match (new file, or a new binary whose layout differs), the process
// builds a complete new region in a temporary file and rename()s it over the old one; it
// never truncates a file that others may have mapped (they would get SIGBUS). A process that
// was waiting for the lock then notices that the path now names another inode and starts
// over with the new file. An upgrade therefore starts counting from zero (Prometheus sees one
// counter reset per series, which rate() handles); processes of the old binary keep writing
// to the old, unlinked file until they are restarted too, which a package upgrade does (while
// both kinds run, a scrape answered by an old process shows the old region: a few seconds of
// counters jumping between the two, again only resets to Prometheus). An upgrade that keeps
// the layout keeps the region and its counts.
//
// Cardinality. Every label comes from a fixed table: routes from the router (never the raw
// path), a fixed set of methods, the HTTP statuses hashd and nginx produce plus "other",
// costs 4..31, store backends and ops, shed reasons. So the region has a fixed size (about
// 23 KiB per slot, 1.5 MiB for the default 64 slots) and a client cannot create series.
// Series that never counted anything are not rendered, so a scrape stays small (a few
// hundred lines); the exception is the error series that alerts need before the first error.
// Never add a label with client-chosen values (client addresses, digests, paths): abusive
// clients are found in the logs.
//
// What Render() reports for the pool:
//   - counters and histograms: the sum over every slot ever used (dead processes included);
//   - gauges (inflight, busy workers, workers, processes): the sum over live slots;
//   - process_resident_memory_bytes and process_open_fds: the sum over live processes, read
//     from /proc/<pid> (the units run as one user, so ProtectProc=invisible still shows them);
//   - process_cpu_seconds_total: a counter for the pool. Each scrape remembers in the slot the
//     CPU time it saw; when a slot is taken over by a new process, the last seen value of the
//     dead one moves into the slot's retired total. The pool's value never goes backwards (it
//     misses only the CPU a dead process used after the last scrape);
//   - process_start_time_seconds: the start time of the youngest live process, so a restart
//     of any process shows as a change; hashd_process_starts_total counts starts per VM.

#include "metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <thread>
#include <vector>

#include "build_info.h"
#include "router.h"

namespace hashd {
namespace {

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
              "metrics counters live in memory shared by processes: they must be lock-free");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

// --- Label tables (the only values a label can take) ---------------------------------------

constexpr std::string_view kMethods[] = {"GET",    "POST",  "HEAD",    "PUT",
                                         "DELETE", "PATCH", "OPTIONS", "OTHER"};
// Statuses hashd answers with, plus those nginx may pass through; anything else is "other".
constexpr int kStatuses[] = {200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 406, 408, 409,
                             410, 411, 413, 414, 415, 422, 429, 500, 501, 502, 503, 504};
constexpr std::size_t kStatusSlots = std::size(kStatuses) + 1;  // + "other"
constexpr int kMinCost = 4;                                     // bcrypt's range
constexpr int kMaxCost = 31;
constexpr std::size_t kCosts = kMaxCost - kMinCost + 1;
constexpr std::string_view kBackends[] = {"lmdb", "redis", "postgresql", "other"};
constexpr std::string_view kOps[] = {"put", "get", "other"};
constexpr std::string_view kResults[] = {"ok", "error"};
constexpr std::string_view kShedReasons[] = {"queue_deadline", "other"};

template <typename Table, typename Value>
std::size_t IndexOf(const Table& table, const Value& value, std::size_t fallback) {
    for (std::size_t i = 0; i < std::size(table); ++i)
        if (table[i] == value) return i;
    return fallback;
}

// Histogram boundaries: the number for bucketing and the exact text of its `le` label.
struct Bound {
    double seconds;
    std::string_view text;
};
// Requests: from a cached 404 (well under 1 ms) to a cost-14 hash behind a queue (seconds).
constexpr Bound kRequestBounds[] = {
    {0.001, "0.001"}, {0.0025, "0.0025"}, {0.005, "0.005"}, {0.01, "0.01"}, {0.025, "0.025"},
    {0.05, "0.05"},   {0.1, "0.1"},       {0.25, "0.25"},   {0.5, "0.5"},   {1, "1"},
    {2.5, "2.5"},     {5, "5"},           {10, "10"}};
// bcrypt doubles its work per cost step, so the buckets double too (1 ms .. 2 s): each cost
// lands in about one bucket (cost 4 ~ 1 ms, 10 ~ 55 ms, 12 ~ 220 ms, 14 ~ 880 ms), and a
// drift of one bucket means the machine hashes twice as slowly.
constexpr Bound kHashBounds[] = {{0.001, "0.001"}, {0.002, "0.002"}, {0.004, "0.004"},
                                 {0.008, "0.008"}, {0.016, "0.016"}, {0.032, "0.032"},
                                 {0.064, "0.064"}, {0.128, "0.128"}, {0.256, "0.256"},
                                 {0.512, "0.512"}, {1.024, "1.024"}, {2.048, "2.048"}};
// Queue wait: nginx's $msec has millisecond resolution; the deadline defaults to ~1-2 s.
constexpr Bound kQueueBounds[] = {
    {0.001, "0.001"}, {0.0025, "0.0025"}, {0.005, "0.005"}, {0.01, "0.01"}, {0.025, "0.025"},
    {0.05, "0.05"},   {0.1, "0.1"},       {0.25, "0.25"},   {0.5, "0.5"},   {1, "1"},
    {2, "2"},         {5, "5"},           {10, "10"}};
// Store operations: LMDB reads take microseconds, network stores a round trip or a timeout.
constexpr Bound kStoreBounds[] = {{0.0001, "0.0001"}, {0.00025, "0.00025"}, {0.0005, "0.0005"},
                                  {0.001, "0.001"},   {0.0025, "0.0025"},   {0.005, "0.005"},
                                  {0.01, "0.01"},     {0.025, "0.025"},     {0.05, "0.05"},
                                  {0.1, "0.1"},       {0.25, "0.25"},       {0.5, "0.5"},
                                  {1, "1"},           {2.5, "2.5"}};

// A histogram occupies buckets (non-cumulative, the last one is +Inf) and then its sum in
// nanoseconds (an integer, so that it too is a plain atomic add).
template <std::size_t N>
constexpr std::size_t HistogramCells(const Bound (&)[N]) {
    return N + 2;
}

// --- Layout ---------------------------------------------------------------------------------

// Words at the start of each slot, before the counters.
enum SlotWord : std::size_t {
    kPid,              // pid of the process that last claimed the slot; 0: never used
    kStartUnixNs,      // when it claimed the slot
    kStarts,           // how many processes have claimed it (counter)
    kCpuRetiredTicks,  // CPU time of the slot's earlier processes (clock ticks)
    kCpuSeenTicks,     // CPU time of its current process, as last seen by a scrape
    kInflight,         // gauges (two's complement)
    kBusy,
    kWorkers,
    kSlotWords,
};

constexpr std::uint64_t kMagic = 0x314d54454d444853;  // "SHDMETM1" little-endian
constexpr std::uint64_t kLayoutVersion = 1;

struct RegionHeader {
    std::uint64_t magic;
    std::uint64_t version;
    std::uint64_t fingerprint;  // of the label tables and bucket boundaries
    std::uint64_t slot_count;
    std::uint64_t slot_bytes;
    std::uint64_t total_bytes;
};
constexpr std::size_t kHeaderBytes = 4096;  // keeps slot 1 page- and cache-line-aligned
static_assert(sizeof(RegionHeader) <= kHeaderBytes);

// Where each family lives in a slot (offsets in words from the start of the counters).
struct Layout {
    std::vector<std::string_view> routes;  // router labels, then "unmatched", then "other"
    std::vector<bool> declared;            // [route][method]: a pair the router serves
    std::size_t requests = 0;              // [route][method][status]
    std::size_t request_duration = 0;      // [route] histogram
    std::size_t hash_duration = 0;         // [cost] histogram
    std::size_t queue_wait = 0;            // histogram
    std::size_t shed = 0;                  // [reason]
    std::size_t store_ops = 0;             // [backend][op][result]
    std::size_t store_duration = 0;        // [backend][op] histogram
    std::size_t legacy_get = 0;
    std::size_t cells = 0;
    std::size_t slot_bytes = 0;
    std::uint64_t fingerprint = 0;
};

class Fingerprint {
  public:
    void Add(std::string_view text) {
        for (unsigned char c : text) Byte(c);
        Byte(0);
    }
    void Add(std::uint64_t n) {
        for (int i = 0; i < 8; ++i) Byte(static_cast<unsigned char>(n >> (8 * i)));
    }
    std::uint64_t value() const { return hash_; }

  private:
    void Byte(unsigned char c) {
        hash_ ^= c;
        hash_ *= 0x100000001b3;  // FNV-1a
    }
    std::uint64_t hash_ = 0xcbf29ce484222325;
};

const Layout& GetLayout() {
    static const Layout layout = [] {
        Layout l;
        for (const Route& route : Routes())
            if (std::find(l.routes.begin(), l.routes.end(), route.label) == l.routes.end())
                l.routes.push_back(route.label);
        l.routes.push_back("unmatched");
        l.routes.push_back("other");
        l.declared.assign(l.routes.size() * std::size(kMethods), false);
        for (const Route& route : Routes())
            l.declared[IndexOf(l.routes, route.label, 0) * std::size(kMethods) +
                       IndexOf(kMethods, route.method, 0)] = true;

        std::size_t at = 0;
        auto take = [&at](std::size_t n) {
            const std::size_t start = at;
            at += n;
            return start;
        };
        l.requests = take(l.routes.size() * std::size(kMethods) * kStatusSlots);
        l.request_duration = take(l.routes.size() * HistogramCells(kRequestBounds));
        l.hash_duration = take(kCosts * HistogramCells(kHashBounds));
        l.queue_wait = take(HistogramCells(kQueueBounds));
        l.shed = take(std::size(kShedReasons));
        l.store_ops = take(std::size(kBackends) * std::size(kOps) * std::size(kResults));
        l.store_duration =
            take(std::size(kBackends) * std::size(kOps) * HistogramCells(kStoreBounds));
        l.legacy_get = take(1);
        l.cells = at;
        // Whole cache lines per slot: processes never write the same line.
        const std::size_t bytes = (kSlotWords + l.cells) * sizeof(std::uint64_t);
        l.slot_bytes = (bytes + 63) / 64 * 64;

        Fingerprint f;
        f.Add(kLayoutVersion);
        f.Add(std::uint64_t{kSlotWords});
        for (auto r : l.routes) f.Add(r);
        for (auto m : kMethods) f.Add(m);
        for (int s : kStatuses) f.Add(static_cast<std::uint64_t>(s));
        f.Add(std::uint64_t{kMinCost});
        f.Add(std::uint64_t{kMaxCost});
        for (auto b : kBackends) f.Add(b);
        for (auto o : kOps) f.Add(o);
        for (auto s : kShedReasons) f.Add(s);
        for (std::span<const Bound> table :
             {std::span<const Bound>(kRequestBounds), std::span<const Bound>(kHashBounds),
              std::span<const Bound>(kQueueBounds), std::span<const Bound>(kStoreBounds)}) {
            for (const Bound& b : table) f.Add(b.text);
            f.Add("|");
        }
        l.fingerprint = f.value();
        return l;
    }();
    return layout;
}

std::size_t StatusIndex(int status) {
    return IndexOf(kStatuses, status, std::size(kStatuses));
}

std::size_t RouteIndex(const Layout& l, std::string_view route) {
    return IndexOf(l.routes, route, l.routes.size() - 1);
}

// Non-negative seconds to whole nanoseconds.
std::uint64_t Nanos(double seconds) {
    if (!(seconds > 0)) return 0;
    if (seconds > 1e9) seconds = 1e9;
    return static_cast<std::uint64_t>(std::llround(seconds * 1e9));
}

ApiError SystemError(const std::string& what, const std::string& path, int error) {
    return {500, "metrics_unavailable", what + " " + path + ": " + std::strerror(error)};
}

// --- Reading /proc --------------------------------------------------------------------------

struct ProcessStats {
    std::uint64_t cpu_ticks = 0;  // utime + stime
    std::uint64_t rss_bytes = 0;
    std::uint64_t open_fds = 0;
};

// Stats of a live process, or nullopt when /proc does not show it (another user's process
// under ProtectProc=invisible, or it just exited).
std::optional<ProcessStats> ReadProcessStats(std::uint64_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream stat_file(dir + "/stat");
    std::string stat;
    if (!std::getline(stat_file, stat)) return std::nullopt;
    // The command name (field 2) may contain spaces: fields are counted after its ")".
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(paren + 1));
    std::vector<std::string> after;
    for (std::string f; fields >> f;) after.push_back(f);
    if (after.size() < 22) return std::nullopt;
    // after[0] is field 3 (state): utime is field 14, stime 15, rss (pages) 24.
    ProcessStats stats;
    stats.cpu_ticks = std::stoull(after[11]) + std::stoull(after[12]);
    stats.rss_bytes = std::stoull(after[21]) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    if (DIR* fds = opendir((dir + "/fd").c_str())) {
        while (const dirent* entry = readdir(fds))
            if (entry->d_name[0] != '.') ++stats.open_fds;
        closedir(fds);
        // Listing our own fds counts the directory stream's descriptor too.
        if (pid == static_cast<std::uint64_t>(getpid()) && stats.open_fds > 0) --stats.open_fds;
    }
    return stats;
}

// --- Exposition -----------------------------------------------------------------------------

std::string FormatDouble(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

// Label values here come from the fixed tables, except the build's version and commit.
std::string EscapeLabel(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

class Exposition {
  public:
    void Family(std::string_view name, std::string_view type, std::string_view help) {
        out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }
    void Sample(std::string_view name, std::string_view labels, std::string_view value) {
        out_.append(name);
        if (!labels.empty()) out_.append("{").append(labels).append("}");
        out_.append(" ").append(value).append("\n");
    }
    void Sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        Sample(name, labels, std::to_string(value));
    }
    void Sample(std::string_view name, std::string_view labels, std::int64_t value) {
        Sample(name, labels, std::to_string(value));
    }
    void SampleSeconds(std::string_view name, std::string_view labels, double value) {
        Sample(name, labels, FormatDouble(value));
    }
    // Buckets (non-cumulative, +Inf last) and the sum in ns, as _bucket/_sum/_count lines.
    template <std::size_t N>
    void Histogram(std::string_view name, const std::string& labels, const Bound (&bounds)[N],
                   const std::uint64_t* cells) {
        const std::string prefix = labels.empty() ? "" : labels + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= N; ++i) {
            cumulative += cells[i];
            const std::string le = i < N ? std::string(bounds[i].text) : "+Inf";
            Sample(std::string(name) + "_bucket", prefix + "le=\"" + le + "\"", cumulative);
        }
        SampleSeconds(std::string(name) + "_sum", labels, static_cast<double>(cells[N + 1]) / 1e9);
        Sample(std::string(name) + "_count", labels, cumulative);
    }
    std::string Take() { return std::move(out_); }

  private:
    std::string out_;
};

template <std::size_t N>
std::uint64_t HistogramCount(const std::uint64_t* cells) {
    std::uint64_t count = 0;
    for (std::size_t i = 0; i <= N; ++i) count += cells[i];
    return count;
}

// --- The shared region ----------------------------------------------------------------------

class SharedMetrics final : public Metrics {
  public:
    SharedMetrics(int fd, void* base, std::size_t bytes, std::size_t slot_count,
                  std::size_t own_slot, std::size_t store_backend)
        : layout_(GetLayout()),
          fd_(fd),
          base_(static_cast<unsigned char*>(base)),
          bytes_(bytes),
          slot_count_(slot_count),
          own_(own_slot),
          store_backend_(store_backend) {}

    ~SharedMetrics() override {
        // The gauges of a process that is gone must not count; Render() already skips slots
        // whose lock is free, this only tidies up the slot for readers of the raw file.
        for (SlotWord w : {kInflight, kBusy, kWorkers}) Word(own_, w).store(0);
        munmap(base_, bytes_);
        close(fd_);  // releases the slot's lock
    }

    // Claims the slot: the counters stay, the gauges start from zero, the CPU time of the
    // process that had it before moves to the slot's retired total.
    void Attach() {
        for (SlotWord w : {kInflight, kBusy, kWorkers}) Word(own_, w).store(0);
        Word(own_, kCpuRetiredTicks).fetch_add(Word(own_, kCpuSeenTicks).exchange(0));
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        Word(own_, kStartUnixNs)
            .store(static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
        Word(own_, kPid).store(static_cast<std::uint64_t>(getpid()));
        Word(own_, kStarts).fetch_add(1);
    }

    void RecordRequest(std::string_view route, std::string_view method, int status,
                       double seconds) override {
        const std::size_t r = RouteIndex(layout_, route);
        const std::size_t m = IndexOf(kMethods, method, std::size(kMethods) - 1);
        Add(layout_.requests + (r * std::size(kMethods) + m) * kStatusSlots + StatusIndex(status));
        Observe(layout_.request_duration + r * HistogramCells(kRequestBounds), kRequestBounds,
                seconds);
    }

    void RecordHash(int cost, double seconds) override {
        if (cost < kMinCost || cost > kMaxCost) return;
        Observe(layout_.hash_duration +
                    static_cast<std::size_t>(cost - kMinCost) * HistogramCells(kHashBounds),
                kHashBounds, seconds);
    }

    void RecordQueueWait(double seconds) override {
        Observe(layout_.queue_wait, kQueueBounds, seconds);
    }

    void RecordShed(std::string_view reason) override {
        Add(layout_.shed + IndexOf(kShedReasons, reason, std::size(kShedReasons) - 1));
    }

    void RecordStore(std::string_view backend, std::string_view op, bool ok,
                     double seconds) override {
        const std::size_t b = IndexOf(kBackends, backend, std::size(kBackends) - 1);
        const std::size_t o = IndexOf(kOps, op, std::size(kOps) - 1);
        Add(layout_.store_ops + (b * std::size(kOps) + o) * std::size(kResults) + (ok ? 0 : 1));
        Observe(layout_.store_duration + (b * std::size(kOps) + o) * HistogramCells(kStoreBounds),
                kStoreBounds, seconds);
    }

    void RecordLegacyGet() override { Add(layout_.legacy_get); }

    void AddInflight(int delta) override { AddGauge(kInflight, delta); }
    void AddBusyWorkers(int delta) override { AddGauge(kBusy, delta); }
    void SetWorkers(int count) override {
        Word(own_, kWorkers).store(static_cast<std::uint64_t>(static_cast<std::int64_t>(count)));
    }

    std::string Render() const override;

  private:
    std::uint64_t* SlotBase(std::size_t slot) const {
        return reinterpret_cast<std::uint64_t*>(base_ + kHeaderBytes + slot * layout_.slot_bytes);
    }
    std::atomic_ref<std::uint64_t> Word(std::size_t slot, SlotWord word) const {
        return std::atomic_ref<std::uint64_t>(SlotBase(slot)[word]);
    }
    std::atomic_ref<std::uint64_t> Cell(std::size_t slot, std::size_t cell) const {
        return std::atomic_ref<std::uint64_t>(SlotBase(slot)[kSlotWords + cell]);
    }
    void Add(std::size_t cell, std::uint64_t n = 1) {
        Cell(own_, cell).fetch_add(n, std::memory_order_relaxed);
    }
    void AddGauge(SlotWord word, int delta) {
        Word(own_, word)
            .fetch_add(static_cast<std::uint64_t>(static_cast<std::int64_t>(delta)),
                       std::memory_order_relaxed);
    }
    template <std::size_t N>
    void Observe(std::size_t cell, const Bound (&bounds)[N], double seconds) {
        std::size_t bucket = 0;
        while (bucket < N && !(seconds <= bounds[bucket].seconds)) ++bucket;
        Add(cell + bucket);
        Add(cell + N + 1, Nanos(seconds));
    }

    // True while a process holds the slot's lock (this one included).
    bool Live(std::size_t slot) const {
        if (slot == own_) return true;
        if (Word(slot, kPid).load() == 0) return false;
        struct flock lock {};
        lock.l_type = F_WRLCK;
        lock.l_whence = SEEK_SET;
        lock.l_start = static_cast<off_t>(kHeaderBytes + slot * layout_.slot_bytes);
        lock.l_len = static_cast<off_t>(layout_.slot_bytes);
        if (fcntl(fd_, F_OFD_GETLK, &lock) != 0) return false;
        return lock.l_type != F_UNLCK;
    }

    const Layout& layout_;
    int fd_;
    unsigned char* base_;
    std::size_t bytes_;
    std::size_t slot_count_;
    std::size_t own_;
    std::size_t store_backend_;  // index in kBackends of HASHD_STORE's backend
};

std::string SharedMetrics::Render() const {
    const Layout& l = layout_;
    // Counters: the sum over every slot ever used. Gauges: over the live ones.
    std::vector<std::uint64_t> c(l.cells, 0);
    std::int64_t inflight = 0, busy = 0, workers = 0, processes = 0;
    std::uint64_t starts = 0, cpu_ticks = 0, rss = 0, fds = 0, youngest_ns = 0;
    for (std::size_t s = 0; s < slot_count_; ++s) {
        if (Word(s, kPid).load() == 0) continue;
        for (std::size_t i = 0; i < l.cells; ++i)
            c[i] += Cell(s, i).load(std::memory_order_relaxed);
        starts += Word(s, kStarts).load();
        cpu_ticks += Word(s, kCpuRetiredTicks).load();
        std::atomic_ref<std::uint64_t> seen = Word(s, kCpuSeenTicks);
        if (!Live(s)) {
            cpu_ticks += seen.load();
            continue;
        }
        ++processes;
        inflight += static_cast<std::int64_t>(Word(s, kInflight).load());
        busy += static_cast<std::int64_t>(Word(s, kBusy).load());
        workers += static_cast<std::int64_t>(Word(s, kWorkers).load());
        youngest_ns = std::max(youngest_ns, Word(s, kStartUnixNs).load());
        std::uint64_t ticks = seen.load();
        if (auto stats = ReadProcessStats(Word(s, kPid).load())) {
            // Remember the highest value seen, for when this process is gone.
            while (ticks < stats->cpu_ticks &&
                   !seen.compare_exchange_weak(ticks, stats->cpu_ticks)) {
            }
            ticks = std::max(ticks, stats->cpu_ticks);
            rss += stats->rss_bytes;
            fds += stats->open_fds;
        }
        cpu_ticks += ticks;
    }

    Exposition out;
    const std::size_t methods = std::size(kMethods);

    out.Family("hashd_requests_total", "counter",
               "Requests answered by the pool, by route, method and HTTP status.");
    for (std::size_t r = 0; r < l.routes.size(); ++r) {
        for (std::size_t m = 0; m < methods; ++m) {
            const std::uint64_t* row = &c[l.requests + (r * methods + m) * kStatusSlots];
            if (!l.declared[r * methods + m] &&
                std::all_of(row, row + kStatusSlots, [](std::uint64_t v) { return v == 0; }))
                continue;
            const std::string labels = "route=\"" + std::string(l.routes[r]) + "\",method=\"" +
                                       std::string(kMethods[m]) + "\",status=\"";
            for (std::size_t s = 0; s < kStatusSlots; ++s) {
                const bool is_other = s == std::size(kStatuses);
                // 500 and 503 are always present (as 0) for every route the router serves
                // (and any other that had traffic), so that rate() and increase() see the
                // first server error instead of a series that appears from nothing: a
                // series' first sample is not an increase to Prometheus.
                const bool seeded = !is_other && (kStatuses[s] == 500 || kStatuses[s] == 503);
                if (row[s] == 0 && !seeded) continue;
                out.Sample("hashd_requests_total",
                           labels + (is_other ? "other" : std::to_string(kStatuses[s])) + "\"",
                           row[s]);
            }
        }
    }

    out.Family("hashd_request_duration_seconds", "histogram",
               "Time from the app picking a request up to its response, by route.");
    for (std::size_t r = 0; r < l.routes.size(); ++r) {
        const std::uint64_t* h = &c[l.request_duration + r * HistogramCells(kRequestBounds)];
        if (HistogramCount<std::size(kRequestBounds)>(h) == 0) continue;
        out.Histogram("hashd_request_duration_seconds",
                      "route=\"" + std::string(l.routes[r]) + "\"", kRequestBounds, h);
    }

    out.Family("hashd_hash_duration_seconds", "histogram",
               "Time to compute or verify one bcrypt hash, by cost.");
    for (std::size_t k = 0; k < kCosts; ++k) {
        const std::uint64_t* h = &c[l.hash_duration + k * HistogramCells(kHashBounds)];
        if (HistogramCount<std::size(kHashBounds)>(h) == 0) continue;
        out.Histogram("hashd_hash_duration_seconds",
                      "cost=\"" + std::to_string(kMinCost + static_cast<int>(k)) + "\"",
                      kHashBounds, h);
    }

    out.Family("hashd_queue_wait_seconds", "histogram",
               "Time between nginx handing a request over and a worker picking it up.");
    out.Histogram("hashd_queue_wait_seconds", "", kQueueBounds, &c[l.queue_wait]);

    out.Family("hashd_inflight_requests", "gauge", "Requests the pool's processes are serving.");
    out.Sample("hashd_inflight_requests", "", inflight);
    out.Family("hashd_workers_busy", "gauge", "Worker threads of the pool serving a request.");
    out.Sample("hashd_workers_busy", "", busy);
    out.Family("hashd_workers", "gauge", "Worker threads of the pool (live processes x threads).");
    out.Sample("hashd_workers", "", workers);
    out.Family("hashd_processes", "gauge", "Live hashd-fcgi processes sharing this region.");
    out.Sample("hashd_processes", "", processes);
    out.Family("hashd_process_starts_total", "counter",
               "hashd-fcgi process starts on this VM since boot (restarts included).");
    out.Sample("hashd_process_starts_total", "", starts);

    out.Family("hashd_shed_requests_total", "counter",
               "Requests refused with 503 before any work, by reason.");
    for (std::size_t i = 0; i < std::size(kShedReasons); ++i) {
        const bool is_other = i + 1 == std::size(kShedReasons);
        if (is_other && c[l.shed + i] == 0) continue;
        out.Sample("hashd_shed_requests_total", "reason=\"" + std::string(kShedReasons[i]) + "\"",
                   c[l.shed + i]);
    }

    out.Family("hashd_store_operations_total", "counter",
               "Message store operations, by backend, operation and result (ok or error).");
    const std::size_t ops = std::size(kOps), results = std::size(kResults);
    for (std::size_t b = 0; b < std::size(kBackends); ++b) {
        const std::uint64_t* row = &c[l.store_ops + b * ops * results];
        if (b != store_backend_ &&
            std::all_of(row, row + ops * results, [](std::uint64_t v) { return v == 0; }))
            continue;
        // Every op x result of the configured backend (and any other in use), zeros
        // included: an error alert then sees the first error as an increase.
        for (std::size_t o = 0; o < ops; ++o) {
            const bool is_other = o + 1 == ops;
            if (is_other && row[o * results] + row[o * results + 1] == 0) continue;
            for (std::size_t res = 0; res < results; ++res)
                out.Sample("hashd_store_operations_total",
                           "backend=\"" + std::string(kBackends[b]) + "\",op=\"" +
                               std::string(kOps[o]) + "\",result=\"" + std::string(kResults[res]) +
                               "\"",
                           row[o * results + res]);
        }
    }

    out.Family("hashd_store_duration_seconds", "histogram",
               "Message store operation latency, by backend and operation.");
    for (std::size_t b = 0; b < std::size(kBackends); ++b) {
        for (std::size_t o = 0; o < ops; ++o) {
            const std::uint64_t* h =
                &c[l.store_duration + (b * ops + o) * HistogramCells(kStoreBounds)];
            if (HistogramCount<std::size(kStoreBounds)>(h) == 0) continue;
            out.Histogram(
                "hashd_store_duration_seconds",
                "backend=\"" + std::string(kBackends[b]) + "\",op=\"" + std::string(kOps[o]) + "\"",
                kStoreBounds, h);
        }
    }

    out.Family("hashd_legacy_get_requests_total", "counter",
               "Requests to the deprecated GET /gethash/<password>/ (clients still to migrate).");
    out.Sample("hashd_legacy_get_requests_total", "", c[l.legacy_get]);

    out.Family("process_cpu_seconds_total", "counter",
               "User and system CPU time of the pool's processes, past ones included.");
    out.SampleSeconds("process_cpu_seconds_total", "",
                      static_cast<double>(cpu_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)));
    out.Family("process_resident_memory_bytes", "gauge",
               "Resident memory of the live processes of the pool, summed.");
    out.Sample("process_resident_memory_bytes", "", rss);
    out.Family("process_open_fds", "gauge",
               "Open file descriptors of the live processes of the pool, summed.");
    out.Sample("process_open_fds", "", fds);
    out.Family("process_start_time_seconds", "gauge",
               "Start time of the youngest live process of the pool, in seconds since the epoch.");
    out.SampleSeconds("process_start_time_seconds", "", static_cast<double>(youngest_ns) / 1e9);

    out.Family("hashd_build_info", "gauge", "The build answering: version and commit; always 1.");
    out.Sample("hashd_build_info",
               "version=\"" + EscapeLabel(kVersion) + "\",commit=\"" + EscapeLabel(kCommit) + "\"",
               std::uint64_t{1});
    return out.Take();
}

// --- Opening --------------------------------------------------------------------------------

RegionHeader ExpectedHeader(std::size_t slot_count) {
    const Layout& l = GetLayout();
    return {kMagic,     kLayoutVersion, l.fingerprint,
            slot_count, l.slot_bytes,   kHeaderBytes + slot_count * l.slot_bytes};
}

// Writes a complete, zeroed region to a temporary file and renames it over `path`. The
// caller holds the flock of the file that `path` named, so one process at a time does this.
Status CreateRegion(const std::string& path, std::size_t slot_count) {
    const std::string temp = path + ".new." + std::to_string(getpid());
    const int fd = open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return SystemError("cannot create", temp, errno);
    const RegionHeader header = ExpectedHeader(slot_count);
    // posix_fallocate reserves the pages now: a full tmpfs fails here, not as a SIGBUS later.
    int error = posix_fallocate(fd, 0, static_cast<off_t>(header.total_bytes));
    if (error == 0 && pwrite(fd, &header, sizeof(header), 0) != sizeof(header)) error = errno;
    if (error == 0 && rename(temp.c_str(), path.c_str()) != 0) error = errno;
    close(fd);
    if (error != 0) {
        unlink(temp.c_str());
        return SystemError("cannot initialize", path, error);
    }
    return Ok{};
}

// Whether the open file holds a region this binary can use with `instance` in it.
bool Usable(int fd, int instance, std::size_t* slot_count) {
    RegionHeader header{};
    struct stat st {};
    if (fstat(fd, &st) != 0 || pread(fd, &header, sizeof(header), 0) != sizeof(header))
        return false;
    const RegionHeader want = ExpectedHeader(header.slot_count);
    const bool ok = header.magic == want.magic && header.version == want.version &&
                    header.fingerprint == want.fingerprint &&
                    header.slot_bytes == want.slot_bytes &&
                    header.total_bytes == want.total_bytes &&
                    static_cast<std::uint64_t>(st.st_size) >= header.total_bytes &&
                    header.slot_count >= static_cast<std::uint64_t>(instance);
    if (ok) *slot_count = header.slot_count;
    return ok;
}

// The backend HASHD_STORE names (the store's own parsing is authoritative; this only picks
// which backend's series to show before its first operation).
std::size_t StoreBackendIndex(std::string_view store) {
    if (store.starts_with("lmdb:")) return 0;
    if (store.starts_with("redis://")) return 1;
    if (store.starts_with("postgresql://") || store.starts_with("postgres://")) return 2;
    return std::size(kBackends);  // none
}

bool SameFile(int fd, const std::string& path) {
    struct stat a {
    }, b{};
    return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::Open(const Config& config) {
    if (config.instance < 1 || config.instance > config.metrics_slots)
        return ApiError{500, "invalid_setting", "HASHD_INSTANCE must be 1..HASHD_METRICS_SLOTS"};
    const std::string path = config.runtime_dir + "/metrics.shm";

    // Open a usable region; at most a few rounds, as each round either succeeds or replaces
    // the file (a concurrent starter may replace it once more under us).
    int fd = -1;
    std::size_t slot_count = 0;
    for (int round = 0; fd < 0; ++round) {
        if (round == 8) return ApiError{500, "metrics_unavailable", "cannot settle on " + path};
        const int candidate = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (candidate < 0) return SystemError("cannot open", path, errno);
        if (flock(candidate, LOCK_EX) != 0) {
            const int error = errno;
            close(candidate);
            return SystemError("cannot lock", path, error);
        }
        if (!SameFile(candidate, path)) {  // replaced while we waited: use the new one
            close(candidate);
            continue;
        }
        if (Usable(candidate, config.instance, &slot_count)) {
            fd = candidate;
            break;
        }
        const Status created = CreateRegion(
            path, static_cast<std::size_t>(std::max(config.metrics_slots, config.instance)));
        close(candidate);  // also releases the flock; waiters see the new inode
        if (!created.ok()) return created.error();
    }

    const std::size_t bytes = ExpectedHeader(slot_count).total_bytes;
    void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int map_error = errno;
    flock(fd, LOCK_UN);
    if (base == MAP_FAILED) {
        close(fd);
        return SystemError("cannot map", path, map_error);
    }

    // Claim the slot. Its previous owner may still be exiting (its lock goes with it), so wait
    // a little before concluding that another live process uses this instance number.
    const std::size_t slot = static_cast<std::size_t>(config.instance - 1);
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = static_cast<off_t>(kHeaderBytes + slot * GetLayout().slot_bytes);
    lock.l_len = static_cast<off_t>(GetLayout().slot_bytes);
    int attempts = 0;
    while (fcntl(fd, F_OFD_SETLK, &lock) != 0) {
        const int error = errno;
        if ((error != EAGAIN && error != EACCES) || ++attempts == 30) {
            munmap(base, bytes);
            close(fd);
            if (error == EAGAIN || error == EACCES)
                return ApiError{500, "metrics_slot_taken",
                                "metrics slot " + std::to_string(config.instance) + " of " + path +
                                    " is held by another live process: is HASHD_INSTANCE=" +
                                    std::to_string(config.instance) + " running twice?"};
            return SystemError("cannot lock a slot of", path, error);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    auto metrics = std::make_unique<SharedMetrics>(fd, base, bytes, slot_count, slot,
                                                   StoreBackendIndex(config.store));
    metrics->Attach();
    return std::unique_ptr<Metrics>(std::move(metrics));
}

}  // namespace hashd
