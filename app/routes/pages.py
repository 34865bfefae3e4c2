"""The HTML pages: the app, a shared graph, and the chrome-less embed. The trace is embedded once as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.routes.examples import examples
from app.store import Share, Store

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
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
