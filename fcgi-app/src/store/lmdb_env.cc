#include "store/lmdb_env.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <system_error>

#include "store/store_errors.h"

namespace hashd {
namespace {

// Reader slots in the lock file, shared by all processes: every in-flight read holds one for
// its duration. P x HASHD_THREADS (+ the worker) stays far below this.
constexpr unsigned kMaxReaders = 1024;
// Free space below which a failed write is put down to a full disk: more than one commit
// writes (a 64 KiB message, the B-tree pages it touches and the meta page).
constexpr unsigned long long kDiskFullBelowBytes = 1 << 20;

Error OpenFailed(std::string_view what, const std::string& directory, std::string_view step,
                 const char* reason) {
    return {ErrorKind::kInternal, "store_open_failed",
            "Cannot open the LMDB " + std::string(what) + " in " + directory + " (" +
                std::string(step) + "): " + reason};
}

}  // namespace

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& directory, std::size_t map_size,
                                               unsigned max_dbs, std::string_view what) {
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) return OpenFailed(what, directory, "creating the directory", ec.message().c_str());
    MDB_env* raw = nullptr;
    if (int rc = mdb_env_create(&raw); rc != 0)
        return OpenFailed(what, directory, "create", mdb_strerror(rc));
    std::unique_ptr<LmdbEnv> env(new LmdbEnv(raw, directory, std::string(what)));
    if (int rc = mdb_env_set_mapsize(raw, map_size); rc != 0) return env->OpenError("map size", rc);
    if (int rc = mdb_env_set_maxreaders(raw, kMaxReaders); rc != 0)
        return env->OpenError("max readers", rc);
    if (max_dbs > 0) {
        if (int rc = mdb_env_set_maxdbs(raw, max_dbs); rc != 0)
            return env->OpenError("max databases", rc);
    }
    if (int rc = mdb_env_open(raw, directory.c_str(), MDB_NOTLS, 0600); rc != 0)
        return env->OpenError("open", rc);
    env->ClearStaleReaders();
    return env;
}

int LmdbEnv::Begin(LmdbTxn& txn, unsigned flags, std::shared_lock<std::shared_mutex>& lock) {
    lock = std::shared_lock(resize_);
    int rc = txn.Begin(env_, flags);
    if (rc != MDB_MAP_RESIZED) return rc;
    lock.unlock();
    {
        std::unique_lock exclusive(resize_);
        mdb_env_set_mapsize(env_, 0);
    }
    lock.lock();
    return txn.Begin(env_, flags);
}

bool LmdbEnv::DiskFull() const {
    struct statvfs fs {};
    if (statvfs(directory_.c_str(), &fs) != 0) return false;
    return static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize < kDiskFullBelowBytes;
}

Error LmdbEnv::Failure(int rc) {
    if (rc == MDB_MAP_FULL || rc == ENOSPC) return StoreFull("lmdb");
    // A disk that fills up in the middle of a commit gives a short write, which LMDB reports
    // as EIO ("short write, filesystem full?"), not ENOSPC: ask the filesystem. The commit
    // was not applied (the meta page is written last), so nothing is corrupted.
    if (rc == EIO && DiskFull()) return StoreFull("lmdb");
    if (rc == MDB_READERS_FULL) ClearStaleReaders();
    return StoreUnavailable("lmdb", 1, "lmdb " + what_ + ": " + mdb_strerror(rc));
}

Error LmdbEnv::OpenError(std::string_view step, int rc) const {
    return OpenFailed(what_, directory_, step, mdb_strerror(rc));
}

void LmdbEnv::ClearStaleReaders() {
    int stale = 0;
    mdb_reader_check(env_, &stale);
}

}  // namespace hashd
