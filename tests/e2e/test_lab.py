"""Check, What if and the training curves in a real Chromium, as a student uses them; every number read
off the page is compared with torch."""

from __future__ import annotations

import json
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import torch

from app import export
from app.export import html as export_html
from app.tracer import trace_of
from tests.e2e.test_page import node_id, run_program, wait_until
from tests.reference import run_reference
from tests.test_curves import torch_losses as torch_losses_of

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CHAIN = (ROOT / "app/examples/seed_5_chain.py").read_text()
LOOP = (ROOT / "app/examples/training_loop.py").read_text()
SVG = "{http://www.w3.org/2000/svg}"


def select(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.focus("#graph")
    page.keyboard.press("End")
    page.click(f"#graph g.node[data-node-id='{node_id(page, name)}']")
    title = json.dumps(name)  # an op's title is "y · mean"
    wait_until(
        page,
        f"[{title}, {json.dumps(name + ' ·')}].some((s) => document.querySelector('#inspector-body h3')?.textContent.startsWith(s))",
    )


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def torch_grads(source: str) -> dict[str, torch.Tensor]:
    """The leaves' gradients as torch computes the program in float64."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ns = run_reference(source).namespace
    finally:
        torch.set_default_dtype(saved)
    return {k: v.grad for k, v in ns.items() if isinstance(v, torch.Tensor) and v.is_leaf and v.grad is not None}


def what_if_w1_were_2_5(page) -> dict:  # type: ignore[no-untyped-def]
    """Type 2.5 into the inspected w1's field, press Enter, wait for the new run; torch's namespace of that program."""
    field = page.locator("#lab .whatif-field")
    field.fill("2.5")
    page.evaluate("document.body.dataset.ready = 'false'")
    field.press("Enter")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.wait_for_selector(".whatif-summary")
    return run_reference(CHAIN.replace("tensor(2.0, requires_grad=True)", "tensor(2.5, requires_grad=True)")).namespace


def test_check_shows_w1_by_autograd_and_by_nudging(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    page.click("#check")
    page.wait_for_selector(".check-summary", timeout=60_000)
    assert page.text_content(".check-summary .check-verdict") == "3 agree · 0 disagree · 0 not checked"
    select(page, "w1")
    entry = page.locator("#inspector-body .check-entry")
    assert entry.get_attribute("data-check") == "ok"
    autograd = entry.locator(".check-num.autograd").text_content()
    numeric = entry.locator(".check-num.numeric").text_content()
    expected = float(torch_grads(CHAIN)["w1"])
    assert autograd == "3" and expected == pytest.approx(3.0)
    assert numeric.startswith(("3.000", "2.999")) and float(numeric) == pytest.approx(expected, rel=1e-6)
    assert "agrees" in entry.locator(".check-verdict").text_content()
    watched.shot("check-w1")


def test_check_says_where_a_custom_backward_is_wrong(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="custom_function_bug")
    page.click("#check")
    page.wait_for_selector(".check-summary", timeout=60_000)
    bad = page.locator(".check-item.bad")
    assert bad.count() == 1 and bad.locator("button").text_content() == "x"
    bad.locator("button").click()
    wait_until(page, "document.querySelector('#inspector-body h3')?.textContent === 'x'")
    entry = page.locator("#inspector-body .check-entry.bad")
    # x·g against 2x·g: off by half of the true value at every element; the first such is named
    assert "disagrees (max rel. diff 0.5, at x[0])" in entry.text_content()
    autograd = [float(c) for c in entry.locator("table.autograd td").all_inner_texts()]
    numeric = [float(c) for c in entry.locator("table.numeric td").all_inner_texts()]
    assert autograd == [1.0, 2.0, 3.0]  # what the buggy backward returns
    assert numeric == pytest.approx([2.0, 4.0, 6.0], rel=1e-3)  # d(x²)/dx, as torch's own x**2 gives it
    watched.shot("check-bug")


def test_what_if_w1_were_two_and_a_half(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    select(page, "w1")
    edited = what_if_w1_were_2_5(page)
    original = run_reference(CHAIN).namespace
    deltas = {}
    for li in page.locator(".whatif-summary .whatif-delta").all():
        deltas[li.locator("button").text_content()] = (
            li.locator(".whatif-from").text_content(),
            li.locator(".whatif-to").text_content(),
        )
    expected = {"w1": ("2", "2.5"), "y": (f"{original['y'].item():g}", f"{edited['y'].item():g}")}
    for name in ("x", "w2"):  # w1's own gradient (mean(x)·w2) does not move
        expected[f"{name}.grad"] = (f"{original[name].grad.tolist()}", f"{edited[name].grad.tolist()}")
    for key, (before, after) in expected.items():
        assert key in deltas, (key, deltas)
        assert numbers(deltas[key][0]) == pytest.approx(numbers(before), rel=1e-4), key
        assert numbers(deltas[key][1]) == pytest.approx(numbers(after), rel=1e-4), key
    assert "w1.grad" not in deltas
    moved = set(page.evaluate("[...document.querySelectorAll('#graph g.node[data-moved]')].map((g) => Number(g.dataset.nodeId))"))
    assert node_id(page, "w1") in moved and node_id(page, "y") in moved and node_id(page, "b") not in moved
    # the inspector of y shows its own change
    select(page, "y")
    assert numbers(page.text_content("#inspector-body .whatif-deltas")) == pytest.approx(
        [original["y"].item(), edited["y"].item()], rel=1e-4
    )
    watched.shot("whatif")


def test_a_slider_runs_again_as_it_moves_but_not_for_every_move(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    select(page, "w2")
    page.wait_for_selector("#lab .whatif-slider")  # the editor follows the inspector on the next frame
    runs: list[str] = []
    page.on("request", lambda r: r.url.endswith("/api/trace") and runs.append(r.post_data or ""))
    values = [3.1 + i * 0.1 for i in range(30)]
    for v in values:
        # a locator waits for the slider: a run landing may draw the inspector's editor again (see the closing note)
        page.locator("#lab .whatif-slider").evaluate("(s, v) => { s.value = String(v); s.dispatchEvent(new Event('input')); }", v)
        page.wait_for_timeout(10)
    wait_until(
        page,
        f"window.gradwalk.state.trace.nodes.find((n) => n.name === 'w2').value === {json.dumps(round(values[-1], 10))} || "
        f"Math.abs(window.gradwalk.state.trace.nodes.find((n) => n.name === 'w2').value - {values[-1]}) < 1e-6",
    )
    assert 1 <= len(runs) < len(values)  # throttled: one run at a time
    assert json.loads(runs[-1])["overrides"]["w2"] == pytest.approx(values[-1])
    y = page.evaluate("window.gradwalk.state.trace.nodes.find((n) => n.name === 'y').value")
    edited = run_reference(
        CHAIN.replace("tensor(3.0, requires_grad=True)", f"tensor({values[-1]!r}, requires_grad=True)")
    ).namespace
    assert y == pytest.approx(edited["y"].item(), rel=1e-6)


def test_a_training_loop_shows_its_curves_and_a_point_jumps_there(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="training_loop")
    page.wait_for_selector("#curves:not([hidden])")
    losses = []
    for label in (
        page.locator("#curves svg.curve")
        .first.locator(".curve-point")
        .evaluate_all("(ps) => ps.map((p) => p.getAttribute('aria-label'))")
    ):
        losses.append(numbers(label)[-1])
    torch_losses = torch_losses_of(LOOP)
    assert len(losses) == 5 == len(torch_losses)  # one point per iteration
    assert losses == pytest.approx(torch_losses, rel=6e-4)  # shown to 4 significant digits (tests/test_curves.py: exact)
    norms = page.locator("#curves svg.curve").nth(1).locator(".curve-point").count()
    assert norms == 2 * 5  # model.bias and model.weight, each iteration
    assert page.locator("#curves .curve-legend li").all_inner_texts() == ["model.bias", "model.weight"]
    page.locator("#curves svg.curve").first.locator(".curve-point").nth(2).click()
    wait_until(page, "document.querySelector('#curves').dataset.current === '2'")
    step = int(page.get_attribute("body", "data-step") or -1)
    starts = page.evaluate("window.gradwalk.state.trace.passes.map((p) => p.index)")
    assert len(starts) == 5 and page.get_attribute("body", "data-step-type") == "backward_start" and step > 0
    watched.shot("curves")


def test_the_offline_file_and_the_notebook_output_carry_the_curves(browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "loop.html"
    path.write_text(export_html(trace_of(LOOP)), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1000, "height": 760}, offline=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=30_000)
        assert page.locator("#curves:not([hidden]) svg.curve").count() == 2
        assert page.locator("#curves svg.curve").first.locator(".curve-point").count() == 5
        assert page.get_attribute("#curves", "data-current") == "4"  # it opens at the last step
        assert not errors
    finally:
        context.close()


def test_the_offline_file_on_a_phone_gives_the_graph_the_room_until_a_box_is_inspected(browser, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The offline file keeps its inspector under the graph on a narrow screen, 38% of the height even while
    # it only says "Click a node…": at 360 x 740 the training loop's graph had 244 px (a GPT's 218).
    path = tmp_path / "loop.html"
    path.write_text(export_html(trace_of(LOOP)), encoding="utf-8")
    context = browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True, is_mobile=True, offline=True)
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready=true]", timeout=30_000)
        graph = page.locator("#graph").bounding_box()
        assert graph and graph["height"] >= 0.4 * 740, graph
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.evaluate(
            "document.querySelector('#graph g.node[data-node-id]').dispatchEvent(new MouseEvent('click', {bubbles: true}))"
        )
        page.wait_for_selector("#inspector-body h3")
        inspector = page.locator("#inspector").bounding_box()
        assert inspector and inspector["height"] >= 0.3 * 740, inspector
    finally:
        context.close()


def test_a_training_loops_svg_and_png_exports_carry_the_curves(browser) -> None:  # type: ignore[no-untyped-def]
    """The exported figure of a training loop holds its chart: one point per iteration at torch's losses."""
    trace = trace_of(LOOP)
    image = export.svg(trace, browser=browser)
    root = ET.fromstring(image.encode("utf-8"))
    panels = [e for e in root.iter(f"{SVG}svg") if "curve" in (e.get("class") or "").split()]
    assert len(panels) == 2  # the loss, and the gradient norms
    losses = torch_losses_of(LOOP)
    dots = [c for c in panels[0].iter(f"{SVG}circle") if "curve-point" in (c.get("class") or "")]
    assert len(dots) == len(losses) == 5
    # chart.js's scale: the panel's lowest loss on its bottom line (y = 92), the highest on its top (y = 16)
    lo, hi = min(losses), max(losses)
    expected = [16 + (1 - (loss - lo) / (hi - lo)) * 76 for loss in losses]
    assert [float(c.get("cy")) for c in dots] == pytest.approx(expected, abs=1e-4)
    titles = [numbers(c.find(f"{SVG}title").text)[-1] for c in dots]
    assert titles == pytest.approx(losses, rel=6e-4)
    assert len(list(panels[1].iter(f"{SVG}circle"))) == 2 * 5  # model.bias and model.weight
    strip = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "curves")
    legend = [t.text for t in strip.findall(f"{SVG}text")]
    assert legend == ["model.bias", "model.weight"]
    # the chart sits under the graph, inside the picture
    width, height = float(root.get("width")), float(root.get("height"))
    box = [float(v) for v in root.get("viewBox").split()]
    assert box[2:] == [width, height]
    for p in panels:
        assert box[1] < float(p.get("y")) and float(p.get("y")) + float(p.get("height")) <= box[1] + box[3]
    # the PNG is drawn from that SVG: as tall as it at 2x
    data, scale = export.png_scaled(trace, browser=browser)
    assert (scale, struct.unpack(">II", data[16:24])) == (2, (2 * int(width), 2 * int(height)))
    # a program without a loop has no chart in its figure
    chain = ET.fromstring(export.svg(trace_of(CHAIN), browser=browser).encode("utf-8"))
    assert not [e for e in chain.iter(f"{SVG}svg") if "curve" in (e.get("class") or "")]


def test_an_embed_checks_and_asks_what_if_in_its_drawer(watched) -> None:  # type: ignore[no-untyped-def]
    """/embed/{id}: the toolbar's Check opens the inspector's drawer with the check; a leaf's value edited there runs again."""
    created = httpx.post(f"{watched.base}/api/share", json={"source": CHAIN}, timeout=60)
    assert created.status_code == 201, created.text
    page = watched.open(f"/embed/{created.json()['id']}")
    page.set_viewport_size({"width": 960, "height": 540})  # a slide's embed
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert not page.is_visible("#inspector")  # graph and controls first
    page.click("#embed-check")
    page.wait_for_selector("#inspector .check-summary", timeout=60_000)
    assert page.text_content(".check-summary .check-verdict") == "3 agree · 0 disagree · 0 not checked"
    page.locator(".check-item button", has_text="w1").click()
    wait_until(page, "document.querySelector('#inspector-body h3')?.textContent === 'w1'")
    entry = page.locator("#inspector-body .check-entry")
    expected = float(torch_grads(CHAIN)["w1"])
    assert entry.get_attribute("data-check") == "ok" and entry.locator(".check-num.autograd").text_content() == "3"
    numeric = entry.locator(".check-num.numeric").text_content()
    assert numeric.startswith(("3.000", "2.999")) and float(numeric) == pytest.approx(expected, rel=1e-6)
    watched.shot("embed-check")
    # What if w1 were 2.5: y and x's and w2's gradients move as torch says
    edited = what_if_w1_were_2_5(page)
    y = page.locator(".whatif-summary .whatif-delta", has=page.locator("button", has_text=re.compile("^y$")))
    assert numbers(y.locator(".whatif-to").text_content()) == pytest.approx([edited["y"].item()], rel=1e-4)
    w2 = page.evaluate("window.gradwalk.state.trace.nodes.find((n) => n.name === 'w2').grad")
    assert w2 == pytest.approx(edited["w2"].grad.item(), rel=1e-6)
    watched.shot("embed-whatif")
    # Close (and Escape) give the graph back; a box clicked opens the drawer on it
    page.click("#inspector-close")
    assert not page.is_visible("#inspector")
    page.click(f"#graph g.node[data-node-id='{node_id(page, 'b')}']")
    wait_until(page, "document.body.classList.contains('inspecting')")
    wait_until(page, "document.querySelector('#inspector-body h3')?.textContent === 'b'")
    page.keyboard.press("Escape")
    assert not page.is_visible("#inspector")


def test_a_slider_dragged_by_the_mouse_keeps_its_thumb_while_runs_land(watched) -> None:  # type: ignore[no-untyped-def]
    """A student drags w2's slider: the runs its moves start land while the button is still down, and the
    slider under the pointer must stay the same element (a new one would drop the drag half-way)."""
    page = watched.open("/")
    run_program(page, example="seed_5_chain")
    select(page, "w2")
    slider = page.locator("#lab .whatif-slider")
    slider.wait_for()
    slider.evaluate("(s) => { s.dataset.dragged = 'yes'; }")
    runs: list[str] = []
    page.on("request", lambda r: r.url.endswith("/api/trace") and runs.append(r.post_data or ""))
    box = slider.bounding_box()
    assert box is not None
    low, high = (float(v) for v in slider.evaluate("(s) => [s.min, s.max, s.value]")[:2])
    start = float(slider.evaluate("(s) => s.value"))
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + box["width"] * (start - low) / (high - low)
    page.mouse.move(x0, y)
    page.mouse.down()
    for i in range(1, 41):  # ~2 s of dragging to the right end, so several runs land mid-drag
        page.mouse.move(x0 + (box["x"] + box["width"] - x0) * i / 40, y)
        page.wait_for_timeout(50)
    page.mouse.up()
    wait_until(page, "!document.querySelector('#lab')?.dataset.running")
    assert len(runs) >= 2  # runs landed while the button was down
    assert page.locator("#lab .whatif-slider[data-dragged='yes']").count() == 1  # the same element throughout
    final = float(slider.evaluate("(s) => s.value"))
    assert final == pytest.approx(high)  # the drag reached its end
    page.wait_for_timeout(400)
    wait_until(page, "!document.querySelector('#lab')?.dataset.running")
    assert json.loads(runs[-1])["overrides"]["w2"] == pytest.approx(final)
