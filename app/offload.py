"""Byte-heavy work of the web process (gzip, the share store's compressed rows) on threads of their own,
below the event loop's CPU priority, so that a 30 MB share being read or written never delays
`/api/health` or the next student's run.

The threads only call zlib and the database driver, which let go of the GIL while they work: a
thread of low priority must not hold the GIL while the scheduler leaves it waiting for a core.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, TypeVar

from starlette.responses import Response, StreamingResponse

from . import splice

THREADS = 4
NICE = 10  # per thread (Linux): the event loop's thread stays at the process's own priority
GZIP_MIN_BYTES = 128 * 1024  # below this, the GZip middleware compresses in place (it is quick)
GZIP_LEVEL = 1  # zlib's fastest: most of the gain on traces, at a fraction of level 9's time

P = ParamSpec("P")
R = TypeVar("R")


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except OSError:
        pass


_pool = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="gradwalk-offload", initializer=_lower_priority)


async def offload(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` on a low-priority thread."""
    return await asyncio.get_running_loop().run_in_executor(_pool, lambda: fn(*args, **kwargs))


def _gzip(body: bytes) -> bytes:
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(body) + packer.flush()


async def encoded(body: bytes, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """A big response body gzip-compressed here (when the client takes gzip), with its headers; the
    GZip middleware leaves an encoded body alone and packs small ones itself."""
    if len(body) < GZIP_MIN_BYTES or "gzip" not in accept_encoding:
        return body, {}
    return await offload(_gzip, body), {"content-encoding": "gzip", "vary": "Accept-Encoding"}


async def spliced(head: bytes, packed: bytes, tail: bytes, accept_encoding: str, media_type: str) -> Response:
    """The response `head + trace + tail`, the trace a share's stored gzip (`splice.pack`): spliced as
    it is for a client that takes gzip (the GZip middleware leaves it alone), else decompressed here a
    piece at a time and streamed, never held whole."""
    if "gzip" in accept_encoding:
        body = await offload(splice.around, head, packed, tail)
        return Response(body, media_type=media_type, headers={"content-encoding": "gzip", "vary": "Accept-Encoding"})
    return StreamingResponse(_plain(head, packed, tail), media_type=media_type, headers={"vary": "Accept-Encoding"})


async def _plain(head: bytes, packed: bytes, tail: bytes) -> AsyncIterator[bytes]:
    yield head
    pieces = splice.pieces(packed)
    while (piece := await offload(next, pieces, None)) is not None:
        yield piece
    yield tail
