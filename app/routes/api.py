"""The JSON API: trace a program, save and load shares, the example gallery, health."""

from __future__ import annotations

import importlib.metadata
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import Settings
from ..errors import ErrorBody
from ..gallery import Example, examples
from ..models import Trace
from ..offload import encoded, offload, spliced
from ..paths import EXAMPLES_DIR
from ..sandbox.policy import RunMemory
from ..store import TITLE_MAX_CHARS, Share
from .deps import PROGRAM_BODY_DOC, ClientDep, PoolDep, ProgramRoute, SettingsDep, ShareDep, StoreDep, rate_limit, trace_document
from .whatif import Overrides, job, refuse_rejected

router = APIRouter(prefix="/api", tags=["api"], route_class=ProgramRoute)
# What Swagger's "Try it out" sends: the seed notebook's chain, which runs (its default {"source": "string"} would not).
EXAMPLE_SOURCE = (EXAMPLES_DIR / "seed_5_chain.py").read_text(encoding="utf-8")


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
    model_config = ConfigDict(json_schema_extra={"examples": [{"source": EXAMPLE_SOURCE}]})

    source: str = Field(description="the Python program to run and trace")
    overrides: Overrides

    _check_source = field_validator("source")(_text)


class ShareRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"source": EXAMPLE_SOURCE, "title": "A backward pass through a chain"}]}
    )

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
    missing: dict[str, str] = Field(description="why each protection that is not active is not (e.g. no cgroup per run)")
    run_memory: RunMemory = Field(
        description="what keeps one run's memory from its neighbours' beyond its address space: a memory cgroup "
        "per run (cgroup_v2, cgroup_v1: in-memory files, tmpfs and shared memory count there), or, without one, "
        "in-memory files and System V shared memory refused and the tmpfs at scratch_mb (refused); none in dev "
        "mode without seccomp"
    )
    in_flight: int = Field(description="runs executing now")
    queued: int = Field(description="runs waiting for a slot")
    database: str = Field(description="the store's SQL dialect: sqlite or postgresql")


class _ShareFields(BaseModel):
    """ShareOut without its trace: the trace is spliced in as the stored JSON, never parsed again."""

    id: str
    title: str | None
    source: str
    created_at: datetime


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version("gradwalk")
TORCH_VERSION = _version("torch")  # from metadata: the web process never imports torch


async def _json(request: Request, content: bytes) -> Response:
    body, headers = await encoded(content, request.headers.get("accept-encoding", ""))
    return Response(content=body, media_type="application/json", headers=headers)


def share_json_around(share: Share) -> tuple[bytes, bytes]:
    """ShareOut's JSON before and after its trace, which is spliced in as it is stored (app.splice)."""
    fields = _ShareFields(id=share.id, title=share.title, source=share.source, created_at=share.created_at)
    return fields.model_dump_json().encode()[:-1] + b',"trace":', b"}"


def share_links(settings: Settings, share_id: str) -> ShareCreated:
    """Links to a share: relative, or absolute on `public_url`; never built from the request's Host header."""
    base = (settings.public_url or "").rstrip("/")
    return ShareCreated(id=share_id, url=f"{base}/s/{share_id}", embed_url=f"{base}/embed/{share_id}")


@router.post(
    "/trace",
    response_model=Trace,
    dependencies=[Depends(rate_limit)],
    responses=_errors(400, 403, 413, 415, 422, 429, 503),
    summary="Run a program in the sandbox and return its trace",
    openapi_extra=PROGRAM_BODY_DOC,
)
async def trace(request: Request, body: TraceRequest, pool: PoolDep, client: ClientDep) -> Response:
    """A program that raises, times out or is killed still gets 200, with `status` saying so."""
    started = time.perf_counter()
    document = await trace_document(pool, body.source, client, job(body.overrides))
    refuse_rejected(document, body.overrides)  # 422: a name the program does not bind, a value that does not fit
    sandbox_ms = (time.perf_counter() - started) * 1000
    response = await _json(request, document.json)  # checked and written at the sandbox's boundary: no second pass
    # The rest of `app` is the web layer; the sandbox's time by phase (queue, start, run, check) beside it.
    phases = "".join(f", {name};dur={ms:.2f}" for name, ms in document.timing_ms.items())
    response.headers["server-timing"] = f"sandbox;dur={sandbox_ms:.2f}{phases}"
    return response


@router.post(
    "/share",
    status_code=201,
    response_model=ShareCreated,
    dependencies=[Depends(rate_limit)],
    responses=_errors(400, 403, 413, 415, 422, 429, 503),
    summary="Run a program, save it with its trace, and return its links",
    openapi_extra=PROGRAM_BODY_DOC,
)
async def share(body: ShareRequest, settings: SettingsDep, pool: PoolDep, store: StoreDep, client: ClientDep) -> ShareCreated:
    document = await trace_document(pool, body.source, client)
    if len(document.json) > settings.max_share_bytes:
        raise HTTPException(
            413,
            f"This trace is {len(document.json):,} bytes: too big to share (max_share_bytes is {settings.max_share_bytes:,}). "
            "POST /api/trace still returns it.",
        )
    saved: Share = await offload(store.save, body.source, body.title, document.json)
    return share_links(settings, saved.id)


@router.get(
    "/share/{share_id}",
    response_model=ShareOut,
    responses=_errors(404),
    summary="A saved share: its program, title, trace and creation time",
)
async def get_share(request: Request, saved: ShareDep) -> Response:
    head, tail = share_json_around(saved)
    return await spliced(head, saved.trace_gzip, tail, request.headers.get("accept-encoding", ""), "application/json")


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
        missing=dict(pool.protection_errors()),
        run_memory=pool.run_memory(),
        in_flight=int(pool.in_flight),
        queued=int(pool.queued),
        database=store.dialect,
    )
