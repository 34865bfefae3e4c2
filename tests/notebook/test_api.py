"""gradwalk.trace / show / the player HTML, in this process: torch is the reference for every value."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import torch

from app import i18n, notebook
from app.models import Trace
from app.paths import EXAMPLES_DIR
from tests.reference import run_reference

SEEDS = sorted(EXAMPLES_DIR.glob("seed_*.py"))
OUTPUT_MAX_BYTES = 400_000


def srcdoc(output: str) -> str:
    """The player document inside a notebook output's iframe."""
    m = re.search(r'<iframe [^>]*srcdoc="([^"]*)"', output)
    assert m, "no iframe with srcdoc"
    return html.unescape(m[1])


def embedded_trace(output: str) -> dict:
    m = re.search(r'<script type="application/json" id="trace">(.*?)</script>', srcdoc(output), re.DOTALL)
    assert m, "no trace in the player"
    return json.loads(m[1])


def test_a_cell_binds_its_names_in_the_namespace_it_runs_in() -> None:
    ns: dict = {}
    doc = notebook.trace("import torch\nw = torch.tensor(2.0, requires_grad=True)\ny = w * w\ny.backward()\n", ns)
    assert doc["status"] == "ok"
    assert torch.equal(ns["w"].grad, torch.tensor(4.0))
    assert ns["y"].grad_fn is not None and ns["y"].grad_fn.name() == "MulBackward0"
    assert not [k for k in ns if k.startswith("__gw")], "the tracer's hooks are gone after the run"
    # the next cell sees them, as in a notebook
    doc = notebook.trace("z = w * 3\nz.backward()\nprint(w.grad)\n", ns)
    assert doc["status"] == "ok" and doc["stdout"] == "tensor(7.)\n"
    assert [n["label"] for n in doc["nodes"] if n["op"] == "AccumulateGrad"] == ["w"]


def test_trace_of_the_chain_cell_matches_torch() -> None:
    path = EXAMPLES_DIR / "seed_5_chain.py"
    doc = notebook.trace(path)  # a path reads the file
    same = ("nodes", "edges", "passes")  # stdout and events print object addresses, different per run
    assert (
        [doc[k] for k in same]
        == [notebook.trace(str(path))[k] for k in same]
        == [notebook.trace(path.read_text())[k] for k in same]
    )
    ref = run_reference(path.read_text()).namespace  # torch itself, untraced
    grads = {n["label"]: n["grad"] for n in doc["nodes"]}
    assert grads["w1"] == ref["w1"].grad.item() == 3.0
    assert grads["w2"] == ref["w2"].grad.item() == 6.0
    assert grads["x"] == pytest.approx(ref["x"].grad.tolist())


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_a_seed_cells_output_is_small_and_carries_its_trace(path: Path, lang: str) -> None:
    t = notebook.run(path.read_text())
    out = notebook.player_html(t, None, lang)
    assert len(out.encode()) <= OUTPUT_MAX_BYTES, f"{len(out.encode()):,} bytes"
    assert Trace.model_validate(embedded_trace(out)) == t
    doc = srcdoc(out)
    assert "default-src 'none'" in doc  # the player's own CSP: nothing is fetched
    assert not re.search(r"""(src|href)=["']?(https?:|//|/)""", doc), "no reference outside the file"
    assert 'sandbox="allow-scripts"' in out and "allow-same-origin" not in out
    assert i18n.text(lang, "notebook.untrusted") in out


def test_the_same_cell_gives_the_same_output() -> None:
    source = (EXAMPLES_DIR / "seed_3_scalar_backward.py").read_text()
    assert notebook.player_html(notebook.run(source)) == notebook.player_html(notebook.run(source))


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US"}, "zh"),
        ({"LANG": "C.UTF-8"}, "en"),
    ],
)
def test_the_default_language_is_the_kernels_locale(monkeypatch: pytest.MonkeyPatch, env: dict, lang: str) -> None:
    for k in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(notebook.locale, "getlocale", lambda: (None, None))
    assert notebook.notebook_lang() == lang


@pytest.mark.parametrize("line", ["--lang fr", "--step two", "--direction up", "--colour red", "'unclosed"])
def test_a_bad_magic_line_is_a_usage_error_and_runs_nothing(line: str) -> None:
    ns: dict = {}
    with pytest.raises(notebook.UsageError, match="usage: %%gradwalk"):
        notebook.cell_magic(line, "x = 1\n", ns)
    assert "x" not in ns


def test_gradwalk_check_in_the_kernel_flags_the_buggy_function_and_passes_the_chain() -> None:
    import app

    bug = app.check(EXAMPLES_DIR / "custom_function_bug.py")
    (leaf,) = bug["check"]["passes"][0]["leaves"]
    assert leaf["ok"] is False and leaf["numeric"] == pytest.approx([2.0, 4.0, 6.0], rel=1e-6)  # d(x²)/dx, as torch says
    chain = app.check(EXAMPLES_DIR / "seed_5_chain.py", overrides={"w1": 2.5})
    leaves = {leaf["name"]: leaf for leaf in chain["check"]["passes"][0]["leaves"]}
    assert all(leaf["ok"] for leaf in leaves.values())
    assert leaves["x"]["autograd"] == pytest.approx([2.5 * 3.0 / 5] * 5)  # w1·w2/5 with w1 = 2.5
