#include "core/no_core_dumps.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hashd {
namespace {

Error Failed(const char* call) {
    return {ErrorKind::kInternal, "core_dumps",
            std::string(call) + " failed: " + std::strerror(errno)};
}

}  // namespace

Status DisableCoreDumps() {
    const rlimit none{0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0) return Failed("setrlimit(RLIMIT_CORE, 0)");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Failed("prctl(PR_SET_DUMPABLE, 0)");
    return Ok{};
}

}  // namespace hashd
