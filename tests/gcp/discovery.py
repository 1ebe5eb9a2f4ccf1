#!/usr/bin/env python3
"""Finds Google's Compute discovery document (compute.v1.json) for the GCP suites.

Never a copy in the repository. In order:
  1. $HASHD_GCP_DISCOVERY (a file; the Makefile points it at ../shared/gcp/compute.v1.json
     next to the repository when that exists);
  2. the cache: $HASHD_GCP_CACHE, else /var/cache/hashd-gcp, else ~/.cache/hashd-gcp;
  3. a download, once, from Google's public discovery service (DISCOVERY_URL), into the
     cache. `requests` honours HTTPS_PROXY and REQUESTS_CA_BUNDLE, which is how the suite
     tests this step against tests/gcp/standin.py on loopback.
With none of these (offline, empty cache) it fails with one line saying how to get it.

As a command: prints the path on stdout, or the one line on stderr and exits 1.
"""

import json
import os
import pathlib
import sys

DISCOVERY_URL = "https://www.googleapis.com/discovery/v1/apis/compute/v1/rest"
NAME = "compute.v1.json"
HOWTO = (f"Compute discovery document not found: set HASHD_GCP_DISCOVERY=/path/to/{NAME}, "
         f"or fetch it once while online (`curl -o {{cache}}/{NAME} {DISCOVERY_URL}`, "
         f"or run this suite online and it is cached in {{cache}})")


class NotFound(Exception):
    """No document: the message is the one line a user needs."""


def cache_dir():
    """The first usable cache folder (created if it can be); None if none is writable."""
    candidates = [os.environ.get("HASHD_GCP_CACHE"), "/var/cache/hashd-gcp",
                  str(pathlib.Path.home() / ".cache" / "hashd-gcp")]
    first = None
    for c in candidates:
        if not c:
            continue
        p = pathlib.Path(c)
        first = first or p
        if (p / NAME).is_file():
            return p
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(p, os.W_OK):
            return p
    return first


def _valid(doc):
    return isinstance(doc, dict) and doc.get("name") == "compute" and doc.get("version") == "v1" \
        and "resources" in doc and "schemas" in doc


def find(timeout=60):
    """The path of compute.v1.json; raises NotFound with the one-line how-to."""
    env = os.environ.get("HASHD_GCP_DISCOVERY")
    if env:
        if not pathlib.Path(env).is_file():
            raise NotFound(f"HASHD_GCP_DISCOVERY={env} is not a file")
        return pathlib.Path(env)
    cache = cache_dir()
    if cache is not None and (cache / NAME).is_file():
        return cache / NAME
    howto = HOWTO.format(cache=cache or "/var/cache/hashd-gcp")
    if cache is None:
        raise NotFound(howto)
    import requests  # only on the download path

    try:
        r = requests.get(DISCOVERY_URL, timeout=timeout)
        r.raise_for_status()
        doc = r.json()
    except (requests.RequestException, ValueError) as e:
        raise NotFound(f"{howto} (download failed: {type(e).__name__})") from None
    if not _valid(doc):
        raise NotFound(f"{howto} (the download is not the Compute v1 discovery document)")
    tmp = cache / f".{NAME}.{os.getpid()}"
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, cache / NAME)
    return cache / NAME


def main():
    try:
        print(find())
    except NotFound as e:
        print(e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
