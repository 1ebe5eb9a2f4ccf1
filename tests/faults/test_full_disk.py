"""A real full disk under the LMDB store.

The LMDB directory lives on a small tmpfs (`mount -t tmpfs -o size=...`) that the test
mounts and unmounts itself; a filler file takes most of it. The map (HASHD_LMDB_MAP_SIZE)
is far larger than the filesystem, so what runs out is the disk, not the map: LMDB's
pwrite of new pages fails with ENOSPC. What must hold (docs/persistence.md "When
the store is down or full"): POST /messages answers 507 store_full, nothing is corrupted
(`mdb_stat` reads the environment and counts exactly the acknowledged messages, each of
which reads back intact), reads keep working, and writes resume, without a restart, once
the filler is deleted and the space is back.

tmpfs rather than a loop-mounted ext4 image: the same ENOSPC from the same write path,
with no loop device to allocate (containers often have none) and nothing left on disk.
tmpfs ignores fdatasync, which does not matter here: this test is about space, and the
flush order is proven in test_durability_order.py.
"""

import json
import os
import pathlib
import subprocess
import tempfile

import pytest

from load import digest_of

FS_SIZE = "8m"
FILLER_BYTES = 5 * 1024 * 1024
MESSAGE_BYTES = 60 * 1024  # near the 64 KiB limit: the disk fills in a few dozen writes
MAX_WRITES = 400           # bounds the fill loop whatever the filesystem's size


@pytest.fixture
def small_fs():
    """A tmpfs of FS_SIZE mounted on a fresh directory; unmounted at the end."""
    if os.geteuid() != 0:
        pytest.fail("the full-disk test mounts a tmpfs: run it as root (make test does)")
    mountpoint = pathlib.Path(tempfile.mkdtemp(prefix="hashd-fulldisk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE},mode=0755", "hashd-fulldisk",
                    str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False)
        mountpoint.rmdir()


def post_message(stack, message):
    return stack.post("/messages", data=json.dumps({"message": message}),
                      headers={"Content-Type": "application/json"}, timeout=60)


def mdb_stat(path):
    """mdb_stat's report of the environment (fails the test if it cannot read it)."""
    result = subprocess.run(["mdb_stat", "-e", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.returncode == 0, f"mdb_stat cannot read the environment:\n{result.stdout}"
    return result.stdout


def entries(report):
    for line in report.splitlines():
        if line.strip().startswith("Entries:"):
            return int(line.split()[-1])
    raise AssertionError(f"no Entries in mdb_stat's report:\n{report}")


def test_full_disk_under_lmdb_answers_507_corrupts_nothing_and_recovers(small_fs, make_stack,
                                                                        counts):
    store_dir = small_fs / "messages"
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * FILLER_BYTES)
    stack = make_stack(processes=2, app_env={"HASHD_STORE": f"lmdb:{store_dir}",
                                             "HASHD_LMDB_MAP_SIZE": str(256 * 1024 * 1024)})

    acknowledged, statuses = {}, []
    for i in range(MAX_WRITES):
        message = f"{i:06d} " + "x" * MESSAGE_BYTES
        r = post_message(stack, message)
        statuses.append(r.status_code)
        if r.status_code == 201:
            acknowledged[r.json()["digest"]] = message
        elif r.status_code == 507:
            break
        else:
            pytest.fail(f"write {i} answered {r.status_code} while filling the disk: {r.text}")
    counts.add("fs_size", FS_SIZE)
    counts.add("sent", len(statuses))
    counts.add("acknowledged_before_full", len(acknowledged))
    assert statuses[-1] == 507, f"the disk never filled in {MAX_WRITES} writes"
    assert acknowledged, "the disk was full before the first write: the test proves nothing"

    # Another message of the same size: it needs the very space that was missing.
    full = post_message(stack, "still full " + "y" * MESSAGE_BYTES)
    assert full.status_code == 507, full.text
    body = full.json()
    assert body["error"] == "store_full" and body["request_id"] == full.headers["X-Request-Id"]
    rejected = sum(1 for s in statuses if s == 507) + 1
    counts.add("answered_507", rejected)

    # Nothing corrupted: LMDB's own reader sees exactly the acknowledged messages, and every
    # one of them reads back byte for byte, while the disk is still full.
    stored = entries(mdb_stat(store_dir))
    counts.add("mdb_stat_entries", stored)
    assert stored == len(acknowledged)
    lost = [d for d, m in acknowledged.items()
            if (r := stack.get(f"/messages/{d}")).status_code != 200 or r.json() != {"message": m}]
    counts.add("lost", len(lost))
    assert not lost, f"{len(lost)} acknowledged messages unreadable on the full disk"

    # Space comes back: the very next writes succeed, with no restart.
    filler.unlink()
    resumed = {}
    for i in range(5):
        message = f"after the space came back {i} " + "z" * MESSAGE_BYTES
        r = post_message(stack, message)
        assert r.status_code == 201, f"write after freeing space: {r.status_code} {r.text}"
        resumed[r.json()["digest"]] = message
    assert entries(mdb_stat(store_dir)) == len(acknowledged) + len(resumed)
    for d, m in {**acknowledged, **resumed}.items():
        r = stack.get(f"/messages/{d}")
        assert r.status_code == 200 and r.json() == {"message": m}
    counts.add("written_after_space_returned", len(resumed))
    assert digest_of(message) in resumed
    stack.assert_not_logged("x" * 64, "z" * 64)
