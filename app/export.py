"""Teacher exports of a trace: one self-contained HTML file, and SVG / PNG of one step.

All three come from the page's own code. The HTML inlines static/dist/standalone.js (the page's
layout, render, timeline, player and caption modules, bundled at set-up time by `make frontend`),
static/css/app.css, the bundled fonts its text needs (static/dist/fonts.css, as data: URLs) and the
trace. SVG and PNG open that same file in headless Chromium, go to the
step, and serialize (or screenshot) the graph it draws: no second renderer that could drift from
the page. Never imports torch; the trace comes from the sandbox (app.sandbox.trace_in_sandbox).
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import fontsubset, i18n
from .csp import hash_source
from .models import Trace
from .paths import STATIC_DIR

BUNDLE = STATIC_DIR / "dist" / "standalone.js"
STYLESHEETS = [STATIC_DIR / "css" / "app.css", STATIC_DIR / "css" / "standalone.css"]
FONTS = STATIC_DIR / "dist" / "fonts.json"  # the @font-face rules with their ranges parsed by fonts.js (frontend/build.mjs)
CHROMIUM = os.environ.get("GRADWALK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
PNG_SCALE = 2  # device pixels per CSS pixel: sharp on projectors and in slide software
# Chromium captures no screenshot wider or taller than this (device px), and a big one costs 4 bytes a
# pixel: a larger graph is drawn at a smaller scale, and the CLI says so (png_scaled).
PNG_MAX_SIDE_PX = 16_384
PNG_MAX_AREA_PX = 134_217_728
LOAD_TIMEOUT_MS = 60_000


class ExportError(Exception):
    """The export could not be made (a missing bundle or browser, or a step out of range)."""


def _json_in_html(value: Any) -> str:
    # As Jinja's tojson: nothing in the data can close the <script> element that carries it.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")


def _fonts(style: str, text: str) -> str:
    """The bundled @font-face rules that draw `text` under the font stacks of `style` (its --font and --mono),
    each file inlined as a data: URL: per character, the first family of a stack with a face that holds it
    (fonts.js picks the same faces for an SVG's text)."""
    if not FONTS.exists():
        raise ExportError(f"missing {FONTS}: run `make frontend` first")
    faces = [(f["family"], f["ranges"], f["rule"]) for f in json.loads(FONTS.read_text(encoding="utf-8"))]
    stacks = [[f.strip().strip("\"'") for f in s.split(",")] for s in re.findall(r"--(?:font|mono):\s*([^;]+);", style)]
    chars = {ord(c) for c in set(text) if ord(c) > 32}
    keep: set[str] = set()
    for stack in stacks:
        for c in chars:
            for family in stack:
                hits = [rule for name, ranges, rule in faces if name == family and any(lo <= c <= hi for lo, hi in ranges)]
                if hits:
                    keep.add(hits[-1])  # of faces that overlap, the browser takes the one declared last
                    break

    def inline(rule: str, ranges: list[tuple[int, int]]) -> str:
        # Each face cut down to the characters of its range that are shown (the space too).
        held = frozenset(c for c in chars | {0x20} if any(lo <= c <= hi for lo, hi in ranges))
        data = fontsubset.subset(FONTS.parent / re.search(r"url\(([^)]+)\)", rule)[1], held)  # type: ignore[index]  # every rule of our own fonts.css has a url()
        return re.sub(r"url\([^)]+\)", "url(data:font/woff2;base64," + base64.b64encode(data).decode() + ")", rule)

    return "\n".join(inline(rule, ranges) for _, ranges, rule in faces if rule in keep)


def html(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto") -> str:
    """One HTML file that plays the trace offline, opening at `step` (None: the last; negative: from the end)."""
    if not BUNDLE.exists():
        raise ExportError(f"missing {BUNDLE}: run `make frontend` first")
    script = BUNDLE.read_text(encoding="utf-8")
    if "</script" in script.lower():
        raise ExportError("the bundle contains </script and cannot be inlined")
    style = "\n".join(p.read_text(encoding="utf-8") for p in STYLESHEETS)
    language = "zh" if lang == "zh" else "en"
    options = {"step": step, "lang": language, "direction": direction}
    data = _json_in_html(json.loads(trace.model_dump_json()))
    strings = _json_in_html(i18n.page_data((language,)))
    # The fonts for every character the file can show: the trace's, its interface's (in its language)
    # and the bundle's own symbols, so the file looks the same on any machine, offline.
    shown = data + strings + script
    style = _fonts(style, shown) + "\n" + style
    # Inline script and style are allowed by hash only; nothing may be fetched (no network, no file).
    csp = (
        f"default-src 'none'; script-src {hash_source(script)}; style-src {hash_source(style)}; "
        "img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!doctype html>\n"
        f'<html lang="{"zh-Hans" if options["lang"] == "zh" else "en"}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        '<meta name="generator" content="gradwalk export">\n'
        "<title>gradwalk</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<style>{style}</style>\n</head>\n<body class="embed standalone">\n'
        f'<script type="application/json" id="trace">{data}</script>\n'
        f'<script type="application/json" id="options">{_json_in_html(options)}</script>\n'
        f'<script type="application/json" id="i18n">{strings}</script>\n'
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


@contextmanager
def _browser(browser: Any = None) -> Iterator[Any]:
    if browser is not None:  # the caller's (a test's, or a script exporting many figures)
        yield browser
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise ExportError("SVG and PNG exports need Playwright: pip install -e '.[export]'") from e
    if not Path(CHROMIUM).exists():
        raise ExportError(f"SVG and PNG exports need Chromium at {CHROMIUM} (Debian package chromium; or set GRADWALK_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _offline_page(browser: Any, url: str, scale: float = 1) -> Any:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=scale, offline=True, service_workers="block")
    # Only the file itself is read: any other request (network or file) is refused.
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.goto(url)
    return page


def _svg_in(browser: Any, document: str, step: int | None) -> str:
    with tempfile.TemporaryDirectory(prefix="gradwalk-export-") as tmp:
        path = Path(tmp) / "graph.html"
        path.write_text(document, encoding="utf-8")
        page = _offline_page(browser, path.as_uri())
        try:
            page.wait_for_function("() => document.body.dataset.ready", timeout=LOAD_TIMEOUT_MS)
            if page.evaluate("document.body.dataset.ready") != "true":
                raise ExportError("the exported page failed: " + page.evaluate("document.body.textContent"))
            try:
                return str(page.evaluate("(n) => window.gradwalk.svg(n)", step))
            except Exception as e:  # the page's RangeError, as Playwright's Error
                raise ExportError(str(e).split("\n")[0].rpartition("Error: ")[2]) from e
        finally:
            page.context.close()


def svg(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto", browser: Any = None) -> str:
    """The graph at `step` as an SVG document, exactly as the page paints it (text as text)."""
    with _browser(browser) as browser:
        return _svg_in(browser, html(trace, step, lang, direction), step)


def png_scale(width: float, height: float) -> float:
    """PNG_SCALE, or the largest scale at which Chromium can capture a width x height px picture."""
    return min(PNG_SCALE, PNG_MAX_SIDE_PX / width, PNG_MAX_SIDE_PX / height, (PNG_MAX_AREA_PX / (width * height)) ** 0.5)


def _svg_size(image: str) -> tuple[float, float]:
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', image[:2000])
    if not m:
        raise ExportError("the SVG export has no size")
    return float(m[1]), float(m[2])


def png_scaled(
    trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto", browser: Any = None
) -> tuple[bytes, float]:
    """The SVG export rendered by the same Chromium at device scale PNG_SCALE, or smaller for a graph too big
    to capture at that scale; returns the PNG and the scale used."""
    with _browser(browser) as chromium:
        image = _svg_in(chromium, html(trace, step, lang, direction), step)
        width, height = _svg_size(image)
        scale = png_scale(width, height)
        with tempfile.TemporaryDirectory(prefix="gradwalk-export-") as tmp:
            path = Path(tmp) / "graph.svg"
            path.write_text(image, encoding="utf-8")
            page = _offline_page(chromium, path.as_uri(), scale=scale)
            try:
                page.evaluate("document.fonts.ready.then(() => true)")  # the embedded faces, before the picture
                return bytes(page.locator("svg").first.screenshot(type="png", timeout=LOAD_TIMEOUT_MS)), scale
            except Exception as e:  # Playwright's Error or TimeoutError: a plain message, not its log
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ExportError(
                    f"Chromium could not draw the {width:.0f} x {height:.0f} px graph at {scale:.2f}x: {first}"
                ) from e
            finally:
                page.context.close()


def png(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto", browser: Any = None) -> bytes:
    """The SVG export rendered by the same Chromium at device scale factor 2 (smaller for a very big graph: png_scaled)."""
    return png_scaled(trace, step, lang, direction, browser)[0]
