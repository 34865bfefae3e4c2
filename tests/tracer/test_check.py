"""The numeric check against PyTorch: autograd's gradients as torch gives them in float64, the nudged
estimates within 1e-6 of them, and a wrong backward caught."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from app.models import Check, Trace
from app.tracer import check_json, trace_json
from app.tracer.check import TOLERANCE, check, join
from tests.reference import decode, run_reference

ROOT = Path(__file__).resolve().parents[2]
CHECK_PROGRAMS = ROOT / "tests" / "programs" / "check"
WRONG = ROOT / "app" / "examples" / "custom_function_bug.py"  # the gallery's lesson: a backward that is wrong
AGREEING = [
    *(p for p in sorted((ROOT / "app" / "examples").glob("*.py")) if p != WRONG),
    *(CHECK_PROGRAMS / f"{name}.py" for name in ("mean_matmul", "softmax", "layer_norm", "random_dropout")),
    *(ROOT / "tests" / "programs" / f"{name}.py" for name in ("autograd_backward_api", "broadcasting", "higher_order")),
    *(ROOT / "tests" / "programs" / f"{name}.py" for name in ("inplace_ops", "manual_sgd_data", "optimizer_loop")),
]


def _check(source: str, max_elements: int = 2_000, budget_s: float = 60.0) -> dict[str, Any]:
    doc = check(source, max_elements, time.monotonic() + budget_s)
    Check.model_validate(doc)  # the document's own schema
    return doc


def _torch64(source: str) -> Any:
    """The program run by torch itself in float64, from the check's seed."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    random.seed(0)
    try:
        return run_reference(source)
    finally:
        torch.set_default_dtype(saved)


def _resolve(namespace: dict[str, Any], name: str) -> torch.Tensor:
    """`model.0.weight` or `w1` in the program's namespace."""
    first, *rest = name.split(".")
    obj = namespace[first]
    for part in rest:
        obj = getattr(obj, part)
    return obj


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = torch.maximum(torch.maximum(a.abs(), b.abs()), torch.ones_like(a))
    return float(((a - b).abs() / scale).max()) if a.numel() else 0.0


def _tensor(value: Any) -> torch.Tensor:
    return torch.tensor(decode(value), dtype=torch.float64)


@pytest.mark.parametrize("path", AGREEING, ids=lambda p: p.stem)
def test_nudging_agrees_with_torch(path: Path) -> None:
    source = path.read_text()
    doc = _check(source)
    ref = _torch64(source)
    checked = 0
    for p in doc["passes"]:
        assert p["skipped"] is None, (p["index"], p["skipped"])
        expected = {id(t): g for t, g in ref.passes[p["index"]].values()}
        for leaf in p["leaves"]:
            assert leaf["skipped"] is None, (leaf["name"], leaf["skipped"])
            torch_grad = expected[id(_resolve(ref.namespace, leaf["name"]))]
            autograd, numeric = _tensor(leaf["autograd"]), _tensor(leaf["numeric"])
            assert torch.allclose(autograd, torch_grad, rtol=1e-12, atol=1e-15), leaf["name"]
            assert _rel(numeric, torch_grad) <= 1e-6, leaf["name"]
            assert leaf["ok"] is True and leaf["max_rel_diff"] <= TOLERANCE
            assert leaf["max_rel_diff"] == pytest.approx(_rel(autograd, numeric), abs=1e-15)
            checked += 1
    assert checked == sum(len(p) for p in ref.passes), "every leaf torch saw a gradient reach was checked"
    assert doc["elements"] == sum(math.prod(leaf["shape"]) for p in doc["passes"] for leaf in p["leaves"])


def test_a_wrong_custom_function_is_flagged_where_it_is_wrong() -> None:
    doc = _check((CHECK_PROGRAMS / "wrong_function.py").read_text())
    leaves = {leaf["name"]: leaf for leaf in doc["passes"][0]["leaves"]}
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    (x * x * 0.5).sum().backward()  # what Square should have sent: 2·x·0.5
    assert leaves["w"]["ok"] is True  # w's path does not go through Square
    assert leaves["x"]["ok"] is False
    assert _tensor(leaves["x"]["autograd"]).tolist() == [0.5, 0.5, 0.5]  # what the wrong backward returned
    assert _rel(_tensor(leaves["x"]["numeric"]), x.grad) <= 1e-6
    assert leaves["x"]["max_rel_diff"] == pytest.approx(2.5 / 3, rel=1e-6)  # 0.5 vs 3.0 at x = 3
    assert leaves["x"]["worst"] == [2]


def test_the_gallery_s_buggy_function_is_flagged() -> None:
    (leaf,) = _check(WRONG.read_text())["passes"][0]["leaves"]
    assert leaf["ok"] is False and _tensor(leaf["autograd"]).tolist() == [1.0, 2.0, 3.0]  # x * grad_output
    assert _rel(_tensor(leaf["numeric"]), torch.tensor([2.0, 4.0, 6.0], dtype=torch.float64)) <= 1e-6


def test_a_nonscalar_root_is_checked_through_its_gradient() -> None:
    doc = _check((ROOT / "app/examples/seed_4_jacobian.py").read_text())
    jacobian = torch.autograd.functional.jacobian(
        lambda a: torch.stack([a[0] ** 2 + a[1], a[1] + a[2], a[2] ** 3]), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    )
    for p, row in zip(doc["passes"], jacobian):
        (leaf,) = p["leaves"]
        assert _rel(_tensor(leaf["numeric"]), row) <= 1e-6 and leaf["ok"]


def test_detached_paths_disagree_as_autograd_ignores_them() -> None:
    doc = _check((ROOT / "tests/programs/retain_detach_nograd.py").read_text())
    (leaf,) = doc["passes"][0]["leaves"]
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    # out = (2x)·(2x) + 5x, all of it a function of x: 8x + 5; autograd sees only 4x of it (d is detached, m no_grad)
    assert _rel(_tensor(leaf["numeric"]), 8 * x + 5) <= 1e-6
    assert _tensor(leaf["autograd"]).tolist() == (4 * x).tolist()
    assert leaf["ok"] is False


def test_narrower_floats_the_program_asks_for_run_in_float64() -> None:
    doc = _check((CHECK_PROGRAMS / "float32_asked.py").read_text())
    leaves = doc["passes"][0]["leaves"]
    assert {leaf["name"] for leaf in leaves} == {"a", "layer.weight", "layer.bias"}
    assert all(leaf["ok"] and leaf["max_rel_diff"] < 1e-8 for leaf in leaves)


def test_a_program_that_does_not_repeat_itself_is_not_judged() -> None:
    doc = _check((CHECK_PROGRAMS / "not_repeatable.py").read_text())
    (leaf,) = doc["passes"][0]["leaves"]
    assert leaf["skipped"] == "not_repeatable" and leaf["ok"] is None and leaf["numeric"] is None
    assert "same seed" in doc["notice"]


def test_leaves_beyond_the_element_budget_are_skipped_and_said_so() -> None:
    source = (CHECK_PROGRAMS / "mean_matmul.py").read_text()  # b: 3 elements, W: 12, x: 8 (engine order b, W, x)
    doc = _check(source, max_elements=11)
    by_name = {leaf["name"]: leaf for leaf in doc["passes"][0]["leaves"]}
    assert by_name["b"]["ok"] is True and by_name["x"]["ok"] is True  # 3 + 8 fit
    assert by_name["W"]["skipped"] == "budget" and by_name["W"]["numeric"] is None
    assert by_name["W"]["autograd"] is not None  # autograd's own answer is still shown
    assert doc["elements"] == 11


def test_no_time_left_skips_what_is_left() -> None:
    doc = _check((CHECK_PROGRAMS / "mean_matmul.py").read_text(), budget_s=0.0)
    assert [leaf["skipped"] for leaf in doc["passes"][0]["leaves"]] == ["time"] * 3


@pytest.mark.parametrize(
    ("source", "skipped"),
    [
        ("import torch\nx = torch.ones(3, requires_grad=True)\ny = x * 2\ny.backward()\n", "failed"),
        ("import torch\nx = torch.ones(3, requires_grad=True)\n(x * 2).backward(torch.ones(3) * float('nan'))\n", "not_finite"),
        (  # one gradient per row of grad_outputs: nudging finds the gradient of one objective (it once compared [3, 3] with [3])
            "import torch\nx = torch.ones(3, requires_grad=True)\ng, = torch.autograd.grad(x.sin() * x, x, torch.eye(3), is_grads_batched=True)\n",
            "batched",
        ),
    ],
)
def test_passes_that_cannot_be_checked_say_why(source: str, skipped: str) -> None:
    doc = _check(source)
    assert [p["skipped"] for p in doc["passes"]] == [skipped]


def test_a_sparse_gradient_is_checked_as_dense() -> None:
    """nn.Embedding(sparse=True): its weight's gradient is sparse (the check once failed the whole run on it:
    "killed" through the sandbox); it is compared as dense with the nudges, and with torch's own."""
    source = (
        "import torch\nfrom torch import nn\nemb = nn.Embedding(10, 3, sparse=True)\n"
        "loss = emb(torch.tensor([1, 2, 2, 5])).pow(2).sum()\nloss.backward()\n"
    )
    doc = _check(source)
    ((leaf,),) = [p["leaves"] for p in doc["passes"]]
    assert leaf["name"] == "emb.weight" and leaf["ok"] is True and leaf["max_rel_diff"] < TOLERANCE
    expected = _torch64(source).namespace["emb"].weight.grad.to_dense()
    assert _rel(_tensor(leaf["autograd"]), expected) < 1e-12 and _rel(_tensor(leaf["numeric"]), expected) < TOLERANCE


def test_a_nudge_that_breaks_the_program_is_reported() -> None:
    source = "import torch\nx = torch.tensor(2.0, requires_grad=True)\nassert x.item() == 2.0\n(x * x).backward()\n"
    (leaf,) = _check(source)["passes"][0]["leaves"]
    assert leaf["skipped"] == "nudge_failed" and leaf["autograd"] == 4.0


def test_a_program_that_does_not_compile_is_not_checked() -> None:
    doc = _check("x = (")
    assert doc["passes"] == [] and "does not compile" in doc["notice"]


def test_a_program_cannot_escape_its_stop_by_catching_it() -> None:
    source = "import torch\nx = torch.tensor(3.0, requires_grad=True)\ntry:\n    (x * x).backward()\nexcept BaseException:\n    pass\nprint(x * 2)\n"
    (leaf,) = _check(source)["passes"][0]["leaves"]
    assert leaf["ok"] is True and _tensor(leaf["numeric"]).item() == pytest.approx(6.0, rel=1e-9)


@pytest.mark.parametrize("name", ["seed_5_chain", "mlp_step", "seed_4_jacobian"])
def test_checked_leaves_are_the_trace_nodes_of_the_same_program(name: str) -> None:
    source = (ROOT / "app" / "examples" / f"{name}.py").read_text()
    trace = json.loads(trace_json(source))
    doc = _check(source)
    join(doc, trace)
    trace["check"] = doc
    validated = Trace.model_validate(trace)
    assert validated.check is not None
    for p in validated.check.passes:
        steps = {s.node for s in validated.passes[p.index].steps}
        for leaf in p.leaves:
            assert leaf.node is not None and leaf.node in steps
            node = validated.nodes[leaf.node]
            assert (node.kind, node.label, node.shape) == ("leaf", leaf.name, leaf.shape)


def test_the_chain_example_checks_w1_as_three() -> None:
    doc = _check((ROOT / "app/examples/seed_5_chain.py").read_text())
    w1 = next(leaf for leaf in doc["passes"][0]["leaves"] if leaf["name"] == "w1")
    assert w1["autograd"] == pytest.approx(3.0, abs=1e-15) and w1["numeric"] == pytest.approx(3.0, rel=1e-9)
    assert w1["ok"] is True


def test_a_check_with_overrides_checks_the_edited_program() -> None:
    source = (ROOT / "app/examples/seed_5_chain.py").read_text()
    trace = Trace.model_validate_json(check_json(source, overrides={"w2": -1.5}))
    edited = _torch64(source.replace("w2 = torch.tensor(3.0,", "w2 = torch.tensor(-1.5,"))
    assert trace.check is not None and [o.applied for o in trace.overrides] == [True]
    expected = {id(t): g for t, g in edited.passes[0].values()}
    for leaf in trace.check.passes[0].leaves:
        torch_grad = expected[id(_resolve(edited.namespace, leaf.name))]
        assert torch.allclose(_tensor(leaf.autograd), torch_grad) and _rel(_tensor(leaf.numeric), torch_grad) <= 1e-6
        assert leaf.node is not None and trace.nodes[leaf.node].label == leaf.name


def test_a_check_that_asks_for_an_unknown_name_runs_nothing() -> None:
    trace = Trace.model_validate_json(check_json("import torch\nw = torch.ones(1)\n", overrides={"v": 1.0}))
    assert trace.check is None and trace.nodes == [] and trace.overrides[0].problem == "unknown_name"


def test_a_pass_inside_vmap_is_batched_and_the_passes_after_it_are_checked() -> None:
    """torch.func.jacrev runs autograd.grad under vmap: its roots are batched, with no one objective to read.
    Reading one raised inside the check's runs ("calling .item() on a Tensor" under vmap), which ended the
    recording run there: every pass after it, the program's own backward too, was left out of the check."""
    source = (
        "import torch\nfrom torch.func import jacrev\nx = torch.tensor([0.5, -1.0, 2.0])\n"
        "j = jacrev(lambda v: v.sin() * v)(x)\nw = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\n"
        "loss = (w * j).sum()\nloss.backward()\n"
    )
    doc = _check(source)
    ref = _torch64(source)
    assert [p["skipped"] for p in doc["passes"]] == ["batched", None]
    assert [p["index"] for p in doc["passes"]] == list(range(len(ref.passes)))
    (leaf,) = doc["passes"][1]["leaves"]
    assert leaf["name"] == "w" and leaf["ok"] is True
    assert _rel(_tensor(leaf["numeric"]), ref.namespace["w"].grad) <= 1e-6


def test_the_inputs_of_torch_func_grad_are_nudged_where_the_program_made_them() -> None:
    """grad(f)(w, x) differentiates a wrapper of w that the transform makes; nudging the wrapper changed
    nothing the pass measured (every element "nudge_failed"). The check nudges w, and names it w."""
    source = (
        "import torch\nfrom torch.func import grad\ntorch.manual_seed(0)\nw = torch.randn(3)\nx = torch.randn(4, 3)\n"
        "g = grad(lambda w, x: ((x @ w) ** 2).sum())(w, x)\n"
    )
    doc = _check(source)
    ref = _torch64(source)
    (p,) = doc["passes"]
    (leaf,) = p["leaves"]
    assert leaf["name"] == "w" and leaf["skipped"] is None and leaf["ok"] is True
    assert _rel(_tensor(leaf["numeric"]), ref.namespace["g"]) <= 1e-6
    trace = json.loads(check_json(source))
    (joined,) = trace["check"]["passes"][0]["leaves"]
    assert joined["node"] is not None and joined["name"] == "w"
