"""Teacher exports (app/export.py, `gradwalk export`): the real sandbox, the real bundle, real Chromium.

A missing Chromium, Playwright or front-end bundle skips on a developer machine and fails in CI.
"""

from __future__ import annotations

import base64
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import export
from app.models import Trace
from tests.conftest import ROOT
from tests.export_checks import embedded_fonts, need_export_tools, plays_offline_to_the_end

SEED = ROOT / "app" / "examples" / "seed_5_chain.py"
SVG_NS = "{http://www.w3.org/2000/svg}"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    need_export_tools()


@pytest.fixture(scope="module")
def trace() -> Trace:
    from app.sandbox import trace_in_sandbox

    t = trace_in_sandbox(SEED.read_text())
    assert t.status == "ok"
    return t


BIG = "import torch\nw = torch.tensor(0.5, requires_grad=True)\nh = torch.tensor(1.0)\n"
# the loop inside a function: a top-level loop's iterations would be groups, drawn closed
BIG += (
    "def unroll(h):\n    for i in range(150):\n        h = torch.tanh(h * w + 0.1)\n    return h\nh = unroll(h)\nh.backward()\n"
)


CJK = "import torch\n权重 = torch.tensor(2.0, requires_grad=True)\n损失 = 权重 * 3\n损失.backward()\n"


@pytest.fixture(scope="module")
def cjk() -> Trace:
    from app.sandbox import trace_in_sandbox

    t = trace_in_sandbox(CJK)
    assert t.status == "ok"
    return t


@pytest.fixture(scope="module")
def big() -> Trace:
    from app.sandbox import trace_in_sandbox

    t = trace_in_sandbox(BIG)
    assert t.status == "ok" and len(t.nodes) > 400
    return t


# Depends on the traces: while Playwright's sync API is open it holds an event loop in this thread,
# and the sandbox's trace_in_sandbox (asyncio.run) could not start.
@pytest.fixture(scope="module")
def browser(trace: Trace, big: Trace, cjk: Trace) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=export.CHROMIUM, args=export.CHROMIUM_ARGS)
        yield b
        b.close()


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == SVG_NS + "svg"
    return ["".join(t.itertext()) for t in root.iter(SVG_NS + "text")]


def node_texts(svg: str) -> dict[str, list[str]]:
    """Title of each node box -> the lines under it, as drawn."""
    root = ET.fromstring(svg.encode("utf-8"))
    out = {}
    for g in root.iter(SVG_NS + "g"):
        if "node" in (g.get("class") or "").split():
            lines = {t.get("class"): "".join(t.itertext()) for t in g.iter(SVG_NS + "text")}
            out[lines["title"]] = lines
    return out


def test_html_plays_offline_to_the_end(trace: Trace, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "seed.html"
    path.write_text(export.html(trace, step=0), encoding="utf-8")
    assert plays_offline_to_the_end(browser, path) == 0


def test_html_is_one_file_under_a_strict_csp(trace: Trace) -> None:
    doc = export.html(trace)
    assert "default-src 'none'" in doc and "unsafe-inline" not in doc
    assert "font-src data:;" in doc
    # The markup and style refer to nothing outside the file (the bundle's own code, KaTeX's included, is
    # held by the CSP: img-src data: only, no connect-src).
    markup = re.sub(r"<script>.*?</script>", "", doc, flags=re.S)
    for ref in ("src=", 'href="/', "@import", "url(http", "url(fonts/"):
        assert ref not in markup.replace('href="data:,"', ""), ref
    assert "connect-src" not in doc and "img-src data:;" in doc
    assert doc.count("</script>") == 4  # the trace, the options, the interface text, the bundle
    style = re.search(r"<style>(.*?)</style>", doc, re.S)[1]  # type: ignore[index]
    families = set(re.findall(r'@font-face\{font-family:"([^"]+)"[^}]*src:url\(data:font/woff2;base64,', style))
    assert families == {"gradwalk Symbols", "Noto Sans Variable", "Noto Sans Mono Variable"}
    # Chinese glyphs only where Chinese is shown: the zh interface, or a Chinese name in the trace.
    assert '@font-face{font-family:"Noto Sans SC"' not in style
    assert '@font-face{font-family:"Noto Sans SC"' in export.html(trace, lang="zh")


def test_svg_shows_labels_and_gradients_at_the_step(trace: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    image = export.svg(trace, browser=browser)  # default: the last step
    nodes = node_texts(image)
    assert {"x", "w1", "w2", "b", "l1 = ×", "l2 = +", "l3 = ×", "y = mean"} <= set(nodes)
    assert nodes["w1"]["grad"] == "grad 3"
    assert nodes["w2"]["grad"] == "grad 6"
    assert nodes["x"]["grad"] == "grad [1.2, 1.2, …]"  # cut between elements where the box is too narrow
    assert nodes["y = mean"]["val"] == "18"
    # The default (last) step keeps the gradient each node received in the pass: every ∂ in place.
    assert nodes["l3 = ×"]["grad"] == "∂ [0.2, 0.2, …, 0.2]" and nodes["y = mean"]["grad"] == "∂ 1"
    root = ET.fromstring(image.encode("utf-8"))
    assert root.get("viewBox") and "transform" not in (root.get("style") or "")
    # Text as text, styled without a stylesheet (every node's gradient line carries its colour); the
    # one <style> holds only the fonts the text is drawn in.
    assert set(embedded_fonts(image)) == {"Noto Sans Variable", "Noto Sans Mono Variable", "gradwalk Symbols"}  # ∂
    assert image == export.svg(trace, step=-1, browser=browser)


def test_svg_embeds_only_the_fonts_its_text_needs(trace: Trace, cjk: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    # At step 0 nothing is computed yet: no value or gradient is shown, so no monospace face either.
    first = export.svg(trace, step=0, browser=browser)
    assert set(embedded_fonts(first)) == {"Noto Sans Variable"}
    last = export.svg(trace, browser=browser)
    assert len(last) < 150_000  # two Latin slices, not the 3.6 MB of bundled fonts
    # Chinese names: the SC chunks that hold their characters (not all ~100), and the operator glyphs
    # Noto's slices lack (∂ of a backward step) from the symbols face.
    chinese = export.svg(cjk, step=-2, browser=browser)
    assert {"权重", "损失 = ×"} <= set(node_texts(chinese))
    fonts = embedded_fonts(chinese)
    assert 1 <= len(fonts.get("Noto Sans SC", [])) <= len(set("权重损失")), list(fonts)  # at most one per character
    assert "gradwalk Symbols" in fonts
    assert chinese == export.svg(cjk, step=-2, browser=browser)


def test_svg_fonts_render_the_same_without_system_fonts(trace: Trace, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Opened on its own, the SVG draws its text in the embedded faces: the browser reports them loaded.
    path = tmp_path / "seed.svg"
    path.write_text(export.svg(trace, browser=browser), encoding="utf-8")
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        loaded = page.evaluate(
            "document.fonts.ready.then(() => [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family))"
        )
    finally:
        page.close()
    assert {"Noto Sans Variable", "Noto Sans Mono Variable"} <= {f.strip('"') for f in loaded}, loaded


def test_svg_at_the_first_step_has_no_gradients(trace: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    first = texts(export.svg(trace, step=0, browser=browser))
    assert not any(t.startswith("grad ") for t in first)


def test_step_out_of_range_is_an_error(trace: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(export.ExportError, match="out of range"):
        export.svg(trace, step=10_000, browser=browser)


def test_png_is_a_2x_picture_that_is_not_blank(trace: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    data = export.png(trace, browser=browser)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    root = ET.fromstring(export.svg(trace, browser=browser).encode("utf-8"))
    assert (width, height) == (2 * int(root.get("width")), 2 * int(root.get("height")))
    assert 10_000 < len(data) < 5_000_000
    # Decoded by Chromium: the grey level varies across the picture (boxes, text, edges on a light ground).
    page = browser.new_page()
    try:
        stats = page.evaluate(
            """async (src) => {
              const img = new Image(); img.src = src; await img.decode();
              const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
              const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
              const d = ctx.getImageData(0, 0, c.width, c.height).data;
              let n = 0, s = 0, s2 = 0, dark = 0;
              for (let i = 0; i < d.length; i += 4) {
                const g = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; s += g; s2 += g * g; if (g < 128) dark++;
              }
              return { mean: s / n, variance: s2 / n - (s / n) ** 2, dark: dark / n };
            }""",
            "data:image/png;base64," + base64.b64encode(data).decode(),
        )
    finally:
        page.close()
    assert stats["variance"] > 100, stats
    assert 0.005 < stats["dark"] < 0.5, stats


def gradwalk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_cli_export_is_byte_identical_for_the_same_program_and_step(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"seed{i}.svg"
        result = gradwalk("export", str(SEED), "--format", "svg", "--step", "-1", "-o", str(out))
        assert result.returncode == 0, result.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert "grad 3" in texts(outs[0].decode("utf-8"))
    html_out = tmp_path / "seed.html"
    result = gradwalk("export", str(SEED), "--format", "html", "-o", str(html_out))
    assert result.returncode == 0, result.stderr
    assert html_out.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_cli_export_refuses_a_step_out_of_range(tmp_path: Path) -> None:
    result = gradwalk("export", str(SEED), "--format", "png", "--step", "-1000", "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "out of range" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_svg_of_a_big_graph_has_every_box(big: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    # Over 400 boxes the page keeps only what is near the viewport in the DOM; the export has all.
    image = export.svg(big, browser=browser)
    root = ET.fromstring(image.encode("utf-8"))
    boxes = [g for g in root.iter(SVG_NS + "g") if "node" in (g.get("class") or "").split()]
    assert len(boxes) >= len(big.nodes)
    assert "lod" not in (root.get("class") or "")


PAGE_NODES = """() => [...document.querySelectorAll('#graph .node')].map((g) => [
  g.querySelector('.title').textContent,
  g.getAttribute('class'),
  [...g.querySelectorAll('text')].filter((t) => getComputedStyle(t).visibility !== 'hidden' && t.textContent)
    .map((t) => t.getAttribute('class') + ':' + t.textContent),
]).sort()"""


def svg_nodes(svg: str) -> list[list[object]]:
    root = ET.fromstring(svg.encode("utf-8"))
    out = []
    for g in root.iter(SVG_NS + "g"):
        if "node" in (g.get("class") or "").split():
            ts = list(g.iter(SVG_NS + "text"))
            title = next("".join(t.itertext()) for t in ts if t.get("class") == "title")
            out.append(
                [title, g.get("class"), [f"{t.get('class')}:{''.join(t.itertext())}" for t in ts if "".join(t.itertext())]]
            )
    return sorted(out)


def test_svg_shows_what_the_page_shows_at_each_step(trace: Trace, browser, module_serve) -> None:  # type: ignore[no-untyped-def]
    """Every box's state and visible text, in the export and in the served embed page of the same program."""
    import httpx

    server = module_serve()
    created = httpx.post(server.url + "/api/share", json={"source": SEED.read_text()}, timeout=60).json()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        for step in (0, 5, 13, 15, -1):
            page.goto(server.url + f"/embed/{created['id']}?step={step if step >= 0 else 0}")
            page.wait_for_selector("body[data-ready=true]")
            if step < 0:
                page.keyboard.press("End")
            total = page.evaluate("() => Number(document.getElementById('scrubber').max) + 1")
            assert page.get_attribute("body", "data-step") == str(step % total)
            assert svg_nodes(export.svg(trace, step=step, browser=browser)) == page.evaluate(PAGE_NODES), step
    finally:
        page.close()


def test_svg_is_the_settled_picture(trace: Trace, browser) -> None:  # type: ignore[no-untyped-def]
    # Boxes fade in over 0.25 s on the page; the export is taken at the end of every transition.
    import re

    image = export.svg(trace, step=5, browser=browser)
    assert set(re.findall(r"(?<![-\w])opacity: ([\d.]+)", image)) <= {"0.15", "0.16"}


def test_png_of_a_graph_too_big_for_2x_is_drawn_smaller_not_failed(big: Trace, browser, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Chromium captures nothing past PNG_MAX_SIDE_PX a side: a bigger graph comes out at the largest scale that fits."""
    monkeypatch.setattr(export, "PNG_MAX_SIDE_PX", 1500)
    data, scale = export.png_scaled(big, browser=browser)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert scale < export.PNG_SCALE
    assert max(width, height) <= 1500 and max(width, height) >= 1400, (width, height, scale)
