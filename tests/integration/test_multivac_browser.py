"""GET /multivac is inert in a real browser (issue 21, finding 6).

GET /multivac serves the first processed datum, whatever a client posted, as text/html on the
password service's own origin (the MultiVAC original did, and its clients read the body as
is). A datum that is a phishing page (a <meta http-equiv="refresh"> to elsewhere, a <form>
that posts to elsewhere, a <script>) must do nothing when a person opens the URL: nginx sends
`Content-Security-Policy: sandbox; ...` (snippets/headers.conf), which gives the page a unique
origin with no scripts, no form submission and no automatic navigation, and
`X-Content-Type-Options: nosniff`. The body stays byte for byte the datum.

Proven with Debian's headless Chromium against the local stack: every action of the page
targets a path of the same nginx, so the stack's access log shows whether the browser went
there, and the DOM Chromium dumps shows whether the script ran. Chromium is kept on
loopback (every other host name resolves to nothing, background networking off).
"""

import shutil
import subprocess
import tempfile
import time

from harness.hashd_stack import wait_for

CHROMIUM = shutil.which("chromium")
PROCESS_TIMEOUT_S = 120.0


def hostile_page(port):
    base = f"https://localhost:{port}"
    return (f'<html><head><meta http-equiv="refresh" content="0;url={base}/trap/refresh">'
            f'<title>before</title></head><body>'
            f'<form id="f" action="{base}/trap/form" method="get"><input name="x" value="1"></form>'
            f'<script>document.title = "script-ran"; document.getElementById("f").submit();</script>'
            f'<img src="{base}/trap/image">'
            f'</body></html>')


def chromium_dump_dom(url):
    """The DOM Chromium ends with after loading url (up to 5 s of virtual time)."""
    with tempfile.TemporaryDirectory(prefix="hashd-chromium-") as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--ignore-certificate-errors",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
             "--disable-client-side-phishing-detection", "--dns-prefetch-disable",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
             "--virtual-time-budget=5000", "--dump-dom", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_a_stored_page_does_nothing_in_a_browser(make_stack):
    assert CHROMIUM, "needs Debian's chromium (scripts/install-deps)"
    stack = make_stack(processes=1, workers=1)
    page = hostile_page(stack.https_port)
    r = stack.post("/multivac/data", data={"data": page})
    assert r.status_code == 200, r.text
    wait_for(lambda: stack.get("/multivac").content == page.encode(), PROCESS_TIMEOUT_S,
             "the worker to process the datum")

    served = stack.get("/multivac")
    # MultiVAC's clients see what they always did: the datum's bytes, as text/html.
    assert served.content == page.encode()
    assert served.headers["Content-Type"] == "text/html; charset=utf-8"

    dom = chromium_dump_dom(stack.url("/multivac"))
    time.sleep(1)  # nginx writes an access-log line when a request ends
    trapped = sorted({e["path"] for e in stack.access_log() if e["path"].startswith("/trap/")})
    # The page was loaded (its markup is in the DOM), and nothing in it ran.
    assert trapped == [], f"the browser followed the stored page to {trapped}"
    assert 'id="f"' in dom, dom[:2000]
    assert "<title>before</title>" in dom, f"the stored script ran: {dom[:2000]}"
    # What makes it so.
    csp = served.headers["Content-Security-Policy"]
    assert csp.split(";")[0].strip() == "sandbox", csp
    assert served.headers["X-Content-Type-Options"] == "nosniff"
