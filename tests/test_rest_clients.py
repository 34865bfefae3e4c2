"""What a REST client meets: the program's size counted on the program, a program sent as text,
Swagger's example that runs, and the page's ?example= with ?step=."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
