"""A minimal FastCGI client (the responder role, one request per connection), for the few
tests that must speak to hashd-fcgi's socket directly: what nginx never sends (a body shorter
than its CONTENT_LENGTH, a CONTENT_LENGTH over the app's own limit) is what another local
client with access to the socket could.
"""

import socket
import struct

FCGI_VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
REQUEST_ID = 1


def _record(kind, content=b""):
    return struct.pack("!BBHHBx", FCGI_VERSION, kind, REQUEST_ID, len(content), 0) + content


def _length(n):
    return bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)


def _params(params):
    data = b""
    for name, value in params.items():
        name, value = name.encode(), value.encode()
        data += _length(len(name)) + _length(len(value)) + name + value
    return data


def request(socket_path, params, body=b"", timeout=60, close_stdin=True):
    """Sends one request and returns (status, headers dict, body bytes). The STDIN stream
    carries `body` as is, whatever CONTENT_LENGTH says; with close_stdin it is then ended
    with an empty record, as a client that has nothing more to send does."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(socket_path))
        out = _record(BEGIN_REQUEST, struct.pack("!HB5x", RESPONDER, 0))
        encoded = _params(params)
        for i in range(0, len(encoded), 65535):
            out += _record(PARAMS, encoded[i:i + 65535])
        out += _record(PARAMS)
        for i in range(0, len(body), 65535):
            out += _record(STDIN, body[i:i + 65535])
        if close_stdin:
            out += _record(STDIN)
        s.sendall(out)
        stdout = b""
        while True:
            header = _recv_exactly(s, 8)
            _, kind, _, length, padding = struct.unpack("!BBHHBx", header)
            content = _recv_exactly(s, length + padding)[:length]
            if kind == STDOUT:
                stdout += content
            elif kind == END_REQUEST:
                break
    head, _, payload = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, payload


def _recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the FastCGI server closed the connection mid-record")
        data += chunk
    return data
