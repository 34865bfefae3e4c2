"""The page in a real headless Chromium (Debian's, driven by Playwright; no browser downloads),
against a real `gradwalk serve` on a loopback port (tests/conftest.py's `module_serve`).

Every page a test opens is watched: any request to a host other than 127.0.0.1 is blocked and fails
the test, and so does any console error, page error or JavaScript dialog (alert() = injected script).
Screenshots go to test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.export import CHROMIUM, CHROMIUM_ARGS  # one place says how we start Chromium
from tests.conftest import ROOT, need

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
VIEWPORT = {"width": 1400, "height": 860}


# Module scope, not session: while Playwright's sync API is open it holds an event loop in the main
# thread, and later test modules that call asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        need(f"Chromium at {CHROMIUM} (Debian package chromium)")
    if not (ROOT / "static" / "dist" / "vendor.js").exists():
        need("the front-end bundle static/dist/vendor.js (`make frontend`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Running:
    url: str


@pytest.fixture(scope="module")
def server(request):  # type: ignore[no-untyped-def]
    """One real `gradwalk serve` for the module's tests (or, for a developer, GRADWALK_E2E_URL's server)."""
    if os.environ.get("GRADWALK_E2E_URL"):
        return Running(os.environ["GRADWALK_E2E_URL"].rstrip("/"))
    return request.getfixturevalue("module_serve")()


@dataclass
class Watched:
    """A page plus what it did that a test must not see."""

    page: object
    base: str
    name: str
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str = "/") -> object:
        self.page.goto(self.base + path)  # type: ignore[attr-defined]
        self.page.wait_for_selector("body[data-mode]")  # type: ignore[attr-defined]
        return self.page

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.wait_for_timeout(350)  # let the nodes' fade-in finish  # type: ignore[attr-defined]
        self.page.screenshot(path=str(path))  # type: ignore[attr-defined]
        return path


@pytest.fixture
def watched(browser, server, request) -> Iterator[Watched]:  # type: ignore[no-untyped-def]
    # Indirect parameters are the context's own options: a phone's viewport, touch and is_mobile.
    options = {"viewport": VIEWPORT, "locale": "en-US", **getattr(request, "param", {})}
    context = browser.new_context(**options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    w = Watched(page, server.url, request.node.name.replace("/", "_").replace("[", "-").replace("]", ""))

    def route(r):  # type: ignore[no-untyped-def]
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            w.outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and w.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: w.errors.append(f"pageerror: {e}"))

    def dialog(d):  # type: ignore[no-untyped-def]
        w.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    yield w
    try:
        w.shot("final")
    finally:
        context.close()
    assert not w.outside, f"requests left 127.0.0.1: {w.outside}"
    assert not w.errors, f"console errors: {w.errors}"
    assert not w.dialogs, f"script ran a dialog: {w.dialogs}"
