"""The inspector at the scale of real models: a parameter's long vector, its users in each iteration of a
training loop, and a big value's heatmap, on a model's page (issue 12)."""

from __future__ import annotations

import pytest

from tests.e2e.test_models import PROGRAMS, open_program, server  # noqa: F401 (server: the slow runs' fixture)
from tests.e2e.test_page import run_program, wait_until

pytestmark = pytest.mark.slow


def test_a_long_vector_in_the_inspector_scrolls_in_its_own_table_not_the_whole_panel(watched) -> None:  # type: ignore[no-untyped-def]
    # A LayerNorm's 16 weights in one row were wider than the inspector: the whole panel scrolled sideways,
    # its what-if fields cut at the window's edge.
    page = open_program(watched, "gpt_step.py")
    page.keyboard.press("End")
    page.keyboard.press("/")
    page.get_by_role("searchbox", name="Search").fill("blocks.0.ln1.weight")
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#inspector-body h3')?.textContent === 'model.blocks.0.ln1.weight'")
    panel = "document.getElementById('inspector')"
    assert page.evaluate(f"{panel}.scrollWidth <= {panel}.clientWidth + 1"), page.evaluate(
        f"[{panel}.scrollWidth, {panel}.clientWidth]"
    )
    grad = page.locator("#inspector-body .matrix.grad").first
    assert grad.locator("td").count() == 16
    box, pane = grad.bounding_box(), page.locator("#inspector").bounding_box()
    assert box and pane and box["x"] + box["width"] <= pane["x"] + pane["width"] + 1


def test_a_parameters_users_in_a_training_loop_say_which_iteration_each_is(watched) -> None:  # type: ignore[no-untyped-def]
    # model.weight is used once per iteration: its "Used by" list was five identical "ᵀ (TBackward0)" links.
    page = watched.open("/")
    run_program(page, example="training_loop")
    page.keyboard.press("End")
    page.keyboard.press("/")
    page.get_by_role("searchbox", name="Search").fill("model.weight")
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#inspector-body h3')?.textContent === 'model.weight'")
    users = [b.text_content() or "" for b in page.locator("#inspector-body ul.neighbours").last.locator("button").all()]
    assert len(users) == 5 and len(set(users)) == 5, users
    assert users[1].endswith("iteration 2"), users


def test_a_heatmaps_legend_is_in_the_pages_language(watched) -> None:  # type: ignore[no-untyped-def]
    # A value of more than 64 numbers is a heatmap, whose legend was English on a Chinese page ("1×96 · min … · max …").
    page = watched.open("/?lang=zh")
    run_program(page, source=(PROGRAMS / "gpt_step.py").read_text())
    page.keyboard.press("End")
    page.keyboard.press("/")
    page.get_by_role("searchbox", name="查找").fill("blocks.0.attn.qkv.weight")
    page.keyboard.press("Enter")
    legend = page.locator("#inspector-body .heatmap + .legend").first
    legend.wait_for()
    text = legend.text_content() or ""
    assert "最小" in text and "最大" in text and "min" not in text, text
