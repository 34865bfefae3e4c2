"""The JSON API: trace a program, save and load shares, the example gallery, health."""

from __future__ import annotations

import importlib.metadata
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from ..config import Settings
from ..errors import ErrorBody
from ..models import Trace
from .examples import Example, examples
from .ratelimit import RateLimiter, SharedRateLimiter
from ..sandbox import QueueFull, SandboxPool, SandboxUnavailable
from ..store import TITLE_MAX_CHARS, Share, Store

router = APIRouter(prefix="/api", tags=["api"])


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_pool(request: Request) -> SandboxPool:
    return request.app.state.pool


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
PoolDep = Annotated[SandboxPool, Depends(get_pool)]


def rate_limit(request: Request) -> None:
    """Spend one run of this client address's budget, or answer 429."""
    limiter: RateLimiter | SharedRateLimiter = request.app.state.rate_limiter
    client = request.client.host if request.client else "unknown"
    retry_after_s = limiter.take(client)
    if retry_after_s is not None:
        raise HTTPException(
            429,
            f"Too many runs from this address: the limit is {limiter.per_minute} per minute.",
            headers={"Retry-After": str(retry_after_s)},
        )


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded to UTF-8 anywhere downstream.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


class TraceRequest(BaseModel):
    source: str = Field(description="the Python program to run and trace")

    _check_source = field_validator("source")(_text)


class ShareRequest(BaseModel):
    source: str = Field(description="the Python program to run, trace and save")
    title: str | None = Field(None, max_length=TITLE_MAX_CHARS, description="shown above the shared graph")

    _check_source = field_validator("source")(_text)

    @field_validator("title")
    @classmethod
    def _check_title(cls, value: str | None) -> str | None:
        return None if value is None else _text(value)


class ShareCreated(BaseModel):
    id: str
    url: str = Field(description="the page of the shared graph")
    embed_url: str = Field(description="the same graph without the app around it, for an iframe")


class ShareOut(BaseModel):
    id: str
    title: str | None
    source: str
    trace: Trace
    created_at: datetime


class Health(BaseModel):
    version: str
    torch_version: str
    sandbox_mode: str
    protections: dict[str, bool] = Field(description="each sandbox protection and whether it is active")
    in_flight: int = Field(description="runs executing now")
    queued: int = Field(description="runs waiting for a slot")
    database: str = Field(description="the store's SQL dialect: sqlite or postgresql")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version("gradwalk")
TORCH_VERSION = _version("torch")  # from metadata: the web process never imports torch


def _json(text: str, status: int = 200) -> Response:
    return Response(content=text, status_code=status, media_type="application/json")


async def run_program(pool: SandboxPool, source: str) -> Trace:
    """The program's trace from the sandbox; a full queue is a 429, a broken sandbox a 503 (for every route that runs one)."""
    try:
        return await pool.run(source)
    except QueueFull as e:
        raise HTTPException(
            429,
            "The server is busy running other programs; try again shortly.",
            headers={"Retry-After": str(max(1, int(e.retry_after_s)))},
        ) from None
    except SandboxUnavailable as e:
        raise HTTPException(503, f"The sandbox is unavailable: {e}", headers={"Retry-After": "5"}) from None


@router.post(
    "/trace",
    response_model=Trace,
    dependencies=[Depends(rate_limit)],
    responses=_errors(413, 422, 429, 503),
    summary="Run a program in the sandbox and return its trace",
)
async def trace(body: TraceRequest, pool: PoolDep) -> Response:
    """A program that raises, times out or is killed still gets 200, with `status` saying so."""
    started = time.perf_counter()
    result = await run_program(pool, body.source)
    sandbox_ms = (time.perf_counter() - started) * 1000
    response = _json(result.model_dump_json())  # already validated at the sandbox boundary: no second pass
    response.headers["server-timing"] = f"sandbox;dur={sandbox_ms:.2f}"  # the rest of `app` is the web layer
    return response


@router.post(
    "/share",
    status_code=201,
    response_model=ShareCreated,
    dependencies=[Depends(rate_limit)],
    responses=_errors(413, 422, 429, 503),
    summary="Run a program, save it with its trace, and return its links",
)
async def share(body: ShareRequest, request: Request, pool: PoolDep, store: StoreDep) -> ShareCreated:
    result = await run_program(pool, body.source)
    saved: Share = await run_in_threadpool(store.save, body.source, body.title, result)
    return ShareCreated(
        id=saved.id,
        url=str(request.url_for("share_page", share_id=saved.id)),
        embed_url=str(request.url_for("embed_page", share_id=saved.id)),
    )


@router.get(
    "/share/{share_id}",
    response_model=ShareOut,
    responses=_errors(404),
    summary="A saved share: its program, title, trace and creation time",
)
async def get_share(share_id: str, store: StoreDep) -> Response:
    saved = await run_in_threadpool(store.load, share_id)
    if saved is None:
        raise HTTPException(404, "No share with this id.")
    out = ShareOut(id=saved.id, title=saved.title, source=saved.source, trace=saved.trace, created_at=saved.created_at)
    return _json(out.model_dump_json())


@router.get("/examples", response_model=list[Example], summary="The example gallery, in English and Chinese")
async def get_examples() -> list[Example]:
    return list(examples())


@router.get("/health", response_model=Health, summary="Version, sandbox protections and load")
async def health(settings: SettingsDep, pool: PoolDep, store: StoreDep) -> Health:
    return Health(
        version=VERSION,
        torch_version=TORCH_VERSION,
        sandbox_mode=str(getattr(pool, "mode", settings.sandbox.sandbox_mode)),
        protections=dict(pool.protections()),
        in_flight=int(pool.in_flight),
        queued=int(pool.queued),
        database=store.dialect,
    )
