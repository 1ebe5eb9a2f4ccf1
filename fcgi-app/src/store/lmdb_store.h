#pragma once
// The embedded message store: one LMDB environment (a directory holding data.mdb and lock.mdb)
// on the VM's disk, shared by every hashd-fcgi process of the VM. The default backend.
//
// Durability: commits use LMDB's default sync mode (no MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC
// or MDB_WRITEMAP): mdb_txn_commit writes the data pages, fdatasync()s them, then writes and
// fdatasync()s the meta page. Put() returns only after that, so a 201 means the message is on
// disk: it survives kill -9 of any process and power loss of the VM (given a disk that honours
// flushes). The price is two flushes per new message; writes are not batched.
//
// Concurrency: each process opens the environment once (LMDB forbids two MDB_envs on one file
// in a process). Readers never block and are never blocked. Writers (any thread of any
// process) serialize on LMDB's write lock, a robust process-shared mutex: a process killed
// while holding it does not wedge the others. MDB_NOTLS ties reader slots to transactions,
// not threads, so long-lived FastCGI worker threads need no per-thread teardown; Check()
// clears the reader slots of processes that died mid-read (mdb_reader_check).
//
// Space: the file grows up to the map size (HASHD_LMDB_MAP_SIZE) and no further. When full,
// Put() fails with kFull store_full (a 507) and reads keep working; the operator raises the map
// size and restarts the processes. During such a rolling restart a process with the old, smaller
// map sees another one grow the file (MDB_MAP_RESIZED) and adopts the new size: all transactions of
// the process hold a shared lock that the adoption takes exclusively, as LMDB requires.

#include <lmdb.h>

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>

#include "store/lmdb_env.h"
#include "store/lmdb_queue.h"
#include "store/message_store.h"

namespace hashd {

class LmdbStore final : public MessageStore {
  public:
    // Opens (creating if absent, with its directory) the environment in `directory`, whose
    // file may grow to `map_size` bytes. Fails with a message naming the directory.
    static Result<std::unique_ptr<LmdbStore>> Open(const std::string& directory,
                                                   std::size_t map_size);

    std::string_view Backend() const override { return "lmdb"; }
    bool ReadsAreLocal() const override { return true; }
    Status Put(std::string_view digest, std::string_view message) override;
    Result<std::optional<std::string>> Get(std::string_view digest) override;
    Status Check() override;
    DataQueue& Queue() override { return *queue_; }

  private:
    LmdbStore(std::unique_ptr<LmdbEnv> env, MDB_dbi dbi, std::unique_ptr<LmdbQueue> queue)
        : env_(std::move(env)), dbi_(dbi), queue_(std::move(queue)) {}

    std::unique_ptr<LmdbEnv> env_;
    MDB_dbi dbi_;
    std::unique_ptr<LmdbQueue> queue_;  // in <directory>/multivac, see lmdb_queue.h
};

}  // namespace hashd
