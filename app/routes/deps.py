"""What the routes depend on, as typed aliases (`SettingsDep`, `StoreDep`, `PoolDep`, `ClientDep`,
`ShareDep`), and the two steps every running route shares: spending the client's run budget and
running the program in its turn."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..config import Settings
from ..models import Job
from ..offload import offload
from ..ratelimit import RateLimiter, SharedRateLimiter
from ..sandbox import QueueFull, SandboxPool, SandboxUnavailable, TraceDocument
from ..store import Share, Store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_pool(request: Request) -> SandboxPool:
    return request.app.state.pool


def get_client(request: Request) -> str:
    """The client's address, as the proxy-aware middleware found it: the key of its run budget and its queue."""
    return request.client.host if request.client else "unknown"


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
