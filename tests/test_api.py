"""app/routes/api.py (+ errors, middleware, rate limit) over the real sandbox pool and a real SQLite store."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import ErrorBody
from app.models import Trace
from app.ratelimit import RateLimiter

EXAMPLES = Path(__file__).resolve().parent.parent / "app" / "examples"
ERROR_KEYS = set(ErrorBody.model_fields)
SLOW = "import time\ntime.sleep(2)\n"


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client(timeout_s=2.0, cpu_s=10)  # the wall clock, not the CPU limit, ends a busy loop


@pytest.fixture
def limited(module_client: Any) -> Any:
    """A fresh budget of two runs a minute for each test."""
    return module_client(rate_limit_per_minute=2)


@pytest.fixture(scope="module")
def narrow(module_client: Any) -> Any:
    """One run at a time and one waiting: the third concurrent run is refused."""
    return module_client(max_concurrent_runs=1, max_queued_runs=1, timeout_s=5.0)


def assert_error_shape(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["status"] == status
    assert isinstance(body["error"], str) and re.fullmatch(r"[a-z_]+", body["error"])
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["detail"] is None or isinstance(body["detail"], list)
    return body


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


# ---- errors: one shape over every error route -----------------------------------------------


def _chunks(n: int) -> Iterator[bytes]:
    yield b'{"source": "'
    for _ in range(n):
        yield b"#" * 1024
    yield b'"}'


ERROR_CASES: list[tuple[str, int, str, str, dict[str, Any]]] = [
    ("unknown route", 404, "GET", "/nope", {}),
    ("unknown api route", 404, "POST", "/api/nope", {"json": {"source": "1"}}),
    ("unknown share", 404, "GET", "/api/share/doesnotexist", {}),
    ("unknown share page", 404, "GET", "/s/doesnotexist", {}),
    ("unknown embed page", 404, "GET", "/embed/doesnotexist", {}),
    ("wrong method", 405, "DELETE", "/api/trace", {}),
    ("GET a POST route", 405, "GET", "/api/share", {}),
    ("too large by length", 413, "POST", "/api/trace", {"json": {"source": "#" * 70_000}}),
    ("too large share", 413, "POST", "/api/share", {"json": {"source": "x = 1\n" * 12_000}}),
    ("too large, chunked", 413, "POST", "/api/trace", {"content": _chunks}),
    ("malformed JSON", 422, "POST", "/api/trace", {"content": b'{"source": ', "headers": {"content-type": "application/json"}}),
    ("not a program's type", 415, "POST", "/api/trace", {"content": b"<x/>", "headers": {"content-type": "application/xml"}}),
    ("text that is not UTF-8", 400, "POST", "/api/trace", {"content": b"x = '\xff'", "headers": {"content-type": "text/plain"}}),
    ("wrong type", 422, "POST", "/api/trace", {"json": {"source": 3}}),
    ("missing source", 422, "POST", "/api/trace", {"json": {}}),
    ("a list", 422, "POST", "/api/share", {"json": ["print(1)"]}),
    ("NUL in source", 422, "POST", "/api/trace", {"json": {"source": "x = 1\x00"}}),
    ("title too long", 422, "POST", "/api/share", {"json": {"source": "x = 1", "title": "t" * 201}}),
    ("title wrong type", 422, "POST", "/api/share", {"json": {"source": "x = 1", "title": {}}}),
    ("rate limited", 429, "POST", "/api/trace", {"json": {"source": "x = 1"}, "client": "limited"}),
]


@pytest.mark.parametrize(("case", "status", "method", "path", "kwargs"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_every_error_route_has_the_one_shape(
    request: pytest.FixtureRequest, case: str, status: int, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    kwargs = dict(kwargs)
    client = request.getfixturevalue(kwargs.pop("client", "api"))
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"](80)  # 80 KiB streamed without Content-Length
    if status == 429:
        while (response := client.request(method, path, **kwargs)).status_code == 200:
            pass  # spend the budget
    else:
        response = client.request(method, path, **kwargs)
    body = assert_error_shape(response, status)
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1
    if status == 422:
        assert body["detail"] and all(set(d) == {"loc", "msg", "type"} for d in body["detail"])
    if status == 405:
        assert response.headers["allow"]


def test_rate_limit_is_429_with_retry_after(limited: Any) -> None:
    for _ in range(2):
        assert limited.post("/api/trace", json={"source": "x = 1"}).status_code == 200
    refused = limited.post("/api/share", json={"source": "x = 1"})
    body = assert_error_shape(refused, 429)
    assert body["error"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Reading is never limited.
    assert limited.get("/api/health").status_code == 200
    assert limited.get("/api/examples").status_code == 200


def test_full_run_queue_is_429_with_retry_after(narrow: Any) -> None:
    responses: list[Any] = []
    lock = threading.Lock()

    def post() -> None:
        r = narrow.post("/api/trace", json={"source": SLOW})
        with lock:
            responses.append(r)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 429 in statuses, statuses
    assert all(s in (200, 429) for s in statuses), statuses
    for r in responses:
        if r.status_code == 429:
            assert_error_shape(r, 429)
            assert int(r.headers["retry-after"]) >= 1
    assert narrow.get("/api/health").json()["in_flight"] == 0


def test_server_error_has_the_shape_too(api: Any) -> None:
    # No route of the app fails on purpose: one that does is added for this test.
    from fastapi.testclient import TestClient

    def boom() -> None:
        raise RuntimeError("secret detail at /srv/no-such-dir")

    api.app.add_api_route("/api/test-boom", boom, include_in_schema=False)
    try:
        response = TestClient(api.app, raise_server_exceptions=False).get("/api/test-boom")
    finally:
        api.app.router.routes[:] = [r for r in api.app.router.routes if getattr(r, "path", None) != "/api/test-boom"]
    body = assert_error_shape(response, 500)
    assert body["error"] == "internal_error" and "no-such-dir" not in body["message"]


# ---- request ids, access log, headers --------------------------------------------------------


def test_request_id_is_echoed_or_made(api: Any) -> None:
    mine = api.get("/api/health", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = api.get("/api/health", headers={"x-request-id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


def test_access_log_is_one_json_line_per_request(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gradwalk.access"):
        api.get("/api/health", headers={"x-request-id": "log-me"})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gradwalk.access"]
    line = next(entry for entry in lines if entry["request_id"] == "log-me")
    assert line["method"] == "GET" and line["path"] == "/api/health" and line["status"] == 200
    assert line["duration_ms"] >= 0 and line["bytes"] > 0 and line["client"]


def test_api_responses_carry_the_security_headers(api: Any) -> None:
    headers = api.get("/api/health").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_big_answers_travel_compressed(api: Any) -> None:
    source = "import torch\nh = torch.ones(4, requires_grad=True)\nfor i in range(50):\n    h = torch.tanh(h * 1.01)\nh.sum().backward()\n"
    packed = api.post("/api/trace", json={"source": source}, headers={"accept-encoding": "gzip"})
    assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) * 4 < len(packed.content)  # httpx has unpacked it
    assert packed.json()["status"] == "ok" and "accept-encoding" in packed.headers["vary"].lower()
    plain = api.post("/api/trace", json={"source": source}, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["nodes"] == packed.json()["nodes"]


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


# ---- the rate limiter itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    "unreachable",
    ["sqlite:////proc/no-such-dir/gradwalk.sqlite3", "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"],
    ids=["sqlite", "postgresql"],
)
def test_a_store_that_does_not_answer_is_a_503_not_a_500(api: Any, unreachable: str) -> None:
    from sqlalchemy import create_engine

    web = api
    store = web.app.state.store
    saved, store.engine = store.engine, create_engine(unreachable)
    try:
        api_answer = web.get("/api/share/abcdefabcdef")
        body = assert_error_shape(api_answer, 503)
        assert api_answer.headers["retry-after"] == "5" and body["error"] == "unavailable"
        assert "share store" in body["message"] and "no-such-dir" not in body["message"]
        page = web.get("/s/abc", headers={"accept": "text/html"})
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert web.post("/api/trace", json={"source": "x = 1\n"}).status_code == 200  # runs need no store
    finally:
        store.engine.dispose()
        store.engine = saved


def test_shared_rate_limiter_lets_runs_through_when_the_database_is_away() -> None:
    from sqlalchemy import create_engine

    from app.ratelimit import SharedRateLimiter

    nowhere = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    assert SharedRateLimiter(nowhere, 1).take("203.0.113.1") is None  # a run, not a 500


def test_rate_limiter_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("app.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=60)
    assert all(limiter.take("a") is None for _ in range(60))
    assert limiter.take("a") == 1
    assert limiter.take("b") is None  # per address
    now[0] += 1.0
    assert limiter.take("a") is None and limiter.take("a") == 1
    assert RateLimiter(per_minute=0).take("a") is None


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
