#include "store/lmdb_store.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <filesystem>
#include <mutex>
#include <system_error>
#include <utility>

#include "store/store_errors.h"

namespace hashd {
namespace {

// Reader slots in the lock file, shared by all processes: every in-flight GET and Check()
// holds one for its duration. P x HASHD_THREADS stays far below this.
constexpr unsigned kMaxReaders = 1024;
// Free space below which a failed write is put down to a full disk: more than one commit
// writes (a 64 KiB message, the B-tree pages it touches and the meta page).
constexpr unsigned long long kDiskFullBelowBytes = 1 << 20;

MDB_val Val(std::string_view bytes) {
    return MDB_val{bytes.size(), const_cast<char*>(bytes.data())};
}

ApiError OpenError(const std::string& directory, std::string_view what, int rc) {
    return {500, "store_open_failed",
            "Cannot open the LMDB message store in " + directory + " (" + std::string(what) +
                "): " + mdb_strerror(rc)};
}

}  // namespace

// Aborts the transaction unless it was handed to mdb_txn_commit (which frees it either way).
class LmdbStore::Txn {
  public:
    Txn() = default;
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;
    ~Txn() {
        if (txn_) mdb_txn_abort(txn_);
    }
    int Begin(MDB_env* env, unsigned flags) { return mdb_txn_begin(env, nullptr, flags, &txn_); }
    int Commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
    MDB_txn* get() const { return txn_; }

  private:
    MDB_txn* txn_ = nullptr;
};

Result<std::unique_ptr<LmdbStore>> LmdbStore::Open(const std::string& directory,
                                                   std::size_t map_size) {
    std::error_code ec;
    std::filesystem::create_directories(directory, ec);
    if (ec) return OpenError(directory, "creating the directory", ec.value());

    MDB_env* raw = nullptr;
    if (int rc = mdb_env_create(&raw); rc != 0) return OpenError(directory, "create", rc);
    EnvPtr env(raw);
    if (int rc = mdb_env_set_mapsize(env.get(), map_size); rc != 0)
        return OpenError(directory, "map size", rc);
    if (int rc = mdb_env_set_maxreaders(env.get(), kMaxReaders); rc != 0)
        return OpenError(directory, "max readers", rc);
    // The files hold message bodies: readable by hashd's user only.
    if (int rc = mdb_env_open(env.get(), directory.c_str(), MDB_NOTLS, 0600); rc != 0)
        return OpenError(directory, "open", rc);
    int stale = 0;
    mdb_reader_check(env.get(), &stale);

    // The unnamed database always exists, so a read-only transaction can open it (and opening
    // works even when the map is full).
    Txn txn;
    if (int rc = txn.Begin(env.get(), MDB_RDONLY); rc != 0)
        return OpenError(directory, "first transaction", rc);
    MDB_dbi dbi = 0;
    if (int rc = mdb_dbi_open(txn.get(), nullptr, 0, &dbi); rc != 0)
        return OpenError(directory, "database", rc);
    if (int rc = txn.Commit(); rc != 0) return OpenError(directory, "database", rc);
    return std::unique_ptr<LmdbStore>(new LmdbStore(std::move(env), dbi));
}

int LmdbStore::Begin(Txn& txn, unsigned flags, std::shared_lock<std::shared_mutex>& lock) {
    lock = std::shared_lock(resize_);
    int rc = txn.Begin(env_.get(), flags);
    if (rc != MDB_MAP_RESIZED) return rc;
    // Another process grew the map past ours (a larger HASHD_LMDB_MAP_SIZE): adopt its size,
    // which LMDB allows only while this process has no transaction open.
    lock.unlock();
    {
        std::unique_lock exclusive(resize_);
        mdb_env_set_mapsize(env_.get(), 0);
    }
    lock.lock();
    return txn.Begin(env_.get(), flags);
}

bool LmdbStore::DiskFull() const {
    const char* path = nullptr;
    struct statvfs fs {};
    if (mdb_env_get_path(env_.get(), &path) != 0 || statvfs(path, &fs) != 0) return false;
    return static_cast<unsigned long long>(fs.f_bavail) * fs.f_frsize < kDiskFullBelowBytes;
}

ApiError LmdbStore::Failure(int rc) {
    if (rc == MDB_MAP_FULL || rc == ENOSPC) return StoreFull(Backend());
    // A disk that fills up in the middle of a commit gives a short write, which LMDB reports
    // as EIO ("short write, filesystem full?"), not ENOSPC: ask the filesystem. The commit
    // was not applied (the meta page is written last), so nothing is corrupted.
    if (rc == EIO && DiskFull()) return StoreFull(Backend());
    if (rc == MDB_READERS_FULL) {
        int stale = 0;
        mdb_reader_check(env_.get(), &stale);
    }
    return StoreUnavailable(Backend(), 1, std::string("lmdb: ") + mdb_strerror(rc));
}

Status LmdbStore::Put(std::string_view digest, std::string_view message) {
    std::shared_lock<std::shared_mutex> lock;
    Txn txn;  // declared after the lock: aborted before it is released
    if (int rc = Begin(txn, 0, lock); rc != 0) return Failure(rc);
    MDB_val key = Val(digest);
    MDB_val value = Val(message);
    int rc = mdb_put(txn.get(), dbi_, &key, &value, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return Ok{};  // same digest, same bytes: already stored
    if (rc != 0) return Failure(rc);
    if (rc = txn.Commit(); rc != 0) return Failure(rc);
    return Ok{};
}

Result<std::optional<std::string>> LmdbStore::Get(std::string_view digest) {
    std::shared_lock<std::shared_mutex> lock;
    Txn txn;
    if (int rc = Begin(txn, MDB_RDONLY, lock); rc != 0) return Failure(rc);
    MDB_val key = Val(digest);
    MDB_val value{};
    int rc = mdb_get(txn.get(), dbi_, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>{};
    if (rc != 0) return Failure(rc);
    return std::optional<std::string>{
        std::string(static_cast<const char*>(value.mv_data), value.mv_size)};
}

Status LmdbStore::Check() {
    int stale = 0;
    mdb_reader_check(env_.get(), &stale);
    std::shared_lock<std::shared_mutex> lock;
    Txn txn;
    if (int rc = Begin(txn, MDB_RDONLY, lock); rc != 0) return Failure(rc);
    return Ok{};
}

}  // namespace hashd
