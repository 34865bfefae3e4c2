"""The shipped notebooks, executed by nbclient in a real ipykernel that imports the installed wheel.

Every cell runs; every `%%gradwalk` cell's output carries the player with its trace, and torch,
running the same cell untraced, is the reference for what the trace says.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

from tests.notebook.conftest import NOTEBOOKS
from tests.notebook.test_api import OUTPUT_MAX_BYTES, embedded_trace
from tests.reference import run_reference

LANGS = [p.stem.rsplit("_", 1)[1] for p in NOTEBOOKS]


def traced_cells(nb: nbformat.NotebookNode) -> list[tuple[str, dict, str]]:
    """(the cell's program, its trace, its output's HTML) for each %%gradwalk cell."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("%%gradwalk"):
            (html,) = [
                o["data"]["text/html"]
                for o in cell.outputs
                if o.get("output_type") == "display_data" and "text/html" in o["data"]
            ]
            out.append((cell.source.split("\n", 1)[1], embedded_trace(html), html))
    return out


def test_both_notebooks_are_shipped() -> None:
    assert LANGS == ["en", "zh"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_cell_ran_without_an_error(executed: dict[str, Path], lang: str) -> None:
    nb = nbformat.read(executed[lang], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o["output_type"] == "error"]
    assert len(traced_cells(nb)) == len(code) - 1  # all but `%load_ext gradwalk` / `import torch`


@pytest.mark.parametrize("lang", LANGS)
def test_each_player_is_small_self_contained_and_in_the_notebooks_language(executed: dict[str, Path], lang: str) -> None:
    for _, trace, html in traced_cells(nbformat.read(executed[lang], as_version=4)):
        assert len(html.encode()) <= OUTPUT_MAX_BYTES
        assert f"&quot;lang&quot;:&quot;{lang}&quot;" in html
        assert trace["source"]


@pytest.mark.parametrize("lang", LANGS)
def test_the_chain_cell_gives_w1_grad_3_and_w2_grad_6_as_torch_does(executed: dict[str, Path], lang: str) -> None:
    (source, trace) = next((s, t) for s, t, _ in traced_cells(nbformat.read(executed[lang], as_version=4)) if "w1 = " in s)
    ref = run_reference("import torch\n" + source).namespace
    grads = {n["label"]: n["grad"] for n in trace["nodes"] if n["kind"] == "leaf"}
    assert grads["w1"] == ref["w1"].grad.item() == 3.0
    assert grads["w2"] == ref["w2"].grad.item() == 6.0
    assert grads["x"] == pytest.approx(ref["x"].grad.tolist())


@pytest.mark.parametrize("lang", LANGS)
def test_the_jacobian_cells_three_passes_give_its_rows(executed: dict[str, Path], lang: str) -> None:
    (source, trace) = next((s, t) for s, t, _ in traced_cells(nbformat.read(executed[lang], as_version=4)) if "Jacobian" in s)
    (a,) = [n["id"] for n in trace["nodes"] if n["label"] == "a"]
    # a step's grad: for each output of the node, an index into the trace's tensors
    got = [[[trace["tensors"][i]["value"] for i in s["grad"]] for s in p["steps"] if s["node"] == a] for p in trace["passes"]]
    # torch: the gradient each backward call adds to a.grad (zeroed between the calls)
    a_ = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = torch.zeros(3)
    b[0], b[1], b[2] = a_[0] ** 2 + a_[1], a_[1] + a_[2], a_[2] ** 3
    rows = [torch.autograd.grad(b, a_, v, retain_graph=True)[0].tolist() for v in torch.eye(3)]
    assert rows == [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 27.0]]
    assert got == [[[row]] for row in rows]
    assert run_reference("import torch\n" + source).stdout.count("tensor(") == 3


@pytest.mark.parametrize("lang", LANGS)
def test_a_cell_sees_the_names_of_the_cells_before_it(executed: dict[str, Path], lang: str) -> None:
    cells = traced_cells(nbformat.read(executed[lang], as_version=4))
    (trace,) = [t for s, t, _ in cells if s.startswith("a.requires_grad_()")]
    assert trace["status"] == "ok"
    assert [n["label"] for n in trace["nodes"]] == ["a"]  # the tensor the cell before bound, named
