"""The web app: `create_app(settings=None)` builds it; `gradwalk serve` runs it under uvicorn.

The app keeps no state in process beyond caches and the rate limiter: shares live in the store
(SQLite or PostgreSQL), so any number of replicas can serve the same shares.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware

from . import errors
from .config import Settings
from .csp import hash_source
from .middleware import PAGE_CSP, AllowedHosts, BodyLimit, ClientAddress, HeadAsGet, RequestContext, TrustedProxies
from .offload import GZIP_LEVEL
from .paths import STATIC_DIR
from .ratelimit import RateLimiter, SharedRateLimiter
from .routes import api, check, pages
from .sandbox import SandboxPool
from .store import Store

GZIP_MIN_BYTES = 1024  # smaller responses go out as they are
SWAGGER_DIR = "/static/dist/swagger"  # Swagger UI from npm (frontend/build.mjs), not FastAPI's default CDN


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; every test builds its own with its own settings and database."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.from_settings(settings)
        try:
            await run_in_threadpool(store.migrate)
            if store.dialect == "postgresql":  # replicas share one budget per client
                app.state.rate_limiter = SharedRateLimiter(store.engine, settings.rate_limit_per_minute)
            pool = SandboxPool(settings)
            await pool.start()  # strict mode: raises SandboxUnavailable, and the server does not start
            try:
                app.state.store, app.state.pool = store, pool
                yield
            finally:
                await pool.close()
        finally:
            store.close()

    app = FastAPI(
        title="gradwalk",
        version=api.VERSION,
        summary="Run a PyTorch program in a sandbox and get its real autograd graph, step by step.",
        lifespan=lifespan,
        docs_url=None,  # served below, with a Content-Security-Policy that pins its one inline script
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    errors.install(app, page=pages.error_page)
    app.include_router(api.router)
    app.include_router(check.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        return swagger_ui()

    # Outermost last: RequestContext sees every response, including BodyLimit's 413 and the 400s of
    # ClientAddress and AllowedHosts; GZip packs what goes out (a 5,000-node trace: 3.8 MB -> 0.24 MB
    # at level 1, in a worker thread past 128 KiB; fonts are left alone). HeadAsGet innermost: the
    # access log says HEAD.
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ClientAddress, proxies=TrustedProxies(settings.forwarded_allow_ips))
    app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)
    app.add_middleware(RequestContext)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    return app


def swagger_ui() -> HTMLResponse:
    """FastAPI's Swagger UI page on the bundle `make frontend` copied from npm (no CDN), with a CSP
    allowing the app's own assets and the hash of the page's one inline script."""
    response = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="gradwalk API",
        swagger_js_url=f"{SWAGGER_DIR}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_DIR}/swagger-ui.css",
        swagger_favicon_url="/static/img/favicon.svg",
    )
    html = bytes(response.body).decode()
    hashes = " ".join(hash_source(script) for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL))
    response.headers["content-security-policy"] = PAGE_CSP.replace("script-src 'self'", f"script-src 'self' {hashes}")
    return response
