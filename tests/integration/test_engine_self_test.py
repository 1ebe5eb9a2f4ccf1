"""The interleaved engine's start-up self-test, at the process level: when the engine and
libxcrypt disagree, hashd-fcgi logs why and exits 2 before it serves anything (and systemd's
RestartPreventExitStatus=2 keeps it down); HASHD_BCRYPT_ENGINE=libxcrypt runs without the
engine and so without the test.

The disagreement is made real without a test hook in the binary: a preloaded library wraps
libxcrypt's crypt_rn and flips one character of every bcrypt it returns, so libxcrypt's side
of the comparison is wrong, exactly as a broken engine would make the engine's side."""

import subprocess
import textwrap

from harness.hashd_stack import fcgi_bin

SHIM = textwrap.dedent("""\
    #define _GNU_SOURCE
    #include <dlfcn.h>
    #include <string.h>
    char *crypt_rn(const char *phrase, const char *setting, void *data, int size) {
        char *(*real)(const char *, const char *, void *, int) =
            (char *(*)(const char *, const char *, void *, int))dlsym(RTLD_NEXT, "crypt_rn");
        char *out = real(phrase, setting, data, size);
        size_t n = out ? strlen(out) : 0;
        if (n > 29 && out[1] == '2') out[n - 1] = out[n - 1] == 'a' ? 'b' : 'a';
        return out;
    }
    """)


def build_shim(tmp_path):
    source = tmp_path / "flip_crypt.c"
    source.write_text(SHIM)
    shim = tmp_path / "flip_crypt.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(source), "-ldl"], check=True)
    return shim


def start(env):
    # stdin is not a listening socket: a process that passes every start-up check then exits 2
    # saying so, which tells "refused by the self-test" from "got past it".
    # (The ASan build insists its runtime comes first; the shim is not instrumented.)
    env = {"PATH": "/usr/bin:/bin", "HASHD_LOG": "stderr",
           "ASAN_OPTIONS": "verify_asan_link_order=0", **env}
    return subprocess.run([str(fcgi_bin())], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_a_disagreeing_engine_refuses_to_start(tmp_path):
    shim = build_shim(tmp_path)
    refused = start({"LD_PRELOAD": str(shim), "HASHD_BCRYPT_ENGINE": "interleaved"})
    assert refused.returncode == 2, refused.stderr
    assert "bcrypt engine self-test failed: refusing to start" in refused.stderr
    assert "not a listening socket" not in refused.stderr


def test_the_same_process_starts_without_the_shim_or_the_engine(tmp_path):
    shim = build_shim(tmp_path)
    for env in ({"HASHD_BCRYPT_ENGINE": "interleaved"},
                {"LD_PRELOAD": str(shim), "HASHD_BCRYPT_ENGINE": "libxcrypt"}):
        passed = start(env)
        assert passed.returncode == 2, passed.stderr
        assert "self-test failed" not in passed.stderr, env
        assert "not a listening socket" in passed.stderr, env
