"""HTTP GET for feeds and articles, with every limit a long-running connector needs.

Connect and read timeouts plus one deadline for the whole fetch, redirects included: it starts
when the first hop holds its per-host slot (time spent queueing behind a slow sibling is not the
fetch's) and is checked before every socket read of the status line, the headers and the body,
so a server that drips one byte a second is cut at the deadline. A body cap that also bounds
gzip/deflate output (no decompression bombs), a redirect limit, conditional GET, a per-host
concurrency limit, and SSRF protection: each hop's host is resolved once, every address is
checked, and the connection goes to the checked address (no second lookup that DNS rebinding
could answer differently). Name resolution comes before the slot and outside the deadline.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

USER_AGENT = "wirestream/0.1 (+news ingestion)"
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
ARTICLE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


class FetchError(Exception):
    """A failed fetch: ``kind`` names it for metrics, ``permanent`` says whether a retry can help."""

    def __init__(self, kind: str, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    deadline_s: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host: int = 2
    allow_private: bool = False
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "deadline_s", "max_bytes", "per_host"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {self.max_redirects!r}")


@dataclass
class Response:
    status: int
    url: str
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None


def refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for loopback, private, link-local (cloud metadata), reserved and other non-public addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def resolve(host: str, port: int, allow_private: bool) -> list[tuple[Any, ...]]:
    """Every address of ``host``, each checked; raises FetchError when one is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc}") from None
    if not allow_private:
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if refused(address):
                raise FetchError(
                    "refused_address",
                    f"{host} resolves to {address}, a non-public address; "
                    "pass --allow-private-networks (config allow_private_networks) to allow it",
                    permanent=True,
                )
    return infos


def check_address(url: str, allow_private: bool) -> None:
    """Raise ValueError when ``url``'s host is not allowed (the check every fetch makes)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url}")
    try:
        resolve(parts.hostname, parts.port or 80, allow_private)
    except FetchError as exc:
        raise ValueError(str(exc)) from None


class _Deadline:
    """The monotonic time a fetch must end by, and the per-read timeout within it."""

    def __init__(self, seconds: float, read_timeout_s: float) -> None:
        self.seconds = seconds
        self.read_timeout_s = read_timeout_s
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"fetch took longer than its {self.seconds:g}s deadline")
        return left

    def read_timeout(self) -> float:
        return min(self.read_timeout_s, self.remaining())


class _DeadlineSocket(socket.socket):
    """A socket whose every read waits no longer than the fetch's deadline allows.

    http.client reads the status line and headers a line at a time through ``recv_into``; a read
    timeout alone restarts with each byte, so the deadline is checked here, before each read.
    """

    deadline: _Deadline | None = None

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self.deadline is not None:
            self.settimeout(self.deadline.read_timeout())
        return super().recv_into(buffer, nbytes, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    deadline: _Deadline | None = None

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        if self.deadline is not None:
            self.settimeout(self.deadline.read_timeout())
        return super().recv_into(buffer, nbytes, flags)  # type: ignore[arg-type]


def _connect(infos: list[tuple[Any, ...]], timeout: float, deadline: _Deadline) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        sock = _DeadlineSocket(family, kind, proto)
        try:
            sock.settimeout(min(timeout, deadline.remaining()))
            sock.connect(sockaddr)
            sock.deadline = deadline
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to addresses resolved and checked beforehand, never resolving the host again."""

    def __init__(
        self, host: str, port: int, infos: list[tuple[Any, ...]], timeout: float, deadline: _Deadline
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._infos = infos
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self._infos, self.timeout, self._deadline)  # type: ignore[arg-type]


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(
        self,
        host: str,
        port: int,
        infos: list[tuple[Any, ...]],
        timeout: float,
        context: ssl.SSLContext,
        deadline: _Deadline,
    ):
        super().__init__(host, port, timeout=timeout, context=context)
        self._infos = infos
        self._tls = context
        self._deadline = deadline

    def connect(self) -> None:
        sock = _connect(self._infos, self.timeout, self._deadline)  # type: ignore[arg-type]
        sock.settimeout(min(self.timeout or self._deadline.seconds, self._deadline.remaining()))
        tls = self._tls.wrap_socket(sock, server_hostname=self.host)  # the handshake, within the deadline
        assert isinstance(tls, _DeadlineSSLSocket)
        tls.deadline = self._deadline
        self.sock = tls


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


class Fetcher:
    """Thread-safe; one per connector so that the per-host limit holds across all its workers."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self._tls.sslsocket_class = _DeadlineSSLSocket

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.limits.per_host)
            return slot

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> Response:
        limits = self.limits
        deadline: _Deadline | None = None
        for _hop in range(limits.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError("bad_url", f"not an http(s) URL: {url[:200]}", permanent=True)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = resolve(parts.hostname, port, limits.allow_private)
            headers = {"User-Agent": limits.user_agent, "Accept": accept, "Accept-Encoding": "gzip, deflate"}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            with self._slot(f"{parts.hostname}:{port}"):
                if deadline is None:  # the fetch begins once it holds its first slot
                    deadline = _Deadline(limits.deadline_s, limits.read_timeout_s)
                connection: http.client.HTTPConnection
                if parts.scheme == "https":
                    connection = _PinnedHTTPS(
                        parts.hostname, port, infos, limits.connect_timeout_s, self._tls, deadline
                    )
                else:
                    connection = _PinnedHTTP(parts.hostname, port, infos, limits.connect_timeout_s, deadline)
                try:
                    location = self._exchange(connection, target, headers, deadline)
                    if isinstance(location, Response):
                        location.url = url
                        return location
                finally:
                    connection.close()
            url = urljoin(url, location)
            etag = last_modified = None  # validators belong to the URL that issued them
        raise FetchError("too_many_redirects", f"more than {limits.max_redirects} redirects", permanent=True)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        target: str,
        headers: dict[str, str],
        deadline: _Deadline,
    ) -> Response | str:
        limits = self.limits
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            status = response.status
            if status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError("http", f"HTTP {status} without a Location header", permanent=True)
                return location
            if status == 304:
                return Response(
                    304, "", b"", response.getheader("ETag"), response.getheader("Last-Modified"), None
                )
            if status != 200:
                permanent = 400 <= status < 500 and status not in (408, 425, 429)
                raise FetchError(
                    f"http_{status // 100}xx",
                    f"HTTP {status} {response.reason}"[:200],
                    permanent=permanent,
                    retry_after=_retry_after(response.getheader("Retry-After")),
                )
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise FetchError(
                    "too_large", f"body of {declared} bytes is over the {limits.max_bytes}-byte limit"
                )
            body = self._read(response, deadline)
            return Response(
                200,
                "",
                body,
                response.getheader("ETag"),
                response.getheader("Last-Modified"),
                response.getheader("Content-Type"),
            )
        except FetchError:
            raise
        except TimeoutError as exc:
            if deadline.at <= time.monotonic():
                raise FetchError(
                    "timeout", f"fetch took longer than its {limits.deadline_s:g}s deadline"
                ) from None
            raise FetchError("timeout", f"timed out: {exc or 'no answer in time'}") from None
        except ssl.SSLError as exc:
            raise FetchError("tls", f"TLS failed: {exc}") from None
        except ConnectionRefusedError as exc:
            raise FetchError("connect", f"connection refused: {exc}") from None
        except (http.client.HTTPException, ValueError) as exc:
            raise FetchError(
                "protocol", f"bad HTTP response: {exc.__class__.__name__}: {exc}"[:300]
            ) from None
        except OSError as exc:
            raise FetchError("connect", f"network error: {exc}") from None

    def _read(self, response: http.client.HTTPResponse, deadline: _Deadline) -> bytes:
        limits = self.limits
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        inflate: Any = None
        if encoding in ("gzip", "x-gzip"):
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            inflate = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            raise FetchError("protocol", f"unsupported Content-Encoding {encoding!r}", permanent=True)
        parts: list[bytes] = []
        size = 0
        while True:
            deadline.remaining()
            chunk = response.read1(_CHUNK) if hasattr(response, "read1") else response.read(_CHUNK)
            if not chunk:
                break
            if inflate is not None:
                try:
                    chunk = inflate.decompress(chunk, limits.max_bytes - size + 1)
                except zlib.error as exc:
                    raise FetchError("protocol", f"corrupt {encoding} body: {exc}") from None
                if inflate.unconsumed_tail:
                    raise FetchError("too_large", f"decompressed body over the {limits.max_bytes}-byte limit")
            size += len(chunk)
            if size > limits.max_bytes:
                raise FetchError("too_large", f"body over the {limits.max_bytes}-byte limit")
            parts.append(chunk)
        if inflate is not None:
            tail = inflate.flush()
            size += len(tail)
            if size > limits.max_bytes:
                raise FetchError("too_large", f"decompressed body over the {limits.max_bytes}-byte limit")
            parts.append(tail)
        return b"".join(parts)
