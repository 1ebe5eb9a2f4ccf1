#!/usr/bin/env python3
"""The keys and certificates one run of a GCP suite makes for itself, into a folder:
  ca.pem              the test CA (REQUESTS_CA_BUNDLE: what the modules trust)
  api.pem, api.key    the Google API hosts' certificate, signed by it (the stand-in's)
  sa.json, sa.pub     a service-account key file, and its public half (the stand-in checks
                      the JWTs the modules sign with it)
  lb.pem, lb.key      the load balancer's uploaded certificate (self-managed)

As a command: keys.py DIR PROJECT [LB_NAME...].
"""

import datetime
import json
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

API_HOSTS = ["compute.googleapis.com", "www.googleapis.com", "oauth2.googleapis.com",
             "secretmanager.googleapis.com"]


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert(subject_key, cn, issuer_key=None, issuer_name=None, sans=(), ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_name or name).public_key(subject_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]),
                                        critical=False)
    return builder.sign(issuer_key or subject_key, hashes.SHA256())


def write(d, project, lb_names=("hashd.example.com",)):
    d = pathlib.Path(d)
    ca_key = rsa_key()
    ca = cert(ca_key, "hashd test CA", ca=True)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    api_key = rsa_key()
    api = cert(api_key, "googleapis stand-in", ca_key, ca.subject, sans=API_HOSTS)
    (d / "api.pem").write_bytes(api.public_bytes(serialization.Encoding.PEM))
    (d / "api.key").write_bytes(pem_key(api_key))
    sa_key = rsa_key()
    (d / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "sa.json").write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "0" * 40,
        "private_key": pem_key(sa_key).decode(), "client_email": f"deployer@{project}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    (d / "sa.json").chmod(0o600)
    lb_key = rsa_key()
    (d / "lb.pem").write_bytes(cert(lb_key, lb_names[0], sans=lb_names).public_bytes(serialization.Encoding.PEM))
    (d / "lb.key").write_bytes(pem_key(lb_key))


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], tuple(sys.argv[3:]) or ("hashd.example.com",))
