"""What a REST client meets: the program's size counted on the program, a program sent as text,
Swagger's example that runs, and the page's ?example= with ?step=."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_errors import assert_error_shape

ROOT = Path(__file__).resolve().parent.parent
CHAIN = (ROOT / "app" / "examples" / "seed_5_chain.py").read_text()


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client()


def test_the_limit_counts_the_program_not_its_json_escaping(api: Any) -> None:
    # 60,000 bytes of short lines: JSON writes each newline as two bytes (and a quote as two) -> 80,000 on the wire.
    program = 'x = "a"\n' * 7_500
    assert len(program.encode()) == 60_000 and len(json.dumps({"source": program})) > 65_536
    response = api.post("/api/trace", json={"source": program})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"


def test_a_program_over_the_limit_is_told_by_how_much(api: Any) -> None:
    response = api.post("/api/trace", json={"source": "#" * 70_000})
    assert response.status_code == 413
    assert response.json()["message"] == "The program is 70,000 bytes, 4,464 over the limit of 65,536 (max_source_bytes)."
    # Non-ASCII counts its UTF-8 bytes, as the program is stored and run.
    assert "over the limit" in api.post("/api/trace", json={"source": "# " + "梯" * 22_000}).json()["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "text/x-python"]
)
def test_the_program_itself_as_the_body(api: Any, content_type: str) -> None:
    # curl --data-binary @prog.py sends a form's content type; editors and scripts send text/plain.
    response = api.post("/api/trace", content=CHAIN.encode(), headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    trace = response.json()
    assert trace["status"] == "ok" and trace["source"] == CHAIN
    assert [n["grad"] for n in trace["nodes"] if n["name"] == "w1"] == [3.0]


def test_a_program_file_saved_with_a_bom_runs_as_python_runs_it(api: Any) -> None:
    """Windows Notepad saves UTF-8 with a byte-order mark; `python prog.py` skips it, but sent with
    `curl --data-binary @prog.py` it was part of the program: "SyntaxError: invalid non-printable
    character U+FEFF" on line 1."""
    response = api.post("/api/trace", content=b"\xef\xbb\xbf" + CHAIN.encode(), headers={"content-type": "text/plain"})
    trace = response.json()
    assert trace["status"] == "ok" and trace["source"] == CHAIN, trace["error"]


def test_a_text_body_shares_too_and_is_held_to_the_same_limit(api: Any) -> None:
    created = api.post("/api/share", content=b"import torch\nprint(1)\n", headers={"content-type": "text/plain"})
    assert created.status_code == 201, created.text
    too_big = api.post("/api/share", content=b"#" * 70_000, headers={"content-type": "text/plain"})
    assert too_big.status_code == 413 and "over the limit" in too_big.json()["message"]


def test_swaggers_try_it_out_example_runs(api: Any) -> None:
    schema = api.get("/openapi.json").json()
    body = schema["paths"]["/api/trace"]["post"]["requestBody"]["content"]
    assert "text/plain" in body
    ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    (example,) = schema["components"]["schemas"][ref]["examples"]
    assert example["source"] == CHAIN
    trace = api.post("/api/trace", json=example).json()
    assert trace["status"] == "ok" and trace["error"] is None


def test_a_misspelt_name_in_the_sandbox_keeps_pythons_did_you_mean(api: Any) -> None:
    trace = api.post("/api/trace", json={"source": "import torch\ntotal = torch.ones(2)\nprint(totl)\n"}).json()
    assert trace["status"] == "error"
    assert trace["error"]["message"] == "name 'totl' is not defined. Did you mean: 'total'?"


# ---- methods: HEAD wherever GET is answered, 405 with Allow for the rest ------------------------------


@pytest.fixture(scope="module")
def shared(api: Any) -> str:
    created = api.post("/api/share", json={"source": CHAIN, "title": "chain"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


GET_PATHS = [
    "/api/health",
    "/api/examples",
    "/api/share/{id}",
    "/api/share/nosuchshare",
    "/",
    "/s/{id}",
    "/embed/{id}",
    "/openapi.json",
    "/docs",
    "/static/img/favicon.svg",
]


@pytest.mark.parametrize("path", GET_PATHS)
def test_head_answers_what_get_would_without_the_body(api: Any, shared: str, path: str) -> None:
    """HEAD was a 405 (Allow: GET) on every route but the schema and static files (RFC 9110: a server answering GET answers HEAD)."""
    path = path.format(id=shared)
    get, head = api.get(path), api.head(path)
    assert head.status_code == get.status_code, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["x-request-id"] and head.headers["x-request-id"] != get.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/trace", "POST"),
        ("HEAD", "/api/trace", "POST"),
        ("GET", "/api/check", "POST"),
        ("OPTIONS", "/api/health", "GET, HEAD"),
        ("PUT", "/api/share/{id}", "GET, HEAD"),
        ("OPTIONS", "/s/{id}", "GET, HEAD"),
        ("DELETE", "/", "GET, HEAD"),
        ("OPTIONS", "/openapi.json", "GET, HEAD"),
        ("POST", "/static/img/favicon.svg", "GET, HEAD"),
    ],
)
def test_a_method_a_route_does_not_answer_is_a_405_naming_the_ones_it_does(
    api: Any, shared: str, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path.format(id=shared))
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    if method == "HEAD":
        assert response.content == b""
    else:
        assert assert_error_shape(response, 405)["message"] == f"This route answers {allow} only."


# ---- a bad query parameter is named ------------------------------------------------------------------


def test_a_bad_query_parameter_is_named_not_called_the_request_body(api: Any, shared: str) -> None:
    one = assert_error_shape(api.get(f"/s/{shared}/export.html?step=abc"), 422)
    assert one["message"] == "The query parameter step is not valid."
    assert [d["loc"] for d in one["detail"]] == [["query", "step"]]
    two = assert_error_shape(api.get(f"/s/{shared}/export.html?step=abc&lang=xx&direction=up"), 422)
    assert two["message"] == "The query parameters step, lang and direction are not valid."
    body = assert_error_shape(api.post("/api/trace", json={"source": 3}), 422)
    assert body["message"] == "The request body is not valid."
