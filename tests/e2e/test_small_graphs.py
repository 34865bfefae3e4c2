"""The seed's small graphs on a laptop (1366 x 768), as issue 12 found them: the 15-node Jacobian at Fit
with readable text, a recurrence that is not a narrow column in a wide pane, and a backward pass whose
camera does not cut off the chain."""

from __future__ import annotations

import pytest

from tests.e2e.test_page import run_program

pytestmark = pytest.mark.slow

LAPTOP = {"width": 1366, "height": 768}
READABLE_PX = 11

# The pane, the boxes drawn (on screen) and the smallest box text on screen (font size times the zoom).
PICTURE = """() => {
  const p = document.getElementById('graph').getBoundingClientRect();
  const svg = document.querySelector('#graph g.nodes').ownerSVGElement;
  const k = svg.getBoundingClientRect().width / svg.width.baseVal.value;
  const boxes = [...svg.querySelectorAll('g.nodes g.node')].map((g) => {
    const r = g.querySelector('rect.box').getBoundingClientRect();
    return { id: g.dataset.nodeId ?? g.dataset.module, current: /\\b(current|bwd-current)\\b/.test(g.getAttribute('class')),
             left: r.left, right: r.right, top: r.top, bottom: r.bottom };
  });
  const px = [...svg.querySelectorAll('g.nodes text')].filter((t) => t.textContent && t.getBoundingClientRect().width > 0)
    .map((t) => parseFloat(getComputedStyle(t).fontSize) * k);
  return { pane: { left: p.left, right: p.right, top: p.top, bottom: p.bottom }, boxes, px: Math.min(...px) };
}"""


def laptop(watched, example: str):  # type: ignore[no-untyped-def]
    watched.page.set_viewport_size(LAPTOP)
    page = watched.open(f"/?example={example}")
    run_program(page)
    page.wait_for_timeout(400)  # the first Fit's glide
    return page


def extent(boxes: list[dict]) -> tuple[float, float]:
    return max(b["right"] for b in boxes) - min(b["left"] for b in boxes), max(b["bottom"] for b in boxes) - min(
        b["top"] for b in boxes
    )


def test_the_jacobian_at_fit_is_readable(watched) -> None:  # type: ignore[no-untyped-def]
    page = laptop(watched, "seed_4_jacobian")
    page.get_by_role("button", name="Fit").click()
    page.wait_for_timeout(400)
    seen = page.evaluate(PICTURE)
    assert len(seen["boxes"]) == page.evaluate("window.gradwalk.state.trace.nodes.length") == 15, "no box hidden in a group"
    assert seen["px"] >= READABLE_PX - 0.05, seen["px"]  # it was ~7 px before issue 12
    watched.shot("jacobian-fit")


def test_a_recurrence_is_not_a_narrow_column(watched) -> None:  # type: ignore[no-untyped-def]
    page = laptop(watched, "recurrence")
    seen = page.evaluate(PICTURE)
    pane = seen["pane"]
    width, height = extent(seen["boxes"])
    pane_width, pane_height = pane["right"] - pane["left"], pane["bottom"] - pane["top"]
    # Its iterations are boxes (the first open), so the drawing keeps close to the pane's shape.
    assert page.locator('#graph [data-module="iteration 1"], #graph .group-head').count() >= 1
    assert width >= 0.5 * pane_width, (width, pane_width)
    assert width / height >= 0.4 * pane_width / pane_height, (width, height, pane_width, pane_height)
    assert seen["px"] >= READABLE_PX - 0.05
    watched.shot("recurrence-fit")


def test_the_backward_camera_keeps_the_chain_in_view(watched) -> None:  # type: ignore[no-untyped-def]
    page = laptop(watched, "seed_5_chain")
    total = page.evaluate("window.gradwalk.state.frame.total")
    backward = 0
    for step in range(total):
        page.evaluate(f"window.gradwalk.seek({step})")
        if page.evaluate("window.gradwalk.state.frame.phase") != "backward":
            continue
        backward += 1
        page.wait_for_timeout(120)
        seen = page.evaluate(PICTURE)
        p = seen["pane"]
        for b in seen["boxes"]:
            cx, cy = (b["left"] + b["right"]) / 2, (b["top"] + b["bottom"]) / 2
            assert p["left"] <= cx <= p["right"] and p["top"] <= cy <= p["bottom"], f"step {step}: box {b['id']} cut off"
            if b["current"]:
                inside = (
                    p["left"] <= b["left"] and b["right"] <= p["right"] and p["top"] <= b["top"] and b["bottom"] <= p["bottom"]
                )
                assert inside, f"step {step}: the current box {b['id']} is not whole"
    assert backward >= 5, backward
    watched.shot("chain-backward")
