"""static/js/curves.js: a training loop's curves, with PyTorch as the oracle.

Each program runs through the real tracer; node computes the curves from the trace; the loss at each
iteration must be the root torch's backward was called on, and each parameter's gradient norm the norm
of what that backward added to its .grad.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from app.tracer import trace_of
from tests.reference import run_reference

ROOT = Path(__file__).resolve().parent.parent
DUMP = ROOT / "tests" / "js" / "curves_dump.mjs"
LOOPS = [
    ROOT / "app/examples/training_loop.py",
    ROOT / "tests/programs/optimizer_loop.py",
    ROOT / "tests/programs/manual_sgd_data.py",
]
NOT_LOOPS = [ROOT / "app/examples/seed_5_chain.py", ROOT / "app/examples/seed_4_jacobian.py", ROOT / "app/examples/mlp_step.py"]


def _curves(paths: list[Path]) -> list[Any]:
    traces = [trace_of(p.read_text()).model_dump_json() for p in paths]
    out = subprocess.run(["node", str(DUMP)], input="\n".join(traces), capture_output=True, text=True, check=True, timeout=120)
    return [json.loads(line) for line in out.stdout.splitlines()]


def torch_losses(source: str) -> list[float]:
    """The value of every root torch's backward was called on, in order."""
    losses: list[float] = []
    original = torch.Tensor.backward

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        losses.append(self.item())
        return original(self, *args, **kwargs)

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    try:
        run_reference(source)
    finally:
        torch.Tensor.backward = original  # type: ignore[method-assign]
    return losses


def _names(namespace: dict[str, Any]) -> dict[int, str]:
    names = {id(v): k for k, v in namespace.items() if isinstance(v, torch.Tensor)}
    for k, v in namespace.items():
        if isinstance(v, torch.nn.Module):
            names.update({id(p): f"{k}.{path}" for path, p in v.named_parameters()})
    return names


@pytest.mark.parametrize("path", LOOPS, ids=lambda p: p.stem)
def test_loss_and_gradient_norms_per_iteration_are_torch_s(path: Path) -> None:
    (c,) = _curves([path])
    source = path.read_text()
    losses = torch_losses(source)
    ref = run_reference(source)
    assert [p["iteration"] for p in c["points"]] == list(range(1, len(losses) + 1))  # one point per iteration
    assert [p["loss"] for p in c["points"]] == pytest.approx(losses, rel=1e-6)
    names = _names(ref.namespace)
    series = {s["name"]: s["norms"] for s in c["series"]}
    expected: dict[str, list[float]] = {}
    for entry in ref.passes:
        for tid, (_, grad) in entry.items():
            expected.setdefault(names[tid], []).append(float(grad.norm()))
    assert set(series) == set(expected)
    for name, norms in expected.items():
        assert series[name] == pytest.approx(norms, rel=1e-5), name


def test_programs_without_a_training_loop_have_no_curves() -> None:
    assert _curves(NOT_LOOPS) == [None, None, None]


def test_points_jump_to_their_pass() -> None:
    (c,) = _curves([ROOT / "app/examples/training_loop.py"])
    steps = [p["step"] for p in c["points"]]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and not math.isnan(sum(steps))
