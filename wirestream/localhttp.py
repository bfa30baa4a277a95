"""Small HTTP servers on 127.0.0.1 for the demo, the tests and the benchmark.

``serve_folder`` serves files the way a feed host does: ETag and Last-Modified, 304 on a matching
If-None-Match / If-Modified-Since, gzip when asked. ``serve_handler`` hands every request to a
function, for tests that need a misbehaving server. ``python -m wirestream.localhttp FOLDER``
serves a folder from its own process and prints the base URL.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip as gzip_module
import hashlib
import sys
import threading
from collections.abc import Callable, Iterator
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".json": "application/json",
    ".html": "text/html",
    ".txt": "text/plain",
}


@functools.lru_cache(maxsize=1024)
def _gzipped(etag: str, data: bytes) -> bytes:
    """Compressed once per version, as a feed host's cache or CDN would."""
    return gzip_module.compress(data, 6)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


class _FolderHandler(_Quiet):
    folder: Path
    gzip: bool

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        path = (self.folder / relative).resolve()
        if self.folder not in path.parents or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        mtime = int(path.stat().st_mtime)
        if self._unchanged(etag, mtime):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
        if self.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            data = _gzipped(etag, data)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _unchanged(self, etag: str, mtime: int) -> bool:
        if self.headers.get("If-None-Match") is not None:
            return self.headers["If-None-Match"] == etag
        since = self.headers.get("If-Modified-Since")
        if not since:
            return False
        try:
            return mtime <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False


@contextlib.contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve_folder(folder: str | Path, *, gzip: bool = False) -> Iterator[str]:
    """Serve ``folder`` on a free loopback port; yields the base URL."""
    handler = type("FolderHandler", (_FolderHandler,), {"folder": Path(folder).resolve(), "gzip": gzip})
    with _serve(handler) as base:
        yield base


@contextlib.contextmanager
def serve_handler(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """Serve every GET with ``respond(request)``, which writes the whole response itself."""

    def do_get(self: BaseHTTPRequestHandler) -> None:
        respond(self)

    handler = type("FunctionHandler", (_Quiet,), {"do_GET": do_get})
    with _serve(handler) as base:
        yield base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a folder on 127.0.0.1 (ETag, 304, gzip).")
    parser.add_argument("folder")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args(argv)
    with serve_folder(args.folder, gzip=args.gzip) as base:
        print(base, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # until the parent closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
