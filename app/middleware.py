"""ASGI middleware of every request: request id, structured access log, security headers, body limit,
the client's address behind trusted proxies, the allowed Host names, and HEAD wherever GET is answered.

Plain ASGI (not BaseHTTPMiddleware) so that nothing buffers a response and the per-request cost stays
in microseconds.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

access_log = logging.getLogger("gradwalk.access")
error_log = logging.getLogger("gradwalk.errors")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CLIENT_CLOSED = 499  # the access log's status of a request whose client left before it was answered

# Scripts only from our own origin: no inline script, no eval. Styles allow inline because the editor
# (CodeMirror) and the math renderer (KaTeX) set style attributes; a style cannot run code.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors {ancestors}"
)
PAGE_CSP = CSP.format(ancestors="'none'")
EMBED_CSP = CSP.format(ancestors="*")  # /embed/* exists to be framed by any teacher's site
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # share ids are capabilities: never leak them in Referer
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def csp_for(path: str) -> str:
    return EMBED_CSP if path.startswith("/embed/") else PAGE_CSP


class RequestContext:
    """Gives each request an id (echoed as X-Request-ID), logs one JSON line per request, adds security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        started = time.perf_counter()
        status = 500
        sent = 0
        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, sent, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                _decorate(scope, MutableHeaders(scope=message), request_id, started)
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client hung up before its body arrived: nobody to answer and nothing broken, so no
            # traceback (any client could fill the error log with them). 499 as nginx logs it.
            status = CLIENT_CLOSED
        except Exception:
            # Answered here, inside this middleware, so that a 500 carries the request id and headers too.
            error_log.exception("unhandled error", extra={"request_id": request_id})
            if started_response:
                raise
            await error_response(500, "Internal server error.", request_id=request_id)(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                            "request_id": request_id,
                            "client": client[0] if client else None,
                            "method": scope["method"],
                            "path": path,
                            "status": status,
                            "bytes": sent,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    )
                )


def _decorate(scope: Scope, headers: MutableHeaders, request_id: str, started: float) -> None:
    """What every response carries: its request id, Server-Timing, the security headers."""
    path: str = scope["path"]
    headers["x-request-id"] = request_id
    # Server-Timing (ms): `app` is the whole request inside the app, up to its first byte.
    headers.append("server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
    if "content-security-policy" not in headers:  # /docs sets its own
        headers["content-security-policy"] = csp_for(path)
    if not path.startswith("/embed/"):
        headers["x-frame-options"] = "DENY"
    for key, value in SECURITY_HEADERS.items():
        headers.setdefault(key, value)
    if "location" in headers:  # a redirect to this very host: relative, so Host is never reflected
        target = urlsplit(headers["location"])
        if target.netloc and target.netloc == _header(scope, b"host"):
            headers["location"] = target.path + (f"?{target.query}" if target.query else "")


class BodyLimit:
    """Answers 413 to a request body over `max_bytes`, by Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            request_id = scope.get("state", {}).get("request_id")
            if length.isdigit():
                response = error_response(413, self._message(), request_id=request_id)
            else:
                response = error_response(400, "Content-Length is not a number.", request_id=request_id)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # chunked upload without Content-Length
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.max_bytes:,} bytes (6 × max_source_bytes for the program's JSON escaping, and 4 KiB)."


def _header(scope: Scope, name: bytes) -> str:
    return b",".join(v for k, v in scope["headers"] if k == name).decode("latin-1")


def _address(entry: str) -> str:
    """An X-Forwarded-For entry as a normalized IP address (a port, if a proxy added one, dropped); ValueError if none."""
    text = entry.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":")[0]
    return str(ipaddress.ip_address(text))


class TrustedProxies:
    """The proxies allowed to say who the client is (`forwarded_allow_ips`): addresses and networks,
    comma-separated. `*` trusts whichever peer connects as the one proxy in front of the app (only
    where nothing else can reach it), but no address written inside the header."""

    def __init__(self, spec: str) -> None:
        self.any_peer = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for part in (p.strip() for p in spec.split(",")):
            if part == "*":
                self.any_peer = True
            elif part:
                self.networks.append(ipaddress.ip_network(part, strict=False))

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def trusts_peer(self, address: str) -> bool:
        return self.any_peer or self.trusts(address)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client behind a trusted peer: the rightmost address in X-Forwarded-For that is not a trusted
        proxy (the ones to its left were written by the client itself). ValueError for an entry that is not an address."""
        client = peer
        for entry in reversed([e for e in forwarded_for.split(",") if e.strip()]):
            client = _address(entry)
            if not self.trusts(client):
                break
        return client


class ClientAddress:
    """Puts the real client's address in the request's scope, for the rate limit and the run queues,
    when a trusted proxy forwarded the request (and its scheme, from X-Forwarded-Proto)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer and self.proxies.trusts_peer(peer[0]):
            forwarded_for = _header(scope, b"x-forwarded-for")
            if forwarded_for:
                try:
                    scope["client"] = (self.proxies.client(peer[0], forwarded_for), 0)
                except ValueError:
                    message = "X-Forwarded-For holds something that is not an IP address."
                    await error_response(400, message, request_id=scope.get("state", {}).get("request_id"))(scope, receive, send)
                    return
            scheme = _header(scope, b"x-forwarded-proto").strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        await self.app(scope, receive, send)


class AllowedHosts:
    """Answers 400 to a request whose Host header names another site (`allowed_hosts`; `*` allows any)."""

    def __init__(self, app: ASGIApp, hosts: str) -> None:
        self.app = app
        names = {h.strip().lower() for h in hosts.split(",") if h.strip()}
        self.any_host = not names or "*" in names
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any_host:
            host = _header(scope, b"host").strip().lower()
            name = host[1 : host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
            if name not in self.names:
                message = "This server does not answer for that host name (allowed_hosts)."
                await error_response(400, message, request_id=scope.get("state", {}).get("request_id"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answers HEAD wherever GET is answered, with the GET's status and headers and no body (RFC 9110
    9.3.2): FastAPI's routes answer only the methods they declare, and a HEAD was a 405. The 405s say
    so in their Allow header (app.errors.allowed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.start":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: the server and the outer middleware (the access log) keep seeing HEAD.
        await self.app({**scope, "method": "GET"}, receive, headers_only)
