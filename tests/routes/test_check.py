"""app/routes/check.py and app/routes/whatif.py over the real sandbox: POST /api/check, and values put in
place on /api/trace, each answer compared with torch; refusals in the one error shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.models import Trace
from tests.reference import decode, normalize, run_reference
from tests.test_errors import assert_error_shape

ROOT = Path(__file__).resolve().parents[2]
CHAIN = (ROOT / "app/examples/seed_5_chain.py").read_text()


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client()


def _trace(response: Any) -> Trace:
    assert response.status_code == 200, response.text
    return Trace.model_validate_json(response.content)


def test_the_chain_example_is_checked_leaf_by_leaf(api: Any) -> None:
    trace = _trace(api.post("/api/check", json={"source": CHAIN}))
    assert trace.status == "ok" and trace.check is not None and trace.check.dtype == "float64"
    leaves = {leaf.name: leaf for leaf in trace.check.passes[0].leaves}
    assert set(leaves) == {"x", "w1", "w2"}
    # torch, in float64: y = mean(w2 * (x * w1 + b)) -> dy/dw1 = w2 * mean(x) = 3, dy/dw2 = mean(x * w1 + b) = 6, dy/dx = w1 * w2 / 5
    x = torch.ones(5, dtype=torch.float64, requires_grad=True)
    w1 = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    ((x * w1 + 4.0) * w2).mean().backward()
    for name, t in (("x", x), ("w1", w1), ("w2", w2)):
        leaf = leaves[name]
        assert torch.allclose(torch.tensor(decode(leaf.autograd), dtype=torch.float64), t.grad, rtol=1e-12)
        assert torch.allclose(torch.tensor(decode(leaf.numeric), dtype=torch.float64), t.grad, rtol=1e-6)
        assert leaf.ok is True and leaf.max_rel_diff is not None and leaf.max_rel_diff <= trace.check.tolerance
        assert trace.nodes[leaf.node].label == name and trace.nodes[leaf.node].kind == "leaf"
    assert trace.check.elements == 7 and trace.check.runs == 1 + 1 + 2 * 7  # record, repeat, two per element


def test_a_wrong_backward_is_flagged(api: Any) -> None:
    source = (ROOT / "tests/programs/check/wrong_function.py").read_text()
    leaves = {leaf.name: leaf for leaf in _trace(api.post("/api/check", json={"source": source})).check.passes[0].leaves}
    assert (leaves["x"].ok, leaves["w"].ok) == (False, True)
    assert decode(leaves["x"].numeric) == pytest.approx([1.0, 2.0, 3.0], rel=1e-6)  # d(0.5 * x^2)/dx = x


def test_a_check_is_bounded_by_the_run_s_time_limit(module_client: Any) -> None:
    short = module_client(timeout_s=1.5)
    source = "import time\nimport torch\nw = torch.ones(40, requires_grad=True)\ntime.sleep(0.02)\n(w * w).sum().backward()\n"
    trace = _trace(short.post("/api/check", json={"source": source}))
    (leaf,) = trace.check.passes[0].leaves
    assert trace.status == "ok" and leaf.skipped == "time" and leaf.autograd == [2.0] * 40  # 80 runs of 20 ms do not fit


def test_check_elements_are_a_setting(module_client: Any) -> None:
    few = module_client(max_check_elements=5)
    trace = _trace(few.post("/api/check", json={"source": CHAIN}))
    assert trace.check.max_elements == 5
    assert {leaf.name: leaf.skipped for leaf in trace.check.passes[0].leaves} == {"w2": None, "x": "budget", "w1": None}


def test_a_what_if_is_the_edited_program_as_torch_runs_it(api: Any) -> None:
    trace = _trace(api.post("/api/trace", json={"source": CHAIN, "overrides": {"w1": 2.5}}))
    edited = run_reference(CHAIN.replace("torch.tensor(2.0, requires_grad=True)", "torch.tensor(2.5, requires_grad=True)"))
    assert normalize(trace.stdout) == normalize(edited.stdout)
    by_name = {n.name: n for n in trace.nodes if n.name}
    for name in ("x", "w1", "w2", "b", "l1", "l2", "l3", "y"):
        t = edited.namespace[name]
        assert torch.allclose(torch.tensor(decode(by_name[name].value)), t.detach().float()), name
    for name in ("x", "w1", "w2"):
        assert torch.allclose(torch.tensor(decode(by_name[name].grad)), edited.namespace[name].grad), name
    (o,) = trace.overrides
    assert (o.name, o.applied, trace.nodes[o.node].name) == ("w1", True, "w1")


def test_a_check_of_a_what_if(api: Any) -> None:
    trace = _trace(api.post("/api/check", json={"source": CHAIN, "overrides": {"w2": -1.0}}))
    w1 = next(leaf for leaf in trace.check.passes[0].leaves if leaf.name == "w1")
    assert decode(w1.autograd) == pytest.approx(-1.0, rel=1e-12) and decode(w1.numeric) == pytest.approx(-1.0, rel=1e-6)


@pytest.mark.parametrize("route", ["/api/trace", "/api/check"])
@pytest.mark.parametrize(
    ("overrides", "kind"),
    [({"w9": 1.0}, "unknown_name"), ({"x": [1.0, 2.0]}, "shape"), ({"l1": 0.5}, "not_leaf")],
)
def test_a_value_the_program_cannot_take_is_a_422(api: Any, route: str, overrides: dict[str, Any], kind: str) -> None:
    body = assert_error_shape(api.post(route, json={"source": CHAIN, "overrides": overrides}), 422)
    (name,) = overrides
    assert body["detail"] == [{"loc": ["body", "overrides", name], "msg": body["detail"][0]["msg"], "type": kind}]
    assert name in body["detail"][0]["msg"]


@pytest.mark.parametrize(
    "overrides",
    [{"1abc": 1.0}, {"w1; import os": 1.0}, {"w1": None}, {"w1": [[0.0] * 200] * 60}, {f"n{i}": 1.0 for i in range(40)}],
)
def test_malformed_overrides_are_refused_before_running(api: Any, overrides: dict[str, Any]) -> None:
    body = assert_error_shape(api.post("/api/trace", json={"source": CHAIN, "overrides": overrides}), 422)
    assert body["detail"][0]["loc"][:2] == ["body", "overrides"]


def test_the_check_and_the_overrides_are_in_the_openapi_schema(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    assert "/api/check" in schema["paths"]
    components = schema["components"]["schemas"]
    assert "overrides" in components["TraceRequest"]["properties"] and "overrides" in components["CheckRequest"]["properties"]
    assert "check" in components["Trace"]["properties"]
