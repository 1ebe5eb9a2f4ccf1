"""Lint gates on what is deployed, each the tool's own verdict:
  - ansible-lint --profile production on ansible/ (the roles, playbooks, inventories);
  - lintian on the .deb (`make deb` first): no error or warning beyond the overrides the
    package ships, each with its reason (packaging/debian/lintian-overrides);
  - one version everywhere: CHANGELOG.md's newest entry, the .deb, both binaries' --version
    and their man pages (hashd_build_info is checked against --version in
    tests/integration/test_metrics.py);
  - the units' Documentation= name what the package (or a dependency) installs, and a
    configuration error exits 2, which the units do not restart;
  - systemd-analyze security --offline on the units the package ships, under a threshold;
  - the .deb's /etc/default/hashd is never world-readable (it may hold the store password).
"""

import glob
import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("HASHD_BUILD_DIR", REPO / "build"))

# Exposure x 10 (systemd-analyze's --threshold unit) each unit must stay at or under. The
# workers (hashd@, hashd-worker) score 1.1 today ("OK"); 2.0 leaves room for a needed relaxation, not for losing a
# sandbox directive (ProtectSystem=strict alone is worth more than 0.9).
UNIT_THRESHOLDS = {"systemd/hashd@.service": 20, "systemd/hashd-worker.service": 20}
# nginx with the role's drop-in scores 2.8: its master keeps root, the network and a few
# capabilities by necessity (ansible/roles/nginx/files/hashd-hardening.conf).
NGINX_THRESHOLD = 35


def run(cmd, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600, **kwargs)


def the_deb():
    debs = sorted(glob.glob(str(BUILD / "hashd_*.deb")), key=os.path.getmtime)
    assert debs, f"no hashd_*.deb in {BUILD}: run `make deb`"
    return debs[-1]


def test_ansible_lint_production_profile_is_clean():
    result = run(["ansible-lint", "--profile", "production", "--nocolor"], cwd=REPO / "ansible")
    assert result.returncode == 0, result.stdout[-5000:]


def test_lintian_finds_no_error_or_warning():
    result = run(["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", the_deb()])
    assert result.returncode == 0, result.stdout
    assert not re.search(r"^[EW]: ", result.stdout, re.M), result.stdout


def test_lintian_overrides_each_carry_a_reason():
    overrides = run(["sh", "-c", f"dpkg-deb --fsys-tarfile {the_deb()} | "
                     "tar -xO ./usr/share/lintian/overrides/hashd"])
    assert overrides.returncode == 0, overrides.stdout
    # Every override sits under a comment (one comment may explain a group of them).
    reason = False
    for line in overrides.stdout.splitlines():
        if line.startswith("#"):
            reason = True
        elif line.startswith("hashd:"):
            assert reason, f"override without a reason: {line}"
        else:
            reason = False


@pytest.mark.parametrize("unit,threshold", sorted(UNIT_THRESHOLDS.items()))
def test_systemd_analyze_security_exposure_is_under_the_threshold(unit, threshold):
    result = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={threshold}",
                  "--no-pager", str(REPO / unit)])
    assert result.returncode == 0, result.stdout[-3000:]
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert score and float(score.group(1)) * 10 <= threshold, result.stdout[-500:]


def test_nginx_service_with_the_role_s_sandbox_is_under_the_threshold(tmp_path):
    """Debian's nginx.service (9.6 "UNSAFE" stock) with the nginx role's drop-in, merged the
    way systemd merges a [Service] drop-in."""
    stock = pathlib.Path("/lib/systemd/system/nginx.service").read_text()
    drop_in = (REPO / "ansible/roles/nginx/files/hashd-hardening.conf").read_text()
    unit = tmp_path / "nginx.service"
    unit.write_text(stock.replace("[Install]", drop_in.split("[Service]\n", 1)[1] + "\n[Install]"))
    result = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={NGINX_THRESHOLD}",
                  "--no-pager", str(unit)])
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_package_ships_its_settings_file_root_only():
    """/etc/default/hashd may hold the store's password: root only (systemd reads it as root
    before dropping to User=hashd), so neither nginx's user nor group hashd can read it."""
    listing = run(["dpkg-deb", "--contents", the_deb()])
    assert listing.returncode == 0
    line = next(entry for entry in listing.stdout.splitlines() if entry.endswith("./etc/default/hashd"))
    assert line.startswith("-rw------- "), line
    postinst = run(["sh", "-c", f"dpkg-deb --ctrl-tarfile {the_deb()} | tar -xO ./postinst"])
    assert "chown root:root /etc/default/hashd" in postinst.stdout
    assert "chmod 0600 /etc/default/hashd" in postinst.stdout
    # An upgrade takes nginx's user out of group hashd (older packages put it there).
    assert "gpasswd -d www-data hashd" in postinst.stdout


def changelog_version():
    match = re.search(r"^## \[([0-9]+\.[0-9]+\.[0-9]+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert match, "CHANGELOG.md has no `## [X.Y.Z] - date` entry"
    return match.group(1)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("deb")
    result = run(["dpkg-deb", "-x", the_deb(), str(root)])
    assert result.returncode == 0, result.stdout
    return root


def test_one_version_in_the_changelog_the_package_the_binaries_and_the_man_pages(unpacked):
    version = changelog_version()
    package = run(["dpkg-deb", "-f", the_deb(), "Version"])
    assert package.stdout.strip() == version, (package.stdout, version)
    for binary in ("hashd-fcgi", "hashd-worker"):
        printed = run([str(unpacked / "usr/bin" / binary), "--version"])
        assert printed.returncode == 0, printed.stdout
        assert re.fullmatch(rf"{binary} {re.escape(version)} \((?:[0-9a-f]+|unknown)\)\n",
                            printed.stdout), printed.stdout
        page = run(["zcat", str(unpacked / "usr/share/man/man1" / f"{binary}.1.gz")])
        title = next(entry for entry in page.stdout.splitlines() if entry.startswith(".TH "))
        assert f"{binary} {version}" in title, title


def test_man_pages_document_the_exit_status(unpacked):
    for binary in ("hashd-fcgi", "hashd-worker"):
        page = run(["man", "-l", "-P", "cat", str(unpacked / "usr/share/man/man1" / f"{binary}.1.gz")],
                   env={**os.environ, "MANWIDTH": "100", "LC_ALL": "C.UTF-8"})
        assert page.returncode == 0, page.stdout
        section = " ".join(page.stdout.split("EXIT STATUS", 1)[1].split("FILES", 1)[0].split())
        assert "configuration error" in section and "RestartPreventExitStatus=2" in section, section
        # help2man took the settings from --help: the page lists them.
        assert "HASHD_STORE" in page.stdout


def test_units_document_themselves_with_what_the_package_installs(unpacked):
    units = sorted((unpacked / "lib/systemd/system").glob("hashd*"))
    assert len(units) == 3, units
    for unit in units:
        docs = [d for line in unit.read_text().splitlines() if line.startswith("Documentation=")
                for d in line.split("=", 1)[1].split()]
        assert docs, f"{unit.name} has no Documentation="
        for doc in docs:
            if doc.startswith("man:"):
                name, section = re.fullmatch(r"man:([\w.-]+)\((\d)\)", doc).groups()
                ours = unpacked / f"usr/share/man/man{section}/{name}.{section}.gz"
                # Or a page of a package hashd depends on (spawn-fcgi(1)).
                theirs = pathlib.Path(f"/usr/share/man/man{section}/{name}.{section}.gz")
                assert ours.exists() or theirs.exists(), f"{unit.name}: {doc} is installed by nobody"
            else:
                assert doc.startswith("file:///"), doc
                assert (unpacked / doc[len("file:///"):]).exists(), f"{unit.name}: {doc} not in the package"


@pytest.mark.parametrize("binary", ["hashd-fcgi", "hashd-worker"])
def test_a_configuration_error_exits_2_and_the_unit_does_not_restart_it(unpacked, binary):
    bad_flag = run([str(unpacked / "usr/bin" / binary), "--no-such-setting=1"])
    assert bad_flag.returncode == 2, bad_flag.stdout
    bad_value = run([str(unpacked / "usr/bin" / binary)], env={**os.environ, "HASHD_COST_DEFAULT": "99"})
    assert bad_value.returncode == 2, bad_value.stdout
    assert "HASHD_COST_DEFAULT" in bad_value.stdout
    unit = "hashd@.service" if binary == "hashd-fcgi" else "hashd-worker.service"
    text = (unpacked / "lib/systemd/system" / unit).read_text()
    assert re.search(r"^RestartPreventExitStatus=2$", text, re.M), unit


def test_nginx_s_user_joins_the_socket_group_only():
    """www-data reaches the sockets through group hashd-sock (the setgid /run/hashd), never
    through group hashd, which owns the store and the settings."""
    sysusers = (REPO / "systemd/sysusers.d/hashd.conf").read_text()
    members = re.findall(r"^m\s+(\S+)\s+(\S+)", sysusers, flags=re.M)
    assert ("www-data", "hashd-sock") in members, members
    assert ("www-data", "hashd") not in members, members
    tmpfiles = (REPO / "systemd/tmpfiles.d/hashd.conf").read_text()
    assert re.search(r"^d /run/hashd 2750 hashd hashd-sock ", tmpfiles, flags=re.M), tmpfiles


@pytest.mark.parametrize("unit", sorted(UNIT_THRESHOLDS))
def test_units_forbid_core_dumps(unit):
    """Processes with plaintext passwords in memory never dump core : the hard
    limit is 0, which the process cannot raise again."""
    text = (REPO / unit).read_text()
    assert re.search(r"^LimitCORE=0$", text, flags=re.M), unit
