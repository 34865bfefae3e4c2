"""app/errors.py: one error shape over every error route (404, 405, 413, 415, 400, 403, 422, 429, 500, 503),
over the real sandbox pool and a real SQLite store."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app.errors import ErrorBody

ERROR_KEYS = set(ErrorBody.model_fields)
SLOW = "import time\ntime.sleep(2)\n"


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client()


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
    ("OPTIONS an API route", 405, "OPTIONS", "/api/trace", {}),
    ("OPTIONS a GET route", 405, "OPTIONS", "/api/health", {}),
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
    ("another site's page", 403, "POST", "/api/trace", {"content": b"x = 1", "headers": {"sec-fetch-site": "cross-site"}}),
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

    def post(i: int) -> None:
        r = narrow.post("/api/trace", json={"source": f"{SLOW}\n# run {i}\n"})  # identical programs would share a run
        with lock:
            responses.append(r)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
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
