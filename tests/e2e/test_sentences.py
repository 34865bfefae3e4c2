"""The page's sentences and numbers as a student meets them: a timeout said at once with its limit,
Python's "Did you mean", an example opened from the URL at a step, gradient labels that do not overlap."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_page import run_program, type_program, wait_until

pytestmark = pytest.mark.slow


def test_a_timeout_is_said_at_once_with_its_limit(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    type_program(page, "import torch\nx = torch.ones(2, requires_grad=True)\ny = x * 2\nwhile True:\n    pass\n")
    page.get_by_role("button", name="Run").click()
    progress = page.locator("#progress")
    progress.wait_for(state="visible")
    page.wait_for_timeout(1200)
    assert re.fullmatch(r"Running… [1-9]\.\d s of 5 s", progress.inner_text().strip()), progress.inner_text()
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    # No autoplay up to it: the last step, and the reason, are shown as soon as the trace arrives.
    last = page.evaluate("window.gradwalk.state.player.total - 1")
    assert int(page.get_attribute("body", "data-step") or -1) == last
    assert page.get_attribute("#play", "aria-pressed") != "true"
    assert "ran too long" in page.text_content("#output")


def test_a_misspelt_name_says_did_you_mean(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, source="import torch\ntotal = torch.ones(2, requires_grad=True)\nprint(totl)\n")
    page.keyboard.press("End")
    assert "Did you mean: 'total'?" in page.text_content("#output")
    assert page.text_content("#caption") == "The program stopped: NameError: name 'totl' is not defined. Did you mean: 'total'?"


def test_an_example_opens_from_the_url_at_its_step(watched) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/?example=seed_4_jacobian&step=10")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.input_value("#examples") == "seed_4_jacobian"
    assert page.get_attribute("body", "data-step") == "10"
    assert page.text_content("#caption") == "a[2] = 3 is computed; autograd records SelectBackward0 to differentiate it later."
    # Editing the program makes it no longer the example: a reload runs nothing it did not ask for.
    type_program(page, "import torch\n")
    assert "example=" not in page.url


def _overlaps(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Every pair of drawn gradient labels, and of a label and a box, that overlap on screen (from the DOM)."""
    return page.evaluate(
        """() => {
        const rect = (e) => e.getBoundingClientRect();
        const hit = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
        const labels = [...document.querySelectorAll(".edge-label rect")].map(rect);
        const boxes = [...document.querySelectorAll("g.node > rect")].map(rect);
        const out = [];
        labels.forEach((a, i) => {
          labels.slice(i + 1).forEach((b) => hit(a, b) && out.push("label/label"));
          boxes.forEach((b) => hit(a, b) && out.push("label/box"));
        });
        return out;
    }"""
    )


@pytest.mark.parametrize("present", [False, True], ids=["page", "present"])
def test_gradient_labels_overlap_nothing_on_the_mlp(watched, present: bool) -> None:  # type: ignore[no-untyped-def]
    page = watched.open("/")
    run_program(page, example="mlp_step")
    if present:
        page.click("#present")
        wait_until(page, "document.body.classList.contains('presenting')")
    total = page.evaluate("window.gradwalk.state.player.total")
    steps = [
        i
        for i in range(total)
        if page.evaluate(
            f"window.gradwalk.state.trace && (window.gradwalk.seek({i}), document.querySelectorAll('.edge-label').length)"
        )
    ]
    assert steps, "the backward pass labels its edges"
    for i in steps:
        page.evaluate(f"window.gradwalk.seek({i})")
        page.wait_for_timeout(30)
        assert _overlaps(page) == [], f"step {i}"
    # The constant x feeds no gradient anywhere: no edge from a constant is drawn as carrying one.
    page.keyboard.press("End")
    carried_from_constants = page.evaluate(
        "[...document.querySelectorAll('path.edge.carried')].filter((e) => window.gradwalk.state.trace.nodes.find((n) => n.id === Number(e.dataset.source))?.kind === 'constant').length"
    )
    assert carried_from_constants == 0
