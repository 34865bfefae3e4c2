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
from typing import TYPE_CHECKING, Any, Literal, get_args

from . import fontsubset, i18n
from .csp import hash_source

if TYPE_CHECKING:  # not imported for its name alone: the CLI reads DIRECTIONS here before it knows it needs pydantic
    from .models import Trace
from .paths import STATIC_DIR

BUNDLE = STATIC_DIR / "dist" / "standalone.js"
BUNDLE_CHARS = STATIC_DIR / "dist" / "standalone.chars"  # what the bundle's own code may show (frontend/build.mjs)
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
# The graph's layout: top to bottom, left to right, or as the page picks for the window.
Direction = Literal["auto", "TB", "LR"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)
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


def _unicode_range(chars: frozenset[int]) -> str:
    """`chars` as a CSS unicode-range, runs merged: "U+20-7E,U+4E2D" (a Chinese slice's own list is kilobytes)."""
    runs: list[list[int]] = []
    for c in sorted(chars):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"U+{lo:X}" if lo == hi else f"U+{lo:X}-{hi:X}" for lo, hi in runs)


def _fonts(style: str, text: str, every_ascii: bool) -> str:
    """The bundled @font-face rules that draw `text` under the font stacks of `style` (its --font and --mono),
    each file inlined as a data: URL: per character, the first family of a stack with a face that holds it
    (fonts.js picks the same faces for an SVG's text). `every_ascii`: and every printable ASCII character."""
    if not FONTS.exists():
        raise ExportError(f"missing {FONTS}: run `make frontend` first")
    faces = [(f["family"], f["ranges"], f["rule"]) for f in json.loads(FONTS.read_text(encoding="utf-8"))]
    stacks = [[f.strip().strip("\"'") for f in s.split(",")] for s in re.findall(r"--(?:font|mono):\s*([^;]+);", style)]
    # With every printable ASCII character, shown or not, most programs need no other, so their fonts are the
    # same cut, made once and then read from fontsubset's cache.
    chars = {ord(c) for c in set(text) if ord(c) > 32} | (set(range(0x21, 0x7F)) if every_ascii else set())
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
        rule = re.sub(r"unicode-range:[^;}]+", "unicode-range:" + _unicode_range(held), rule)  # what the cut face holds
        return re.sub(r"url\([^)]+\)", "url(data:font/woff2;base64," + base64.b64encode(data).decode() + ")", rule)

    return "\n".join(inline(rule, ranges) for _, ranges, rule in faces if rule in keep)


def html(
    trace: Trace | None,
    step: int | None = None,
    lang: str = "en",
    direction: str = "auto",
    aspect: float | None = None,
    inspector: bool = True,
) -> str:
    """One HTML file that plays the trace offline, opening at `step` (None: the last; negative: from the end),
    with the inspector beside the graph (`inspector=False`: the graph alone, as SVG and PNG figures draw it).
    Without a trace: a page that waits for one (`gradwalk.load(trace, options)`, Blank), with the fonts of
    its interface and of every ASCII character."""
    if not (BUNDLE.exists() and BUNDLE_CHARS.exists()):
        raise ExportError(f"missing {BUNDLE} or {BUNDLE_CHARS.name}: run `make frontend` first")
    script = BUNDLE.read_text(encoding="utf-8")
    if "</script" in script.lower():
        raise ExportError("the bundle contains </script and cannot be inlined")
    style = "\n".join(p.read_text(encoding="utf-8") for p in STYLESHEETS)
    language = "zh" if lang == "zh" else "en"
    options = _options(step, language, direction, aspect, inspector)
    if trace is None:
        options["wait"] = True
    data = _json_in_html(None if trace is None else json.loads(trace.model_dump_json()))
    strings = _json_in_html(i18n.page_data((language,)))
    # The fonts for every character the file can show: the trace's, its interface's (in its language)
    # and the bundle's own symbols, so the file looks the same on any machine, offline.
    shown = data + strings + BUNDLE_CHARS.read_text(encoding="utf-8")
    # A figure's page (never kept) has every ASCII glyph, so that one page loaded ahead fits most programs
    # (Blank); a file a reader keeps (offline HTML, a notebook's output: 400 kB) only the glyphs it shows.
    style = _fonts(style, shown, every_ascii=not inspector) + "\n" + style
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


def _options(step: int | None, lang: str, direction: str, aspect: float | None, inspector: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"step": step, "lang": lang, "direction": direction}
    if aspect is not None:  # a figure's shape (width / height): "auto" picks the direction closest to it
        options["aspect"] = aspect
    if not inspector:
        options["inspector"] = False
    return options


def _style(page: str) -> str:
    return page[page.index("<style>") : page.index("</style>")]


@contextmanager
def browser_session(browser: Any = None) -> Iterator[Any]:
    """The caller's Chromium (a test's), or one started for the block: Playwright driving Debian's chromium, offline."""
    if browser is not None:
        yield browser
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise ExportError("SVG and PNG exports need Playwright: pip install -e '.[export]'") from e
    if not Path(CHROMIUM).exists():
        raise ExportError(f"SVG and PNG exports need Chromium at {CHROMIUM} (Debian package chromium; or set GRADWALK_CHROMIUM)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def viewport(aspect: float | None) -> dict[str, int]:
    """The page a figure is drawn in: 1280 px wide, as tall as `aspect` (width / height) says; 1280 x 800 without one."""
    return VIEWPORT if aspect is None else {"width": VIEWPORT["width"], "height": max(1, round(VIEWPORT["width"] / aspect))}


def _offline_page(browser: Any, url: str, scale: float = 1, size: dict[str, int] | None = None) -> Any:
    context = browser.new_context(viewport=size or VIEWPORT, device_scale_factor=scale, offline=True, service_workers="block")
    # Only the files this export wrote (beside `url`) are read: any other request (network or file) is refused.
    folder = url.rpartition("/")[0] + "/"
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(folder) else route.abort())
    page = context.new_page()
    page.goto(url)
    return page


class Blank:
    """A figure's page loaded ahead of its trace, in `lang`, with the bundle and the fonts of the interface and of
    every ASCII character (the export service keeps one ready): a Drawing on it skips opening a page and
    parsing the bundle, for any trace whose page would carry the same fonts."""

    def __init__(self, browser: Any, lang: str = "en") -> None:
        self.lang = lang
        self.tmp = tempfile.TemporaryDirectory(prefix="gradwalk-export-")
        path = Path(self.tmp.name) / "graph.html"
        page = html(None, None, lang, inspector=False)
        self.style = _style(page)
        path.write_text(page, encoding="utf-8")
        self.page = _offline_page(browser, path.as_uri())
        # And the page a PNG is drawn in (at PNG_SCALE), open on an empty picture in the same folder.
        empty = Path(self.tmp.name) / "graph.svg"
        empty.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>', encoding="utf-8")
        self.png_page = _offline_page(browser, empty.as_uri(), scale=PNG_SCALE)
        self.page.wait_for_function("() => window.gradwalk?.load", timeout=LOAD_TIMEOUT_MS)

    def fits(self, trace: Trace, lang: str) -> bool:
        """Whether the page made for `trace` would be this one but for the trace (the same fonts, the same language)."""
        return lang == self.lang and _style(html(trace, None, lang, inspector=False)) == self.style

    def close(self) -> None:
        self.page.context.close()
        self.png_page.context.close()
        self.tmp.cleanup()


class Drawing:
    """One trace loaded once in the offline page, drawn at as many steps as asked (the batch export's unit);
    on `blank`, if it fits, rather than a page opened for it."""

    def __init__(
        self,
        browser: Any,
        trace: Trace,
        lang: str = "en",
        direction: str = "auto",
        aspect: float | None = None,
        blank: Blank | None = None,
    ) -> None:
        self.browser = browser
        self._pngs: dict[float, Any] = {}  # one page per device scale, for the PNG pictures
        if blank is not None and blank.fits(trace, lang):
            self._tmp, self.page, self._pngs[PNG_SCALE] = blank.tmp, blank.page, blank.png_page
            self.page.set_viewport_size(viewport(aspect))
            options = _options(None, lang, direction, aspect, inspector=False)
            self.page.evaluate("([t, o]) => { window.gradwalk.load(t, o); }", [json.loads(trace.model_dump_json()), options])
        else:
            if blank is not None:
                blank.close()
            self._tmp = tempfile.TemporaryDirectory(prefix="gradwalk-export-")
            path = Path(self._tmp.name) / "graph.html"
            path.write_text(html(trace, None, lang, direction, aspect, inspector=False), encoding="utf-8")
            self.page = _offline_page(browser, path.as_uri(), size=viewport(aspect))
        self.page.wait_for_function("() => document.body.dataset.ready", timeout=LOAD_TIMEOUT_MS)
        if self.page.evaluate("document.body.dataset.ready") != "true":
            message = self.page.evaluate("document.body.textContent")
            self.close()
            raise ExportError("the exported page failed: " + message)
        self.total = int(self.page.evaluate("window.gradwalk.total"))

    def step(self, n: int | None) -> int:
        """Python's indexing of the steps: None and -1 are the last."""
        if n is None:
            return self.total - 1
        s = n + self.total if n < 0 else n
        if not 0 <= s < self.total:
            raise ExportError(f"step {n} is out of range: the trace has {self.total} steps (0 to {self.total - 1})")
        return s

    def svg(self, n: int | None = None, size: tuple[int, int] | None = None) -> str:
        """The graph at step n as an SVG document, as the page paints it (text as text); fitted to `size` if given."""
        image = str(self.page.evaluate("(n) => window.gradwalk.svg(n)", self.step(n)))
        return image if size is None else fit(image, size)

    def png(self, n: int | None = None, size: tuple[int, int] | None = None) -> tuple[bytes, float]:
        """The SVG drawn by the same Chromium: at PNG_SCALE (less for a graph too big to capture), or exactly `size` px."""
        image = self.svg(n, size)
        width, height = _svg_size(image)
        scale = 1.0 if size else png_scale(width, height)
        path = Path(self._tmp.name) / "graph.svg"
        path.write_text(image, encoding="utf-8")
        page = self._pngs.get(scale)
        if page is None:
            page = self._pngs[scale] = _offline_page(self.browser, path.as_uri(), scale=scale)
        else:
            page.goto(path.as_uri())
        try:
            page.evaluate("document.fonts.ready.then(() => true)")  # the embedded faces, before the picture
            return bytes(page.locator("svg").first.screenshot(type="png", timeout=LOAD_TIMEOUT_MS)), scale
        except Exception as e:  # Playwright's Error or TimeoutError: a plain message, not its log
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"Chromium could not draw the {width:.0f} x {height:.0f} px graph at {scale:.2f}x: {first}") from e

    def close(self) -> None:
        for page in [self.page, *self._pngs.values()]:
            page.context.close()
        self._tmp.cleanup()

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fit(image: str, size: tuple[int, int]) -> str:
    """An exported SVG made `size` (width, height) px, the graph centred in it at the largest scale that fits
    (a slide's 1920 x 1080): the view box grows to the size's shape, and the background with it."""
    width, height = size
    m = re.search(r'viewBox="(-?[\d.]+) (-?[\d.]+) ([\d.]+) ([\d.]+)"', image[:2000])
    if not m:
        raise ExportError("the SVG export has no viewBox")
    x, y, w, h = (float(v) for v in m.groups())
    if w / h < width / height:
        x, w = x - (h * width / height - w) / 2, h * width / height
    else:
        y, h = y - (w * height / width - h) / 2, w * height / width
    box = " ".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in (x, y, w, h))
    head, _, rest = image.partition("<svg ")
    tag, _, body = rest.partition(">")
    tag = re.sub(r'\bwidth="[^"]*"', f'width="{width}"', tag, count=1)
    tag = re.sub(r'\bheight="[^"]*"', f'height="{height}"', tag, count=1)
    tag = tag.replace(m[0], f'viewBox="{box}"', 1)
    # The background rect is the drawing's first: it covers the whole view box.
    bx, by, bw, bh = box.split()
    body = re.sub(
        r'<rect x="[^"]*" y="[^"]*" width="[^"]*" height="[^"]*"',
        f'<rect x="{bx}" y="{by}" width="{bw}" height="{bh}"',
        body,
        count=1,
    )
    return f"{head}<svg {tag}>{body}"


def svg(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto", browser: Any = None) -> str:
    """The graph at `step` as an SVG document, exactly as the page paints it (text as text)."""
    with browser_session(browser) as chromium, Drawing(chromium, trace, lang, direction) as drawing:
        return drawing.svg(step)


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
    with browser_session(browser) as chromium, Drawing(chromium, trace, lang, direction) as drawing:
        return drawing.png(step)


def png(trace: Trace, step: int | None = None, lang: str = "en", direction: str = "auto", browser: Any = None) -> bytes:
    """The SVG export rendered by the same Chromium at device scale factor 2 (smaller for a very big graph: png_scaled)."""
    return png_scaled(trace, step, lang, direction, browser)[0]
