"""The HTTP fetcher against misbehaving local servers: every limit holds and fails with a kind."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectors.fetch import Fetcher, FetchError, Limits, check_address, refused
from wirestream.localhttp import serve_folder, serve_handler

LOCAL = Limits(allow_private=True, connect_timeout_s=2, read_timeout_s=2, deadline_s=5, max_bytes=64 * 1024)


def reply(request, status=200, body=b"<rss/>", headers=None):
    request.send_response(status)
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    if "Content-Length" not in (headers or {}):
        request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


def fetch_error(url, limits=LOCAL, **kw) -> FetchError:
    with pytest.raises(FetchError) as caught:
        Fetcher(limits).get(url, **kw)
    return caught.value


def test_conditional_get_gets_a_304_and_gzip_is_decoded(tmp_path):
    (tmp_path / "feed.rss").write_text("<rss version='2.0'><channel/></rss>" + " " * 5000)
    with serve_folder(tmp_path, gzip=True) as base:
        fetcher = Fetcher(LOCAL)
        first = fetcher.get(f"{base}/feed.rss")
        assert first.status == 200 and first.body.startswith(b"<rss") and len(first.body) > 5000
        again = fetcher.get(f"{base}/feed.rss", etag=first.etag)
        assert again.status == 304 and again.body == b""
        by_date = fetcher.get(f"{base}/feed.rss", last_modified=first.last_modified)
        assert by_date.status == 304


def test_redirects_are_followed_up_to_the_limit():
    def respond(request):
        hop = int(request.path.strip("/") or 0)
        if hop < 3:
            reply(request, 302, b"", {"Location": f"/{hop + 1}"})
        else:
            reply(request, body=b"<rss>arrived</rss>")

    with serve_handler(respond) as base:
        assert Fetcher(LOCAL).get(f"{base}/0").body == b"<rss>arrived</rss>"
        error = fetch_error(f"{base}/0", Limits(allow_private=True, max_redirects=2))
        assert error.kind == "too_many_redirects" and error.permanent


def test_a_redirect_loop_ends():
    with serve_handler(lambda r: reply(r, 301, b"", {"Location": "/loop"})) as base:
        assert fetch_error(f"{base}/loop").kind == "too_many_redirects"


def test_bodies_over_the_limit_are_refused_with_or_without_a_length():
    big = b"x" * (LOCAL.max_bytes + 1)

    def respond(request):
        if request.path == "/declared":
            reply(request, body=big)
        else:  # no Content-Length: HTTP/1.0 body until close
            request.send_response(200)
            request.end_headers()
            request.wfile.write(big)

    with serve_handler(respond) as base:
        assert fetch_error(f"{base}/declared").kind == "too_large"
        assert fetch_error(f"{base}/undeclared").kind == "too_large"


def test_a_gzip_bomb_is_stopped_at_the_limit():
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024), 9)  # 10 MiB of zeros in ~10 KiB
    with serve_handler(lambda r: reply(r, body=bomb, headers={"Content-Encoding": "gzip"})) as base:
        started = time.process_time()
        assert fetch_error(f"{base}/bomb").kind == "too_large"
        assert time.process_time() - started < 1.0


def test_a_corrupt_gzip_body_is_a_protocol_error():
    with serve_handler(
        lambda r: reply(r, body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    ) as base:
        assert fetch_error(f"{base}/x").kind == "protocol"


def test_a_server_that_drips_bytes_hits_the_deadline():
    def respond(request):
        request.send_response(200)
        request.end_headers()
        for _ in range(100):
            request.wfile.write(b" ")
            request.wfile.flush()
            time.sleep(0.1)

    limits = Limits(allow_private=True, read_timeout_s=2, deadline_s=0.5)
    with serve_handler(respond) as base:
        started = time.monotonic()
        assert fetch_error(f"{base}/slow", limits).kind == "timeout"
        assert time.monotonic() - started < 2


def test_a_server_that_never_answers_hits_the_read_timeout():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        limits = Limits(allow_private=True, read_timeout_s=0.3, deadline_s=5)
        assert fetch_error(f"http://127.0.0.1:{port}/", limits).kind == "timeout"


def test_a_closed_port_is_a_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = fetch_error(f"http://127.0.0.1:{port}/")
    assert error.kind == "connect" and not error.permanent


@pytest.mark.parametrize(
    ("status", "kind", "permanent"),
    [(404, "http_4xx", True), (410, "http_4xx", True), (500, "http_5xx", False), (429, "http_4xx", False)],
)
def test_http_errors_say_whether_a_retry_can_help(status, kind, permanent):
    with serve_handler(lambda r: reply(r, status, b"", {"Retry-After": "120"})) as base:
        error = fetch_error(f"{base}/x")
        assert (error.kind, error.permanent) == (kind, permanent)
        assert error.retry_after == 120


def test_private_addresses_are_refused_before_connecting():
    hits = []
    with serve_handler(lambda r: (hits.append(r.path), reply(r))) as base:
        error = fetch_error(f"{base}/feed", Limits(allow_private=False))
        assert error.kind == "refused_address" and error.permanent
        assert "--allow-private-networks" in str(error)
        assert hits == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "fe80::1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses(address):
    assert refused(ipaddress.ip_address(address))


def test_public_addresses_are_not_refused():
    assert not refused(ipaddress.ip_address("93.184.216.34"))
    assert not refused(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


def test_check_address_without_a_host():
    with pytest.raises(ValueError, match="no host"):
        check_address("http:///feed", allow_private=False)


def test_the_per_host_limit_holds_across_threads():
    active, peak, lock = [0], [0], threading.Lock()

    def respond(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)  # the server is slow, so concurrent requests would overlap
        with lock:
            active[0] -= 1
        reply(request)

    fetcher = Fetcher(Limits(allow_private=True, per_host=2))
    with serve_handler(respond) as base, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: fetcher.get(f"{base}/{i}"), range(12)))
    assert peak[0] == 2


def test_limits_are_validated_at_construction():
    with pytest.raises(ValueError, match="max_bytes"):
        Limits(max_bytes=0)
    with pytest.raises(ValueError, match="max_redirects"):
        Limits(max_redirects=-1)


def test_the_deadline_holds_over_tls_too(tmp_path, monkeypatch):
    """An HTTPS server dripping its status line is cut at the deadline; a prompt one answers."""
    import ssl
    import subprocess
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/drip":
                try:
                    for byte in b"HTTP/1.1 200 OK\r\n":
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.5)
                except OSError:
                    pass
                return
            reply(self)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the fetcher's default context trusts it
    limits = Limits(allow_private=True, read_timeout_s=2, deadline_s=2)
    base = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        assert Fetcher(limits).get(f"{base}/feed").body == b"<rss/>"
        started = time.monotonic()
        error = fetch_error(f"{base}/drip", limits)
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert (error.kind, str(error)) == ("timeout", "fetch took longer than its 2s deadline")
    assert 1.9 <= took < 3.0
