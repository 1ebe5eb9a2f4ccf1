#pragma once
// What every fuzz target shares: a fatal check that libFuzzer reports as a crash (with the
// input saved as an artifact), and the handler harness at bcrypt's cheapest cost.

#include <cstdio>
#include <cstdlib>

// Aborts with `what` when `condition` is false: the fuzzer records the input that did it.
#define FUZZ_CHECK(condition, what)                                                            \
    do {                                                                                       \
        if (!(condition)) {                                                                    \
            std::fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, __FILE__, __LINE__); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)
