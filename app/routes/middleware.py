"""ASGI middleware of every response: request id, structured access log, security headers, body limit.

Plain ASGI (not BaseHTTPMiddleware) so that nothing buffers a response and the per-request cost stays
in microseconds.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import error_response

access_log = logging.getLogger("gradwalk.access")
error_log = logging.getLogger("gradwalk.errors")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

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
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                # Server-Timing (ms): `app` is the whole request inside the app, up to its first byte.
                headers.append("server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
                if "content-security-policy" not in headers:  # /docs sets its own
                    headers["content-security-policy"] = csp_for(path)
                if not path.startswith("/embed/"):
                    headers["x-frame-options"] = "DENY"
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
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
        return f"The request body is larger than {self.max_bytes} bytes (max_source_bytes)."
