"""The HTML pages: the app, a shared graph, and the chrome-less embed (the trace is embedded once as JSON),
and the page's download of the one-file offline player, built by app/export.py like the CLI's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from .. import export, i18n
from ..gallery import examples
from ..models import Trace
from ..offload import encoded, spliced
from ..paths import TEMPLATES_DIR
from ..store import Share
from .api import TraceRequest
from .deps import ClientDep, PoolDep, ProgramRoute, ShareDep, rate_limit, trace_document
from .whatif import job, refuse_rejected

router = APIRouter(include_in_schema=False, route_class=ProgramRoute)  # POST /export.html carries a program
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def accepted_lang(header: str) -> i18n.Lang | None:
    """The first of en/zh by the Accept-Language header's q-values, or None."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in i18n.LANGS and q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, primary)
    return best[2] if best else None  # type: ignore[return-value]  # primary is one of i18n.LANGS


def pick_lang(request: Request) -> str:
    """?lang= (this page only), then the cookie the toggle writes, then Accept-Language."""
    query = request.query_params.get("lang")
    if query in i18n.LANGS:
        return query
    cookie = request.cookies.get(i18n.COOKIE)
    if cookie in i18n.LANGS:
        return cookie
    return accepted_lang(request.headers.get("accept-language", "")) or "en"


def _share_dict(share: Share) -> dict[str, Any]:
    return {
        "id": share.id,
        "title": share.title,
        "source": share.source,
        "created_at": share.created_at.isoformat(),
    }


def _context(lang: str, **context: Any) -> dict[str, Any]:
    """Template context: the language, its text (t) and the page's i18n data for static/js/i18n.js."""
    return {"lang": lang, "t": functools.partial(i18n.text, lang), "i18n": i18n.page_data(), **context}


# Where a share's trace goes in a rendered page: the stored document, spliced in as it is (it is
# HTML-safe JSON, see app.sandbox.boundary), still compressed (app.splice), never parsed and written
# again. Nothing rendered contains it otherwise: NUL is escaped in every JSON the templates write.
_TRACE_SLOT = "\x00gradwalk-trace\x00"


async def render(request: Request, template: str, share: Share | None) -> Response:
    # A ?lang= is this page's only: it is not remembered (an embed would turn every other page Chinese).
    lang = pick_lang(request)
    context = _context(
        lang,
        request=request,
        trace_json=Markup(_TRACE_SLOT if share else "null"),
        share=_share_dict(share) if share else None,
        examples=[e.model_dump() for e in examples()],
        timeout_s=request.app.state.settings.sandbox.timeout_s,  # the app says it while a program runs
    )
    page = templates.get_template(template).render(context).encode("utf-8")
    accept_encoding = request.headers.get("accept-encoding", "")
    if share is not None:
        head, _, tail = page.partition(_TRACE_SLOT.encode())
        response = await spliced(head, share.trace_gzip, tail, accept_encoding, HTMLResponse.media_type)
    else:
        body, headers = await encoded(page, accept_encoding)
        response = HTMLResponse(body, headers=headers)
    response.headers["content-language"] = lang
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """What a browser opening a page gets for an error (REST clients keep the JSON error shape)."""
    lang = pick_lang(request)
    heading = i18n.text(lang, "error.404" if status == 404 else "error.other")
    context = _context(lang, status=status, message=message, heading=heading, home=i18n.text(lang, "error.home"))
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers["content-language"] = lang
    return response


@router.get("/", response_class=HTMLResponse, name="index_page")
async def index(request: Request) -> Response:
    return await render(request, "index.html", None)


@router.get("/s/{share_id}", response_class=HTMLResponse, name="share_page")
async def share_page(request: Request, share: ShareDep) -> Response:
    return await render(request, "share.html", share)


@router.get("/embed/{share_id}", response_class=HTMLResponse, name="embed_page")
async def embed_page(request: Request, share: ShareDep) -> Response:
    return await render(request, "embed.html", share)


# --- the offline player as one HTML file (the page's HTML button) -------------------------------------


class ExportRequest(TraceRequest):
    step: int | None = Field(None, description="the step the file opens at (None: the last; negative: from the end)")
    lang: i18n.Lang = "en"
    direction: export.Direction = "auto"


async def _export(trace_of: Callable[[], Trace], step: int | None, lang: str, direction: str, name: str) -> Response:
    """`trace_of()` parses the document: in the worker thread, with the export, not on the event loop."""
    try:
        document = await run_in_threadpool(lambda: export.html(trace_of(), step, lang, direction))
    except export.ExportError as e:  # the front-end bundle is missing: the server was set up without it
        raise HTTPException(503, f"The export is unavailable: {e}") from None
    return Response(
        document,
        media_type="text/html; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.html"'},
    )


@router.get("/s/{share_id}/export.html", name="share_export")
async def share_export(
    share: ShareDep,
    step: Annotated[int | None, Query()] = None,
    lang: i18n.Lang = "en",
    direction: export.Direction = "auto",
) -> Response:
    """A saved share's trace (not run again) as the offline player."""
    return await _export(share.trace, step, lang, direction, f"gradwalk-{share.id}")


@router.post("/export.html", name="program_export", dependencies=[Depends(rate_limit)])
async def program_export(body: ExportRequest, pool: PoolDep, client: ClientDep) -> Response:
    """The page's current program, run again in the sandbox (as Share does), as the offline player."""
    document = await trace_document(pool, body.source, client, job(body.overrides))  # a what-if exports as shown
    refuse_rejected(document, body.overrides)
    return await _export(document.trace, body.step, body.lang, body.direction, "gradwalk")
