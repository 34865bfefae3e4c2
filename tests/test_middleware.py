"""app/middleware.py through the app: request ids, the access log, the security headers, compression."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest


@pytest.fixture(scope="module")
def api(module_client: Any) -> Any:
    return module_client()


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
