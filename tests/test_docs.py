"""The docs say what the code does: every setting in README's table, the API section and its curl example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from app.config import fields

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Numbers carry their unit in their name; `max_<things>` counts things.
UNIT = re.compile(r"(_s|_ms|_mb|_bytes|_per_minute)$|^max_[a-z_]+s$")


def section(title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def settings_table() -> dict[str, list[str]]:
    rows = {}
    for line in section("Settings").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.parametrize("name", list(fields()))
def test_every_setting_is_documented(name: str) -> None:
    field = fields()[name]
    assert field.description and field.description.strip(), f"{name} has no description"
    rows = settings_table()
    assert name in rows, f"README's Settings table lacks {name}"
    assert rows[name][1] == f"`GRADWALK_{name.upper()}`"
    assert rows[name][3], f"README gives {name} no meaning"
    if field.annotation in (int, float):
        assert UNIT.search(name), f"{name} is a number without a unit in its name"


def test_no_setting_is_documented_that_does_not_exist() -> None:
    assert set(settings_table()) <= set(fields())


def test_api_section_names_every_route_and_has_a_curl_example() -> None:
    api = section("API")
    for route in (
        "POST /api/trace",
        "POST /api/check",
        "POST /api/share",
        "GET /api/share/{id}",
        "GET /api/examples",
        "GET /api/health",
        "/s/{id}",
        "/embed/{id}",
        "/docs",
        "/openapi.json",
    ):
        assert route in api, route
    curl = re.search(r"^\$ (curl .*?)(?=\n[^ ]|\n$)", api, flags=re.M | re.S)
    assert curl, "no curl example"
    words = shlex.split(curl.group(1).replace("\\\n", " ").split("|")[0])
    assert "http://127.0.0.1:8000/api/trace" in words and "-d" in words
    for status in ("413", "422", "404", "405", "429", "Retry-After"):
        assert status in api


def test_curl_example_body_is_a_valid_trace_request() -> None:
    import json

    from app.routes.api import TraceRequest

    api = section("API")
    body = re.search(r"-d '(\{.*?\})'", api, flags=re.S)
    assert body
    request = TraceRequest.model_validate(json.loads(body.group(1)))
    assert "backward()" in request.source


def test_curl_example_output_is_what_the_server_answers(module_client) -> None:  # type: ignore[no-untyped-def]
    import json

    api = section("API")
    body = re.search(r"-d '(\{.*?\})'", api, flags=re.S)
    shown = re.search(r"^(\{\"status\".*\})$", api, flags=re.M)
    assert body and shown
    response = module_client().post("/api/trace", content=body.group(1), headers={"content-type": "application/json"})
    assert response.status_code == 200
    trace, expected = response.json(), json.loads(shown.group(1))
    assert trace["status"] == expected["status"] and trace["stdout"] == expected["stdout"]
    assert [[n["label"], n["value"], n["grad"]] for n in trace["nodes"]] == expected["nodes"]
