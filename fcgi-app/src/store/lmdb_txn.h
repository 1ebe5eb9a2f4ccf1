#pragma once
// An LMDB transaction as an RAII value: aborted when it goes out of scope unless it was
// handed to mdb_txn_commit (which frees it whether or not the commit succeeds). Shared by the
// message store and the MultiVAC queue.

#include <lmdb.h>

#include <utility>

namespace hashd {

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

}  // namespace hashd
