import json
import subprocess
import sys
from pathlib import Path

from app.models import Trace

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "app" / "examples").glob("seed_*.py"))


def gradwalk(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_trace_prints_one_document_per_program() -> None:
    result = gradwalk("trace", *map(str, SEEDS))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(SEEDS)
    traces = [Trace.model_validate_json(line) for line in lines]
    assert [t.source for t in traces] == [p.read_text() for p in SEEDS]
    assert [t.status for t in traces] == ["ok", "error", "ok", "ok", "ok"]


def test_trace_reads_stdin() -> None:
    result = gradwalk("trace", "-", stdin="import torch\nx = torch.ones(2, requires_grad=True)\nprint((x * 3).sum())\n")
    doc = json.loads(result.stdout)
    assert doc["stdout"] == "tensor(6., grad_fn=<SumBackward0>)\n"
    assert [n["label"] for n in doc["nodes"]] == ["x", "MulBackward0", "SumBackward0"]


def test_one_program_does_not_change_how_the_next_one_runs(tmp_path) -> None:
    """`gradwalk trace a.py b.py`: b.py prints as `python b.py` does, whatever a.py set for its process
    (print options, default dtype, grad mode, a global module hook)."""
    a = tmp_path / "a.py"
    a.write_text(
        "import torch\ntorch.set_printoptions(precision=2)\ntorch.set_default_dtype(torch.float64)\ntorch.set_grad_enabled(False)\n"
        "torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: print('hooked'))\n"
    )
    b = tmp_path / "b.py"
    b.write_text(
        "import torch\nx = torch.tensor([1.23456], requires_grad=True)\ny = torch.nn.Linear(1, 1)(x * 2)\n"
        "print(x * 2, y.dtype, y.requires_grad)\ny.sum().backward()\n"
    )
    alone = subprocess.run([sys.executable, str(b)], capture_output=True, text=True, timeout=120)
    out = gradwalk("trace", str(a), str(b))
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout.splitlines()[1])
    assert second["status"] == "ok" and second["stdout"] == alone.stdout
