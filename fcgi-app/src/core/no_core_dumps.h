#pragma once
// Both binaries hold plaintext passwords in memory (a request's body, a hash job's key): a
// core dump of either would write them to disk (systemd-coredump keeps them in
// /var/lib/systemd/coredump for days). So each process makes itself undumpable at start:
// RLIMIT_CORE 0 (no core file, also for the kernel's pipe to systemd-coredump, which honours
// the limit since systemd 247) and PR_SET_DUMPABLE 0 (no core at all, and no ptrace or
// /proc/<pid>/mem of the process by another process of the same user, such as a
// compromised nginx or a neighbour service). The unit's LimitCORE=0 says the same from outside.

#include "core/result.h"

namespace hashd {

// Sets RLIMIT_CORE to 0 (soft and hard) and PR_SET_DUMPABLE to 0 for the calling process.
// Call before any thread starts (the limit is per process either way). Fails (500
// "core_dumps") naming the call that failed; the caller should refuse to start.
Status DisableCoreDumps();

}  // namespace hashd
