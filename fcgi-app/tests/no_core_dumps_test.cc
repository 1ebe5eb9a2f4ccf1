#include "core/no_core_dumps.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace hashd {
namespace {

// In a child process: the test runner itself stays dumpable (sanitizers' leak check stops the
// world with ptrace-like means and must not be affected).
TEST(NoCoreDumps, MakesTheProcessUndumpableWithNoCoreLimit) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int code = 0;
        if (!DisableCoreDumps().ok()) code |= 1;
        if (prctl(PR_GET_DUMPABLE) != 0) code |= 2;
        rlimit core{};
        if (getrlimit(RLIMIT_CORE, &core) != 0 || core.rlim_cur != 0 || core.rlim_max != 0)
            code |= 4;
        _exit(code);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "bit 1: failed, 2: still dumpable, 4: core limit not 0";
}

}  // namespace
}  // namespace hashd
