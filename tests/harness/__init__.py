"""hashd's test harness: what the suites on the real local stack share.

    hashd_stack     Stack: scripts/run-local (nginx, spawn-fcgi, hashd-fcgi, hashd-worker) on
                    free loopback ports, its requests, logs and processes
    store_servers   real Redis and PostgreSQL servers (and LMDB directories) on loopback
    fastcgi_client  a FastCGI client speaking to an app socket directly, past nginx
    fixtures        the pytest fixtures built on them (stack, make_stack, store, network_store)

pyproject.toml puts tests/ on pytest's path, so a suite imports `harness.hashd_stack`; the
benchmarks (bench/) put tests/ on theirs.
"""
