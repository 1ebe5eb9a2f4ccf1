// The shared region of the pool's metrics.
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
// own slot; a scrape sums the slots. Giving each process its own slot means:
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
// Creation, concurrent start, upgrades. P processes start at once. Each opens the file
// (O_CREAT) and takes flock(LOCK_EX) while it checks the header: magic, version, slot size,
// slot count and the layout's fingerprint (every label table and bucket boundary). If the
// header does not match (new file, or a new binary whose layout differs), the process builds a
// complete new region in a temporary file and rename()s it over the old one; it never
// truncates a file that others may have mapped (they would get SIGBUS). A process that was
// waiting for the lock then notices that the path now names another inode and starts over
// with the new file. An upgrade therefore starts counting from zero (Prometheus sees one
// counter reset per series, which rate() handles); processes of the old binary keep writing
// to the old, unlinked file until they are restarted too, which a package upgrade does (while
// both kinds run, a scrape answered by an old process shows the old region: a few seconds of
// counters jumping between the two, again only resets to Prometheus). An upgrade that keeps
// the layout keeps the region and its counts.

#include "metrics/region.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>

namespace hashd::metrics {
namespace {

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
              "metrics counters live in memory shared by processes: they must be lock-free");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

constexpr std::uint64_t kMagic = 0x314d54454d444853;  // "SHDMETM1" little-endian
constexpr std::uint64_t kRegionVersion = 1;
// More than HASHD_METRICS_SLOTS may ever be (4096): a bound on what a header may claim.
constexpr std::uint64_t kMaxSlots = 1 << 16;

Error SystemError(const std::string& what, const std::string& path, int error) {
    return {ErrorKind::kInternal, "metrics_unavailable",
            what + " " + path + ": " + std::strerror(error)};
}

// Writes a complete, zeroed region to a temporary file and renames it over `path`. The
// caller holds the flock of the file that `path` named, so one process at a time does this.
Status CreateRegion(const Layout& layout, const std::string& path, std::size_t slot_count) {
    const std::string temp = path + ".new." + std::to_string(getpid());
    const int fd = open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return SystemError("cannot create", temp, errno);
    const RegionHeader header = ExpectedHeader(layout, slot_count);
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
bool Usable(const Layout& layout, int fd, int instance, std::size_t* slot_count) {
    RegionHeader header{};
    struct stat st {};
    if (fstat(fd, &st) != 0 || pread(fd, &header, sizeof(header), 0) != sizeof(header))
        return false;
    if (!HeaderUsable(layout, header, static_cast<std::uint64_t>(st.st_size), instance))
        return false;
    *slot_count = header.slot_count;
    return true;
}

bool SameFile(int fd, const std::string& path) {
    struct stat a {
    }, b{};
    return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

struct flock SlotLock(std::size_t slot_bytes, std::size_t slot, short type) {
    struct flock lock {};
    lock.l_type = type;
    lock.l_whence = SEEK_SET;
    lock.l_start = static_cast<off_t>(kHeaderBytes + slot * slot_bytes);
    lock.l_len = static_cast<off_t>(slot_bytes);
    return lock;
}

}  // namespace

RegionHeader ExpectedHeader(const Layout& l, std::size_t slot_count) {
    return {kMagic,     kRegionVersion, l.fingerprint,
            slot_count, l.slot_bytes,   kHeaderBytes + slot_count * l.slot_bytes};
}

bool HeaderUsable(const Layout& layout, const RegionHeader& header, std::uint64_t file_size,
                  int instance) {
    // Another process (or a stale file) wrote this header: every size in it is checked, with
    // overflow in mind, before it decides how much is mapped and how many slots are read.
    if (header.magic != kMagic || header.version != kRegionVersion ||
        header.fingerprint != layout.fingerprint || header.slot_bytes != layout.slot_bytes)
        return false;
    if (instance < 1 || header.slot_count < static_cast<std::uint64_t>(instance) ||
        header.slot_count > kMaxSlots)
        return false;
    std::uint64_t slots_bytes = 0, total = 0;
    if (__builtin_mul_overflow(header.slot_count, header.slot_bytes, &slots_bytes) ||
        __builtin_add_overflow(slots_bytes, std::uint64_t{kHeaderBytes}, &total))
        return false;
    return header.total_bytes == total && file_size >= total &&
           total <= std::numeric_limits<std::size_t>::max();
}

Region::Region(int fd, void* base, std::size_t bytes, std::size_t slot_count,
               std::size_t slot_bytes, std::size_t own)
    : fd_(fd),
      base_(static_cast<unsigned char*>(base)),
      bytes_(bytes),
      slot_count_(slot_count),
      slot_bytes_(slot_bytes),
      own_(own) {}

Region::~Region() {
    munmap(base_, bytes_);
    close(fd_);  // releases the slot's lock
}

bool Region::Live(std::size_t slot) const {
    if (slot == own_) return true;
    if (Word(slot, kPid).load() == 0) return false;
    struct flock lock = SlotLock(slot_bytes_, slot, F_WRLCK);
    if (fcntl(fd_, F_OFD_GETLK, &lock) != 0) return false;
    return lock.l_type != F_UNLCK;
}

Result<std::unique_ptr<Region>> Region::Open(const Layout& layout, const std::string& path,
                                             int instance, int slots) {
    // Open a usable region; at most a few rounds, as each round either succeeds or replaces
    // the file (a concurrent starter may replace it once more under us).
    int fd = -1;
    std::size_t slot_count = 0;
    for (int round = 0; fd < 0; ++round) {
        if (round == 8)
            return Error{ErrorKind::kInternal, "metrics_unavailable", "cannot settle on " + path};
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
        if (Usable(layout, candidate, instance, &slot_count)) {
            fd = candidate;
            break;
        }
        const Status created =
            CreateRegion(layout, path, static_cast<std::size_t>(std::max(slots, instance)));
        close(candidate);  // also releases the flock; waiters see the new inode
        if (!created.ok()) return created.error();
    }

    const std::size_t bytes = ExpectedHeader(layout, slot_count).total_bytes;
    void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int map_error = errno;
    flock(fd, LOCK_UN);
    if (base == MAP_FAILED) {
        close(fd);
        return SystemError("cannot map", path, map_error);
    }

    // Claim the slot. Its previous owner may still be exiting (its lock goes with it), so wait
    // a little before concluding that another live process uses this instance number.
    const std::size_t slot = static_cast<std::size_t>(instance - 1);
    struct flock lock = SlotLock(layout.slot_bytes, slot, F_WRLCK);
    int attempts = 0;
    while (fcntl(fd, F_OFD_SETLK, &lock) != 0) {
        const int error = errno;
        if ((error != EAGAIN && error != EACCES) || ++attempts == 30) {
            munmap(base, bytes);
            close(fd);
            if (error == EAGAIN || error == EACCES)
                return Error{ErrorKind::kInternal, "metrics_slot_taken",
                             "metrics slot " + std::to_string(instance) + " of " + path +
                                 " is held by another live process: is HASHD_INSTANCE=" +
                                 std::to_string(instance) + " running twice?"};
            return SystemError("cannot lock a slot of", path, error);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::unique_ptr<Region>(
        new Region(fd, base, bytes, slot_count, layout.slot_bytes, slot));
}

}  // namespace hashd::metrics
