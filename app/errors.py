"""The one error shape: every 4xx/5xx JSON body has exactly the keys of `ErrorBody`.

A user program's own exception is not an HTTP error (it is part of the trace, returned with 200);
only a bad request, a missing resource, overload or a server fault come through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("gradwalk.errors")


class ErrorBody(BaseModel):
    """What every error response carries."""

    status: int = Field(description="the HTTP status code, repeated for clients that only see the body")
    error: str = Field(description="stable machine-readable code, e.g. not_found, too_large, rate_limited")
    message: str = Field(description="one human-readable sentence")
    detail: list[dict[str, Any]] | None = Field(None, description="per-field problems of a 422, else null")
    request_id: str | None = Field(None, description="the X-Request-ID of this request, for the logs")


# Codes by status; anything not listed falls back to the status phrase in snake case.
CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def code_for(status: int) -> str:
    if status in CODES:
        return CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(
    status: int, message: str, *, detail: list[dict[str, Any]] | None = None, request_id: str | None = None
) -> dict[str, Any]:
    return ErrorBody(status=status, error=code_for(status), message=message, detail=detail, request_id=request_id).model_dump()


def error_response(
    status: int,
    message: str,
    *,
    detail: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> JSONResponse:
    body = error_body(status, message, detail=detail, request_id=request_id)
    return JSONResponse(body, status_code=status, headers=headers)


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def wants_page(request: Request) -> bool:
    """A browser opening a page (not the API, not a script): it gets an HTML page for an error."""
    path = request.url.path
    if request.method != "GET" or path.startswith(("/api/", "/openapi", "/docs", "/static/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept


# The order an Allow header lists methods in; the router's come from a set, in no fixed order.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed(allow: str) -> str:
    """An Allow header's methods in a fixed order, with HEAD wherever GET is (middleware.HeadAsGet answers it)."""
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods, key=lambda m: (METHODS.index(m) if m in METHODS else len(METHODS), m)))


def _http_error_with(page: Callable[[Request, int, str], Response] | None) -> Callable[..., Any]:
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else code_for(exc.status_code).replace("_", " ")
        headers = dict(exc.headers or {})
        allow = next((headers.pop(k) for k in list(headers) if k.lower() == "allow"), None)
        if exc.status_code == 405 and allow is not None:
            headers["Allow"] = allowed(allow)
            message = f"This route answers {headers['Allow']} only."
        if page is not None and wants_page(request):
            response = page(request, exc.status_code, message)
            response.headers.update(headers)
            return response
        return error_response(exc.status_code, message, headers=headers, request_id=_request_id(request))

    return _http_error


def _clean(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Drop the echoed input (it can be a 64 KiB program) and pydantic's doc URL; keep loc/msg/type.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]


# Where a request's invalid part was (the first item of a 422's loc), as its sentence names it.
PLACES = {"path": "path parameter", "query": "query parameter", "header": "header", "cookie": "cookie"}


def _invalid(detail: list[dict[str, Any]]) -> str:
    """The 422's sentence: the query parameter, path parameter, header or cookie by name, else the body."""
    names: dict[str, list[str]] = {}
    body = False
    for problem in detail:
        loc = problem["loc"]
        if len(loc) >= 2 and loc[0] in PLACES:
            found = names.setdefault(loc[0], [])
            if str(loc[1]) not in found:
                found.append(str(loc[1]))
        else:
            body = True
    parts = [f"the {PLACES[place]}{'s' if len(found) > 1 else ''} {_and(found)}" for place, found in names.items()]
    if body or not parts:
        parts.append("the request body")
    plural = len(parts) > 1 or any(len(found) > 1 for found in names.values())
    text = _and(parts)
    return f"{text[0].upper()}{text[1:]} {'are' if plural else 'is'} not valid."


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


MAX_DETAIL = 20  # problems listed in a 422: a screenful, however many a hostile body has


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = jsonable_encoder(_clean(list(exc.errors())))
    message = _invalid(detail)
    if len(detail) > MAX_DETAIL:
        message = f"{message[:-1]} ({MAX_DETAIL} of its {len(detail):,} problems are listed)."
    return error_response(422, message, detail=detail[:MAX_DETAIL], request_id=_request_id(request))


def _database_error_with(http_error: Callable[..., Any]) -> Callable[..., Any]:
    async def _database_error(request: Request, exc: SQLAlchemyError) -> Response:
        """The share store did not answer: the server's trouble, for a while, not a crash (503)."""
        log.warning("database unavailable", exc_info=True, extra={"request_id": _request_id(request)})
        unavailable = StarletteHTTPException(
            503, "The share store is unavailable; try again shortly.", headers={"Retry-After": "5"}
        )
        return await http_error(request, unavailable)

    return _database_error


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"request_id": _request_id(request)})
    return error_response(500, "Internal server error.", request_id=_request_id(request))


def install(app: FastAPI, page: Callable[[Request, int, str], Response] | None = None) -> None:
    """Route every error the app can raise through `error_body`; with `page`, a browser opening a
    page gets `page(request, status, message)` instead (the same status and sentence, as HTML)."""
    http_error = _http_error_with(page)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, _database_error_with(http_error))
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]  # Starlette types a handler for Exception; this one takes the subclass it is registered for
    app.add_exception_handler(Exception, _server_error)
