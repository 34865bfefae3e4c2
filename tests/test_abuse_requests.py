"""Hostile request bodies against a real `gradwalk serve` (uvicorn on a loopback port, the real
sandbox): each gets a 4xx in the one error shape, never a 500, and the server goes on serving."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

PROGRAM_ROUTES = ("/api/trace", "/api/share", "/api/check", "/export.html")


@pytest.fixture(scope="module")
def server(module_serve: Any) -> Any:
    return module_serve(max_source_bytes=1000)


@pytest.fixture(scope="module")
def http(server: Any) -> Any:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["status"] == status and body["error"] == code and body["request_id"]
    return body


@pytest.mark.parametrize("route", PROGRAM_ROUTES)
def test_json_nested_past_the_parsers_limit_is_a_422(http: Any, route: str) -> None:
    """json.loads raised RecursionError on 3,000 brackets (a 6 kB body): an HTTP 500 before."""
    deep = "[" * 3000 + "]" * 3000
    for body in (f'{{"source": {deep}}}', f'{{"source": "x = 1", "overrides": {{"x": {deep}}}}}'):
        sent = http.post(route, content=body, headers={"content-type": "application/json"})
        detail = _error(sent, 422, "invalid_request")["detail"]
        assert detail == [{"loc": ["body"], "msg": "JSON nested too deeply", "type": "json_too_deep"}]


@pytest.mark.parametrize("route", PROGRAM_ROUTES)
def test_a_lone_surrogate_in_the_program_is_a_422(http: Any, route: str) -> None:
    """Measuring the program's UTF-8 size raised UnicodeEncodeError: an HTTP 500 before."""
    sent = http.post(route, content='{"source": "x = \\"\\udfff\\"\\nprint(x)"}', headers={"content-type": "application/json"})
    detail = _error(sent, 422, "invalid_request")["detail"]
    assert detail[0]["loc"] == ["body", "source"] and "surrogate" in detail[0]["msg"]


def test_a_compressed_body_is_refused_with_a_reason(http: Any) -> None:
    """Never inflated (no gzip bombs); it was FastAPI's 'There was an error parsing the body' before."""
    packed = gzip.compress(json.dumps({"source": "print(1)\n"}).encode())
    sent = http.post("/api/trace", content=packed, headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert "Content-Encoding: gzip" in _error(sent, 415, "unsupported_media_type")["message"]


def test_check_holds_the_program_to_max_source_bytes_and_takes_it_as_text(http: Any) -> None:
    """/api/check read its body without the program routes' rules: a program of any size was checked."""
    big = "#" * 2000 + "\nprint(1)\n"
    assert "2,010 bytes" in _error(http.post("/api/check", json={"source": big}), 413, "too_large")["message"]
    sent = http.post("/api/check", content="x = 1\nprint(x)\n", headers={"content-type": "text/plain"})
    assert sent.status_code == 200 and sent.json()["stdout"] == "1\n"


def test_the_server_logged_no_unhandled_error(http: Any, server: Any) -> None:
    assert http.get("/api/health").status_code == 200
    assert "Traceback" not in server.output()
