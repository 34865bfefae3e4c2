"""What the routes depend on, as typed aliases (`SettingsDep`, `StoreDep`, `PoolDep`, `ClientDep`,
`ShareDep`), and the two steps every running route shares: spending the client's run budget and
running the program in its turn; and ProgramRoute, how a program arrives in a request body."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from ..config import Settings
from ..models import Job
from ..offload import offload
from ..ratelimit import RateLimiter, SharedRateLimiter
from ..sandbox import QueueFull, SandboxPool, SandboxUnavailable, TraceDocument
from ..store import Share, Store


# The getters are coroutines: FastAPI runs a plain function dependency in a worker thread, four
# thread hops a request for an attribute read (health cost 3 ms of CPU a request with them).
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_pool(request: Request) -> SandboxPool:
    return request.app.state.pool


async def get_client(request: Request) -> str:
    """The client, by its address as the proxy-aware middleware found it: the key of its run budget and its queue."""
    return client_key(request.client.host) if request.client else "unknown"


def client_key(host: str) -> str:
    """An IPv4 client by its address; an IPv6 one by its /64, which a subscriber is handed whole and may
    take any address of (one budget per address was as many budgets as it liked)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv4Address):
        return host
    if ip.ipv4_mapped is not None:  # ::ffff:198.51.100.7 is that IPv4 client
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
PoolDep = Annotated[SandboxPool, Depends(get_pool)]
ClientDep = Annotated[str, Depends(get_client)]


def rate_limit(request: Request, client: ClientDep) -> None:
    """Spend one run of this client's budget, or answer 429."""
    limiter: RateLimiter | SharedRateLimiter = request.app.state.rate_limiter
    retry_after_s = limiter.take(client)
    if retry_after_s is not None:
        raise HTTPException(
            429,
            f"Too many runs from this address: the limit is {limiter.per_minute} per minute.",
            headers={"Retry-After": str(retry_after_s)},
        )


async def get_share(share_id: str, store: StoreDep) -> Share:
    """The share with this id, or 404."""
    share = await offload(store.load, share_id)
    if share is None:
        raise HTTPException(404, "No share with this id.")
    return share


ShareDep = Annotated[Share, Depends(get_share)]


async def trace_document(pool: SandboxPool, source: str, client: str, job: Job | None = None) -> TraceDocument:
    """The program's checked trace from the sandbox, in its client's turn; a full queue is a 429, a
    broken sandbox a 503 (for every route that runs one)."""
    try:
        return await pool.trace_document(source, client, job)
    except QueueFull as e:
        raise HTTPException(
            429,
            "The server is busy running other programs; try again shortly.",
            headers={"Retry-After": str(max(1, int(e.retry_after_s)))},
        ) from None
    except SandboxUnavailable as e:
        raise HTTPException(503, f"The sandbox is unavailable: {e}", headers={"Retry-After": "5"}) from None


# --- the program in a request body ------------------------------------------------------------------

JSON_TYPE = "application/json"
# Bodies that are the program itself: `curl --data-binary @prog.py` sends it as a form, editors as text.
PROGRAM_TYPES = ("text/plain", "text/x-python", "application/x-python", "application/x-www-form-urlencoded", "")


def _program_size_error(source: str, settings: Settings) -> HTTPException | None:
    # surrogatepass: a lone surrogate ("\udfff" in JSON) is measured here and refused by the model (422)
    size, limit = len(source.encode("utf-8", "surrogatepass")), settings.max_source_bytes
    if size <= limit:
        return None
    return HTTPException(413, f"The program is {size:,} bytes, {size - limit:,} over the limit of {limit:,} (max_source_bytes).")


# A request's JSON nesting: {"overrides": {"w": [[...]]}} holds an 18-dimensional value. Deeper, a bad
# value's errors multiply (5 per level of each value, each with its path): 8 values 200 deep around a
# `{}` drew a 37 MB 422 after seconds of CPU, from a 3.5 kB body.
MAX_JSON_DEPTH = 20


def _deeper_than(data: object, limit: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return False


def _too_deep() -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body",), "msg": f"JSON nested more than {MAX_JSON_DEPTH} levels deep", "type": "json_too_deep"}]
    )


async def _as_json_program(request: Request) -> Request:
    """The request with its program as JSON {"source"}: a text body becomes one; either way the program
    itself (not its JSON escaping) is held to max_source_bytes."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":  # a compressed body is never inflated (no bombs): say so, not "error parsing the body"
        raise HTTPException(415, f"Send the body uncompressed, not with Content-Encoding: {encoding}.")
    raw = await request.body()
    if kind == JSON_TYPE:
        try:
            data = json.loads(raw)
        except UnicodeDecodeError:
            raise HTTPException(400, "The JSON body is not UTF-8 text.") from None
        except json.JSONDecodeError:
            return request  # FastAPI answers the malformed JSON with its 422
        except ValueError:  # an integer past Python's int_max_str_digits: FastAPI's bare "error parsing the body" before
            number = f"a number in the JSON has more than {sys.get_int_max_str_digits():,} digits"
            raise RequestValidationError([{"loc": ("body",), "msg": number, "type": "json_number_too_long"}]) from None
        except RecursionError:  # [[[...]]] 100,000 deep: json's recursion limit, an HTTP 500 before
            raise _too_deep() from None
        if _deeper_than(data, MAX_JSON_DEPTH):
            raise _too_deep()
        source = data.get("source") if isinstance(data, dict) else None
        error = _program_size_error(source, request.app.state.settings) if isinstance(source, str) else None
        if error:
            raise error
        return request
    if kind not in PROGRAM_TYPES:
        raise HTTPException(415, f'Send the program as JSON {{"source": "..."}} or as the body itself (text/plain), not {kind}.')
    try:  # a file's byte-order mark (Notepad writes one) is not the program's, as for python prog.py
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "The program is not UTF-8 text.") from None
    if error := _program_size_error(source, request.app.state.settings):
        raise error
    body = json.dumps({"source": source}).encode()
    headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-type", b"content-length")]
    scope = {
        **request.scope,
        "headers": [*headers, (b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(body)).encode())],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


# A program as text/plain is a "simple" request, which a browser sends from any site's page without
# asking first (no CORS preflight): another site could make each of its visitors run programs here, on
# the budget of each one's address. Browsers say where a request comes from; scripts and curl send nothing.
CROSS_SITE = (
    "Programs are not run for another site's pages (Sec-Fetch-Site: cross-site); call the API from a script or this site."
)


class ProgramRoute(APIRoute):
    """A route whose POST body carries a program: JSON {"source", ...}, or the program itself as text
    (`curl --data-binary @prog.py`), answered alike; never for another site's page (403)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if request.method != "POST":
                return await handler(request)
            if request.headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
                raise HTTPException(403, CROSS_SITE)
            return await handler(await _as_json_program(request))

        return route


PROGRAM_BODY_DOC = {  # the text/plain alternative, for the OpenAPI schema (JSON is documented by the model)
    "requestBody": {"content": {"text/plain": {"schema": {"type": "string", "description": "the program itself"}}}}
}
