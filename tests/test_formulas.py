"""static/js/formulas.js: the inspector's derivatives, with PyTorch as the oracle.

Every example program (and the tracer's test programs) runs through the real tracer; node plays each
trace through formulas.js; each gradient a formula computes for an input must be the one PyTorch's
engine sent along that edge, and each elementwise local derivative the one torch.autograd computes
from the same values.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from app.tracer import trace_of
from tests.reference import decode

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT / "tests" / "js" / "formulas_dump.mjs"
PROGRAMS = sorted((ROOT / "app" / "examples").glob("*.py")) + sorted((ROOT / "tests" / "programs").glob("*.py"))

# Each elementwise op as torch computes it: (inputs broadcast to the output's shape, the line's constant) -> output.
ELEMENTWISE: dict[str, Callable[[list[torch.Tensor], Any], torch.Tensor]] = {
    "Add": lambda x, c: x[0] + (x[1] if len(x) > 1 else c),
    "Sub": lambda x, c: x[0] - (x[1] if len(x) > 1 else c),
    "Rsub": lambda x, c: c - x[0],
    "Mul": lambda x, c: x[0] * (x[1] if len(x) > 1 else c),
    "Div": lambda x, c: x[0] / (x[1] if len(x) > 1 else c),
    "Pow": lambda x, c: x[0] ** c,
    "Neg": lambda x, c: -x[0],
    "Exp": lambda x, c: torch.exp(x[0]),
    "Log": lambda x, c: torch.log(x[0]),
    "Tanh": lambda x, c: torch.tanh(x[0]),
    "Sigmoid": lambda x, c: torch.sigmoid(x[0]),
    "Relu": lambda x, c: torch.relu(x[0]),
    "Sqrt": lambda x, c: torch.sqrt(x[0]),
}


def base(op: str) -> str:
    return re.sub(r"Backward\d*$", "", op.split("::")[-1])


@pytest.fixture(scope="module")
def played() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(program, trace, formula lines) for every program, the formulas from one node process."""
    traces = [json.loads(trace_of(p.read_text()).model_dump_json()) for p in PROGRAMS]
    result = subprocess.run(
        ["node", str(DUMP)],
        input="\n".join(json.dumps(t) for t in traces),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [(p.stem, t, ls) for p, t, ls in zip(PROGRAMS, traces, lines, strict=True)]


def close(got: Any, expected: Any) -> bool:
    g = torch.tensor(decode(got), dtype=torch.float64)
    e = torch.tensor(decode(expected), dtype=torch.float64)
    return g.shape == e.shape and torch.allclose(g, e, rtol=1e-5, atol=1e-6, equal_nan=True)


def step_of(trace: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in trace["passes"] if p["index"] == line["pass"])["steps"][line["step"]]


def test_every_gradient_a_formula_computes_is_the_one_torch_sent(played: Any) -> None:
    checked = 0
    for name, trace, lines in played:
        for line in lines:
            ref = step_of(trace, line)["grad_inputs"][line["slot"]]  # an index into trace["tensors"]
            sent = None if ref is None else trace["tensors"][ref]["value"]
            if line["sent"] is None or sent is None:
                continue
            assert close(line["sent"], sent), f"{name}: {line['op']} slot {line['slot']}: {line['sent']} != {sent}"
            checked += 1
    assert checked > 100


def test_every_elementwise_local_derivative_is_torchs(played: Any) -> None:
    checked = 0
    for name, trace, lines in played:
        nodes = {n["id"]: n for n in trace["nodes"]}
        for line in lines:
            if line["locals"] is None:
                continue
            node = nodes[line["node"]]
            inputs = sorted((e for e in trace["edges"] if e["target"] == node["id"]), key=lambda e: e["slot"])
            shape = tuple(node["shape"])
            xs = [
                torch.tensor(decode(nodes[e["source"]]["value"]), dtype=torch.float64).broadcast_to(shape).clone() for e in inputs
            ]
            x = xs[line["slot"]].requires_grad_()
            y = ELEMENTWISE[base(node["op"])]([x if i == line["slot"] else v for i, v in enumerate(xs)], line["constant"])
            (local,) = torch.autograd.grad(y, x, torch.ones_like(y))
            assert close(line["locals"], local.flatten().tolist()), f"{name}: {node['op']} slot {line['slot']}"
            checked += 1
    assert checked > 50


def test_every_op_with_a_formula_is_checked_against_torch(played: Any) -> None:
    covered = json.loads(
        subprocess.run(["node", str(DUMP), "--covered"], input="", capture_output=True, text=True, check=True).stdout
    )
    numbered = {base(line["op"]) for _, trace, lines in played for line in lines if line["sent"] is not None}
    assert sorted(set(covered) - numbered) == []


def test_the_jacobian_formulas_use_the_programs_names_and_indices(played: Any) -> None:
    trace, lines = next((t, ls) for name, t, ls in played if name == "seed_4_jacobian")
    names = {n["name"] for n in trace["nodes"] if n["name"]}
    for line in lines:
        for w in line["where"]:
            assert w["letter"] not in names  # a letter that stands for an operand is never a variable's
        assert "broadcast" not in (line["grad"] or "")
        assert "SelectBackward0" not in line["tex"]
        if base(line["op"]) == "Select":
            assert re.search(r"\\text\{ at \} \[[012]\]", line["tex"]), line["tex"]
        if line["grad"] is not None and step_of(trace, line)["grad_inputs"][line["slot"]] is not None:
            assert re.search(r"= [-\d\[][^=]*$", line["grad"]), f"no number: {line['grad']}"  # every pass, every index node
    pow_lines = [line["tex"] for line in lines if base(line["op"]) == "Pow"]
    assert "\\frac{\\partial \\mathrm{a}[0]^{2}}{\\partial \\mathrm{a}[0]} = 2\\,\\mathrm{a}[0] = 2" in pow_lines
    copy = next(line["tex"] for line in lines if line["op"] == "CopySlices" and line["slot"] == 0)
    assert copy.startswith("\\frac{\\partial \\mathrm{b}\\,\\#4}{\\partial \\mathrm{b}\\,\\#3} = 1 \\text{ outside } [2]")
