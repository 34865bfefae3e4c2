"""Checks of exported files that more than one test makes (tests/test_export.py for the CLI's files,
tests/e2e/test_teacher.py for the page's buttons)."""

from __future__ import annotations

import base64
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from app import export
from tests.conftest import need

SVG_NS = "{http://www.w3.org/2000/svg}"


def need_export_tools() -> None:
    """What app/export.py draws with: Playwright, Debian's Chromium and the built standalone bundle."""
    try:
        import playwright.sync_api  # noqa: F401 - imported only to see that it is installed
    except ImportError:
        need("playwright (pip install -e '.[test]')")
    if not (Path(export.CHROMIUM).exists() or shutil.which(export.CHROMIUM)):
        need(f"Chromium at {export.CHROMIUM} (Debian package chromium)")
    if not export.BUNDLE.exists():
        need("the front-end bundle static/dist/standalone.js (`make frontend`)")


def embedded_fonts(svg: str) -> dict[str, list[bytes]]:
    """The SVG's one <style>: @font-face rules only, each a woff2 file inlined as a data: URL. Family -> files."""
    root = ET.fromstring(svg.encode("utf-8"))
    styles = list(root.iter(SVG_NS + "style"))
    assert len(styles) == 1, "one <style>, for the fonts"
    rules = re.findall(r"@font-face\{[^}]*\}", styles[0].text or "")
    assert "".join(rules) == (styles[0].text or "").replace("\n", ""), "nothing but @font-face"
    fonts: dict[str, list[bytes]] = {}
    for rule in rules:
        family = re.search(r'font-family:"([^"]+)"', rule)[1]  # type: ignore[index]
        data = base64.b64decode(re.search(r"src:url\(data:font/woff2;base64,([A-Za-z0-9+/=]+)\) format\(\"woff2\"\)", rule)[1])  # type: ignore[index]
        assert data[:4] == b"wOF2"
        assert re.search(r"unicode-range:U\+[0-9A-F]", rule)
        fonts.setdefault(family, []).append(data)
    return fonts


def plays_offline_to_the_end(browser: Any, path: Path) -> int:
    """Open an exported HTML file from file:// with networking off and nothing but the file readable, go
    to the start, play it to the end at 120 steps/s, and check the seed's w1 gradient 3 and the inlined
    fonts on the way. Returns the step the file opened at."""
    url = path.as_uri()
    context = browser.new_context(viewport={"width": 1000, "height": 700}, offline=True)
    requests: list[str] = []
    problems: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(url)
        page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
        total = page.evaluate("window.gradwalk.total")
        opened = page.evaluate("window.gradwalk.step")
        page.focus("#graph")
        page.keyboard.press("Home")
        assert page.evaluate("window.gradwalk.step") == 0
        w1 = page.locator("#graph .node", has=page.locator("text.title", has_text="w1")).first
        assert w1.locator("text.grad").text_content() == ""
        page.select_option("#speed", "120")
        page.click("#play")
        page.wait_for_function(f"() => document.body.dataset.step === '{total - 1}'", timeout=30_000)
        assert page.get_attribute("#play", "aria-pressed") == "false"  # stopped at the end
        assert w1.locator("text.grad").text_content() == "grad 3"
        assert page.text_content("#step-label") == f"{total - 1} / {total - 1}"
        page.keyboard.press("Home")
        assert w1.locator("text.grad").text_content() == ""
        # The inlined fonts, not the machine's: the page's text is drawn in the bundled faces.
        loaded = page.evaluate(
            "document.fonts.ready.then(() => [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family))"
        )
        assert {"Noto Sans Variable", "Noto Sans Mono Variable"} <= {f.strip('"') for f in loaded}, loaded
    finally:
        context.close()
    assert set(requests) == {url}, requests
    assert problems == []
    return int(opened)
