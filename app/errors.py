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


def _http_error_with(page: Callable[[Request, int, str], Response] | None) -> Callable[..., Any]:
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else code_for(exc.status_code).replace("_", " ")
        if page is not None and wants_page(request):
            response = page(request, exc.status_code, message)
            response.headers.update(exc.headers or {})
            return response
        return error_response(exc.status_code, message, headers=exc.headers, request_id=_request_id(request))

    return _http_error


def _clean(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Drop the echoed input (it can be a 64 KiB program) and pydantic's doc URL; keep loc/msg/type.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = jsonable_encoder(_clean(list(exc.errors())))
    return error_response(422, "The request body is not valid.", detail=detail, request_id=_request_id(request))


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
