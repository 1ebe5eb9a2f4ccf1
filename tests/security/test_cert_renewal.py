"""Certificates do not expire silently (issue 21, finding 10).

- A rerun of the roles renews a self-signed certificate before it expires: the nginx role's
  (every VM's, ansible/roles/nginx/tasks/selfsigned.yml) and the LB role's
  (ansible/roles/lb/tasks/tls.yml), when fewer than their renewal days are left, and leaves a
  certificate with more left alone (a second run changes nothing). The role's own task files
  run for real with ansible-playbook on this machine (connection local), on files in a
  temporary directory; only nginx's and HAProxy's reloads are stand-ins (the handlers).
- Every certificate's expiry reaches Prometheus: hashd-cert-expiry (the observability role's
  textfile writer) turns each certificate into
  hashd_tls_certificate_expiry_timestamp_seconds, which HashdCertificateExpiring alerts on
  (promtool's unit test in tests/monitoring).
"""

import datetime
import os
import pathlib
import subprocess
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPIRY_SCRIPT = REPO / "ansible/roles/observability/files/hashd-cert-expiry"


def run(cmd, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, **kwargs)


def not_after(cert):
    out = run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert)])
    assert out.returncode == 0, out.stdout
    value = out.stdout.strip().split("=", 1)[1]
    return datetime.datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)


def days_left(cert):
    return (not_after(cert) - datetime.datetime.now(datetime.timezone.utc)).days


def reissue(cert, key, days, san):
    """Replaces cert with one for the same key and SANs that expires in `days` days, as an
    old certificate issued by an earlier run would."""
    out = run(["openssl", "req", "-x509", "-new", "-key", str(key), "-days", str(days),
               "-subj", "/CN=localhost", "-addext", f"subjectAltName={san}", "-out", str(cert)])
    assert out.returncode == 0, out.stdout


def playbook(tmp_path, name, tasks_file, variables, handler):
    book = tmp_path / f"{name}.yml"
    book.write_text(textwrap.dedent(f"""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars: {variables!r}
          tasks:
            - ansible.builtin.include_tasks: {tasks_file}
          handlers:
            - name: {handler}
              ansible.builtin.debug:
                msg: reloaded
        """))
    return book


def play(book):
    out = run(["ansible-playbook", "-i", "localhost,", str(book)], cwd=REPO / "ansible",
              env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACKS_ENABLED": ""})
    assert out.returncode == 0, out.stdout[-3000:]
    recap = [line for line in out.stdout.splitlines() if line.startswith("localhost")][-1]
    return int(recap.split("changed=")[1].split()[0])


def test_the_nginx_role_renews_its_self_signed_certificate_before_expiry(tmp_path):
    cert, key = tmp_path / "hashd.crt", tmp_path / "hashd.key"
    variables = {
        "hashd_nginx_tls_certificate": str(cert), "hashd_nginx_tls_certificate_key": str(key),
        "inventory_hostname": "localhost", "nginx_selfsigned_san": ["DNS:localhost", "IP:127.0.0.1"],
        "nginx_selfsigned_days": 365, "nginx_selfsigned_renew_days": 30,
        "nginx_selfsigned_crl_uri": "",
    }
    tasks = REPO / "ansible/roles/nginx/tasks/selfsigned.yml"
    book = playbook(tmp_path, "nginx", tasks, variables, "Reload nginx")
    assert play(book) > 0 and days_left(cert) >= 364
    assert play(book) == 0, "a second run changed the certificate"

    # A certificate an earlier run issued, with `days` left: the role's own, shorter-lived.
    def issued_earlier(days):
        cert.unlink()
        old = playbook(tmp_path, f"nginx-{days}", tasks, {**variables, "nginx_selfsigned_days": days},
                       "Reload nginx")
        play(old)
        assert days - 1 <= days_left(cert) <= days

    issued_earlier(100)
    assert play(book) == 0 and days_left(cert) >= 99, "renewed with 100 days left"

    issued_earlier(10)
    changed = play(book)
    assert days_left(cert) >= 364, f"a rerun left {days_left(cert)} days (changed={changed})"
    assert play(book) == 0, "the renewed certificate changed again"


def test_the_lb_role_renews_its_self_signed_certificate_before_expiry(tmp_path):
    variables = {
        "lb_tls_dir": str(tmp_path), "lb_tls_certificate_pem": "", "lb_tls_certificate_key_pem": "",
        "lb_selfsigned_san": ["DNS:localhost", "IP:127.0.0.1"], "lb_selfsigned_days": 365,
        "lb_selfsigned_renew_days": 30,
    }
    book = playbook(tmp_path, "lb", REPO / "ansible/roles/lb/tasks/tls.yml", variables, "Reload haproxy")
    cert, key, pem = tmp_path / "lb.crt", tmp_path / "lb.key", tmp_path / "lb.pem"
    assert play(book) > 0 and days_left(cert) >= 364
    assert pem.read_text() == cert.read_text() + key.read_text()
    assert play(book) == 0, "a second run changed the certificate"

    reissue(cert, key, 10, "DNS:localhost,IP:127.0.0.1")
    pem.write_text(cert.read_text() + key.read_text())
    play(book)
    assert days_left(cert) >= 364, f"a rerun left {days_left(cert)} days"
    assert pem.read_text() == cert.read_text() + key.read_text()
    assert pem.stat().st_mode & 0o777 == 0o600


def test_hashd_cert_expiry_writes_each_certificate_s_expiry(tmp_path):
    key = tmp_path / "k.pem"
    assert run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)]).returncode == 0
    soon, later = tmp_path / "soon.crt", tmp_path / "later.crt"
    reissue(soon, key, 5, "DNS:localhost")
    reissue(later, key, 200, "DNS:localhost")
    missing = tmp_path / "absent.crt"
    out_dir = tmp_path / "textfile"
    out_dir.mkdir()
    r = run([str(EXPIRY_SCRIPT), str(out_dir / "hashd_tls.prom"), str(soon), str(later), str(missing)])
    assert r.returncode == 0, r.stdout
    text = (out_dir / "hashd_tls.prom").read_text()
    values = {}
    for line in text.splitlines():
        if line.startswith("hashd_tls_certificate_expiry_timestamp_seconds{"):
            labels, value = line.rsplit(" ", 1)
            values[labels.split('path="')[1].split('"')[0]] = float(value)
    assert values[str(soon)] == not_after(soon).timestamp()
    assert values[str(later)] == not_after(later).timestamp()
    assert str(missing) not in values
    assert f'hashd_tls_certificate_read_ok{{path="{missing}"}} 0' in text
    assert f'hashd_tls_certificate_read_ok{{path="{soon}"}} 1' in text
    assert "# TYPE hashd_tls_certificate_expiry_timestamp_seconds gauge" in text
