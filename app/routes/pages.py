"""The HTML pages: the app, a shared graph, and the chrome-less embed (the trace is embedded once as JSON),
and the page's download of the one-file offline player, built by app/export.py like the CLI's."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from .. import export
from ..models import Trace
from ..paths import TEMPLATES_DIR
from ..store import Share, Store
from .api import PoolDep, TraceRequest, rate_limit, run_program
from .examples import examples

LANGS = ("en", "zh")
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def accepted_lang(header: str) -> Literal["en", "zh"] | None:
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
        if primary in LANGS and q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, primary)
    return best[2] if best else None  # type: ignore[return-value]


def pick_lang(request: Request) -> tuple[str, bool]:
    """(lang, whether to remember it in the cookie): ?lang= wins, then the cookie, then Accept-Language."""
    query = request.query_params.get("lang")
    if query in LANGS:
        return query, True
    cookie = request.cookies.get("lang")
    if cookie in LANGS:
        return cookie, False
    return accepted_lang(request.headers.get("accept-language", "")) or "en", False


def _share_dict(share: Share) -> dict[str, Any]:
    return {
        "id": share.id,
        "title": share.title,
        "source": share.source,
        "created_at": share.created_at.isoformat(),
    }


def render(request: Request, template: str, share: Share | None) -> HTMLResponse:
    lang, remember = pick_lang(request)
    context = {
        "trace": share.trace.model_dump(mode="json") if share else None,
        "share": _share_dict(share) if share else None,
        "lang": lang,
        "examples": [e.model_dump() for e in examples()],
    }
    response = templates.TemplateResponse(request, template, context)
    response.headers["content-language"] = lang
    if remember:
        response.set_cookie("lang", lang, max_age=LANG_COOKIE_MAX_AGE_S, samesite="lax")
    return response


_ERROR_TEXT = {  # (heading, link home) by language; the message itself is the error's own sentence
    "en": {404: "Nothing here", None: "Something went wrong", "home": "Open gradwalk"},
    "zh": {404: "这里什么也没有", None: "出了点问题", "home": "打开 gradwalk"},
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """What a browser opening a page gets for an error (REST clients keep the JSON error shape)."""
    lang, _ = pick_lang(request)
    text = _ERROR_TEXT[lang]
    context = {"lang": lang, "status": status, "message": message, "heading": text.get(status, text[None]), "home": text["home"]}
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers["content-language"] = lang
    return response


async def _load(request: Request, share_id: str) -> Share:
    store: Store = request.app.state.store
    share = await run_in_threadpool(store.load, share_id)
    if share is None:
        raise HTTPException(404, "No share with this id.")
    return share


@router.get("/", response_class=HTMLResponse, name="index_page")
async def index(request: Request) -> HTMLResponse:
    return render(request, "index.html", None)


@router.get("/s/{share_id}", response_class=HTMLResponse, name="share_page")
async def share_page(request: Request, share_id: str) -> HTMLResponse:
    return render(request, "share.html", await _load(request, share_id))


@router.get("/embed/{share_id}", response_class=HTMLResponse, name="embed_page")
async def embed_page(request: Request, share_id: str) -> HTMLResponse:
    return render(request, "embed.html", await _load(request, share_id))


# --- the offline player as one HTML file (the page's HTML button) -------------------------------------

Lang = Literal["en", "zh"]
Direction = Literal["auto", "TB", "LR"]


class ExportRequest(TraceRequest):
    step: int | None = Field(None, description="the step the file opens at (None: the last; negative: from the end)")
    lang: Lang = "en"
    direction: Direction = "auto"


async def _export(trace: Trace, step: int | None, lang: str, direction: str, name: str) -> Response:
    try:
        document = await run_in_threadpool(export.html, trace, step, lang, direction)
    except export.ExportError as e:  # the front-end bundle is missing: the server was set up without it
        raise HTTPException(503, f"The export is unavailable: {e}") from None
    return Response(
        document,
        media_type="text/html; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.html"'},
    )


@router.get("/s/{share_id}/export.html", name="share_export")
async def share_export(
    request: Request,
    share_id: str,
    step: Annotated[int | None, Query()] = None,
    lang: Lang = "en",
    direction: Direction = "auto",
) -> Response:
    """A saved share's trace (not run again) as the offline player."""
    share = await _load(request, share_id)
    return await _export(share.trace, step, lang, direction, f"gradwalk-{share.id}")


@router.post("/export.html", name="program_export", dependencies=[Depends(rate_limit)])
async def program_export(body: ExportRequest, pool: PoolDep) -> Response:
    """The page's current program, run again in the sandbox (as Share does), as the offline player."""
    trace = await run_program(pool, body.source)
    return await _export(trace, body.step, body.lang, body.direction, "gradwalk")
