"""The inspector in the offline HTML file (app/export.py, the notebook's output too): the same Viewer and
inspector as the page, offline. A node's .grad and a module box's parameters' gradients are torch's, and an
operation's derivative is shown as its TeX source (no KaTeX in the file)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import export
from app.models import Trace
from tests.conftest import ROOT
from tests.export_checks import need_export_tools

pytestmark = pytest.mark.slow
CHAIN = ROOT / "app" / "examples" / "seed_5_chain.py"
GPT = ROOT / "tests" / "programs" / "page" / "gpt_step.py"


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    need_export_tools()


def traced(path: Path) -> Trace:
    from app.sandbox import trace_in_sandbox

    t = trace_in_sandbox(path.read_text())
    assert t.status == "ok", t.status
    return t


@pytest.fixture(scope="module")
def chain() -> Trace:
    return traced(CHAIN)


@pytest.fixture(scope="module")
def gpt() -> Trace:
    return traced(GPT)


# After the traces: the sandbox's asyncio.run cannot start while Playwright's sync API holds the loop.
@pytest.fixture(scope="module")
def browser(chain: Trace, gpt: Trace) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=export.CHROMIUM, args=export.CHROMIUM_ARGS)
        yield b
        b.close()


def offline(browser: Any, trace: Trace, tmp_path: Path) -> Any:
    """The exported file from file://, offline, at its last step; nothing else may be requested."""
    path = tmp_path / "trace.html"
    path.write_text(export.html(trace), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1100, "height": 700}, offline=True)
    problems: list[str] = []
    context.route(
        "**/*", lambda r: r.continue_() if r.request.url == path.as_uri() else (problems.append(r.request.url), r.abort())
    )
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    page.goto(path.as_uri())
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
    return page


def torch_run(path: Path) -> dict[str, Any]:
    import torch  # noqa: F401 - the program imports it

    scope: dict[str, Any] = {"__name__": "__main__"}
    with warnings.catch_warnings():  # the seed reads l1.grad on purpose: torch warns about a non-leaf's .grad
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(path.read_text(), str(path), "exec"), scope)  # our own example
    return scope


def test_a_leafs_grad_and_an_operations_derivative_offline(browser, chain: Trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = offline(browser, chain, tmp_path)
    panel = page.locator("#inspector-body")
    assert page.locator("#inspector-empty").is_visible()
    page.locator("#graph .node", has=page.locator("text.title", has_text="w1")).first.click()
    assert panel.locator("h3").text_content() == "w1"
    grad = float(panel.locator(".matrix-scalar.grad").text_content() or "nan")
    assert grad == torch_run(CHAIN)["w1"].grad.item() == 3.0
    # l1 = x * w1: its local derivative, as its TeX source (no KaTeX in the file: the notebook's size budget).
    page.locator("#graph .node", has=page.locator("text.title", has_text="l1")).first.click()
    tex = panel.locator("code.tex").first.text_content() or ""
    assert "w_1" in tex or "w1" in tex, tex
    assert not page.problems, page.problems
    page.context.close()


def test_a_closed_modules_parameters_offline(browser, gpt: Trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = offline(browser, gpt, tmp_path)
    assert page.get_attribute('#graph .node[data-module="model.blocks.0"]', "aria-expanded") == "false", (
        "modules first, offline too"
    )
    # Search finds the first block's LayerNorm, opens the block around it and selects it, a closed box.
    page.locator("#graph").focus()
    page.keyboard.press("/")
    page.get_by_role("searchbox", name="Search").fill("blocks.0.ln1")
    page.keyboard.press("Enter")
    ln = page.locator('#graph .node[data-module="model.blocks.0.ln1"]')
    ln.wait_for()
    assert ln.get_attribute("aria-expanded") == "false"
    panel = page.locator("#inspector-body")
    assert panel.locator("h3").text_content() == "LayerNorm"
    names = [b.text_content() for b in panel.locator(".param button").all()]
    assert names == ["model.blocks.0.ln1.weight", "model.blocks.0.ln1.bias"]
    shown = [float(c) for c in panel.locator(".matrix.grad").first.locator("td").all_text_contents()]
    want = dict(torch_run(GPT)["model"].named_parameters())["blocks.0.ln1.weight"].grad.flatten().tolist()
    assert shown == pytest.approx(want, rel=1e-3, abs=1e-6)
    assert not page.problems, page.problems
    page.context.close()


def test_the_inspector_sits_beside_the_graph_and_under_it_when_narrow(browser, chain: Trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = offline(browser, chain, tmp_path)
    graph, aside = page.locator("#graph").bounding_box(), page.locator("#inspector").bounding_box()
    assert graph and aside and aside["x"] >= graph["x"] + graph["width"] - 1, (graph, aside)
    # a notebook's output (about 830 x 560): beside the graph and as tall as the output, not the page's 40vh strip
    page.set_viewport_size({"width": 830, "height": 560})
    page.wait_for_timeout(200)
    aside = page.locator("#inspector").bounding_box()
    assert aside and aside["height"] >= 560 - 1, aside
    page.set_viewport_size({"width": 600, "height": 700})
    page.wait_for_timeout(200)
    graph, aside = page.locator("#graph").bounding_box(), page.locator("#inspector").bounding_box()
    assert graph and aside and aside["y"] >= graph["y"] + graph["height"] - 1, (graph, aside)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.context.close()
