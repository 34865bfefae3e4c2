"""For teachers (issue 6) in a real Chromium: Share from /, the shared page at ?step=N, the embed framed
by another origin, presentation mode by keyboard, and the theme toggle."""

from __future__ import annotations

import base64
import html
import http.server
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_page import run_program, wait_until
from tests.export_checks import embedded_fonts, plays_offline_to_the_end

pytestmark = pytest.mark.slow


def step(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.get_attribute("body", "data-step") or -1)


def share_from_app(page, title: str = "Lecture 3: the chain rule") -> str:  # type: ignore[no-untyped-def]
    """Run the seed, press Share, and return the link the dialog offers."""
    run_program(page, example="seed_5_chain")
    page.get_by_role("button", name=re.compile("^(Share|分享)$")).click()
    page.fill("#share-title-input", title)
    page.click("#share-create")
    page.wait_for_selector("#share-result:not([hidden])", timeout=60_000)
    return page.input_value("#share-link")


@pytest.fixture
def other_origin() -> Iterator[tuple[str, dict[str, str]]]:
    """A tiny http.server on another loopback port; tests put pages in its dict by path."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", pages
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_share_link_opens_at_step(watched, browser) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    link = share_from_app(page)
    assert re.fullmatch(re.escape(watched.base) + r"/s/[\w-]+", link), link
    snippet = page.input_value("#share-embed")
    assert snippet.startswith(f'<iframe src="{watched.base}/embed/') and "?step=" in snippet
    assert 'title="Lecture 3: the chain rule"' in snippet
    watched.shot("dialog")
    page.click("#share-close")
    page.goto(link + "?step=5")
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("body", "data-mode") == "share"
    assert step(page) == 5
    assert page.input_value("#scrubber") == "5"
    assert page.text_content("#step-label").startswith("5 /")
    assert page.is_visible("#edit-copy")
    assert page.text_content("#share-title") == "Lecture 3: the chain rule"
    watched.shot("shared-step5")


def test_copy_buttons_write_the_clipboard(watched) -> None:  # type: ignore[no-untyped-def]
    """The real Clipboard API (permission granted, as a browser does for a click on a secure origin)."""
    watched.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=watched.base)
    page = watched.open("/")
    link = share_from_app(page)
    snippet = page.input_value("#share-embed")
    page.evaluate("navigator.clipboard.writeText('')")
    page.click("#share-copy-link")
    wait_until(page, "document.getElementById('share-copy-link').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == link
    page.click("#share-copy-embed")
    wait_until(page, "document.getElementById('share-copy-embed').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == snippet
    assert snippet.startswith("<iframe ") and 'allow="fullscreen"' in snippet


def test_embed_in_another_origin(watched, other_origin) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    link = share_from_app(page)
    embed = link.replace("/s/", "/embed/") + "?step=7&theme=dark&code=1"
    origin, pages = other_origin
    assert origin != watched.base
    pages["/slide.html"] = (
        "<!doctype html><title>slide</title><h1>Lecture 3</h1>"
        f'<iframe id="g" src="{html.escape(embed)}" width="960" height="540" style="border:0"></iframe>'
    )
    page.goto(origin + "/slide.html")
    frame = page.frame_locator("#g")
    frame.locator("body[data-ready=true]").wait_for(timeout=60_000)
    assert frame.locator(".node").count() >= 5
    inner = next(f for f in page.frames if "/embed/" in f.url)
    assert inner.evaluate("document.body.dataset.step") == "7"
    assert inner.evaluate("document.documentElement.dataset.theme") == "dark"
    assert "backward()" in (frame.locator("#embed-code").text_content() or "")
    watched.shot("embed-other-origin")


def test_snippet_presents_full_screen_in_a_course_page(watched, other_origin) -> None:  # type: ignore[no-untyped-def]
    """The Share dialog's snippet pasted as is into another origin's page: P in the frame goes full screen."""
    page = watched.open("/")
    share_from_app(page)
    snippet = page.input_value("#share-embed")
    origin, pages = other_origin
    pages["/course.html"] = f"<!doctype html><title>course</title><h1>Week 3</h1>{snippet}"
    page.goto(origin + "/course.html")
    frame = page.frame_locator("iframe")
    frame.locator("body[data-ready=true]").wait_for(timeout=60_000)
    inner = next(f for f in page.frames if "/embed/" in f.url)
    frame.locator("#graph").click()
    page.keyboard.press("p")
    wait_until(inner, "document.body.classList.contains('presenting') && document.fullscreenElement !== null")
    watched.shot("embed-fullscreen")
    page.keyboard.press("Escape")
    wait_until(inner, "document.fullscreenElement === null && !document.body.classList.contains('presenting')")


def test_presentation_by_keyboard(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.focus("#graph")
    page.keyboard.press("Home")
    assert step(page) == 0
    page.keyboard.press("p")
    wait_until(page, "document.body.classList.contains('presenting')")
    # The real Fullscreen API (a key press is a user gesture), not only a page that fills its window.
    wait_until(page, "document.fullscreenElement === document.documentElement")
    assert not page.is_visible(".code-pane") and not page.is_visible(".topbar")
    for _ in range(3):
        page.keyboard.press("PageDown")
    assert step(page) == 3
    page.keyboard.press("PageUp")
    page.keyboard.press("ArrowRight")
    assert step(page) == 3
    size = page.evaluate("parseFloat(getComputedStyle(document.getElementById('caption')).fontSize)")
    assert size >= 22, size
    assert (page.text_content("#caption") or "").strip()
    page.keyboard.press("End")
    for _ in range(40):  # back from the end to the last backward step: "AccumulateGrad: w1.grad += 3"
        if "AccumulateGrad" in (page.text_content("#caption") or ""):
            break
        page.keyboard.press("PageUp")
    assert ".grad += " in (page.text_content("#caption") or "")
    watched.shot("presenting")
    page.keyboard.press("b")
    assert page.is_visible("#blackout")
    watched.shot("blackout")
    page.keyboard.press("b")
    assert not page.is_visible("#blackout")
    page.keyboard.press("Escape")
    wait_until(page, "!document.body.classList.contains('presenting')")
    wait_until(page, "document.fullscreenElement === null")
    assert page.is_visible(".code-pane")
    page.keyboard.press("b")  # outside presentation B does nothing
    assert not page.is_visible("#blackout")


SIZES = """() => {
  const g = document.getElementById('graph').getBoundingClientRect();
  const w1 = [...document.querySelectorAll('#graph .node')].find((n) => n.querySelector('.title').textContent === 'w1');
  const title = w1.querySelector('.title');
  const edge = document.querySelector('#graph .edge');
  const boxes = [...document.querySelectorAll('#graph .node')].map((n) => n.getBoundingClientRect());
  return {
    font: parseFloat(getComputedStyle(title).fontSize),
    value: parseFloat(getComputedStyle(w1.querySelector('.val')).fontSize),
    stroke: parseFloat(getComputedStyle(edge).strokeWidth),
    box: parseFloat(getComputedStyle(w1.querySelector('rect')).strokeWidth),
    shown: title.getBoundingClientRect().height,
    fits: boxes.every((b) => b.left >= g.left - 1 && b.right <= g.right + 1 && b.top >= g.top - 1 && b.bottom <= g.bottom + 1),
  };
}"""


def test_presentation_draws_larger_text_and_strokes(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.focus("#graph")
    page.keyboard.press("End")
    normal = page.evaluate(SIZES)
    page.keyboard.press("p")
    wait_until(
        page,
        "document.body.classList.contains('presenting') && document.querySelector('#graph .node rect').getAttribute('height') > 80",
    )
    page.wait_for_timeout(300)  # the fit after full screen's resize
    big = page.evaluate(SIZES)
    watched.shot("presenting-large")
    # Same viewport: node labels, values and strokes at least 1.5x as large, and the graph still fits. On
    # screen the chain's labels grow less (1.3x, from 1.1x by zoom alone before), as this tall graph is
    # fitted to the pane's height, and the larger boxes leave less room for zoom.
    for key in ("font", "value", "stroke", "box"):
        assert big[key] >= 1.5 * normal[key], (key, normal, big)
    assert big["shown"] >= 1.25 * normal["shown"], (normal, big)
    assert big["fits"] and normal["fits"], (normal, big)
    page.keyboard.press("Escape")
    wait_until(
        page,
        "!document.body.classList.contains('presenting') && document.querySelector('#graph .node rect').getAttribute('height') < 80",
    )
    assert page.evaluate(SIZES)["font"] == normal["font"]


def test_theme_toggle_persists(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    assert page.get_attribute("html", "data-theme") == "light"  # the context prefers light
    run_program(page, example="seed_5_chain")
    page.click("#theme")
    assert page.get_attribute("html", "data-theme") == "dark"
    page.reload()
    page.wait_for_selector("body[data-mode]")
    wait_until(page, "document.documentElement.dataset.theme === 'dark'")
    run_program(page, example="seed_5_chain")
    page.keyboard.press("End")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 18, 22)", bg
    watched.shot("dark")
    page.keyboard.press("p")
    wait_until(page, "document.body.classList.contains('presenting')")
    watched.shot("dark-presenting")
    page.keyboard.press("Escape")
    page.click("#theme")
    page.reload()
    page.wait_for_selector("body[data-mode]")
    wait_until(page, "document.documentElement.dataset.theme === 'light'")


def test_prefers_dark_by_default(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-mode]")
        wait_until(page, "document.documentElement.dataset.theme === 'dark'")
    finally:
        context.close()


def test_embed_options(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    link = share_from_app(page)
    embed = link.replace("/s/", "/embed/")
    page.set_viewport_size({"width": 640, "height": 360})  # the smallest embed the issue asks for
    page.goto(embed + "?lang=zh&autoplay=1&speed=30&theme=light")
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("html", "data-lang") == "zh"
    assert page.get_attribute("html", "data-theme") == "light"
    assert page.input_value("#speed") == "30"
    assert not page.is_visible("#embed-code")  # code=0 is the default
    wait_until(page, "Number(document.body.dataset.step) > 3")  # autoplay plays
    assert page.locator(".node").count() >= 5
    box = page.locator("#graph").bounding_box()
    assert box and box["height"] >= 200, box
    watched.shot("embed-640x360")


def test_export_buttons(watched) -> None:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET

    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.keyboard.press("End")
    last = step(page)
    with page.expect_download() as d:
        page.click("#export-svg")
    assert d.value.suggested_filename == f"gradwalk-step-{last}.svg"
    svg = Path(d.value.path()).read_text(encoding="utf-8")
    # The page's own faces, and the symbols' for the ∂ of the gradients the last step keeps on the boxes.
    assert set(embedded_fonts(svg)) == {"Noto Sans Variable", "Noto Sans Mono Variable", "gradwalk Symbols"}
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for want in ("w1", "w2", "grad 3", "grad 6", "∂ [0.6, 0.6, …, 0.6]"):
        assert want in text, (want, text)
    with page.expect_download() as d:
        page.click("#export-png")
    png = Path(d.value.path()).read_bytes()
    d.value.save_as(watched.shot("page").with_name(f"{watched.name}-export.png"))  # to look at
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 2 * int(root.get("width")) and height == 2 * int(root.get("height")), (width, height)
    assert len(png) > 10_000  # not blank
    # With its text, from the first click (an SVG image loads its embedded fonts only as it paints).
    ink = page.evaluate(
        """async (src) => {
          const img = new Image(); img.src = src; await img.decode();
          const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
          const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] < 70 && d[i + 1] < 70 && d[i + 2] < 70) n++;
          return n / (c.width * c.height);
        }""",
        "data:image/png;base64," + base64.b64encode(png).decode(),
    )
    assert ink > 0.001, ink  # the labels' near-black ink (boxes and edges are grey and green)
    with page.expect_download() as d:
        page.click("#export-png")
    assert Path(d.value.path()).read_bytes() == png


LOADED_FONTS = "document.fonts.ready.then(() => [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family.replace(/\"/g, '')))"


def test_page_draws_in_the_bundled_fonts(watched) -> None:  # type: ignore[no-untyped-def]
    fetched: list[str] = []
    watched.page.on("request", lambda r: "/static/dist/fonts/" in r.url and fetched.append(r.url.rsplit("/", 1)[1]))
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.keyboard.press("End")
    title = "getComputedStyle(document.querySelector('#graph .node .title')).fontFamily"
    assert page.evaluate(title).startswith('"gradwalk Symbols", "Noto Sans Variable"'), page.evaluate(title)
    assert {"Noto Sans Variable", "Noto Sans Mono Variable"} <= set(page.evaluate(LOADED_FONTS))
    assert page.evaluate("document.fonts.check('13px \"Noto Sans Variable\"', 'w1 = ×')")
    # From our own origin (font-src 'self'), and only the slices the page's text needs.
    assert {"noto-sans-latin-wght-normal.woff2", "noto-sans-mono-latin-wght-normal.woff2"} <= set(fetched), fetched
    assert len([f for f in fetched if f.startswith("noto-sans-sc-")]) <= 3, fetched  # "中文" on the language button


@pytest.mark.parametrize("where", ["app", "share"])
def test_html_button_downloads_the_offline_player(watched, browser, where, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The page's HTML button: the same one-file player as `gradwalk export --format html`, opening at the
    page's step; on / the program is run again on the server, on /s/{id} the saved trace is used."""
    page = watched.open("/")
    if where == "app":
        run_program(page, example="seed_5_chain")
        page.focus("#graph")
        page.keyboard.press("Home")
        for _ in range(7):
            page.keyboard.press("ArrowRight")
    else:
        link = share_from_app(page)
        page.click("#share-close")
        page.goto(link + "?step=7")
        page.wait_for_selector("body[data-ready=true]")
    assert step(page) == 7
    with page.expect_download(timeout=60_000) as d:
        page.click("#export-html")
    assert d.value.suggested_filename == "gradwalk-step-7.html"
    path = tmp_path / "lecture.html"
    d.value.save_as(path)
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert plays_offline_to_the_end(browser, path) == 7
