#pragma once
// One LMDB environment as hashd uses it, shared by the message store (lmdb_store.h) and the
// MultiVAC queue (lmdb_queue.h), each of which owns one: opened with the same flags and
// permissions, transactions begun the same way, failures mapped to the same API errors.
//
// Map size adoption: all transactions of the process hold `resize` shared; when another
// process has grown the file past this process's map (a larger HASHD_LMDB_MAP_SIZE during a
// rolling restart), Begin adopts the new size under the exclusive lock, which LMDB allows only
// while this process has no transaction open.

#include <lmdb.h>

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"

namespace hashd {

// An LMDB transaction as an RAII value: aborted when it goes out of scope unless it was
// handed to mdb_txn_commit (which frees it whether or not the commit succeeds).
class LmdbTxn {
  public:
    LmdbTxn() = default;
    LmdbTxn(const LmdbTxn&) = delete;
    LmdbTxn& operator=(const LmdbTxn&) = delete;
    ~LmdbTxn() {
        if (txn_) mdb_txn_abort(txn_);
    }
    int Begin(MDB_env* env, unsigned flags) { return mdb_txn_begin(env, nullptr, flags, &txn_); }
    int Commit() { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
    MDB_txn* get() const { return txn_; }

  private:
    MDB_txn* txn_ = nullptr;
};

class LmdbEnv {
  public:
    // Opens (creating it and its directory if absent) the environment in `directory`, whose
    // file may grow to `map_size` bytes and which holds up to `max_dbs` named databases.
    // Files are mode 0600 (they hold client data); MDB_NOTLS ties reader slots to
    // transactions, not threads. Fails (kInternal store_open_failed) with a message naming `what`
    // and the directory.
    static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& directory, std::size_t map_size,
                                                 unsigned max_dbs, std::string_view what);
    ~LmdbEnv() { mdb_env_close(env_); }
    LmdbEnv(const LmdbEnv&) = delete;
    LmdbEnv& operator=(const LmdbEnv&) = delete;

    MDB_env* get() const { return env_; }

    // Begins `txn` while holding `lock` (shared), adopting a map grown by another process.
    // Returns LMDB's code.
    int Begin(LmdbTxn& txn, unsigned flags, std::shared_lock<std::shared_mutex>& lock);

    // The error for LMDB code `rc`: kFull store_full for a full map or disk, else kUnavailable
    // store_unavailable (clearing the slots of dead readers when they ran out).
    Error Failure(int rc);

    // kInternal store_open_failed naming `what`, the directory and LMDB's reason.
    Error OpenError(std::string_view step, int rc) const;

    // Clears the reader slots of processes that died mid-read.
    void ClearStaleReaders();

    // True when the filesystem holding the environment has (almost) no space left.
    bool DiskFull() const;

  private:
    LmdbEnv(MDB_env* env, std::string directory, std::string what)
        : env_(env), directory_(std::move(directory)), what_(std::move(what)) {}

    MDB_env* env_;
    std::string directory_, what_;
    std::shared_mutex resize_;
};

}  // namespace hashd
