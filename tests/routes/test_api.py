"""app/routes/api.py over the real sandbox pool and a real SQLite store: the trace, shares, the gallery,
health, the OpenAPI schema and its docs, and the app against its own schema (schemathesis)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.models import Trace
from tests.test_errors import ERROR_KEYS

EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client(timeout_s=2.0, cpu_s=10)  # the wall clock, not the CPU limit, ends a busy loop


# ---- POST /api/trace -------------------------------------------------------------------------


def test_trace_returns_the_trace_document(api: Any) -> None:
    source = (EXAMPLES / "seed_5_chain.py").read_text()
    response = api.post("/api/trace", json={"source": source})
    assert response.status_code == 200, response.text
    trace = Trace.model_validate_json(response.text)
    assert trace.status == "ok" and trace.source == source
    assert "tensor(3.) tensor(6.)" in trace.stdout
    assert trace.torch_version
    timing = response.headers["server-timing"]  # the run's share of the request, for clients and bench_api
    sandbox_ms, app_ms = (float(re.search(rf"{m};dur=([\d.]+)", timing).group(1)) for m in ("sandbox", "app"))
    assert 0 < sandbox_ms <= app_ms
    # where the sandbox's time went: waiting for a slot, for a child, the run, the check
    phases = {m: float(re.search(rf"\b{m};dur=([\d.]+)", timing).group(1)) for m in ("queue", "start", "run", "check")}
    assert phases["run"] > 0 and sum(phases.values()) <= sandbox_ms + 0.1, (phases, sandbox_ms)


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("raise ValueError('boom')\n", "error"),
        ("def f(:\n", "error"),
        ("import torch\ntorch.tensor([1, 2], requires_grad=True)\n", "error"),
        ("while True:\n    pass\n", "timeout"),
    ],
)
def test_a_failing_program_is_still_200_with_its_status(api: Any, source: str, status: str) -> None:
    response = api.post("/api/trace", json={"source": source})
    assert response.status_code == 200, response.text
    trace = Trace.model_validate_json(response.text)
    assert trace.status == status
    assert trace.error is not None


# ---- shares ------------------------------------------------------------------------------------


def test_share_is_saved_and_read_back(api: Any) -> None:
    source = (EXAMPLES / "seed_3_scalar_backward.py").read_text()
    created = api.post("/api/share", json={"source": source, "title": "标量 backward"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "url", "embed_url"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", body["id"])
    assert body["url"].endswith(f"/s/{body['id']}") and body["embed_url"].endswith(f"/embed/{body['id']}")
    got = api.get(f"/api/share/{body['id']}")
    assert got.status_code == 200
    share = got.json()
    assert set(share) == {"id", "title", "source", "trace", "created_at"}
    assert (share["id"], share["title"], share["source"]) == (body["id"], "标量 backward", source)
    assert Trace.model_validate(share["trace"]).status == "ok"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", share["created_at"]) and share["created_at"].endswith(("Z", "+00:00"))


def test_share_without_title_and_of_a_failing_program(api: Any) -> None:
    created = api.post("/api/share", json={"source": "1/0\n"})
    assert created.status_code == 201
    share = api.get(f"/api/share/{created.json()['id']}").json()
    assert share["title"] is None and share["trace"]["status"] == "error"


def test_share_ids_differ_for_the_same_program(api: Any) -> None:
    ids = {api.post("/api/share", json={"source": "x = 1\n"}).json()["id"] for _ in range(3)}
    assert len(ids) == 3


# ---- examples and health ---------------------------------------------------------------------


def test_examples_cover_every_program_in_both_languages(api: Any) -> None:
    response = api.get("/api/examples")
    assert response.status_code == 200
    examples = response.json()
    files = {p.stem: p.read_text() for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert [e["id"] for e in examples][:5] == [
        f"seed_{i}" + s
        for i, s in enumerate(["_requires_grad", "_int_requires_grad", "_scalar_backward", "_jacobian", "_chain"], start=1)
    ]
    assert {e["id"] for e in examples} == set(files)
    assert {"linear_loss", "mlp_step", "recurrence", "custom_function"} <= set(files)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    # the comments of the course notebook (autograd_tutorial_zh), as it wrote them
    seed_comments = {
        "由用户创建，为叶子张量",
        "反向传播（求导），对于叶子张量的导数会被保存，其他中间量的导数会被释放。",
        "定义张量",
        "执行正向操作",
        "反向传播",
    }
    for example in examples:
        assert set(example) == {"id", "title", "explanation", "source", "sources"}
        assert example["source"] == example["sources"]["en"] == files[example["id"]]
        en, zh = example["sources"]["en"].splitlines(), example["sources"]["zh"].splitlines()
        assert [line.split("#")[0] for line in en] == [line.split("#")[0] for line in zh], "only comments differ"
        for line in zh:  # every English comment of an example has its Chinese one: the seed notebook's own
            comment = line.split("# ", 1)[1] if "# " in line else ""
            if re.search(r"[a-z]{3,}", comment.replace("d b_", "")):
                raise AssertionError(f"{example['id']}: untranslated comment {comment!r}")
            if cjk.search(comment) and example["id"].startswith("seed_"):
                assert comment in seed_comments, f"{example['id']}: {comment!r} is not the seed notebook's"
        for field in ("title", "explanation"):
            assert set(example[field]) == {"en", "zh"}
            assert example[field]["en"].strip() and not cjk.search(example[field]["en"]), example["id"]
            assert cjk.search(example[field]["zh"]), (example["id"], field)


def test_every_example_runs(api: Any) -> None:
    for path in sorted(EXAMPLES.glob("*.py")):
        response = api.post("/api/trace", json={"source": path.read_text()})
        assert response.status_code == 200
        expected = "error" if path.stem == "seed_2_int_requires_grad" else "ok"
        assert response.json()["status"] == expected, (path.name, response.json().get("error"))


def test_health_reports_versions_protections_and_load(api: Any) -> None:
    response = api.get("/api/health")
    assert response.status_code == 200
    health = response.json()
    assert set(health) == {
        "version",
        "torch_version",
        "sandbox_mode",
        "protections",
        "missing",
        "run_memory",
        "in_flight",
        "queued",
        "database",
    }
    assert health["torch_version"].startswith("2.13.0")
    assert health["version"] != "unknown"
    assert health["sandbox_mode"] in ("strict", "dev")
    assert health["protections"] and all(isinstance(v, bool) for v in health["protections"].values())
    off = {name for name, on in health["protections"].items() if not on}
    assert set(health["missing"]) == off and all(health["missing"].values())  # each one says why
    # which mechanism keeps a run's memory from its neighbours', consistent with the protections
    per_run = health["protections"].get("run_cgroup", False)
    assert health["run_memory"] in (("cgroup_v1", "cgroup_v2") if per_run else ("refused", "none"))
    assert health["run_memory"] != "none" or not health["protections"].get("seccomp")
    assert health["in_flight"] == 0 and health["queued"] == 0
    assert health["database"] == "sqlite"


# ---- the OpenAPI schema and its docs ---------------------------------------------------------


def test_openapi_and_docs(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    assert {"/api/trace", "/api/share", "/api/share/{share_id}", "/api/examples", "/api/health"} <= set(schema["paths"])
    assert not any(p.startswith(("/s/", "/embed/")) for p in schema["paths"])
    assert "Trace" in schema["components"]["schemas"]
    error = schema["paths"]["/api/trace"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("/ErrorBody")
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    csp = docs.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "'sha256-" in script_src
    assert "https:" not in csp and "http:" not in csp, "the docs come from the app, not a CDN"
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert api.get(asset).status_code == 200, asset


# ---- schemathesis: the app against its own OpenAPI schema ------------------------------------

try:
    import hypothesis
    import schemathesis
except ImportError:  # pragma: no cover - reported by the test below
    schemathesis = None  # type: ignore[assignment]


def _schema() -> Any:
    from app.config import Settings
    from app.main import create_app

    return schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())  # type: ignore[call-arg]


if schemathesis is not None:

    @pytest.fixture(scope="module")
    def live(module_serve: Any) -> Any:
        return module_serve(max_queued_runs=256, timeout_s=2.0)

    @pytest.mark.slow
    @_schema().parametrize()
    @hypothesis.settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
    )
    def test_no_generated_input_gets_a_5xx(case: Any, live: Any) -> None:
        response = case.call(base_url=live.url, timeout=30)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == ERROR_KEYS and body["status"] == response.status_code

else:

    def test_no_generated_input_gets_a_5xx() -> None:
        pytest.fail("schemathesis is not installed (pip install -e '.[test]')")
