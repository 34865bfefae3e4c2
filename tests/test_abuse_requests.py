"""Hostile request bodies against a real `gradwalk serve` (uvicorn on a loopback port, the real
sandbox): each gets a 4xx in the one error shape, never a 500, and the server goes on serving."""

from __future__ import annotations

import gzip
import json
import socket
import time
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
        assert detail == [{"loc": ["body"], "msg": "JSON nested more than 20 levels deep", "type": "json_too_deep"}]


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


def test_an_integer_past_pythons_digit_limit_is_a_422_saying_so(http: Any) -> None:
    """json.loads refuses integers of more than 4,300 digits (ValueError, not a decode error): it was
    FastAPI's 400 "There was an error parsing the body"."""
    for body in ('{"source": "x = 1", "overrides": {"w": 1%s}}', '{"source": 1%s}'):
        sent = http.post("/api/trace", content=body % ("0" * 5000), headers={"content-type": "application/json"})
        (problem,) = _error(sent, 422, "invalid_request")["detail"]
        assert problem == {
            "loc": ["body"],
            "msg": "a number in the JSON has more than 4,300 digits",
            "type": "json_number_too_long",
        }


@pytest.mark.parametrize("route", PROGRAM_ROUTES)
def test_another_sites_page_cannot_make_its_visitors_run_programs(http: Any, route: str) -> None:
    """A program sent as text/plain is a "simple" request, which a browser sends cross-site without
    asking first: any page could make every visitor run programs here (each with the budget of its own
    address) or save shares. A browser says where the request comes from (Sec-Fetch-Site)."""
    program = {"content": "print(1)\n", "headers": {"content-type": "text/plain", "sec-fetch-site": "cross-site"}}
    message = _error(http.post(route, **program), 403, "forbidden")["message"]
    assert "another site" in message
    for site in ("same-origin", "same-site", "none"):  # this app's pages, a sibling host, the address bar
        sent = http.post(route, content="print(1)\n", headers={"content-type": "text/plain", "sec-fetch-site": site})
        assert sent.status_code < 300, sent.text[:300]


def test_a_client_that_hangs_up_mid_body_is_no_server_error(http: Any, server: Any) -> None:
    """Starlette's ClientDisconnect was logged as an unhandled error, with its traceback, and counted a
    500: any client could fill the error log by closing its connections early."""
    before = server.output().count('"status": 499')
    for head in (b"Content-Length: 100\r\n\r\nx = 1", b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /api/trace HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n" + head)
            time.sleep(0.2)
    deadline = time.monotonic() + 10
    while server.output().count('"status": 499') < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.output().count('"status": 499') == before + 2
    assert "Traceback" not in server.output() and '"status": 500' not in server.output()
    assert http.get("/api/health").status_code == 200


def test_the_server_logged_no_unhandled_error(http: Any, server: Any) -> None:
    assert http.get("/api/health").status_code == 200
    assert "Traceback" not in server.output()


def test_head_and_options_as_a_rest_client_sends_them(http: Any) -> None:
    """HEAD on a GET route was a 405 saying `Allow: GET`; OPTIONS is a 405 naming what the route answers."""
    head = http.head("/api/health")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    options = http.options("/api/trace")
    assert options.headers["allow"] == "POST"
    assert _error(options, 405, "method_not_allowed")["message"] == "This route answers POST only."


def _nested(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


def test_deeply_nested_overrides_get_a_short_answer(http: Any) -> None:
    """8 overrides nested 200 deep around a `{}` (a 3.5 kB body) drew 8,000 pydantic errors: a 37 MB 422
    after seconds of CPU. No value of a tensor is nested that deep: refused before validation."""
    overrides = ", ".join(f'"w{i}": {_nested(200, "{}")}' for i in range(8))
    sent = http.post(
        "/api/trace", content=f'{{"source": "x = 1", "overrides": {{{overrides}}}}}', headers={"content-type": "application/json"}
    )
    detail = _error(sent, 422, "invalid_request")["detail"]
    assert detail == [{"loc": ["body"], "msg": "JSON nested more than 20 levels deep", "type": "json_too_deep"}]
    assert len(sent.content) < 1000
    # A value 18 dimensions deep is still taken (and refused by the run, which has no w0).
    fine = http.post(
        "/api/trace",
        content=f'{{"source": "x = 1", "overrides": {{"w0": {_nested(18, "1")}}}}}',
        headers={"content-type": "application/json"},
    )
    assert _error(fine, 422, "invalid_request")["detail"][0]["type"] == "unknown_name"


def test_a_422_lists_at_most_a_screenful_of_problems(http: Any) -> None:
    overrides = ", ".join(f'"w{i}": {_nested(15, "{}")}' for i in range(32))
    sent = http.post(
        "/api/trace", content=f'{{"source": "x = 1", "overrides": {{{overrides}}}}}', headers={"content-type": "application/json"}
    )
    body = _error(sent, 422, "invalid_request")
    assert len(body["detail"]) == 20 and len(sent.content) < 20_000


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1" + "0" * 30, "64-bit"),
        ("-" + "9" * 25, "64-bit"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("[1, -1e400]", "finite"),
    ],
)
def test_an_override_no_tensor_can_hold_is_a_422_naming_it(http: Any, value: str, says: str) -> None:
    """10**30 came back 200 "killed" with no trace (the run echoes the value, and orjson writes 64-bit
    integers at most); NaN and infinity were sent on as null and refused as not fitting w's shape."""
    program = "import torch\\nw = torch.ones(2)\\nprint(w)\\n"
    sent = http.post(
        "/api/trace",
        content=f'{{"source": "{program}", "overrides": {{"w": {value}}}}}',
        headers={"content-type": "application/json"},
    )
    (problem,) = _error(sent, 422, "invalid_request")["detail"]
    assert problem["loc"] == ["body", "overrides"] and "w" in problem["msg"] and says in problem["msg"]


def test_json_that_is_not_utf8_is_a_400_saying_so(http: Any) -> None:
    """It was FastAPI's "There was an error parsing the body"."""
    sent = http.post("/api/trace", content=b'{"source": "x = \'\xff\'"}', headers={"content-type": "application/json"})
    assert _error(sent, 400, "bad_request")["message"] == "The JSON body is not UTF-8 text."
