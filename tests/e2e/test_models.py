"""The page at the scale of real models, as a student uses it (issue 12): a GPT-style model opens at
its modules, a block opens in place, search finds attention, backward fills a parameter inside a
closed box with torch's gradient, a 50-step RNN reads at Fit, a 300-node graph downloads as PNG."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_page import run_program, wait_until

pytestmark = pytest.mark.slow

PROGRAMS = Path(__file__).resolve().parents[1] / "programs" / "page"
READABLE_PX = 11


@pytest.fixture(scope="module")
def server(module_serve):  # type: ignore[no-untyped-def]
    """A real `gradwalk serve` whose runs may take a model's time on a busy test machine."""
    return module_serve(timeout_s=30)


def open_program(watched, name: str):  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, source=(PROGRAMS / name).read_text())
    return page


# Every text of the boxes drawn in the pane, with its height on screen (its font size times the zoom).
SHOWN_TEXT = """() => {
  const pane = document.getElementById('graph').getBoundingClientRect();
  const k = window.gradwalk.state.graph.view.k;
  return [...document.querySelectorAll('#graph .node text')].filter((t) => {
    const r = t.getBoundingClientRect();
    return t.textContent && getComputedStyle(t).display !== 'none' && r.width > 0
      && r.right > pane.left && r.left < pane.right && r.bottom > pane.top && r.top < pane.bottom;
  }).map((t) => ({ text: t.textContent, cls: t.getAttribute('class'), px: parseFloat(getComputedStyle(t).fontSize) * k }));
}"""


def test_a_model_opens_at_its_modules_with_readable_labels(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    total = page.evaluate("window.gradwalk.state.trace.nodes.length")
    ops = page.locator("#graph [data-node-id]").count()
    boxes = page.locator("#graph .node[data-module]")
    assert total >= 150 and ops < total / 3, (total, ops)
    modules = {boxes.nth(i).get_attribute("data-module") for i in range(boxes.count())}
    assert {"model.blocks.0", "model.blocks.1", "model.blocks.2"} <= modules, modules
    assert all(boxes.nth(i).get_attribute("aria-expanded") == "false" for i in range(boxes.count()))
    # A block's box says what it is: its class, its path, its output's shape and its parameter count.
    block = page.locator('#graph .node[data-module="model.blocks.1"]')
    assert block.locator("text.title").text_content() == "Block"
    assert re.fullmatch(r"\(1, 8, 16\) · [\d,.k]+ params", block.locator("text.val").text_content() or "")
    shown = page.evaluate(SHOWN_TEXT)
    assert shown and min(t["px"] for t in shown) >= READABLE_PX, min(shown, key=lambda t: t["px"])
    watched.shot("model")  # the README's picture of how a model opens


def test_opening_a_block_shows_its_modules_in_place(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    block = page.locator('#graph [data-module="model.blocks.1"]')
    before = page.locator('#graph [data-module="model.blocks.2"]').bounding_box()
    block.click()
    wait_until(page, "document.querySelector('#graph [data-module=\"model.blocks.1\"]').getAttribute('aria-expanded') === 'true'")
    inner = {e.get_attribute("data-module") for e in page.locator('#graph .node[data-module^="model.blocks.1."]').all()}
    assert {"model.blocks.1.ln1", "model.blocks.1.attn", "model.blocks.1.ln2", "model.blocks.1.mlp"} <= inner, inner
    assert page.get_attribute('#graph [data-module="model.blocks.0"]', "aria-expanded") == "false"
    # The rest keeps its order: the next block is still drawn, after the opened one.
    after = page.locator('#graph [data-module="model.blocks.2"]')
    assert before and after.count() == 1
    # Enter on the open block's head closes it again.
    page.focus('#graph .group-head[data-module="model.blocks.1"]')
    page.keyboard.press("Enter")
    wait_until(
        page, "document.querySelector('#graph [data-module=\"model.blocks.1\"]').getAttribute('aria-expanded') === 'false'"
    )
    watched.shot("closed-again")


FOCUSED = "[document.activeElement.getAttribute('class'), document.activeElement.dataset.module ?? null]"


def test_enter_opens_and_closes_a_box_and_the_keyboard_stays_on_it(watched) -> None:  # type: ignore[no-untyped-def]
    # The box is redrawn as a frame when it opens: focus used to fall to the page's body, so a second
    # Enter did nothing.
    page = open_program(watched, "gpt_step.py")
    page.focus("#graph")
    page.keyboard.press("Tab")  # from the pane: the program's first box (it was the first frame's head)
    assert page.evaluate("document.activeElement.dataset.nodeId") == str(page.evaluate("window.gradwalk.state.trace.nodes[0].id"))
    page.focus('#graph .node[data-module="model.blocks.1"]')
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#graph [data-module=\"model.blocks.1\"]').getAttribute('aria-expanded') === 'true'")
    wait_until(page, "document.activeElement.dataset.module === 'model.blocks.1'")
    assert page.evaluate(FOCUSED) == ["group-head", "model.blocks.1"]
    # Tab reads on in the program's order: into the block (it went to the frames drawn after it, then to
    # the graph's first box), and Shift+Tab comes back.
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)[1] == "model.blocks.1.ln1"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == ["group-head", "model.blocks.1"]
    page.keyboard.press("Enter")
    wait_until(
        page, "document.querySelector('#graph [data-module=\"model.blocks.1\"]').getAttribute('aria-expanded') === 'false'"
    )
    wait_until(page, "document.activeElement.dataset.module === 'model.blocks.1'")
    assert page.evaluate(FOCUSED)[1] == "model.blocks.1"


def leaves_the_graph(page, key: str) -> bool:  # type: ignore[no-untyped-def]
    """Press `key` until the focus is out of the drawing (at most 200 times): whether it got out."""
    for _ in range(200):
        page.keyboard.press(key)
        if not page.evaluate("document.activeElement.closest('#graph svg') !== null"):
            return True
    return False


def test_tab_past_the_last_box_leaves_the_graph_even_after_a_box_opened(watched) -> None:  # type: ignore[no-untyped-def]
    # An opened block's boxes are made last in the DOM: from the program's last box the browser's own Tab went
    # on to them, and Tab walked the graph round and round (a keyboard trap).
    page = open_program(watched, "gpt_step.py")
    page.focus('#graph .node[data-module="model.blocks.0"]')
    page.keyboard.press("Enter")
    wait_until(page, "document.activeElement.dataset.module === 'model.blocks.0'")
    assert leaves_the_graph(page, "Tab"), "Tab never left the graph"
    page.focus('#graph .group-head[data-module="model.blocks.0"]')
    assert leaves_the_graph(page, "Shift+Tab"), "Shift+Tab never left the graph"


def test_fit_after_opening_boxes_goes_back_to_the_level_that_reads(watched) -> None:  # type: ignore[no-untyped-def]
    # Fit never shrinks text below 11 px; with every block opened it stayed at zoom 1 on a corner of the
    # drawing, and nothing changed on screen. Beyond a readable size Fit shows the module level instead.
    page = open_program(watched, "gpt_step.py")
    for block in ("model.blocks.0", "model.blocks.1", "model.blocks.2"):
        page.evaluate(
            "(m) => window.gradwalk.state.toggle(document.querySelector(`#graph [data-module='${m}']`).dataset.group, true)",
            block,
        )
    wait_until(page, "document.querySelector('#graph .group-head[data-module=\"model.blocks.2\"]') !== null")
    page.click("#fit")
    wait_until(page, "!document.querySelector('#graph .group-head[data-module^=\"model.blocks.\"]')")
    page.wait_for_timeout(400)
    shown = page.evaluate(SHOWN_TEXT)
    assert shown and min(t["px"] for t in shown) >= READABLE_PX, min(shown, key=lambda t: t["px"])
    assert page.locator('#graph .node[data-module="model.blocks.1"]').count() == 1


def test_an_open_frame_wider_than_the_pane_keeps_its_title_in_view(watched) -> None:  # type: ignore[no-untyped-def]
    # Panned so that an open block's left edge is off the pane, its title was cut to its tail ("ck model.blocks.1").
    page = open_program(watched, "gpt_step.py")
    page.locator('#graph .node[data-module="model.blocks.1"]').click()
    head = page.locator('#graph .group-head[data-module="model.blocks.1"]')
    head.wait_for()
    wait_until(page, "document.getAnimations().length === 0")  # the opening has settled: it moves the view itself
    page.evaluate(
        """() => { const g = window.gradwalk.state.graph, f = g.boxOf(document.querySelector('#graph .group-head[data-module="model.blocks.1"]').dataset.group);
          g.setView({ x: -(f.x - f.w / 2 + 120) * g.view.k, y: 60 - (f.y - f.h / 2) * g.view.k, k: g.view.k }); }"""
    )
    wait_until(page, "document.getAnimations().length === 0")
    pane, title, box = page.locator("#graph").bounding_box(), head.locator("text").bounding_box(), head.bounding_box()
    assert pane and title and box and box["x"] < pane["x"] - 100, (pane, box)  # the frame starts left of the pane
    assert pane["x"] <= title["x"] <= pane["x"] + 20, (pane, title)
    assert (head.locator("text").text_content() or "").startswith("▾ Block")


def test_search_finds_attention_centres_and_selects_it(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    box = page.get_by_role("searchbox", name="Search")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    box.fill("attn")
    options = page.locator("#search-results [role=option]")
    assert options.count() >= 3
    assert options.first.locator(".search-label").text_content() == "model.blocks.0.attn"
    page.keyboard.press("Enter")
    target = page.locator('#graph .node[data-module="model.blocks.0.attn"]')
    target.wait_for()
    assert "selected" in (target.get_attribute("class") or "")
    assert page.get_attribute('#graph [data-module="model.blocks.0"]', "aria-expanded") == "true", "the block around it opened"
    pane = page.locator("#graph").bounding_box()
    r = target.bounding_box()
    assert r and pane and pane["x"] <= r["x"] and r["x"] + r["width"] <= pane["x"] + pane["width"]
    assert pane["y"] <= r["y"] and r["y"] + r["height"] <= pane["y"] + pane["height"], "centred in view"
    assert page.text_content("#inspector-body h3") == "Attention"
    watched.shot("search")


def torch_gradient(program: Path, parameter: str) -> list[float]:
    """What PyTorch itself puts in `parameter`.grad when the program runs."""
    import torch

    scope: dict[str, object] = {"__name__": "__main__"}
    exec(compile(program.read_text(), str(program), "exec"), scope)  # our own test program
    params = dict(scope["model"].named_parameters())  # type: ignore[attr-defined]
    grad = params[parameter.removeprefix("model.")].grad
    assert isinstance(grad, torch.Tensor)
    return [float(x) for x in grad.flatten()]


def test_backward_fills_a_parameter_inside_a_closed_box_with_torchs_gradient(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    page.click("#play")
    page.get_by_role("combobox", name=re.compile("Speed")).select_option("120")
    wait_until(page, "window.gradwalk.state.frame.last", timeout_s=60)
    page.keyboard.press("/")
    page.get_by_role("searchbox", name="Search").fill("blocks.2.ln2")
    page.keyboard.press("Enter")
    box = page.locator('#graph .node[data-module="model.blocks.2.ln2"]')
    box.wait_for()
    assert box.get_attribute("aria-expanded") == "false", "the LayerNorm stays a closed box"
    assert "bwd-done" in (box.get_attribute("class") or ""), "backward went through it"
    panel = page.locator("#inspector-body")
    assert panel.locator("h3").text_content() == "LayerNorm"
    names = [b.text_content() for b in panel.locator(".param button").all()]
    assert names == ["model.blocks.2.ln2.weight", "model.blocks.2.ln2.bias"]
    shown = [float(c) for c in panel.locator(".matrix.grad").first.locator("td").all_text_contents()]
    want = torch_gradient(PROGRAMS / "gpt_step.py", "model.blocks.2.ln2.weight")
    assert shown == pytest.approx(want, rel=1e-3, abs=1e-6)
    watched.shot("grad-in-closed-box")


def torch_block_output(program: Path, block: int) -> list[float]:
    """What model.blocks[block] returns when the program runs in torch (captured by a forward hook)."""
    import torch

    seen: list[torch.Tensor] = []
    scope: dict[str, object] = {"__name__": "__main__"}
    source = program.read_text().replace(
        "logits = model(idx)",
        "hook = model.blocks[BLOCK].register_forward_hook(lambda m, i, o: SEEN.append(o))\nlogits = model(idx)",
    )
    scope.update(BLOCK=block, SEEN=seen)
    exec(compile(source, str(program), "exec"), scope)  # our own test program, with a hook
    assert len(seen) == 1
    return [float(x) for x in seen[0].detach().flatten().tolist()]


def test_forward_lights_a_closed_block_and_shows_its_output(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    block = page.locator('#graph .node[data-module="model.blocks.0"]')
    page.evaluate("window.gradwalk.seek(0)")
    assert "future" in (block.get_attribute("class") or ""), "not run yet at the start"
    # Step on (as playing does, without opening anything) until the block's operations run: it is lit.
    steps = page.evaluate("window.gradwalk.state.frame.total")
    for step in range(steps):
        page.evaluate(f"window.gradwalk.seek({step})")
        if "current" in (block.get_attribute("class") or "").split():
            break
    else:
        pytest.fail("the block was never lit")
    assert block.get_attribute("aria-expanded") == "false", "playing does not open it"
    # Past its last operation it shows its output, the numbers torch computes.
    while not (block.locator("text.result").count() and block.locator("text.result").text_content()):
        step += 1
        page.evaluate(f"window.gradwalk.seek({step})")
    shown = block.locator("text.result").text_content() or ""
    first = float(re.match(r"→ \[\[\[(-?[\d.e-]+)", shown)[1])  # type: ignore[index]
    assert first == pytest.approx(torch_block_output(PROGRAMS / "gpt_step.py", 0)[0], rel=1e-3), shown
    watched.shot("forward-output")


def test_stepping_by_box_passes_a_closed_box_in_one_step_and_by_operation_opens_it(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "gpt_step.py")
    lit = "[...document.querySelectorAll('#graph .node.current, #graph .node.bwd-current')].map((e) => e.dataset.module ?? e.dataset.nodeId)"
    page.get_by_role("combobox", name="Step").select_option("box")
    page.focus("#graph")
    seen = []
    for _ in range(12):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(30)
        seen.append((page.evaluate("window.gradwalk.state.step"), tuple(page.evaluate(lit))))
    blocks = [s for s in seen if any(str(m).startswith("model.blocks.") for m in s[1])]
    assert blocks, seen
    # Each block is lit by one step: its dozens of operations pass at once.
    assert len({m for _, ms in blocks for m in ms}) == len(blocks), seen
    assert all(b[0] - a[0] >= 1 for a, b in zip(seen, seen[1:])), seen
    assert page.locator('#graph [data-module="model.blocks.0"][aria-expanded="true"]').count() == 0
    # By operation, the next step opens the box the operation runs in.
    page.get_by_role("combobox", name="Step").select_option("op")
    page.keyboard.press("Home")
    page.focus("#graph")
    while page.locator('#graph [data-module="model.blocks.0"][aria-expanded="true"]').count() == 0:
        page.keyboard.press("ArrowRight")
        assert page.evaluate("window.gradwalk.state.step") < 200, "stepped past the first block without opening it"
    current = page.evaluate(lit)
    assert current and all(str(c).isdigit() for c in current), current  # an operation's own box is lit
    watched.shot("stepped-into-block")


def test_a_50_step_rnn_at_fit_reads_at_its_loop_level(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "rnn_50.py")
    page.keyboard.press("End")
    page.click("#fit")
    page.wait_for_timeout(300)
    iterations = page.locator("#graph .node.group.iteration")
    assert iterations.count() == 49, "each step of the loop but the first is one box"
    assert page.locator("#graph .group-head").first.text_content().startswith("▾ iteration 1")
    shown = page.evaluate(SHOWN_TEXT)
    assert shown and min(t["px"] for t in shown) >= READABLE_PX, min(shown, key=lambda t: t["px"])
    assert page.evaluate("window.gradwalk.state.graph.view.k") >= 1
    # The map shows the rest; dragging it moves the view there.
    minimap = page.locator("#graph canvas.map")
    assert minimap.is_visible()
    before = page.evaluate("({...window.gradwalk.state.graph.view})")
    m = minimap.bounding_box()
    assert m
    page.mouse.click(m["x"] + m["width"] - 3, m["y"] + m["height"] - 3)
    after = page.evaluate("({...window.gradwalk.state.graph.view})")
    assert (after["x"], after["y"]) != (before["x"], before["y"])
    watched.shot("rnn-fit")


def test_png_of_a_300_node_graph_downloads(watched) -> None:  # type: ignore[no-untyped-def]
    page = open_program(watched, "chain_300.py")
    page.keyboard.press("End")
    assert page.evaluate("window.gradwalk.state.graph.layout.items.length") >= 300
    with page.expect_download(timeout=60_000) as download:
        page.click("#export-png")
    data = Path(download.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    layout = page.evaluate("[window.gradwalk.state.graph.layout.width, window.gradwalk.state.graph.layout.height]")
    assert width >= layout[0] and height >= layout[1], (width, height, layout)  # at least 1x, at most 2x
    assert width <= 2 * layout[0] + 60 and height <= 2 * layout[1] + 60


# Everything drawn in the graph, element by element (sorted: kept elements and new ones are in another order).
DRAWN = """() => [...document.querySelectorAll('#graph svg g.frames > *, #graph svg g.edges > *, #graph svg g.nodes > *')]
  .map((e) => [e.tagName, ...[...e.attributes].filter((a) => a.name !== 'style').map((a) => `${a.name}=${a.value}`).sort(),
    ...[...e.querySelectorAll('*')].map((c) => `${c.tagName}:${[...c.attributes].map((a) => `${a.name}=${a.value}`).sort()}:${c.children.length ? '' : c.textContent}`)].join('|'))
  .sort()"""


def test_opening_and_closing_boxes_draws_what_a_fresh_drawing_does(watched) -> None:  # type: ignore[no-untyped-def]
    # Opening a box keeps the elements of the boxes that stay (moved) and makes only the new ones: after
    # a few openings and a closing, mid-backward, the drawing must be the one a fresh draw of the same
    # layout makes, attribute for attribute and text for text.
    page = open_program(watched, "rnn_50.py")
    page.keyboard.press("End")
    page.evaluate("window.gradwalk.state.player.seek(window.gradwalk.state.player.total - 40)")
    keys = page.evaluate("window.gradwalk.state.graph.closed.slice(0, 3).map((x) => x.gl.key)")
    for key in keys:
        page.evaluate("(k) => window.gradwalk.state.toggle(k, true)", key)
    page.evaluate("(k) => window.gradwalk.state.toggle(k, false)", keys[1])
    kept = page.evaluate(DRAWN)
    page.evaluate(
        "() => { const v = window.gradwalk.state; v.graph.draw(v.trace, v.graph.layout, v.open); v.graph.paint(v.frame); }"
    )
    fresh = page.evaluate(DRAWN)
    assert len(kept) > 100 and page.locator("#graph .frame").count() >= 2
    assert kept == fresh, [d for d in kept if d not in fresh][:3]


def test_a_drawing_wider_than_the_pane_opens_where_the_program_starts(watched) -> None:  # type: ignore[no-untyped-def]
    """A shared 4-block GPT training step opens at step 0 at readable text, so it does not fit the
    pane: the camera shows where the program starts (its first operation's box, whole) and no empty pane
    beyond the drawing's edges (it used to sit at the drawing's left edge, that box half outside)."""
    source = (PROGRAMS / "gpt_sdpa_adamw.py").read_text()
    created = httpx.post(f"{watched.base}/api/share", json={"source": source}, timeout=120)
    assert created.status_code == 201, created.text
    page = watched.open(created.json()["url"])
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    page.wait_for_timeout(300)
    seen = page.evaluate(
        """() => {
      const g = window.gradwalk.state.graph, pane = document.getElementById('graph').getBoundingClientRect();
      const nodes = window.gradwalk.state.trace.nodes, first = nodes.find((n) => n.kind === 'op').id;
      const b = g.boxOf(first), v = g.view;  // its box, or the closed box holding it (layout px, centred)
      return { step: document.body.dataset.step, k: v.k, x: v.x, drawn: g.layout.width * v.k,
               pane: [pane.left, pane.right], box: [pane.left + v.x + (b.x - b.w / 2) * v.k, pane.left + v.x + (b.x + b.w / 2) * v.k] };
    }"""
    )
    assert seen["step"] == "0" and seen["drawn"] > seen["pane"][1] - seen["pane"][0], seen
    assert seen["pane"][0] <= seen["box"][0] and seen["box"][1] <= seen["pane"][1], seen
    assert seen["x"] <= 12 and seen["x"] + seen["drawn"] >= seen["pane"][1] - seen["pane"][0] - 12, seen
